//! Officer endpoints: the moderation queue, verification, rejection, government responses and
//! the audit trail of a submission.
//!
//! Officers act only on submissions in their provinces (a token may be limited to some); a
//! submission outside them is answered exactly like a missing one. Admins act everywhere.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use redtape_domain::submission::{RejectionDraft, ResponseDraft, Status, SubmissionCommand};
use redtape_domain::{Geography, ProcedureCode, Provinces};
use redtape_store::moderation::{QueueFilter, QueueRow};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::extract::{parse_json, path_uuid, Caller, Officer};
use crate::idempotency::IdempotencyKey;
use crate::page::{json_page, Paged, Rows};
use crate::params::{self, FromQuery, Query, QueryString};
use crate::problem::{ApiError, ReadProblems, WriteProblems};
use crate::submission::{change, visible, SubmissionView};
use crate::AppState;

/// Largest page of the queue.
pub const MAX_PAGE: usize = 200;
const DEFAULT_PAGE: usize = 50;

#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueueQuery {
    /// received (default: waiting for moderation), verified, rejected or withdrawn.
    #[param(value_type = Option<Status>, inline, example = "received")]
    pub status: Status,
    /// A vn-34 province code (submissions on the old map count under their successor).
    #[param(example = "79")]
    pub province: Option<String>,
    /// A national procedure code.
    #[param(value_type = Option<String>, example = "1.001612")]
    pub procedure: Option<ProcedureCode>,
    /// Only the submissions this intermediary (a filer id) filed for its members.
    #[param(value_type = Option<Uuid>)]
    pub intermediary: Option<Uuid>,
    /// Items per page, 1 to 200 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    pub limit: usize,
    /// The `next_cursor` of the previous page.
    #[param(value_type = Option<String>)]
    pub cursor: Option<(String, String)>,
}

impl FromQuery for QueueQuery {
    fn from_query(q: &QueryString, _: &HttpRequest) -> Result<Self, ApiError> {
        Ok(QueueQuery {
            status: q
                .optional("status", params::one_of(params::STATUSES))?
                .unwrap_or(Status::Received),
            province: q.optional("province", params::province(Geography::Vn34))?,
            procedure: q.optional("procedure", params::procedure)?,
            intermediary: q.optional("intermediary", params::uuid)?,
            limit: q
                .optional("limit", params::limit(MAX_PAGE))?
                .unwrap_or(DEFAULT_PAGE),
            cursor: q.text("cursor").map(decode_cursor).transpose()?,
        })
    }
}

/// One submission in the queue: enough to triage; the full submission is at `href`.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueItem {
    #[schema(example = "01932c4e-7d1a-7c3e-9a51-3f1f0c2b9d11")]
    pub id: Uuid,
    #[schema(example = "timing")]
    pub kind: String,
    pub status: Status,
    #[schema(example = "1.001612")]
    pub procedure_code: String,
    /// The map the submission's province code belongs to.
    #[schema(example = "vn-34")]
    pub geography: String,
    #[schema(example = "79")]
    pub province_code: String,
    /// Its vn-34 province (the scope officers are given).
    #[schema(example = "79")]
    pub province_vn34: String,
    #[schema(example = "Thành phố Hồ Chí Minh")]
    pub province_name: String,
    /// The year it counts in.
    #[schema(example = 2025)]
    pub year: i32,
    #[schema(example = 0)]
    pub amendments: i32,
    #[schema(example = "2025-10-01T03:00:00.000000Z")]
    pub filed_at: String,
    #[schema(example = "2025-10-01T03:00:00.000000Z")]
    pub updated_at: String,
    #[schema(example = "/v1/submissions/01932c4e-7d1a-7c3e-9a51-3f1f0c2b9d11")]
    pub href: String,
}

impl QueueItem {
    fn of(row: QueueRow) -> Result<QueueItem, ApiError> {
        let status = Status::parse(&row.status)
            .ok_or_else(|| ApiError::internal(format!("bad status {:?}", row.status)))?;
        let id = Uuid::parse_str(&row.submission_id)
            .map_err(|e| ApiError::internal(format!("bad id {:?}: {e}", row.submission_id)))?;
        Ok(QueueItem {
            id,
            kind: row.kind,
            status,
            province_name: Provinces::get()
                .find(Geography::Vn34, &row.province_vn34)
                .map(|p| p.name.clone())
                .unwrap_or_default(),
            procedure_code: row.procedure_code,
            geography: row.geography,
            province_code: row.province_code,
            province_vn34: row.province_vn34,
            year: row.year,
            amendments: row.amendments,
            filed_at: row.filed_at,
            updated_at: row.updated_at,
            href: format!("/v1/submissions/{id}"),
        })
    }
}

/// The keyset of queue rows (and of a filer's own list): filing time, then id.
pub(crate) fn queue_key(row: &QueueRow) -> Vec<String> {
    vec![row.filed_at.clone(), row.submission_id.clone()]
}

/// A queue cursor: the (filed_at, id) of the last item, checked on the way back in.
pub(crate) fn decode_cursor(text: &str) -> Result<(String, String), ApiError> {
    let bad = || ApiError::parameter("cursor", "format", "not a cursor this API gave out");
    let parts = crate::page::decode_cursor(text, 2)?;
    let (filed_at, id) = (&parts[0], &parts[1]);
    DateTime::parse_from_rfc3339(filed_at).map_err(|_| bad())?;
    Uuid::parse_str(id).map_err(|_| bad())?;
    Ok((filed_at.clone(), id.clone()))
}

/// The moderation queue.
///
/// Submissions of one status (default `received`: waiting for moderation), oldest first,
/// limited to the officer's provinces. Keyset pagination: follow `next` until it is absent.
#[utoipa::path(
    tag = "moderation",
    params(QueueQuery),
    responses(
        (status = 200, description = "A page of the queue", body = Paged<QueueItem, Rows>),
        ReadProblems,
    ),
    security(("bearer" = []))
)]
#[get("/v1/moderation/queue")]
pub async fn queue(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Officer,
    query: Query<QueueQuery>,
) -> Result<HttpResponse, ApiError> {
    let QueueQuery {
        status,
        ref province,
        ref procedure,
        limit,
        ref cursor,
        ..
    } = *query;
    let procedure = procedure.as_ref().map(|p| p.as_str().to_string());
    let province = province.clone();
    let after = cursor.clone();
    let rows = redtape_store::moderation::queue(
        &state.db,
        &QueueFilter {
            status: Some(status.as_str()),
            province: province.clone(),
            procedure: procedure.clone(),
            year: None,
            filer: None,
            intermediary: query.intermediary.map(|i| i.to_string()),
            scope: who.scope().clone(),
            after,
            // One more than asked, to know whether there is a next page.
            limit: u32::try_from(limit + 1).unwrap_or(u32::MAX),
        },
    )
    .await?;
    // Oldest first; the next page's URL keeps every filter of this one.
    json_page(&req, rows, limit, queue_key, QueueItem::of)
}

/// Runs an officer's command on a submission the officer may see (404 otherwise).
async fn moderate(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Officer,
    body: web::Bytes,
    id: Uuid,
    command: impl Fn(DateTime<Utc>) -> SubmissionCommand,
    status: StatusCode,
) -> Result<HttpResponse, ApiError> {
    visible(&state, &who.0, id).await?;
    change(state, req, Caller(who.0), body, id, command, status).await
}

/// Verify a submission.
///
/// Marks a received submission as verified (it stays in the indices). Amending it later sends
/// it back to `received`. No body.
#[utoipa::path(
    tag = "moderation",
    params(("id" = Uuid, Path, description = "Submission id"), IdempotencyKey),
    responses(
        (status = 200, description = "Verified; the submission as it is now", body = SubmissionView),
        (status = 404, description = "No such submission, or outside the officer's provinces", body = crate::problem::Problem, content_type = "application/problem+json"),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
#[post("/v1/submissions/{id}/verification")]
pub async fn verify(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Officer,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_uuid("id", &path)?;
    let command = |at| SubmissionCommand::Verify { at };
    // No body: any sent is ignored, so a retry's fingerprint is the method and path.
    let body = web::Bytes::new();
    moderate(state, req, who, body, id, command, StatusCode::OK).await
}

/// Reject a submission.
///
/// Takes a received or verified submission out of every index, with a reason the filer
/// sees. Its events stay in the log.
#[utoipa::path(
    tag = "moderation",
    params(("id" = Uuid, Path, description = "Submission id"), IdempotencyKey),
    request_body(content = RejectionDraft, content_type = "application/json"),
    responses(
        (status = 200, description = "Rejected; the submission as it is now", body = SubmissionView),
        (status = 404, description = "No such submission, or outside the officer's provinces", body = crate::problem::Problem, content_type = "application/problem+json"),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
#[post("/v1/submissions/{id}/rejection")]
pub async fn reject(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Officer,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = path_uuid("id", &path)?;
    let draft: RejectionDraft = parse_json(&req, &body)?;
    let command = move |at| SubmissionCommand::Reject {
        reason: draft.reason.clone(),
        at,
    };
    moderate(state, req, who, body, id, command, StatusCode::OK).await
}

/// Post a government response.
///
/// An agency's answer to the filer, with where the matter stands. The filer reads it on
/// `GET /v1/submissions/{id}`; only the agency, status and timing are published (in
/// `GET /v1/responses`), never the text.
#[utoipa::path(
    tag = "moderation",
    params(("id" = Uuid, Path, description = "Submission id"), IdempotencyKey),
    request_body(content = ResponseDraft, content_type = "application/json"),
    responses(
        (status = 201, description = "Posted; the submission with its responses", body = SubmissionView,
         headers(("Location" = String, description = "URL of the submission"))),
        (status = 404, description = "No such submission, or outside the officer's provinces", body = crate::problem::Problem, content_type = "application/problem+json"),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
#[post("/v1/submissions/{id}/responses")]
pub async fn respond(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Officer,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = path_uuid("id", &path)?;
    let draft: ResponseDraft = parse_json(&req, &body)?;
    let command = move |at| SubmissionCommand::Respond {
        draft: draft.clone(),
        at,
    };
    moderate(state, req, who, body, id, command, StatusCode::CREATED).await
}

/// One event of the audit trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEvent {
    #[schema(example = 1)]
    pub sequence: usize,
    #[schema(example = "TimingReported")]
    pub event: String,
    #[schema(example = "2025-10-01T03:00:00.000000Z")]
    pub recorded_at: DateTime<Utc>,
    /// Who caused it: `filer:<id>` (a business), `intermediary:<token id>` (for its member,
    /// the filer of the submission), `officer:<token id>` or `admin:<token id>`.
    #[schema(example = "filer:01932c4e-0000-7000-8000-000000000001")]
    pub actor: Option<String>,
    /// The token that made the request.
    #[schema(example = "01932c4e-0000-7000-8000-00000000000a")]
    pub token_id: Option<String>,
    /// The request's `X-Request-Id`.
    #[schema(example = "01932c4e-7d1a-7c3e-9a51-3f1f0c2b9d12")]
    pub request_id: Option<String>,
    #[schema(example = "3f8e2a4c-5b1d-4e0f-9a7b-2c6d8e1f0a3b")]
    pub idempotency_key: Option<String>,
    /// The event's payload as stored, without the filer's profile (a filing records it for
    /// the statistics by firm profile; moderating a submission does not need it).
    #[schema(value_type = Object)]
    #[schema(example = json!({"SubmissionVerified": {"verified_at": "2025-10-02T08:00:00.000000Z"}}))]
    pub data: serde_json::Value,
}

/// A filing event's payload without the `profile` it records.
fn without_profile(mut data: serde_json::Value) -> serde_json::Value {
    if let Some(fields) = data
        .as_object_mut()
        .and_then(|event| event.values_mut().next())
        .and_then(serde_json::Value::as_object_mut)
    {
        fields.remove("profile");
    }
    data
}

/// The audit trail of a submission.
///
/// Every event, oldest first, with who caused it, when, and through which request. For
/// officers (in their provinces) and admins.
#[utoipa::path(
    tag = "moderation",
    params(("id" = Uuid, Path, description = "Submission id")),
    responses(
        (status = 200, description = "Every event of the submission", body = Vec<AuditEvent>),
        ReadProblems,
    ),
    security(("bearer" = []))
)]
#[get("/v1/submissions/{id}/events")]
pub async fn audit_trail(
    state: web::Data<AppState>,
    who: Officer,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_uuid("id", &path)?;
    let history = visible(&state, &who.0, id).await?;
    let events = history
        .events
        .iter()
        .map(|e| {
            let meta = |k: &str| e.metadata.get(k).cloned();
            Ok(AuditEvent {
                sequence: e.sequence,
                event: e.event.name().to_string(),
                recorded_at: e.event.at(),
                actor: meta("actor"),
                token_id: meta("token_id"),
                request_id: meta("request_id"),
                idempotency_key: meta("idempotency_key"),
                data: without_profile(serde_json::to_value(&e.event).map_err(ApiError::internal)?),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(HttpResponse::Ok().json(events))
}
