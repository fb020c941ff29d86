//! One projector among many replicas (`redtape serve --projector on|off|auto`).
//!
//! Projectors are safe to run side by side (they serialize on the checkpoint row and each
//! checks that its cells are at the checkpoint before a batch), but every extra one only adds
//! lock waits and a copy of the cell state. So on PostgreSQL, `auto` elects one: the replica
//! holding a session-level advisory lock on a connection of its own projects; the others try
//! to take the lock every [`RETRY`]. The lock is the database's, scoped to this database, and
//! released by PostgreSQL the moment the holder's session ends: a leader killed with `kill -9`
//! closes its socket, and a follower takes over at its next try. A leader that loses its lock
//! connection (the database restarted, the network failed) stops projecting and competes
//! again like any follower.
//!
//! Replicas that do not project still serve everything: the read models are in the database,
//! the lag is read from it, new events wake the leader through PostgreSQL's NOTIFY, and a
//! request that must see its own effect (a release, a procedure change) waits for the
//! leader's checkpoint instead of projecting ([`super::Projector::settle`]).
//!
//! SQLite is one process: `auto` means `on` there, and a second process serving the same file
//! is refused at start (`Db::lock_exclusive`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use sqlx::{ConnectOptions, Connection, PgConnection};
use tokio::sync::{watch, Notify};

use super::Projector;
use crate::db::Db;
use crate::StoreError;

/// How often a follower tries to take the lock, and a leader checks it still holds it: a dead
/// leader is replaced within about this long.
pub const RETRY: Duration = Duration::from_secs(1);

/// How long a leader waits for its lock connection to answer before it steps down.
const HELD_WITHIN: Duration = Duration::from_secs(2);

/// The advisory lock's key: "redtape" and a version byte, so no other application's lock in
/// the same database is likely to collide.
const LOCK_KEY: i64 = 0x7265_6474_6170_6501;

/// Whether this process projects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Always (the only choice with SQLite; several on PostgreSQL serialize, safely).
    On,
    /// Never: an API-only replica.
    Off,
    /// On SQLite, always; on PostgreSQL, while this process holds the leader lock.
    Auto,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::On => "on",
            Mode::Off => "off",
            Mode::Auto => "auto",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "on" => Ok(Mode::On),
            "off" => Ok(Mode::Off),
            "auto" => Ok(Mode::Auto),
            other => Err(format!("expected on, off or auto, got {other:?}")),
        }
    }
}

/// The leader lock, held for as long as this value (and its connection) lives.
pub struct Lease {
    conn: PgConnection,
}

impl Lease {
    /// Whether the lock's session still answers (then it still holds the lock).
    async fn held(&mut self) -> bool {
        let ping = sqlx::query("SELECT 1").execute(&mut self.conn);
        matches!(tokio::time::timeout(HELD_WITHIN, ping).await, Ok(Ok(_)))
    }

    /// Releases the lock at once (dropping the lease also does, when the connection closes).
    async fn release(self) {
        let _ = self.conn.close().await;
    }
}

/// A connection that competes for the lock.
pub struct Candidate {
    conn: PgConnection,
}

impl Candidate {
    /// A connection of its own to compete for the lock with (outside the pool: the lock is
    /// the session's, and a pooled connection would be handed to other work).
    pub async fn connect(db: &Db) -> Result<Candidate, StoreError> {
        let Db::Postgres(pool) = db else {
            return Err(StoreError::Io(std::io::Error::other(
                "leader election needs PostgreSQL",
            )));
        };
        let conn = pool.connect_options().connect().await?;
        Ok(Candidate { conn })
    }

    /// Takes the lock if no other session holds it.
    pub async fn try_lead(mut self) -> Result<Result<Lease, Candidate>, StoreError> {
        let (won,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
            .bind(LOCK_KEY)
            .fetch_one(&mut self.conn)
            .await?;
        Ok(if won {
            Ok(Lease { conn: self.conn })
        } else {
            Err(self)
        })
    }
}

/// Tries once to take the lock (at start, so the first leader catches up before it serves).
pub async fn try_lead(db: &Db) -> Result<Option<Lease>, StoreError> {
    Ok(Candidate::connect(db).await?.try_lead().await?.ok())
}

impl Projector {
    /// Whether this process projects now (settles then project rather than wait).
    pub fn projects(&self) -> bool {
        self.projects.load(Ordering::Relaxed)
    }

    /// Says whether this process projects (at start, before [`Self::supervise`] takes over).
    pub fn set_projects(&self, on: bool) {
        self.projects.store(on, Ordering::Relaxed);
        redtape_metrics::get().projector_leader.set(i64::from(on));
    }

    /// Runs the projector as `mode` says until `shutdown` turns true. `lease` is the lock if
    /// it was won at start (`auto` on PostgreSQL).
    pub async fn supervise(
        self,
        mode: Mode,
        lease: Option<Lease>,
        wake: Arc<Notify>,
        poll: Duration,
        shutdown: watch::Receiver<bool>,
    ) {
        match (mode, &self.db) {
            (Mode::On, _) | (Mode::Auto, Db::Sqlite(_)) => {
                self.set_projects(true);
                self.clone().run(wake, poll, shutdown).await;
                self.set_projects(false);
            }
            (Mode::Off, _) => {
                self.set_projects(false);
                self.follow(poll, shutdown, None).await;
            }
            (Mode::Auto, Db::Postgres(_)) => self.elect(lease, wake, poll, shutdown).await,
        }
    }

    /// `auto` on PostgreSQL: follow until the lock is won, lead until it is lost, again.
    async fn elect(
        self,
        mut lease: Option<Lease>,
        wake: Arc<Notify>,
        poll: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let mut held = match lease.take() {
                Some(lease) => lease,
                None => match self.follow(poll, shutdown.clone(), Some(&self.db)).await {
                    Some(lease) => lease,
                    None => return,
                },
            };
            self.set_projects(true);
            redtape_metrics::get().projector_takeovers.inc();
            tracing::info!("this replica runs the projector (leader lock taken)");
            let (stop_term, term) = watch::channel(false);
            let run = self.clone().run(wake.clone(), poll, term);
            tokio::pin!(run);
            let mut stepping_down = false;
            loop {
                tokio::select! {
                    _ = &mut run => break,
                    _ = tokio::time::sleep(RETRY), if !stepping_down => {
                        if !held.held().await {
                            tracing::warn!("leader lock connection lost; this replica stops projecting");
                            stepping_down = true;
                            let _ = stop_term.send(true);
                        }
                    }
                    _ = shutdown.changed(), if !stepping_down => {
                        stepping_down = true;
                        let _ = stop_term.send(true);
                    }
                }
            }
            self.set_projects(false);
            // Only now, after the last batch: another leader must not start meanwhile.
            held.release().await;
            if *shutdown.borrow() {
                return;
            }
        }
    }

    /// A replica that does not project: keeps its procedure catalogue in step with the read
    /// model (filings are validated against it), and with `compete`, tries to take the leader
    /// lock every [`RETRY`]; returns the lease when it wins, `None` at shutdown.
    async fn follow(
        &self,
        poll: Duration,
        mut shutdown: watch::Receiver<bool>,
        compete: Option<&Db>,
    ) -> Option<Lease> {
        let mut candidate: Option<Candidate> = None;
        let mut refreshed = std::time::Instant::now();
        loop {
            if let Some(db) = compete {
                let attempt = match candidate.take() {
                    Some(c) => Ok(c),
                    None => Candidate::connect(db).await,
                };
                match attempt {
                    Ok(c) => match c.try_lead().await {
                        Ok(Ok(lease)) => return Some(lease),
                        Ok(Err(c)) => candidate = Some(c),
                        Err(e) => tracing::debug!(error = %e, "leader lock not tried"),
                    },
                    Err(e) => tracing::debug!(error = %e, "no connection to try the leader lock"),
                }
            }
            self.refresh_catalogue(poll, &mut refreshed).await;
            tokio::select! {
                _ = tokio::time::sleep(RETRY.min(poll)) => {}
                _ = shutdown.changed() => return None,
            }
        }
    }

    /// Waits, without projecting, until the checkpoint passes every event committed before
    /// the call (another replica projects); false if `deadline` passed first.
    pub(super) async fn wait_for_leader(&self, deadline: Duration) -> Result<bool, StoreError> {
        let started = std::time::Instant::now();
        let Some(target) = self.target().await? else {
            return Ok(true);
        };
        loop {
            if super::checkpoint(&self.db).await? >= target {
                return Ok(true);
            }
            if started.elapsed() > deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
