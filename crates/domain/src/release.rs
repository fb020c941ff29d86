//! The `Release` aggregate: a year's figures frozen for citation (methodology §6).
//!
//! A release is one revision of one year: the canonical CSV of every cell of that year, with
//! its SHA-256, a JSON rendering, the methodology version and the time it was generated. Both
//! documents are held in the event itself, so they are served byte for byte forever, whatever
//! later submissions, amendments or rebuilds do to the live cells. Publishing again makes
//! revision n+1, with a changelog of the cells that changed since revision n; publishing
//! figures identical to the latest revision is refused (nothing to correct).
//!
//! The aggregate id is the year.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const EVENT_VERSION: &str = "1.0";

/// The columns that identify a cell within a year's CSV.
pub const KEY_COLUMNS: [&str; 3] = ["geography", "procedure_code", "province_code"];

/// How one cell differs from the previous revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CellChange {
    #[cfg_attr(feature = "openapi", schema(example = "vn-34"))]
    pub geography: String,
    #[cfg_attr(feature = "openapi", schema(example = "1.001612"))]
    pub procedure_code: String,
    #[cfg_attr(feature = "openapi", schema(example = "79"))]
    pub province_code: String,
    /// A breakdown cell's dimension and group (methodology 1.1, §7); absent for a province or
    /// national cell, and in releases before 1.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(example = json!(null)))]
    pub dimension: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(example = json!(null)))]
    pub group: Option<String>,
    /// added, removed or changed.
    #[cfg_attr(feature = "openapi", schema(example = "changed"))]
    pub change: String,
    /// For a changed cell: the columns whose values differ.
    #[cfg_attr(feature = "openapi", schema(example = json!(["n", "median_working_days"])))]
    pub columns: Vec<String>,
}

pub enum ReleaseCommand {
    Publish {
        year: i32,
        /// The revision the caller built its JSON for: must be the next one.
        revision: u32,
        methodology_version: String,
        generated_at: DateTime<Utc>,
        csv: String,
        json: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ReleaseEvent {
    ReleasePublished {
        year: i32,
        revision: u32,
        methodology_version: String,
        generated_at: DateTime<Utc>,
        /// SHA-256 of `csv`, lower-case hex: what a citation names.
        sha256: String,
        cell_count: usize,
        /// Changes since the previous revision; empty for revision 1.
        changelog: Vec<CellChange>,
        csv: String,
        json: String,
    },
}

impl DomainEvent for ReleaseEvent {
    fn event_type(&self) -> String {
        "ReleasePublished".to_string()
    }
    fn event_version(&self) -> String {
        EVENT_VERSION.to_string()
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReleaseError {
    #[error("revision {expected} is next, not {given}; another publication came first")]
    WrongRevision { expected: u32, given: u32 },
    #[error("the figures are identical to revision {0}: there is nothing to correct")]
    Unchanged(u32),
    #[error("there are no figures for {0} to publish")]
    Empty(i32),
    #[error("the CSV cannot be read: {0}")]
    BadCsv(String),
}

/// The year's releases: what deciding the next one needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Release {
    pub revisions: u32,
    pub latest_sha256: Option<String>,
    /// The latest revision's CSV, to compute the next changelog.
    pub latest_csv: Option<String>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A cell's key in a release CSV: the [`KEY_COLUMNS`], then the [`BREAKDOWN_COLUMNS`] (empty
/// for a province or national cell, and in CSVs from before they existed).
type Key = (String, String, String, String, String);

/// The columns that tell breakdown cells apart (methodology 1.1, §7): a breakdown cell's
/// province code is `all`, as its national cell's.
pub const BREAKDOWN_COLUMNS: [&str; 2] = ["dimension", "group"];

type Rows = BTreeMap<Key, BTreeMap<String, String>>;

/// Reads a release CSV into rows by cell key.
fn rows(csv_text: &str) -> Result<Rows, ReleaseError> {
    let bad = |e: &dyn std::fmt::Display| ReleaseError::BadCsv(e.to_string());
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = reader.headers().map_err(|e| bad(&e))?.clone();
    let position = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| bad(&format!("no {name} column")))
    };
    let keys = [
        position(KEY_COLUMNS[0])?,
        position(KEY_COLUMNS[1])?,
        position(KEY_COLUMNS[2])?,
    ];
    let optional = BREAKDOWN_COLUMNS.map(|name| headers.iter().position(|h| h == name));
    let mut out = Rows::new();
    for record in reader.records() {
        let record = record.map_err(|e| bad(&e))?;
        let field = |i: usize| record.get(i).unwrap_or_default().to_string();
        let maybe = |i: Option<usize>| i.map(field).unwrap_or_default();
        let key = (
            field(keys[0]),
            field(keys[1]),
            field(keys[2]),
            maybe(optional[0]),
            maybe(optional[1]),
        );
        let values = headers
            .iter()
            .zip(record.iter())
            .map(|(h, v)| (h.to_string(), v.to_string()))
            .collect();
        if out.insert(key.clone(), values).is_some() {
            return Err(bad(&format!("cell {key:?} appears twice")));
        }
    }
    Ok(out)
}

/// The cells that differ between two release CSVs, in key order.
pub fn changelog(before: &str, after: &str) -> Result<Vec<CellChange>, ReleaseError> {
    let (old, new) = (rows(before)?, rows(after)?);
    let given = |v: &String| (!v.is_empty()).then(|| v.clone());
    let entry = |key: &Key, change: &str, columns: Vec<String>| CellChange {
        geography: key.0.clone(),
        procedure_code: key.1.clone(),
        province_code: key.2.clone(),
        dimension: given(&key.3),
        group: given(&key.4),
        change: change.to_string(),
        columns,
    };
    let mut out = Vec::new();
    let keys: std::collections::BTreeSet<_> = old.keys().chain(new.keys()).collect();
    for key in keys {
        match (old.get(key), new.get(key)) {
            (None, Some(_)) => out.push(entry(key, "added", Vec::new())),
            (Some(_), None) => out.push(entry(key, "removed", Vec::new())),
            (Some(a), Some(b)) => {
                let columns: Vec<String> = b
                    .iter()
                    // A column the earlier revision did not have counts as empty there.
                    .filter(|(k, v)| a.get(*k).map_or("", String::as_str) != v.as_str())
                    .map(|(k, _)| k.clone())
                    .collect();
                if !columns.is_empty() {
                    out.push(entry(key, "changed", columns));
                }
            }
            (None, None) => {}
        }
    }
    Ok(out)
}

impl Aggregate for Release {
    const TYPE: &'static str = "Release";
    type Command = ReleaseCommand;
    type Event = ReleaseEvent;
    type Error = ReleaseError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let ReleaseCommand::Publish {
            year,
            revision,
            methodology_version,
            generated_at,
            csv,
            json,
        } = command;
        let expected = self.revisions + 1;
        if revision != expected {
            return Err(ReleaseError::WrongRevision {
                expected,
                given: revision,
            });
        }
        let cells = rows(&csv)?;
        if cells.is_empty() {
            return Err(ReleaseError::Empty(year));
        }
        let sha256 = sha256_hex(csv.as_bytes());
        if self.latest_sha256.as_deref() == Some(sha256.as_str()) {
            return Err(ReleaseError::Unchanged(self.revisions));
        }
        let changelog = match &self.latest_csv {
            Some(before) => changelog(before, &csv)?,
            None => Vec::new(),
        };
        let event = ReleaseEvent::ReleasePublished {
            year,
            revision,
            methodology_version,
            generated_at,
            sha256,
            cell_count: cells.len(),
            changelog,
            csv,
            json,
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        let ReleaseEvent::ReleasePublished {
            revision,
            sha256,
            csv,
            ..
        } = event;
        self.revisions = revision;
        self.latest_sha256 = Some(sha256);
        self.latest_csv = Some(csv);
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;

    use super::*;

    const HEAD: &str = "geography,year,procedure_code,province_code,n,median_working_days\n";

    fn publish(revision: u32, body: &str) -> ReleaseCommand {
        ReleaseCommand::Publish {
            year: 2025,
            revision,
            methodology_version: "1.0".into(),
            generated_at: Utc.with_ymd_and_hms(2026, 1, 15, 0, 0, 0).unwrap(),
            csv: format!("{HEAD}{body}"),
            json: "{}".into(),
        }
    }

    fn published(revision: u32, body: &str, changelog: Vec<CellChange>) -> ReleaseEvent {
        let csv = format!("{HEAD}{body}");
        ReleaseEvent::ReleasePublished {
            year: 2025,
            revision,
            methodology_version: "1.0".into(),
            generated_at: Utc.with_ymd_and_hms(2026, 1, 15, 0, 0, 0).unwrap(),
            sha256: sha256_hex(csv.as_bytes()),
            cell_count: body.lines().count(),
            changelog,
            csv,
            json: "{}".into(),
        }
    }

    const V1: &str = "vn-34,2025,1.001612,79,6,4.5\nvn-34,2025,1.001612,01,5,3.0\n";
    const V2: &str = "vn-34,2025,1.001612,79,7,5.0\nvn-34,2025,1.001612,48,5,2.0\n";

    #[test]
    fn the_first_revision_has_no_changelog_and_a_hash_of_its_csv() {
        TestFramework::<Release>::with(())
            .given_no_previous_events()
            .when(publish(1, V1))
            .then_expect_events(vec![published(1, V1, Vec::new())]);
        // The SHA-256 of the exact bytes (checked against sha256sum of the same text).
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_correction_lists_added_removed_and_changed_cells() {
        let change = |p: &str, c: &str, cols: &[&str]| CellChange {
            geography: "vn-34".into(),
            procedure_code: "1.001612".into(),
            province_code: p.into(),
            dimension: None,
            group: None,
            change: c.into(),
            columns: cols.iter().map(|s| s.to_string()).collect(),
        };
        TestFramework::<Release>::with(())
            .given(vec![published(1, V1, Vec::new())])
            .when(publish(2, V2))
            .then_expect_events(vec![published(
                2,
                V2,
                vec![
                    change("01", "removed", &[]),
                    change("48", "added", &[]),
                    change("79", "changed", &["median_working_days", "n"]),
                ],
            )]);
    }

    /// A revision under methodology 1.1 after one under 1.0: its CSV has the breakdown and
    /// suppression columns, breakdown cells share province `all` with the national cell and
    /// are told apart by dimension and group, and a column 1.0 did not have counts as empty
    /// there (so an empty `dimension` is no change; a `suppression` of `secondary` is).
    #[test]
    fn a_revision_under_1_1_keys_breakdowns_apart_and_lists_what_moved() {
        let old =
            "geography,procedure_code,province_code,n,median_working_days,methodology_version\n\
                   vn-34,1.001612,79,6,4.5,1.0\n\
                   vn-34,1.001612,01,5,3.0,1.0\n";
        let new = "geography,procedure_code,province_code,dimension,group,n,median_working_days,suppression,methodology_version\n\
                   vn-34,1.001612,79,,,6,4.5,,1.1\n\
                   vn-34,1.001612,01,,,5,,secondary,1.1\n\
                   vn-34,1.001612,all,,,11,4.0,,1.1\n\
                   vn-34,1.001612,all,woman_owned,yes,3,,primary,1.1\n\
                   vn-34,1.001612,all,woman_owned,no,8,4.2,,1.1\n";
        let cell = |p: &str, d: Option<&str>, g: Option<&str>, c: &str, cols: &[&str]| CellChange {
            geography: "vn-34".into(),
            procedure_code: "1.001612".into(),
            province_code: p.into(),
            dimension: d.map(Into::into),
            group: g.map(Into::into),
            change: c.into(),
            columns: cols.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(
            changelog(old, new).unwrap(),
            vec![
                cell(
                    "01",
                    None,
                    None,
                    "changed",
                    &["median_working_days", "methodology_version", "suppression"]
                ),
                cell("79", None, None, "changed", &["methodology_version"]),
                cell("all", None, None, "added", &[]),
                cell("all", Some("woman_owned"), Some("no"), "added", &[]),
                cell("all", Some("woman_owned"), Some("yes"), "added", &[]),
            ]
        );
        // The breakdown cells' serialised change names them; a province's omits the fields,
        // as the changelogs of releases before 1.1 did.
        let json =
            serde_json::to_value(cell("all", Some("woman_owned"), Some("yes"), "added", &[]))
                .unwrap();
        assert_eq!(json["dimension"], "woman_owned");
        let json = serde_json::to_value(cell("79", None, None, "added", &[])).unwrap();
        assert!(json.get("dimension").is_none() && json.get("group").is_none());
    }

    #[test]
    fn identical_stale_or_empty_publications_are_refused() {
        TestFramework::<Release>::with(())
            .given(vec![published(1, V1, Vec::new())])
            .when(publish(2, V1))
            .then_expect_error(ReleaseError::Unchanged(1));
        TestFramework::<Release>::with(())
            .given(vec![published(1, V1, Vec::new())])
            .when(publish(1, V2))
            .then_expect_error(ReleaseError::WrongRevision {
                expected: 2,
                given: 1,
            });
        TestFramework::<Release>::with(())
            .given_no_previous_events()
            .when(publish(1, ""))
            .then_expect_error(ReleaseError::Empty(2025));
    }
}
