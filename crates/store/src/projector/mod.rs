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
//!
//! The pieces, by job:
//! - [`sql`]: every statement, written once for both stores;
//! - [`live`]: one batch of events applied to rows and cells;
//! - [`cell_state`]: each cell's running statistics in memory, so a batch costs the same
//!   whatever the cells hold;
//! - [`rebuild`] and [`replay`]: the whole log replayed into emptied read models, and on
//!   PostgreSQL [`swap`]: observations copied into a fresh table swapped in at commit;
//! - [`run`]: the loop that projects whenever woken, and refreshes intervals when idle;
//! - [`leader`]: which replica runs that loop (`--projector on|off|auto`).
//!
//! This file (about 530 lines) keeps the [`Projector`]'s transactions: where each one begins,
//! what it locks and when it commits, on both stores. They are read together to check that
//! no batch can interleave with another or with a rebuild, so they stay in one place.

mod cell_state;
pub mod leader;
mod live;
mod rebuild;
mod replay;
mod run;
pub(crate) mod sql;
mod swap;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use crate::cells::Methodology;
use crate::db::Db;
use crate::StoreError;
use cell_state::CellState;
use sql::Conn;

pub use sql::OBSERVATIONS;

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

/// Batches in a row that may miss their snapshot (another process projected meanwhile)
/// before the projector reads inside its write transaction instead.
const MAX_MISSES: u32 = 3;

/// How long a catch-up waits for events held back by another transaction.
const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);

/// Events per transaction: large enough to amortise commits, small enough that a live batch
/// holds the SQLite write lock only briefly.
const BATCH: i64 = 500;

/// Events per transaction when catching up on a backlog (at start, after `demo-data`): fewer
/// commits, and nothing waits on the write lock then.
const CATCH_UP_BATCH: i64 = 10_000;

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
        seconds: if events == 0 {
            0.0
        } else {
            seconds.unwrap_or(0.0).max(0.0)
        },
    })
}

/// Maintains the read models from the event log.
#[derive(Clone)]
pub struct Projector {
    db: Db,
    /// Reloaded after a batch that changed a procedure.
    catalogue: Option<Arc<crate::Catalogue>>,
    methodology: Arc<Methodology>,
    /// Shared by the clones of one projector (the run loop, a release's settle), which take
    /// turns: a batch holds it from its first read to its commit.
    cells: Arc<Mutex<CellState>>,
    /// The runtime the projector was made on, where [`Self::settle`] does its work.
    runtime: Option<tokio::runtime::Handle>,
    /// Whether this process projects now (see [`leader`]); a projector made with
    /// [`Self::new`] does until its [`Self::supervise`] says otherwise.
    projects: Arc<std::sync::atomic::AtomicBool>,
}

/// What [`Projector::transaction`] did.
#[derive(Debug, Clone, Copy)]
struct Pass {
    /// Events applied, in all its transactions.
    events: usize,
    /// The checkpoint after them.
    checkpoint: (i64, i64),
    /// Its last batch came back short: the log was drained when it read it (and with
    /// `Intervals::All`, every interval was refreshed).
    drained: bool,
}

/// What a transaction should do besides applying events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Intervals {
    /// Refresh the intervals that have waited [`cell_state::INTERVAL_REFRESH`].
    WhenDue,
    /// When the batch drains the log, refresh every interval it publishes and every one
    /// waiting (the projector is idle, or a reader needs exact figures).
    All,
}

impl Projector {
    /// A projector with the default methodology configuration.
    pub fn new(db: Db) -> Self {
        Self {
            db,
            catalogue: None,
            methodology: default_methodology(),
            cells: Default::default(),
            runtime: tokio::runtime::Handle::try_current().ok(),
            projects: Arc::new(std::sync::atomic::AtomicBool::new(true)),
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
        Ok(self.transaction(BATCH, Intervals::WhenDue).await?.events)
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

    /// Projects every event committed before the call (and any that come meanwhile), with
    /// every bootstrap interval up to date; returns how many events were applied.
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
    ///
    /// The work runs on the projector's own runtime, not the caller's: an HTTP worker is a
    /// single thread, and a batch that prepares a reformed procedure reads and measures all
    /// its observations (0.9 s for 340,000 on this machine), which would stall every other
    /// request on that worker. It also runs to the end if the caller goes away.
    pub async fn settle(&self, deadline: Duration) -> Result<bool, StoreError> {
        if !self.projects() {
            // Another replica projects: its checkpoint tells when the effect is in.
            let reached = self.wait_for_leader(deadline).await?;
            if let Some(catalogue) = &self.catalogue {
                catalogue.refresh(&self.db).await?;
            }
            return Ok(reached);
        }
        let this = self.clone();
        let work = async move {
            let reached = this.catch_up_reporting(deadline).await?.1;
            if let Some(catalogue) = &this.catalogue {
                // Another projector may have applied a procedure event and not reloaded yet.
                catalogue.refresh(&this.db).await?;
            }
            Ok(reached)
        };
        match &self.runtime {
            Some(runtime) => runtime.spawn(work).await.map_err(|e| {
                StoreError::Io(std::io::Error::other(format!(
                    "projection task failed: {e}"
                )))
            })?,
            None => work.await,
        }
    }

    async fn catch_up_reporting(&self, deadline: Duration) -> Result<(u64, bool), StoreError> {
        let started = std::time::Instant::now();
        let target = self.target().await?;
        let mut total = 0u64;
        loop {
            let pass = self.transaction(CATCH_UP_BATCH, Intervals::All).await?;
            total += pass.events as u64;
            let reached = target.is_none_or(|t| pass.checkpoint >= t);
            // A drained pass with `Intervals::All` left every interval exact; under a steady
            // stream of new events, waiting for an empty one could take indefinitely.
            if pass.drained && reached {
                return Ok((total, true));
            }
            if pass.events == 0 {
                if started.elapsed() > deadline {
                    tracing::warn!(
                        ?target,
                        checkpoint = ?pass.checkpoint,
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
        let mut cells = self.cells.lock().await;
        cells.invalidate();
        let (applied, state) = match &self.db {
            Db::Postgres(pool) => {
                let mut tx = crate::db::begin_pg(pool).await?;
                let done =
                    rebuild::rebuild(&mut Conn::Pg(&mut tx), target, &self.methodology).await?;
                tx.commit().await?;
                done
            }
            Db::Sqlite(pool) => {
                let cache = |pages: &str| format!("PRAGMA cache_size = {pages}");
                let mut tx = crate::db::begin_lite(pool).await?;
                sqlx::query(&cache(crate::db::SQLITE_REBUILD_CACHE_PAGES))
                    .execute(&mut *tx)
                    .await?;
                let done =
                    rebuild::rebuild(&mut Conn::Lite(&mut tx), target, &self.methodology).await;
                let done = match done {
                    Ok(done) => tx.commit().await.map(|()| done).map_err(Into::into),
                    Err(e) => Err(e),
                };
                // The pool's one connection goes back to its usual cache, whatever happened.
                sqlx::query(&cache(crate::db::SQLITE_CACHE_PAGES))
                    .execute(pool)
                    .await?;
                done?
            }
        };
        *cells = state;
        drop(cells);
        if let Some(catalogue) = &self.catalogue {
            catalogue.reload(&self.db).await?;
        }
        Ok(applied)
    }

    /// Recomputes every cell when some were stored under another methodology version: the
    /// first start after an upgrade (1.0 to 1.1 adds national and breakdown cells, and
    /// secondary suppression may hide cells 1.0 published) replays the log once, like
    /// `redtape rebuild`. Published releases keep their own documents and do not move.
    /// Returns whether it rebuilt: false, after one cheap query, on every other start.
    pub async fn upgrade_methodology(&self) -> Result<bool, StoreError> {
        let older: Option<(String,)> = crate::on_pool!(&self.db, pool =>
            sqlx::query_as("SELECT methodology_version FROM index_cells \
                            WHERE methodology_version <> $1 LIMIT 1")
                .bind(redtape_index::METHODOLOGY_VERSION)
                .fetch_optional(pool).await)?;
        let Some((from,)) = older else {
            return Ok(false);
        };
        let started = std::time::Instant::now();
        let events = self.rebuild().await?;
        tracing::info!(
            from,
            to = redtape_index::METHODOLOGY_VERSION,
            events,
            elapsed = ?started.elapsed(),
            "cells recomputed under the new methodology version"
        );
        Ok(true)
    }

    /// Gives the CBI rows written before migration 0011 their scaled indicators, recomputed
    /// from the stored cells of their group (what the projector would have written), under
    /// the checkpoint lock so no batch interleaves. Returns the number of groups filled: 0,
    /// after one cheap query, on every start but the first after the upgrade.
    pub async fn fill_missing_scores(&self) -> Result<usize, StoreError> {
        async fn fill(conn: &mut Conn<'_>) -> Result<usize, StoreError> {
            sql::lock_checkpoint(conn).await?;
            let groups = sql::groups_without_scores(conn).await?;
            for group in &groups {
                let rows = crate::cells::rank_group(&sql::group_rows(conn, group).await?);
                sql::delete_cbi(conn, group, None).await?;
                let rows: Vec<_> = rows.into_iter().map(|r| (group.clone(), r)).collect();
                sql::upsert_cbi(conn, &rows).await?;
            }
            Ok(groups.len())
        }
        let filled = match &self.db {
            Db::Postgres(pool) => {
                let mut tx = crate::db::begin_pg(pool).await?;
                let n = fill(&mut Conn::Pg(&mut tx)).await?;
                tx.commit().await?;
                n
            }
            Db::Sqlite(pool) => {
                let mut tx = crate::db::begin_lite(pool).await?;
                let n = fill(&mut Conn::Lite(&mut tx)).await?;
                tx.commit().await?;
                n
            }
        };
        if filled > 0 {
            // The groups' rows in memory, if any were loaded, are unknown now.
            self.cells.lock().await.invalidate();
            tracing::info!(
                groups = filled,
                "CBI scores filled for rows stored before them"
            );
        }
        Ok(filled)
    }

    /// Projects one batch; returns how many events it applied and the checkpoint after it.
    ///
    /// Work that grows with the data (loading the cell state, reading the observations of a
    /// reformed procedure) is done from a read-only snapshot before the write transaction,
    /// so it never holds the write lock: on SQLite, the one connection filings need. A batch
    /// therefore takes a few transactions when it stops before a reform, or finds that
    /// another process projected since the snapshot; after [`MAX_MISSES`] such misses the
    /// reads are done inside the transaction, which always succeeds.
    async fn transaction(&self, limit: i64, intervals: Intervals) -> Result<Pass, StoreError> {
        let mut cells = self.cells.lock().await;
        let (mut events, mut procedures, mut misses) = (0, false, 0);
        let mut prepared_for = None;
        let pass = loop {
            let inside = misses >= MAX_MISSES;
            if !cells.is_loaded() && !inside {
                if let Err(e) = self.load_from_snapshot(&mut cells).await {
                    tracing::warn!(error = %e, "cell state not loaded from a snapshot");
                    misses = MAX_MISSES;
                }
            }
            let Some(applied) = self.write(&mut cells, limit, intervals, inside).await? else {
                // Another process projected since the snapshot.
                cells.invalidate();
                misses += 1;
                continue;
            };
            cells.set_at(applied.checkpoint);
            events += applied.events;
            procedures |= applied.procedures;
            let Some(reform) = applied.stopped_at else {
                break Pass {
                    events,
                    checkpoint: applied.checkpoint,
                    drained: (applied.events as i64) < limit,
                };
            };
            let key = Some((reform.txid, reform.position));
            if prepared_for == key {
                misses += 1;
            }
            prepared_for = key;
            if let Err(e) = self.prepare_from_snapshot(&mut cells, &reform).await {
                tracing::warn!(error = %e, "reformed procedure not prepared from a snapshot");
                misses += 1;
            }
        };
        drop(cells);
        if procedures {
            if let Some(catalogue) = &self.catalogue {
                catalogue.reload(&self.db).await?;
            }
        }
        Ok(pass)
    }

    /// Loads the cell state from a read-only snapshot, as of the snapshot's checkpoint.
    async fn load_from_snapshot(&self, cells: &mut CellState) -> Result<(), StoreError> {
        let mut snapshot = self.db.snapshot().await?;
        let mut conn = snapshot.conn();
        let checkpoint = sql::read_checkpoint(&mut conn).await?;
        cells.load(&mut conn, checkpoint, &self.methodology).await
    }

    async fn prepare_from_snapshot(
        &self,
        cells: &mut CellState,
        reform: &sql::LoggedEvent,
    ) -> Result<(), StoreError> {
        let mut snapshot = self.db.snapshot().await?;
        cells
            .prepare_reform(&mut snapshot.conn(), reform, &self.methodology)
            .await
    }

    /// One write transaction of [`Self::transaction`]: `None` (rolled back) when the cell
    /// state does not reflect the checkpoint and may not be loaded `inside` it.
    async fn write(
        &self,
        cells: &mut CellState,
        limit: i64,
        intervals: Intervals,
        inside: bool,
    ) -> Result<Option<live::Applied>, StoreError> {
        // On an error the tables roll back and the state, marked ahead of them since its
        // first change (`begin_change`), loads again at the next batch.
        let started = std::time::Instant::now();
        let result = self.write_once(cells, limit, intervals, inside).await;
        let m = redtape_metrics::get();
        match &result {
            Ok(Some(applied)) => {
                m.projector_batch_duration
                    .observe(started.elapsed().as_secs_f64());
                m.projector_batch_events.observe(applied.events as f64);
                m.projector_events.inc_by(applied.events as u64);
            }
            Ok(None) => {}
            Err(_) => {
                m.projector_batch_failures.inc();
            }
        }
        result
    }

    /// The transaction of [`Self::write`].
    async fn write_once(
        &self,
        cells: &mut CellState,
        limit: i64,
        intervals: Intervals,
        inside: bool,
    ) -> Result<Option<live::Applied>, StoreError> {
        match &self.db {
            Db::Postgres(pool) => {
                let mut tx = crate::db::begin_pg(pool).await?;
                let applied = self
                    .batch(&mut Conn::Pg(&mut tx), cells, limit, intervals, inside)
                    .await?;
                tx.commit().await?;
                Ok(applied)
            }
            Db::Sqlite(pool) => {
                let mut tx = crate::db::begin_lite(pool).await?;
                let applied = self
                    .batch(&mut Conn::Lite(&mut tx), cells, limit, intervals, inside)
                    .await?;
                tx.commit().await?;
                Ok(applied)
            }
        }
    }

    /// The body of [`Self::write`].
    async fn batch(
        &self,
        conn: &mut Conn<'_>,
        cells: &mut CellState,
        limit: i64,
        intervals: Intervals,
        inside: bool,
    ) -> Result<Option<live::Applied>, StoreError> {
        let checkpoint = sql::lock_checkpoint(conn).await?;
        if !cells.is_at(checkpoint) {
            if !inside {
                return Ok(None);
            }
            cells.load(conn, checkpoint, &self.methodology).await?;
        }
        cells.begin_change();
        let applied = live::step(
            conn,
            cells,
            checkpoint,
            live::Limits {
                events: limit,
                reload_inside: inside,
                all_intervals: intervals == Intervals::All,
            },
            &self.methodology,
        )
        .await?;
        if applied.events > 0 {
            sql::save_checkpoint(conn, applied.checkpoint).await?;
        }
        Ok(Some(applied))
    }

    /// Whether some published intervals wait for a refresh.
    async fn has_due(&self) -> bool {
        self.cells.lock().await.has_due()
    }
}
