//! The command side of the procedure catalogue: register, reform, abolish, and the seed
//! catalogue registered once as events.

use std::collections::HashMap;
use std::sync::Arc;

use redtape_domain::procedure_terms::{ProcedureCommand, ProcedureError, ProcedureTimeline};

use super::{CommandError, Commands};

/// The command side for procedures (the catalogue and its reforms): [`Commands`] with the
/// seed catalogue and a procedure's timeline.
pub type Procedures = Commands<ProcedureTimeline>;

impl Commands<ProcedureTimeline> {
    /// A procedure's timeline from its events; `None` if it was never registered.
    pub async fn timeline(
        &self,
        code: &str,
    ) -> Result<Option<ProcedureTimeline>, CommandError<ProcedureError>> {
        let (timeline, events) = self.state(code).await?;
        Ok((events > 0).then_some(timeline))
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
