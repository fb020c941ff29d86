//! The checkpointed, exactly-once projector (DESIGN.md "Storage").
//!
//! It tails the event log in commit order from a stored checkpoint and applies each event to
//! the read models, updating the checkpoint in the same transaction: a crash anywhere loses
//! nothing and applies nothing twice.
//!
//! - PostgreSQL: events are read in `(txid, position)` order, and only from transactions older
//!   than the oldest one still running (`pg_snapshot_xmin`). A `position` alone is handed out
//!   at insert, not at commit, so a slow transaction could commit a lower position after a
//!   higher one was projected; gating on xmin means that can never be skipped. The checkpoint
//!   row is locked `FOR UPDATE`, so concurrent projectors (a replica, the CLI) serialize.
//! - SQLite: a single writer, so `event_log.position` order is commit order; the batch runs
//!   in a `BEGIN IMMEDIATE` transaction, which also serializes projectors.

use std::sync::Arc;
use std::time::Duration;

use redtape_domain::procedure_terms::{ProcedureEvent, ProcedureTimeline};
use redtape_domain::submission::{Status, Submission};
use tokio::sync::{watch, Notify};

use crate::cells::{self, Dirty, Methodology};
use crate::db::Db;
use crate::observations::{self, Change};
use crate::StoreError;

/// Name of the checkpoint row of the observations projection.
pub const OBSERVATIONS: &str = "observations";

/// The built-in methodology configuration, built once. The embedded calendar is checked by
/// the index crate's tests, so the fallback (no holidays) is never expected to run; it is
/// logged loudly if it does.
fn default_methodology() -> Arc<Methodology> {
    static DEFAULT: std::sync::OnceLock<Arc<Methodology>> = std::sync::OnceLock::new();
    DEFAULT
        .get_or_init(|| {
            Arc::new(Methodology::vietnam().unwrap_or_else(|e| {
                tracing::error!(error = %e, "built-in calendar unreadable; using weekdays only");
                Methodology {
                    calendar: redtape_index::calendar::WorkingCalendar::new(
                        Default::default(),
                        chrono::NaiveDate::MIN,
                        chrono::NaiveDate::MIN,
                    ),
                    tariffs: redtape_index::tariff::HourlyTariffs::vietnam_minimum_wage(),
                    k: redtape_index::cell::DEFAULT_K,
                }
            }))
        })
        .clone()
}

/// How long the live projector waits after a wake before projecting (see `run`).
const DEBOUNCE: Duration = Duration::from_millis(10);

/// How long a catch-up waits for events held back by another transaction.
const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);

/// Events per transaction: large enough to amortise commits during a rebuild, small enough
/// that a live batch holds the SQLite write lock only briefly.
const BATCH: i64 = 500;

/// Events per transaction when catching up on a backlog (at start, after `demo-data`): each
/// batch recomputes every cell it touched, and a backlog touches most cells in every batch,
/// so fewer, larger batches save most of that work. Nothing waits on the write lock then.
const CATCH_UP_BATCH: i64 = 10_000;

/// A row of the event log in commit order.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct LoggedEvent {
    pub txid: i64,
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub payload: String,
}

/// Events read per query during a rebuild.
const REPLAY_PAGE: i64 = 10_000;

/// Observation rows per multi-row insert during a rebuild (24 binds each: 24,000 binds, below
/// SQLite's 32,766 and PostgreSQL's 65,535).
const ROWS_PER_INSERT: usize = 1000;

/// The observation columns of a multi-row insert, in `push_values` order.
const INSERT_OBSERVATIONS: &str = "INSERT INTO observations (submission_id, status, filer_id, \
    kind, procedure_code, geography, province_code, province_vn34, year, submitted_on, \
    completed_on, experienced_on, outcome, channel, categories, official_fees, \
    unofficial_payments, external_services, staff_hours, visits, amendments, filed_at, \
    updated_at, last_sequence) ";

const PG_LOCK: &str = "SELECT txid, position FROM projector_checkpoints WHERE name = $1 FOR UPDATE";
const LITE_LOCK: &str = "SELECT txid, position FROM projector_checkpoints WHERE name = $1";
const SAVE: &str = "UPDATE projector_checkpoints SET txid = $2, position = $3 WHERE name = $1";

const PG_NEXT: &str = "SELECT txid, position, aggregate_type, aggregate_id, sequence, \
    event_type, payload::text AS payload FROM events \
    WHERE (txid, position) > ($1, $2) \
      AND txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
    ORDER BY txid, position LIMIT $3";

const LITE_NEXT: &str = "SELECT 0 AS txid, l.position AS position, e.aggregate_type, \
    e.aggregate_id, e.sequence, e.event_type, e.payload FROM event_log l \
    JOIN events e ON e.aggregate_type = l.aggregate_type AND e.aggregate_id = l.aggregate_id \
     AND e.sequence = l.sequence \
    WHERE l.position > $2 AND $1 = 0 ORDER BY l.position LIMIT $3";

/// Generates the per-backend functions from one body: the connection types differ, the SQL
/// and the logic do not.
macro_rules! backend {
    ($module:ident, $conn:ty, $database:ty, $lock:expr, $next:expr, $deferred_indexes:expr) => {
        mod $module {
            use super::*;

            /// Applies up to `limit` events after `checkpoint`; returns the new checkpoint
            /// and how many events were applied.
            pub(super) async fn step(
                conn: &mut $conn,
                checkpoint: (i64, i64),
                limit: i64,
                dirty: &mut Dirty,
            ) -> Result<((i64, i64), usize, bool), StoreError> {
                let events: Vec<LoggedEvent> = sqlx::query_as($next)
                    .bind(checkpoint.0)
                    .bind(checkpoint.1)
                    .bind(limit)
                    .fetch_all(&mut *conn)
                    .await?;
                let mut last = checkpoint;
                let mut procedures = false;
                for event in &events {
                    if event.aggregate_type == <ProcedureTimeline as cqrs_es::Aggregate>::TYPE {
                        apply_procedure(conn, event).await?;
                        procedures = true;
                        // New terms can change the on-time verdict of every observation of
                        // the procedure.
                        let rows: Vec<(String, String, String, i32)> = sqlx::query_as(
                            "SELECT DISTINCT geography, province_code, province_vn34, year \
                             FROM observations WHERE procedure_code = $1",
                        )
                        .bind(&event.aggregate_id)
                        .fetch_all(&mut *conn)
                        .await?;
                        for (g, p, p34, y) in rows {
                            dirty.extend(cells::keys(&g, &p, &p34, y, &event.aggregate_id));
                        }
                    } else {
                        cell_keys_of(conn, &event.aggregate_id, dirty).await?;
                        apply(conn, event).await?;
                        cell_keys_of(conn, &event.aggregate_id, dirty).await?;
                    }
                    last = (event.txid, event.position);
                }
                Ok((last, events.len(), procedures))
            }

            /// Adds the cells the observation row currently belongs to (none if absent).
            async fn cell_keys_of(conn: &mut $conn, id: &str, dirty: &mut Dirty) -> Result<(), StoreError> {
                let row: Option<(String, String, String, i32, String)> = sqlx::query_as(
                    "SELECT geography, province_code, province_vn34, year, procedure_code \
                     FROM observations WHERE submission_id = $1",
                )
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
                if let Some((g, p, p34, y, code)) = row {
                    dirty.extend(cells::keys(&g, &p, &p34, y, &code));
                }
                Ok(())
            }

            /// Recomputes the given cells from their observations.
            pub(super) async fn recompute(
                conn: &mut $conn,
                keys: &Dirty,
                methodology: &Methodology,
            ) -> Result<(), StoreError> {
                let mut timelines: std::collections::HashMap<String, Option<ProcedureTimeline>> =
                    Default::default();
                let mut computed = Vec::with_capacity(keys.len());
                for key in keys {
                    if !timelines.contains_key(&key.2) {
                        let json: Option<(String,)> =
                            sqlx::query_as("SELECT timeline FROM procedures WHERE code = $1")
                                .bind(&key.2)
                                .fetch_optional(&mut *conn)
                                .await?;
                        let timeline = match json {
                            Some((text,)) => Some(serde_json::from_str(&text).map_err(|e| {
                                StoreError::Corrupt(format!("procedure {}: {e}", key.2))
                            })?),
                            None => None,
                        };
                        timelines.insert(key.2.clone(), timeline);
                    }
                    let select = if key.0 == "vn-63" { cells::SELECT_VN63 } else { cells::SELECT_VN34 };
                    let rows: Vec<cells::CellRow> = sqlx::query_as(select)
                        .bind(key.1)
                        .bind(&key.2)
                        .bind(&key.3)
                        .fetch_all(&mut *conn)
                        .await?;
                    if rows.is_empty() {
                        sqlx::query(cells::DELETE)
                            .bind(&key.0).bind(key.1).bind(&key.2).bind(&key.3)
                            .execute(&mut *conn)
                            .await?;
                        continue;
                    }
                    let timeline = timelines.get(&key.2).and_then(Option::as_ref);
                    computed.push((key.clone(), cells::compute(key, &rows, timeline, methodology)));
                }
                write_cells(conn, &computed).await?;
                // A changed cell can change the CBI of every province of its group.
                let groups: std::collections::BTreeSet<cells::GroupKey> = keys.iter().map(cells::group_of).collect();
                for group in &groups {
                    let rows: Vec<cells::GroupRow> = sqlx::query_as(cells::SELECT_GROUP)
                        .bind(&group.0)
                        .bind(group.1)
                        .bind(&group.2)
                        .fetch_all(&mut *conn)
                        .await?;
                    write_cbi(conn, group, &rows).await?;
                }
                Ok(())
            }

            /// Replaces a group's CBI rows with those computed from `rows`.
            async fn write_cbi(
                conn: &mut $conn,
                group: &cells::GroupKey,
                rows: &[cells::GroupRow],
            ) -> Result<(), StoreError> {
                sqlx::query(cells::DELETE_CBI)
                    .bind(&group.0)
                    .bind(group.1)
                    .bind(&group.2)
                    .execute(&mut *conn)
                    .await?;
                let ranked = cells::rank_group(rows);
                // 6 binds per row, and a group holds at most 63 provinces.
                if !ranked.is_empty() {
                    let mut insert = sqlx::QueryBuilder::<$database>::new(cells::INSERT_CBI);
                    insert.push_values(&ranked, |mut row, (province, cbi, rank)| {
                        row.push_bind(&group.0)
                            .push_bind(group.1)
                            .push_bind(&group.2)
                            .push_bind(province)
                            .push_bind(*cbi)
                            .push_bind(*rank);
                    });
                    insert.build().execute(&mut *conn).await?;
                }
                Ok(())
            }

            /// Inserts or replaces cells, many per statement.
            async fn write_cells(
                conn: &mut $conn,
                computed: &[(cells::CellKey, redtape_index::cell::CellStats)],
            ) -> Result<(), StoreError> {
                for chunk in computed.chunks(cells::CHUNK) {
                    let mut insert = sqlx::QueryBuilder::<$database>::new(cells::INSERT);
                    insert.push_values(chunk, |mut row, (key, stats)| {
                        cells::bind_cell!(row, key, stats);
                    });
                    insert.push(cells::ON_CONFLICT);
                    insert.build().execute(&mut *conn).await?;
                }
                Ok(())
            }

            /// Replays the whole log into emptied read models (see [`crate::replay`]); the
            /// caller's transaction makes it atomic. Returns the events replayed and the
            /// new checkpoint.
            pub(super) async fn rebuild(
                conn: &mut $conn,
                target: Option<(i64, i64)>,
                methodology: &Methodology,
            ) -> Result<(u64, (i64, i64)), StoreError> {
                let started = std::time::Instant::now();
                sqlx::query_as::<_, (i64, i64)>($lock)
                    .bind(OBSERVATIONS)
                    .fetch_one(&mut *conn)
                    .await?;
                for table in ["observations", "procedures", "index_cells", "index_cbi", "responses"] {
                    sqlx::query(&format!("DELETE FROM {table}"))
                        .execute(&mut *conn)
                        .await?;
                }
                // Secondary indexes of `observations` are dropped and rebuilt after the rows
                // where that blocks nobody new (see DEFERRED_INDEXES_LITE).
                let deferred: Vec<(String, String)> = match $deferred_indexes {
                    Some(sql) => sqlx::query_as(sql).fetch_all(&mut *conn).await?,
                    None => Vec::new(),
                };
                for (name, _) in &deferred {
                    sqlx::query(&format!("DROP INDEX {name}")).execute(&mut *conn).await?;
                }
                tracing::debug!(elapsed = ?started.elapsed(), "read models emptied");
                let mut replay = crate::replay::Replay::default();
                let mut checkpoint = (0, 0);
                let mut applied = 0u64;
                loop {
                    // Streamed, folded row by row: the fold keeps pace with SQLite's worker
                    // thread instead of waking it for every row of a collected page.
                    let mut events = sqlx::query_as::<_, LoggedEvent>($next)
                        .bind(checkpoint.0)
                        .bind(checkpoint.1)
                        .bind(REPLAY_PAGE)
                        .fetch(&mut *conn);
                    let mut n = 0usize;
                    while let Some(event) = futures::TryStreamExt::try_next(&mut events).await? {
                        replay.apply(&event)?;
                        checkpoint = (event.txid, event.position);
                        n += 1;
                    }
                    drop(events);
                    applied += n as u64;
                    if n == 0 {
                        let reached = target.is_none_or(|t| checkpoint >= t);
                        if reached || started.elapsed() > DEFAULT_DEADLINE {
                            break;
                        }
                        // Committed but held back by an older running transaction.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                tracing::debug!(applied, elapsed = ?started.elapsed(), "replayed in memory");
                // The cells are computed on other threads while the rows are written.
                let replay = std::sync::Arc::new(replay);
                let cells = {
                    let (replay, methodology) = (replay.clone(), methodology.clone());
                    tokio::task::spawn_blocking(move || replay.cells(&methodology))
                };

                // In key order: each insert appends to the primary key's B-tree instead of
                // landing on a random page of it (measured on 1M rows, docs/benchmarks.md).
                let mut rows: Vec<_> = replay.observations.iter().collect();
                rows.sort_unstable_by(|a, b| a.0.cmp(b.0));
                for chunk in rows.chunks(ROWS_PER_INSERT) {
                    let mut insert = sqlx::QueryBuilder::<$database>::new(INSERT_OBSERVATIONS);
                    insert.push_values(chunk, |mut row, (id, o)| {
                        row.push_bind(id.as_str())
                            .push_bind(o.status)
                            .push_bind(o.filer.as_str());
                        crate::bind_report!(row, o.columns, push_bind)
                            .push_bind(o.amendments)
                            .push_bind(o.filed_at.as_str())
                            .push_bind(o.updated_at.as_str())
                            .push_bind(o.last_sequence);
                    });
                    insert.build().execute(&mut *conn).await?;
                }
                for (_, create) in &deferred {
                    sqlx::query(create).execute(&mut *conn).await?;
                }
                for (code, (timeline, sequence)) in &replay.procedures {
                    write_procedure(conn, code, timeline, *sequence).await?;
                }
                for r in &replay.responses {
                    sqlx::query(observations::INSERT_RESPONSE)
                        .bind(&r.submission_id)
                        .bind(r.sequence)
                        .bind(&r.agency)
                        .bind(r.status)
                        .bind(&r.posted_at)
                        .execute(&mut *conn)
                        .await?;
                }
                tracing::debug!(elapsed = ?started.elapsed(), "rows written");
                let computed = cells.await.map_err(|e| {
                    StoreError::Corrupt(format!("cell computation failed: {e}"))
                })??;
                write_cells(conn, &computed).await?;
                for (group, rows) in cells::groups_of(&computed) {
                    write_cbi(conn, &group, &rows).await?;
                }
                sqlx::query(SAVE)
                    .bind(OBSERVATIONS)
                    .bind(checkpoint.0)
                    .bind(checkpoint.1)
                    .execute(&mut *conn)
                    .await?;
                tracing::debug!(cells = computed.len(), elapsed = ?started.elapsed(), "cells written");
                Ok((applied, checkpoint))
            }

            /// Folds a Procedure event into the procedure's stored timeline.
            async fn apply_procedure(
                conn: &mut $conn,
                logged: &LoggedEvent,
            ) -> Result<(), StoreError> {
                let event: ProcedureEvent = serde_json::from_str(&logged.payload).map_err(|e| {
                    StoreError::Corrupt(format!(
                        "event {} #{} ({}) does not decode: {e}",
                        logged.aggregate_id, logged.sequence, logged.event_type
                    ))
                })?;
                let stored: Option<(String, i64)> = sqlx::query_as(
                    "SELECT timeline, last_sequence FROM procedures WHERE code = $1",
                )
                .bind(&logged.aggregate_id)
                .fetch_optional(&mut *conn)
                .await?;
                let mut timeline = match &stored {
                    // Applied already (never happens with the checkpoint; cheap to guard).
                    Some((_, seq)) if *seq >= logged.sequence => return Ok(()),
                    Some((json, _)) => {
                        serde_json::from_str::<ProcedureTimeline>(json).map_err(|e| {
                            StoreError::Corrupt(format!("procedure {}: {e}", logged.aggregate_id))
                        })?
                    }
                    None => ProcedureTimeline::default(),
                };
                cqrs_es::Aggregate::apply(&mut timeline, event);
                write_procedure(conn, &logged.aggregate_id, &timeline, logged.sequence).await
            }

            async fn write_procedure(
                conn: &mut $conn,
                code: &str,
                timeline: &ProcedureTimeline,
                sequence: i64,
            ) -> Result<(), StoreError> {
                let json = serde_json::to_string(timeline)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                sqlx::query(
                    "INSERT INTO procedures (code, name_vi, name_en, timeline, last_sequence) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (code) DO UPDATE SET \
                     name_vi = excluded.name_vi, name_en = excluded.name_en, \
                     timeline = excluded.timeline, last_sequence = excluded.last_sequence",
                )
                .bind(code)
                .bind(&timeline.name_vi)
                .bind(&timeline.name_en)
                .bind(json)
                .bind(sequence)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            async fn apply(conn: &mut $conn, logged: &LoggedEvent) -> Result<(), StoreError> {
                if logged.aggregate_type != <Submission as cqrs_es::Aggregate>::TYPE {
                    return Ok(());
                }
                let change = Change::decode(&logged.payload).map_err(|e| {
                    StoreError::Corrupt(format!(
                        "event {} #{} ({}) does not decode: {e}",
                        logged.aggregate_id, logged.sequence, logged.event_type
                    ))
                })?;
                let (id, seq) = (logged.aggregate_id.as_str(), logged.sequence);
                let query = match &change {
                    Change::Insert { filer, columns, at } => {
                        let query = sqlx::query(observations::INSERT)
                            .bind(id)
                            .bind(Status::Received.as_str())
                            .bind(filer);
                        crate::bind_report!(query, columns).bind(at).bind(seq)
                    }
                    Change::Amend { columns, at } => {
                        let query = sqlx::query(observations::AMEND).bind(id);
                        crate::bind_report!(query, columns).bind(at).bind(seq)
                    }
                    Change::Status { status, at } => sqlx::query(observations::SET_STATUS)
                        .bind(id)
                        .bind(*status)
                        .bind(at)
                        .bind(seq),
                    Change::Response { agency, status, at } => {
                        sqlx::query(observations::INSERT_RESPONSE)
                            .bind(id)
                            .bind(seq)
                            .bind(agency)
                            .bind(*status)
                            .bind(at)
                    }
                };
                query.execute(&mut *conn).await?;
                Ok(())
            }
        }
    };
}

/// The secondary indexes of `observations` (name, CREATE statement) as the migrations made
/// them. On SQLite a rebuild already holds the only write lock and readers keep their WAL
/// snapshot, so dropping the indexes for the bulk insert and building each once afterwards
/// costs nobody anything (measured: docs/benchmarks.md). On PostgreSQL `DROP INDEX` would lock
/// readers out of the table until the rebuild commits, so the indexes stay.
const DEFERRED_INDEXES_LITE: Option<&str> = Some(
    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'observations' \
     AND sql IS NOT NULL ORDER BY name",
);

backend!(
    pg,
    sqlx::PgConnection,
    sqlx::Postgres,
    PG_LOCK,
    PG_NEXT,
    None::<&str>
);
backend!(
    lite,
    sqlx::SqliteConnection,
    sqlx::Sqlite,
    LITE_LOCK,
    LITE_NEXT,
    DEFERRED_INDEXES_LITE
);

/// Where the observations projection stands: `(txid, position)` of the last event applied.
/// Every read model moves only when it does, so it versions the live data (ETags).
pub async fn checkpoint(db: &Db) -> Result<(i64, i64), StoreError> {
    Ok(crate::on_pool!(db, pool =>
        sqlx::query_as("SELECT txid, position FROM projector_checkpoints WHERE name = $1")
            .bind(OBSERVATIONS)
            .fetch_one(pool).await)?)
}

/// How far the projector is behind the head of the event log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lag {
    /// Committed events not applied yet.
    pub events: i64,
    /// Age of the oldest of them, in seconds (0 when there is none).
    pub seconds: f64,
}

/// Reads the projector's lag from the store, so it is right whichever process projects.
pub async fn lag(db: &Db) -> Result<Lag, StoreError> {
    let (txid, position) = checkpoint(db).await?;
    let (events, seconds): (i64, Option<f64>) = match db {
        Db::Postgres(pool) => {
            sqlx::query_as(
                "SELECT count(*), \
                 EXTRACT(EPOCH FROM clock_timestamp() - min(recorded_at))::float8 \
                 FROM events WHERE (txid, position) > ($1, $2)",
            )
            .bind(txid)
            .bind(position)
            .fetch_one(pool)
            .await?
        }
        Db::Sqlite(pool) => {
            sqlx::query_as(
                "SELECT count(*), unixepoch('subsec') - min(recorded_at) \
                 FROM event_log WHERE position > $1",
            )
            .bind(position)
            .fetch_one(pool)
            .await?
        }
    };
    Ok(Lag {
        events,
        seconds: if events == 0 { 0.0 } else { seconds.unwrap_or(0.0).max(0.0) },
    })
}

/// Maintains the read models from the event log.
#[derive(Clone)]
pub struct Projector {
    db: Db,
    /// Reloaded after a batch that changed a procedure.
    catalogue: Option<Arc<crate::Catalogue>>,
    methodology: Arc<Methodology>,
}

impl Projector {
    /// A projector with the default methodology configuration.
    pub fn new(db: Db) -> Self {
        Self {
            db,
            catalogue: None,
            methodology: default_methodology(),
        }
    }

    /// Uses this methodology configuration (calendar, tariffs, k).
    pub fn with_methodology(mut self, methodology: Arc<Methodology>) -> Self {
        self.methodology = methodology;
        self
    }

    /// The methodology configuration in use (its disclosure threshold also applies to other
    /// published statistics).
    pub fn methodology(&self) -> &Methodology {
        &self.methodology
    }

    /// Keeps `catalogue` in step with the procedure events it projects.
    pub fn with_catalogue(mut self, catalogue: Arc<crate::Catalogue>) -> Self {
        self.catalogue = Some(catalogue);
        self
    }

    /// Projects one batch in one transaction; returns how many events it applied.
    pub async fn run_batch(&self) -> Result<usize, StoreError> {
        Ok(self.transaction(BATCH).await?.0)
    }

    /// The commit-order key of the newest event committed so far, if any.
    async fn target(&self) -> Result<Option<(i64, i64)>, StoreError> {
        let row: Option<(i64, i64)> = match &self.db {
            Db::Postgres(pool) => {
                sqlx::query_as(
                    "SELECT txid, position FROM events ORDER BY txid DESC, position DESC LIMIT 1",
                )
                .fetch_optional(pool)
                .await?
            }
            Db::Sqlite(pool) => {
                sqlx::query_as("SELECT 0, position FROM event_log ORDER BY position DESC LIMIT 1")
                    .fetch_optional(pool)
                    .await?
            }
        };
        Ok(row)
    }

    /// Projects every event committed before the call (and any that come meanwhile); returns
    /// how many events were applied.
    ///
    /// On PostgreSQL an event can be committed yet not projectable for a moment: a
    /// transaction that started earlier (in any database of the cluster) is still running,
    /// and the xmin gate waits for it so nothing is skipped. So this does not stop at the
    /// first empty batch; it waits, briefly polling, until the checkpoint has passed the
    /// newest event seen at the start, or `deadline` elapses (then the live loop carries on).
    pub async fn catch_up(&self) -> Result<u64, StoreError> {
        self.catch_up_within(DEFAULT_DEADLINE).await
    }

    pub async fn catch_up_within(&self, deadline: Duration) -> Result<u64, StoreError> {
        Ok(self.catch_up_reporting(deadline).await?.0)
    }

    /// Catches up like [`Self::catch_up_within`] and tells whether every event committed
    /// before the call is now projected, for readers that must see a settled state (an
    /// annual release freezes the cells) rather than a recent one.
    pub async fn settle(&self, deadline: Duration) -> Result<bool, StoreError> {
        let reached = self.catch_up_reporting(deadline).await?.1;
        if let Some(catalogue) = &self.catalogue {
            // Another projector may have applied a procedure event and not reloaded yet.
            catalogue.refresh(&self.db).await?;
        }
        Ok(reached)
    }

    async fn catch_up_reporting(&self, deadline: Duration) -> Result<(u64, bool), StoreError> {
        let started = std::time::Instant::now();
        let target = self.target().await?;
        let mut total = 0u64;
        loop {
            let (n, checkpoint) = self.transaction(CATCH_UP_BATCH).await?;
            total += n as u64;
            let reached = target.is_none_or(|t| checkpoint >= t);
            if n == 0 && reached {
                return Ok((total, true));
            }
            if n == 0 {
                if started.elapsed() > deadline {
                    tracing::warn!(
                        ?target,
                        ?checkpoint,
                        "projection is held back by a long-running transaction"
                    );
                    return Ok((total, false));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }

    /// Replays the whole log into empty read models in ONE transaction, so readers see the
    /// old tables until the new ones are complete (an atomic swap), and the live projector
    /// waits on the checkpoint lock meanwhile. Every event committed before the call is
    /// included. Returns the number of events replayed.
    pub async fn rebuild(&self) -> Result<u64, StoreError> {
        let target = self.target().await?;
        let applied = match &self.db {
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let (n, _) = pg::rebuild(&mut tx, target, &self.methodology).await?;
                tx.commit().await?;
                n
            }
            Db::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let (n, _) = lite::rebuild(&mut tx, target, &self.methodology).await?;
                tx.commit().await?;
                n
            }
        };
        if let Some(catalogue) = &self.catalogue {
            catalogue.reload(&self.db).await?;
        }
        Ok(applied)
    }

    /// Projects one batch in one transaction, recomputing the cells it touched.
    async fn transaction(&self, limit: i64) -> Result<(usize, (i64, i64)), StoreError> {
        // The two arms differ only in how the transaction starts and locks the checkpoint.
        macro_rules! body {
            ($tx:ident, $lock:expr, $module:ident) => {{
                let checkpoint: (i64, i64) = sqlx::query_as($lock)
                    .bind(OBSERVATIONS)
                    .fetch_one(&mut *$tx)
                    .await?;
                let mut dirty = Dirty::new();
                let (checkpoint, applied, procedures) =
                    $module::step(&mut $tx, checkpoint, limit, &mut dirty).await?;
                $module::recompute(&mut $tx, &dirty, &self.methodology).await?;
                if applied > 0 {
                    sqlx::query(SAVE)
                        .bind(OBSERVATIONS)
                        .bind(checkpoint.0)
                        .bind(checkpoint.1)
                        .execute(&mut *$tx)
                        .await?;
                }
                $tx.commit().await?;
                if procedures {
                    if let Some(catalogue) = &self.catalogue {
                        catalogue.reload(&self.db).await?;
                    }
                }
                Ok((applied, checkpoint))
            }};
        }
        match &self.db {
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                body!(tx, PG_LOCK, pg)
            }
            Db::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                body!(tx, LITE_LOCK, lite)
            }
        }
    }

    /// Runs until `shutdown` turns true: catches up whenever woken (after a local commit, or a
    /// PostgreSQL NOTIFY from another process) and at least every `poll`.
    pub async fn run(self, wake: Arc<Notify>, poll: Duration, mut shutdown: watch::Receiver<bool>) {
        if let Db::Postgres(pool) = &self.db {
            spawn_listener(pool.clone(), wake.clone(), shutdown.clone());
        }
        loop {
            // Batches until one comes back short: no target query and no extra empty
            // transaction per wake, which matters under load. Events held back by the
            // PostgreSQL xmin gate are picked up at the next wake or poll.
            loop {
                match self.run_batch().await {
                    Ok(n) if n as i64 == BATCH => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::error!(error = %e, "projector batch failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        break;
                    }
                }
            }
            // Another process may have projected procedure events (then this projector never
            // saw them): follow the read model, not our own batches.
            if let Some(catalogue) = &self.catalogue {
                if let Err(e) = catalogue.refresh(&self.db).await {
                    tracing::warn!(error = %e, "catalogue refresh failed; retrying");
                }
            }
            tokio::select! {
                _ = wake.notified() => {
                    // Let a burst of commits accumulate: one transaction for many events
                    // instead of one per event. Read models still follow within milliseconds.
                    tokio::time::sleep(DEBOUNCE).await;
                }
                _ = tokio::time::sleep(poll) => {}
                _ = shutdown.changed() => {
                    // One last pass so nothing committed before shutdown waits for a restart.
                    // Pooled connections first opened on an HTTP worker's runtime die with
                    // it when the server stops; the pool replaces them, so retry briefly.
                    for _ in 0..3 {
                        match self.catch_up_within(Duration::from_secs(5)).await {
                            Ok(_) => return,
                            Err(e) => tracing::debug!(error = %e, "final projection pass retried"),
                        }
                    }
                    tracing::warn!("final projection pass failed; the next start catches up");
                    return;
                }
            }
        }
    }
}

/// Forwards PostgreSQL notifications of new events to the projector.
fn spawn_listener(pool: sqlx::PgPool, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
    tokio::spawn(async move {
        loop {
            let listener = async {
                let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
                listener.listen("redtape_events").await?;
                loop {
                    listener.recv().await?;
                    wake.notify_one();
                }
                #[allow(unreachable_code)]
                Ok::<(), sqlx::Error>(())
            };
            tokio::select! {
                result = listener => {
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "event listener lost; polling until it reconnects");
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                _ = shutdown.changed() => return,
            }
        }
    });
}
