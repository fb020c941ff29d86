//! Open reference data: the procedure catalogue and the provinces of each map.

use actix_web::{get, web, HttpRequest, HttpResponse};
use redtape_domain::procedure_terms::ProcedureTimeline;
use redtape_domain::{Geography, ProcedureLevel, Provinces};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::datasets::DatasetId;
use crate::page::{List, ListParams, Paged, Rows};
use crate::params::{FromQuery, Query, QueryString};
use crate::problem::{ApiError, Problem};
use crate::AppState;

/// A procedure in the catalogue.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProcedureView {
    #[schema(example = "1.001612")]
    pub code: String,
    #[schema(example = "Đăng ký thành lập doanh nghiệp")]
    pub name_vi: String,
    #[schema(example = "Business registration (new enterprise)")]
    pub name_en: String,
    /// central, provincial or commune.
    #[schema(example = "provincial")]
    pub level: String,
    #[schema(example = "Phòng Đăng ký kinh doanh (Sở Tài chính)")]
    pub agency: String,
    /// The statutory time limit in working days.
    #[schema(example = 3)]
    pub statutory_working_days: u16,
    /// The official fee in VND where it is set nationally; null where provinces set it.
    #[schema(example = 50000)]
    pub official_fee_vnd: Option<i64>,
    /// The law that sets the current limit.
    #[schema(example = "Nghị định 168/2025/NĐ-CP")]
    pub legal_basis: String,
    /// Every period of statutory terms, oldest first: a reform adds a period from its
    /// effective date, and timings are compared with the terms in force when submitted.
    pub terms: Vec<TermsView>,
    /// The date from which the procedure is abolished, if it is.
    #[schema(example = json!(null))]
    pub abolished_from: Option<chrono::NaiveDate>,
}

/// Statutory terms in force from a date.
#[derive(Debug, Serialize, ToSchema)]
pub struct TermsView {
    #[schema(example = "2020-01-01")]
    pub effective_from: chrono::NaiveDate,
    #[schema(example = 3)]
    pub statutory_working_days: u16,
    #[schema(example = 50000)]
    pub official_fee_vnd: Option<i64>,
    pub legal_basis: String,
}

fn level(l: ProcedureLevel) -> &'static str {
    match l {
        ProcedureLevel::Central => "central",
        ProcedureLevel::Provincial => "provincial",
        ProcedureLevel::Commune => "commune",
    }
}

impl ProcedureView {
    /// A procedure as its timeline stands: current terms are the latest period's. `None` for a
    /// timeline with no registration (never stored by the projector).
    pub fn of(timeline: &ProcedureTimeline) -> Option<ProcedureView> {
        let current = timeline.periods.last()?;
        Some(ProcedureView {
            code: timeline.code.clone()?,
            name_vi: timeline.name_vi.clone(),
            name_en: timeline.name_en.clone(),
            level: level(timeline.level?).to_string(),
            agency: timeline.agency.clone(),
            statutory_working_days: current.statutory_working_days,
            official_fee_vnd: current.official_fee_vnd,
            legal_basis: current.legal_basis.clone(),
            terms: timeline
                .periods
                .iter()
                .map(|terms| TermsView {
                    effective_from: terms.effective_from,
                    statutory_working_days: terms.statutory_working_days,
                    official_fee_vnd: terms.official_fee_vnd,
                    legal_basis: terms.legal_basis.clone(),
                })
                .collect(),
            abolished_from: timeline.abolished_from,
        })
    }
}

/// List the procedure catalogue.
///
/// Every registered procedure with its statutory terms over time and legal basis, by code.
/// Abolished procedures stay listed (with `abolished_from`) because past figures refer to them.
#[utoipa::path(
    tag = "reference",
    params(ListParams),
    responses(
        (status = 200, description = "The catalogue, by code (CSV: terms as JSON)", body = Paged<ProcedureView, Rows>),
        (status = 422, description = "A parameter is not valid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/procedures")]
pub async fn list_procedures(
    state: web::Data<AppState>,
    req: HttpRequest,
    list: Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let page = list.page(1)?;
    let all: Vec<ProcedureView> = state
        .catalogue
        .with_timelines(|t| t.values().filter_map(ProcedureView::of).collect());
    let (items, cursor) = page.apply(all, |p| vec![p.code.clone()]);
    List::of(DatasetId::Procedures, items, cursor, &req).respond(list.format, Rows {})
}

/// Read one procedure.
#[utoipa::path(
    tag = "reference",
    params(("code" = String, Path, description = "National procedure code", example = "1.001612")),
    responses(
        (status = 200, description = "The procedure", body = ProcedureView),
        (status = 404, description = "No such procedure", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/procedures/{code}")]
pub async fn get_procedure(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let view = state
        .catalogue
        .with_timelines(|t| t.get(path.as_str()).and_then(ProcedureView::of))
        .ok_or_else(|| ApiError::NotFound(format!("no procedure {:?}", path.as_str())))?;
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "public, max-age=60"))
        .json(view))
}

/// A province on one map.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProvinceView {
    #[schema(example = "vn-34")]
    pub geography: String,
    #[schema(example = "79")]
    pub code: String,
    #[schema(example = "Thành phố Hồ Chí Minh")]
    pub name: String,
    /// For vn-63 units: the vn-34 unit it became on 2025-07-01.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub successor_code: Option<String>,
}

#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProvinceQuery {
    /// vn-34 (from 2025-07-01, the default) or vn-63 (until 2025-06-30).
    #[param(value_type = Option<Geography>, inline, example = "vn-34")]
    pub geography: Geography,
}

impl FromQuery for ProvinceQuery {
    fn from_query(q: &QueryString, _: &HttpRequest) -> Result<Self, ApiError> {
        Ok(ProvinceQuery {
            geography: q.geography()?,
        })
    }
}

/// List the provinces of a map.
///
/// Province codes are only unambiguous with their map: code 24 was Bắc Giang on vn-63 and is
/// Bắc Ninh on vn-34. A submission uses the map in force on its date.
#[utoipa::path(
    tag = "reference",
    params(ProvinceQuery, ListParams),
    responses(
        (status = 200, description = "The provinces of that map, by code", body = Paged<ProvinceView, Rows>),
        (status = 422, description = "Unknown geography", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/provinces")]
pub async fn list_provinces(
    req: HttpRequest,
    query: Query<ProvinceQuery>,
    list: Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let page = list.page(1)?;
    let geography = query.geography;
    let all: Vec<ProvinceView> = Provinces::get()
        .list(geography)
        .map(|p| ProvinceView {
            geography: geography.as_str().to_string(),
            code: p.code.as_str().to_string(),
            name: p.name.clone(),
            successor_code: p.successor.as_ref().map(|s| s.as_str().to_string()),
        })
        .collect();
    let (items, cursor) = page.apply(all, |p| vec![p.code.clone()]);
    List::of(DatasetId::Provinces, items, cursor, &req).respond(list.format, Rows {})
}
