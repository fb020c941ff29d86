//! The `observations` read model: one row per submission with its current values and status,
//! the input of every index (methodology §1). Written only by the projector.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use redtape_domain::filer::FilerProfile;
use redtape_domain::submission::Report;
use redtape_domain::values::{StaffHours, Visits, Vnd};
use redtape_domain::Provinces;

/// The report columns of an observation row, derived from a report alone.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportColumns {
    pub kind: &'static str,
    pub procedure_code: String,
    pub geography: &'static str,
    pub province_code: String,
    /// The `vn-34` successor of the province: the default geography of every figure.
    pub province_vn34: String,
    /// The year the observation counts in (methodology §1).
    pub year: i32,
    pub submitted_on: Option<NaiveDate>,
    pub completed_on: Option<NaiveDate>,
    pub experienced_on: Option<NaiveDate>,
    pub outcome: Option<&'static str>,
    pub channel: Option<&'static str>,
    /// Comma-separated, in the filer's order.
    pub categories: Option<String>,
    pub official_fees: Option<i64>,
    pub unofficial_payments: Option<i64>,
    pub external_services: Option<i64>,
    pub staff_hours: Option<f64>,
    pub visits: Option<i32>,
}

impl ReportColumns {
    pub fn of(report: &Report) -> ReportColumns {
        let provinces = Provinces::get();
        match report {
            Report::Timing(t) => ReportColumns {
                kind: "timing",
                procedure_code: t.procedure.as_str().to_string(),
                geography: t.province.geography.as_str(),
                province_code: t.province.code.as_str().to_string(),
                province_vn34: vn34(provinces, &t.province),
                // A completed timing counts in the year it completed; a pending one in the
                // year it was submitted.
                year: t.completed_on.unwrap_or(t.submitted_on).year(),
                submitted_on: Some(t.submitted_on),
                completed_on: t.completed_on,
                experienced_on: None,
                outcome: t.outcome.map(|o| o.as_str()),
                channel: Some(t.channel.as_str()),
                categories: None,
                official_fees: t.costs.official_fees.map(Vnd::get),
                unofficial_payments: t.costs.unofficial_payments.map(Vnd::get),
                external_services: t.costs.external_services.map(Vnd::get),
                staff_hours: t.staff_hours.map(StaffHours::get),
                visits: t.visits.map(|v| i32::from(Visits::get(v))),
            },
            Report::Complaint(c) => ReportColumns {
                kind: "complaint",
                procedure_code: c.procedure.as_str().to_string(),
                geography: c.province.geography.as_str(),
                province_code: c.province.code.as_str().to_string(),
                province_vn34: vn34(provinces, &c.province),
                year: c.experienced_on.year(),
                submitted_on: None,
                completed_on: None,
                experienced_on: Some(c.experienced_on),
                outcome: None,
                channel: None,
                categories: Some(
                    c.categories
                        .iter()
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                official_fees: c.costs.official_fees.map(Vnd::get),
                unofficial_payments: c.costs.unofficial_payments.map(Vnd::get),
                external_services: c.costs.external_services.map(Vnd::get),
                staff_hours: c.staff_hours.map(StaffHours::get),
                visits: c.visits.map(|v| i32::from(Visits::get(v))),
            },
        }
    }
}

fn vn34(provinces: &Provinces, province: &redtape_domain::ProvinceRef) -> String {
    // Every vn-63 code in the reference data has a successor (checked by the domain tests);
    // the fallback keeps the original code rather than inventing one.
    provinces
        .to_vn34(province)
        .map(|c| c.as_str().to_string())
        .unwrap_or_else(|| province.code.as_str().to_string())
}

/// A full observation row as stored, for tests, exports and rebuild comparisons.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ObservationRow {
    pub submission_id: String,
    pub kind: String,
    pub status: String,
    pub filer_id: String,
    pub procedure_code: String,
    pub geography: String,
    pub province_code: String,
    pub province_vn34: String,
    pub year: i32,
    pub submitted_on: Option<NaiveDate>,
    pub completed_on: Option<NaiveDate>,
    pub experienced_on: Option<NaiveDate>,
    pub outcome: Option<String>,
    pub channel: Option<String>,
    pub categories: Option<String>,
    pub official_fees: Option<i64>,
    pub unofficial_payments: Option<i64>,
    pub external_services: Option<i64>,
    pub staff_hours: Option<f64>,
    pub visits: Option<i32>,
    pub amendments: i32,
    pub filed_at: String,
    pub updated_at: String,
    pub last_sequence: i64,
    pub intermediary_id: Option<String>,
    pub size_class: Option<String>,
    pub sector_section: Option<String>,
    pub woman_owned: Option<bool>,
    pub ethnic_minority_owned: Option<bool>,
}

/// The four profile columns of a row, as stored (`None`s for an unknown profile).
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub(crate) struct ProfileColumns {
    pub size_class: Option<String>,
    pub sector_section: Option<String>,
    pub woman_owned: Option<bool>,
    pub ethnic_minority_owned: Option<bool>,
}

impl ProfileColumns {
    pub(crate) fn of(profile: Option<&FilerProfile>) -> ProfileColumns {
        ProfileColumns {
            size_class: profile
                .and_then(|p| p.size_class)
                .map(|s| s.as_str().to_string()),
            sector_section: profile
                .and_then(|p| p.sector_section)
                .map(|s| s.as_char().to_string()),
            woman_owned: profile.and_then(|p| p.woman_owned),
            ethnic_minority_owned: profile.and_then(|p| p.ethnic_minority_owned),
        }
    }

    /// The profile as the methodology reads it (§7).
    pub(crate) fn as_index(&self) -> redtape_index::area::Profile<'_> {
        redtape_index::area::Profile {
            size_class: self.size_class.as_deref(),
            sector_section: self.sector_section.as_deref(),
            woman_owned: self.woman_owned,
            ethnic_minority_owned: self.ethnic_minority_owned,
        }
    }
}

pub(crate) const SELECT_ALL: &str = "SELECT submission_id, kind, status, filer_id, \
    procedure_code, geography, province_code, province_vn34, year, submitted_on, completed_on, \
    experienced_on, outcome, channel, categories, official_fees, unofficial_payments, \
    external_services, staff_hours, visits, amendments, filed_at, updated_at, last_sequence, \
    intermediary_id, size_class, sector_section, woman_owned, ethnic_minority_owned \
    FROM observations";

/// Reads every observation row in id order (tests and rebuild checks).
pub async fn all(db: &crate::Db) -> Result<Vec<ObservationRow>, crate::StoreError> {
    let sql = format!("{SELECT_ALL} ORDER BY submission_id");
    Ok(
        crate::on_pool!(db, pool => sqlx::query_as::<_, ObservationRow>(&sql).fetch_all(pool).await)?,
    )
}

/// Reads one observation row.
pub async fn get(db: &crate::Db, id: &str) -> Result<Option<ObservationRow>, crate::StoreError> {
    let sql = format!("{SELECT_ALL} WHERE submission_id = $1");
    Ok(
        crate::on_pool!(db, pool => sqlx::query_as::<_, ObservationRow>(&sql).bind(id).fetch_optional(pool).await)?,
    )
}

/// Binds the 17 report columns, in `REPORT_COLUMNS` order, onto a query (`bind`) or onto a
/// row of a multi-row insert (`push_bind`), so both writers bind the same columns in the
/// same order.
#[macro_export]
macro_rules! bind_report {
    ($query:expr, $c:expr) => {
        $crate::bind_report!($query, $c, bind)
    };
    ($query:expr, $c:expr, $bind:ident) => {
        $query
            .$bind($c.kind)
            .$bind(&$c.procedure_code)
            .$bind($c.geography)
            .$bind(&$c.province_code)
            .$bind(&$c.province_vn34)
            .$bind($c.year)
            .$bind($c.submitted_on)
            .$bind($c.completed_on)
            .$bind($c.experienced_on)
            .$bind($c.outcome)
            .$bind($c.channel)
            .$bind(&$c.categories)
            .$bind($c.official_fees)
            .$bind($c.unofficial_payments)
            .$bind($c.external_services)
            .$bind($c.staff_hours)
            .$bind($c.visits)
    };
}

/// What a Submission event does to its observation row. Decoded once, then applied either
/// by SQL (the live projector) or in memory (a rebuild): one decoding, so the two cannot
/// disagree about an event.
#[derive(Debug)]
pub(crate) enum Change {
    /// A new row, status `received`.
    Insert {
        filer: String,
        /// The intermediary that filed it for its member `filer`.
        intermediary: Option<String>,
        /// The filer's profile when it filed; `None` for a 1.0 event (unknown).
        profile: Option<FilerProfile>,
        columns: ReportColumns,
        at: String,
    },
    /// The report's columns replaced; `amendments` goes up by one.
    Amend { columns: ReportColumns, at: String },
    /// A new status.
    Status { status: &'static str, at: String },
    /// A government response: a row of the `responses` read model; the observation row is
    /// not touched.
    Response {
        agency: String,
        status: &'static str,
        at: String,
    },
}

impl Change {
    /// Decodes a stored Submission event payload.
    pub(crate) fn decode(payload: &str) -> Result<Change, serde_json::Error> {
        use redtape_domain::submission::{Status, SubmissionEvent};
        Ok(match serde_json::from_str(payload)? {
            SubmissionEvent::TimingReported {
                filer,
                timing,
                filed_at,
                intermediary,
                profile,
            } => Change::Insert {
                filer: filer.to_string(),
                intermediary: intermediary.map(|i| i.to_string()),
                profile,
                columns: ReportColumns::of(&Report::Timing(timing)),
                at: at_text(filed_at),
            },
            SubmissionEvent::ComplaintFiled {
                filer,
                complaint,
                filed_at,
                intermediary,
                profile,
            } => Change::Insert {
                filer: filer.to_string(),
                intermediary: intermediary.map(|i| i.to_string()),
                profile,
                columns: ReportColumns::of(&Report::Complaint(complaint)),
                at: at_text(filed_at),
            },
            SubmissionEvent::SubmissionAmended {
                report, amended_at, ..
            } => Change::Amend {
                columns: ReportColumns::of(&report),
                at: at_text(amended_at),
            },
            SubmissionEvent::SubmissionWithdrawn { withdrawn_at, .. } => Change::Status {
                status: Status::Withdrawn.as_str(),
                at: at_text(withdrawn_at),
            },
            SubmissionEvent::SubmissionVerified { verified_at } => Change::Status {
                status: Status::Verified.as_str(),
                at: at_text(verified_at),
            },
            SubmissionEvent::SubmissionRejected { rejected_at, .. } => Change::Status {
                status: Status::Rejected.as_str(),
                at: at_text(rejected_at),
            },
            SubmissionEvent::ResponsePosted {
                response,
                posted_at,
            } => Change::Response {
                agency: response.agency,
                status: response.status.as_str(),
                at: at_text(posted_at),
            },
        })
    }
}

/// $1 id, $2..$18 report columns, $19 updated_at, $20 sequence. Guarded by `last_sequence`
/// so an event can never be applied twice. A verified submission goes back to `received`
/// (`Status::after_amendment`).
pub(crate) const AMEND: &str = "UPDATE observations SET \
    status = CASE WHEN status = 'verified' THEN 'received' ELSE status END, kind = $2, procedure_code = $3, \
    geography = $4, province_code = $5, province_vn34 = $6, year = $7, submitted_on = $8, \
    completed_on = $9, experienced_on = $10, outcome = $11, channel = $12, categories = $13, \
    official_fees = $14, unofficial_payments = $15, external_services = $16, staff_hours = $17, \
    visits = $18, amendments = amendments + 1, updated_at = $19, last_sequence = $20 \
    WHERE submission_id = $1 AND last_sequence < $20";

/// $1 id, $2 sequence, $3 agency, $4 status, $5 posted_at.
pub(crate) const INSERT_RESPONSE: &str = "INSERT INTO responses (submission_id, sequence, \
    agency, status, posted_at) VALUES ($1, $2, $3, $4, $5) \
    ON CONFLICT (submission_id, sequence) DO NOTHING";

pub(crate) const SET_STATUS: &str = "UPDATE observations SET status = $2, updated_at = $3, \
    last_sequence = $4 WHERE submission_id = $1 AND last_sequence < $4";

/// The `updated_at` text of an event time.
pub(crate) fn at_text(at: DateTime<Utc>) -> String {
    crate::timestamp(at)
}
