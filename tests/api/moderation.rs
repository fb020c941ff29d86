//! The reform-office workflow: moderation queue, verification, rejection, government
//! responses, response statistics and the audit trail.

use redtape_domain::Role;
use serde_json::{json, Value};

use crate::helpers::{complaint, timing, TestApp};

const CELL: &str = "/v1/indices?year=2025&procedure=1.001612&province=79";

async fn cell_n(app: &TestApp) -> i64 {
    app.project().await;
    let page = app.get(CELL, None).await.expect(200);
    page["items"][0]["n"].as_i64().unwrap_or(0)
}

async fn rejected_submissions_leave_the_indices_and_verified_ones_stay(app: &TestApp) {
    let business = app.token(Role::Business).await;
    let officer = app.token(Role::Officer).await;
    let a = app.file("/v1/timings", &business, &timing()).await;
    let b = app.file("/v1/timings", &business, &timing()).await;
    assert_eq!(cell_n(app).await, 2);

    let verified = app
        .post(
            &format!("/v1/submissions/{a}/verification"),
            &officer,
            &json!({}),
        )
        .await
        .expect(200);
    assert_eq!(verified["status"], "verified");
    assert_eq!(verified["history"][1]["event"], "SubmissionVerified");
    assert_eq!(app.observation(&a).await.unwrap().status, "verified");
    assert_eq!(cell_n(app).await, 2, "a verified submission still counts");
    let cell = app.get(CELL, None).await.expect(200);
    assert_eq!(
        cell["items"][0]["n_verified"], 1,
        "and is marked as verified"
    );

    // A rejection needs a reason.
    let path = format!("/v1/submissions/{b}/rejection");
    let none = app.post(&path, &officer, &json!({"reason": "  "})).await;
    assert_eq!(
        none.violations(),
        vec![("/reason".into(), "required".into())]
    );
    let missing = app.post(&path, &officer, &json!({})).await;
    assert_eq!(
        missing.violations(),
        vec![("/reason".into(), "required".into())]
    );

    let rejected = app
        .post(
            &path,
            &officer,
            &json!({"reason": "Duplicate of another filing"}),
        )
        .await
        .expect(200);
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(
        cell_n(app).await,
        1,
        "the rejected submission left the cell"
    );

    // The filer sees why, and can no longer amend it.
    let seen = app
        .get(&format!("/v1/submissions/{b}"), Some(&business))
        .await
        .expect(200);
    assert_eq!(seen["history"][1]["reason"], "Duplicate of another filing");
    let amend = json!({"reason": "please", "changes": {"visits": 2}});
    let refused = app
        .post(
            &format!("/v1/submissions/{b}/amendments"),
            &business,
            &amend,
        )
        .await
        .problem(409);
    assert_eq!(refused["type"], "/problems/submission-closed");
    // Moderating twice is a conflict, not a second event.
    let again = app.post(&path, &officer, &json!({"reason": "again"})).await;
    assert_eq!(again.problem(409)["type"], "/problems/already-moderated");

    // Amending the verified one sends it back to the queue.
    app.post(
        &format!("/v1/submissions/{a}/amendments"),
        &business,
        &amend,
    )
    .await
    .expect(200);
    assert_eq!(app.observation(&a).await.unwrap().status, "received");
    let cell = app.get(CELL, None).await.expect(200);
    assert_eq!(cell["items"][0]["n_verified"], 0);
}

async fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

async fn the_queue_pages_oldest_first_within_the_officers_provinces(app: &TestApp) {
    let business = app.token(Role::Business).await;
    let mut hcmc = Vec::new();
    for _ in 0..5 {
        hcmc.push(app.file("/v1/timings", &business, &timing()).await);
    }
    // A complaint in Hà Nội (code 01 on both maps) and one in Đà Nẵng (48).
    let hanoi = app.file("/v1/complaints", &business, &complaint()).await;
    let mut danang_body = complaint();
    danang_body["province_code"] = json!("48");
    let danang = app.file("/v1/complaints", &business, &danang_body).await;
    app.project().await;

    let admin = app.token(Role::Admin).await;
    let all = app
        .get("/v1/moderation/queue", Some(&admin))
        .await
        .expect(200);
    let mut expected = hcmc.clone();
    expected.extend([hanoi.clone(), danang.clone()]);
    assert_eq!(
        ids(&all).await,
        expected,
        "oldest first, everything for an admin"
    );
    assert!(all.get("next").is_none());
    assert_eq!(all["items"][5]["province_name"], "Hà Nội");
    assert_eq!(
        all["items"][0]["href"],
        format!("/v1/submissions/{}", hcmc[0])
    );

    // Pages of two, following `next`, visit every item once.
    let mut seen = Vec::new();
    let mut url = "/v1/moderation/queue?limit=2".to_string();
    loop {
        let page = app.get(&url, Some(&admin)).await.expect(200);
        seen.extend(ids(&page).await);
        match page["next"].as_str() {
            Some(next) => url = next.to_string(),
            None => break,
        }
    }
    assert_eq!(seen, expected);

    // An officer for Hồ Chí Minh City and Đà Nẵng sees those only; filters narrow further.
    let officer = app.officer_for(&["79", "48"]).await;
    let scoped = app
        .get("/v1/moderation/queue", Some(&officer))
        .await
        .expect(200);
    let mut mine = hcmc.clone();
    mine.push(danang.clone());
    assert_eq!(ids(&scoped).await, mine);
    let filtered = app
        .get(
            "/v1/moderation/queue?province=48&procedure=1.009972",
            Some(&officer),
        )
        .await
        .expect(200);
    assert_eq!(ids(&filtered).await, vec![danang.clone()]);
    // ... and cannot see, moderate or audit the Hà Nội one: it does not exist for them.
    for (method, path) in [
        ("GET", format!("/v1/submissions/{hanoi}")),
        ("GET", format!("/v1/submissions/{hanoi}/events")),
        ("POST", format!("/v1/submissions/{hanoi}/verification")),
    ] {
        let reply = match method {
            "GET" => app.get(&path, Some(&officer)).await,
            _ => app.post(&path, &officer, &json!({})).await,
        };
        reply.problem(404);
    }

    // Verified submissions leave the default (received) queue and appear under their status.
    app.post(
        &format!("/v1/submissions/{}/verification", hcmc[0]),
        &officer,
        &json!({}),
    )
    .await
    .expect(200);
    app.project().await;
    let received = app
        .get("/v1/moderation/queue", Some(&officer))
        .await
        .expect(200);
    assert_eq!(ids(&received).await, mine[1..].to_vec());
    let verified = app
        .get("/v1/moderation/queue?status=verified", Some(&officer))
        .await
        .expect(200);
    assert_eq!(ids(&verified).await, vec![hcmc[0].clone()]);

    // Bad parameters name themselves.
    app.expect_parameter_violations(
        "/v1/moderation/queue",
        Some(&officer),
        &[
            ("status=pending", "status", "one_of"),
            ("limit=0", "limit", "range"),
            ("limit=201", "limit", "range"),
            ("province=77", "province", "unknown_province"),
            ("cursor=zz", "cursor", "format"),
            ("cursor=6869", "cursor", "format"),
        ],
    )
    .await;
}

async fn responses_reach_the_filer_and_only_statistics_are_published(app: &TestApp) {
    let business = app.token(Role::Business).await;
    let officer = app.token(Role::Officer).await;
    let a = app.file("/v1/timings", &business, &timing()).await;
    let b = app.file("/v1/timings", &business, &timing()).await;
    let mut more = Vec::new();
    for _ in 0..3 {
        more.push(app.file("/v1/timings", &business, &timing()).await);
    }
    let agency = "Sở Tư pháp Thành phố Hồ Chí Minh";
    let respond = |id: &str, status: &str, text: &str| {
        (
            format!("/v1/submissions/{id}/responses"),
            json!({"agency": agency, "status": status, "text": text}),
        )
    };
    let (path, body) = respond(&a, "acknowledged", "SECRET-NARRATIVE-1 received");
    let posted = app.post(&path, &officer, &body).await;
    let view = posted.expect(201);
    assert_eq!(
        posted.header("location"),
        Some(format!("/v1/submissions/{a}"))
    );
    assert_eq!(view["responses"][0]["agency"], agency);
    assert_eq!(view["responses"][0]["status"], "acknowledged");
    let (path, body) = respond(&a, "resolved", "SECRET-NARRATIVE-2 fixed");
    app.post(&path, &officer, &body).await.expect(201);
    let (path, body) = respond(&b, "in_progress", "SECRET-NARRATIVE-3 looking");
    app.post(&path, &officer, &body).await.expect(201);

    // The filer reads both answers, oldest first.
    let seen = app
        .get(&format!("/v1/submissions/{a}"), Some(&business))
        .await
        .expect(200);
    let texts: Vec<&str> = seen["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        ["SECRET-NARRATIVE-1 received", "SECRET-NARRATIVE-2 fixed"]
    );

    // Invalid responses name the field and the rule.
    let bad = app
        .post(
            &format!("/v1/submissions/{a}/responses"),
            &officer,
            &json!({"agency": " ", "status": "done", "text": "x"}),
        )
        .await;
    assert_eq!(bad.violations(), vec![("/status".into(), "one_of".into())]);
    let bad = app
        .post(
            &format!("/v1/submissions/{a}/responses"),
            &officer,
            &json!({"agency": " ", "status": "resolved", "text": "x"}),
        )
        .await;
    assert_eq!(
        bad.violations(),
        vec![("/agency".into(), "required".into())]
    );

    // Below the disclosure threshold (k = 5 answered submissions): counts only.
    app.project().await;
    let few = app.get("/v1/responses", None).await.expect(200);
    assert_eq!(few["items"][0]["submissions"], 2);
    assert_eq!(few["items"][0]["suppressed"], true);
    assert_eq!(
        few["items"][0]["median_days_to_first_response"],
        Value::Null
    );
    for id in &more {
        let (path, body) = respond(id, "acknowledged", "SECRET-NARRATIVE-4");
        app.post(&path, &officer, &body).await.expect(201);
    }
    app.project().await;
    let stats = app.get("/v1/responses", None).await;
    let text = String::from_utf8_lossy(&stats.body).to_string();
    let stats = stats.expect(200);
    assert!(!text.contains("SECRET-NARRATIVE"), "{text}");
    assert!(!text.contains(&a) && !text.contains(&b), "{text}");
    let items = stats["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{stats}");
    let row = &items[0];
    assert_eq!(row["agency"], agency);
    assert_eq!(row["province_code"], "79");
    assert_eq!(
        (row["submissions"].as_i64(), row["responses"].as_i64()),
        (Some(5), Some(6))
    );
    assert_eq!(row["suppressed"], false);
    assert_eq!(
        row["latest_status"],
        json!({"acknowledged": 3, "in_progress": 1, "resolved": 1, "not_actionable": 0})
    );
    // Every first answer came within seconds of filing.
    assert_eq!(row["median_days_to_first_response"].as_f64(), Some(0.0));
    let none = app.get("/v1/responses?province=48", None).await.expect(200);
    assert_eq!(none["items"], json!([]));
    assert_eq!(
        app.get("/v1/responses?province=99", None)
            .await
            .violations(),
        vec![("province".into(), "unknown_province".into())]
    );
    // A NUL byte in the agency filter is refused, not sent to the database (a 500 on
    // PostgreSQL, found by schemathesis); blank is no filter.
    assert_eq!(
        app.get("/v1/responses?agency=S%E1%BB%9F%00X", None)
            .await
            .violations(),
        vec![("agency".into(), "control_characters".into())]
    );
    let blank = app
        .get("/v1/responses?agency=%20%20", None)
        .await
        .expect(200);
    assert_eq!(blank["items"].as_array().map(Vec::len), Some(1));
}

async fn the_audit_trail_names_every_actor_and_request(app: &TestApp) {
    let business = app.token(Role::Business).await;
    let officer = app.token(Role::Officer).await;
    let filed = app
        .post_with(
            "/v1/timings",
            &business,
            &timing(),
            &[("x-request-id", "req-file-1"), ("idempotency-key", "k-1")],
        )
        .await
        .expect(201);
    let id = filed["id"].as_str().unwrap().to_string();
    app.post_with(
        &format!("/v1/submissions/{id}/verification"),
        &officer,
        &json!({}),
        &[("x-request-id", "req-verify-1")],
    )
    .await
    .expect(200);
    let trail = app
        .get(&format!("/v1/submissions/{id}/events"), Some(&officer))
        .await
        .expect(200);
    let events = trail.as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["event"], "TimingReported");
    assert_eq!(events[0]["request_id"], "req-file-1");
    assert_eq!(events[0]["idempotency_key"], "k-1");
    assert!(events[0]["actor"].as_str().unwrap().starts_with("filer:"));
    assert_eq!(events[0]["data"]["TimingReported"]["timing"]["visits"], 1);
    assert_eq!(events[1]["event"], "SubmissionVerified");
    assert_eq!(events[1]["request_id"], "req-verify-1");
    assert!(events[1]["actor"].as_str().unwrap().starts_with("officer:"));
    // Not for the filer itself: the trail names officers' tokens.
    app.get(&format!("/v1/submissions/{id}/events"), Some(&business))
        .await
        .problem(403);
}

crate::on_both_stores!(
    rejected_submissions_leave_the_indices_and_verified_ones_stay,
    the_queue_pages_oldest_first_within_the_officers_provinces,
    responses_reach_the_filer_and_only_statistics_are_published,
    the_audit_trail_names_every_actor_and_request,
);
