//! A submission as business and officer handlers share it (neither's handler file): the view
//! both answer with, who may see a submission, event metadata, and executing a change with
//! idempotency and retries on a concurrent change.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use redtape_domain::submission::{
    ComplaintDraft, Kind, Report, ResponseStatus, Status, Submission, SubmissionCommand,
    SubmissionEvent, TimingDraft,
};
use redtape_domain::{Provinces, Role};
use redtape_store::commands::{HistoryEntry, SubmissionHistory};
use redtape_store::tokens::Principal;
use redtape_store::CommandError;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::extract::{Caller, RequestId};
use crate::idempotency::{self, Creates, Handled, Outcome};
use crate::problem::ApiError;
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

/// Whether `principal` may see this submission: its filer (also what an intermediary filed
/// for it); the intermediary that filed it; an officer whose provinces hold it; an admin. Everyone else is told it does not exist, so ids cannot be probed.
pub(crate) fn may_see(principal: &Principal, state: &Submission) -> bool {
    match principal.role {
        Role::Business => principal.filer.is_some() && state.filer == principal.filer,
        Role::Officer => province_vn34(state).is_some_and(|p| principal.scope.allows(&p)),
        Role::Admin => state.report.is_some(),
        // What it filed for its members, and nothing else (not what a member filed itself).
        Role::Intermediary => principal.filer.is_some() && state.intermediary == principal.filer,
    }
}

impl SubmissionView {
    pub(crate) fn of(id: Uuid, history: &SubmissionHistory) -> Result<SubmissionView, ApiError> {
        let state = &history.state;
        let (Some(report), Some(filed_at)) = (&state.report, state.filed_at) else {
            return Err(ApiError::internal(format!(
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

pub(crate) fn view_outcome(
    id: Uuid,
    history: &SubmissionHistory,
    status: StatusCode,
) -> Result<Outcome, ApiError> {
    let view = SubmissionView::of(id, history)?;
    Ok(Outcome {
        status,
        location: Some(format!("/v1/submissions/{id}")),
        body: serde_json::to_string(&view).map_err(ApiError::internal)?,
    })
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
