//! `Idempotency-Key` storage, after the IETF draft "The Idempotency-Key HTTP Header Field".
//!
//! - first request with a key: claimed (`pending`), processed, its response stored (`done`);
//! - same key, same body: the stored response is replayed;
//! - same key, other body: refused (422);
//! - same key while the first is still being processed: refused (409).
//!
//! A claim carries the resource id the request will create, decided before processing. If the
//! process dies between claim and completion, the claim expires (`locked_until`) and the retry
//! reuses that id: the aggregate then answers "already exists" rather than filing twice.

use chrono::Utc;

use crate::db::Db;
use crate::StoreError;

/// How long a pending claim blocks retries before it is considered abandoned.
pub const LOCK_SECONDS: i64 = 30;

/// A stored response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

/// The outcome of claiming a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Go ahead; create the resource with this id.
    Proceed { resource_id: String },
    /// Replay this response.
    Replay(StoredResponse),
    /// The same key is being processed right now.
    InProgress,
    /// The key was used with a different request body.
    Mismatch,
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    request_hash: String,
    resource_id: String,
    state: String,
    status_code: Option<i32>,
    location: Option<String>,
    body: Option<String>,
    locked_until: i64,
}

/// Claims `(principal, key)` for a request whose body hashes to `request_hash`.
pub async fn claim(
    db: &Db,
    principal: &str,
    key: &str,
    request_hash: &str,
    resource_id: &str,
) -> Result<Claim, StoreError> {
    let now = Utc::now().timestamp();
    let created = crate::timestamp(Utc::now());
    crate::on_pool!(db, pool => {
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (principal, idempotency_key, request_hash, resource_id, \
             state, created_at, locked_until) VALUES ($1, $2, $3, $4, 'pending', $5, $6) \
             ON CONFLICT (principal, idempotency_key) DO NOTHING")
            .bind(principal).bind(key).bind(request_hash).bind(resource_id)
            .bind(&created).bind(now + LOCK_SECONDS)
            .execute(pool).await?.rows_affected();
        if inserted == 1 {
            return Ok(Claim::Proceed { resource_id: resource_id.to_string() });
        }
        let row: Option<KeyRow> =
            sqlx::query_as(
                "SELECT request_hash, resource_id, state, status_code, location, body, locked_until \
                 FROM idempotency_keys WHERE principal = $1 AND idempotency_key = $2")
            .bind(principal).bind(key)
            .fetch_optional(pool).await?;
        let Some(KeyRow { request_hash: hash, resource_id: stored_id, state, status_code: status, location, body, locked_until }) = row else {
            // Deleted between the two statements (never happens today): treat as contention.
            return Ok(Claim::InProgress);
        };
        if hash != request_hash {
            return Ok(Claim::Mismatch);
        }
        if state == "done" {
            return Ok(Claim::Replay(StoredResponse {
                status: status.and_then(|s| u16::try_from(s).ok()).unwrap_or(200),
                location,
                body: body.unwrap_or_default(),
            }));
        }
        if locked_until > now {
            return Ok(Claim::InProgress);
        }
        // An abandoned claim: take it over atomically (only one retry wins).
        let taken = sqlx::query(
            "UPDATE idempotency_keys SET locked_until = $3 WHERE principal = $1 \
             AND idempotency_key = $2 AND state = 'pending' AND locked_until = $4")
            .bind(principal).bind(key).bind(now + LOCK_SECONDS).bind(locked_until)
            .execute(pool).await?.rows_affected();
        if taken == 1 {
            Ok(Claim::Proceed { resource_id: stored_id })
        } else {
            Ok(Claim::InProgress)
        }
    })
}

/// Stores the response of a claimed key.
pub async fn complete(
    db: &Db,
    principal: &str,
    key: &str,
    response: &StoredResponse,
) -> Result<(), StoreError> {
    crate::on_pool!(db, pool => sqlx::query(
        "UPDATE idempotency_keys SET state = 'done', status_code = $3, location = $4, body = $5 \
         WHERE principal = $1 AND idempotency_key = $2")
        .bind(principal).bind(key).bind(i32::from(response.status))
        .bind(&response.location).bind(&response.body)
        .execute(pool).await.map(|_| ()))?;
    Ok(())
}

/// Forgets a claim whose request did not complete (a transient failure), so a retry may run.
pub async fn release(db: &Db, principal: &str, key: &str) -> Result<(), StoreError> {
    crate::on_pool!(db, pool => sqlx::query(
        "DELETE FROM idempotency_keys WHERE principal = $1 AND idempotency_key = $2 \
         AND state = 'pending'")
        .bind(principal).bind(key)
        .execute(pool).await.map(|_| ()))?;
    Ok(())
}
