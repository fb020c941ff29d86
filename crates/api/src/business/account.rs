//! A filer's own view: who it is (`GET /v1/me`), its declared profile
//! (`PUT /v1/me/profile`), and everything it has filed (`GET /v1/submissions`), for a business
//! (what was filed for it, also by an intermediary) and for an intermediary (what it filed for
//! its members).

use actix_web::{get, put, web, HttpRequest, HttpResponse};
use redtape_domain::filer::drafts::ProfileDraft;
use redtape_domain::submission::moderation::ResponseStatus;
use redtape_domain::submission::Status;
use redtape_domain::{ProcedureCode, Role};
use redtape_store::moderation::{QueueFilter, QueueRow};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::accounts::filer_view;
use crate::accounts::FilerView;
use crate::extract::{parse_json, Caller, Filer};
use crate::officer::moderation::queue_key;
use crate::page::{json_page, Paged, Rows};
use crate::params::{self, FromQuery, Query, QueryString};
use crate::problem::{ApiError, ReadProblems, WriteProblems};
use crate::AppState;

/// The caller's filer.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeView {
    /// business or intermediary.
    pub role: Role,
    pub filer: FilerView,
}

/// Who am I.
///
/// The filer a business or intermediary token speaks for, with its declared profile.
#[utoipa::path(
    tag = "account",
    responses(
        (status = 200, description = "The caller's filer", body = MeView),
        ReadProblems,
    ),
    security(("bearer" = []))
)]
#[get("/v1/me")]
pub async fn me(state: web::Data<AppState>, who: Filer) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(MeView {
        role: who.principal.role,
        filer: filer_view(&state, who.filer).await?,
    }))
}

/// Declare your profile.
///
/// Replaces the profile (METHODOLOGY.md §7: size class, VSIC sector section, woman-owned,
/// ethnic-minority-owned; each optional, an absent one is undeclared). Recorded as an event;
/// filings from now on carry it, earlier filings keep the profile they were filed with.
#[utoipa::path(
    tag = "account",
    request_body(content = ProfileDraft, content_type = "application/json",
        example = json!({"size_class": "micro", "sector_section": "C", "woman_owned": true,
            "ethnic_minority_owned": false})),
    responses(
        (status = 200, description = "The filer with its new profile", body = FilerView),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
#[put("/v1/me/profile")]
pub async fn change_profile(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Filer,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let draft: ProfileDraft = parse_json(&req, &body)?;
    let actor = Caller(who.principal.clone()).actor();
    state
        .accounts
        .change_profile(who.filer, draft.profile(), &actor)
        .await?;
    state.filers.forget(who.filer);
    Ok(HttpResponse::Ok().json(filer_view(&state, who.filer).await?))
}

/// Largest page of one's own submissions.
pub const MAX_PAGE: usize = 200;
const DEFAULT_PAGE: usize = 50;

#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OwnQuery {
    /// received, verified, rejected or withdrawn (default: all).
    #[param(value_type = Option<Status>, inline)]
    pub status: Option<Status>,
    /// A national procedure code.
    #[param(value_type = Option<String>, example = "1.001612")]
    pub procedure: Option<ProcedureCode>,
    /// The year the submission counts in.
    #[param(value_type = Option<i32>, example = 2025)]
    pub year: Option<i32>,
    /// Items per page, 1 to 200 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    pub limit: usize,
    /// The `next_cursor` of the previous page.
    #[param(value_type = Option<String>)]
    pub cursor: Option<(String, String)>,
}

impl FromQuery for OwnQuery {
    fn from_query(q: &QueryString, _: &HttpRequest) -> Result<Self, ApiError> {
        Ok(OwnQuery {
            status: q.optional("status", params::one_of(params::STATUSES))?,
            procedure: q.optional("procedure", params::procedure)?,
            year: q.optional("year", params::year)?,
            limit: q
                .optional("limit", params::limit(MAX_PAGE))?
                .unwrap_or(DEFAULT_PAGE),
            cursor: q
                .text("cursor")
                .map(crate::officer::moderation::decode_cursor)
                .transpose()?,
        })
    }
}

/// One of the caller's submissions: where it stands; the full submission is at `href`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OwnItem {
    #[schema(example = "01932c4e-7d1a-7c3e-9a51-3f1f0c2b9d11")]
    pub id: Uuid,
    #[schema(example = "timing")]
    pub kind: String,
    pub status: Status,
    /// The status of the government's latest response; `null` before any.
    pub latest_response: Option<ResponseStatus>,
    #[schema(example = "1.001612")]
    pub procedure_code: String,
    #[schema(example = "79")]
    pub province_vn34: String,
    #[schema(example = 2025)]
    pub year: i32,
    #[schema(example = 0)]
    pub amendments: i32,
    /// The filer it was filed for (for an intermediary: the member).
    #[schema(example = "01932c4e-7d1a-7c3e-9a51-3f1f0c2b9d12")]
    pub filer_id: Uuid,
    /// The intermediary that filed it, if one did.
    #[schema(example = json!(null))]
    pub intermediary_id: Option<Uuid>,
    #[schema(example = "2025-10-01T03:00:00.000000Z")]
    pub filed_at: String,
    #[schema(example = "2025-10-01T03:00:00.000000Z")]
    pub updated_at: String,
    #[schema(example = "/v1/submissions/01932c4e-7d1a-7c3e-9a51-3f1f0c2b9d11")]
    pub href: String,
}

impl OwnItem {
    fn of(row: QueueRow) -> Result<OwnItem, ApiError> {
        let bad = |what: &str| {
            ApiError::internal(format!("observation {}: bad {what}", row.submission_id))
        };
        let uuid = |text: &str| Uuid::parse_str(text);
        let id = uuid(&row.submission_id).map_err(|_| bad("id"))?;
        Ok(OwnItem {
            id,
            kind: row.kind.clone(),
            status: Status::parse(&row.status).ok_or_else(|| bad("status"))?,
            latest_response: row
                .latest_response
                .as_deref()
                .map(|s| ResponseStatus::parse(s).ok_or_else(|| bad("response status")))
                .transpose()?,
            procedure_code: row.procedure_code.clone(),
            province_vn34: row.province_vn34.clone(),
            year: row.year,
            amendments: row.amendments,
            filer_id: uuid(&row.filer_id).map_err(|_| bad("filer_id"))?,
            intermediary_id: row
                .intermediary_id
                .as_deref()
                .map(uuid)
                .transpose()
                .map_err(|_| bad("intermediary_id"))?,
            href: format!("/v1/submissions/{id}"),
            filed_at: row.filed_at,
            updated_at: row.updated_at,
        })
    }
}

/// List your submissions.
///
/// For a business, every submission filed for it (by itself or by an intermediary); for an
/// intermediary, every submission it filed for its members. In filing order, with status and
/// the latest government response. Keyset pagination: follow `next` until it is absent.
/// Follows the projector (within milliseconds of a filing).
#[utoipa::path(
    tag = "account",
    params(OwnQuery),
    responses(
        (status = 200, description = "A page of your submissions", body = Paged<OwnItem, Rows>),
        ReadProblems,
    ),
    security(("bearer" = []))
)]
#[get("/v1/submissions")]
pub async fn list_own(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Filer,
    query: Query<OwnQuery>,
) -> Result<HttpResponse, ApiError> {
    let own = who.filer.to_string();
    let (filer, intermediary) = if who.intermediary {
        (None, Some(own))
    } else {
        (Some(own), None)
    };
    let rows = redtape_store::moderation::queue(
        &state.db,
        &QueueFilter {
            status: query.status.map(Status::as_str),
            province: None,
            procedure: query.procedure.as_ref().map(|p| p.as_str().to_string()),
            year: query.year,
            filer,
            intermediary,
            scope: Default::default(),
            after: query.cursor.clone(),
            limit: u32::try_from(query.limit + 1).unwrap_or(u32::MAX),
        },
    )
    .await?;
    json_page(&req, rows, query.limit, queue_key, OwnItem::of)
}
