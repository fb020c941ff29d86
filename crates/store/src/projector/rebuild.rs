//! `redtape rebuild`: the whole log replayed into emptied read models, in the caller's
//! transaction, so readers see the old tables until the new ones are complete.
//!
//! The replay folds the log in memory ([`Replay`]), then writes every row once with
//! multi-row inserts and every cell once from its running state; the same running state is
//! handed to the live projector afterwards, so it need not be loaded again.

use std::time::{Duration, Instant};

use futures::TryStreamExt;
use redtape_index::cell::running::RunningCell;
use redtape_index::cell::CellStats;

use super::cell_state::CellState;
use super::replay::Replay;
use super::sql::{self, on_conn, Conn, LoggedEvent, NewRow};
use crate::cells::Published;
use crate::cells::{self, CellKey, Methodology};
use crate::StoreError;

/// Events read per query.
const REPLAY_PAGE: i64 = 10_000;

/// How long a rebuild waits for events held back by another transaction.
const DEADLINE: Duration = Duration::from_secs(30);

/// The secondary indexes of `observations` (name, CREATE statement) as the migrations made
/// them. On SQLite a rebuild already holds the only write lock and readers keep their WAL
/// snapshot, so dropping the indexes for the bulk insert and building each once afterwards
/// costs nobody anything (measured: docs/benchmarks.md). On PostgreSQL `DROP INDEX` would lock
/// readers out of the table until the rebuild commits, so the indexes stay.
const DEFERRED_INDEXES_LITE: &str = "SELECT name, sql FROM sqlite_master WHERE type = 'index' \
    AND tbl_name = 'observations' AND sql IS NOT NULL ORDER BY name";

/// Replays every event committed before `target` (and any committed meanwhile) into emptied
/// read models. Returns the number of events replayed and the running state of the cells.
pub(crate) async fn rebuild(
    conn: &mut Conn<'_>,
    target: Option<(i64, i64)>,
    methodology: &Methodology,
) -> Result<(u64, CellState), StoreError> {
    let started = Instant::now();
    sql::lock_checkpoint(conn).await?;
    // Filers and tokens first: it refuses, before any work, while some are not events yet.
    let accounts = crate::accounts::projection::rebuild(conn).await?;
    tracing::debug!(accounts, "filers and tokens replayed");
    // PostgreSQL replaces `observations` by a fresh table instead (see `swap`).
    let emptied: &[&str] = match conn {
        Conn::Pg(_) => &["procedures", "index_cells", "index_cbi", "responses"],
        Conn::Lite(_) => &[
            "observations",
            "procedures",
            "index_cells",
            "index_cbi",
            "responses",
        ],
    };
    for table in emptied {
        let sql = format!("DELETE FROM {table}");
        on_conn!(conn, c, DB => sqlx::query(&sql).execute(c).await
        .map(|r| r.rows_affected()))?;
    }
    let deferred: Vec<(String, String)> = match conn {
        Conn::Lite(c) => {
            sqlx::query_as(DEFERRED_INDEXES_LITE)
                .fetch_all(&mut **c)
                .await?
        }
        Conn::Pg(_) => Vec::new(),
    };
    for (name, _) in &deferred {
        let sql = format!("DROP INDEX {name}");
        on_conn!(conn, c, DB => sqlx::query(&sql).execute(c).await
        .map(|r| r.rows_affected()))?;
    }
    tracing::debug!(elapsed = ?started.elapsed(), "read models emptied");

    let (replay, checkpoint, applied) = replay(conn, target).await?;
    tracing::debug!(applied, elapsed = ?started.elapsed(), "replayed in memory");
    // The cells are computed on other threads while the rows are written.
    let replay = std::sync::Arc::new(replay);
    let computing = {
        let (replay, methodology) = (replay.clone(), methodology.clone());
        tokio::task::spawn_blocking(move || compute_cells(&replay, &methodology))
    };

    // In key order: each insert appends to the primary key's B-tree instead of landing on a
    // random page of it (measured on 1M rows, docs/benchmarks.md).
    let mut rows: Vec<_> = replay.observations.iter().collect();
    rows.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let rows: Vec<NewRow<'_>> = rows
        .into_iter()
        .map(|(id, o)| NewRow {
            id,
            status: o.status,
            filer: &o.filer,
            intermediary: o.intermediary.as_deref(),
            profile: &o.profile,
            columns: &o.columns,
            amendments: o.amendments,
            filed_at: &o.filed_at,
            updated_at: &o.updated_at,
            last_sequence: o.last_sequence,
        })
        .collect();
    match conn {
        Conn::Pg(c) => super::swap::observations(c, &rows).await?,
        Conn::Lite(_) => sql::insert_observations(conn, &rows).await?,
    }
    drop(rows);
    for (_, create) in &deferred {
        on_conn!(conn, c, DB => sqlx::query(create).execute(c).await
        .map(|r| r.rows_affected()))?;
    }
    for (code, (timeline, sequence)) in &replay.procedures {
        sql::write_procedure(conn, code, timeline, *sequence).await?;
    }
    for r in &replay.responses {
        sql::insert_response(
            conn,
            &r.submission_id,
            r.sequence,
            &r.agency,
            r.status,
            &r.posted_at,
        )
        .await?;
    }
    tracing::debug!(elapsed = ?started.elapsed(), "rows written");

    let (running, computed) = computing
        .await
        .map_err(|e| StoreError::Corrupt(format!("cell computation failed: {e}")))??;
    let timelines = replay
        .procedures
        .iter()
        .map(|(code, (timeline, _))| (code.clone(), timeline.clone()))
        .collect();
    let mut state = CellState::rebuilt(checkpoint, running, timelines, methodology.k);
    // Secondary suppression (§4, 1.1) needs every cell's n, so it is applied here, after the
    // cells were computed one by one.
    let published: Vec<Published> = computed
        .into_iter()
        .map(|(key, stats)| {
            let stats = if state.is_secondary(&key) {
                stats.secondary()
            } else {
                stats
            };
            (key, stats, false)
        })
        .collect();
    sql::write_cells(conn, &published).await?;
    let groups: std::collections::BTreeSet<_> = published
        .iter()
        .map(|(key, _, _)| cells::group_of(key))
        .collect();
    let mut ranked = Vec::new();
    for group in &groups {
        let rows = state.ranked(group, methodology);
        state.set_ranked(group, rows.clone());
        ranked.extend(rows.into_iter().map(|r| (group.clone(), r)));
    }
    sql::upsert_cbi(conn, &ranked).await?;
    sql::save_checkpoint(conn, checkpoint).await?;
    tracing::debug!(cells = published.len(), elapsed = ?started.elapsed(), "cells written");
    Ok((applied, state))
}

/// Folds the log into memory, streamed row by row: the fold keeps pace with SQLite's worker
/// thread instead of waking it for every row of a collected page.
async fn replay(
    conn: &mut Conn<'_>,
    target: Option<(i64, i64)>,
) -> Result<(Replay, (i64, i64), u64), StoreError> {
    let started = Instant::now();
    let next = match conn {
        Conn::Pg(_) => sql::PG_NEXT,
        Conn::Lite(_) => sql::LITE_NEXT,
    };
    let mut replay = Replay::default();
    let mut checkpoint = (0, 0);
    let mut applied = 0u64;
    loop {
        let mut n = 0u64;
        on_conn!(conn, c, DB => {
            let mut events = sqlx::query_as::<DB, LoggedEvent>(next)
                .bind(checkpoint.0)
                .bind(checkpoint.1)
                .bind(REPLAY_PAGE)
                .fetch(c);
            while let Some(event) = events.try_next().await? {
                replay.apply(&event)?;
                checkpoint = (event.txid, event.position);
                n += 1;
            }
        });
        applied += n;
        if n == 0 {
            let reached = target.is_none_or(|t| checkpoint >= t);
            if reached || started.elapsed() > DEADLINE {
                return Ok((replay, checkpoint, applied));
            }
            // Committed but held back by an older running transaction.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Every cell's running state and statistics. Cells are independent, so the statistics
/// (the bootstrap dominates) are split over the cores.
#[allow(clippy::type_complexity)]
fn compute_cells(
    replay: &Replay,
    methodology: &Methodology,
) -> Result<(Vec<(CellKey, RunningCell)>, Vec<(CellKey, CellStats)>), StoreError> {
    let running: Vec<(CellKey, RunningCell)> = replay.cells(methodology).into_iter().collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = running.len().div_ceil(threads.max(1)).max(1);
    let computed = std::thread::scope(|scope| {
        let handles: Vec<_> = running
            .chunks(per_thread)
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|(key, cell)| {
                            (
                                key.clone(),
                                cell.stats(methodology.k, &cells::seed_key(key)),
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut computed = Vec::with_capacity(running.len());
        for handle in handles {
            // A panic is a bug in the index crate: fail the rebuild (its transaction rolls
            // back, the old read models stay) rather than publish a partial set of cells.
            computed.extend(handle.join().map_err(|_| {
                StoreError::Corrupt("a cell computation panicked; rebuild abandoned".into())
            })?);
        }
        Ok::<_, StoreError>(computed)
    })?;
    Ok((running, computed))
}
