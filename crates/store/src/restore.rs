//! After a `pg_dump` is restored into another PostgreSQL cluster: re-stamping the event log's
//! commit order (docs/operations.md, "Restoring into a new cluster").
//!
//! The projector orders events by `(txid, position)`, `txid` being the id of the writing
//! transaction, and only reads events whose transaction is older than the oldest one still
//! running. Those ids belong to the cluster that wrote them: restored into a cluster whose
//! transaction counter is lower, the old events look like transactions from the future
//! (never older than the oldest running one, so never projected), and new events sort
//! before them (behind the restored checkpoint, so skipped). [`restamp`] gives every
//! restored event `txid` 0, renumbers `position` in the old commit order, moves each
//! checkpoint to the same event, and resets the `position` sequence: old events then come
//! first in the same order, and new ones after them.

use crate::{Db, StoreError};

/// Re-stamps the commit order of the events written in another cluster (see the module
/// docs); returns how many events it re-stamped: 0, changing nothing, when every event's
/// transaction id is below this cluster's counter (a restore into the same cluster, or a
/// second run). Run it with the service stopped: it locks the event log meanwhile.
pub async fn restamp(db: &Db) -> Result<u64, StoreError> {
    let Db::Postgres(pool) = db else {
        return Err(StoreError::Invalid(
            "restamp is for PostgreSQL: an SQLite file keeps its own commit order".into(),
        ));
    };
    let mut tx = pool.begin().await?;
    sqlx::query("LOCK TABLE events, projector_checkpoints IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let (foreign,): (bool,) = sqlx::query_as(
        "SELECT coalesce(max(txid), 0) >= pg_current_xact_id()::text::bigint FROM events",
    )
    .fetch_one(&mut *tx)
    .await?;
    if !foreign {
        return Ok(0);
    }
    // Events are immutable (a trigger refuses updates); this one rewrite of their order
    // columns, in this transaction, is the exception.
    for statement in [
        "ALTER TABLE events DISABLE TRIGGER events_no_update",
        "CREATE TEMPORARY TABLE restamp ON COMMIT DROP AS \
         SELECT txid, position AS old, row_number() OVER (ORDER BY txid, position) AS new \
         FROM events",
        // Through negative positions, so the unique (txid, position) never collides midway.
        "UPDATE events e SET txid = 0, position = -r.new FROM restamp r WHERE e.position = r.old",
        "UPDATE events SET position = -position WHERE position < 0",
        "UPDATE projector_checkpoints c SET position = coalesce( \
             (SELECT max(r.new) FROM restamp r WHERE (r.txid, r.old) <= (c.txid, c.position)), 0), \
         txid = 0",
        "SELECT setval(pg_get_serial_sequence('events', 'position'), \
                       greatest((SELECT max(position) FROM events), 1))",
        "ALTER TABLE events ENABLE TRIGGER events_no_update",
    ] {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM restamp")
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(u64::try_from(n).unwrap_or(0))
}
