//! Onboarding: administrators register filers (businesses, intermediaries), issue tokens to
//! filers and staff, list both, and revoke tokens. `redtape token issue|revoke` calls the same
//! store code ([`redtape_store::accounts::Accounts`]).
//!
//! A new token is in the answer to its `POST` only (with `Cache-Control: no-store`); it is
//! not idempotent on purpose, since replaying a stored answer would mean storing the token. A
//! lost answer is recovered by issuing another and revoking the first, which the list shows
//! without its secret.

use actix_web::http::header;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use redtape_domain::filer::drafts::{RegistrationDraft, TokenDraft};
use redtape_domain::submission::FilerId;
use redtape_store::accounts::read;
use redtape_store::accounts::Registration;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::accounts::{filer_view, FilerView, TokenView};
use crate::extract::{parse_json, path_uuid, Admin, Caller};
use crate::page::{json_page, Paged, Rows};
use crate::params::{self, FromQuery, Query, QueryString};
use crate::problem::{ApiError, Problem, ReadProblems, WriteProblems};
use crate::submission::now;
use crate::AppState;

/// Largest page of filers or tokens.
pub const MAX_PAGE: usize = 500;
const DEFAULT_PAGE: usize = 100;

fn cursor(q: &QueryString) -> Result<Option<String>, ApiError> {
    q.text("cursor")
        .map(|c| {
            let id = crate::page::decode_cursor(c, 1)?.remove(0);
            Uuid::parse_str(&id).map_err(|_| {
                ApiError::parameter("cursor", "format", "not a cursor this API gave out")
            })?;
            Ok(id)
        })
        .transpose()
}

#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FiltersQuery {
    /// Only the members registered by this intermediary.
    #[param(value_type = Option<Uuid>)]
    pub registered_by: Option<Uuid>,
    /// Items per page, 1 to 500 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    pub limit: usize,
    /// The `next_cursor` of the previous page.
    #[param(value_type = Option<String>)]
    pub cursor: Option<String>,
}

impl FromQuery for FiltersQuery {
    fn from_query(q: &QueryString, _: &HttpRequest) -> Result<Self, ApiError> {
        Ok(FiltersQuery {
            registered_by: q.optional("registered_by", params::uuid)?,
            limit: q
                .optional("limit", params::limit(MAX_PAGE))?
                .unwrap_or(DEFAULT_PAGE),
            cursor: cursor(q)?,
        })
    }
}

#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokensQuery {
    /// Only the tokens of this filer.
    #[param(value_type = Option<Uuid>)]
    pub filer: Option<Uuid>,
    /// Items per page, 1 to 500 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    pub limit: usize,
    /// The `next_cursor` of the previous page.
    #[param(value_type = Option<String>)]
    pub cursor: Option<String>,
}

impl FromQuery for TokensQuery {
    fn from_query(q: &QueryString, _: &HttpRequest) -> Result<Self, ApiError> {
        Ok(TokensQuery {
            filer: q.optional("filer", params::uuid)?,
            limit: q
                .optional("limit", params::limit(MAX_PAGE))?
                .unwrap_or(DEFAULT_PAGE),
            cursor: cursor(q)?,
        })
    }
}

/// Register a filer.
///
/// Registers a business, or an intermediary (a business association, an SME support centre)
/// that will register member businesses and file for them. With an `enterprise_code`, the
/// same enterprise cannot register twice (409); the code is replaced by a keyed hash at once
/// and never stored, logged or shown. Then issue the filer a token (`POST /v1/admin/tokens`).
#[utoipa::path(
    tag = "admin",
    request_body(content = RegistrationDraft, content_type = "application/json",
        example = json!({"kind": "business", "enterprise_code": "0312345678",
            "profile": {"size_class": "small", "sector_section": "G", "woman_owned": true},
            "label": "Cong ty TNHH Minh Anh"})),
    responses(
        (status = 201, description = "Registered", body = FilerView,
         headers(("Location" = String, description = "URL of the filer"))),
        (status = 409, description = "This enterprise code is already registered", body = Problem, content_type = "application/problem+json"),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
#[post("/v1/admin/filers")]
pub async fn register_filer(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Admin,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let draft: RegistrationDraft = parse_json(&req, &body)?;
    let valid = draft.validate()?;
    let registration = Registration {
        kind: valid.kind,
        registered_by: None,
        enterprise_code: valid.enterprise_code,
        profile: valid.profile,
        label: valid.label,
    };
    let actor = Caller(who.0).actor();
    let id = state.accounts.register(registration, &actor).await?;
    let view = filer_view(&state, id).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/v1/admin/filers/{id}")))
        .json(view))
}

/// List filers.
///
/// Every registered filer, by id; `registered_by` keeps the members of one intermediary.
/// Keyset pagination: follow `next` until it is absent.
#[utoipa::path(
    tag = "admin",
    params(FiltersQuery),
    responses(
        (status = 200, description = "A page of filers", body = Paged<FilerView, Rows>),
        ReadProblems,
    ),
    security(("bearer" = []))
)]
#[get("/v1/admin/filers")]
pub async fn list_filers(
    state: web::Data<AppState>,
    req: HttpRequest,
    _: Admin,
    query: Query<FiltersQuery>,
) -> Result<HttpResponse, ApiError> {
    filers_page(&state, &req, &query, query.registered_by.map(FilerId)).await
}

/// A page of filers (the members of `registered_by` only, if given).
pub(crate) async fn filers_page(
    state: &AppState,
    req: &HttpRequest,
    query: &FiltersQuery,
    registered_by: Option<FilerId>,
) -> Result<HttpResponse, ApiError> {
    let rows = read::filers(
        &state.db,
        query.cursor.as_deref(),
        i64::try_from(query.limit + 1).unwrap_or(i64::MAX),
        registered_by,
    )
    .await?;
    json_page(
        req,
        rows,
        query.limit,
        |r| vec![r.filer_id.clone()],
        FilerView::of,
    )
}

/// Get a filer.
#[utoipa::path(
    tag = "admin",
    params(("id" = Uuid, Path, description = "Filer id")),
    responses(
        (status = 200, description = "The filer", body = FilerView),
        (status = 404, description = "No such filer", body = Problem, content_type = "application/problem+json"),
        ReadProblems,
    ),
    security(("bearer" = []))
)]
#[get("/v1/admin/filers/{id}")]
pub async fn get_filer(
    state: web::Data<AppState>,
    _: Admin,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = FilerId(path_uuid("id", &path)?);
    Ok(HttpResponse::Ok().json(filer_view(&state, id).await?))
}

/// A token just issued: the only answer that carries it.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedTokenView {
    /// The bearer token. Shown once: only its hash is kept.
    #[schema(example = "rt_3f9c0d5e8a7b6c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f9")]
    pub token: String,
    #[serde(flatten)]
    pub about: TokenView,
}

/// Issue a token.
///
/// For a registered filer (`business` or `intermediary`, with `filer_id`) or for staff
/// (`officer`, optionally limited to `provinces`; `admin`). The token is in this answer only;
/// it is not idempotent, so a retry issues another (revoke the one you did not get).
#[utoipa::path(
    tag = "admin",
    request_body(content = TokenDraft, content_type = "application/json",
        example = json!({"role": "officer", "provinces": ["79"], "label": "HCMC DPI, reform desk",
            "expires_at": "2027-06-30T00:00:00Z"})),
    responses(
        (status = 201, description = "Issued; the token is shown once", body = IssuedTokenView,
         headers(("Cache-Control" = String, description = "no-store"))),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
#[post("/v1/admin/tokens")]
pub async fn issue_token(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Admin,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let draft: TokenDraft = parse_json(&req, &body)?;
    let request = draft.validate(now())?;
    let actor = Caller(who.0).actor();
    let issued = state.accounts.issue(request, &actor).await?;
    let id = issued.principal.token_id;
    let row = token_row(&state, id).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(IssuedTokenView {
            token: issued.token,
            about: TokenView::of(row, now())?,
        }))
}

async fn token_row(state: &AppState, id: Uuid) -> Result<read::TokenRow, ApiError> {
    read::token(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such token".into()))
}

/// List tokens.
///
/// Every token, by id, with its status and when it was last used (to within a minute);
/// never a token or its hash. `filer` keeps one filer's tokens.
#[utoipa::path(
    tag = "admin",
    params(TokensQuery),
    responses(
        (status = 200, description = "A page of tokens", body = Paged<TokenView, Rows>),
        ReadProblems,
    ),
    security(("bearer" = []))
)]
#[get("/v1/admin/tokens")]
pub async fn list_tokens(
    state: web::Data<AppState>,
    req: HttpRequest,
    _: Admin,
    query: Query<TokensQuery>,
) -> Result<HttpResponse, ApiError> {
    let rows = read::tokens(
        &state.db,
        query.cursor.as_deref(),
        i64::try_from(query.limit + 1).unwrap_or(i64::MAX),
        query.filer.map(FilerId),
    )
    .await?;
    let at = now();
    json_page(
        &req,
        rows,
        query.limit,
        |r| vec![r.token_id.clone()],
        |r| TokenView::of(r, at),
    )
}

/// Revoke a token.
///
/// The token stops working within the token cache's lifetime (10 s by default) on every
/// replica, and stays revoked, also after a rebuild. No body.
#[utoipa::path(
    tag = "admin",
    params(("id" = Uuid, Path, description = "Token id")),
    responses(
        (status = 200, description = "Revoked; the token as it is now", body = TokenView),
        (status = 404, description = "No such token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already revoked", body = Problem, content_type = "application/problem+json"),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
#[post("/v1/admin/tokens/{id}/revocation")]
pub async fn revoke_token(
    state: web::Data<AppState>,
    who: Admin,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_uuid("id", &path)?;
    let actor = Caller(who.0).actor();
    state.accounts.revoke(id, &actor).await?;
    let row = token_row(&state, id).await?;
    Ok(HttpResponse::Ok().json(TokenView::of(row, now())?))
}
