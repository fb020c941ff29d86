//! Business endpoints: file, read, amend and withdraw submissions. Thin by design: parse the
//! body, build a command, execute it, shape the answer. The rules live in the domain crate.
//!
//! Also the pieces the officer endpoints (`moderation`) share: the submission view, who may
//! see a submission, event metadata, and executing a change with idempotency and retries.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use redtape_domain::submission::{
    AmendmentDraft, ComplaintDraft, FilerId, Kind, Report, ResponseStatus, Status, Submission,
    SubmissionCommand, SubmissionEvent, TimingDraft, WithdrawalDraft,
};
use redtape_domain::{Provinces, Role};
use redtape_store::commands::{HistoryEntry, SubmissionHistory};
use redtape_store::tokens::Principal;
use redtape_store::CommandError;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::extract::{parse_json, path_uuid, Business, Caller, RequestId};
use crate::idempotency::{self, Creates, Handled, IdempotencyKey, Outcome};
use crate::problem::{ApiError, Problem, ReadProblems, WriteProblems};
use crate::AppState;

/// One event in a submission's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryItem {
    #[schema(example = 1)]
    pub sequence: usize,
    /// Event type: TimingReported, ComplaintFiled, SubmissionAmended, SubmissionWithdrawn,
    /// SubmissionVerified, SubmissionRejected, ResponsePosted.
    #[schema(example = "TimingReported")]
    pub event: String,
    pub recorded_at: DateTime<Utc>,
    /// The request that caused it (the `X-Request-Id` of that response).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changed_fields: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A government response, as the filer reads it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResponseItem {
    #[schema(example = "Sở Kế hoạch và Đầu tư Thành phố Hồ Chí Minh")]
    pub agency: String,
    #[schema(example = "We have asked the district office to explain the delay.")]
    pub text: String,
    pub status: ResponseStatus,
    #[schema(example = "2025-10-03T02:00:00.000000Z")]
    pub posted_at: DateTime<Utc>,
}

/// A submission as its filer (or a moderating officer) sees it: current values, status,
/// government responses and full history.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubmissionView {
    #[schema(example = "01932c4e-7d1a-7c3e-9a51-3f1f0c2b9d11")]
    pub id: Uuid,
    pub kind: Kind,
    pub status: Status,
    #[schema(example = "2025-10-01T03:00:00.000000Z")]
    pub filed_at: DateTime<Utc>,
    #[schema(example = "2025-10-01T03:00:00.000000Z")]
    pub updated_at: DateTime<Utc>,
    #[schema(example = 0)]
    pub amendments: u32,
    /// The sequence number of the latest event.
    #[schema(example = 1)]
    pub version: usize,
    /// The map the province code belongs to: vn-63 before 2025-07-01, vn-34 from then on.
    #[schema(example = "vn-34")]
    pub geography: String,
    #[schema(example = "Thành phố Hồ Chí Minh")]
    pub province_name: String,
    /// Current values of a timing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timing: Option<TimingDraft>,
    /// Current values of a complaint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub complaint: Option<ComplaintDraft>,
    /// Government responses, oldest first.
    pub responses: Vec<ResponseItem>,
    pub history: Vec<HistoryItem>,
}

/// The `vn-34` province of a filed submission (its own, or its successor's).
pub(crate) fn province_vn34(state: &Submission) -> Option<String> {
    let province = match state.report.as_ref()? {
        Report::Timing(t) => &t.province,
        Report::Complaint(c) => &c.province,
    };
    Provinces::get()
        .to_vn34(province)
        .map(|c| c.as_str().to_string())
}

/// Whether `principal` may see this submission: its filer; an officer whose provinces hold
/// it; an admin. Everyone else is told it does not exist, so ids cannot be probed.
pub(crate) fn may_see(principal: &Principal, state: &Submission) -> bool {
    match principal.role {
        Role::Business => principal.filer.is_some() && state.filer == principal.filer,
        Role::Officer => province_vn34(state).is_some_and(|p| principal.scope.allows(&p)),
        Role::Admin => state.report.is_some(),
    }
}

impl SubmissionView {
    fn of(id: Uuid, history: &SubmissionHistory) -> Result<SubmissionView, ApiError> {
        let state = &history.state;
        let (Some(report), Some(filed_at)) = (&state.report, state.filed_at) else {
            return Err(ApiError::Internal(format!(
                "submission {id} has events but no report"
            )));
        };
        let province = match report {
            Report::Timing(t) => &t.province,
            Report::Complaint(c) => &c.province,
        };
        let province_name = Provinces::get()
            .find(province.geography, province.code.as_str())
            .map(|p| p.name.clone())
            .unwrap_or_default();
        let history_items: Vec<HistoryItem> = history.events.iter().map(item).collect();
        Ok(SubmissionView {
            id,
            kind: report.kind(),
            status: state.status,
            filed_at,
            updated_at: history_items.last().map_or(filed_at, |h| h.recorded_at),
            amendments: state.amendments,
            version: history.events.last().map_or(0, |e| e.sequence),
            geography: province.geography.as_str().to_string(),
            province_name,
            timing: match report {
                Report::Timing(t) => Some(TimingDraft::from_timing(t)),
                Report::Complaint(_) => None,
            },
            complaint: match report {
                Report::Complaint(c) => Some(ComplaintDraft::from_complaint(c)),
                Report::Timing(_) => None,
            },
            responses: state
                .responses
                .iter()
                .map(|(r, at)| ResponseItem {
                    agency: r.agency.clone(),
                    text: r.text.clone(),
                    status: r.status,
                    posted_at: *at,
                })
                .collect(),
            history: history_items,
        })
    }
}

fn item(entry: &HistoryEntry) -> HistoryItem {
    let (changed_fields, reason) = match &entry.event {
        SubmissionEvent::SubmissionAmended {
            changed_fields,
            reason,
            ..
        } => (changed_fields.clone(), Some(reason.clone())),
        SubmissionEvent::SubmissionWithdrawn { reason, .. } => (Vec::new(), reason.clone()),
        SubmissionEvent::SubmissionRejected { reason, .. } => (Vec::new(), Some(reason.clone())),
        _ => (Vec::new(), None),
    };
    HistoryItem {
        sequence: entry.sequence,
        event: entry.event.name().to_string(),
        recorded_at: entry.event.at(),
        request_id: entry.metadata.get("request_id").cloned(),
        changed_fields,
        reason,
    }
}

/// Event metadata (DESIGN.md): who, which request, when, with which idempotency key.
pub(crate) fn metadata(
    req: &HttpRequest,
    who: &Caller,
    at: DateTime<Utc>,
) -> HashMap<String, String> {
    let mut m = HashMap::new();
    m.insert("actor".into(), who.actor());
    m.insert("token_id".into(), who.0.token_id.to_string());
    m.insert("request_id".into(), RequestId::of(req));
    m.insert("received_at".into(), redtape_store::timestamp(at));
    if let Some(key) = req
        .headers()
        .get(idempotency::HEADER)
        .and_then(|v| v.to_str().ok())
    {
        m.insert("idempotency_key".into(), key.to_string());
    }
    m
}

/// Now, to the microsecond: what both stores keep, so an answer and a later read agree.
pub(crate) fn now() -> DateTime<Utc> {
    use chrono::DurationRound;
    let t = Utc::now();
    t.duration_trunc(chrono::Duration::microseconds(1))
        .unwrap_or(t)
}

fn view_outcome(
    id: Uuid,
    history: &SubmissionHistory,
    status: StatusCode,
) -> Result<Outcome, ApiError> {
    let view = SubmissionView::of(id, history)?;
    Ok(Outcome {
        status,
        location: Some(format!("/v1/submissions/{id}")),
        body: serde_json::to_string(&view).map_err(|e| ApiError::Internal(e.to_string()))?,
    })
}

/// Files a new submission (shared by timings and complaints).
async fn file(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Business,
    body: web::Bytes,
    command: impl FnOnce(FilerId, DateTime<Utc>) -> SubmissionCommand,
) -> Result<HttpResponse, ApiError> {
    let new_id = Uuid::now_v7().to_string();
    let filer = who.filer;
    let who = Caller(who.principal);
    let caller = who.actor();
    let (state2, req2) = (state.clone(), req.clone());
    idempotency::run(
        &state2,
        &req2,
        &caller,
        &body,
        new_id,
        Creates::Fresh,
        |id, key| async move {
            let uuid = path_uuid("id", &id)?;
            let at = now();
            let db = state.db.clone();
            let filer_text = filer.to_string();
            state
                .limits
                .reserve_filing(filer, at, |since| async move {
                    Ok(redtape_store::moderation::filed_since(&db, &filer_text, since).await?)
                })
                .await?;
            let decided = state
                .submissions
                .decide_new(&id, command(filer, at), metadata(&req, &who, at))
                .await;
            // The answer is decided before the commit, so it commits with the events.
            let committed = match decided.map_err(ApiError::from).and_then(|decided| {
                let outcome = view_outcome(uuid, &decided.history, StatusCode::CREATED)?;
                Ok((decided, outcome))
            }) {
                Ok((decided, outcome)) => {
                    let answer = key.as_ref().map(|k| k.answer(&outcome));
                    state
                        .submissions
                        .commit(decided, answer)
                        .await
                        .map(|_| outcome)
                }
                Err(e) => {
                    state.limits.release_filing(filer, at);
                    return Err(e);
                }
            };
            match committed {
                Ok(outcome) => Ok(Handled {
                    outcome,
                    answered: true,
                }),
                // The id has events already: a retry that took over an abandoned claim of an
                // earlier version finds the submission that request created before its process
                // died. Answer with it instead of filing twice.
                Err(CommandError::Conflict) => {
                    state.limits.release_filing(filer, at);
                    let history = state
                        .submissions
                        .history(&id)
                        .await?
                        .filter(|h| h.state.filer == Some(filer))
                        .ok_or_else(|| ApiError::NotFound("no such submission".into()))?;
                    Ok(Handled {
                        outcome: view_outcome(uuid, &history, StatusCode::CREATED)?,
                        answered: false,
                    })
                }
                Err(e) => {
                    state.limits.release_filing(filer, at);
                    Err(e.into())
                }
            }
        },
    )
    .await
}

/// File a procedure timing.
///
/// Records how long one run of an administrative procedure took in a province and what it
/// cost. Answered with the stored submission; `Location` names its URL. Send an
/// `Idempotency-Key` to retry safely.
#[utoipa::path(
    tag = "submissions",
    request_body(content = TimingDraft, content_type = "application/json"),
    params(IdempotencyKey),
    responses(
        (status = 201, description = "Filed", body = SubmissionView,
         headers(("Location" = String, description = "URL of the new submission"))),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
#[post("/v1/timings")]
pub async fn report_timing(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Business,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let draft: TimingDraft = parse_json(&req, &body)?;
    file(state, req, who, body, |filer, at| {
        SubmissionCommand::ReportTiming { filer, draft, at }
    })
    .await
}

/// File a compliance-cost complaint.
///
/// Records an experience with a procedure: what went wrong (categories), what it cost, and a
/// narrative that is never published.
#[utoipa::path(
    tag = "submissions",
    request_body(content = ComplaintDraft, content_type = "application/json"),
    params(IdempotencyKey),
    responses(
        (status = 201, description = "Filed", body = SubmissionView,
         headers(("Location" = String, description = "URL of the new submission"))),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
#[post("/v1/complaints")]
pub async fn file_complaint(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Business,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let draft: ComplaintDraft = parse_json(&req, &body)?;
    file(state, req, who, body, |filer, at| {
        SubmissionCommand::FileComplaint { filer, draft, at }
    })
    .await
}

/// Read a submission.
///
/// Answered from the submission's events, so it always shows the latest change and every
/// government response. A business reads its own submissions; an officer those in its
/// provinces; an admin any. Any other submission is reported as not found.
#[utoipa::path(
    tag = "submissions",
    params(("id" = Uuid, Path, description = "Submission id")),
    responses(
        (status = 200, description = "The submission", body = SubmissionView),
        ReadProblems,
    ),
    security(("bearer" = []))
)]
#[get("/v1/submissions/{id}")]
pub async fn get_submission(
    state: web::Data<AppState>,
    who: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_uuid("id", &path)?;
    let history = visible(&state, &who.0, id).await?;
    Ok(HttpResponse::Ok().json(SubmissionView::of(id, &history)?))
}

/// The history of a submission `principal` may see; 404 otherwise.
pub(crate) async fn visible(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
) -> Result<SubmissionHistory, ApiError> {
    state
        .submissions
        .history(&id.to_string())
        .await?
        .filter(|h| may_see(principal, &h.state))
        .ok_or_else(|| ApiError::NotFound("no such submission".into()))
}

/// Executes a change to an existing submission, retrying a few times if another change to
/// the same submission commits at the same moment (optimistic concurrency). The caller has
/// checked who may change it; the aggregate checks what its state allows.
pub(crate) async fn change(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Caller,
    body: web::Bytes,
    id: Uuid,
    command: impl Fn(DateTime<Utc>) -> SubmissionCommand,
    status: StatusCode,
) -> Result<HttpResponse, ApiError> {
    let caller = who.actor();
    let target = id.to_string();
    let (state2, req2) = (state.clone(), req.clone());
    idempotency::run(
        &state2,
        &req2,
        &caller,
        &body,
        target.clone(),
        Creates::Other,
        |_, key| async move {
            let mut attempts = 0;
            loop {
                let at = now();
                let decided = state
                    .submissions
                    .decide(&target, command(at), metadata(&req, &who, at))
                    .await?;
                let outcome = view_outcome(id, &decided.history, status)?;
                let answer = key.as_ref().map(|k| k.answer(&outcome));
                match state.submissions.commit(decided, answer).await {
                    Err(CommandError::Conflict) if attempts < 3 => attempts += 1,
                    Err(e) => return Err(e.into()),
                    Ok(_) => {
                        return Ok(Handled {
                            outcome,
                            answered: true,
                        })
                    }
                }
            }
        },
    )
    .await
}

/// Correct one of your submissions.
///
/// A JSON merge patch over the submission's fields with a reason, recorded as a new event
/// (nothing is overwritten). The whole corrected submission must still pass every rule.
/// Allowed within the amendment window (90 days by default) and not after withdrawal.
#[utoipa::path(
    tag = "submissions",
    params(("id" = Uuid, Path, description = "Submission id"), IdempotencyKey),
    request_body(content = AmendmentDraft, content_type = "application/json"),
    responses(
        (status = 200, description = "Amended; the submission as it is now", body = SubmissionView),
        (status = 404, description = "No such submission, or another business's", body = Problem, content_type = "application/problem+json"),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
#[post("/v1/submissions/{id}/amendments")]
pub async fn amend_submission(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Business,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = path_uuid("id", &path)?;
    let draft: AmendmentDraft = parse_json(&req, &body)?;
    let filer = who.filer;
    let command = move |at| SubmissionCommand::Amend {
        filer,
        draft: draft.clone(),
        at,
    };
    let who = Caller(who.principal);
    change(state, req, who, body, id, command, StatusCode::OK).await
}

/// Withdraw one of your submissions.
///
/// The submission leaves every index; its events stay in the log. A body with a reason is
/// optional.
#[utoipa::path(
    tag = "submissions",
    params(("id" = Uuid, Path, description = "Submission id"), IdempotencyKey),
    request_body(content = Option<WithdrawalDraft>, content_type = "application/json"),
    responses(
        (status = 200, description = "Withdrawn", body = SubmissionView),
        (status = 404, description = "No such submission, or another business's", body = Problem, content_type = "application/problem+json"),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
#[post("/v1/submissions/{id}/withdrawal")]
pub async fn withdraw_submission(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Business,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = path_uuid("id", &path)?;
    let draft: WithdrawalDraft = if body.iter().all(u8::is_ascii_whitespace) {
        WithdrawalDraft::default()
    } else {
        parse_json(&req, &body)?
    };
    let filer = who.filer;
    let command = move |at| SubmissionCommand::Withdraw {
        filer,
        reason: draft.reason.clone(),
        at,
    };
    let who = Caller(who.principal);
    change(state, req, who, body, id, command, StatusCode::OK).await
}
