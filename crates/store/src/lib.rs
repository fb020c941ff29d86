//! # redtape-store
//!
//! Everything that touches a database, for both supported stores:
//!
//! - **PostgreSQL** (`postgres://...`, production) through postgres-es;
//! - **SQLite** (`sqlite://path`, the embedded default `./data/redtape.sqlite`) through sqlite-es.
//!
//! One SQL text serves both wherever possible (sqlx binds `$1` by number on SQLite too), so the
//! two stores cannot drift apart in behaviour. Modules:
//!
//! - [`db`]: connecting, pool settings (durability first), migrations from `migrations/`.
//! - [`catalogue`]: the procedure catalogue in force, in memory, rebuilt from events.
//! - [`commands`]: the cqrs-es framework for the `Submission` aggregate and its event history.
//! - [`writer`]: every write of the command side grouped into one transaction per burst,
//!   with the answers of requests that carry an `Idempotency-Key`.
//! - [`group_commit`]: cqrs-es's repositories with their writes sent through the writer.
//! - [`projector`]: the checkpointed, exactly-once projector that tails the event log in commit
//!   order and maintains the read models (DESIGN.md "Storage"); also `rebuild`.
//! - [`cells`]: the `index_cells` and `index_cbi` read models (methodology §3, §5).
//! - [`observations`]: the `observations` read model, one row per submission.
//! - [`microdata`]: anonymised, coarsened observations of non-suppressed cells.
//! - [`moderation`]: the moderation queue, a filer's daily count, response statistics.
//! - [`accounts`]: filers and tokens as events, and their `filers`/`tokens` read models.
//! - [`tokens`]: authenticating bearer tokens (hashes only), officers' province scopes.
//! - [`idempotency`]: stored first responses for `Idempotency-Key`.
//! - [`limits`]: the rate limit and the daily cap shared by replicas (PostgreSQL).
//! - [`restore`]: re-stamping the commit order after a restore into another cluster.

// Tests may unwrap: a panic is how a test fails.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod accounts;
pub mod catalogue;
pub mod cells;
pub mod commands;
pub mod db;
mod event_log;
pub mod group_commit;
pub mod idempotency;
pub mod limits;
pub mod microdata;
pub mod moderation;
pub mod observations;
pub mod projector;
pub mod restore;
mod secrets;
pub mod tokens;
pub mod writer;

pub use catalogue::Catalogue;
pub use commands::{
    CommandError, Commands, Decided, Filers, Procedures, Releases, SubmissionHistory, Submissions,
    Tokens,
};
pub use db::{Backend, Db};
pub use projector::Projector;

/// The cause of a failure, kept whole (its own sources included) for the log, never flattened
/// into a message; shared, so an error that reaches every waiter of one group commit stays
/// cloneable.
pub type Cause = std::sync::Arc<dyn std::error::Error + Send + Sync>;

/// A cause that is only a message: a broken invariant with no underlying error.
pub fn because(message: impl Into<String>) -> Cause {
    let boxed: Box<dyn std::error::Error + Send + Sync> = message.into().into();
    boxed.into()
}

/// Errors of the storage layer. The API maps them once to problem+json (a 503 for an
/// unavailable database, never a panic).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid DATABASE_URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("cannot apply migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("stored data cannot be read: {0}")]
    Corrupt(String),
    /// A request the store refuses on its face (an operator's mistake, not a bug).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Runs the same code on whichever pool the store has. The body is compiled once per backend,
/// so it must only use what both sqlx drivers support.
#[macro_export]
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Postgres($pool) => $body,
            $crate::db::Db::Sqlite($pool) => $body,
        }
    };
}

/// Timestamps are stored as RFC 3339 text with microseconds in UTC on both stores, so a
/// rebuild writes byte-identical rows.
pub fn timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
