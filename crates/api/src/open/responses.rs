//! Published statistics on government responses (no account needed): how many submissions
//! each agency answered in each province, where the matters stand, and how fast the first
//! answer came. Never the filer, the submission or the text of a response.

use actix_web::{get, web, HttpRequest, HttpResponse};
use redtape_domain::submission::ResponseStatus;
use redtape_domain::{Geography, Provinces};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::datasets::DatasetId;
use crate::page::{List, ListParams, Paged};
use crate::params::{self, FromQuery, Query, QueryString};
use crate::problem::{ApiError, Problem};
use crate::AppState;

#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResponseQuery {
    /// Only this agency (exact name; spaces around it are ignored).
    pub agency: Option<String>,
    /// Only submissions in this vn-34 province.
    #[param(example = "79")]
    pub province: Option<String>,
}

impl FromQuery for ResponseQuery {
    fn from_query(q: &QueryString, _: &HttpRequest) -> Result<Self, ApiError> {
        Ok(ResponseQuery {
            agency: q.optional("agency", params::free_text)?.flatten(),
            province: q.optional("province", params::province(Geography::Vn34))?,
        })
    }
}

/// Submissions by the status of the agency's latest response to each.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct StatusCounts {
    #[schema(example = 3)]
    pub acknowledged: u32,
    #[schema(example = 4)]
    pub in_progress: u32,
    #[schema(example = 4)]
    pub resolved: u32,
    #[schema(example = 1)]
    pub not_actionable: u32,
}

/// One agency in one province.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgencyResponses {
    #[schema(example = "Sở Kế hoạch và Đầu tư Thành phố Hồ Chí Minh")]
    pub agency: String,
    #[schema(example = "79")]
    pub province_code: String,
    #[schema(example = "Thành phố Hồ Chí Minh")]
    pub province_name: String,
    /// Submissions the agency answered at least once.
    #[schema(example = 12)]
    pub submissions: u32,
    /// Responses posted (an agency may answer one submission several times).
    #[schema(example = 17)]
    pub responses: u32,
    pub latest_status: StatusCounts,
    /// Median calendar days from filing to the agency's first response, to 0.1; null when
    /// fewer submissions than the disclosure threshold were answered (`suppressed`).
    #[schema(example = 2.5)]
    pub median_days_to_first_response: Option<f64>,
    /// Fewer answered submissions than the disclosure threshold (k, 5 by default): counts
    /// only, as for index cells (methodology §4).
    #[schema(example = false)]
    pub suppressed: bool,
}

/// What the response statistics are about.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResponsesAbout {
    /// Always `vn-34`: submissions on the old map count under their successor province.
    #[schema(example = "vn-34")]
    pub geography: Geography,
}

/// Government response statistics.
///
/// Per agency and province: submissions answered, responses posted, the latest status of
/// each answered submission, and the median days to a first response (null below the
/// disclosure threshold). Live figures.
#[utoipa::path(
    tag = "responses",
    params(ResponseQuery, ListParams),
    responses(
        (status = 200, description = "Statistics per agency and province (JSON; CSV and NDJSON rows are its items)", body = Paged<AgencyResponses, ResponsesAbout>),
        (status = 422, description = "A filter is not valid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/responses")]
pub async fn response_statistics(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: Query<ResponseQuery>,
    list: Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let page = list.page(2)?;
    let responses = redtape_store::moderation::responses(
        &state.db,
        query.agency.as_deref(),
        query.province.as_deref(),
    )
    .await?;
    let k = state.projector.methodology().k;
    let items = redtape_index::responses::by_agency(&responses, k)
        .into_iter()
        .map(|s| {
            let mut latest = StatusCounts::default();
            for (status, n) in &s.latest_status {
                match ResponseStatus::parse(status) {
                    Some(ResponseStatus::Acknowledged) => latest.acknowledged += n,
                    Some(ResponseStatus::InProgress) => latest.in_progress += n,
                    Some(ResponseStatus::Resolved) => latest.resolved += n,
                    Some(ResponseStatus::NotActionable) => latest.not_actionable += n,
                    None => {
                        return Err(ApiError::internal(format!(
                            "responses row with status {status:?}"
                        )))
                    }
                }
            }
            Ok(AgencyResponses {
                suppressed: s.suppressed,
                province_name: Provinces::get()
                    .find(Geography::Vn34, &s.province)
                    .map(|p| p.name.clone())
                    .unwrap_or_default(),
                agency: s.agency,
                province_code: s.province,
                submissions: s.submissions,
                responses: s.responses,
                latest_status: latest,
                median_days_to_first_response: s
                    .median_days_to_first_response
                    .map(redtape_index::rounding::days),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let (items, cursor) = page.apply(items, |r: &AgencyResponses| {
        vec![r.agency.clone(), r.province_code.clone()]
    });
    List::of(DatasetId::Responses, items, cursor, &req).respond(
        list.format,
        ResponsesAbout {
            geography: Geography::Vn34,
        },
    )
}
