//! The command side of the procedure catalogue: register, reform, abolish, and the seed
//! catalogue registered once as events.

use std::collections::HashMap;
use std::sync::Arc;

use cqrs_es::Aggregate;
use redtape_domain::procedure_terms::{ProcedureCommand, ProcedureError, ProcedureTimeline};
use tokio::sync::Notify;

use super::{decide, events_of, CommandError, Store};
use crate::db::Db;
use crate::writer::Writer;

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
