//! cqrs-es's event repository with its writes sent through the group-committing
//! [`Writer`]: reads are postgres-es's or sqlite-es's own, and the rows written are exactly
//! the rows they write (same columns, same encodings).
//!
//! The submission commands commit through the writer directly (with their idempotency
//! answers); this adapter gives the other aggregates (procedures, releases) the same grouped
//! path, so every event of the service is written one way.

use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use serde_json::Value;

use crate::writer::{Write, WriteError, Writer};

/// `reads` for reads, the writer for writes.
pub struct GroupCommitRepository<R> {
    reads: R,
    writer: Writer,
}

impl<R> GroupCommitRepository<R> {
    pub fn new(reads: R, writer: Writer) -> Self {
        Self { reads, writer }
    }
}

impl<R: PersistedEventRepository> PersistedEventRepository for GroupCommitRepository<R> {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.reads.get_events::<A>(aggregate_id).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.reads
            .get_last_events::<A>(aggregate_id, last_sequence)
            .await
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        self.reads.get_snapshot::<A>(aggregate_id).await
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        if snapshot_update.is_some() {
            // Snapshots are not used by redtape; keep the crate's own path for them.
            return self.reads.persist::<A>(events, snapshot_update).await;
        }
        let write = Write {
            events: events.to_vec(),
            answer: None,
            quota: None,
        };
        self.writer.write(write).await.map_err(|e| match e {
            WriteError::Conflict => PersistenceError::OptimisticLockError,
            WriteError::Unavailable(cause) => PersistenceError::ConnectionError(Box::new(cause)),
            other => PersistenceError::UnknownError(Box::new(other)),
        })
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        self.reads.stream_events::<A>(aggregate_id).await
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        self.reads.stream_all_events::<A>().await
    }
}
