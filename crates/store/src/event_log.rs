//! The event log as the projections read it: one row in commit order, and what an event that
//! does not decode is (corrupt stored data, named by its event). Shared by the main projector
//! ([`crate::projector`]) and the accounts projection ([`crate::accounts::projection`]).

use crate::StoreError;

/// A row of the event log in commit order.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct LoggedEvent {
    pub txid: i64,
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub payload: String,
}

impl LoggedEvent {
    /// The error for a payload that does not decode.
    pub(crate) fn corrupt(&self, e: serde_json::Error) -> StoreError {
        StoreError::Corrupt(format!(
            "event {} #{} ({}) does not decode: {e}",
            self.aggregate_id, self.sequence, self.event_type
        ))
    }
}
