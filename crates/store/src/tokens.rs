//! Filers and bearer tokens.
//!
//! A token is 32 random bytes, shown once as `rt_<64 hex>`; only its SHA-256 is stored. Tokens
//! are high-entropy secrets, not passwords, so a fast hash is the right one: a database leak
//! still reveals no usable token.

use chrono::Utc;
use redtape_domain::filer::FilerProfile;
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

fn new_secret() -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Io(std::io::Error::other(e.to_string())))?;
    Ok(format!("rt_{}", hex::encode(bytes)))
}

/// Issues a token. A business token without `filer` registers a new filer.
pub async fn issue(
    db: &Db,
    role: Role,
    filer: Option<FilerId>,
    label: Option<&str>,
) -> Result<IssuedToken, StoreError> {
    issue_scoped(
        db,
        role,
        filer,
        label,
        Scope::Everywhere,
        FilerProfile::default(),
    )
    .await
}

/// Issues a token limited to `scope`; only officer tokens may be limited (a business acts
/// on its own submissions, an admin everywhere). `profile` is recorded for a new filer only.
pub async fn issue_scoped(
    db: &Db,
    role: Role,
    filer: Option<FilerId>,
    label: Option<&str>,
    scope: Scope,
    profile: FilerProfile,
) -> Result<IssuedToken, StoreError> {
    if !profile.is_empty() && (role != Role::Business || filer.is_some()) {
        return Err(StoreError::Invalid(
            "a size class or sector is given when a business filer is registered (a business \
             token without --filer)"
                .into(),
        ));
    }
    if role != Role::Officer && !scope.is_everywhere() {
        return Err(StoreError::Invalid(format!(
            "only officer tokens can be limited to provinces, not {} tokens",
            role.as_str()
        )));
    }
    if role != Role::Business && filer.is_some() {
        return Err(StoreError::Invalid(format!(
            "only business tokens file as a filer, not {} tokens",
            role.as_str()
        )));
    }
    let token = new_secret()?;
    let now = crate::timestamp(Utc::now());
    let token_id = Uuid::now_v7();
    let filer = match (role, filer) {
        (Role::Business, None) => Some(FilerId(Uuid::now_v7())),
        (_, f) => f,
    };
    let filer_text = filer.map(|f| f.to_string());
    crate::on_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        if let Some(f) = &filer_text {
            sqlx::query("INSERT INTO filers (filer_id, label, created_at, size_class, \
                         sector_section) VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (filer_id) DO NOTHING")
                .bind(f).bind(label).bind(&now)
                .bind(profile.size_class.map(|s| s.as_str()))
                .bind(profile.sector_section.map(|s| s.as_char().to_string()))
                .execute(&mut *tx).await?;
        }
        sqlx::query("INSERT INTO api_tokens (token_hash, token_id, role, filer_id, label, \
                     created_at, provinces) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(hash(&token)).bind(token_id.to_string()).bind(role.as_str())
            .bind(&filer_text).bind(label).bind(&now).bind(scope.to_stored())
            .execute(&mut *tx).await?;
        tx.commit().await?;
    });
    Ok(IssuedToken {
        token,
        principal: Principal {
            token_id,
            role,
            filer,
            scope,
        },
    })
}

/// Resolves a presented token; `None` for unknown or revoked tokens.
pub async fn authenticate(db: &Db, token: &str) -> Result<Option<Principal>, StoreError> {
    let row: Option<(String, String, Option<String>, Option<String>)> = crate::on_pool!(db, pool =>
        sqlx::query_as("SELECT token_id, role, filer_id, provinces FROM api_tokens \
                        WHERE token_hash = $1 AND revoked_at IS NULL")
            .bind(hash(token))
            .fetch_optional(pool).await)?;
    let Some((token_id, role, filer, provinces)) = row else {
        return Ok(None);
    };
    let corrupt =
        |what: &str| StoreError::Corrupt(format!("api_tokens row {token_id}: bad {what}"));
    Ok(Some(Principal {
        token_id: Uuid::parse_str(&token_id).map_err(|_| corrupt("token_id"))?,
        role: Role::parse(&role).ok_or_else(|| corrupt("role"))?,
        filer: match filer {
            Some(f) => Some(FilerId(
                Uuid::parse_str(&f).map_err(|_| corrupt("filer_id"))?,
            )),
            None => None,
        },
        scope: Scope::from_stored(provinces.as_deref()),
    }))
}

/// Revokes a token by its id; returns whether a live token was revoked.
pub async fn revoke(db: &Db, token_id: Uuid) -> Result<bool, StoreError> {
    let now = crate::timestamp(Utc::now());
    let done = crate::on_pool!(db, pool =>
        sqlx::query("UPDATE api_tokens SET revoked_at = $2 WHERE token_id = $1 AND revoked_at IS NULL")
            .bind(token_id.to_string()).bind(now)
            .execute(pool).await?.rows_affected());
    Ok(done == 1)
}

/// Remembers recent successful authentications for a short time, so the hot path does not
/// query the token table on every request. A revocation therefore takes effect within
/// `ttl` (10 seconds by default; `REDTAPE_TOKEN_CACHE_SECONDS`, 0 turns caching off).
/// Failed lookups are never cached.
pub struct TokenCache {
    ttl: std::time::Duration,
    entries: std::sync::Mutex<std::collections::HashMap<String, (Principal, std::time::Instant)>>,
}

/// Upper bound on cached tokens; past it the cache is cleared (tokens are few in practice).
const CACHE_CAPACITY: usize = 100_000;

impl TokenCache {
    pub fn new(ttl: std::time::Duration) -> Self {
        Self {
            ttl,
            entries: Default::default(),
        }
    }

    pub async fn authenticate(
        &self,
        db: &Db,
        token: &str,
    ) -> Result<Option<Principal>, StoreError> {
        if self.ttl.is_zero() {
            return authenticate(db, token).await;
        }
        let key = hash(token);
        if let Ok(entries) = self.entries.lock() {
            if let Some((principal, at)) = entries.get(&key) {
                if at.elapsed() < self.ttl {
                    return Ok(Some(principal.clone()));
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
}
