//! `GET /v1/open/observations`: anonymised microdata for re-analysis (methodology §4). One
//! coarsened row per included observation of a non-suppressed cell: year, province,
//! procedure, the filer's size class and sector section, working days, SCM cost, on-time and
//! informal-payment flags. Never a narrative, a filer, an enterprise code, an id or a date.

use actix_web::{get, web, HttpRequest, HttpResponse};
use redtape_domain::{Geography, Provinces};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::dictionary::DatasetId;
use crate::indices::{procedure_of, province_of, required, year_of};
use crate::open::{next_url, List, ListParams};
use crate::problem::{ApiError, Problem};
use crate::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MicrodataQuery {
    /// Required.
    #[param(example = 2025)]
    pub year: Option<String>,
    /// Required: a national procedure code.
    #[param(example = "1.001612")]
    pub procedure: Option<String>,
    /// A vn-34 province code.
    #[param(example = "79")]
    pub province: Option<String>,
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

/// The JSON envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct MicrodataPage {
    pub licence: crate::licence::Licence,
    #[schema(example = "1.0")]
    pub methodology_version: String,
    pub items: Vec<OpenObservation>,
    /// The next page's URL (also in `Link: <...>; rel="next"`); absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
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
        (status = 200, description = "A page of observations (JSON; CSV and NDJSON rows are its items)", body = MicrodataPage),
        (status = 422, description = "A filter is missing or not valid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/open/observations")]
pub async fn observations(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<MicrodataQuery>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let (format, page) = params.parse(&req, 2)?;
    let year = year_of(required(query.year.as_deref(), "year", "2025")?)?;
    let procedure = procedure_of(required(
        query.procedure.as_deref(),
        "procedure",
        "1.001612",
    )?)?;
    let province = crate::indices::given(query.province.as_deref())
        .map(|p| province_of(Geography::Vn34, p))
        .transpose()?;
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
    let next = cursor.map(|c| next_url(&req, &c));
    List::of(
        DatasetId::Observations,
        items,
        next.clone(),
        "redtape-observations",
    )
    .respond(format, |items| MicrodataPage {
        licence: state.licence.clone(),
        methodology_version: redtape_index::METHODOLOGY_VERSION.into(),
        items,
        next,
    })
}
