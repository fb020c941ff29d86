//! Every cell's running state, in memory, so projecting an event costs the same whatever its
//! cells hold (issue 10).
//!
//! A cell's statistics were recomputed from all its observations after every batch: O(cell
//! size) per event. Here each cell keeps a [`RunningCell`] (counting trees and an
//! order-statistic list, in `redtape-index`), and an event only removes the old measures of
//! its observation and adds the new ones: O(log n). The state is loaded once from
//! `observations` (at start, or when another process moved the checkpoint) and then follows
//! the projector's own batches; it is thrown away on any failed batch, so it can never drift
//! from the tables.
//!
//! The bootstrap intervals are the one part that costs more than O(log n) (B = 1000
//! resamples, ~0.3 ms for a large cell), so a busy cell recomputes them at most once per
//! [`INTERVAL_REFRESH`]; meanwhile the cell is published with its previous intervals and
//! `intervals_due = 1`, and the projector refreshes every due cell as soon as it is idle. Once
//! idle, every published figure equals a full recompute (methodology §3).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use redtape_domain::procedure_terms::{ProcedureEvent, ProcedureTimeline};
use redtape_index::area::is_province_key;
use redtape_index::cell::running::{CellBuilder, RunningCell};
use redtape_index::cell::{CellStats, Interval};

use super::sql::{self, Conn};
use crate::cells::Published;
use crate::cells::{self, CellKey, GroupKey, Methodology, Placed};
use crate::StoreError;

/// How long a busy cell may publish its previous bootstrap intervals.
pub(crate) const INTERVAL_REFRESH: Duration = Duration::from_secs(1);

/// A cell's statistics as published, without intervals: null wherever §4 suppresses it.
fn published_stats(cell: &Cell, k: usize) -> CellStats {
    let stats = cell.running.stats_without_intervals(k);
    if cell.secondary {
        stats.secondary()
    } else {
        stats
    }
}

/// Cells changed by a batch, to publish at its end.
pub(crate) type Dirty = BTreeSet<CellKey>;

#[derive(Debug, Default)]
struct Cell {
    running: RunningCell,
    /// The intervals last computed, and when; `None` until first computed.
    intervals: Option<(Option<Interval>, Option<Interval>, Instant)>,
    /// Hidden by §4's secondary suppression (1.1), as decided when its (year, procedure) last
    /// changed: a change to one cell can hide or reveal a sibling, which is then published
    /// again although its own observations did not change.
    secondary: bool,
}

impl Cell {
    /// An empty cell for `key`, keeping what its kind needs ([`cells::running_cell`]).
    fn of(key: &CellKey) -> Cell {
        Cell {
            running: cells::running_cell(key),
            ..Cell::default()
        }
    }
}

/// The running state of every cell with an included observation.
#[derive(Debug, Default)]
pub(crate) struct CellState {
    /// The checkpoint the state reflects; `None` when not loaded.
    at: Option<(i64, i64)>,
    cells: BTreeMap<CellKey, Cell>,
    timelines: HashMap<String, ProcedureTimeline>,
    /// Cells published with intervals older than their observations.
    due: BTreeSet<CellKey>,
    /// Each group's CBI rows as last written (unknown after a load: then rewritten whole).
    ranked: HashMap<GroupKey, Vec<cells::CbiRow>>,
    /// The cells of a procedure whose next event is a reform, prepared outside the write
    /// transaction.
    reform: Option<Box<Reform>>,
}

/// A reformed procedure's cells, read from a snapshot at checkpoint `at` and measured with the
/// terms after the reform event `event` (see [`CellState::prepare_reform`]).
#[derive(Debug)]
pub(crate) struct Reform {
    at: (i64, i64),
    event: (i64, i64),
    code: String,
    cells: CellState,
}

impl CellState {
    /// Whether the state reflects the read models at `checkpoint`.
    pub(crate) fn is_at(&self, checkpoint: (i64, i64)) -> bool {
        self.at == Some(checkpoint)
    }

    pub(crate) fn set_at(&mut self, checkpoint: (i64, i64)) {
        self.at = Some(checkpoint);
    }

    /// Whether the state reflects the tables at some checkpoint: false before the first
    /// load and after a batch that did not commit.
    pub(crate) fn is_loaded(&self) -> bool {
        self.at.is_some()
    }

    /// Marks the state as ahead of the tables until [`Self::set_at`] after the commit: if the
    /// batch never commits (an error, or its future dropped, as when an HTTP client that
    /// waited for `settle` disconnects), the next batch loads the state again rather than
    /// apply the same events to it twice.
    pub(crate) fn begin_change(&mut self) {
        self.at = None;
    }

    /// Forgets everything; the next batch loads the state again.
    pub(crate) fn invalidate(&mut self) {
        *self = CellState::default();
    }

    /// Loads every cell from the included observations, and which cells were published with
    /// due intervals (by a process that stopped before refreshing them). `conn` is a
    /// read-only snapshot (see [`crate::db::Db::snapshot`]) unless nothing else works: the
    /// load reads every observation, and must not hold the write lock meanwhile.
    pub(crate) async fn load(
        &mut self,
        conn: &mut Conn<'_>,
        checkpoint: (i64, i64),
        methodology: &Methodology,
    ) -> Result<(), StoreError> {
        let started = Instant::now();
        self.invalidate();
        self.timelines = sql::timelines(conn).await?;
        let rows = self.fill(conn, None, methodology).await?;
        // What the stored cells say: they were published from this state by the same rule.
        self.settle_all(methodology.k);
        self.due = sql::cells_with_due_intervals(conn).await?;
        self.at = Some(checkpoint);
        tracing::info!(
            observations = rows,
            cells = self.cells.len(),
            heap_bytes = self.heap_bytes(),
            due = self.due.len(),
            elapsed = ?started.elapsed(),
            "cell state loaded"
        );
        Ok(())
    }

    /// Adds the included observations of `procedure` (of every procedure if `None`) to the
    /// cells; returns how many observations were read. A start-up reads every observation
    /// into six to twelve cells each, so a cell not held yet (every cell: callers fill from
    /// empty) is built at once ([`CellBuilder`]), and a key is cloned only for a cell not
    /// seen yet.
    async fn fill(
        &mut self,
        conn: &mut Conn<'_>,
        procedure: Option<&str>,
        methodology: &Methodology,
    ) -> Result<u64, StoreError> {
        let (timelines, cells) = (&self.timelines, &mut self.cells);
        let mut building: BTreeMap<CellKey, CellBuilder> = BTreeMap::new();
        let rows = sql::each_included(conn, procedure, |placed| {
            let measures = cells::measure(
                &placed.row,
                timelines.get(&placed.procedure_code),
                methodology,
            );
            for key in placed.keys() {
                if let Some(cell) = building.get_mut(&key) {
                    cell.add(&measures);
                } else if let Some(cell) = cells.get_mut(&key) {
                    cell.running.add(&measures);
                } else {
                    let mut cell = cells::running_cell(&key).builder();
                    cell.add(&measures);
                    building.insert(key, cell);
                }
            }
        })
        .await;
        // Built even if the read failed part way (the caller reloads after a failure).
        for (key, cell) in building {
            let cell = Cell {
                running: cell.build(),
                ..Cell::default()
            };
            self.cells.insert(key, cell);
        }
        rows
    }

    /// Builds the state from cells a rebuild computed (nothing due: all just computed), with
    /// §4's secondary suppression decided for every (year, procedure).
    pub(crate) fn rebuilt(
        checkpoint: (i64, i64),
        cells: impl IntoIterator<Item = (CellKey, RunningCell)>,
        timelines: HashMap<String, ProcedureTimeline>,
        k: usize,
    ) -> CellState {
        let mut state = CellState {
            at: Some(checkpoint),
            cells: cells
                .into_iter()
                .map(|(key, running)| {
                    let cell = Cell {
                        running,
                        intervals: None,
                        secondary: false,
                    };
                    (key, cell)
                })
                .collect(),
            timelines,
            due: BTreeSet::new(),
            ranked: HashMap::new(),
            reform: None,
        };
        state.settle_all(k);
        state
    }

    /// Whether §4's secondary suppression hides a cell (as last settled).
    pub(crate) fn is_secondary(&self, key: &CellKey) -> bool {
        self.cells.get(key).is_some_and(|c| c.secondary)
    }

    /// Decides §4's secondary suppression for every (year, procedure).
    fn settle_all(&mut self, k: usize) {
        let all: BTreeSet<(i32, String)> = self.cells.keys().map(|k| (k.1, k.2.clone())).collect();
        let mut scratch = Dirty::new();
        for (year, procedure) in all {
            self.settle(year, &procedure, k, &mut scratch);
        }
    }

    /// Decides §4's secondary suppression for the cells of one (year, procedure) on both
    /// geographies (its partitions span them), from the cells in memory; marks dirty every
    /// cell whose decision changed. Costs the number of cells of the (year, procedure), at
    /// most a few hundred, whatever they hold.
    fn settle(&mut self, year: i32, procedure: &str, k: usize, dirty: &mut Dirty) {
        let range = |geography: &str| {
            let from = (
                geography.to_string(),
                year,
                procedure.to_string(),
                String::new(),
            );
            // Just past every key of this procedure: "\0" sorts before any other character,
            // so a longer or greater procedure code sorts after it.
            let to = (
                geography.to_string(),
                year,
                format!("{procedure}\0"),
                String::new(),
            );
            (from, to)
        };
        let geographies = [
            redtape_domain::geography::Geography::Vn34.as_str(),
            redtape_domain::geography::Geography::Vn63.as_str(),
        ];
        let hidden = {
            let members = geographies.iter().flat_map(|g| {
                let (from, to) = range(g);
                self.cells
                    .range(from..to)
                    .filter(|(_, c)| !c.running.is_empty())
                    .map(|(key, c)| (key, c.running.len()))
            });
            cells::secondary(members, k)
        };
        for g in geographies {
            let (from, to) = range(g);
            for (key, cell) in self.cells.range_mut(from..to) {
                let secondary = hidden.contains(key);
                if cell.secondary != secondary {
                    cell.secondary = secondary;
                    dirty.insert(key.clone());
                }
            }
        }
    }

    pub(crate) fn set_timeline(&mut self, code: &str, timeline: ProcedureTimeline) {
        self.timelines.insert(code.to_string(), timeline);
    }

    /// Adds an included observation to its cells.
    pub(crate) fn add(&mut self, placed: &Placed, methodology: &Methodology, dirty: &mut Dirty) {
        let measures = cells::measure(
            &placed.row,
            self.timelines.get(&placed.procedure_code),
            methodology,
        );
        for key in placed.keys() {
            self.cells
                .entry(key.clone())
                .or_insert_with(|| Cell::of(&key))
                .running
                .add(&measures);
            dirty.insert(key);
        }
    }

    /// Removes an included observation from its cells; false if a cell did not hold it (the
    /// state no longer matches the tables: the caller must reload).
    pub(crate) fn remove(
        &mut self,
        placed: &Placed,
        methodology: &Methodology,
        dirty: &mut Dirty,
    ) -> bool {
        let measures = cells::measure(
            &placed.row,
            self.timelines.get(&placed.procedure_code),
            methodology,
        );
        let mut held = true;
        for key in placed.keys() {
            held &= self
                .cells
                .get_mut(&key)
                .is_some_and(|cell| cell.running.remove(&measures));
            dirty.insert(key);
        }
        held
    }

    /// Reloads every cell of one procedure from the tables (after new terms, which can change
    /// the on-time verdict of each of its observations). Marks the old and new cells dirty.
    /// Reads the whole procedure inside the write transaction: only when it could not be
    /// prepared from a snapshot (see [`Reform`]).
    pub(crate) async fn reload_procedure(
        &mut self,
        conn: &mut Conn<'_>,
        code: &str,
        methodology: &Methodology,
        dirty: &mut Dirty,
    ) -> Result<(), StoreError> {
        self.drop_procedure(code, dirty);
        self.fill(conn, Some(code), methodology).await?;
        dirty.extend(self.cells.keys().filter(|k| k.2 == code).cloned());
        Ok(())
    }

    /// Removes every cell of one procedure, marking it dirty.
    fn drop_procedure(&mut self, code: &str, dirty: &mut Dirty) {
        let old: Vec<CellKey> = self.cells.keys().filter(|k| k.2 == code).cloned().collect();
        for key in old {
            self.cells.remove(&key);
            dirty.insert(key);
        }
    }

    /// Reads, from a read-only snapshot, the cells `event` (a procedure event of the log,
    /// not applied yet) will give its procedure: every included observation measured with
    /// the terms as they are after it. The next batch, if it starts where the snapshot
    /// stands, takes them instead of reading the procedure inside its transaction.
    pub(crate) async fn prepare_reform(
        &mut self,
        snapshot: &mut Conn<'_>,
        event: &sql::LoggedEvent,
        methodology: &Methodology,
    ) -> Result<(), StoreError> {
        let started = Instant::now();
        let code = event.aggregate_id.clone();
        let change: ProcedureEvent = serde_json::from_str(&event.payload)
            .map_err(|e| StoreError::Corrupt(format!("procedure event of {code}: {e}")))?;
        let mut timeline = self.timelines.get(&code).cloned().unwrap_or_default();
        cqrs_es::Aggregate::apply(&mut timeline, change);
        let mut cells = CellState::default();
        cells.timelines.insert(code.clone(), timeline);
        let at = sql::read_checkpoint(snapshot).await?;
        let rows = cells.fill(snapshot, Some(&code), methodology).await?;
        tracing::debug!(procedure = %code, observations = rows, elapsed = ?started.elapsed(),
            "reformed procedure's cells prepared");
        self.reform = Some(Box::new(Reform {
            at,
            event: (event.txid, event.position),
            code,
            cells,
        }));
        Ok(())
    }

    /// The prepared cells for `event` if they were read at `checkpoint` (where the batch
    /// starts); whatever was prepared is consumed either way.
    pub(crate) fn take_reform(
        &mut self,
        checkpoint: (i64, i64),
        event: &sql::LoggedEvent,
    ) -> Option<Reform> {
        self.reform.take().map(|r| *r).filter(|r| {
            r.at == checkpoint
                && r.event == (event.txid, event.position)
                && r.code == event.aggregate_id
        })
    }

    /// Puts a reformed procedure's prepared cells in place of its old ones, after applying
    /// the batch's own changes to its observations (`changes`: each touched observation as
    /// it was before the batch and as it is now). False if a prepared cell did not hold an
    /// observation it should (the caller must reload).
    pub(crate) fn replace_procedure<'a>(
        &mut self,
        mut reform: Reform,
        changes: impl Iterator<Item = (Option<&'a Placed>, Option<&'a Placed>)>,
        methodology: &Methodology,
        dirty: &mut Dirty,
    ) -> bool {
        let code = reform.code.as_str();
        let ours = |p: &&Placed| p.included() && p.procedure_code == code;
        let mut scratch = Dirty::new();
        for (before, now) in changes {
            if let Some(before) = before.filter(ours) {
                if !reform.cells.remove(before, methodology, &mut scratch) {
                    return false;
                }
            }
            if let Some(now) = now.filter(ours) {
                reform.cells.add(now, methodology, &mut scratch);
            }
        }
        self.drop_procedure(code, dirty);
        for (key, cell) in std::mem::take(&mut reform.cells.cells) {
            if !cell.running.is_empty() {
                dirty.insert(key.clone());
                self.cells.insert(key, cell);
            }
        }
        true
    }

    /// The statistics of the dirty cells, to write, and the dirty cells that are now empty,
    /// to delete. Intervals are recomputed where due (see the module docs), for every cell
    /// when `all_intervals`.
    pub(crate) fn publish(
        &mut self,
        dirty: &Dirty,
        methodology: &Methodology,
        all_intervals: bool,
    ) -> (Vec<Published>, Vec<CellKey>) {
        let now = Instant::now();
        let mut dirty = dirty.clone();
        let touched: BTreeSet<(i32, String)> = dirty.iter().map(|k| (k.1, k.2.clone())).collect();
        for (year, procedure) in touched {
            self.settle(year, &procedure, methodology.k, &mut dirty);
        }
        let (mut write, mut delete) = (Vec::new(), Vec::new());
        for key in &dirty {
            let Some(cell) = self.cells.get_mut(key).filter(|c| !c.running.is_empty()) else {
                self.cells.remove(key);
                self.due.remove(key);
                delete.push(key.clone());
                continue;
            };
            let mut stats = published_stats(cell, methodology.k);
            let due = if stats.suppressed {
                // compute() gives a suppressed cell no intervals; nothing to refresh later.
                cell.intervals = None;
                false
            } else {
                let fresh = cell
                    .intervals
                    .as_ref()
                    .is_some_and(|(_, _, at)| now.duration_since(*at) < INTERVAL_REFRESH);
                if all_intervals || !fresh {
                    let (days, cost) = cell.running.intervals(methodology.k, &cells::seed_key(key));
                    cell.intervals = Some((days, cost, now));
                    false
                } else {
                    true
                }
            };
            if let Some((days, cost, _)) = cell.intervals {
                stats.median_days_ci = days;
                stats.median_cost_ci = cost;
            }
            if due {
                self.due.insert(key.clone());
            } else {
                self.due.remove(key);
            }
            write.push((key.clone(), stats, due));
        }
        (write, delete)
    }

    /// Cells whose intervals should be refreshed now: due for at least
    /// [`INTERVAL_REFRESH`], or all due cells when `all`.
    pub(crate) fn due(&self, all: bool) -> Dirty {
        let now = Instant::now();
        self.due
            .iter()
            .filter(|key| {
                all || self.cells.get(*key).is_none_or(|c| {
                    c.intervals
                        .as_ref()
                        .is_none_or(|(_, _, at)| now.duration_since(*at) >= INTERVAL_REFRESH)
                })
            })
            .cloned()
            .collect()
    }

    pub(crate) fn has_due(&self) -> bool {
        !self.due.is_empty()
    }

    /// The CBI and rank of every ranked province of a group, from the cells in memory.
    pub(crate) fn ranked(&self, group: &GroupKey, methodology: &Methodology) -> Vec<cells::CbiRow> {
        let from = (group.0.clone(), group.1, group.2.clone(), String::new());
        let rows: Vec<cells::GroupRow> = self
            .cells
            .range(from..)
            .take_while(|(k, _)| k.0 == group.0 && k.1 == group.1 && k.2 == group.2)
            .filter(|(k, c)| !c.running.is_empty() && is_province_key(&k.3))
            .map(|(k, c)| cells::group_row(&k.3, &published_stats(c, methodology.k)))
            .collect();
        cells::rank_group(&rows)
    }

    /// Records a group's CBI rows as written; returns the rows last written before (`None`
    /// if unknown).
    pub(crate) fn set_ranked(
        &mut self,
        group: &GroupKey,
        ranked: Vec<cells::CbiRow>,
    ) -> Option<Vec<cells::CbiRow>> {
        self.ranked.insert(group.clone(), ranked)
    }

    /// Approximate heap bytes of the running cells (for the memory budget).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.cells.values().map(|c| c.running.heap_bytes()).sum()
    }
}
