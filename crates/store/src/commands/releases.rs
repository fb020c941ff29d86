//! The command side for annual releases; also their only reader, since a release's documents
//! live in its event.

use std::collections::HashMap;

use cqrs_es::Aggregate;
use redtape_domain::release::{Release, ReleaseCommand, ReleaseError, ReleaseEvent};

use super::{decide, events_of, CommandError, Store};
use crate::db::Db;
use crate::writer::Writer;

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
