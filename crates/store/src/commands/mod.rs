//! The command side of every aggregate: executing commands and reading an aggregate's events.
//!
//! This does what `CqrsFramework::execute` does (load, handle, commit) but keeps the committed
//! envelopes, and it runs no in-handler queries: read models are the projector's job, fed from
//! the log (DESIGN.md: an in-handler view update is lost for good on a crash or a race).
//! After every commit the projector is woken, so read models follow within milliseconds.
//!
//! Here: [`CommandError`] and the event store shared by all; one module per aggregate:
//! [`submissions`] (filings, changes, moderation, history), [`procedures`] (the catalogue),
//! [`releases`] (annual releases, also their only reader); [`Commands`] for the aggregates
//! that decide from their own events alone (procedures, filers, tokens).

use std::collections::HashMap;
use std::sync::Arc;

use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateContext, AggregateError, EventEnvelope, EventStore};
use postgres_es::PostgresEventRepository;
use redtape_domain::submission::SubmissionError;
use sqlite_es::SqliteEventRepository;
use tokio::sync::Notify;

use crate::db::Db;
use crate::group_commit::GroupCommitRepository;
use crate::writer::{WriteError, Writer};
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
    /// The filer has filed its daily cap of new submissions (429).
    #[error("the daily cap of {cap} submissions is reached")]
    CapReached { cap: u32 },
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
            WriteError::CapReached { cap } => CommandError::CapReached { cap },
            WriteError::Unavailable(e) => CommandError::Unavailable(e),
            WriteError::Internal(e) => CommandError::Internal(e),
        }
    }
}

/// The event store of one aggregate type, on either backend: the crates' reads, the
/// group-committing writer's writes.
pub(crate) enum Store<A: Aggregate> {
    Postgres(PersistedEventStore<GroupCommitRepository<PostgresEventRepository>, A>),
    Sqlite(PersistedEventStore<GroupCommitRepository<SqliteEventRepository>, A>),
}

impl<A: Aggregate> Store<A> {
    pub(crate) fn new(db: &Db, writer: &Writer) -> Self {
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
pub(crate) async fn decide<A: Aggregate>(
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
pub(crate) async fn events_of<A: Aggregate>(
    store: &Store<A>,
    id: &str,
) -> Result<Vec<EventEnvelope<A>>, CommandError<A::Error>> {
    Ok(on_store!(store, store => store.load_events(id).await)?)
}

mod procedures;
mod releases;
mod submissions;

pub use procedures::Procedures;
pub use releases::Releases;
pub use submissions::{Decided, HistoryEntry, SubmissionHistory, Submissions};

/// The command side of an aggregate that decides from its own events alone: execute a
/// command on one instance, read an instance's state. The projector is woken after every
/// commit.
pub struct Commands<A: Aggregate> {
    store: Store<A>,
    wake: Arc<Notify>,
}

/// Filers: registration and profile (used through [`crate::accounts::Accounts`]).
pub type Filers = Commands<redtape_domain::filer::aggregate::Filer>;
/// Tokens: issue and revocation (used through [`crate::accounts::Accounts`]).
pub type Tokens = Commands<redtape_domain::token::Token>;

impl<A: Aggregate<Services = ()>> Commands<A> {
    pub fn new(db: &Db, wake: Arc<Notify>) -> Self {
        Self {
            store: Store::new(db, &Writer::new(db)),
            wake,
        }
    }

    /// Executes one command on instance `id`.
    pub async fn execute(
        &self,
        id: &str,
        command: A::Command,
        metadata: HashMap<String, String>,
    ) -> Result<(), CommandError<A::Error>> {
        let committed = decide(&self.store, id, command, &(), metadata).await?;
        if !committed.is_empty() {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Instance `id` as its events leave it, with how many there are (0: never created).
    pub async fn state(&self, id: &str) -> Result<(A, usize), CommandError<A::Error>> {
        let envelopes = events_of(&self.store, id).await?;
        let n = envelopes.len();
        let mut state = A::default();
        for envelope in envelopes {
            state.apply(envelope.payload);
        }
        Ok((state, n))
    }
}
