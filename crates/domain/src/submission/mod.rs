//! The `Submission` aggregate: one business's timing or complaint, and everything that
//! happens to it afterwards, as immutable events.
//!
//! - [`report`]: what a business reports (drafts as received, reports as validated).
//! - [`aggregate`]: the cqrs-es aggregate, commands, events and the rules between them.
//! - [`moderation`]: what officers send: rejections and government responses.

pub mod aggregate;
pub mod moderation;
pub mod report;

pub use aggregate::{
    FilerId, Status, Submission, SubmissionCommand, SubmissionError, SubmissionEvent,
    SubmissionServices, EVENT_VERSION,
};
pub use moderation::{GovernmentResponse, RejectionDraft, ResponseDraft, ResponseStatus};
pub use report::{
    AmendmentDraft, Complaint, ComplaintDraft, CostsDraft, Kind, Report, Timing, TimingDraft,
    WithdrawalDraft,
};
