//! Anonymised microdata (methodology §4): one coarsened row per included observation, only
//! from cells that are not suppressed, with nothing that names a business, a submission or a
//! day. Measures are computed exactly as the cells compute them (`cells::measure`).
//!
//! Rows are ordered by province, then by a row key: the first 16 hex digits of
//! HMAC-SHA-256 of the submission id under a secret the store generates once and keeps
//! (`service_secrets`). The key gives a stable order and a cursor without publishing the id,
//! and without the secret nobody can compute a known submission's key to find its row (an
//! unkeyed hash let anyone who knew an id find its row, and with it its filer's profile).

use std::sync::LazyLock;

use redtape_domain::procedure_terms::ProcedureTimeline;
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
    /// The filer's profile, when it gave one.
    pub size_class: Option<String>,
    pub sector_section: Option<String>,
}

#[derive(sqlx::FromRow)]
struct Row {
    submission_id: String,
    province_vn34: String,
    procedure_code: String,
    size_class: Option<String>,
    sector_section: Option<String>,
    #[sqlx(flatten)]
    cell: CellRow,
}

/// Included observations of non-suppressed vn-34 cells of one year and procedure.
static SELECT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT o.submission_id, o.province_vn34, o.procedure_code, o.kind, \
         o.submitted_on, o.completed_on, o.year, o.official_fees, o.unofficial_payments, \
         o.external_services, o.staff_hours, o.visits, o.status, o.size_class, o.sector_section \
         FROM observations o \
         JOIN index_cells c ON c.geography = 'vn-34' AND c.year = o.year \
          AND c.procedure_code = o.procedure_code AND c.province_code = o.province_vn34 \
         WHERE o.year = $1 AND o.procedure_code = $2 AND {} AND c.suppressed = 0",
        cells::included_sql("o.status")
    )
});

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
    let mut out: Vec<OpenObservation> = rows
        .into_iter()
        .map(|r| {
            let m = cells::measure(&r.cell, timeline, methodology);
            OpenObservation {
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
                size_class: r.size_class,
                sector_section: r.sector_section,
            }
        })
        .collect();
    out.sort_by(|a, b| (&a.province_code, &a.row_key).cmp(&(&b.province_code, &b.row_key)));
    Ok(out)
}
