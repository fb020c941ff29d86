//! Authenticating bearer tokens against the `tokens` read model (issued and revoked through
//! [`crate::accounts`]).
//!
//! A token is 32 random bytes, shown once as `rt_<64 hex>`; only its SHA-256 is stored. Tokens
//! are high-entropy secrets, not passwords, so a fast hash is the right one: a database leak
//! still reveals no usable token.

use chrono::{DateTime, Utc};
use redtape_domain::submission::FilerId;
use redtape_domain::{Role, Scope};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::db::Db;
use crate::StoreError;

/// Who a valid token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub token_id: Uuid,
    pub role: Role,
    /// Set for business tokens: the filer they file as.
    pub filer: Option<FilerId>,
    /// For officer tokens: the provinces they may act on.
    pub scope: Scope,
    /// After this the token is refused.
    pub expires_at: Option<DateTime<Utc>>,
}

impl Principal {
    /// Whether the token has not expired at `now`.
    pub fn live(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|e| now < e)
    }
}

/// A freshly issued token: the only moment its plain text exists.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub principal: Principal,
}

pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Resolves a presented token; `None` for an unknown, revoked or expired one.
pub async fn authenticate(db: &Db, token: &str) -> Result<Option<Principal>, StoreError> {
    type Row = (
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let row: Option<Row> = crate::on_pool!(db, pool =>
        sqlx::query_as("SELECT token_id, role, filer_id, provinces, expires_at FROM tokens \
                        WHERE token_hash = $1 AND revoked_at IS NULL")
            .bind(hash(token))
            .fetch_optional(pool).await)?;
    let Some((token_id, role, filer, provinces, expires_at)) = row else {
        return Ok(None);
    };
    let corrupt = |what: &str| StoreError::Corrupt(format!("tokens row {token_id}: bad {what}"));
    let principal = Principal {
        token_id: Uuid::parse_str(&token_id).map_err(|_| corrupt("token_id"))?,
        role: Role::parse(&role).ok_or_else(|| corrupt("role"))?,
        filer: match filer {
            Some(f) => Some(FilerId(
                Uuid::parse_str(&f).map_err(|_| corrupt("filer_id"))?,
            )),
            None => None,
        },
        scope: Scope::from_stored(provinces.as_deref()),
        expires_at: match expires_at {
            Some(t) => Some(
                DateTime::parse_from_rfc3339(&t)
                    .map_err(|_| corrupt("expires_at"))?
                    .with_timezone(&Utc),
            ),
            None => None,
        },
    };
    Ok(principal.live(Utc::now()).then_some(principal))
}

/// Records that a token was used now.
async fn touch(db: &Db, token_id: Uuid) -> Result<(), StoreError> {
    crate::on_pool!(db, pool => sqlx::query(
        "INSERT INTO token_usage (token_id, last_used_at) VALUES ($1, $2) \
         ON CONFLICT (token_id) DO UPDATE SET last_used_at = excluded.last_used_at")
        .bind(token_id.to_string()).bind(crate::timestamp(Utc::now()))
        .execute(pool).await.map(|_| ()))?;
    Ok(())
}

/// Remembers recent successful authentications for a short time, so the hot path does not
/// query the token table on every request. A revocation therefore takes effect within
/// `ttl` (10 seconds by default; `REDTAPE_TOKEN_CACHE_SECONDS`, 0 turns caching off); an
/// expiry takes effect at once. Failed lookups are never cached.
///
/// It also keeps `token_usage.last_used_at` (shown to admins) within a minute of the truth
/// with at most one write per token per minute and process, whatever the request rate.
pub struct TokenCache {
    ttl: std::time::Duration,
    entries: std::sync::Mutex<std::collections::HashMap<String, (Principal, std::time::Instant)>>,
    touched: std::sync::Mutex<std::collections::HashMap<Uuid, std::time::Instant>>,
}

/// Upper bound on cached tokens; past it the cache is cleared (tokens are few in practice).
const CACHE_CAPACITY: usize = 100_000;

/// How often a token's `last_used_at` is written at most.
pub const TOUCH_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl TokenCache {
    pub fn new(ttl: std::time::Duration) -> Self {
        Self {
            ttl,
            entries: Default::default(),
            touched: Default::default(),
        }
    }

    pub async fn authenticate(
        &self,
        db: &Db,
        token: &str,
    ) -> Result<Option<Principal>, StoreError> {
        let found = self.lookup(db, token).await?;
        if let Some(principal) = &found {
            self.touch(db, principal.token_id).await;
        }
        Ok(found)
    }

    async fn lookup(&self, db: &Db, token: &str) -> Result<Option<Principal>, StoreError> {
        if self.ttl.is_zero() {
            return authenticate(db, token).await;
        }
        let key = hash(token);
        if let Ok(entries) = self.entries.lock() {
            if let Some((principal, at)) = entries.get(&key) {
                if at.elapsed() < self.ttl {
                    return Ok(principal.live(Utc::now()).then(|| principal.clone()));
                }
            }
        }
        let found = authenticate(db, token).await?;
        if let (Some(principal), Ok(mut entries)) = (&found, self.entries.lock()) {
            if entries.len() >= CACHE_CAPACITY {
                entries.clear();
            }
            entries.insert(key, (principal.clone(), std::time::Instant::now()));
        }
        Ok(found)
    }

    /// Writes `last_used_at` if this process has not for [`TOUCH_EVERY`]. A failure is only
    /// logged: the request it belongs to was authenticated and goes on.
    async fn touch(&self, db: &Db, token_id: Uuid) {
        let due = match self.touched.lock() {
            Ok(mut touched) => {
                let now = std::time::Instant::now();
                let due = touched
                    .get(&token_id)
                    .is_none_or(|at| now.duration_since(*at) >= TOUCH_EVERY);
                if due {
                    if touched.len() >= CACHE_CAPACITY {
                        touched.clear();
                    }
                    touched.insert(token_id, now);
                }
                due
            }
            Err(_) => false,
        };
        if due {
            if let Err(e) = touch(db, token_id).await {
                tracing::warn!(error = %e, %token_id, "could not record token use");
            }
        }
    }
}
