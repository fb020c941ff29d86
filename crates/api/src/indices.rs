//! Public index figures (no account needed): `GET /v1/indices`.
//!
//! Every figure carries its cell's n, whether it is suppressed, the methodology version and
//! `provisional` (live figures are always provisional; published releases are not). Values
//! are rounded here, on output only (methodology §3).

use actix_web::http::header;
use actix_web::{get, web, HttpRequest, HttpResponse};
use redtape_domain::{Geography, Provinces};
use redtape_index::rounding;
use redtape_store::cells::CellRecord;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::problem::{ApiError, Problem};
use crate::AppState;

/// One cell, flat (the same columns in JSON, NDJSON and CSV).
#[derive(Debug, Serialize, ToSchema)]
pub struct IndexCell {
    #[schema(example = "vn-34")]
    pub geography: String,
    #[schema(example = 2025)]
    pub year: i32,
    #[schema(example = "1.001612")]
    pub procedure_code: String,
    #[schema(example = "79")]
    pub province_code: String,
    #[schema(example = "Thành phố Hồ Chí Minh")]
    pub province_name: String,
    /// All included observations (timings, pending timings, complaints).
    #[schema(example = 6)]
    pub n: i32,
    pub n_timings: i32,
    pub n_pending: i32,
    pub n_complaints: i32,
    /// n below the disclosure threshold: counts only, every statistic null.
    pub suppressed: bool,
    /// Median elapsed working days of completed timings, to 0.1.
    #[schema(example = 4.5)]
    pub median_working_days: Option<f64>,
    pub median_working_days_ci_low: Option<f64>,
    pub median_working_days_ci_high: Option<f64>,
    #[schema(example = 8.5)]
    pub p90_working_days: Option<f64>,
    /// Median Standard Cost Model cost per case, to the nearest 1,000 VND.
    #[schema(example = 1705000)]
    pub median_scm_cost_vnd: Option<f64>,
    pub median_scm_cost_ci_low_vnd: Option<f64>,
    pub median_scm_cost_ci_high_vnd: Option<f64>,
    pub median_visits: Option<f64>,
    /// Share of completed timings within the statutory limit, to 0.001.
    #[schema(example = 0.333)]
    pub on_time_rate: Option<f64>,
    /// Share of observations with an informal payment, to 0.001.
    #[schema(example = 0.0)]
    pub informal_payment_rate: Option<f64>,
    #[schema(example = "1.0")]
    pub methodology_version: String,
    /// Live figures are provisional until a reform office publishes the year.
    pub provisional: bool,
}

impl IndexCell {
    fn of(c: CellRecord, geography: Geography) -> Self {
        let name = Provinces::get()
            .find(geography, &c.province_code)
            .map(|p| p.name.clone())
            .unwrap_or_default();
        IndexCell {
            geography: c.geography,
            year: c.year,
            procedure_code: c.procedure_code,
            province_code: c.province_code,
            province_name: name,
            n: c.n,
            n_timings: c.n_timings,
            n_pending: c.n_pending,
            n_complaints: c.n_complaints,
            suppressed: c.suppressed != 0,
            median_working_days: c.median_days.map(rounding::days),
            median_working_days_ci_low: c.median_days_ci_low.map(rounding::days),
            median_working_days_ci_high: c.median_days_ci_high.map(rounding::days),
            p90_working_days: c.p90_days.map(rounding::days),
            median_scm_cost_vnd: c.median_cost.map(rounding::vnd),
            median_scm_cost_ci_low_vnd: c.median_cost_ci_low.map(rounding::vnd),
            median_scm_cost_ci_high_vnd: c.median_cost_ci_high.map(rounding::vnd),
            median_visits: c.median_visits,
            on_time_rate: c.on_time_rate.map(rounding::rate),
            informal_payment_rate: c.informal_payment_rate.map(rounding::rate),
            methodology_version: c.methodology_version,
            provisional: true,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct IndexQuery {
    /// vn-34 (default; every year, older observations mapped to their successor province) or
    /// vn-63 (observations dated before 2025-07-01 only).
    #[param(example = "vn-34")]
    pub geography: Option<String>,
    #[param(example = 2025)]
    pub year: Option<String>,
    /// National procedure code.
    #[param(example = "1.001612")]
    pub procedure: Option<String>,
    /// Province code on the chosen geography.
    #[param(example = "79")]
    pub province: Option<String>,
    /// json (default), csv or ndjson; the Accept header (text/csv, application/x-ndjson) also
    /// selects the format.
    pub format: Option<String>,
}

/// The body of a JSON answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct IndexPage {
    pub methodology_version: String,
    pub provisional: bool,
    pub items: Vec<IndexCell>,
}

enum Format {
    Json,
    Csv,
    Ndjson,
}

fn format_of(req: &HttpRequest, given: Option<&str>) -> Result<Format, ApiError> {
    match given {
        Some("json") => return Ok(Format::Json),
        Some("csv") => return Ok(Format::Csv),
        Some("ndjson") => return Ok(Format::Ndjson),
        Some(other) => {
            return Err(ApiError::parameter(
                "format",
                "one_of",
                format!("format must be one of json, csv, ndjson, got {other:?}"),
            ))
        }
        None => {}
    }
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    Ok(if accept.contains("text/csv") {
        Format::Csv
    } else if accept.contains("application/x-ndjson") {
        Format::Ndjson
    } else {
        Format::Json
    })
}

/// Index cells.
///
/// Per-cell statistics (methodology §3) for a geography, filtered by year, procedure and
/// province; in key order. Suppressed cells (n below the disclosure threshold) show counts
/// only. See docs/methodology.md for every definition.
#[utoipa::path(
    tag = "indices",
    params(IndexQuery),
    responses(
        (status = 200, description = "The matching cells: JSON (default), CSV with a header \
line (the same columns as an item), or NDJSON (one item per line)", content(
            (IndexPage = "application/json"),
            (String = "text/csv"),
            (IndexCell = "application/x-ndjson"),
        )),
        (status = 422, description = "A filter is not valid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/indices")]
pub async fn list_indices(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<IndexQuery>,
) -> Result<HttpResponse, ApiError> {
    let format = format_of(&req, query.format.as_deref())?;
    let geography = match query.geography.as_deref() {
        None | Some("") => Geography::Vn34,
        Some(g) => Geography::parse("", g)
            .map_err(|v| ApiError::parameter("geography", &v.rule, v.detail))?,
    };
    let year = match query.year.as_deref() {
        None | Some("") => None,
        Some(y) => Some(
            y.parse::<i32>()
                .ok()
                .filter(|y| (2015..=2100).contains(y))
                .ok_or_else(|| {
                    ApiError::parameter(
                        "year",
                        "range",
                        format!("must be a year from 2015 to 2100, got {y:?}"),
                    )
                })?,
        ),
    };
    let procedure = match query.procedure.as_deref() {
        None | Some("") => None,
        Some(code) => Some(
            redtape_domain::ProcedureCode::parse_format("", code)
                .map_err(|v| ApiError::parameter("procedure", &v.rule, v.detail))?,
        ),
    };
    let province = match query.province.as_deref() {
        None | Some("") => None,
        Some(code) if Provinces::get().find(geography, code).is_some() => Some(code.to_string()),
        Some(code) => {
            return Err(ApiError::parameter(
                "province",
                "unknown_province",
                format!(
                    "{code:?} is not a province of {}; see GET /v1/provinces?geography={}",
                    geography.as_str(),
                    geography.as_str()
                ),
            ))
        }
    };
    let cells = redtape_store::cells::query(
        &state.db,
        geography.as_str(),
        year,
        procedure.as_ref().map(|p| p.as_str()),
        province.as_deref(),
    )
    .await?;
    let items: Vec<IndexCell> = cells
        .into_iter()
        .map(|c| IndexCell::of(c, geography))
        .collect();
    match format {
        Format::Json => Ok(HttpResponse::Ok().json(IndexPage {
            methodology_version: redtape_index::METHODOLOGY_VERSION.to_string(),
            provisional: true,
            items,
        })),
        Format::Ndjson => {
            let mut body = String::new();
            for item in &items {
                body.push_str(
                    &serde_json::to_string(item).map_err(|e| ApiError::Internal(e.to_string()))?,
                );
                body.push('\n');
            }
            Ok(HttpResponse::Ok()
                .content_type("application/x-ndjson")
                .body(body))
        }
        Format::Csv => {
            let mut writer = csv::Writer::from_writer(Vec::new());
            if items.is_empty() {
                // A header line even when nothing matches, so a reader sees the columns.
                writer
                    .write_record(CSV_COLUMNS)
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
            }
            for item in &items {
                writer
                    .serialize(item)
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
            }
            let body = writer
                .into_inner()
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            Ok(HttpResponse::Ok()
                .content_type("text/csv; charset=utf-8")
                .insert_header((
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"redtape-indices.csv\"",
                ))
                .body(body))
        }
    }
}

/// The CSV columns, in the order of [`IndexCell`]'s fields.
const CSV_COLUMNS: [&str; 22] = [
    "geography",
    "year",
    "procedure_code",
    "province_code",
    "province_name",
    "n",
    "n_timings",
    "n_pending",
    "n_complaints",
    "suppressed",
    "median_working_days",
    "median_working_days_ci_low",
    "median_working_days_ci_high",
    "p90_working_days",
    "median_scm_cost_vnd",
    "median_scm_cost_ci_low_vnd",
    "median_scm_cost_ci_high_vnd",
    "median_visits",
    "on_time_rate",
    "informal_payment_rate",
    "methodology_version",
    "provisional",
];
