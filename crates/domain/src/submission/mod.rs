//! The `Submission` aggregate: one business's timing or complaint, and everything that
//! happens to it afterwards, as immutable events.
//!
//! - [`report`]: what a business reports (drafts as received, reports as validated).
//! - [`aggregate`]: the cqrs-es aggregate, commands, events and the rules between them.

pub mod aggregate;
pub mod report;

pub use aggregate::{
    FilerId, Status, Submission, SubmissionCommand, SubmissionError, SubmissionEvent,
    SubmissionServices, EVENT_VERSION,
};
pub use report::{
    AmendmentDraft, Complaint, ComplaintDraft, CostsDraft, Kind, Report, Timing, TimingDraft,
    WithdrawalDraft,
};
