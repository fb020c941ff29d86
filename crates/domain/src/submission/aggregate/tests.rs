//! Business rules as given(events) / when(command) / then(events or error).
//!
//! A test file (about 640 lines): one case per rule of the aggregate, in the order of the
//! rules in `aggregate.rs`, so a missing case shows as a gap.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::submission::report::{ComplaintDraft, CostsDraft, Timing, TimingDraft};
use crate::{Category, Channel, Outcome, ProcedureCatalogue};

type Framework = TestFramework<Submission>;

fn services() -> SubmissionServices {
    SubmissionServices {
        procedures: Arc::new(ProcedureCatalogue::seed().clone()),
        amendment_window_days: 90,
    }
}

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 3, 0, 0)
        .single()
        .unwrap_or_default()
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN)
}

const ALICE: FilerId = FilerId(Uuid::from_u128(1));
const BOB: FilerId = FilerId(Uuid::from_u128(2));

fn timing_draft() -> TimingDraft {
    TimingDraft {
        procedure_code: "1.001612".into(),
        province_code: "79".into(),
        submitted_on: day(2025, 9, 2),
        completed_on: Some(day(2025, 9, 10)),
        outcome: Some(Outcome::Granted),
        channel: Channel::Online,
        costs: CostsDraft {
            official_fees: Some(50_000),
            unofficial_payments: None,
            external_services: Some(1_500_000),
        },
        staff_hours: Some(6.5),
        visits: Some(1),
    }
}

/// The event a valid `timing_draft()` filed on 2025-10-01 produces.
fn timing_reported() -> SubmissionEvent {
    let timing = timing_draft()
        .parse(&services().context(at(2025, 10, 1)))
        .unwrap_or_else(|v| panic!("{v}"));
    SubmissionEvent::TimingReported {
        filer: ALICE,
        profile: Some(FilerProfile::default()),
        intermediary: None,
        timing,
        filed_at: at(2025, 10, 1),
    }
}

fn timing_of(event: &SubmissionEvent) -> Timing {
    match event {
        SubmissionEvent::TimingReported { timing, .. } => timing.clone(),
        _ => panic!("not a timing"),
    }
}

fn complaint_draft() -> ComplaintDraft {
    ComplaintDraft {
        procedure_code: "1.009972".into(),
        province_code: "01".into(),
        experienced_on: day(2024, 5, 6),
        categories: vec![Category::Delay, Category::InformalPaymentRequested],
        narrative: "  Asked for an extra stamp.  ".into(),
        costs: CostsDraft::default(),
        staff_hours: None,
        visits: Some(4),
    }
}

fn violations(result: Result<Vec<SubmissionEvent>, SubmissionError>) -> Vec<(String, String)> {
    match result {
        Err(SubmissionError::Invalid(v)) => v.0.into_iter().map(|f| (f.pointer, f.rule)).collect(),
        other => panic!("expected violations, got {other:?}"),
    }
}

#[test]
fn a_valid_timing_is_reported_with_its_vn34_province() {
    let expected = timing_reported();
    let timing = timing_of(&expected);
    assert_eq!(timing.province.geography, crate::Geography::Vn34);
    assert_eq!(
        timing.costs.external_services.map(crate::Vnd::get),
        Some(1_500_000)
    );
    Framework::with(services())
        .given_no_previous_events()
        .when(SubmissionCommand::ReportTiming {
            filer: ALICE,
            profile: FilerProfile::default(),
            intermediary: None,
            draft: timing_draft(),
            at: at(2025, 10, 1),
        })
        .then_expect_events(vec![expected]);
}

#[test]
fn a_complaint_before_the_merger_is_recorded_on_vn63_with_trimmed_narrative() {
    let result = Framework::with(services())
        .given_no_previous_events()
        .when(SubmissionCommand::FileComplaint {
            filer: BOB,
            profile: FilerProfile::default(),
            intermediary: None,
            draft: complaint_draft(),
            at: at(2025, 10, 1),
        })
        .inspect_result();
    let events = result.unwrap_or_else(|e| panic!("{e}"));
    let [SubmissionEvent::ComplaintFiled {
        complaint, filer, ..
    }] = events.as_slice()
    else {
        panic!("expected one ComplaintFiled, got {events:?}");
    };
    assert_eq!(*filer, BOB);
    assert_eq!(complaint.province.geography, crate::Geography::Vn63);
    assert_eq!(complaint.narrative.as_str(), "Asked for an extra stamp.");
    assert_eq!(
        complaint.categories,
        vec![Category::Delay, Category::InformalPaymentRequested]
    );
}

#[test]
fn a_submission_id_is_used_once() {
    Framework::with(services())
        .given(vec![timing_reported()])
        .when(SubmissionCommand::ReportTiming {
            filer: ALICE,
            profile: FilerProfile::default(),
            intermediary: None,
            draft: timing_draft(),
            at: at(2025, 10, 1),
        })
        .then_expect_error(SubmissionError::AlreadyExists);
}

#[test]
fn every_broken_rule_of_a_timing_is_reported_at_once() {
    let mut draft = timing_draft();
    draft.procedure_code = "9.999999".into();
    draft.submitted_on = day(2025, 9, 20);
    draft.completed_on = Some(day(2025, 9, 19));
    draft.costs.unofficial_payments = Some(-5);
    draft.costs.official_fees = Some(1_000_000_000_001);
    draft.staff_hours = Some(10_001.0);
    draft.visits = Some(1_001);
    let result = Framework::with(services())
        .given_no_previous_events()
        .when(SubmissionCommand::ReportTiming {
            filer: ALICE,
            profile: FilerProfile::default(),
            intermediary: None,
            draft,
            at: at(2025, 10, 1),
        })
        .inspect_result();
    let got = violations(result);
    let expected: Vec<(String, String)> = [
        ("/procedure_code", "unknown_procedure"),
        ("/completed_on", "not_before_submitted_on"),
        ("/costs/official_fees", "range"),
        ("/costs/unofficial_payments", "range"),
        ("/staff_hours", "range"),
        ("/visits", "range"),
    ]
    .iter()
    .map(|(p, r)| (p.to_string(), r.to_string()))
    .collect();
    assert_eq!(got, expected);
}

#[test]
fn dates_may_not_be_in_the_future_in_vietnam_time() {
    // 2025-10-01 20:00 UTC is already 2025-10-02 in Vietnam.
    let late_evening = Utc
        .with_ymd_and_hms(2025, 10, 1, 20, 0, 0)
        .single()
        .unwrap_or_default();
    let mut draft = timing_draft();
    draft.completed_on = Some(day(2025, 10, 2));
    let ok = Framework::with(services())
        .given_no_previous_events()
        .when(SubmissionCommand::ReportTiming {
            filer: ALICE,
            profile: FilerProfile::default(),
            intermediary: None,
            draft: draft.clone(),
            at: late_evening,
        })
        .inspect_result();
    assert!(ok.is_ok(), "{ok:?}");
    draft.completed_on = Some(day(2025, 10, 3));
    let result = Framework::with(services())
        .given_no_previous_events()
        .when(SubmissionCommand::ReportTiming {
            filer: ALICE,
            profile: FilerProfile::default(),
            intermediary: None,
            draft,
            at: late_evening,
        })
        .inspect_result();
    assert_eq!(
        violations(result),
        vec![("/completed_on".into(), "not_in_future".into())]
    );
}

#[test]
fn outcome_goes_with_completion() {
    let mut pending_with_outcome = timing_draft();
    pending_with_outcome.completed_on = None;
    let r = Framework::with(services())
        .given_no_previous_events()
        .when(SubmissionCommand::ReportTiming {
            filer: ALICE,
            profile: FilerProfile::default(),
            intermediary: None,
            draft: pending_with_outcome,
            at: at(2025, 10, 1),
        })
        .inspect_result();
    assert_eq!(
        violations(r),
        vec![("/outcome".into(), "requires_completed_on".into())]
    );

    let mut completed_without = timing_draft();
    completed_without.outcome = None;
    let r = Framework::with(services())
        .given_no_previous_events()
        .when(SubmissionCommand::ReportTiming {
            filer: ALICE,
            profile: FilerProfile::default(),
            intermediary: None,
            draft: completed_without,
            at: at(2025, 10, 1),
        })
        .inspect_result();
    assert_eq!(violations(r), vec![("/outcome".into(), "required".into())]);
}

#[test]
fn province_must_exist_on_the_map_of_the_submission_date() {
    let mut draft = timing_draft();
    // 27 (old Bắc Ninh) was merged away on 2025-07-01; this timing is from September 2025.
    draft.province_code = "27".into();
    let r = Framework::with(services())
        .given_no_previous_events()
        .when(SubmissionCommand::ReportTiming {
            filer: ALICE,
            profile: FilerProfile::default(),
            intermediary: None,
            draft,
            at: at(2025, 10, 1),
        })
        .inspect_result();
    assert_eq!(
        violations(r),
        vec![("/province_code".into(), "province_not_in_force".into())]
    );
}

#[test]
fn complaint_rules() {
    let mut draft = complaint_draft();
    draft.categories = vec![Category::Delay, Category::Delay];
    draft.narrative = "x".repeat(4001);
    draft.experienced_on = day(2014, 12, 31);
    let r = Framework::with(services())
        .given_no_previous_events()
        .when(SubmissionCommand::FileComplaint {
            filer: BOB,
            profile: FilerProfile::default(),
            intermediary: None,
            draft,
            at: at(2025, 10, 1),
        })
        .inspect_result();
    assert_eq!(
        violations(r),
        vec![
            ("/experienced_on".into(), "too_old".into()),
            ("/categories".into(), "unique".into()),
            ("/narrative".into(), "max_length".into()),
        ]
    );
    let mut none = complaint_draft();
    none.categories.clear();
    let r = Framework::with(services())
        .given_no_previous_events()
        .when(SubmissionCommand::FileComplaint {
            filer: BOB,
            profile: FilerProfile::default(),
            intermediary: None,
            draft: none,
            at: at(2025, 10, 1),
        })
        .inspect_result();
    assert_eq!(
        violations(r),
        vec![("/categories".into(), "required".into())]
    );
}

fn amend(changes: serde_json::Value, filer: FilerId, when: DateTime<Utc>) -> SubmissionCommand {
    SubmissionCommand::Amend {
        filer,
        draft: AmendmentDraft {
            reason: "corrected dates".into(),
            changes: changes.as_object().cloned().unwrap_or_default(),
        },
        at: when,
    }
}

#[test]
fn the_filer_amends_and_the_event_carries_the_whole_new_report() {
    let mut expected = timing_of(&timing_reported());
    expected.completed_on = Some(day(2025, 9, 12));
    expected.visits = None;
    Framework::with(services())
        .given(vec![timing_reported()])
        .when(amend(
            json!({"completed_on": "2025-09-12", "visits": null}),
            ALICE,
            at(2025, 10, 5),
        ))
        .then_expect_events(vec![SubmissionEvent::SubmissionAmended {
            report: Report::Timing(expected),
            changed_fields: vec!["completed_on".into(), "visits".into()],
            reason: "corrected dates".into(),
            amended_at: at(2025, 10, 5),
        }]);
}

#[test]
fn an_amendment_is_revalidated_as_a_whole() {
    let r = Framework::with(services())
        .given(vec![timing_reported()])
        .when(amend(
            json!({"submitted_on": "2025-09-30"}),
            ALICE,
            at(2025, 10, 5),
        ))
        .inspect_result();
    assert_eq!(
        violations(r),
        vec![("/completed_on".into(), "not_before_submitted_on".into())]
    );
    let r = Framework::with(services())
        .given(vec![timing_reported()])
        .when(amend(
            json!({"narrative": "timings have none"}),
            ALICE,
            at(2025, 10, 5),
        ))
        .inspect_result();
    assert_eq!(
        violations(r),
        vec![("/changes/narrative".into(), "unknown_field".into())]
    );
    let r = Framework::with(services())
        .given(vec![timing_reported()])
        .when(amend(
            json!({"procedure_code": null}),
            ALICE,
            at(2025, 10, 5),
        ))
        .inspect_result();
    assert_eq!(
        violations(r),
        vec![("/changes/procedure_code".into(), "required".into())]
    );
    let r = Framework::with(services())
        .given(vec![timing_reported()])
        .when(amend(json!({"visits": "two"}), ALICE, at(2025, 10, 5)))
        .inspect_result();
    assert_eq!(
        violations(r),
        vec![("/changes/visits".into(), "type".into())]
    );
}

#[test]
fn an_amendment_that_changes_nothing_is_refused() {
    let r = Framework::with(services())
        .given(vec![timing_reported()])
        .when(amend(json!({"visits": 1}), ALICE, at(2025, 10, 5)))
        .inspect_result();
    assert_eq!(violations(r), vec![("/changes".into(), "no_change".into())]);
}

#[test]
fn only_the_filer_amends_or_withdraws() {
    Framework::with(services())
        .given(vec![timing_reported()])
        .when(amend(json!({"visits": 3}), BOB, at(2025, 10, 5)))
        .then_expect_error(SubmissionError::NotFiler);
    Framework::with(services())
        .given(vec![timing_reported()])
        .when(SubmissionCommand::Withdraw {
            filer: BOB,
            reason: None,
            at: at(2025, 10, 5),
        })
        .then_expect_error(SubmissionError::NotFiler);
}

#[test]
fn nothing_is_amended_after_withdrawal() {
    let withdrawn = SubmissionEvent::SubmissionWithdrawn {
        reason: Some("wrong province".into()),
        withdrawn_at: at(2025, 10, 2),
    };
    Framework::with(services())
        .given(vec![timing_reported()])
        .when(SubmissionCommand::Withdraw {
            filer: ALICE,
            reason: Some("  wrong province ".into()),
            at: at(2025, 10, 2),
        })
        .then_expect_events(vec![withdrawn.clone()]);
    Framework::with(services())
        .given(vec![timing_reported(), withdrawn.clone()])
        .when(amend(json!({"visits": 3}), ALICE, at(2025, 10, 5)))
        .then_expect_error(SubmissionError::Closed {
            status: Status::Withdrawn,
            action: "amended",
        });
    Framework::with(services())
        .given(vec![timing_reported(), withdrawn])
        .when(SubmissionCommand::Withdraw {
            filer: ALICE,
            reason: None,
            at: at(2025, 10, 5),
        })
        .then_expect_error(SubmissionError::Closed {
            status: Status::Withdrawn,
            action: "withdrawn",
        });
}

#[test]
fn the_amendment_window_closes() {
    // Filed 2025-10-01 03:00 UTC; 90 days later is 2025-12-30 03:00 UTC.
    let ok = Framework::with(services())
        .given(vec![timing_reported()])
        .when(amend(json!({"visits": 3}), ALICE, at(2025, 12, 30)))
        .inspect_result();
    assert!(ok.is_ok(), "{ok:?}");
    Framework::with(services())
        .given(vec![timing_reported()])
        .when(amend(json!({"visits": 3}), ALICE, at(2025, 12, 31)))
        .then_expect_error(SubmissionError::WindowClosed { days: 90 });
}

#[test]
fn commands_on_a_missing_submission_are_not_found() {
    Framework::with(services())
        .given_no_previous_events()
        .when(amend(json!({"visits": 3}), ALICE, at(2025, 10, 5)))
        .then_expect_error(SubmissionError::NotFound);
}

#[test]
fn reasons_are_required_for_amendments_and_bounded() {
    let mut cmd = amend(json!({"visits": 3}), ALICE, at(2025, 10, 5));
    if let SubmissionCommand::Amend { draft, .. } = &mut cmd {
        draft.reason = "   ".into();
    }
    let r = Framework::with(services())
        .given(vec![timing_reported()])
        .when(cmd)
        .inspect_result();
    assert_eq!(violations(r), vec![("/reason".into(), "required".into())]);
    let r = Framework::with(services())
        .given(vec![timing_reported()])
        .when(SubmissionCommand::Withdraw {
            filer: ALICE,
            reason: Some("x".repeat(501)),
            at: at(2025, 10, 5),
        })
        .inspect_result();
    assert_eq!(violations(r), vec![("/reason".into(), "max_length".into())]);
}

#[test]
fn events_round_trip_through_json_with_a_version() {
    let event = timing_reported();
    assert_eq!(event.event_type(), "TimingReported");
    assert_eq!(event.event_version(), "1.1");
    assert_eq!(verified().event_version(), "1.0");
    let json = serde_json::to_value(&event).unwrap_or_default();
    let back: SubmissionEvent =
        serde_json::from_value(json.clone()).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(back, event);
    assert_eq!(
        json["TimingReported"]["timing"]["province"]["geography"],
        "vn-34"
    );
    // An undeclared profile is recorded as such (known to be undeclared)...
    assert_eq!(
        json["TimingReported"]["profile"],
        json!({"size_class": null, "sector_section": null, "woman_owned": null,
               "ethnic_minority_owned": null})
    );
}

#[test]
fn filings_of_version_1_0_read_with_an_unknown_profile() {
    // ...while a 1.0 event, from before profiles were recorded, has none: unknown.
    let mut json = serde_json::to_value(timing_reported()).unwrap_or_default();
    let fields = json["TimingReported"].as_object_mut().unwrap();
    fields.remove("profile");
    fields.remove("intermediary");
    let old: SubmissionEvent = serde_json::from_value(json).unwrap();
    let SubmissionEvent::TimingReported {
        profile,
        intermediary,
        ..
    } = old
    else {
        panic!("not a timing");
    };
    assert_eq!((profile, intermediary), (None, None));
}

#[test]
fn a_filing_records_the_profile_and_the_intermediary() {
    let profile = FilerProfile {
        size_class: Some(crate::filer::SizeClass::Micro),
        woman_owned: Some(true),
        ..Default::default()
    };
    let events = Framework::with(services())
        .given_no_previous_events()
        .when(SubmissionCommand::ReportTiming {
            filer: ALICE,
            draft: timing_draft(),
            at: at(2025, 10, 1),
            profile,
            intermediary: Some(BOB),
        })
        .inspect_result()
        .unwrap();
    let [SubmissionEvent::TimingReported {
        profile: recorded,
        intermediary,
        filer,
        ..
    }] = events.as_slice()
    else {
        panic!("{events:?}");
    };
    assert_eq!(
        (*recorded, *intermediary, *filer),
        (Some(profile), Some(BOB), ALICE)
    );
}

fn verified() -> SubmissionEvent {
    SubmissionEvent::SubmissionVerified {
        verified_at: at(2025, 10, 3),
    }
}

fn reject(reason: &str) -> SubmissionCommand {
    SubmissionCommand::Reject {
        reason: reason.into(),
        at: at(2025, 10, 4),
    }
}

#[test]
fn officers_verify_a_received_submission_once() {
    Framework::with(services())
        .given(vec![timing_reported()])
        .when(SubmissionCommand::Verify {
            at: at(2025, 10, 3),
        })
        .then_expect_events(vec![verified()]);
    Framework::with(services())
        .given(vec![timing_reported(), verified()])
        .when(SubmissionCommand::Verify {
            at: at(2025, 10, 4),
        })
        .then_expect_error(SubmissionError::AlreadyInStatus(Status::Verified));
    Framework::with(services())
        .given_no_previous_events()
        .when(SubmissionCommand::Verify {
            at: at(2025, 10, 4),
        })
        .then_expect_error(SubmissionError::NotFound);
}

#[test]
fn a_rejection_needs_a_reason_and_closes_the_submission() {
    let rejected = SubmissionEvent::SubmissionRejected {
        reason: "Duplicate".into(),
        rejected_at: at(2025, 10, 4),
    };
    // A verified submission may still be rejected (new evidence); the reason is trimmed.
    Framework::with(services())
        .given(vec![timing_reported(), verified()])
        .when(reject("  Duplicate "))
        .then_expect_events(vec![rejected.clone()]);
    let r = Framework::with(services())
        .given(vec![timing_reported()])
        .when(reject(" "))
        .inspect_result();
    assert_eq!(violations(r), vec![("/reason".into(), "required".into())]);
    let after = || Framework::with(services()).given(vec![timing_reported(), rejected.clone()]);
    after()
        .when(reject("again"))
        .then_expect_error(SubmissionError::AlreadyInStatus(Status::Rejected));
    after()
        .when(SubmissionCommand::Verify {
            at: at(2025, 10, 5),
        })
        .then_expect_error(SubmissionError::Closed {
            status: Status::Rejected,
            action: "verified",
        });
    after()
        .when(amend(json!({"visits": 3}), ALICE, at(2025, 10, 5)))
        .then_expect_error(SubmissionError::Closed {
            status: Status::Rejected,
            action: "amended",
        });
    // A withdrawn submission is out of the indices already: nothing to reject.
    Framework::with(services())
        .given(vec![
            timing_reported(),
            SubmissionEvent::SubmissionWithdrawn {
                reason: None,
                withdrawn_at: at(2025, 10, 2),
            },
        ])
        .when(reject("spam"))
        .then_expect_error(SubmissionError::Closed {
            status: Status::Withdrawn,
            action: "rejected",
        });
}

#[test]
fn amending_a_verified_submission_sends_it_back_to_moderation() {
    let mut state = Submission::default();
    state.apply(timing_reported());
    state.apply(verified());
    assert_eq!(state.status, Status::Verified);
    let mut report = timing_of(&timing_reported());
    report.visits = Some(crate::Visits::parse("/visits", 3).unwrap());
    state.apply(SubmissionEvent::SubmissionAmended {
        report: Report::Timing(report),
        changed_fields: vec!["visits".into()],
        reason: "typo".into(),
        amended_at: at(2025, 10, 5),
    });
    assert_eq!(state.status, Status::Received);
}

#[test]
fn responses_are_validated_and_kept_in_order() {
    let draft = |status| crate::submission::ResponseDraft {
        agency: " Sở KH&ĐT ".into(),
        text: "Looking into it".into(),
        status,
    };
    let posted = SubmissionEvent::ResponsePosted {
        response: crate::submission::GovernmentResponse {
            agency: "Sở KH&ĐT".into(),
            text: "Looking into it".into(),
            status: crate::submission::ResponseStatus::InProgress,
        },
        posted_at: at(2025, 10, 6),
    };
    Framework::with(services())
        .given(vec![timing_reported()])
        .when(SubmissionCommand::Respond {
            draft: draft(crate::submission::ResponseStatus::InProgress),
            at: at(2025, 10, 6),
        })
        .then_expect_events(vec![posted.clone()]);
    Framework::with(services())
        .given_no_previous_events()
        .when(SubmissionCommand::Respond {
            draft: draft(crate::submission::ResponseStatus::Resolved),
            at: at(2025, 10, 6),
        })
        .then_expect_error(SubmissionError::NotFound);
    let mut state = Submission::default();
    state.apply(timing_reported());
    state.apply(posted);
    assert_eq!(state.responses.len(), 1);
    assert_eq!(
        state.status,
        Status::Received,
        "a response is not a verdict"
    );
}
