//! Group commit of the command side, on both stores.
//!
//! A filing used to cost three durable commits (the idempotency claim, the events, the stored
//! answer), each with its own fsync and, on PostgreSQL, its own round trips; under load that
//! capped the service far below what the database can write (issue 10). Now every write of
//! the command side (a command's events, with the answer to its `Idempotency-Key` when it
//! has one) is queued to one writer task, which commits whatever has queued meanwhile in ONE
//! transaction: all answers in one multi-row upsert and all single-event writes in one multi-row insert,
//! whose `RETURNING` tells who won (`ON CONFLICT DO NOTHING`); an answer whose events lost is
//! taken back. A group costs four statements whatever its size, on both stores: PostgreSQL
//! saves round trips, SQLite saves hops through its one connection's worker thread, which
//! is what limited it (measured: docs/benchmarks.md). A write with several events (none
//! today) uses a savepoint, because a multi-row insert cannot be all-or-nothing per write.
//!
//! A new submission's place under its filer's daily cap is reserved in the same transaction
//! (`crate::limits`): the group's filer-day counts are locked and counted before anything
//! else is written, a write over its cap is refused before it takes a key, and the places of
//! writes that lose afterwards are given back.
//!
//! Each caller is answered only after the group's COMMIT succeeded: an acknowledged write is
//! as durable as before, and an answer is never stored without its events or the reverse.

use std::collections::{HashMap, HashSet};

use cqrs_es::persist::SerializedEvent;
use sqlx::Acquire;
use tokio::sync::{mpsc, oneshot};

use crate::db::{on_conn, Conn, Db};
use crate::idempotency::Answer;
use crate::limits::{DailyQuota, Day, Reserved, Tally};

/// Most writes in one group; bounds the time the write lock is held.
const MAX_GROUP: usize = 512;

/// Rows per multi-row statement: 10 binds per answer, 7 per event, far below SQLite's 32,766
/// and PostgreSQL's 65,535.
const ROWS_PER_STATEMENT: usize = 1000;

/// One durable write: the events of one command, and the stored answer of its request.
#[derive(Debug)]
pub struct Write {
    pub events: Vec<SerializedEvent>,
    pub answer: Option<Answer>,
    /// A new submission's place under its filer's daily cap, if capped.
    pub quota: Option<DailyQuota>,
}

/// Why a write did not commit.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// Another command on the same aggregate committed first (optimistic concurrency).
    #[error("another change to this aggregate was saved first")]
    Conflict,
    /// Another request with the same `Idempotency-Key` stored its answer first.
    #[error("another request with this Idempotency-Key was answered first")]
    KeyTaken,
    /// The filer has filed its daily cap of new submissions.
    #[error("the daily cap of {cap} submissions is reached")]
    CapReached { cap: u32 },
    #[error("the event store is unavailable")]
    Unavailable(#[source] crate::Cause),
    #[error("event store error")]
    Internal(#[source] crate::Cause),
}

impl From<sqlx::Error> for WriteError {
    fn from(e: sqlx::Error) -> Self {
        if crate::db::is_unavailable(&e) {
            WriteError::Unavailable(std::sync::Arc::new(e))
        } else {
            WriteError::Internal(std::sync::Arc::new(e))
        }
    }
}

struct Job {
    write: Write,
    reply: oneshot::Sender<Result<(), WriteError>>,
}

/// The handle of the writer task.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer task on the current Tokio runtime; it ends when every handle is
    /// dropped.
    pub fn new(db: &Db) -> Self {
        let (jobs, queue) = mpsc::channel(4 * MAX_GROUP);
        tokio::spawn(run(db.clone(), queue));
        Writer { jobs }
    }

    /// Commits `write` with whatever else is queued; returns once it is durable.
    pub async fn write(&self, write: Write) -> Result<(), WriteError> {
        if write.events.is_empty() && write.answer.is_none() {
            return Ok(());
        }
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { write, reply })
            .await
            .map_err(|_| WriteError::Internal(crate::because("the writer has stopped")))?;
        answer.await.map_err(|_| {
            WriteError::Internal(crate::because("the writer stopped before answering"))
        })?
    }
}

async fn run(db: Db, mut queue: mpsc::Receiver<Job>) {
    let mut tally = Tally::default();
    while let Some(first) = queue.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let writes: Vec<&Write> = group.iter().map(|j| &j.write).collect();
        let started = std::time::Instant::now();
        let committed = commit(&db, &writes, &tally).await;
        tracing::trace!(writes = writes.len(), elapsed = ?started.elapsed(), "group committed");
        match committed {
            Ok((outcomes, counts)) => {
                tally.settle(counts);
                for (job, outcome) in group.into_iter().zip(outcomes) {
                    let _ = job.reply.send(outcome);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, writes = group.len(), "group commit failed");
                let e = WriteError::from(e);
                for job in group {
                    let _ = job.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

const INSERT_EVENT: &str = "INSERT INTO events (aggregate_type, aggregate_id, sequence, \
    event_type, event_version, payload, metadata) VALUES ($1, $2, $3, $4, $5, $6, $7)";

const EVENT_COLUMNS: &str = "INSERT INTO events (aggregate_type, aggregate_id, sequence, \
    event_type, event_version, payload, metadata) ";

/// An answer takes the key, or takes over a claim its first request abandoned (a process
/// that died between claim and answer, before answers were written with their events).
const ANSWER_COLUMNS: &str = "INSERT INTO idempotency_keys (principal, idempotency_key, \
    request_hash, resource_id, state, status_code, location, body, created_at, locked_until) ";

const ANSWER_CONFLICT: &str = " ON CONFLICT (principal, idempotency_key) DO UPDATE SET \
    state = 'done', status_code = excluded.status_code, location = excluded.location, \
    body = excluded.body, locked_until = 0 \
    WHERE idempotency_keys.state = 'pending' \
    AND idempotency_keys.request_hash = excluded.request_hash \
    AND idempotency_keys.resource_id = excluded.resource_id \
    AND idempotency_keys.locked_until < ";

/// Takes back an answer whose events lost.
const DELETE_ANSWER: &str =
    "DELETE FROM idempotency_keys WHERE principal = $1 AND idempotency_key = $2";

fn sequence(e: &SerializedEvent) -> i64 {
    i64::try_from(e.sequence).unwrap_or(i64::MAX)
}

/// Marks every write after the first with the same key (the same request sent twice at
/// once, or two commands on one aggregate at one sequence): they lose before any SQL runs,
/// since one statement must not hold two rows with one key.
fn duplicates(writes: &[&Write]) -> Vec<Option<WriteError>> {
    let (mut keys, mut events) = (HashSet::new(), HashSet::new());
    writes
        .iter()
        .map(|w| {
            let event_keys: Vec<_> = w
                .events
                .iter()
                .map(|e| {
                    (
                        e.aggregate_type.as_str(),
                        e.aggregate_id.as_str(),
                        e.sequence,
                    )
                })
                .collect();
            if event_keys.iter().any(|k| events.contains(k)) {
                return Some(WriteError::Conflict);
            }
            let key = w
                .answer
                .as_ref()
                .map(|a| (a.principal.as_str(), a.key.as_str()));
            if key.is_some_and(|k| keys.contains(&k)) {
                return Some(WriteError::KeyTaken);
            }
            // Only a write that goes ahead holds its keys for the ones after it.
            keys.extend(key);
            events.extend(event_keys);
            None
        })
        .collect()
}

/// The outcome of each write of a group, and the daily counts SQLite's writer settles.
type Committed = (Vec<Result<(), WriteError>>, HashMap<Day, u32>);

/// Commits a group in one transaction; the per-write outcomes are only returned when COMMIT
/// succeeded.
async fn commit(db: &Db, writes: &[&Write], tally: &Tally) -> Result<Committed, sqlx::Error> {
    let (outcomes, counts) = match db {
        Db::Postgres(pool) => {
            let mut tx = crate::db::begin_pg(pool).await?;
            let done = statements(&mut Conn::Pg(&mut tx), writes, tally).await?;
            tx.commit().await?;
            done
        }
        Db::Sqlite(pool) => {
            let mut tx = crate::db::begin_lite(pool).await?;
            let done = statements(&mut Conn::Lite(&mut tx), writes, tally).await?;
            tx.commit().await?;
            done
        }
    };
    let outcomes = outcomes
        .into_iter()
        .map(|o| o.map_or(Ok(()), Err))
        .collect();
    Ok((outcomes, counts))
}

/// The part `of` each write that has not lost yet and has one, with the write's index.
fn still_in<'a, T>(
    writes: &[&'a Write],
    outcomes: &[Option<WriteError>],
    of: impl Fn(&'a Write) -> Option<&'a T>,
) -> Vec<(usize, &'a T)> {
    writes
        .iter()
        .enumerate()
        .filter(|(i, _)| outcomes[*i].is_none())
        .filter_map(|(i, w)| of(w).map(|x| (i, x)))
        .collect()
}

/// The statements of a group (see the module docs): `Some` for each write that lost; and, on
/// SQLite, the daily counts once the group commits.
async fn statements(
    conn: &mut Conn<'_>,
    writes: &[&Write],
    tally: &Tally,
) -> Result<(Vec<Option<WriteError>>, HashMap<Day, u32>), sqlx::Error> {
    let now = chrono::Utc::now().timestamp();
    let mut outcomes = duplicates(writes);

    // 0. Daily caps: lock the counts, refuse the writes over their cap.
    let capped = still_in(writes, &outcomes, |w| w.quota.as_ref());
    let mut reserved = Reserved::default();
    if !capped.is_empty() {
        let quotas: Vec<&DailyQuota> = capped.iter().map(|(_, q)| *q).collect();
        reserved = crate::limits::reserve(conn, &quotas, tally).await?;
    }
    let mut places = reserved.granted.clone();
    for (i, q) in &capped {
        match places.get_mut(&q.day_key()) {
            Some(n) if *n > 0 => *n -= 1,
            _ => outcomes[*i] = Some(WriteError::CapReached { cap: q.cap }),
        }
    }

    // 1. The answers, one statement: those not returned lost their key.
    let answers = still_in(writes, &outcomes, |w| w.answer.as_ref());
    let mut answered: Vec<usize> = Vec::new();
    for chunk in answers.chunks(ROWS_PER_STATEMENT) {
        let won = insert_answers(conn, chunk, now).await?;
        for (i, a) in chunk {
            if won.contains(&(a.principal.clone(), a.key.clone())) {
                answered.push(*i);
            } else {
                outcomes[*i] = Some(WriteError::KeyTaken);
            }
        }
    }

    // 2. Single-event writes, one statement: those not returned lost their sequence.
    let singles: Vec<(usize, &SerializedEvent)> = writes
        .iter()
        .enumerate()
        .filter(|(i, w)| outcomes[*i].is_none() && w.events.len() == 1)
        .filter_map(|(i, w)| w.events.first().map(|e| (i, e)))
        .collect();
    for chunk in singles.chunks(ROWS_PER_STATEMENT) {
        let won = insert_events(conn, chunk).await?;
        for (i, e) in chunk {
            let key = (
                e.aggregate_type.clone(),
                e.aggregate_id.clone(),
                sequence(e),
            );
            if !won.contains(&key) {
                outcomes[*i] = Some(WriteError::Conflict);
            }
        }
    }

    // 3. Several events: all or nothing, in a savepoint each (none today).
    for (i, write) in writes.iter().enumerate() {
        if outcomes[i].is_some() || write.events.len() < 2 {
            continue;
        }
        let lost = on_conn!(conn, c, DB => {
            let mut savepoint = c.begin().await?;
            let mut lost = false;
            for e in &write.events {
                let inserted = sqlx::query(INSERT_EVENT)
                    .bind(&e.aggregate_type)
                    .bind(&e.aggregate_id)
                    .bind(sequence(e))
                    .bind(&e.event_type)
                    .bind(&e.event_version)
                    .bind(&e.payload)
                    .bind(&e.metadata)
                    .execute(&mut *savepoint)
                    .await;
                match inserted {
                    Ok(_) => {}
                    Err(e) if is_conflict(&e) => {
                        lost = true;
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            if lost {
                savepoint.rollback().await?;
            } else {
                savepoint.commit().await?;
            }
            lost
        });
        if lost {
            outcomes[i] = Some(WriteError::Conflict);
        }
    }

    // 4. An answer whose events lost is not an answer: take it back.
    for i in answered {
        if let (Some(_), Some(a)) = (&outcomes[i], &writes[i].answer) {
            on_conn!(conn, c, DB => sqlx::query(DELETE_ANSWER)
                .bind(&a.principal)
                .bind(&a.key)
                .execute(c)
                .await
                .map(|r| r.rows_affected()))?;
        }
    }

    // 5. Give back the places of writes that lost after their place was reserved.
    let mut back: HashMap<Day, u32> = HashMap::new();
    for (i, q) in &capped {
        if matches!(
            outcomes[*i],
            Some(WriteError::Conflict | WriteError::KeyTaken)
        ) {
            *back.entry(q.day_key()).or_default() += 1;
        }
    }
    for (day, n) in &back {
        crate::limits::give_back(conn, day, *n).await?;
    }
    let counts = reserved
        .before
        .into_iter()
        .map(|(day, filed)| {
            let granted = reserved.granted.get(&day).copied().unwrap_or(0);
            let lost = back.get(&day).copied().unwrap_or(0);
            let counted = filed + granted.saturating_sub(lost);
            (day, counted)
        })
        .collect();
    Ok((outcomes, counts))
}

/// Inserts answers; returns the keys that were taken (inserted, or a claim taken over).
///
/// PostgreSQL gets one statement text whatever the number of rows (arrays through `unnest`),
/// so it is parsed and planned once per connection instead of once per group size (parsing
/// and planning took 9% of PostgreSQL's CPU under filing load); SQLite prepares a statement in
/// microseconds and has no arrays, so it gets a multi-row VALUES.
async fn insert_answers(
    conn: &mut Conn<'_>,
    rows: &[(usize, &Answer)],
    now: i64,
) -> Result<HashSet<(String, String)>, sqlx::Error> {
    let won: Vec<(String, String)> = match conn {
        Conn::Pg(c) => {
            let text =
                |f: fn(&Answer) -> String| rows.iter().map(|(_, a)| f(a)).collect::<Vec<_>>();
            let sql = format!(
                "{ANSWER_COLUMNS} SELECT p, k, h, r, 'done', s, l, b, c, 0 FROM unnest($1::text[], \
                 $2::text[], $3::text[], $4::text[], $5::int[], $6::text[], $7::text[], \
                 $8::text[]) AS t (p, k, h, r, s, l, b, c){ANSWER_CONFLICT}$9 \
                 RETURNING principal, idempotency_key"
            );
            sqlx::query_as(&sql)
                .bind(text(|a| a.principal.clone()))
                .bind(text(|a| a.key.clone()))
                .bind(text(|a| a.request_hash.clone()))
                .bind(text(|a| a.resource_id.clone()))
                .bind(
                    rows.iter()
                        .map(|(_, a)| i32::from(a.response.status))
                        .collect::<Vec<_>>(),
                )
                .bind(
                    rows.iter()
                        .map(|(_, a)| a.response.location.clone())
                        .collect::<Vec<_>>(),
                )
                .bind(text(|a| a.response.body.clone()))
                .bind(text(|a| a.created_at.clone()))
                .bind(now)
                .fetch_all(&mut **c)
                .await?
        }
        Conn::Lite(c) => {
            let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(ANSWER_COLUMNS);
            insert.push_values(rows, |mut row, (_, a)| {
                row.push_bind(&a.principal)
                    .push_bind(&a.key)
                    .push_bind(&a.request_hash)
                    .push_bind(&a.resource_id)
                    .push_bind("done")
                    .push_bind(i32::from(a.response.status))
                    .push_bind(&a.response.location)
                    .push_bind(&a.response.body)
                    .push_bind(&a.created_at)
                    .push_bind(0i64);
            });
            insert.push(ANSWER_CONFLICT).push_bind(now);
            insert.push(" RETURNING principal, idempotency_key");
            insert.build_query_as().fetch_all(&mut **c).await?
        }
    };
    Ok(won.into_iter().collect())
}

/// Inserts events, leaving out any whose (aggregate, sequence) exists; returns those
/// inserted. One statement text on PostgreSQL, as in [`insert_answers`].
async fn insert_events(
    conn: &mut Conn<'_>,
    rows: &[(usize, &SerializedEvent)],
) -> Result<HashSet<(String, String, i64)>, sqlx::Error> {
    const RETURNING: &str =
        " ON CONFLICT DO NOTHING RETURNING aggregate_type, aggregate_id, sequence";
    let won: Vec<(String, String, i64)> = match conn {
        Conn::Pg(c) => {
            let text = |f: fn(&SerializedEvent) -> String| {
                rows.iter().map(|(_, e)| f(e)).collect::<Vec<_>>()
            };
            // The JSON goes as text and is cast per row: `json` keeps it exactly as sent.
            let sql = format!(
                "{EVENT_COLUMNS} SELECT t, i, s, e, v, p::json, m::json FROM unnest($1::text[], \
                 $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[]) \
                 AS u (t, i, s, e, v, p, m){RETURNING}"
            );
            sqlx::query_as(&sql)
                .bind(text(|e| e.aggregate_type.clone()))
                .bind(text(|e| e.aggregate_id.clone()))
                .bind(rows.iter().map(|(_, e)| sequence(e)).collect::<Vec<_>>())
                .bind(text(|e| e.event_type.clone()))
                .bind(text(|e| e.event_version.clone()))
                .bind(text(|e| e.payload.to_string()))
                .bind(text(|e| e.metadata.to_string()))
                .fetch_all(&mut **c)
                .await?
        }
        Conn::Lite(c) => {
            let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(EVENT_COLUMNS);
            insert.push_values(rows, |mut row, (_, e)| {
                row.push_bind(&e.aggregate_type)
                    .push_bind(&e.aggregate_id)
                    .push_bind(sequence(e))
                    .push_bind(&e.event_type)
                    .push_bind(&e.event_version)
                    .push_bind(&e.payload)
                    .push_bind(&e.metadata);
            });
            insert.push(RETURNING);
            insert.build_query_as().fetch_all(&mut **c).await?
        }
    };
    Ok(won.into_iter().collect())
}

/// A unique key refused the row: 23505 (PostgreSQL unique_violation), 1555 (SQLite
/// SQLITE_CONSTRAINT_PRIMARYKEY, the test sqlite-es makes).
fn is_conflict(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().is_some_and(|c| c == "23505" || c == "1555"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idempotency::StoredResponse;

    fn write(id: &str, sequence: usize, key: Option<&str>) -> Write {
        Write {
            events: vec![SerializedEvent::new(
                id.into(),
                sequence,
                "Submission".into(),
                "TimingReported".into(),
                "1.0".into(),
                serde_json::json!({}),
                serde_json::json!({}),
            )],
            answer: key.map(|k| Answer {
                principal: "filer:x".into(),
                key: k.into(),
                request_hash: "h".into(),
                resource_id: id.into(),
                created_at: "2026-12-01T00:00:00.000000Z".into(),
                response: StoredResponse {
                    status: 201,
                    location: None,
                    body: String::new(),
                },
            }),
            quota: None,
        }
    }

    #[test]
    fn only_writes_that_go_ahead_hold_their_keys() {
        let writes = [
            write("a", 1, Some("k1")),
            // Same event as the first: a conflict, and its key k2 stays free...
            write("a", 1, Some("k2")),
            // ...for this one.
            write("b", 1, Some("k2")),
            // The key of the first: taken.
            write("c", 1, Some("k1")),
            write("d", 1, None),
        ];
        let refs: Vec<&Write> = writes.iter().collect();
        let outcomes: Vec<Option<String>> = duplicates(&refs)
            .into_iter()
            .map(|o| o.map(|e| e.to_string()))
            .collect();
        assert_eq!(
            outcomes,
            vec![
                None,
                Some(WriteError::Conflict.to_string()),
                None,
                Some(WriteError::KeyTaken.to_string()),
                None,
            ]
        );
    }
}
