//! An intermediary's members: the businesses it registers (with their profiles) and then files
//! for (`POST /v1/timings?on_behalf_of=<member>`). An intermediary sees only its own members;
//! another's are not found.

use actix_web::http::header;
use actix_web::{get, post, put, web, HttpRequest, HttpResponse};
use redtape_domain::filer::aggregate::FilerKind;
use redtape_domain::filer::drafts::{ProfileDraft, RegistrationDraft};
use redtape_domain::submission::FilerId;
use redtape_domain::Violations;
use redtape_store::accounts::{read, Registration};

use crate::accounts::filer_view;
use crate::accounts::FilerView;
use crate::admin::accounts::{filers_page, FiltersQuery};
use crate::extract::{parse_json, path_uuid, Caller, Intermediary};
use crate::page::{Paged, Rows};
use crate::params::Query;
use crate::problem::{ApiError, Problem, ReadProblems, WriteProblems};
use crate::AppState;

/// Register a member business.
///
/// The member is a business registered by this intermediary, which may then file, amend and
/// withdraw for it; an admin may also issue the member a token of its own, which sees
/// everything filed for it. With an `enterprise_code`, an enterprise registers once, whoever
/// registers it (409).
#[utoipa::path(
    tag = "account",
    request_body(content = RegistrationDraft, content_type = "application/json",
        example = json!({"enterprise_code": "2200123456",
            "profile": {"size_class": "micro", "woman_owned": true, "ethnic_minority_owned": true},
            "label": "member 17"})),
    responses(
        (status = 201, description = "Registered", body = FilerView,
         headers(("Location" = String, description = "URL of the member's profile"))),
        (status = 409, description = "This enterprise code is already registered", body = Problem, content_type = "application/problem+json"),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
#[post("/v1/members")]
pub async fn register_member(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Intermediary,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let draft: RegistrationDraft = parse_json(&req, &body)?;
    let valid = draft.validate()?;
    if valid.kind != FilerKind::Business {
        return Err(Violations::single(
            "/kind",
            "one_of",
            "an intermediary registers businesses only",
        )
        .into());
    }
    let registration = Registration {
        kind: FilerKind::Business,
        registered_by: Some(who.filer),
        enterprise_code: valid.enterprise_code,
        profile: valid.profile,
        label: valid.label,
    };
    let actor = Caller(who.principal).actor();
    let id = state.accounts.register(registration, &actor).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/v1/members/{id}/profile")))
        .json(filer_view(&state, id).await?))
}

/// List your members.
///
/// The businesses this intermediary registered, by id. Keyset pagination: follow `next`
/// until it is absent. (`registered_by` is ignored here: it is always the caller.)
#[utoipa::path(
    tag = "account",
    params(FiltersQuery),
    responses(
        (status = 200, description = "A page of members", body = Paged<FilerView, Rows>),
        ReadProblems,
    ),
    security(("bearer" = []))
)]
#[get("/v1/members")]
pub async fn list_members(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Intermediary,
    query: Query<FiltersQuery>,
) -> Result<HttpResponse, ApiError> {
    filers_page(&state, &req, &query, Some(who.filer)).await
}

/// Declare a member's profile.
///
/// Replaces the member's profile, as `PUT /v1/me/profile` does for a business itself.
#[utoipa::path(
    tag = "account",
    params(("id" = Uuid, Path, description = "Member filer id")),
    request_body(content = ProfileDraft, content_type = "application/json"),
    responses(
        (status = 200, description = "The member with its new profile", body = FilerView),
        (status = 404, description = "No such member of this intermediary", body = Problem, content_type = "application/problem+json"),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
#[put("/v1/members/{id}/profile")]
pub async fn change_member_profile(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Intermediary,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let member = FilerId(path_uuid("id", &path)?);
    let draft: ProfileDraft = parse_json(&req, &body)?;
    let row = read::filer(&state.db, member).await?;
    if row.and_then(|r| r.registered_by) != Some(who.filer.to_string()) {
        return Err(ApiError::NotFound("no such member".into()));
    }
    let actor = Caller(who.principal).actor();
    state
        .accounts
        .change_profile(member, draft.profile(), &actor)
        .await?;
    state.filers.forget(member);
    Ok(HttpResponse::Ok().json(filer_view(&state, member).await?))
}
