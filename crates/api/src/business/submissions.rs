//! Business endpoints: file, read, amend and withdraw submissions. Thin by design: parse the
//! body, build a command, execute it, shape the answer. The rules live in the domain crate;
//! what officers' handlers share with these (the view, visibility, changes) in
//! [`crate::submission`].

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use redtape_domain::submission::{
    AmendmentDraft, ComplaintDraft, FilerId, SubmissionCommand, TimingDraft, WithdrawalDraft,
};
use redtape_store::CommandError;
use uuid::Uuid;

use crate::extract::{parse_json, path_uuid, Business, Caller};
use crate::idempotency::{self, Creates, Handled, IdempotencyKey};
use crate::problem::{ApiError, Problem, ReadProblems, WriteProblems};
use crate::submission::{change, metadata, now, view_outcome, visible, SubmissionView};
use crate::AppState;

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
