//! The live projector's loop: project whenever woken (a local commit, or a PostgreSQL NOTIFY
//! from another process) and at least every `poll`; when the log is quiet, refresh the
//! bootstrap intervals that busy cells put off (see `cell_state`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use super::{Intervals, Projector, BATCH};

/// How long the loop waits after a wake before projecting: a burst of commits then shares
/// one transaction (fewer commits, which is what the single SQLite connection spends most on
/// under load). Read models still follow within tens of milliseconds.
const DEBOUNCE: Duration = Duration::from_millis(25);

/// How soon after the last event put-off intervals are refreshed.
const IDLE: Duration = Duration::from_millis(50);

impl Projector {
    /// Runs until `shutdown` turns true.
    pub async fn run(self, wake: Arc<Notify>, poll: Duration, mut shutdown: watch::Receiver<bool>) {
        if let crate::db::Db::Postgres(pool) = &self.db {
            spawn_listener(pool.clone(), wake.clone(), shutdown.clone());
        }
        let mut refreshed = std::time::Instant::now();
        loop {
            // Batches until one comes back short: no target query and no extra empty
            // transaction per wake, which matters under load. Events held back by the
            // PostgreSQL xmin gate are picked up at the next wake or poll.
            let mut last = 0;
            loop {
                match self.transaction(BATCH, Intervals::WhenDue).await {
                    Ok(pass) if !pass.drained => continue,
                    Ok(pass) => {
                        last = pass.events;
                        break;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "projector batch failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        break;
                    }
                }
            }
            // Filers and tokens have their own projection, caught up by each account command;
            // this finishes any such catch-up that did not (held back, abandoned, crashed).
            if let Err(e) =
                crate::accounts::projection::catch_up_within(&self.db, Duration::ZERO).await
            {
                tracing::warn!(error = %e, "accounts projection failed; retrying");
            }
            if last == 0 && self.has_due().await {
                // Idle: every published figure becomes exact again.
                if let Err(e) = self.transaction(BATCH, Intervals::All).await {
                    tracing::error!(error = %e, "interval refresh failed; retrying");
                }
            }
            // Another process may have projected procedure events (then this projector never
            // saw them): follow the read model, once per poll (our own batches reload it).
            self.refresh_catalogue(poll, &mut refreshed).await;
            // With intervals put off, come back soon even if nothing wakes us.
            let wait = if self.has_due().await { IDLE } else { poll };
            tokio::select! {
                _ = wake.notified() => tokio::time::sleep(DEBOUNCE).await,
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {
                    // One last pass so nothing committed before shutdown waits for a restart.
                    // Pooled connections first opened on an HTTP worker's runtime die with
                    // it when the server stops; the pool replaces them, so retry briefly.
                    for _ in 0..3 {
                        match self.catch_up_within(Duration::from_secs(5)).await {
                            Ok(_) => return,
                            Err(e) => tracing::debug!(error = %e, "final projection pass retried"),
                        }
                    }
                    tracing::warn!("final projection pass failed; the next start catches up");
                    return;
                }
            }
        }
    }
}

impl Projector {
    /// Reloads the procedure catalogue if the read model changed, at most once per `poll`
    /// (since `refreshed`): another process may have projected procedure events.
    pub(super) async fn refresh_catalogue(
        &self,
        poll: Duration,
        refreshed: &mut std::time::Instant,
    ) {
        if let Some(catalogue) = self
            .catalogue
            .as_ref()
            .filter(|_| refreshed.elapsed() >= poll)
        {
            *refreshed = std::time::Instant::now();
            if let Err(e) = catalogue.refresh(&self.db).await {
                tracing::warn!(error = %e, "catalogue refresh failed; retrying");
            }
        }
    }
}

/// Forwards PostgreSQL notifications of new events to the projector.
fn spawn_listener(pool: sqlx::PgPool, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
    tokio::spawn(async move {
        loop {
            let listener = async {
                let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
                listener.listen("redtape_events").await?;
                loop {
                    listener.recv().await?;
                    wake.notify_one();
                }
                #[allow(unreachable_code)]
                Ok::<(), sqlx::Error>(())
            };
            tokio::select! {
                result = listener => {
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "event listener lost; polling until it reconnects");
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                _ = shutdown.changed() => return,
            }
        }
    });
}
