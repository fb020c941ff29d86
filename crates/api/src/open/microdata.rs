//! `GET /v1/open/observations`: anonymised microdata for re-analysis (methodology §4). One
//! coarsened row per included observation of a published province cell: year, province,
//! procedure, the four profile fields of §7 (k-anonymous, 1.1), working days, SCM cost,
//! on-time, visits and informal-payment flags. Never a narrative, a filer, an enterprise
//! code, an id or a date.

use actix_web::{get, web, HttpRequest, HttpResponse};
use redtape_domain::{Geography, ProcedureCode, Provinces};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::datasets::DatasetId;
use crate::page::{List, ListParams, Paged};
use crate::params::{self, FromQuery, Query, QueryString};
use crate::problem::{ApiError, Problem};
use crate::AppState;

#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MicrodataQuery {
    #[param(example = 2025)]
    pub year: i32,
    /// A national procedure code.
    #[param(value_type = String, example = "1.001612")]
    pub procedure: ProcedureCode,
    /// A vn-34 province code.
    #[param(example = "79")]
    pub province: Option<String>,
}

impl FromQuery for MicrodataQuery {
    fn from_query(q: &QueryString, _: &HttpRequest) -> Result<Self, ApiError> {
        Ok(MicrodataQuery {
            year: q.required("year", "2025", params::year)?,
            procedure: q.required("procedure", "1.001612", params::procedure)?,
            province: q.optional("province", params::province(Geography::Vn34))?,
        })
    }
}

/// One anonymised observation.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenObservation {
    #[schema(example = 2025)]
    pub year: i32,
    #[schema(example = "1.001612")]
    pub procedure_code: String,
    /// The vn-34 province (observations on the old map count under their successor).
    #[schema(example = "79")]
    pub province_code: String,
    #[schema(example = "Thành phố Hồ Chí Minh")]
    pub province_name: String,
    /// completed_timing, pending_timing or complaint.
    #[schema(example = "completed_timing")]
    pub kind: &'static str,
    /// micro, small, medium or large: the size class the filer had declared when it filed;
    /// `unknown` when it had not, when that group's breakdown cell is suppressed, or where
    /// k-anonymity hid it (methodology §4, §7).
    #[schema(example = "small")]
    pub size_class: String,
    /// The VSIC 2018 sector section (A to U), or `unknown` as for size_class.
    #[schema(example = "G")]
    pub sector_section: String,
    /// yes or no: women own at least 51% and one of them manages the firm (SME Support Law
    /// art. 3), as declared when it filed; or `unknown` as for size_class.
    #[schema(example = "yes")]
    pub woman_owned: String,
    /// yes or no: persons of Vietnam's ethnic minorities own at least 51%, as declared when
    /// it filed; or `unknown` as for size_class.
    #[schema(example = "unknown")]
    pub ethnic_minority_owned: String,
    /// Elapsed working days (completed timings).
    #[schema(example = 6)]
    pub working_days: Option<u32>,
    /// Standard Cost Model cost per case, to the nearest 1,000 VND.
    #[schema(example = 1705000)]
    pub scm_cost_vnd: Option<f64>,
    /// Within the statutory limit in force on the submission date (completed timings).
    #[schema(example = true)]
    pub on_time: Option<bool>,
    /// Visits to an office, when reported.
    #[schema(example = 1)]
    pub visits: Option<u16>,
    #[schema(example = false)]
    pub informal_payment: bool,
}

fn unknown() -> String {
    redtape_index::area::UNKNOWN.to_string()
}

fn yes_no(value: Option<bool>) -> String {
    match value {
        Some(true) => "yes".into(),
        Some(false) => "no".into(),
        None => unknown(),
    }
}

/// What a page of microdata is about.
#[derive(Debug, Serialize, ToSchema)]
pub struct MicrodataAbout {
    pub licence: crate::licence::Licence,
    #[schema(example = "1.1")]
    pub methodology_version: String,
}

/// Anonymised microdata.
///
/// One coarsened row per included observation of one year and procedure, from published
/// province cells only (neither primary nor secondary suppression, methodology §4); by
/// province, in a stable order. Each row carries the filer profile recorded with the filing
/// (§7), and the rows are k-anonymous: every combination of province and the four profile
/// fields appears in at least k rows of the year and procedure (rare combinations are
/// published with fields `unknown`, or left out). No narrative, filer, enterprise code, id
/// or exact date is ever included.
#[utoipa::path(
    tag = "open data",
    params(MicrodataQuery, ListParams),
    responses(
        (status = 200, description = "A page of observations (JSON; CSV and NDJSON rows are its items)", body = Paged<OpenObservation, MicrodataAbout>),
        (status = 422, description = "A filter is missing or not valid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/open/observations")]
pub async fn observations(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: Query<MicrodataQuery>,
    list: Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let page = list.page(2)?;
    let MicrodataQuery {
        year,
        ref procedure,
        ref province,
    } = *query;
    let timeline = state.catalogue.timeline(procedure.as_str());
    let rows = redtape_store::microdata::observations(
        &state.db,
        year,
        procedure.as_str(),
        timeline.as_ref(),
        state.projector.methodology(),
    )
    .await?;
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|r| province.as_deref().is_none_or(|p| r.province_code == p))
        .collect();
    let (rows, cursor) = page.apply(rows, |r| vec![r.province_code.clone(), r.row_key.clone()]);
    let items = rows
        .into_iter()
        .map(|r| OpenObservation {
            province_name: Provinces::get()
                .find(Geography::Vn34, &r.province_code)
                .map(|p| p.name.clone())
                .unwrap_or_default(),
            year: r.year,
            procedure_code: r.procedure_code,
            province_code: r.province_code,
            kind: r.kind,
            size_class: r.size_class.unwrap_or_else(unknown),
            sector_section: r.sector_section.unwrap_or_else(unknown),
            woman_owned: yes_no(r.woman_owned),
            ethnic_minority_owned: yes_no(r.ethnic_minority_owned),
            working_days: r.working_days,
            scm_cost_vnd: r.scm_cost.map(redtape_index::rounding::vnd),
            on_time: r.on_time,
            visits: r.visits,
            informal_payment: r.informal_payment,
        })
        .collect();
    List::of(DatasetId::Observations, items, cursor, &req).respond(
        list.format,
        MicrodataAbout {
            licence: state.licence.clone(),
            methodology_version: redtape_index::METHODOLOGY_VERSION.into(),
        },
    )
}
