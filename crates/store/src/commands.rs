//! Executing commands on the `Submission` aggregate and reading its history.
//!
//! This does what `CqrsFramework::execute` does (load, handle, commit) but keeps the committed
//! envelopes, and it runs no in-handler queries: read models are the projector's job, fed from
//! the log (DESIGN.md: an in-handler view update is lost for good on a crash or a race).
//! After every commit the projector is woken, so read models follow within milliseconds.

use std::collections::HashMap;
use std::sync::Arc;

use cqrs_es::persist::{EventStoreAggregateContext, PersistedEventStore};
use cqrs_es::{Aggregate, AggregateContext, AggregateError, EventEnvelope, EventStore};
use postgres_es::PostgresEventRepository;
use redtape_domain::procedure_terms::{ProcedureCommand, ProcedureError, ProcedureTimeline};
use redtape_domain::release::{Release, ReleaseCommand, ReleaseError, ReleaseEvent};
use redtape_domain::submission::{
    Submission, SubmissionCommand, SubmissionError, SubmissionEvent, SubmissionServices,
};
use tokio::sync::Notify;

use crate::db::Db;
use crate::group_commit::GroupCommitRepository;

/// Why a command did not commit.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// A business rule refused it (4xx).
    #[error(transparent)]
    Rule(#[from] SubmissionError),
    /// Another command on the same submission committed first; retrying is safe.
    #[error("another change to this submission was saved at the same moment; retry")]
    Conflict,
    /// The database could not be reached (503).
    #[error("the event store is unavailable: {0}")]
    Unavailable(String),
    /// Anything else (500): logged with its cause, reported without internals.
    #[error("unexpected event store error: {0}")]
    Internal(String),
}

impl From<AggregateError<SubmissionError>> for CommandError {
    fn from(e: AggregateError<SubmissionError>) -> Self {
        match e {
            AggregateError::UserError(rule) => CommandError::Rule(rule),
            AggregateError::AggregateConflict => CommandError::Conflict,
            AggregateError::DatabaseConnectionError(e) => CommandError::Unavailable(e.to_string()),
            AggregateError::DeserializationError(e) => CommandError::Internal(e.to_string()),
            AggregateError::UnexpectedError(e) => CommandError::Internal(e.to_string()),
        }
    }
}

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

/// The event store of one aggregate type, on either backend.
enum Store<A: Aggregate> {
    Postgres(PersistedEventStore<PostgresEventRepository, A>),
    Sqlite(PersistedEventStore<GroupCommitRepository, A>),
}

impl<A: Aggregate> Store<A> {
    fn new(db: &Db) -> Self {
        match db {
            Db::Postgres(pool) => Store::Postgres(PersistedEventStore::new_event_store(
                PostgresEventRepository::new(pool.clone()),
            )),
            Db::Sqlite(pool) => Store::Sqlite(PersistedEventStore::new_event_store(
                GroupCommitRepository::new(pool.clone()),
            )),
        }
    }
}

macro_rules! on_store {
    ($store:expr, $s:ident => $body:expr) => {
        match $store {
            Store::Postgres($s) => $body,
            Store::Sqlite($s) => $body,
        }
    };
}

/// Loads an aggregate, lets it decide `command`, and commits what it decided (what
/// `CqrsFramework::execute` does, without the in-handler queries). Returns the committed
/// envelopes.
async fn decide<A: Aggregate>(
    store: &Store<A>,
    id: &str,
    command: A::Command,
    services: &A::Services,
    metadata: HashMap<String, String>,
) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
    on_store!(store, store => {
        let mut context = store.load_aggregate(id).await?;
        let sink = Default::default();
        context
            .aggregate()
            .handle(command, services, &sink)
            .await
            .map_err(AggregateError::UserError)?;
        store.commit(sink.collect().await, context, metadata).await
    })
}

/// The events of one aggregate, in sequence order; empty if it has none.
async fn events_of<A: Aggregate>(
    store: &Store<A>,
    id: &str,
) -> Result<Vec<EventEnvelope<A>>, CommandError> {
    on_store!(store, store => store.load_events(id).await).map_err(|e| match e {
        AggregateError::DatabaseConnectionError(e) => CommandError::Unavailable(e.to_string()),
        other => CommandError::Internal(other.to_string()),
    })
}

/// The command side for submissions.
pub struct Submissions {
    db: Db,
    store: Store<Submission>,
    services: SubmissionServices,
    wake: Arc<Notify>,
}

impl Submissions {
    pub fn new(db: &Db, services: SubmissionServices, wake: Arc<Notify>) -> Self {
        Self {
            db: db.clone(),
            store: Store::new(db),
            services,
            wake,
        }
    }

    /// Decides and commits one command; returns the committed events. The commit is durable
    /// when this returns Ok (both stores commit synchronously).
    pub async fn execute(
        &self,
        id: &str,
        command: SubmissionCommand,
        metadata: HashMap<String, String>,
    ) -> Result<Vec<EventEnvelope<Submission>>, CommandError> {
        let committed = decide(&self.store, id, command, &self.services, metadata).await?;
        if !committed.is_empty() {
            self.wake.notify_one();
        }
        Ok(committed)
    }

    /// Files a new submission under a freshly generated id. The id cannot have events yet,
    /// so the aggregate is not loaded (one round trip saved on the hot path); if it does exist
    /// after all (a retry reusing its id), the commit's optimistic-concurrency check refuses
    /// it and the caller is told `AlreadyExists`. Returns the new submission's history.
    pub async fn create(
        &self,
        id: &str,
        command: SubmissionCommand,
        metadata: HashMap<String, String>,
    ) -> Result<SubmissionHistory, CommandError> {
        let committed = on_store!(&self.store, store => {
            let mut context = EventStoreAggregateContext {
                aggregate_id: id.to_string(),
                aggregate: Submission::default(),
                current_sequence: 0,
                current_snapshot: None,
            };
            let sink = Default::default();
            context
                .aggregate
                .handle(command, &self.services, &sink)
                .await
                .map_err(CommandError::Rule)?;
            match store.commit(sink.collect().await, context, metadata).await {
                Err(AggregateError::AggregateConflict) => {
                    return Err(CommandError::Rule(SubmissionError::AlreadyExists))
                }
                other => other?,
            }
        });
        self.wake.notify_one();
        Ok(SubmissionHistory::from_envelopes(committed))
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
                    rows.push(
                        cqrs_es::persist::SerializedEvent::try_from(&envelope)
                            .map_err(|e| CommandError::Internal(e.to_string()))?,
                    );
                }
            }
        }
        let appended = rows.len() as u64;
        let unavailable = |e: sqlx::Error| CommandError::Unavailable(e.to_string());
        macro_rules! append {
            ($pool:expr, $database:ty) => {{
                let mut tx = $pool.begin().await.map_err(unavailable)?;
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
                    insert
                        .build()
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| CommandError::Internal(e.to_string()))?;
                }
                tx.commit().await.map_err(unavailable)?;
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

/// The command side for procedures (the catalogue and its reforms).
pub struct Procedures {
    store: Store<ProcedureTimeline>,
    wake: Arc<Notify>,
}

impl Procedures {
    pub fn new(db: &Db, wake: Arc<Notify>) -> Self {
        Self {
            store: Store::new(db),
            wake,
        }
    }

    /// Executes one command on the procedure `code`.
    pub async fn execute(
        &self,
        code: &str,
        command: ProcedureCommand,
        metadata: HashMap<String, String>,
    ) -> Result<(), AggregateError<ProcedureError>> {
        let committed = decide(&self.store, code, command, &(), metadata).await?;
        if !committed.is_empty() {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// A procedure's timeline from its events; `None` if it was never registered.
    pub async fn timeline(&self, code: &str) -> Result<Option<ProcedureTimeline>, CommandError> {
        let envelopes = events_of(&self.store, code).await?;
        if envelopes.is_empty() {
            return Ok(None);
        }
        let mut timeline = ProcedureTimeline::default();
        for envelope in envelopes {
            timeline.apply(envelope.payload);
        }
        Ok(Some(timeline))
    }

    /// Registers every procedure of `seed` that is not registered yet, with terms in force
    /// from `effective_from`; returns how many were registered. Safe to run at every start.
    pub async fn seed(
        &self,
        seed: &redtape_domain::ProcedureCatalogue,
        effective_from: chrono::NaiveDate,
    ) -> Result<usize, CommandError> {
        let mut registered = 0;
        for procedure in seed.iter() {
            let code = procedure.code.as_str().to_string();
            let command = ProcedureCommand::Register {
                procedure: procedure.clone(),
                effective_from,
                at: chrono::Utc::now(),
            };
            let metadata = HashMap::from([("actor".to_string(), "seed".to_string())]);
            match self.execute(&code, command, metadata).await {
                Ok(()) => registered += 1,
                Err(AggregateError::UserError(ProcedureError::AlreadyRegistered)) => {}
                // Another process seeding at the same moment registered it first.
                Err(AggregateError::AggregateConflict) => {}
                Err(e) => return Err(CommandError::Internal(format!("seeding {code}: {e}"))),
            }
        }
        Ok(registered)
    }
}

/// The command side for annual releases; also their only reader, since a release's documents
/// live in its event (they must never change, so no read model could add anything).
pub struct Releases {
    db: Db,
    store: Store<Release>,
}

impl Releases {
    pub fn new(db: &Db) -> Self {
        Self {
            db: db.clone(),
            store: Store::new(db),
        }
    }

    /// Publishes the next revision of a year.
    pub async fn publish(
        &self,
        year: i32,
        command: ReleaseCommand,
        metadata: HashMap<String, String>,
    ) -> Result<ReleaseEvent, AggregateError<ReleaseError>> {
        let committed = decide(&self.store, &year.to_string(), command, &(), metadata).await?;
        committed
            .into_iter()
            .next()
            .map(|e| e.payload)
            .ok_or_else(|| AggregateError::UnexpectedError("publication committed nothing".into()))
    }

    /// The year's state (how many revisions, the latest one's hash).
    pub async fn state(&self, year: i32) -> Result<Release, CommandError> {
        let mut state = Release::default();
        for envelope in events_of(&self.store, &year.to_string()).await? {
            state.apply(envelope.payload);
        }
        Ok(state)
    }

    /// Every revision of a year, oldest first.
    pub async fn revisions(&self, year: i32) -> Result<Vec<ReleaseEvent>, CommandError> {
        Ok(events_of(&self.store, &year.to_string())
            .await?
            .into_iter()
            .map(|e| e.payload)
            .collect())
    }

    /// The years with at least one release, ascending.
    pub async fn years(&self) -> Result<Vec<i32>, CommandError> {
        let ids: Vec<(String,)> = crate::on_pool!(&self.db, pool =>
            sqlx::query_as("SELECT DISTINCT aggregate_id FROM events WHERE aggregate_type = $1")
                .bind(<Release as Aggregate>::TYPE)
                .fetch_all(pool).await)
        .map_err(|e| CommandError::Unavailable(e.to_string()))?;
        let mut years: Vec<i32> = ids
            .into_iter()
            .map(|(id,)| {
                id.parse()
                    .map_err(|_| CommandError::Internal(format!("release id {id:?} is not a year")))
            })
            .collect::<Result<_, _>>()?;
        years.sort_unstable();
        Ok(years)
    }
}
