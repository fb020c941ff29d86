//! The `Submission` aggregate (cqrs-es).
//!
//! Rules enforced here, and nowhere else:
//! - a submission is filed once, as a timing or a complaint, by one filer;
//! - only that filer amends or withdraws it, within the amendment window after filing;
//! - a withdrawn or rejected submission takes no further amendments;
//! - an amendment must change something and leave a valid submission; amending a verified
//!   submission sends it back to `received`, because what was verified is no longer what it
//!   says;
//! - officers verify a received submission, reject a received or verified one (with a
//!   reason), and post responses to any filed submission. Who is an officer, and for which
//!   provinces, is decided before a command is built (`access`); the aggregate decides what
//!   the submission's state allows.
//!
//! Commands carry the instant they were received, so the rules never read a clock and the
//! given/when/then tests are deterministic.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::moderation::{GovernmentResponse, ResponseDraft};
use super::report::{
    merge_patch, AmendmentDraft, ComplaintDraft, ParseContext, ProcedureLookup, Report, TimingDraft,
};
use crate::filer::FilerProfile;
use crate::validation::Violations;

/// Version of every event payload schema defined here. A change to a payload's shape is a new
/// version (older payloads still read, through serde defaults or an upcaster), never an edit
/// of an old one.
pub const EVENT_VERSION: &str = "1.0";

/// Version of the filing events (`TimingReported`, `ComplaintFiled`): 1.1 records the filer's
/// profile and the intermediary.
pub const FILING_EVENT_VERSION: &str = "1.1";

/// Longest reason accepted for an amendment or withdrawal.
pub const MAX_REASON_CHARS: usize = 500;

/// A pseudonymous filer (a business account); never published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FilerId(pub Uuid);

impl std::fmt::Display for FilerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a submission stands. `Verified` and `Rejected` come with moderation (officers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Status {
    #[default]
    Received,
    Verified,
    Rejected,
    Withdrawn,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Received => "received",
            Status::Verified => "verified",
            Status::Rejected => "rejected",
            Status::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        [
            Status::Received,
            Status::Verified,
            Status::Rejected,
            Status::Withdrawn,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// The statuses whose observations count in the indices and the microdata (methodology
    /// §1): the one place that says so.
    pub const INCLUDED: [Status; 2] = [Status::Received, Status::Verified];

    /// Whether an observation with this status counts (see [`Status::INCLUDED`]).
    pub fn is_included(self) -> bool {
        Self::INCLUDED.contains(&self)
    }

    /// The status after the filer amends: a verification covered the old values only.
    pub fn after_amendment(self) -> Status {
        match self {
            Status::Verified => Status::Received,
            other => other,
        }
    }
}

/// Today's date in Vietnam (UTC+7 all year; no daylight saving).
pub fn vietnam_date(at: DateTime<Utc>) -> NaiveDate {
    (at + Duration::hours(7)).date_naive()
}

/// Cloneable so a caller can send it again after the store was unavailable (the demo loader).
#[derive(Clone)]
pub enum SubmissionCommand {
    ReportTiming {
        filer: FilerId,
        draft: TimingDraft,
        at: DateTime<Utc>,
        /// The filer's profile in force now, recorded with the filing.
        profile: FilerProfile,
        /// The intermediary filing on behalf of its member `filer`, if any.
        intermediary: Option<FilerId>,
    },
    FileComplaint {
        filer: FilerId,
        draft: ComplaintDraft,
        at: DateTime<Utc>,
        profile: FilerProfile,
        intermediary: Option<FilerId>,
    },
    Amend {
        filer: FilerId,
        draft: AmendmentDraft,
        at: DateTime<Utc>,
    },
    Withdraw {
        filer: FilerId,
        reason: Option<String>,
        at: DateTime<Utc>,
    },
    /// An officer confirms the submission is plausible and counts it as verified.
    Verify { at: DateTime<Utc> },
    /// An officer takes the submission out of every index, with a reason.
    Reject { reason: String, at: DateTime<Utc> },
    /// An officer answers the filer on behalf of an agency.
    Respond {
        draft: ResponseDraft,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SubmissionEvent {
    /// Version 1.1 added `profile` and `intermediary`.
    TimingReported {
        filer: FilerId,
        timing: super::Timing,
        filed_at: DateTime<Utc>,
        /// The filer's profile when it filed (METHODOLOGY.md §7); `None` in version 1.0
        /// events, read as unknown. Later profile changes never move it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        profile: Option<FilerProfile>,
        /// The intermediary that filed for its member `filer`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        intermediary: Option<FilerId>,
    },
    /// Version 1.1 added `profile` and `intermediary`, as for `TimingReported`.
    ComplaintFiled {
        filer: FilerId,
        complaint: super::Complaint,
        filed_at: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        profile: Option<FilerProfile>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        intermediary: Option<FilerId>,
    },
    /// Carries the whole report after the change (so replay never re-runs a merge) and the
    /// names of the fields that changed (so the history reads as a diff).
    SubmissionAmended {
        report: Report,
        changed_fields: Vec<String>,
        reason: String,
        amended_at: DateTime<Utc>,
    },
    SubmissionWithdrawn {
        reason: Option<String>,
        withdrawn_at: DateTime<Utc>,
    },
    SubmissionVerified {
        verified_at: DateTime<Utc>,
    },
    SubmissionRejected {
        reason: String,
        rejected_at: DateTime<Utc>,
    },
    ResponsePosted {
        response: GovernmentResponse,
        posted_at: DateTime<Utc>,
    },
}

impl SubmissionEvent {
    pub fn name(&self) -> &'static str {
        match self {
            SubmissionEvent::TimingReported { .. } => "TimingReported",
            SubmissionEvent::ComplaintFiled { .. } => "ComplaintFiled",
            SubmissionEvent::SubmissionAmended { .. } => "SubmissionAmended",
            SubmissionEvent::SubmissionWithdrawn { .. } => "SubmissionWithdrawn",
            SubmissionEvent::SubmissionVerified { .. } => "SubmissionVerified",
            SubmissionEvent::SubmissionRejected { .. } => "SubmissionRejected",
            SubmissionEvent::ResponsePosted { .. } => "ResponsePosted",
        }
    }

    /// When the event happened (the instant its command was received).
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            SubmissionEvent::TimingReported { filed_at, .. }
            | SubmissionEvent::ComplaintFiled { filed_at, .. } => *filed_at,
            SubmissionEvent::SubmissionAmended { amended_at, .. } => *amended_at,
            SubmissionEvent::SubmissionWithdrawn { withdrawn_at, .. } => *withdrawn_at,
            SubmissionEvent::SubmissionVerified { verified_at } => *verified_at,
            SubmissionEvent::SubmissionRejected { rejected_at, .. } => *rejected_at,
            SubmissionEvent::ResponsePosted { posted_at, .. } => *posted_at,
        }
    }
}

impl DomainEvent for SubmissionEvent {
    fn event_type(&self) -> String {
        self.name().to_string()
    }
    fn event_version(&self) -> String {
        match self {
            SubmissionEvent::TimingReported { .. } | SubmissionEvent::ComplaintFiled { .. } => {
                FILING_EVENT_VERSION
            }
            _ => EVENT_VERSION,
        }
        .to_string()
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SubmissionError {
    #[error("the submission is invalid: {0}")]
    Invalid(Violations),
    #[error("a submission with this id already exists")]
    AlreadyExists,
    #[error("no such submission")]
    NotFound,
    #[error("only the business that filed a submission may change it")]
    NotFiler,
    #[error("the submission is {}, so it can no longer be {action}", .status.as_str())]
    Closed {
        status: Status,
        action: &'static str,
    },
    #[error("the amendment window closed {days} days after filing")]
    WindowClosed { days: i64 },
    #[error("the submission is already {}", .0.as_str())]
    AlreadyInStatus(Status),
}

/// What the aggregate needs from outside: the catalogue in force and the configured window.
#[derive(Clone)]
pub struct SubmissionServices {
    pub procedures: Arc<dyn ProcedureLookup>,
    /// Days after filing during which the filer may amend or withdraw.
    pub amendment_window_days: i64,
}

impl SubmissionServices {
    pub const DEFAULT_WINDOW_DAYS: i64 = 90;

    fn context(&self, at: DateTime<Utc>) -> ParseContext<'_> {
        ParseContext {
            procedures: self.procedures.as_ref(),
            today: vietnam_date(at),
        }
    }
}

/// The state needed to decide commands (and to answer `GET /v1/submissions/{id}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    pub filer: Option<FilerId>,
    /// The intermediary that filed it for its member `filer`, if any.
    #[serde(default)]
    pub intermediary: Option<FilerId>,
    pub report: Option<Report>,
    pub status: Status,
    pub filed_at: Option<DateTime<Utc>>,
    pub amendments: u32,
    /// Government responses, oldest first.
    pub responses: Vec<(GovernmentResponse, DateTime<Utc>)>,
}

fn reason(
    pointer: &str,
    text: Option<String>,
    required: bool,
) -> Result<Option<String>, Violations> {
    let text = text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
    match text {
        None if required => Err(Violations::single(pointer, "required", "give a reason")),
        Some(t) if t.chars().count() > MAX_REASON_CHARS => Err(Violations::single(
            pointer,
            "max_length",
            format!("must be at most {MAX_REASON_CHARS} characters"),
        )),
        Some(t) if t.chars().any(crate::values::forbidden_control) => Err(Violations::single(
            pointer,
            "control_characters",
            crate::values::CONTROL_CHARACTERS,
        )),
        other => Ok(other),
    }
}

impl Submission {
    /// The status of a filed submission; `NotFound` if nothing was filed under this id.
    fn filed(&self) -> Result<Status, SubmissionError> {
        match self.report {
            Some(_) => Ok(self.status),
            None => Err(SubmissionError::NotFound),
        }
    }

    /// Checks that `filer` may still change this submission at `at`.
    fn check_change(
        &self,
        filer: FilerId,
        at: DateTime<Utc>,
        action: &'static str,
        services: &SubmissionServices,
    ) -> Result<&Report, SubmissionError> {
        let (Some(owner), Some(report), Some(filed_at)) = (self.filer, &self.report, self.filed_at)
        else {
            return Err(SubmissionError::NotFound);
        };
        if owner != filer {
            return Err(SubmissionError::NotFiler);
        }
        if matches!(self.status, Status::Withdrawn | Status::Rejected) {
            return Err(SubmissionError::Closed {
                status: self.status,
                action,
            });
        }
        let days = services.amendment_window_days;
        if at > filed_at + Duration::days(days) {
            return Err(SubmissionError::WindowClosed { days });
        }
        Ok(report)
    }
}

impl Aggregate for Submission {
    const TYPE: &'static str = "Submission";
    type Command = SubmissionCommand;
    type Event = SubmissionEvent;
    type Error = SubmissionError;
    type Services = SubmissionServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            SubmissionCommand::ReportTiming {
                filer,
                draft,
                at,
                profile,
                intermediary,
            } => {
                if self.report.is_some() {
                    return Err(SubmissionError::AlreadyExists);
                }
                let timing = draft
                    .parse(&services.context(at))
                    .map_err(SubmissionError::Invalid)?;
                SubmissionEvent::TimingReported {
                    filer,
                    timing,
                    filed_at: at,
                    profile: Some(profile),
                    intermediary,
                }
            }
            SubmissionCommand::FileComplaint {
                filer,
                draft,
                at,
                profile,
                intermediary,
            } => {
                if self.report.is_some() {
                    return Err(SubmissionError::AlreadyExists);
                }
                let complaint = draft
                    .parse(&services.context(at))
                    .map_err(SubmissionError::Invalid)?;
                SubmissionEvent::ComplaintFiled {
                    filer,
                    complaint,
                    filed_at: at,
                    profile: Some(profile),
                    intermediary,
                }
            }
            SubmissionCommand::Amend { filer, draft, at } => {
                let current = self.check_change(filer, at, "amended", services)?;
                let why = reason("/reason", Some(draft.reason), true)
                    .map_err(SubmissionError::Invalid)?
                    .unwrap_or_default();
                let before = current.to_draft_json();
                let mut after = before.clone();
                merge_patch(
                    &mut after,
                    &serde_json::Value::Object(draft.changes.clone()),
                );
                let report = current
                    .parse_same_kind(after, &services.context(at))
                    .map_err(SubmissionError::Invalid)?;
                let new_json = report.to_draft_json();
                let mut changed_fields: Vec<String> = draft
                    .changes
                    .keys()
                    .filter(|k| before.get(k.as_str()) != new_json.get(k.as_str()))
                    .cloned()
                    .collect();
                changed_fields.sort();
                if changed_fields.is_empty() {
                    return Err(SubmissionError::Invalid(Violations::single(
                        "/changes",
                        "no_change",
                        "the amendment changes no field; name at least one field with a new value",
                    )));
                }
                SubmissionEvent::SubmissionAmended {
                    report,
                    changed_fields,
                    reason: why,
                    amended_at: at,
                }
            }
            SubmissionCommand::Withdraw {
                filer,
                reason: why,
                at,
            } => {
                self.check_change(filer, at, "withdrawn", services)?;
                let why = reason("/reason", why, false).map_err(SubmissionError::Invalid)?;
                SubmissionEvent::SubmissionWithdrawn {
                    reason: why,
                    withdrawn_at: at,
                }
            }
            SubmissionCommand::Verify { at } => match self.filed()? {
                Status::Received => SubmissionEvent::SubmissionVerified { verified_at: at },
                Status::Verified => return Err(SubmissionError::AlreadyInStatus(Status::Verified)),
                status => {
                    return Err(SubmissionError::Closed {
                        status,
                        action: "verified",
                    })
                }
            },
            SubmissionCommand::Reject { reason: why, at } => match self.filed()? {
                Status::Received | Status::Verified => SubmissionEvent::SubmissionRejected {
                    reason: reason("/reason", Some(why), true)
                        .map_err(SubmissionError::Invalid)?
                        .unwrap_or_default(),
                    rejected_at: at,
                },
                Status::Rejected => return Err(SubmissionError::AlreadyInStatus(Status::Rejected)),
                status => {
                    return Err(SubmissionError::Closed {
                        status,
                        action: "rejected",
                    })
                }
            },
            SubmissionCommand::Respond { draft, at } => {
                self.filed()?;
                SubmissionEvent::ResponsePosted {
                    response: draft.parse().map_err(SubmissionError::Invalid)?,
                    posted_at: at,
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            SubmissionEvent::TimingReported {
                filer,
                timing,
                filed_at,
                intermediary,
                ..
            } => {
                self.filer = Some(filer);
                self.intermediary = intermediary;
                self.report = Some(Report::Timing(timing));
                self.filed_at = Some(filed_at);
                self.status = Status::Received;
            }
            SubmissionEvent::ComplaintFiled {
                filer,
                complaint,
                filed_at,
                intermediary,
                ..
            } => {
                self.filer = Some(filer);
                self.intermediary = intermediary;
                self.report = Some(Report::Complaint(complaint));
                self.filed_at = Some(filed_at);
                self.status = Status::Received;
            }
            SubmissionEvent::SubmissionAmended { report, .. } => {
                self.report = Some(report);
                self.amendments += 1;
                self.status = self.status.after_amendment();
            }
            SubmissionEvent::SubmissionWithdrawn { .. } => self.status = Status::Withdrawn,
            SubmissionEvent::SubmissionVerified { .. } => self.status = Status::Verified,
            SubmissionEvent::SubmissionRejected { .. } => self.status = Status::Rejected,
            SubmissionEvent::ResponsePosted {
                response,
                posted_at,
            } => self.responses.push((response, posted_at)),
        }
    }
}

#[cfg(test)]
mod tests;
