//! Executing commands on the `Submission` aggregate and reading its history.
//!
//! This does what `CqrsFramework::execute` does (load, handle, commit) but keeps the committed
//! envelopes, and it runs no in-handler queries: read models are the projector's job, fed from
//! the log (DESIGN.md: an in-handler view update is lost for good on a crash or a race).
//! After every commit the projector is woken, so read models follow within milliseconds.

use std::collections::HashMap;
use std::sync::Arc;

use cqrs_es::persist::{PersistedEventStore, SerializedEvent};
use cqrs_es::{Aggregate, AggregateContext, AggregateError, EventEnvelope, EventStore};
use postgres_es::PostgresEventRepository;
use redtape_domain::procedure_terms::{ProcedureCommand, ProcedureError, ProcedureTimeline};
use redtape_domain::release::{Release, ReleaseCommand, ReleaseError, ReleaseEvent};
use redtape_domain::submission::{
    Submission, SubmissionCommand, SubmissionError, SubmissionEvent, SubmissionServices,
};
use sqlite_es::SqliteEventRepository;
use tokio::sync::Notify;

use crate::db::Db;
use crate::group_commit::GroupCommitRepository;
use crate::idempotency::Answer;
use crate::writer::{Write, WriteError, Writer};
use crate::Cause;

/// Why a command did not commit, for any aggregate: `E` is its rule error (submissions by
/// default). The API maps this type, never a cqrs-es one, so a store failure is classified
/// (503 or 500) in one place for every aggregate.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error = SubmissionError> {
    /// A business rule refused it (4xx).
    #[error(transparent)]
    Rule(E),
    /// Another command on the same aggregate committed first; retrying is safe.
    #[error("another change to the same record was saved at the same moment; retry")]
    Conflict,
    /// Another request with the same `Idempotency-Key` was answered first; its answer is the
    /// one to give.
    #[error("another request with this Idempotency-Key was answered first")]
    KeyTaken,
    /// The database could not be reached (503).
    #[error("the event store is unavailable")]
    Unavailable(#[source] Cause),
    /// Anything else (500): logged with its cause, reported without internals.
    #[error("unexpected event store error")]
    Internal(#[source] Cause),
}

/// A database error is a 503 when the database could not be reached
/// ([`crate::db::is_unavailable`]), else a 500; the error itself is kept as the cause.
impl<E: std::error::Error> From<sqlx::Error> for CommandError<E> {
    fn from(e: sqlx::Error) -> Self {
        if crate::db::is_unavailable(&e) {
            CommandError::Unavailable(Arc::new(e))
        } else {
            CommandError::Internal(Arc::new(e))
        }
    }
}

/// An event that cannot be serialized is a bug (500).
impl<E: std::error::Error> From<cqrs_es::persist::PersistenceError> for CommandError<E> {
    fn from(e: cqrs_es::persist::PersistenceError) -> Self {
        CommandError::Internal(Arc::new(e))
    }
}

impl<E: std::error::Error> From<AggregateError<E>> for CommandError<E> {
    fn from(e: AggregateError<E>) -> Self {
        match e {
            AggregateError::UserError(rule) => CommandError::Rule(rule),
            AggregateError::AggregateConflict => CommandError::Conflict,
            AggregateError::DatabaseConnectionError(e) => CommandError::Unavailable(e.into()),
            AggregateError::DeserializationError(e) => CommandError::Internal(e.into()),
            AggregateError::UnexpectedError(e) => unexpected(e),
        }
    }
}

/// The event stores report only I/O as a connection error; a session PostgreSQL terminated
/// (a restart, `pg_terminate_backend`) or a pool timeout arrives as "unexpected", wrapping the
/// sqlx error: those are 503s too ([`crate::db::is_unavailable`]), the rest are 500s.
fn unexpected<E: std::error::Error>(
    e: Box<dyn std::error::Error + Send + Sync>,
) -> CommandError<E> {
    if e.downcast_ref::<sqlx::Error>()
        .is_some_and(crate::db::is_unavailable)
    {
        CommandError::Unavailable(e.into())
    } else {
        CommandError::Internal(e.into())
    }
}

impl<E: std::error::Error> From<WriteError> for CommandError<E> {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Conflict => CommandError::Conflict,
            WriteError::KeyTaken => CommandError::KeyTaken,
            WriteError::Unavailable(e) => CommandError::Unavailable(e),
            WriteError::Internal(e) => CommandError::Internal(e),
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

/// The event store of one aggregate type, on either backend: the crates' reads, the
/// group-committing writer's writes.
enum Store<A: Aggregate> {
    Postgres(PersistedEventStore<GroupCommitRepository<PostgresEventRepository>, A>),
    Sqlite(PersistedEventStore<GroupCommitRepository<SqliteEventRepository>, A>),
}

impl<A: Aggregate> Store<A> {
    fn new(db: &Db, writer: &Writer) -> Self {
        match db {
            Db::Postgres(pool) => Store::Postgres(PersistedEventStore::new_event_store(
                GroupCommitRepository::new(
                    PostgresEventRepository::new(pool.clone()),
                    writer.clone(),
                ),
            )),
            Db::Sqlite(pool) => Store::Sqlite(PersistedEventStore::new_event_store(
                GroupCommitRepository::new(
                    SqliteEventRepository::new(pool.clone()),
                    writer.clone(),
                ),
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

/// The events of one aggregate, in sequence order; empty if it has none. Loading applies no
/// rule, so the error is classified like any command's ([`CommandError::from`]).
async fn events_of<A: Aggregate>(
    store: &Store<A>,
    id: &str,
) -> Result<Vec<EventEnvelope<A>>, CommandError<A::Error>> {
    Ok(on_store!(store, store => store.load_events(id).await)?)
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
                let mut tx = $pool.begin().await?;
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

/// The command side for procedures (the catalogue and its reforms).
pub struct Procedures {
    store: Store<ProcedureTimeline>,
    wake: Arc<Notify>,
}

impl Procedures {
    pub fn new(db: &Db, wake: Arc<Notify>) -> Self {
        Self {
            store: Store::new(db, &Writer::new(db)),
            wake,
        }
    }

    /// Executes one command on the procedure `code`.
    pub async fn execute(
        &self,
        code: &str,
        command: ProcedureCommand,
        metadata: HashMap<String, String>,
    ) -> Result<(), CommandError<ProcedureError>> {
        let committed = decide(&self.store, code, command, &(), metadata).await?;
        if !committed.is_empty() {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// A procedure's timeline from its events; `None` if it was never registered.
    pub async fn timeline(
        &self,
        code: &str,
    ) -> Result<Option<ProcedureTimeline>, CommandError<ProcedureError>> {
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
    ) -> Result<usize, CommandError<ProcedureError>> {
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
                Err(CommandError::Rule(ProcedureError::AlreadyRegistered)) => {}
                // Another process seeding at the same moment registered it first.
                Err(CommandError::Conflict) => {}
                Err(CommandError::Unavailable(e)) => return Err(CommandError::Unavailable(e)),
                Err(e) => return Err(CommandError::Internal(Arc::new(Seeding { code, error: e }))),
            }
        }
        Ok(registered)
    }
}

/// A seed procedure that could not be registered, with why.
#[derive(Debug, thiserror::Error)]
#[error("seeding procedure {code}")]
struct Seeding {
    code: String,
    #[source]
    error: CommandError<ProcedureError>,
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
            store: Store::new(db, &Writer::new(db)),
        }
    }

    /// Publishes the next revision of a year.
    pub async fn publish(
        &self,
        year: i32,
        command: ReleaseCommand,
        metadata: HashMap<String, String>,
    ) -> Result<ReleaseEvent, CommandError<ReleaseError>> {
        let committed = decide(&self.store, &year.to_string(), command, &(), metadata).await?;
        committed
            .into_iter()
            .next()
            .map(|e| e.payload)
            .ok_or_else(|| CommandError::Internal(crate::because("publication committed nothing")))
    }

    /// The year's state (how many revisions, the latest one's hash).
    pub async fn state(&self, year: i32) -> Result<Release, CommandError<ReleaseError>> {
        let mut state = Release::default();
        for envelope in events_of(&self.store, &year.to_string()).await? {
            state.apply(envelope.payload);
        }
        Ok(state)
    }

    /// Every revision of a year, oldest first.
    pub async fn revisions(
        &self,
        year: i32,
    ) -> Result<Vec<ReleaseEvent>, CommandError<ReleaseError>> {
        Ok(events_of(&self.store, &year.to_string())
            .await?
            .into_iter()
            .map(|e| e.payload)
            .collect())
    }

    /// The years with at least one release, ascending.
    pub async fn years(&self) -> Result<Vec<i32>, CommandError<ReleaseError>> {
        let ids: Vec<(String,)> = crate::on_pool!(&self.db, pool =>
            sqlx::query_as("SELECT DISTINCT aggregate_id FROM events WHERE aggregate_type = $1")
                .bind(<Release as Aggregate>::TYPE)
                .fetch_all(pool).await)?;
        let mut years: Vec<i32> = ids
            .into_iter()
            .map(|(id,)| {
                id.parse().map_err(|_| {
                    CommandError::Internal(crate::because(format!(
                        "release id {id:?} is not a year"
                    )))
                })
            })
            .collect::<Result<_, _>>()?;
        years.sort_unstable();
        Ok(years)
    }
}
