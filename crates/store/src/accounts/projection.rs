//! The accounts projection: `filers` and `tokens` from the Filer and Token events.
//!
//! It has a checkpoint of its own (`accounts`), so it can be caught up right after an account
//! command, in the process that issued it, without waiting behind a backlog of filings for
//! the main projector: a token works as soon as it is shown. Its reads use the partial index of
//! migration 0013 and never touch the filings in between. Like the main projector it reads
//! PostgreSQL in `(txid, position)` order behind the xmin gate, and serializes on its locked
//! checkpoint row (SQLite: on `BEGIN IMMEDIATE`).

use std::time::{Duration, Instant};

use redtape_domain::filer::aggregate::FilerEvent;
use redtape_domain::token::TokenEvent;

use crate::db::{on_conn, Conn, Db};
use crate::event_log::LoggedEvent;
use crate::StoreError;

/// Name of the accounts projection's checkpoint row.
pub(crate) const ACCOUNTS: &str = "accounts";

/// Events per transaction.
const BATCH: i64 = 1_000;

/// How long a catch-up waits for account events held back by another transaction.
const DEADLINE: Duration = Duration::from_secs(10);

const PG_LOCK: &str = "SELECT txid, position FROM projector_checkpoints WHERE name = $1 FOR UPDATE";
const READ_CHECKPOINT: &str = "SELECT txid, position FROM projector_checkpoints WHERE name = $1";
const SAVE: &str = "UPDATE projector_checkpoints SET txid = $2, position = $3 WHERE name = $1";

const PG_NEXT: &str = "SELECT txid, position, aggregate_type, aggregate_id, sequence, \
    event_type, payload::text AS payload FROM events \
    WHERE aggregate_type IN ('Filer', 'Token') AND (txid, position) > ($1, $2) \
      AND txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
    ORDER BY txid, position LIMIT $3";

const LITE_NEXT: &str = "SELECT 0 AS txid, l.position AS position, e.aggregate_type, \
    e.aggregate_id, e.sequence, e.event_type, e.payload \
    FROM event_log l INDEXED BY event_log_accounts \
    JOIN events e ON e.aggregate_type = l.aggregate_type AND e.aggregate_id = l.aggregate_id \
     AND e.sequence = l.sequence \
    WHERE l.aggregate_type IN ('Filer', 'Token') AND l.position > $2 AND $1 = 0 \
    ORDER BY l.position LIMIT $3";

const PG_NEWEST: &str = "SELECT txid, position FROM events \
    WHERE aggregate_type IN ('Filer', 'Token') ORDER BY txid DESC, position DESC LIMIT 1";
const LITE_NEWEST: &str = "SELECT 0, position FROM event_log INDEXED BY event_log_accounts \
    WHERE aggregate_type IN ('Filer', 'Token') ORDER BY position DESC LIMIT 1";

/// Applies the account events committed so far (waiting up to [`DEADLINE`] for any held back
/// by an older transaction); returns how many it applied. After every account command.
pub async fn catch_up(db: &Db) -> Result<usize, StoreError> {
    catch_up_within(db, DEADLINE).await
}

/// Like [`catch_up`], waiting at most `deadline`. Cheap when there is nothing to apply (two
/// index reads, no lock), so the live projector runs it after each of its passes: an account
/// event whose own catch-up did not finish (its request went away, another transaction held
/// it back past the deadline, the process died) is applied within one projector wake.
pub async fn catch_up_within(db: &Db, deadline: Duration) -> Result<usize, StoreError> {
    let started = Instant::now();
    let (target, checkpoint): (Option<(i64, i64)>, (i64, i64)) = match db {
        Db::Postgres(pool) => (
            sqlx::query_as(PG_NEWEST).fetch_optional(pool).await?,
            sqlx::query_as(READ_CHECKPOINT)
                .bind(ACCOUNTS)
                .fetch_one(pool)
                .await?,
        ),
        Db::Sqlite(pool) => (
            sqlx::query_as(LITE_NEWEST).fetch_optional(pool).await?,
            sqlx::query_as(READ_CHECKPOINT)
                .bind(ACCOUNTS)
                .fetch_one(pool)
                .await?,
        ),
    };
    let Some(target) = target.filter(|t| *t > checkpoint) else {
        return Ok(0);
    };
    let mut total = 0;
    loop {
        let (applied, checkpoint) = match db {
            Db::Postgres(pool) => {
                let mut tx = crate::db::begin_pg(pool).await?;
                let done = pass(&mut Conn::Pg(&mut tx)).await?;
                tx.commit().await?;
                done
            }
            Db::Sqlite(pool) => {
                let mut tx = crate::db::begin_lite(pool).await?;
                let done = pass(&mut Conn::Lite(&mut tx)).await?;
                tx.commit().await?;
                done
            }
        };
        total += applied;
        if checkpoint >= target {
            return Ok(total);
        }
        if applied == 0 {
            if started.elapsed() > deadline {
                tracing::warn!(
                    ?target,
                    ?checkpoint,
                    "accounts projection held back by a long-running transaction"
                );
                return Ok(total);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// One batch in the caller's transaction: locks the checkpoint, applies what follows it,
/// saves it. Returns the events applied and the checkpoint after them.
pub(crate) async fn pass(conn: &mut Conn<'_>) -> Result<(usize, (i64, i64)), StoreError> {
    let (lock, next) = match conn {
        Conn::Pg(_) => (PG_LOCK, PG_NEXT),
        Conn::Lite(_) => (READ_CHECKPOINT, LITE_NEXT),
    };
    let mut checkpoint: (i64, i64) =
        on_conn!(conn, c, DB => sqlx::query_as(lock).bind(ACCOUNTS).fetch_one(c).await)?;
    let events: Vec<LoggedEvent> = on_conn!(conn, c, DB => sqlx::query_as(next)
        .bind(checkpoint.0).bind(checkpoint.1).bind(BATCH).fetch_all(c).await)?;
    for event in &events {
        apply(conn, event).await?;
        checkpoint = (event.txid, event.position);
    }
    if !events.is_empty() {
        on_conn!(conn, c, DB => sqlx::query(SAVE).bind(ACCOUNTS)
            .bind(checkpoint.0).bind(checkpoint.1).execute(c).await.map(|_| ()))?;
    }
    Ok((events.len(), checkpoint))
}

/// For a rebuild, in its transaction: refuses while `filers` or `api_tokens` still hold rows
/// that are not events yet (they would be lost; every start adopts them), then empties the
/// tables and replays every account event into them. The filers that `api_tokens` rows still
/// name stay (its foreign key wants them); being adopted, each is rewritten whole by its own
/// `FilerRegistered` and later events, so the result is the same.
pub(crate) async fn rebuild(conn: &mut Conn<'_>) -> Result<usize, StoreError> {
    use super::legacy::{UNADOPTED_FILERS, UNADOPTED_TOKENS};
    let count = format!(
        "SELECT (SELECT count(*) {UNADOPTED_FILERS}) + (SELECT count(*) {UNADOPTED_TOKENS})"
    );
    let legacy: i64 = on_conn!(conn, c, DB => sqlx::query_scalar(&count).fetch_one(c).await)?;
    if legacy > 0 {
        return Err(StoreError::Invalid(format!(
            "{legacy} filers or tokens from before filers and tokens became events are not \
             adopted yet: start `redtape serve` once (it adopts them), then rebuild"
        )));
    }
    for statement in [
        "DELETE FROM tokens",
        "DELETE FROM filers WHERE filer_id NOT IN \
         (SELECT filer_id FROM api_tokens WHERE filer_id IS NOT NULL)",
        "UPDATE projector_checkpoints SET txid = 0, position = 0 WHERE name = 'accounts'",
    ] {
        on_conn!(conn, c, DB => sqlx::query(statement).execute(c).await.map(|_| ()))?;
    }
    let target: Option<(i64, i64)> = match conn {
        Conn::Pg(c) => sqlx::query_as(PG_NEWEST).fetch_optional(&mut **c).await?,
        Conn::Lite(c) => sqlx::query_as(LITE_NEWEST).fetch_optional(&mut **c).await?,
    };
    let started = Instant::now();
    let mut total = 0;
    loop {
        let (applied, checkpoint) = pass(conn).await?;
        total += applied;
        // Every account event committed before the rebuild, also one held back by an older
        // transaction for a moment (as the main replay waits for its own).
        if target.is_none_or(|t| checkpoint >= t) {
            return Ok(total);
        }
        if applied == 0 {
            if started.elapsed() > DEADLINE {
                return Err(StoreError::Invalid(
                    "account events are held back by a long-running transaction; rebuild again \
                     when it has ended"
                        .into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn apply(conn: &mut Conn<'_>, logged: &LoggedEvent) -> Result<(), StoreError> {
    let id = logged.aggregate_id.as_str();
    if logged.aggregate_type == "Filer" {
        let event: FilerEvent =
            serde_json::from_str(&logged.payload).map_err(|e| logged.corrupt(e))?;
        match event {
            FilerEvent::FilerRegistered {
                kind,
                registered_by,
                profile,
                label,
                at,
                ..
            } => {
                let at = crate::timestamp(at);
                on_conn!(conn, c, DB => sqlx::query(
                    "INSERT INTO filers (filer_id, label, created_at, size_class, sector_section, \
                     kind, registered_by, woman_owned, ethnic_minority_owned, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $3) \
                     ON CONFLICT (filer_id) DO UPDATE SET label = excluded.label, \
                     created_at = excluded.created_at, size_class = excluded.size_class, \
                     sector_section = excluded.sector_section, kind = excluded.kind, \
                     registered_by = excluded.registered_by, \
                     woman_owned = excluded.woman_owned, \
                     ethnic_minority_owned = excluded.ethnic_minority_owned, \
                     updated_at = excluded.updated_at")
                    .bind(id).bind(&label).bind(&at)
                    .bind(profile.size_class.map(|s| s.as_str()))
                    .bind(profile.sector_section.map(|s| s.as_char().to_string()))
                    .bind(kind.as_str()).bind(registered_by.map(|f| f.to_string()))
                    .bind(profile.woman_owned).bind(profile.ethnic_minority_owned)
                    .execute(c).await.map(|_| ()))?;
            }
            FilerEvent::FilerProfileChanged { profile, at } => {
                on_conn!(conn, c, DB => sqlx::query(
                    "UPDATE filers SET size_class = $2, sector_section = $3, woman_owned = $4, \
                     ethnic_minority_owned = $5, updated_at = $6 WHERE filer_id = $1")
                    .bind(id)
                    .bind(profile.size_class.map(|s| s.as_str()))
                    .bind(profile.sector_section.map(|s| s.as_char().to_string()))
                    .bind(profile.woman_owned).bind(profile.ethnic_minority_owned)
                    .bind(crate::timestamp(at))
                    .execute(c).await.map(|_| ()))?;
            }
        }
    } else {
        let event: TokenEvent =
            serde_json::from_str(&logged.payload).map_err(|e| logged.corrupt(e))?;
        match event {
            TokenEvent::TokenIssued {
                role,
                filer,
                provinces,
                hash,
                label,
                expires_at,
                at,
            } => {
                on_conn!(conn, c, DB => sqlx::query(
                    "INSERT INTO tokens (token_id, token_hash, role, filer_id, provinces, label, \
                     created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (token_id) DO UPDATE SET token_hash = excluded.token_hash, \
                     role = excluded.role, filer_id = excluded.filer_id, \
                     provinces = excluded.provinces, label = excluded.label, \
                     created_at = excluded.created_at, expires_at = excluded.expires_at, \
                     revoked_at = NULL")
                    .bind(id).bind(&hash).bind(role.as_str())
                    .bind(filer.map(|f| f.to_string()))
                    .bind(provinces.map(|p| p.join(",")))
                    .bind(&label).bind(crate::timestamp(at))
                    .bind(expires_at.map(crate::timestamp))
                    .execute(c).await.map(|_| ()))?;
            }
            TokenEvent::TokenRevoked { at } => {
                on_conn!(conn, c, DB => sqlx::query(
                    "UPDATE tokens SET revoked_at = $2 WHERE token_id = $1")
                    .bind(id).bind(crate::timestamp(at))
                    .execute(c).await.map(|_| ()))?;
            }
        }
    }
    Ok(())
}
