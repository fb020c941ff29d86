//! The command side for submissions: filing, changes and moderation, each decided by the
//! aggregate and committed (with the request's answer) in one group commit; and a
//! submission's history as its filer and officers see it.

use std::collections::HashMap;
use std::sync::Arc;

use cqrs_es::persist::SerializedEvent;
use cqrs_es::{Aggregate, EventEnvelope};
use redtape_domain::submission::{
    Submission, SubmissionCommand, SubmissionError, SubmissionEvent, SubmissionServices,
};
use tokio::sync::Notify;

use super::{events_of, CommandError, Store};
use crate::db::Db;
use crate::idempotency::Answer;
use crate::limits::DailyQuota;
use crate::writer::{Write, Writer};

/// One recorded event with its envelope data, for the history a filer sees.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub sequence: usize,
    pub event: SubmissionEvent,
    pub metadata: HashMap<String, String>,
}

/// A submission's current state, folded from its events, with the events themselves.
#[derive(Debug, Clone)]
pub struct SubmissionHistory {
    pub state: Submission,
    pub events: Vec<HistoryEntry>,
}

/// The command side for submissions.
pub struct Submissions {
    db: Db,
    store: Store<Submission>,
    writer: Writer,
    services: SubmissionServices,
    wake: Arc<Notify>,
}

/// A command decided but not committed yet: its events, and the submission's history as it
/// will be once they are, so the answer to the request can be committed with them.
#[derive(Debug)]
pub struct Decided {
    pub history: SubmissionHistory,
    events: Vec<SerializedEvent>,
    quota: Option<DailyQuota>,
}

impl Decided {
    /// Counts this new submission under its filer's daily cap, reserved when it commits:
    /// the commit is refused with `CommandError::CapReached` if the cap is reached.
    pub fn capped(mut self, quota: Option<DailyQuota>) -> Self {
        self.quota = quota;
        self
    }
}

impl Submissions {
    pub fn new(db: &Db, services: SubmissionServices, wake: Arc<Notify>) -> Self {
        let writer = Writer::new(db);
        Self {
            db: db.clone(),
            store: Store::new(db, &writer),
            writer,
            services,
            wake,
        }
    }

    /// Commits `answer` alone (the final answer of a request that changed nothing, such as
    /// a refusal): a retry with the same key gets it replayed. `CommandError::KeyTaken` if
    /// another request with the key was answered first.
    pub async fn answer(&self, answer: Answer) -> Result<(), CommandError> {
        let write = Write {
            events: Vec::new(),
            answer: Some(answer),
            quota: None,
        };
        Ok(self.writer.write(write).await?)
    }

    /// Decides `command` on a submission that does not exist yet (its id is new, so nothing
    /// is loaded); nothing is committed.
    pub async fn decide_new(
        &self,
        id: &str,
        command: SubmissionCommand,
        metadata: HashMap<String, String>,
    ) -> Result<Decided, CommandError> {
        self.decide_on(id, Vec::new(), command, metadata).await
    }

    /// Loads a submission and decides `command` on it; nothing is committed.
    /// `SubmissionError::NotFound`-style refusals come from the aggregate itself.
    pub async fn decide(
        &self,
        id: &str,
        command: SubmissionCommand,
        metadata: HashMap<String, String>,
    ) -> Result<Decided, CommandError> {
        let loaded = events_of(&self.store, id).await?;
        self.decide_on(id, loaded, command, metadata).await
    }

    async fn decide_on(
        &self,
        id: &str,
        loaded: Vec<EventEnvelope<Submission>>,
        command: SubmissionCommand,
        metadata: HashMap<String, String>,
    ) -> Result<Decided, CommandError> {
        let mut state = Submission::default();
        for envelope in &loaded {
            state.apply(envelope.payload.clone());
        }
        let mut sequence = loaded.len();
        let sink = Default::default();
        state
            .handle(command, &self.services, &sink)
            .await
            .map_err(CommandError::Rule)?;
        let mut envelopes = loaded;
        let mut events = Vec::new();
        for payload in sink.collect().await {
            sequence += 1;
            let envelope = EventEnvelope::<Submission> {
                aggregate_id: id.to_string(),
                sequence,
                payload,
                metadata: metadata.clone(),
            };
            events.push(SerializedEvent::try_from(&envelope)?);
            envelopes.push(envelope);
        }
        Ok(Decided {
            history: SubmissionHistory::from_envelopes(envelopes),
            events,
            quota: None,
        })
    }

    /// Commits a decided command, with the answer to its request when it has a key, in one
    /// transaction shared with whatever else is being written (see [`crate::writer`]).
    /// Durable when this returns Ok. `CommandError::Conflict` if another command on the
    /// submission committed first; `CommandError::KeyTaken` if another request with the key
    /// was answered first (then nothing of this one is committed).
    pub async fn commit(
        &self,
        decided: Decided,
        answer: Option<Answer>,
    ) -> Result<SubmissionHistory, CommandError> {
        let changed = !decided.events.is_empty();
        let write = Write {
            events: decided.events,
            answer,
            quota: decided.quota,
        };
        self.writer.write(write).await?;
        if changed {
            self.wake.notify_one();
        }
        Ok(decided.history)
    }

    /// Decides and commits one command on an existing submission; returns its history.
    pub async fn execute(
        &self,
        id: &str,
        command: SubmissionCommand,
        metadata: HashMap<String, String>,
    ) -> Result<SubmissionHistory, CommandError> {
        let decided = self.decide(id, command, metadata).await?;
        self.commit(decided, None).await
    }

    /// Files a new submission under a freshly generated id. If the id does exist after all (a
    /// retry reusing its id), the commit's optimistic-concurrency check refuses it and the
    /// caller is told `AlreadyExists`. Returns the new submission's history.
    pub async fn create(
        &self,
        id: &str,
        command: SubmissionCommand,
        metadata: HashMap<String, String>,
    ) -> Result<SubmissionHistory, CommandError> {
        let decided = self.decide_new(id, command, metadata).await?;
        match self.commit(decided, None).await {
            Err(CommandError::Conflict) => Err(CommandError::Rule(SubmissionError::AlreadyExists)),
            other => other,
        }
    }

    /// Files many new submissions at once: each one's commands are decided by the aggregate
    /// exactly as [`Self::create`] and [`Self::execute`] decide them, and the resulting events
    /// are appended with multi-row inserts, all in one transaction.
    ///
    /// For loading benchmark data (a million submissions through `create` takes an hour on
    /// two cores): it skips the per-command round trips, not the rules. Every id must be new;
    /// an id that already has events fails the whole call on the primary key, so nothing is
    /// ever overwritten or half-imported. Returns the number of events appended.
    pub async fn import(
        &self,
        submissions: Vec<(String, Vec<SubmissionCommand>)>,
        metadata: &HashMap<String, String>,
    ) -> Result<u64, CommandError> {
        let mut rows = Vec::new();
        for (id, commands) in submissions {
            let mut state = Submission::default();
            let mut sequence = 0usize;
            for command in commands {
                let sink = Default::default();
                state
                    .handle(command, &self.services, &sink)
                    .await
                    .map_err(CommandError::Rule)?;
                for event in sink.collect().await {
                    state.apply(event.clone());
                    sequence += 1;
                    let envelope = EventEnvelope::<Submission> {
                        aggregate_id: id.clone(),
                        sequence,
                        payload: event,
                        metadata: metadata.clone(),
                    };
                    rows.push(cqrs_es::persist::SerializedEvent::try_from(&envelope)?);
                }
            }
        }
        let appended = rows.len() as u64;
        macro_rules! append {
            ($pool:expr, $database:ty) => {{
                let mut tx = {
                    let _waiting = redtape_metrics::Waiting::start();
                    $pool.begin().await?
                };
                // 7 binds per event: far below both drivers' limits.
                for chunk in rows.chunks(1000) {
                    let mut insert = sqlx::QueryBuilder::<$database>::new(
                        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                         event_version, payload, metadata) ",
                    );
                    insert.push_values(chunk, |mut row, e| {
                        row.push_bind(<Submission as Aggregate>::TYPE)
                            .push_bind(e.aggregate_id.as_str())
                            .push_bind(i64::try_from(e.sequence).unwrap_or(i64::MAX))
                            .push_bind(e.event_type.as_str())
                            .push_bind(e.event_version.as_str())
                            .push_bind(&e.payload)
                            .push_bind(&e.metadata);
                    });
                    insert.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }};
        }
        match &self.db {
            Db::Postgres(pool) => append!(pool, sqlx::Postgres),
            Db::Sqlite(pool) => append!(pool, sqlx::Sqlite),
        }
        self.wake.notify_one();
        Ok(appended)
    }

    /// The full history of a submission, `None` if it does not exist. Answered from the
    /// events, so a filer always reads its own latest write.
    pub async fn history(&self, id: &str) -> Result<Option<SubmissionHistory>, CommandError> {
        let envelopes = events_of(&self.store, id).await?;
        if envelopes.is_empty() {
            return Ok(None);
        }
        Ok(Some(SubmissionHistory::from_envelopes(envelopes)))
    }
}

impl SubmissionHistory {
    /// Folds envelopes (in sequence order) into the state they produce.
    pub fn from_envelopes(envelopes: Vec<EventEnvelope<Submission>>) -> Self {
        let mut state = Submission::default();
        let mut events = Vec::with_capacity(envelopes.len());
        for envelope in envelopes {
            state.apply(envelope.payload.clone());
            events.push(HistoryEntry {
                sequence: envelope.sequence,
                event: envelope.payload,
                metadata: envelope.metadata,
            });
        }
        SubmissionHistory { state, events }
    }
}
