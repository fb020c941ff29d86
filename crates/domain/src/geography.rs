//! Vietnam's provincial map, which changed on 2025-07-01 (63 units became 34).
//!
//! A province code alone is ambiguous across the merger (code 24 was Bắc Giang and is now the
//! merged Bắc Ninh), so a province is always `(Geography, ProvinceCode)`. The data is the
//! project's reference data (`reference/provinces-63.csv`, `reference/provinces-34.csv`),
//! embedded at compile time so the binary needs no files at run time.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::validation::{violation, FieldViolation};

/// The day the 34-province map came into force (National Assembly Resolution 202/2025/QH15).
pub fn merger_date() -> NaiveDate {
    // A constant date that always exists; `from_ymd_opt` only fails on impossible dates.
    NaiveDate::from_ymd_opt(2025, 7, 1).unwrap_or(NaiveDate::MIN)
}

/// Which provincial map a code belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Geography {
    /// The 63 units in force until 2025-06-30.
    #[serde(rename = "vn-63")]
    Vn63,
    /// The 34 units in force from 2025-07-01.
    #[serde(rename = "vn-34")]
    Vn34,
}

impl Geography {
    pub const ALL: [Geography; 2] = [Geography::Vn63, Geography::Vn34];

    /// The map in force on `date`.
    pub fn in_force_on(date: NaiveDate) -> Self {
        if date < merger_date() {
            Geography::Vn63
        } else {
            Geography::Vn34
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Geography::Vn63 => "vn-63",
            Geography::Vn34 => "vn-34",
        }
    }

    pub fn parse(pointer: &str, text: &str) -> Result<Self, FieldViolation> {
        match text {
            "vn-63" => Ok(Geography::Vn63),
            "vn-34" => Ok(Geography::Vn34),
            other => Err(violation(
                pointer,
                "one_of",
                format!("geography must be one of vn-63, vn-34, got {other:?}"),
            )),
        }
    }
}

/// A two-digit GSO province code. Validity depends on the geography; see [`Provinces`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProvinceCode(String);

impl ProvinceCode {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A province on a given map: the only unambiguous way to name one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ProvinceRef {
    pub geography: Geography,
    pub code: ProvinceCode,
}

/// One row of the reference data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Province {
    pub geography: Geography,
    pub code: ProvinceCode,
    pub name: String,
    /// For `vn-63` units: the `vn-34` unit it became on 2025-07-01.
    pub successor: Option<ProvinceCode>,
}

/// The embedded reference data for both maps.
#[derive(Debug)]
pub struct Provinces {
    by_key: BTreeMap<(Geography, String), Province>,
}

const VN63_CSV: &str = include_str!("../reference/provinces-63.csv");
const VN34_CSV: &str = include_str!("../reference/provinces-34.csv");

impl Provinces {
    /// The reference data, parsed once. The CSV files are checked by this crate's tests, so a
    /// malformed row is a build-time mistake, never a run-time surprise.
    pub fn get() -> &'static Provinces {
        static PROVINCES: OnceLock<Provinces> = OnceLock::new();
        PROVINCES.get_or_init(|| Provinces::from_csv(VN63_CSV, VN34_CSV))
    }

    fn from_csv(vn63: &str, vn34: &str) -> Provinces {
        let mut by_key = BTreeMap::new();
        for (geography, text) in [(Geography::Vn63, vn63), (Geography::Vn34, vn34)] {
            let mut reader = csv::Reader::from_reader(text.as_bytes());
            for record in reader.records().flatten() {
                let code = record.get(0).unwrap_or_default().trim().to_string();
                let name = record.get(1).unwrap_or_default().trim().to_string();
                let successor = record
                    .get(2)
                    .map(|s| ProvinceCode(s.trim().to_string()))
                    .filter(|s| !s.0.is_empty());
                by_key.insert(
                    (geography, code.clone()),
                    Province {
                        geography,
                        code: ProvinceCode(code),
                        name,
                        successor,
                    },
                );
            }
        }
        Provinces { by_key }
    }

    /// All units of one map, by code.
    pub fn list(&self, geography: Geography) -> impl Iterator<Item = &Province> {
        self.by_key
            .values()
            .filter(move |p| p.geography == geography)
    }

    pub fn find(&self, geography: Geography, code: &str) -> Option<&Province> {
        self.by_key.get(&(geography, code.to_string()))
    }

    /// Parses a province code as recorded by a submission dated `date`: the code must exist on
    /// the map in force that day (methodology §1).
    pub fn parse_on(
        &self,
        pointer: &str,
        code: &str,
        date: NaiveDate,
    ) -> Result<ProvinceRef, FieldViolation> {
        let geography = Geography::in_force_on(date);
        match self.find(geography, code) {
            Some(p) => Ok(ProvinceRef {
                geography,
                code: p.code.clone(),
            }),
            None => Err(violation(
                pointer,
                "province_not_in_force",
                format!(
                    "{code:?} is not a province code of {} (the map in force on {date}); \
                     see GET /v1/provinces?geography={}",
                    geography.as_str(),
                    geography.as_str()
                ),
            )),
        }
    }

    /// The unit on `vn-34` that a province maps to (itself if already on `vn-34`).
    pub fn to_vn34(&self, province: &ProvinceRef) -> Option<ProvinceCode> {
        match province.geography {
            Geography::Vn34 => Some(province.code.clone()),
            Geography::Vn63 => self
                .find(Geography::Vn63, province.code.as_str())
                .and_then(|p| p.successor.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN)
    }

    #[test]
    fn reference_data_has_63_and_34_units_and_every_successor_exists() {
        let p = Provinces::get();
        assert_eq!(p.list(Geography::Vn63).count(), 63);
        assert_eq!(p.list(Geography::Vn34).count(), 34);
        for old in p.list(Geography::Vn63) {
            let successor = old.successor.as_ref().map(|s| s.as_str().to_string());
            let successor = successor.unwrap_or_default();
            assert!(
                p.find(Geography::Vn34, &successor).is_some(),
                "{} has no vn-34 successor {successor:?}",
                old.name
            );
        }
        // Every vn-34 unit is the successor of at least one vn-63 unit.
        for new in p.list(Geography::Vn34) {
            assert!(p
                .list(Geography::Vn63)
                .any(|o| o.successor.as_ref() == Some(&new.code)));
        }
    }

    #[test]
    fn code_meaning_depends_on_the_date() {
        let p = Provinces::get();
        let before = p
            .parse_on("/province_code", "24", date(2025, 6, 30))
            .unwrap();
        assert_eq!(before.geography, Geography::Vn63);
        assert_eq!(p.find(before.geography, "24").unwrap().name, "Bắc Giang");
        let after = p
            .parse_on("/province_code", "24", date(2025, 7, 1))
            .unwrap();
        assert_eq!(after.geography, Geography::Vn34);
        assert_eq!(p.find(after.geography, "24").unwrap().name, "Bắc Ninh");
        // Old Bắc Ninh (27) merged into the new Bắc Ninh (24).
        let old_bac_ninh = p.parse_on("/p", "27", date(2024, 1, 1)).unwrap();
        assert_eq!(p.to_vn34(&old_bac_ninh).unwrap().as_str(), "24");
    }

    #[test]
    fn a_code_abolished_by_the_merger_is_rejected_after_it() {
        let p = Provinces::get();
        // 27 (old Bắc Ninh) existed until 2025-06-30 only.
        assert!(p.parse_on("/p", "27", date(2025, 6, 30)).is_ok());
        let err = p
            .parse_on("/province_code", "27", date(2025, 7, 1))
            .unwrap_err();
        assert_eq!(err.pointer, "/province_code");
        assert_eq!(err.rule, "province_not_in_force");
        assert!(err.detail.contains("vn-34"));
        assert!(p.parse_on("/p", "99", date(2020, 1, 1)).is_err());
        assert!(p.parse_on("/p", "", date(2020, 1, 1)).is_err());
    }
}
