//! Procedure administration: register a procedure, reform its statutory terms from a date,
//! abolish it. Each is an event of the `Procedure` aggregate; the catalogue, the on-time
//! verdicts of affected timings and the reform marks on trends follow from the projector.
//!
//! The catalogue is national, so only officers for every province, and admins, change it.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{post, web, HttpRequest, HttpResponse};
use redtape_domain::procedure_terms::{
    AbolitionDraft, ChangeDraft, ProcedureCommand, ProcedureError, ReformDraft, RegistrationDraft,
};
use redtape_domain::ProcedureCode;

use crate::extract::{parse_json, Caller, Officer};
use crate::idempotency::{self, Creates, Handled, IdempotencyKey, Outcome};
use crate::open::reference::ProcedureView;
use crate::problem::{ApiError, Conflict, Problem, WriteProblems};
use crate::submission::{metadata, now};
use crate::AppState;

/// How long a command waits for the catalogue to show its own change.
const SETTLE: Duration = Duration::from_secs(10);

impl From<ProcedureError> for ApiError {
    fn from(e: ProcedureError) -> Self {
        match e {
            ProcedureError::Invalid(v) => v.into(),
            ProcedureError::NotFound => ApiError::NotFound("no such procedure".into()),
            ProcedureError::AlreadyRegistered => ApiError::Conflict {
                kind: Conflict::AlreadyExists,
                detail: e.to_string(),
            },
            ProcedureError::Abolished(_) => ApiError::Conflict {
                kind: Conflict::ProcedureAbolished,
                detail: e.to_string(),
            },
        }
    }
}

/// An officer for every province, or an admin.
fn national(who: Officer) -> Result<Caller, ApiError> {
    if who.scope().is_everywhere() {
        Ok(Caller(who.0))
    } else {
        Err(ApiError::Forbidden(
            "the procedure catalogue is national: only an officer for every province, or an \
             admin, may change it",
        ))
    }
}

/// Runs one procedure command under idempotency, then answers with the procedure as the
/// catalogue now shows it (the catalogue has caught up, so a filing right after sees it).
async fn administer(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Caller,
    body: web::Bytes,
    code: String,
    command: ProcedureCommand,
    status: StatusCode,
) -> Result<HttpResponse, ApiError> {
    let caller = who.actor();
    let (state2, req2) = (state.clone(), req.clone());
    idempotency::run(
        &state2,
        &req2,
        &caller,
        &body,
        code,
        Creates::Other,
        |code, _| async move {
            let at = now();
            state
                .procedures
                .execute(&code, command, metadata(&req, &who, at))
                .await?;
            if !state.projector.settle(SETTLE).await? {
                tracing::warn!(
                    code,
                    "catalogue not yet caught up after a procedure command"
                );
            }
            let timeline = state
                .procedures
                .timeline(&code)
                .await?
                .ok_or_else(|| ApiError::internal(format!("procedure {code} has no events")))?;
            let view = ProcedureView::of(&timeline)
                .ok_or_else(|| ApiError::internal(format!("procedure {code} is not registered")))?;
            Ok(Handled {
                outcome: Outcome {
                    status,
                    location: Some(format!("/v1/procedures/{code}")),
                    body: serde_json::to_string(&view).map_err(ApiError::internal)?,
                },
                answered: false,
            })
        },
    )
    .await
}

/// Changes a registered procedure with a draft of kind `D` (a reform, an abolition).
async fn change<D: ChangeDraft + serde::de::DeserializeOwned>(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Officer,
    path: &str,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let who = national(who)?;
    let code = code_of(path)?;
    let draft: D = parse_json(&req, &body)?;
    let command = draft.into_command(now())?;
    administer(state, req, who, body, code, command, StatusCode::OK).await
}

fn code_of(path: &str) -> Result<String, ApiError> {
    ProcedureCode::parse_format("", path)
        .map(|c| c.as_str().to_string())
        .map_err(|v| ApiError::parameter("code", &v.rule, v.detail))
}

/// Register a procedure.
///
/// Adds a procedure to the catalogue with its first statutory terms, in force from
/// `effective_from`. Businesses can file about it at once.
#[utoipa::path(
    tag = "procedures",
    params(IdempotencyKey),
    request_body(content = RegistrationDraft, content_type = "application/json"),
    responses(
        (status = 201, description = "Registered", body = ProcedureView,
         headers(("Location" = String, description = "URL of the procedure"))),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
#[post("/v1/procedures")]
pub async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Officer,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let who = national(who)?;
    let draft: RegistrationDraft = parse_json(&req, &body)?;
    let (code, command) = draft.into_command(now())?;
    administer(state, req, who, body, code, command, StatusCode::CREATED).await
}

/// Reform a procedure.
///
/// New statutory terms (time limit, fee) from a date after the current terms took effect.
/// Timings submitted from that date are judged against the new limit; trends mark the year.
#[utoipa::path(
    tag = "procedures",
    params(("code" = String, Path, description = "National procedure code", example = "1.001612"), IdempotencyKey),
    request_body(content = ReformDraft, content_type = "application/json"),
    responses(
        (status = 200, description = "Reformed; the procedure with its terms over time", body = ProcedureView),
        (status = 404, description = "No such procedure", body = Problem, content_type = "application/problem+json"),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
#[post("/v1/procedures/{code}/reforms")]
pub async fn reform(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Officer,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    change::<ReformDraft>(state, req, who, &path, body).await
}

/// Abolish a procedure.
///
/// From `effective_from` on, no timing may be filed for it; its past figures stay published.
#[utoipa::path(
    tag = "procedures",
    params(("code" = String, Path, description = "National procedure code", example = "1.001612"), IdempotencyKey),
    request_body(content = AbolitionDraft, content_type = "application/json"),
    responses(
        (status = 200, description = "Abolished; the procedure with its abolition date", body = ProcedureView),
        (status = 404, description = "No such procedure", body = Problem, content_type = "application/problem+json"),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
#[post("/v1/procedures/{code}/abolition")]
pub async fn abolish(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Officer,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    change::<AbolitionDraft>(state, req, who, &path, body).await
}
