//! `GET /v1/open/observations`: anonymised microdata for re-analysis (methodology §4). One
//! coarsened row per included observation of a non-suppressed cell: year, province,
//! procedure, the filer's size class and sector section, working days, SCM cost, on-time and
//! informal-payment flags. Never a narrative, a filer, an enterprise code, an id or a date.

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
    /// micro, small, medium or large: the filer's size class, when the filer gave it.
    #[schema(example = "small")]
    pub size_class: Option<String>,
    /// The filer's VSIC sector section (A to U), when the filer gave it.
    #[schema(example = "G")]
    pub sector_section: Option<String>,
    /// Elapsed working days (completed timings).
    #[schema(example = 6)]
    pub working_days: Option<u32>,
    /// Standard Cost Model cost per case, to the nearest 1,000 VND.
    #[schema(example = 1705000)]
    pub scm_cost_vnd: Option<f64>,
    /// Within the statutory limit in force on the submission date (completed timings).
    #[schema(example = true)]
    pub on_time: Option<bool>,
    #[schema(example = false)]
    pub informal_payment: bool,
}

/// What a page of microdata is about.
#[derive(Debug, Serialize, ToSchema)]
pub struct MicrodataAbout {
    pub licence: crate::licence::Licence,
    #[schema(example = "1.0")]
    pub methodology_version: String,
}

/// Anonymised microdata.
///
/// One coarsened row per included observation of one year and procedure, from cells that
/// are not suppressed only (methodology §4); by province, in a stable order. No narrative,
/// filer, enterprise code, id or exact date is ever included.
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
            size_class: r.size_class,
            sector_section: r.sector_section,
            working_days: r.working_days,
            scm_cost_vnd: r.scm_cost.map(redtape_index::rounding::vnd),
            on_time: r.on_time,
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
