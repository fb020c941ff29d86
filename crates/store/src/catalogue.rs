//! The procedure catalogue in force, in memory: loaded from the `procedures` read model (the
//! projection of the Procedure aggregate's events) and reloaded by the projector whenever it
//! applies a Procedure event, so validation never queries the database per request.

use std::collections::BTreeMap;
use std::sync::RwLock;

use redtape_domain::procedure::{Procedure, ProcedureCatalogue, ProcedureCode};
use redtape_domain::procedure_terms::ProcedureTimeline;
use redtape_domain::submission::report::ProcedureLookup;
use redtape_domain::FieldViolation;

use crate::db::Db;
use crate::StoreError;

#[derive(Default)]
pub struct Catalogue {
    state: RwLock<(ProcedureCatalogue, BTreeMap<String, ProcedureTimeline>)>,
    /// (rows, sum of last_sequence) of the read model when last loaded: any projector, in any
    /// process, that applies a Procedure event changes it.
    signature: std::sync::Mutex<Option<(i64, i64)>>,
}

impl Catalogue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reloads if the read model changed since the last load, whoever changed it (another
    /// replica's projector, the CLI). One cheap query when nothing changed.
    pub async fn refresh(&self, db: &Db) -> Result<bool, StoreError> {
        let now = signature(db).await?;
        let known = self.signature.lock().ok().and_then(|s| *s);
        if known == Some(now) {
            return Ok(false);
        }
        self.reload(db).await?;
        Ok(true)
    }

    /// Reloads from the read model.
    pub async fn reload(&self, db: &Db) -> Result<(), StoreError> {
        let now = signature(db).await?;
        let rows: Vec<(String, String)> = crate::on_pool!(db, pool =>
            sqlx::query_as("SELECT code, timeline FROM procedures ORDER BY code")
                .fetch_all(pool).await)?;
        let mut catalogue = ProcedureCatalogue::default();
        let mut timelines = BTreeMap::new();
        for (code, json) in rows {
            let timeline: ProcedureTimeline = serde_json::from_str(&json)
                .map_err(|e| StoreError::Corrupt(format!("procedure {code}: {e}")))?;
            if let Some(procedure) = current(&code, &timeline) {
                catalogue.insert(procedure);
            }
            timelines.insert(code, timeline);
        }
        if let Ok(mut state) = self.state.write() {
            *state = (catalogue, timelines);
        }
        if let Ok(mut signature) = self.signature.lock() {
            *signature = Some(now);
        }
        Ok(())
    }

    /// The procedures with their current terms, by code.
    pub fn procedures(&self) -> Vec<Procedure> {
        self.state
            .read()
            .map(|s| s.0.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Every procedure's timeline of terms, by code.
    pub fn timelines(&self) -> BTreeMap<String, ProcedureTimeline> {
        self.state.read().map(|s| s.1.clone()).unwrap_or_default()
    }

    /// One procedure's timeline (a copy of that one only).
    pub fn timeline(&self, code: &str) -> Option<ProcedureTimeline> {
        self.with_timelines(|t| t.get(code).cloned())
    }

    /// Runs `f` over the timelines without copying them (the per-request path).
    pub fn with_timelines<R>(
        &self,
        f: impl FnOnce(&BTreeMap<String, ProcedureTimeline>) -> R,
    ) -> R {
        match self.state.read() {
            Ok(state) => f(&state.1),
            Err(_) => f(&BTreeMap::new()),
        }
    }
}

async fn signature(db: &Db) -> Result<(i64, i64), StoreError> {
    Ok(crate::on_pool!(db, pool => sqlx::query_as(
        "SELECT count(*), CAST(coalesce(sum(last_sequence), 0) AS bigint) FROM procedures")
        .fetch_one(pool).await)?)
}

/// A procedure as the catalogue shows it: its latest terms.
fn current(code: &str, t: &ProcedureTimeline) -> Option<Procedure> {
    let terms = t.periods.last()?;
    Some(Procedure {
        code: ProcedureCode::parse_format("/code", code).ok()?,
        name_vi: t.name_vi.clone(),
        name_en: t.name_en.clone(),
        level: t.level?,
        agency: t.agency.clone(),
        statutory_working_days: terms.statutory_working_days,
        official_fee_vnd: terms.official_fee_vnd,
        legal_basis: terms.legal_basis.clone(),
    })
}

impl ProcedureLookup for Catalogue {
    fn parse_procedure(&self, pointer: &str, code: &str) -> Result<ProcedureCode, FieldViolation> {
        match self.state.read() {
            Ok(state) => state.0.parse(pointer, code),
            // A poisoned lock means a panic elsewhere; refuse rather than guess.
            Err(_) => Err(FieldViolation {
                pointer: pointer.to_string(),
                rule: "unknown_procedure".into(),
                detail: "the catalogue is unavailable".into(),
            }),
        }
    }

    fn not_in_force(&self, code: &ProcedureCode, day: chrono::NaiveDate) -> Option<String> {
        let state = self.state.read().ok()?;
        let timeline = state.1.get(code.as_str())?;
        if timeline.terms_on(day).is_some() {
            return None;
        }
        Some(match (timeline.abolished_from, timeline.periods.first()) {
            (Some(from), _) if day >= from => {
                format!("procedure {} was abolished from {from}", code.as_str())
            }
            (_, Some(first)) => format!(
                "procedure {} is in force from {}, after {day}",
                code.as_str(),
                first.effective_from
            ),
            _ => format!("procedure {} has no terms in force on {day}", code.as_str()),
        })
    }
}
