//! Amendments and withdrawal: new events, never updates in place.

use redtape_domain::Role;
use serde_json::json;

use crate::helpers::{timing, TestApp};

async fn file(app: &TestApp, token: &str) -> String {
    let reply = app.post("/v1/timings", token, &timing()).await;
    reply.expect(201);
    reply.json()["id"].as_str().unwrap_or_default().to_string()
}

async fn an_amendment_is_a_new_event_and_updates_the_observation(app: &TestApp) {
    let token = app.token(Role::Business).await;
    let id = file(app, &token).await;
    let amendment = json!({
        "reason": "The result arrived two days later.",
        "changes": {"completed_on": "2025-09-12", "visits": null, "costs": {"unofficial_payments": 300000}}
    });
    let reply = app
        .post(
            &format!("/v1/submissions/{id}/amendments"),
            &token,
            &amendment,
        )
        .await;
    reply.expect(200);
    let view = reply.json();
    assert_eq!(view["amendments"], 1);
    assert_eq!(view["version"], 2);
    assert_eq!(view["timing"]["completed_on"], "2025-09-12");
    assert_eq!(view["timing"]["visits"], serde_json::Value::Null);
    // A merge patch: the other cost fields keep their values.
    assert_eq!(
        view["timing"]["costs"],
        json!({"official_fees": 50000, "unofficial_payments": 300000, "external_services": 1500000})
    );
    let history = view["history"].as_array().cloned().unwrap_or_default();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1]["event"], "SubmissionAmended");
    assert_eq!(
        history[1]["changed_fields"],
        json!(["completed_on", "costs", "visits"])
    );
    assert_eq!(history[1]["reason"], "The result arrived two days later.");

    let row = app
        .observation(&id)
        .await
        .unwrap_or_else(|| panic!("no observation"));
    assert_eq!(
        row.completed_on.map(|d| d.to_string()).as_deref(),
        Some("2025-09-12")
    );
    assert_eq!(row.visits, None);
    assert_eq!(row.unofficial_payments, Some(300_000));
    assert_eq!(row.amendments, 1);
    assert_eq!(row.last_sequence, 2);

    // The original event is still there, untouched, in the log.
    let read = app
        .get(&format!("/v1/submissions/{id}"), Some(&token))
        .await
        .json();
    assert_eq!(read["history"][0]["event"], "TimingReported");
}

async fn an_invalid_amendment_changes_nothing(app: &TestApp) {
    let token = app.token(Role::Business).await;
    let id = file(app, &token).await;
    let bad = json!({"reason": "typo", "changes": {"completed_on": "2025-08-01"}});
    let reply = app
        .post(&format!("/v1/submissions/{id}/amendments"), &token, &bad)
        .await;
    assert_eq!(
        reply.violations(),
        vec![(
            "/completed_on".to_string(),
            "not_before_submitted_on".to_string()
        )]
    );
    let no_reason = json!({"reason": " ", "changes": {"visits": 2}});
    let reply = app
        .post(
            &format!("/v1/submissions/{id}/amendments"),
            &token,
            &no_reason,
        )
        .await;
    assert_eq!(
        reply.violations(),
        vec![("/reason".to_string(), "required".to_string())]
    );
    let same = json!({"reason": "no-op", "changes": {"visits": 1}});
    let reply = app
        .post(&format!("/v1/submissions/{id}/amendments"), &token, &same)
        .await;
    assert_eq!(
        reply.violations(),
        vec![("/changes".to_string(), "no_change".to_string())]
    );
    let view = app
        .get(&format!("/v1/submissions/{id}"), Some(&token))
        .await
        .json();
    assert_eq!(view["version"], 1);
}

async fn a_withdrawn_submission_takes_no_more_changes(app: &TestApp) {
    let token = app.token(Role::Business).await;
    let id = file(app, &token).await;
    let reply = app
        .post(
            &format!("/v1/submissions/{id}/withdrawal"),
            &token,
            &json!({"reason": "wrong province"}),
        )
        .await;
    reply.expect(200);
    assert_eq!(reply.json()["status"], "withdrawn");
    assert_eq!(reply.json()["history"][1]["reason"], "wrong province");
    let row = app
        .observation(&id)
        .await
        .unwrap_or_else(|| panic!("no observation"));
    assert_eq!(row.status, "withdrawn");

    let amend = json!({"reason": "late", "changes": {"visits": 2}});
    let reply = app
        .post(&format!("/v1/submissions/{id}/amendments"), &token, &amend)
        .await;
    let p = reply.problem(409);
    assert_eq!(p["type"], "/problems/submission-closed");
    let again = app
        .request(
            "POST",
            &format!("/v1/submissions/{id}/withdrawal"),
            Some(&token),
            &[],
            None,
        )
        .await;
    assert_eq!(again.problem(409)["type"], "/problems/submission-closed");
}

async fn a_withdrawal_needs_no_body(app: &TestApp) {
    let token = app.token(Role::Business).await;
    let id = file(app, &token).await;
    let reply = app
        .request(
            "POST",
            &format!("/v1/submissions/{id}/withdrawal"),
            Some(&token),
            &[],
            None,
        )
        .await;
    reply.expect(200);
    assert_eq!(reply.json()["status"], "withdrawn");
}

/// Concurrent amendments of one submission: each either lands as its own event or gets a
/// 409 to retry; none is lost or applied twice (optimistic concurrency on the sequence).
async fn concurrent_amendments_are_serialized_not_lost(app: &TestApp) {
    let token = app.token(Role::Business).await;
    let id = file(app, &token).await;
    let path = format!("/v1/submissions/{id}/amendments");
    let bodies: Vec<serde_json::Value> = (2..14)
        .map(|visits| json!({"reason": format!("visits were {visits}"), "changes": {"visits": visits}}))
        .collect();
    let replies =
        futures::future::join_all(bodies.iter().map(|b| app.post(&path, &token, b))).await;
    let mut landed = 0;
    for r in &replies {
        match r.status {
            200 => landed += 1,
            409 => assert_eq!(r.problem(409)["type"], "/problems/concurrent-change"),
            other => panic!("unexpected {other}: {}", String::from_utf8_lossy(&r.body)),
        }
    }
    assert!(landed >= 1);
    let view = app
        .get(&format!("/v1/submissions/{id}"), Some(&token))
        .await
        .json();
    assert_eq!(view["version"], 1 + landed);
    assert_eq!(view["amendments"], landed);
    let history = view["history"].as_array().cloned().unwrap_or_default();
    let sequences: Vec<i64> = history
        .iter()
        .filter_map(|h| h["sequence"].as_i64())
        .collect();
    assert_eq!(sequences, (1..=1 + landed).collect::<Vec<i64>>());
    let row = app
        .observation(&id)
        .await
        .unwrap_or_else(|| panic!("no observation"));
    assert_eq!(i64::from(row.amendments), landed);
    assert_eq!(row.last_sequence, 1 + landed);
    // The row shows the value of the last amendment that landed.
    let last_reason = history
        .last()
        .and_then(|h| h["reason"].as_str())
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        last_reason,
        format!("visits were {}", row.visits.unwrap_or(-1))
    );
}

crate::on_both_stores!(
    concurrent_amendments_are_serialized_not_lost,
    an_amendment_is_a_new_event_and_updates_the_observation,
    an_invalid_amendment_changes_nothing,
    a_withdrawn_submission_takes_no_more_changes,
    a_withdrawal_needs_no_body,
);
