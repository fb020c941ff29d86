//! Reading the `filers` and `tokens` read models for administrators, in keyset pages by id.
//! A token row never carries the token or its hash.

use redtape_domain::submission::FilerId;

use crate::db::Db;
use crate::StoreError;

/// A filer as the `filers` read model has it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct FilerRow {
    pub filer_id: String,
    pub kind: String,
    pub registered_by: Option<String>,
    pub label: Option<String>,
    pub size_class: Option<String>,
    pub sector_section: Option<String>,
    pub woman_owned: Option<bool>,
    pub ethnic_minority_owned: Option<bool>,
    pub created_at: String,
    pub updated_at: Option<String>,
}

impl FilerRow {
    /// The profile the row records (a value it does not know reads as undeclared).
    pub fn profile(&self) -> redtape_domain::filer::FilerProfile {
        use redtape_domain::filer::{FilerProfile, SectorSection, SizeClass};
        FilerProfile {
            size_class: self.size_class.as_deref().and_then(SizeClass::parse),
            sector_section: self
                .sector_section
                .as_deref()
                .and_then(SectorSection::parse),
            woman_owned: self.woman_owned,
            ethnic_minority_owned: self.ethnic_minority_owned,
        }
    }
}

/// A token as the `tokens` read model has it, with when it was last used.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TokenRow {
    pub token_id: String,
    pub role: String,
    pub filer_id: Option<String>,
    pub provinces: Option<String>,
    pub label: Option<String>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
}

/// Filers after `after` (by id), at most `limit`; only the members of `registered_by` if set.
pub async fn filers(
    db: &Db,
    after: Option<&str>,
    limit: i64,
    registered_by: Option<FilerId>,
) -> Result<Vec<FilerRow>, StoreError> {
    Ok(crate::on_pool!(db, pool => sqlx::query_as(
        "SELECT filer_id, kind, registered_by, label, size_class, sector_section, woman_owned, \
         ethnic_minority_owned, created_at, updated_at FROM filers \
         WHERE filer_id > $1 AND ($2 IS NULL OR registered_by = $2) \
         ORDER BY filer_id LIMIT $3")
        .bind(after.unwrap_or(""))
        .bind(registered_by.map(|f| f.to_string()))
        .bind(limit)
        .fetch_all(pool).await)?)
}

/// One filer's row, if registered (and projected).
pub async fn filer(db: &Db, id: FilerId) -> Result<Option<FilerRow>, StoreError> {
    Ok(crate::on_pool!(db, pool => sqlx::query_as(
        "SELECT filer_id, kind, registered_by, label, size_class, sector_section, woman_owned, \
         ethnic_minority_owned, created_at, updated_at FROM filers WHERE filer_id = $1")
        .bind(id.to_string())
        .fetch_optional(pool).await)?)
}

/// Tokens after `after` (by id), at most `limit`; only those of `filer` if set.
pub async fn tokens(
    db: &Db,
    after: Option<&str>,
    limit: i64,
    filer: Option<FilerId>,
) -> Result<Vec<TokenRow>, StoreError> {
    Ok(crate::on_pool!(db, pool => sqlx::query_as(
        "SELECT t.token_id, t.role, t.filer_id, t.provinces, t.label, t.created_at, \
         t.expires_at, t.revoked_at, u.last_used_at FROM tokens t \
         LEFT JOIN token_usage u ON u.token_id = t.token_id \
         WHERE t.token_id > $1 AND ($2 IS NULL OR t.filer_id = $2) \
         ORDER BY t.token_id LIMIT $3")
        .bind(after.unwrap_or(""))
        .bind(filer.map(|f| f.to_string()))
        .bind(limit)
        .fetch_all(pool).await)?)
}

/// One token's row (with when it was last used), if issued.
pub async fn token(db: &Db, id: uuid::Uuid) -> Result<Option<TokenRow>, StoreError> {
    Ok(crate::on_pool!(db, pool => sqlx::query_as(
        "SELECT t.token_id, t.role, t.filer_id, t.provinces, t.label, t.created_at, \
         t.expires_at, t.revoked_at, u.last_used_at FROM tokens t \
         LEFT JOIN token_usage u ON u.token_id = t.token_id WHERE t.token_id = $1")
        .bind(id.to_string())
        .fetch_optional(pool).await)?)
}

/// Recently read filers, so a filing does not query `filers` (one more statement per filing
/// through SQLite's one connection cost 40% of the filing throughput: docs/benchmarks.md).
/// A filing records the profile this returns, at most `ttl` old: a profile change made
/// through this process is seen at once ([`FilerCache::forget`]), one made through another
/// replica within `ttl` (`REDTAPE_TOKEN_CACHE_SECONDS`, as for revocations; 0 turns caching
/// off). Filers not found are never cached (a member registered a moment ago is found).
pub struct FilerCache {
    ttl: std::time::Duration,
    entries: std::sync::Mutex<std::collections::HashMap<FilerId, (FilerRow, std::time::Instant)>>,
}

/// Upper bound on cached filers; past it the cache is cleared.
const FILER_CACHE_CAPACITY: usize = 100_000;

impl FilerCache {
    pub fn new(ttl: std::time::Duration) -> Self {
        FilerCache {
            ttl,
            entries: Default::default(),
        }
    }

    /// The filer's row, from the cache if it is fresh.
    pub async fn get(&self, db: &Db, id: FilerId) -> Result<Option<FilerRow>, StoreError> {
        if let Ok(entries) = self.entries.lock() {
            if let Some((row, at)) = entries.get(&id) {
                if at.elapsed() < self.ttl {
                    return Ok(Some(row.clone()));
                }
            }
        }
        let found = filer(db, id).await?;
        if let (Some(row), Ok(mut entries)) = (&found, self.entries.lock()) {
            if !self.ttl.is_zero() {
                if entries.len() >= FILER_CACHE_CAPACITY {
                    entries.clear();
                }
                entries.insert(id, (row.clone(), std::time::Instant::now()));
            }
        }
        Ok(found)
    }

    /// Drops a filer whose profile just changed.
    pub fn forget(&self, id: FilerId) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&id);
        }
    }
}
