//! The live step: one batch of events applied to the read models, in the caller's
//! transaction.
//!
//! Rows are written with as few statements as the batch allows (new observations in one
//! multi-row insert; amendments and status changes one statement each, in log order), and
//! the cells follow through their running state: each observation the batch touched is
//! removed from the cells it was in before the batch and added to the cells it is in after,
//! so the cost of a batch depends on its events, not on how many observations the cells hold.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use redtape_domain::procedure_terms::{ProcedureEvent, ProcedureTimeline};
use redtape_domain::submission::{Status, Submission};

use super::cell_state::{CellState, Dirty, Reform};
use super::sql::{self, Conn, LoggedEvent, NewRow};
use crate::cells::{Methodology, Placed};
use crate::observations::{Change, ProfileColumns, ReportColumns};
use crate::StoreError;

/// What a batch did.
#[derive(Debug)]
pub(crate) struct Applied {
    /// The checkpoint after the batch.
    pub checkpoint: (i64, i64),
    pub events: usize,
    /// A procedure event was applied (the catalogue must be reloaded).
    pub procedures: bool,
    /// The batch stopped before this procedure event: its procedure's cells are to be
    /// prepared outside the write transaction first (see [`CellState::prepare_reform`]).
    pub stopped_at: Option<LoggedEvent>,
}

/// An observation the batch touched: how the cells saw it before the batch, and now.
struct Touched {
    before: Option<Placed>,
    now: Option<Placed>,
}

/// A new observation row held until the next flush.
struct Pending {
    id: String,
    filer: String,
    intermediary: Option<String>,
    profile: ProfileColumns,
    columns: ReportColumns,
    at: String,
    sequence: i64,
}

/// How much a batch may do.
pub(crate) struct Limits {
    /// Most events to apply.
    pub events: i64,
    /// A reform with no prepared cells may read its procedure in the transaction.
    pub reload_inside: bool,
    /// If the batch drains the log, refresh the intervals of every cell it publishes and of
    /// every cell waiting for a refresh.
    pub all_intervals: bool,
}

/// Applies up to `limits.events` events after `checkpoint` and publishes the cells they
/// changed.
///
/// A procedure event (new terms) changes the measures of every observation of its procedure,
/// so its cells are rebuilt: from cells prepared outside the transaction when there are some
/// for it, otherwise the batch stops before it (`Applied::stopped_at`), unless
/// `limits.reload_inside`, the fallback, lets it read the procedure in the transaction.
pub(crate) async fn step(
    conn: &mut Conn<'_>,
    state: &mut CellState,
    checkpoint: (i64, i64),
    limits: Limits,
    methodology: &Methodology,
) -> Result<Applied, StoreError> {
    let mut events = sql::next_events(conn, checkpoint, limits.events).await?;
    let reload_inside = limits.reload_inside;
    let mut touched: HashMap<String, Touched> = HashMap::new();
    let mut pending: Vec<Pending> = Vec::new();
    // Each reformed procedure, with its prepared cells (`None`: reload inside).
    let mut reformed: BTreeMap<String, Option<Reform>> = BTreeMap::new();
    let mut stopped_at = None;
    let mut last = checkpoint;
    for (i, event) in events.iter().enumerate() {
        if event.aggregate_type == <ProcedureTimeline as cqrs_es::Aggregate>::TYPE {
            let reform = state.take_reform(checkpoint, event);
            if reform.is_none() && (!reload_inside || reformed.contains_key(&event.aggregate_id)) {
                // A second reform of one procedure in a batch stops it too: the prepared
                // cells only know the first.
                stopped_at = Some(i);
                break;
            }
            last = (event.txid, event.position);
            flush(conn, &mut pending).await?;
            let timeline = apply_procedure(conn, event).await?;
            state.set_timeline(&event.aggregate_id, timeline);
            reformed.insert(event.aggregate_id.clone(), reform);
            continue;
        }
        last = (event.txid, event.position);
        if event.aggregate_type != <Submission as cqrs_es::Aggregate>::TYPE {
            continue;
        }
        let change = Change::decode(&event.payload).map_err(|e| event.corrupt(e))?;
        let (id, seq) = (event.aggregate_id.as_str(), event.sequence);
        if let Change::Insert {
            filer,
            intermediary,
            profile,
            columns,
            at,
        } = change
        {
            if !touched.contains_key(id) {
                // A new submission: no row before this batch (a row that exists would be left
                // alone by the insert, and the checkpoint never lets that happen).
                let profile = ProfileColumns::of(profile.as_ref());
                let now = Some(Placed::of(
                    &columns,
                    Status::Received.as_str(),
                    profile.clone(),
                ));
                touched.insert(id.to_string(), Touched { before: None, now });
                pending.push(Pending {
                    id: id.to_string(),
                    filer,
                    intermediary,
                    profile,
                    columns,
                    at,
                    sequence: seq,
                });
            }
            continue;
        }
        // Later events of a submission change its row in place: write the batch's new rows
        // first, so the statements run in log order.
        flush(conn, &mut pending).await?;
        if !touched.contains_key(id) {
            let before = sql::placed(conn, id).await?;
            let now = before.clone();
            touched.insert(id.to_string(), Touched { before, now });
        }
        let Some(row) = touched.get_mut(id) else {
            continue;
        };
        match change {
            Change::Insert { .. } => {}
            Change::Amend { columns, at } => {
                if sql::amend(conn, id, &columns, &at, seq).await? {
                    let status = row.now.as_ref().map_or(Status::Received.as_str(), |p| {
                        Status::parse(&p.row.status)
                            .map_or(Status::Received, Status::after_amendment)
                            .as_str()
                    });
                    // An amendment never moves the profile recorded at filing (§7).
                    let profile = row.now.as_ref().map(|p| p.profile.clone());
                    row.now = Some(Placed::of(&columns, status, profile.unwrap_or_default()));
                }
            }
            Change::Status { status, at } => {
                if sql::set_status(conn, id, status, &at, seq).await? {
                    if let Some(now) = row.now.as_mut() {
                        now.row.status = status.to_string();
                    }
                }
            }
            Change::Response { agency, status, at } => {
                sql::insert_response(conn, id, seq, &agency, status, &at).await?;
            }
        }
    }
    flush(conn, &mut pending).await?;

    let mut dirty = Dirty::new();
    for row in touched.values() {
        if row.before == row.now {
            continue;
        }
        // A reformed procedure's cells are replaced below, with the new terms.
        let reloaded = |p: &Placed| reformed.contains_key(&p.procedure_code);
        if let Some(before) = row.before.as_ref().filter(|p| p.included() && !reloaded(p)) {
            if !state.remove(before, methodology, &mut dirty) {
                return Err(StoreError::Corrupt(format!(
                    "cell state lost an observation of {}; reloading",
                    before.procedure_code
                )));
            }
        }
        if let Some(now) = row.now.as_ref().filter(|p| p.included() && !reloaded(p)) {
            state.add(now, methodology, &mut dirty);
        }
    }
    let procedures = !reformed.is_empty();
    for (code, reform) in reformed {
        match reform {
            Some(reform) => {
                let changes = touched
                    .values()
                    .filter(|row| row.before != row.now)
                    .map(|row| (row.before.as_ref(), row.now.as_ref()));
                if !state.replace_procedure(reform, changes, methodology, &mut dirty) {
                    return Err(StoreError::Corrupt(format!(
                        "prepared cells of {code} lost an observation; reloading"
                    )));
                }
            }
            None => {
                state
                    .reload_procedure(conn, &code, methodology, &mut dirty)
                    .await?
            }
        }
    }
    // Cells whose intervals waited long enough are refreshed with the batch; all of them
    // when asked to and the batch drained the log.
    let all = limits.all_intervals && stopped_at.is_none() && (events.len() as i64) < limits.events;
    dirty.extend(state.due(all));
    publish(conn, state, &dirty, methodology, all).await?;
    let applied = stopped_at.unwrap_or(events.len());
    Ok(Applied {
        checkpoint: last,
        events: applied,
        procedures,
        stopped_at: stopped_at.map(|i| events.swap_remove(i)),
    })
}

/// Writes the dirty cells and the CBI of their groups.
pub(crate) async fn publish(
    conn: &mut Conn<'_>,
    state: &mut CellState,
    dirty: &Dirty,
    methodology: &Methodology,
    all_intervals: bool,
) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    let (write, delete) = state.publish(dirty, methodology, all_intervals);
    sql::write_cells(conn, &write).await?;
    for key in &delete {
        sql::delete_cell(conn, key).await?;
    }
    // A changed cell can change the CBI of every province of its group: each dirty group is
    // ranked again from the cells in memory (at most 63), and only what changed is written,
    // in one statement for all groups.
    // Secondary suppression may have republished cells beyond `dirty`: every written cell's
    // group is ranked again.
    let groups: BTreeSet<_> = write
        .iter()
        .map(|(key, _, _)| key)
        .chain(&delete)
        .map(crate::cells::group_of)
        .collect();
    let mut upserts = Vec::new();
    for group in &groups {
        let ranked = state.ranked(group, methodology);
        let before = state.set_ranked(group, ranked.clone());
        match before {
            Some(before) if before == ranked => continue,
            Some(before) => {
                for gone in &before {
                    if !ranked.iter().any(|r| r.province == gone.province) {
                        sql::delete_cbi(conn, group, Some(&gone.province)).await?;
                    }
                }
            }
            // Not known since the state was loaded: replace the group's rows whole.
            None => sql::delete_cbi(conn, group, None).await?,
        }
        upserts.extend(ranked.into_iter().map(|r| (group.clone(), r)));
    }
    sql::upsert_cbi(conn, &upserts).await?;
    let cells = write.len() + delete.len();
    if cells > 0 {
        let m = redtape_metrics::get();
        m.cell_refresh_duration
            .observe(started.elapsed().as_secs_f64());
        m.cells_written.inc_by(cells as u64);
    }
    Ok(())
}

/// Writes the new rows held so far.
async fn flush(conn: &mut Conn<'_>, pending: &mut Vec<Pending>) -> Result<(), StoreError> {
    if pending.is_empty() {
        return Ok(());
    }
    let rows: Vec<NewRow<'_>> = pending
        .iter()
        .map(|p| NewRow {
            id: &p.id,
            status: Status::Received.as_str(),
            filer: &p.filer,
            intermediary: p.intermediary.as_deref(),
            profile: &p.profile,
            columns: &p.columns,
            amendments: 0,
            filed_at: &p.at,
            updated_at: &p.at,
            last_sequence: p.sequence,
        })
        .collect();
    sql::insert_observations(conn, &rows).await?;
    pending.clear();
    Ok(())
}

/// Folds a Procedure event into the procedure's stored timeline; returns the timeline.
async fn apply_procedure(
    conn: &mut Conn<'_>,
    logged: &LoggedEvent,
) -> Result<ProcedureTimeline, StoreError> {
    let event: ProcedureEvent =
        serde_json::from_str(&logged.payload).map_err(|e| logged.corrupt(e))?;
    let (mut timeline, applied) = sql::procedure(conn, &logged.aggregate_id)
        .await?
        .unwrap_or_else(|| (ProcedureTimeline::default(), -1));
    if applied >= logged.sequence {
        // Applied already (never happens with the checkpoint; cheap to guard).
        return Ok(timeline);
    }
    cqrs_es::Aggregate::apply(&mut timeline, event);
    sql::write_procedure(conn, &logged.aggregate_id, &timeline, logged.sequence).await?;
    Ok(timeline)
}
