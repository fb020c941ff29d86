//! Connecting to the configured store and migrating it.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::StoreError;

/// The embedded default, relative to the working directory.
pub const DEFAULT_SQLITE_PATH: &str = "./data/redtape.sqlite";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }
}

/// A connection pool to one of the two stores.
#[derive(Clone, Debug)]
pub enum Db {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// A connection (in practice a transaction) on either store, for code whose SQL is the same
/// on both (the projector, the writer).
pub(crate) enum Conn<'a> {
    Pg(&'a mut sqlx::PgConnection),
    Lite(&'a mut sqlx::SqliteConnection),
}

/// Runs `$body` with `$c` bound to the concrete connection and `$db` to its sqlx database
/// type (for query builders). The body is compiled once per store.
macro_rules! on_conn {
    ($conn:expr, $c:ident, $db:ident => $body:expr) => {
        match $conn {
            $crate::db::Conn::Pg($c) => {
                #[allow(dead_code)]
                type $db = sqlx::Postgres;
                let $c: &mut sqlx::PgConnection = &mut **$c;
                $body
            }
            $crate::db::Conn::Lite($c) => {
                #[allow(dead_code)]
                type $db = sqlx::Sqlite;
                let $c: &mut sqlx::SqliteConnection = &mut **$c;
                $body
            }
        }
    };
}
pub(crate) use on_conn;

/// WAL pages (80 MB) after which a committing connection checkpoints by itself (SQLite's
/// default is 1,000). The background checkpoints copy most frames first, so this one is
/// cheap; but it is needed: under constant writes the WAL is only restarted from its
/// beginning after a checkpoint that copied every frame, which one run right after a
/// commit does, and one every 500 ms from another connection almost never does (tried at
/// 250,000: the WAL grew to 800 MB between quiet moments and filing slowed by a quarter).
const SQLITE_AUTOCHECKPOINT_PAGES: &str = "20000";

/// Bytes the WAL file is cut back to once restarted. A long read (the projector's snapshot
/// of a large procedure) pins the WAL while filings go on, so it grows past its usual
/// 80 MB (to 180 MB in the bench); without a limit the file keeps its largest size.
const SQLITE_WAL_SIZE_LIMIT: &str = "134217728";

/// Pool sizing; the defaults suit the 2-core reference machine.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 32,
            // A request waits at most this long for a connection before it is answered 503
            // with Retry-After: long enough for a burst, short enough that a client whose
            // database is gone is told so before its own timeout.
            acquire_timeout: Duration::from_secs(2),
        }
    }
}

/// The SQLite page cache, in KiB when negative: 16 MiB (the default is 2 MiB). The projector
/// once re-read every dirty cell's observations, and 64 MiB kept them cached; it no longer
/// reads them (cells are kept in memory), while every commit scans the cache's whole hash
/// table (`pcache1TruncateUnsafe`: 7% of all CPU under filing load at 64 MiB).
pub(crate) const SQLITE_CACHE_PAGES: &str = "-16384";

/// The page cache during a rebuild, which builds the secondary indexes of a million rows
/// (and holds the only write connection anyway); set back to [`SQLITE_CACHE_PAGES`] after.
pub(crate) const SQLITE_REBUILD_CACHE_PAGES: &str = "-131072";

impl Db {
    /// Connects according to `DATABASE_URL`: `postgres://` or `postgresql://` selects
    /// PostgreSQL; `sqlite://path` or nothing selects the embedded store.
    pub async fn connect(url: Option<&str>, options: &PoolOptions) -> Result<Db, StoreError> {
        let url = url.map(str::trim).filter(|u| !u.is_empty());
        match url {
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                let opts = PgConnectOptions::from_str(u).map_err(|e| StoreError::BadUrl {
                    url: redact(u),
                    reason: e.to_string(),
                })?;
                let pool = PgPoolOptions::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(options.acquire_timeout)
                    .connect_with(opts)
                    .await
                    .map_err(StoreError::Connect)?;
                Ok(Db::Postgres(pool))
            }
            Some(u) if u.starts_with("sqlite:") => {
                let path = u
                    .trim_start_matches("sqlite://")
                    .trim_start_matches("sqlite:");
                Self::sqlite(Path::new(path), options).await
            }
            Some(u) => Err(StoreError::BadUrl {
                url: redact(u),
                reason: "use postgres://user@host/db or sqlite://path/to/file.sqlite".into(),
            }),
            None => Self::sqlite(Path::new(DEFAULT_SQLITE_PATH), options).await,
        }
    }

    /// Opens (creating if needed) an SQLite file tuned for durability: WAL with
    /// `synchronous=FULL`, so an acknowledged commit survives a power cut, not only a crash.
    pub async fn sqlite(path: &Path, options: &PoolOptions) -> Result<Db, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // Memory, not durability: the WAL settings above still hold.
            .pragma("cache_size", SQLITE_CACHE_PAGES)
            // Multi-row inserts keep a statement journal; in memory it costs no file writes.
            .pragma("temp_store", "memory")
            // The service checkpoints the WAL from another connection (see
            // `checkpoint_in_background`); this is the safety net if that does not run.
            .pragma("wal_autocheckpoint", SQLITE_AUTOCHECKPOINT_PAGES)
            .pragma("journal_size_limit", SQLITE_WAL_SIZE_LIMIT)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            // One connection. SQLite admits one writer at a time; with several connections,
            // writers collide on the lock and SQLite's busy handler makes them sleep with
            // backoff (measured: p99 133 ms, 930 submissions/s at 32 clients). One
            // connection turns that into a FIFO queue in the pool, and statements on an
            // embedded database take microseconds.
            .max_connections(1)
            // A file on this machine needs no ping before each use: a round trip through
            // the connection's worker thread per statement, on the one connection everything
            // shares.
            .test_before_acquire(false)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(opts)
            .await
            .map_err(StoreError::Connect)?;
        Ok(Db::Sqlite(pool))
    }

    /// On SQLite, copies the WAL into the database file every `every`, from a connection of
    /// its own, until the pool closes; a no-op on PostgreSQL.
    ///
    /// SQLite checkpoints automatically in the committing connection, and here every write
    /// shares one connection: under filing load the checkpoints took 9% of all CPU on that
    /// connection's thread (docs/benchmarks.md). A passive checkpoint from another connection
    /// blocks no writer and runs on the other core; a longer interval also copies a page
    /// that changed many times once.
    pub fn checkpoint_in_background(&self, every: Duration) {
        let Db::Sqlite(pool) = self else {
            return;
        };
        let (pool, options) = (pool.clone(), pool.connect_options());
        tokio::spawn(async move {
            let mut conn: Option<sqlx::SqliteConnection> = None;
            while !pool.is_closed() {
                tokio::time::sleep(every).await;
                if conn.is_none() {
                    conn = sqlx::ConnectOptions::connect(&*options).await.ok();
                }
                if let Some(c) = conn.as_mut() {
                    if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                        .execute(c)
                        .await
                    {
                        tracing::debug!(error = %e, "WAL checkpoint failed; reconnecting");
                        conn = None;
                    }
                }
            }
        });
    }

    /// Whether the pool was closed (the service is stopping): background tasks end then.
    pub fn is_closed(&self) -> bool {
        match self {
            Db::Postgres(pool) => pool.is_closed(),
            Db::Sqlite(pool) => pool.is_closed(),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Postgres(_) => Backend::Postgres,
            Db::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Applies the migrations in `migrations/postgres` or `migrations/sqlite` (embedded at
    /// build time, so the binary carries its schema).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Db::Postgres(pool) => {
                sqlx::migrate!("../../migrations/postgres")
                    .run(pool)
                    .await?
            }
            Db::Sqlite(pool) => sqlx::migrate!("../../migrations/sqlite").run(pool).await?,
        }
        Ok(())
    }

    /// On SQLite, an exclusive lock for as long as the returned file is open, or an error
    /// naming the store if another process holds it: SQLite is one serving process (a second
    /// would run a second projector and split the single-writer queue). `None` on
    /// PostgreSQL, where replicas share the database by design.
    ///
    /// The lock is `flock` on a file beside the database (`<file>.serving`), never on the
    /// database itself: closing any descriptor of the database file drops every POSIX lock
    /// SQLite holds on it in this process. It keeps out only another `redtape serve`; the
    /// command-line tools still open the store beside a running service.
    pub fn lock_exclusive(&self) -> Result<Option<std::fs::File>, StoreError> {
        let Db::Sqlite(pool) = self else {
            return Ok(None);
        };
        let database = pool.connect_options().get_filename().to_path_buf();
        let mut name = database.as_os_str().to_owned();
        name.push(".serving");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(std::path::PathBuf::from(name))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Invalid(format!(
                "another redtape process is already serving {}: the embedded store admits one \
                 (stop that one, or use PostgreSQL for several replicas)",
                database.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
        }
    }

    /// The pool's connections now: (open, idle, ceiling), for `/metrics`.
    pub fn pool_stats(&self) -> (u32, usize, u32) {
        crate::on_pool!(self, pool => (pool.size(), pool.num_idle(), pool.options().get_max_connections()))
    }

    /// A cheap round trip, for `/readyz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        crate::on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    pub async fn close(&self) {
        crate::on_pool!(self, pool => pool.close().await)
    }

    /// A consistent read-only view of the store that holds no write lock: on SQLite a
    /// connection of its own (the pool's one connection stays free for filings), on
    /// PostgreSQL a `REPEATABLE READ READ ONLY` transaction. For reads whose cost grows with
    /// the data (loading the projector's cell state), which must not hold up writers.
    pub(crate) async fn snapshot(&self) -> Result<Snapshot, sqlx::Error> {
        match self {
            Db::Postgres(pool) => Ok(Snapshot::Pg(
                pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?,
            )),
            Db::Sqlite(pool) => {
                let options = (*pool.connect_options()).clone().read_only(true);
                let mut conn = sqlx::ConnectOptions::connect(&options).await?;
                // A deferred read transaction: its first read fixes the snapshot (WAL).
                sqlx::query("BEGIN").execute(&mut conn).await?;
                Ok(Snapshot::Lite(conn))
            }
        }
    }
}

/// See [`Db::snapshot`]. Dropping it ends the read transaction (rolled back: it wrote
/// nothing).
pub(crate) enum Snapshot {
    Pg(sqlx::Transaction<'static, sqlx::Postgres>),
    Lite(sqlx::SqliteConnection),
}

impl Snapshot {
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            Snapshot::Pg(tx) => Conn::Pg(tx),
            Snapshot::Lite(conn) => Conn::Lite(conn),
        }
    }
}

pub use sqlx::Error as SqlxError;

/// Whether a database error means "not reachable right now" (503) rather than a bug (500).
///
/// Besides the transport failures, PostgreSQL tells a client its session is going away with
/// SQLSTATE class 08 (connection exception), 57P01-57P03 (terminated by an administrator, a
/// crash or a restart: what `pg_terminate_backend` and a restart send) and 53300 (too many
/// connections); SQLite says SQLITE_BUSY (5) when another process holds its write lock past
/// the busy timeout. All of these pass; a retry after a moment succeeds.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08")
                || matches!(
                    code.as_ref(),
                    "57P01" | "57P02" | "57P03" | "53300" | "5" | "517"
                )
        }),
        // sqlx reports a connection that closed mid-message as a protocol error.
        sqlx::Error::Protocol(message) => {
            message.contains("closed") || message.contains("unexpected end")
        }
        _ => false,
    }
}

/// Begins a PostgreSQL write transaction; the wait for a pooled connection is counted in
/// `redtape_db_pool_waiting`, where an exhausted pool shows before it turns into 503s.
pub(crate) async fn begin_pg(
    pool: &sqlx::PgPool,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    let _waiting = redtape_metrics::Waiting::start();
    pool.begin().await
}

/// Begins an SQLite write transaction (`BEGIN IMMEDIATE`: the write lock is taken at once, so
/// a transaction never fails to upgrade later), counted like [`begin_pg`].
pub(crate) async fn begin_lite(
    pool: &sqlx::SqlitePool,
) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
    let _waiting = redtape_metrics::Waiting::start();
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// Hides a password in a URL before it reaches an error message or a log.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Creates an empty PostgreSQL database through an administrative connection and returns the
/// URL of the new database (for tests and benchmarks that must not touch real data).
pub async fn create_pg_database(admin_url: &str, name: &str) -> Result<String, StoreError> {
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(StoreError::BadUrl {
            url: name.to_string(),
            reason: "database names here are lower-case letters, digits and _".into(),
        });
    }
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(admin_url)
        .await
        .map_err(StoreError::Connect)?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await?;
    pool.close().await;
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url, |(base, _)| base);
    Ok(format!("{base}/{name}"))
}

/// Drops a database created by [`create_pg_database`], closing its sessions.
pub async fn drop_pg_database(admin_url: &str, name: &str) -> Result<(), StoreError> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(admin_url)
        .await
        .map_err(StoreError::Connect)?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&pool)
        .await?;
    pool.close().await;
    Ok(())
}

/// Counts the events in the log (bench and operations checks).
pub async fn count_events(db: &Db) -> Result<i64, StoreError> {
    let n: (i64,) = crate::on_pool!(db, pool =>
        sqlx::query_as("SELECT count(*) FROM events").fetch_one(pool).await)?;
    Ok(n.0)
}

/// Counts the events of one aggregate type (e.g. `<Submission as Aggregate>::TYPE`), so a
/// check of filed submissions is not thrown off by procedure or release events.
pub async fn count_events_of(db: &Db, aggregate_type: &str) -> Result<i64, StoreError> {
    let n: (i64,) = crate::on_pool!(db, pool =>
        sqlx::query_as("SELECT count(*) FROM events WHERE aggregate_type = $1")
            .bind(aggregate_type)
            .fetch_one(pool).await)?;
    Ok(n.0)
}

/// Creates `pgbench_events`, a table shaped like `events` (same columns, types, defaults,
/// primary key and commit-order index; no triggers), for the bench's pgbench baseline: a
/// durable single-row insert of an event-sized row. PostgreSQL only.
pub async fn create_pgbench_events(db: &Db) -> Result<(), StoreError> {
    let Db::Postgres(pool) = db else {
        return Err(StoreError::Invalid(
            "pgbench_events is for PostgreSQL".into(),
        ));
    };
    sqlx::query("DROP TABLE IF EXISTS pgbench_events")
        .execute(pool)
        .await?;
    sqlx::query(
        "CREATE TABLE pgbench_events (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS \
         INCLUDING INDEXES)",
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Counts the observation rows.
pub async fn count_observations(db: &Db) -> Result<i64, StoreError> {
    let n: (i64,) = crate::on_pool!(db, pool =>
        sqlx::query_as("SELECT count(*) FROM observations").fetch_one(pool).await)?;
    Ok(n.0)
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/redtape"),
            "postgres://app:***@db:5432/redtape"
        );
        assert_eq!(
            redact("postgres://app@db/redtape"),
            "postgres://app@db/redtape"
        );
        assert_eq!(redact("mysql://x"), "mysql://x");
    }

    /// migrations/README.md: SQL that is the same on both stores is written once, in
    /// `shared/`, and linked from each store's directory.
    #[test]
    fn migrations_are_written_once() {
        use std::collections::BTreeMap;
        use std::path::{Path, PathBuf};
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
        let list = |dir: &str| -> BTreeMap<String, PathBuf> {
            std::fs::read_dir(root.join(dir))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "sql"))
                .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
                .collect()
        };
        let (postgres, sqlite, shared) = (list("postgres"), list("sqlite"), list("shared"));
        assert_eq!(
            postgres.keys().collect::<Vec<_>>(),
            sqlite.keys().collect::<Vec<_>>(),
            "every version exists for both stores"
        );
        for name in shared.keys() {
            for store in [&postgres, &sqlite] {
                let link = std::fs::read_link(&store[name])
                    .unwrap_or_else(|_| panic!("{name} is in shared/ but a copy, not a link"));
                assert_eq!(link, Path::new("../shared").join(name));
            }
        }
        for (name, path) in &postgres {
            if !shared.contains_key(name) {
                assert_ne!(
                    std::fs::read(path).unwrap(),
                    std::fs::read(&sqlite[name]).unwrap(),
                    "{name} is the same on both stores: move it to shared/"
                );
            }
        }
        assert!(shared.len() >= 8, "{shared:?}");
    }
}
