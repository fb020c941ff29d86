//! Administrative procedures and the catalogue that submissions are checked against.
//!
//! Codes follow the format of Vietnam's National Database on Administrative Procedures
//! (`1.001612`, optionally with suffixes such as `.000.00.00.H01`). No official bulk extract
//! exists, so redtape ships a seed catalogue (`reference/procedures.csv`, documented in
//! docs/procedures.md) that reform offices extend through the API.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::validation::{violation, FieldViolation};

/// A national procedure code: a digit, a dot, six digits, then optional dot-separated
/// upper-case alphanumeric suffixes; at most 40 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProcedureCode(String);

impl ProcedureCode {
    /// Checks the format only; whether the code is in the catalogue is
    /// [`ProcedureCatalogue::parse`]'s job.
    pub fn parse_format(pointer: &str, text: &str) -> Result<Self, FieldViolation> {
        let bad = || {
            violation(
                pointer,
                "format",
                format!(
                    "must be a national procedure code such as 1.001612 or \
                     1.001612.000.00.00.H01, got {text:?}"
                ),
            )
        };
        if text.len() > 40 {
            return Err(bad());
        }
        let mut parts = text.split('.');
        let head_ok = parts
            .next()
            .is_some_and(|p| p.len() == 1 && p.bytes().all(|b| b.is_ascii_digit()));
        let body_ok = parts
            .next()
            .is_some_and(|p| p.len() == 6 && p.bytes().all(|b| b.is_ascii_digit()));
        let rest_ok = parts.all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        });
        if head_ok && body_ok && rest_ok {
            Ok(Self(text.to_string()))
        } else {
            Err(bad())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Government level that handles a procedure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProcedureLevel {
    Central,
    Provincial,
    Commune,
}

/// A procedure as registered in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Procedure {
    pub code: ProcedureCode,
    pub name_vi: String,
    pub name_en: String,
    pub level: ProcedureLevel,
    pub agency: String,
    /// The statutory time limit, in working days.
    pub statutory_working_days: u16,
    /// The official fee in VND where it is set nationally; `None` where provinces set it.
    pub official_fee_vnd: Option<i64>,
    /// The law that sets the limit, so every figure can be traced to its source.
    pub legal_basis: String,
}

/// The procedures submissions may refer to.
#[derive(Debug, Clone, Default)]
pub struct ProcedureCatalogue {
    by_code: BTreeMap<ProcedureCode, Procedure>,
}

const SEED_CSV: &str = include_str!("../reference/procedures.csv");

#[derive(Deserialize)]
struct SeedRow {
    code: String,
    name_vi: String,
    name_en: String,
    level: ProcedureLevel,
    agency: String,
    statutory_working_days: u16,
    official_fee_vnd: Option<i64>,
    legal_basis: String,
}

impl ProcedureCatalogue {
    /// The seed catalogue shipped with redtape (12 common business procedures).
    pub fn seed() -> &'static ProcedureCatalogue {
        static SEED: OnceLock<ProcedureCatalogue> = OnceLock::new();
        SEED.get_or_init(|| {
            let mut catalogue = ProcedureCatalogue::default();
            let mut reader = csv::Reader::from_reader(SEED_CSV.as_bytes());
            // Rows are checked by this crate's tests; a bad row is a build-time mistake.
            for row in reader.deserialize::<SeedRow>().flatten() {
                if let Ok(code) = ProcedureCode::parse_format("/code", &row.code) {
                    catalogue.insert(Procedure {
                        code,
                        name_vi: row.name_vi,
                        name_en: row.name_en,
                        level: row.level,
                        agency: row.agency,
                        statutory_working_days: row.statutory_working_days,
                        official_fee_vnd: row.official_fee_vnd,
                        legal_basis: row.legal_basis,
                    });
                }
            }
            catalogue
        })
    }

    pub fn insert(&mut self, procedure: Procedure) {
        self.by_code.insert(procedure.code.clone(), procedure);
    }

    pub fn get(&self, code: &str) -> Option<&Procedure> {
        self.by_code.get(&ProcedureCode(code.to_string()))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Procedure> {
        self.by_code.values()
    }

    pub fn len(&self) -> usize {
        self.by_code.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_code.is_empty()
    }

    /// Parses a code that must be well-formed and in the catalogue.
    pub fn parse(&self, pointer: &str, text: &str) -> Result<ProcedureCode, FieldViolation> {
        let code = ProcedureCode::parse_format(pointer, text)?;
        if self.by_code.contains_key(&code) {
            Ok(code)
        } else {
            Err(violation(
                pointer,
                "unknown_procedure",
                format!("{text:?} is not in the procedure catalogue; see GET /v1/procedures"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_catalogue_loads_every_row() {
        let rows = SEED_CSV.lines().count() - 1;
        let seed = ProcedureCatalogue::seed();
        assert_eq!(seed.len(), rows, "a seed row failed to parse");
        assert!(seed.len() >= 12);
        let br = seed.get("1.001612").unwrap();
        assert_eq!(br.statutory_working_days, 3);
        assert_eq!(br.official_fee_vnd, Some(50_000));
        assert!(seed.iter().all(|p| p.statutory_working_days > 0));
        assert!(seed.iter().all(|p| !p.legal_basis.is_empty()));
    }

    #[test]
    fn code_format() {
        assert!(ProcedureCode::parse_format("/c", "1.001612").is_ok());
        assert!(ProcedureCode::parse_format("/c", "1.001612.000.00.00.H01").is_ok());
        for bad in [
            "",
            "1.00161",
            "12.001612",
            "1.001612.",
            "1.001612.h01",
            "x.001612",
        ] {
            let err = ProcedureCode::parse_format("/procedure_code", bad).unwrap_err();
            assert_eq!(err.rule, "format", "{bad}");
        }
        assert!(
            ProcedureCode::parse_format("/c", &format!("1.001612.{}", "A".repeat(40))).is_err()
        );
    }

    #[test]
    fn unknown_code_is_named() {
        let err = ProcedureCatalogue::seed()
            .parse("/procedure_code", "9.999999")
            .unwrap_err();
        assert_eq!(err.rule, "unknown_procedure");
        assert_eq!(err.pointer, "/procedure_code");
    }
}
