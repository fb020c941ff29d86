//! Anonymised microdata (methodology §4): one coarsened row per included observation, only
//! from province cells that are published (neither primary nor secondary suppression), with
//! nothing that names a business, a submission or a day. Measures are computed exactly as
//! the cells compute them (`cells::measure`). Since 1.1 each row carries the filer profile
//! recorded with the filing, `unknown` where undeclared or where its breakdown group is
//! suppressed, and the rows of a (year, procedure) are k-anonymous over (province, profile)
//! (`redtape_index::anonymity`): rare combinations lose profile fields, then rows.
//!
//! Rows are ordered by province, then by a row key: the first 16 hex digits of
//! HMAC-SHA-256 of the submission id under a secret the store generates once and keeps
//! (`service_secrets`). The key gives a stable order and a cursor without publishing the id,
//! and without the secret nobody can compute a known submission's key to find its row (an
//! unkeyed hash let anyone who knew an id find its row, and with it its filer's profile).

use std::sync::LazyLock;

use redtape_domain::procedure_terms::ProcedureTimeline;
use redtape_index::anonymity::{k_anonymous, Quasi};
use redtape_index::area::{Area, Dimension, Profile, UNKNOWN};
use redtape_index::cell::Kind;

use crate::cells::{self, CellRow, Methodology};
use crate::db::Db;
use crate::StoreError;

/// One published observation.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenObservation {
    /// Stable, non-reversible order key.
    pub row_key: String,
    pub year: i32,
    pub procedure_code: String,
    /// The observation's `vn-34` province.
    pub province_code: String,
    /// completed_timing, pending_timing or complaint.
    pub kind: &'static str,
    /// Elapsed working days (completed timings).
    pub working_days: Option<u32>,
    /// SCM cost per case, unrounded (rounded on output).
    pub scm_cost: Option<f64>,
    /// Within the statutory limit (completed timings with a limit in force).
    pub on_time: Option<bool>,
    pub informal_payment: bool,
    /// Visits to an office, when reported.
    pub visits: Option<u16>,
    /// The profile recorded with the filing (§7), each field `None` (published `unknown`)
    /// where the filer declared nothing, where its breakdown group is suppressed, or where
    /// k-anonymity blanked it (§4, 1.1).
    pub size_class: Option<String>,
    pub sector_section: Option<String>,
    pub woman_owned: Option<bool>,
    pub ethnic_minority_owned: Option<bool>,
}

#[derive(sqlx::FromRow)]
struct Row {
    submission_id: String,
    province_vn34: String,
    procedure_code: String,
    #[sqlx(flatten)]
    profile: crate::observations::ProfileColumns,
    #[sqlx(flatten)]
    cell: CellRow,
}

/// Included observations of non-suppressed (neither primary nor secondary) vn-34 province
/// cells of one year and procedure.
static SELECT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT o.submission_id, o.province_vn34, o.procedure_code, o.kind, \
         o.submitted_on, o.completed_on, o.year, o.official_fees, o.unofficial_payments, \
         o.external_services, o.staff_hours, o.visits, o.status, o.size_class, \
         o.sector_section, o.woman_owned, o.ethnic_minority_owned \
         FROM observations o \
         JOIN index_cells c ON c.geography = 'vn-34' AND c.year = o.year \
          AND c.procedure_code = o.procedure_code AND c.province_code = o.province_vn34 \
         WHERE o.year = $1 AND o.procedure_code = $2 AND {} AND c.suppressed = 0",
        cells::included_sql("o.status")
    )
});

/// The suppressed breakdown groups (`dimension=group`) of a vn-34 year and procedure.
const SUPPRESSED_GROUPS: &str = "SELECT province_code FROM index_cells WHERE geography = 'vn-34' \
    AND year = $1 AND procedure_code = $2 AND province_code LIKE '%=%' AND suppressed = 1";

/// The row key of a submission under `secret`.
pub fn row_key(secret: &[u8], submission_id: &str) -> String {
    crate::secrets::hmac_hex(secret, submission_id.as_bytes())[..16].to_string()
}

/// The name of the row-key secret in `service_secrets`.
const ROW_KEY_SECRET: &str = "microdata-row-key";

/// The store's row-key secret, created on first use.
pub async fn row_key_secret(db: &Db) -> Result<Vec<u8>, StoreError> {
    crate::secrets::get_or_create(db, ROW_KEY_SECRET).await
}

/// The microdata of one year and procedure, by (province, row key).
pub async fn observations(
    db: &Db,
    year: i32,
    procedure: &str,
    timeline: Option<&ProcedureTimeline>,
    methodology: &Methodology,
) -> Result<Vec<OpenObservation>, StoreError> {
    let secret = row_key_secret(db).await?;
    let rows: Vec<Row> = crate::on_pool!(db, pool =>
        sqlx::query_as(SELECT.as_str()).bind(year).bind(procedure).fetch_all(pool).await)?;
    let hidden: Vec<(String,)> = crate::on_pool!(db, pool =>
        sqlx::query_as(SUPPRESSED_GROUPS).bind(year).bind(procedure).fetch_all(pool).await)?;
    let hidden: std::collections::HashSet<String> = hidden.into_iter().map(|(k,)| k).collect();
    // §7: a profile field is unknown where its breakdown group is suppressed.
    let shown = |dimension: Dimension, profile: &Profile<'_>| {
        let group = dimension.group_of(profile);
        let key = Area::Group(dimension, group).key();
        (group != UNKNOWN && !hidden.contains(&key)).then_some(group)
    };
    let quasi: Vec<Quasi> = rows
        .iter()
        .map(|r| {
            let profile = r.profile.as_index();
            let yes = |d| shown(d, &profile).map(|g| g == "yes");
            Quasi {
                province: r.province_vn34.clone(),
                size_class: shown(Dimension::SizeClass, &profile).map(str::to_string),
                sector_section: shown(Dimension::SectorSection, &profile).map(str::to_string),
                woman_owned: yes(Dimension::WomanOwned),
                ethnic_minority_owned: yes(Dimension::EthnicMinorityOwned),
            }
        })
        .collect();
    let k = methodology.k.max(redtape_index::cell::MIN_K);
    let mut out: Vec<OpenObservation> = rows
        .into_iter()
        .zip(k_anonymous(&quasi, k))
        .filter_map(|(r, published)| {
            // Rows still rarer than k after blanking are left out (§4, 1.1).
            let q = published?;
            let m = cells::measure(&r.cell, timeline, methodology);
            Some(OpenObservation {
                row_key: row_key(&secret, &r.submission_id),
                year: r.cell.year,
                procedure_code: r.procedure_code,
                province_code: r.province_vn34,
                kind: match m.kind {
                    Kind::CompletedTiming => "completed_timing",
                    Kind::PendingTiming => "pending_timing",
                    Kind::Complaint => "complaint",
                },
                working_days: m.elapsed_days,
                scm_cost: m.scm_cost,
                on_time: m.on_time,
                informal_payment: m.informal_payment,
                visits: m.visits,
                size_class: q.size_class,
                sector_section: q.sector_section,
                woman_owned: q.woman_owned,
                ethnic_minority_owned: q.ethnic_minority_owned,
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.province_code, &a.row_key).cmp(&(&b.province_code, &b.row_key)));
    Ok(out)
}
