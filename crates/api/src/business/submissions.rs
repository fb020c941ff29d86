//! Business endpoints: file, read, amend and withdraw submissions. Thin by design: parse the
//! body, build a command, execute it, shape the answer. The rules live in the domain crate;
//! what officers' handlers share with these (the view, visibility, changes) in
//! [`crate::submission`].

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use redtape_domain::filer::FilerProfile;
use redtape_domain::submission::{
    AmendmentDraft, ComplaintDraft, FilerId, SubmissionCommand, TimingDraft, WithdrawalDraft,
};
use redtape_store::CommandError;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::extract::{parse_json, path_uuid, Caller, Filer};
use crate::idempotency::{self, Creates, Handled, IdempotencyKey};
use crate::params::{self, FromQuery, Query, QueryString};
use crate::problem::{ApiError, Problem, ReadProblems, WriteProblems};
use crate::submission::{change, metadata, now, view_outcome, visible, SubmissionView};
use crate::AppState;

/// Who a filing is for.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FilingQuery {
    /// Intermediary tokens only, and required for them: the member business (registered by
    /// this intermediary) the submission is filed for.
    #[param(value_type = Option<Uuid>)]
    pub on_behalf_of: Option<Uuid>,
}

impl FromQuery for FilingQuery {
    fn from_query(q: &QueryString, _: &HttpRequest) -> Result<Self, ApiError> {
        Ok(FilingQuery {
            on_behalf_of: q.optional("on_behalf_of", params::uuid)?,
        })
    }
}

/// What a filing records of its filer: the filer it is for, with the profile in force now,
/// and the intermediary filing it, if any. A business files for itself; an intermediary for
/// a member it registered, named by `on_behalf_of`.
async fn filed_by(
    state: &AppState,
    who: &Filer,
    on_behalf_of: Option<Uuid>,
) -> Result<(FilerId, FilerProfile, Option<FilerId>), ApiError> {
    let (filer, intermediary) = match (who.intermediary, on_behalf_of) {
        (false, None) => (who.filer, None),
        (false, Some(_)) => {
            return Err(ApiError::parameter(
                "on_behalf_of",
                "not_allowed",
                "a business files for itself; on_behalf_of is for intermediaries",
            ))
        }
        (true, None) => {
            return Err(ApiError::parameter(
                "on_behalf_of",
                "required",
                "an intermediary files for a member: give on_behalf_of=<the member's filer id>",
            ))
        }
        (true, Some(member)) => (FilerId(member), Some(who.filer)),
    };
    let row = state.filers.get(&state.db, filer).await?;
    if let Some(intermediary) = intermediary {
        let registered_by = row.as_ref().and_then(|r| r.registered_by.clone());
        if registered_by != Some(intermediary.to_string()) {
            return Err(ApiError::parameter(
                "on_behalf_of",
                "member",
                "not a member business this intermediary registered",
            ));
        }
    }
    let profile = row.map(|r| r.profile()).unwrap_or_default();
    Ok((filer, profile, intermediary))
}

/// Files a new submission (shared by timings and complaints).
async fn file(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Filer,
    on_behalf_of: Option<Uuid>,
    body: web::Bytes,
    command: impl FnOnce(FilerId, FilerProfile, Option<FilerId>, DateTime<Utc>) -> SubmissionCommand,
) -> Result<HttpResponse, ApiError> {
    let new_id = Uuid::now_v7().to_string();
    let (filer, profile, intermediary) = filed_by(&state, &who, on_behalf_of).await?;
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
            let decided = state
                .submissions
                .decide_new(
                    &id,
                    command(filer, profile, intermediary, at),
                    metadata(&req, &who, at),
                )
                .await?;
            // The answer is decided before the commit, so it commits with the events; the
            // daily cap is reserved in the same transaction.
            let outcome = view_outcome(uuid, &decided.history, StatusCode::CREATED)?;
            let answer = key.as_ref().map(|k| k.answer(&outcome));
            let committed = state
                .submissions
                .commit(decided.capped(state.limits.quota(filer, at)), answer)
                .await;
            match committed {
                Ok(_) => Ok(Handled {
                    outcome,
                    answered: true,
                }),
                // The id has events already: a retry that took over an abandoned claim of an
                // earlier version finds the submission that request created before its process
                // died. Answer with it instead of filing twice.
                Err(CommandError::Conflict) => {
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
                Err(e) => Err(e.into()),
            }
        },
    )
    .await
}

/// The filer a change acts for: a business, itself; an intermediary, the member it filed the
/// submission for (a submission it did not file is not found, like any it may not see).
async fn acting_for(state: &AppState, who: &Filer, id: Uuid) -> Result<FilerId, ApiError> {
    if !who.intermediary {
        return Ok(who.filer);
    }
    visible(state, &who.principal, id)
        .await?
        .state
        .filer
        .ok_or_else(|| ApiError::NotFound("no such submission".into()))
}

/// File a procedure timing.
///
/// Records how long one run of an administrative procedure took in a province and what it
/// cost. Answered with the stored submission; `Location` names its URL. Send an
/// `Idempotency-Key` to retry safely.
#[utoipa::path(
    tag = "submissions",
    request_body(content = TimingDraft, content_type = "application/json"),
    params(FilingQuery, IdempotencyKey),
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
    who: Filer,
    query: Query<FilingQuery>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let draft: TimingDraft = parse_json(&req, &body)?;
    file(
        state,
        req,
        who,
        query.on_behalf_of,
        body,
        |filer, profile, intermediary, at| SubmissionCommand::ReportTiming {
            filer,
            draft,
            at,
            profile,
            intermediary,
        },
    )
    .await
}

/// File a compliance-cost complaint.
///
/// Records an experience with a procedure: what went wrong (categories), what it cost, and a
/// narrative that is never published.
#[utoipa::path(
    tag = "submissions",
    request_body(content = ComplaintDraft, content_type = "application/json"),
    params(FilingQuery, IdempotencyKey),
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
    who: Filer,
    query: Query<FilingQuery>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let draft: ComplaintDraft = parse_json(&req, &body)?;
    file(
        state,
        req,
        who,
        query.on_behalf_of,
        body,
        |filer, profile, intermediary, at| SubmissionCommand::FileComplaint {
            filer,
            draft,
            at,
            profile,
            intermediary,
        },
    )
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
    who: Filer,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = path_uuid("id", &path)?;
    let draft: AmendmentDraft = parse_json(&req, &body)?;
    let filer = acting_for(&state, &who, id).await?;
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
    who: Filer,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = path_uuid("id", &path)?;
    let filer = acting_for(&state, &who, id).await?;
    let draft: WithdrawalDraft = if body.iter().all(u8::is_ascii_whitespace) {
        WithdrawalDraft::default()
    } else {
        parse_json(&req, &body)?
    };
    let command = move |at| SubmissionCommand::Withdraw {
        filer,
        reason: draft.reason.clone(),
        at,
    };
    let who = Caller(who.principal);
    change(state, req, who, body, id, command, StatusCode::OK).await
}
