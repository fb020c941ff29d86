//! `Idempotency-Key` storage, after the IETF draft "The Idempotency-Key HTTP Header Field".
//!
//! - first request with a key: processed; its answer is stored in the same transaction as
//!   the events it caused ([`crate::writer`]), so neither can exist without the other;
//! - same key, same body: the stored answer is replayed;
//! - same key, other body: refused (422);
//! - two requests with one key at the same moment: both may run, but only one answer and its
//!   events commit; the other request finds that answer and replays it.
//!
//! Rows in state `pending` come from earlier versions, which claimed a key before processing:
//! while such a claim is locked the key is in use (409); once it has expired, a retry takes it
//! over with the resource id it reserved, so a request that did commit its events before its
//! process died is answered with that resource rather than filed twice.

use chrono::Utc;

use crate::db::Db;
use crate::StoreError;

/// A stored response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

/// The answer to a request with a key, to store with the request's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub principal: String,
    pub key: String,
    /// SHA-256 of the request (method, path, body): the same key with another request is
    /// refused.
    pub request_hash: String,
    pub resource_id: String,
    pub created_at: String,
    pub response: StoredResponse,
}

/// What to do with a request that carries a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Not answered yet: process it, creating this resource id if it creates one.
    Proceed { resource_id: String },
    /// Replay this response.
    Replay(StoredResponse),
    /// An earlier version's claim on the key is still locked.
    InProgress,
    /// The key was used with another request.
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

/// Looks up `(principal, key)` for a request whose body hashes to `request_hash`; a new key
/// proceeds with `new_resource_id`. Reads only: the answer is written with the events.
pub async fn lookup(
    db: &Db,
    principal: &str,
    key: &str,
    request_hash: &str,
    new_resource_id: &str,
) -> Result<Lookup, StoreError> {
    let row: Option<KeyRow> = crate::on_pool!(db, pool => sqlx::query_as(
        "SELECT request_hash, resource_id, state, status_code, location, body, locked_until \
         FROM idempotency_keys WHERE principal = $1 AND idempotency_key = $2")
        .bind(principal)
        .bind(key)
        .fetch_optional(pool)
        .await)?;
    let Some(row) = row else {
        return Ok(Lookup::Proceed {
            resource_id: new_resource_id.to_string(),
        });
    };
    if row.request_hash != request_hash {
        return Ok(Lookup::Mismatch);
    }
    if row.state == "done" {
        return Ok(Lookup::Replay(StoredResponse {
            status: row
                .status_code
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(200),
            location: row.location,
            body: row.body.unwrap_or_default(),
        }));
    }
    if row.locked_until >= Utc::now().timestamp() {
        return Ok(Lookup::InProgress);
    }
    Ok(Lookup::Proceed {
        resource_id: row.resource_id,
    })
}

/// Whether any claim of an earlier version is left (state `pending`). New answers never leave
/// one, so once none is left a new filing can skip its lookup: its answer's insert tells
/// whether the key was free.
pub async fn has_claims(db: &Db) -> Result<bool, StoreError> {
    let (n,): (i64,) = crate::on_pool!(db, pool => sqlx::query_as(
        "SELECT count(*) FROM (SELECT 1 FROM idempotency_keys WHERE state = 'pending' LIMIT 1) c")
        .fetch_one(pool)
        .await)?;
    Ok(n > 0)
}
