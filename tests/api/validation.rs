//! Every validation rule, over HTTP: bad input is a 4xx problem naming the field and the
//! rule, never a 500, and nothing is stored.

use redtape_domain::Role;
use serde_json::{json, Value};

use crate::helpers::{complaint, timing, TestApp};

/// A named request body and the (pointer, rule) pairs it must be refused with; no pairs
/// means it must be accepted.
type Case = (&'static str, Value, Vec<(&'static str, &'static str)>);

fn timing_cases() -> Vec<Case> {
    let with = |patch: Value| {
        let mut body = timing();
        redtape_domain::submission::report::merge_patch(&mut body, &patch);
        body
    };
    vec![
        (
            "unknown procedure",
            with(json!({"procedure_code": "9.999999"})),
            vec![("/procedure_code", "unknown_procedure")],
        ),
        (
            "malformed procedure",
            with(json!({"procedure_code": "1.00161"})),
            vec![("/procedure_code", "format")],
        ),
        (
            "province not on vn-34",
            with(json!({"province_code": "27"})),
            vec![("/province_code", "province_not_in_force")],
        ),
        (
            "no such province",
            with(json!({"province_code": "00"})),
            vec![("/province_code", "province_not_in_force")],
        ),
        (
            "vn-34 code before the merger",
            with(
                json!({"province_code": "80", "submitted_on": "2025-06-30", "completed_on": "2025-07-02"}),
            ),
            vec![],
        ),
        (
            "future submitted_on",
            with(json!({"submitted_on": "2099-01-01", "completed_on": null, "outcome": null})),
            vec![("/submitted_on", "not_in_future")],
        ),
        (
            "future completed_on",
            with(json!({"completed_on": "2099-01-01"})),
            vec![("/completed_on", "not_in_future")],
        ),
        (
            "completed before submitted",
            with(json!({"completed_on": "2025-09-01"})),
            vec![("/completed_on", "not_before_submitted_on")],
        ),
        (
            "too old",
            with(
                json!({"submitted_on": "2019-12-31", "completed_on": "2020-01-02", "province_code": "01"}),
            ),
            vec![("/submitted_on", "too_old")],
        ),
        (
            "completed without outcome",
            with(json!({"outcome": null})),
            vec![("/outcome", "required")],
        ),
        (
            "outcome while pending",
            with(json!({"completed_on": null})),
            vec![("/outcome", "requires_completed_on")],
        ),
        (
            "negative fee",
            with(json!({"costs": {"official_fees": -1}})),
            vec![("/costs/official_fees", "range")],
        ),
        (
            "fee over 10^12",
            with(json!({"costs": {"unofficial_payments": 1_000_000_000_001i64}})),
            vec![("/costs/unofficial_payments", "range")],
        ),
        (
            "fee at 10^12",
            with(json!({"costs": {"external_services": 1_000_000_000_000i64}})),
            vec![],
        ),
        (
            "fractional VND",
            with(json!({"costs": {"official_fees": 10.5}})),
            vec![("/costs/official_fees", "type")],
        ),
        (
            "staff hours over 10,000",
            with(json!({"staff_hours": 10000.01})),
            vec![("/staff_hours", "range")],
        ),
        (
            "negative staff hours",
            with(json!({"staff_hours": -1})),
            vec![("/staff_hours", "range")],
        ),
        (
            "visits over 1,000",
            with(json!({"visits": 1001})),
            vec![("/visits", "range")],
        ),
        (
            "visits as text",
            with(json!({"visits": "two"})),
            vec![("/visits", "type")],
        ),
        (
            "unknown channel",
            with(json!({"channel": "fax"})),
            vec![("/channel", "one_of")],
        ),
        (
            "unknown outcome",
            with(json!({"outcome": "maybe"})),
            vec![("/outcome", "one_of")],
        ),
        (
            "unknown field",
            with(json!({"bribe": 1})),
            vec![("/bribe", "unknown_field")],
        ),
        (
            "unknown cost field",
            with(json!({"costs": {"tips": 1}})),
            vec![("/costs/tips", "unknown_field")],
        ),
        (
            "missing procedure",
            with(json!({"procedure_code": null})),
            vec![("/procedure_code", "required")],
        ),
        (
            "bad date",
            with(json!({"submitted_on": "2025-02-30"})),
            vec![("/submitted_on", "type")],
        ),
        (
            "several at once",
            with(json!({"procedure_code": "9.999999", "visits": 5000, "staff_hours": -2})),
            vec![
                ("/procedure_code", "unknown_procedure"),
                ("/staff_hours", "range"),
                ("/visits", "range"),
            ],
        ),
    ]
}

fn complaint_cases() -> Vec<Case> {
    let with = |patch: Value| {
        let mut body = complaint();
        redtape_domain::submission::report::merge_patch(&mut body, &patch);
        body
    };
    vec![
        (
            "no categories",
            with(json!({"categories": []})),
            vec![("/categories", "required")],
        ),
        (
            "repeated category",
            with(json!({"categories": ["delay", "delay"]})),
            vec![("/categories", "unique")],
        ),
        (
            "unknown category",
            with(json!({"categories": ["bribery"]})),
            vec![("/categories/0", "one_of")],
        ),
        (
            "every category",
            with(
                json!({"categories": ["delay", "excessive_documents", "informal_payment_requested", "inconsistent_requirements", "online_service_failure", "fee_not_as_published", "other"]}),
            ),
            vec![],
        ),
        (
            "blank narrative",
            with(json!({"narrative": "   "})),
            vec![("/narrative", "required")],
        ),
        (
            "narrative of 4,001 characters",
            with(json!({"narrative": "ạ".repeat(4001)})),
            vec![("/narrative", "max_length")],
        ),
        (
            "narrative of 4,000 characters",
            with(json!({"narrative": "ạ".repeat(4000)})),
            vec![],
        ),
        (
            "narrative with a NUL",
            with(json!({"narrative": "a\u{0}b"})),
            vec![("/narrative", "control_characters")],
        ),
        (
            "future experience",
            with(json!({"experienced_on": "2099-05-06"})),
            vec![("/experienced_on", "not_in_future")],
        ),
        (
            "old province code after merger",
            with(json!({"experienced_on": "2025-07-01", "province_code": "27"})),
            vec![("/province_code", "province_not_in_force")],
        ),
    ]
}

async fn check(app: &TestApp, path: &str, cases: Vec<Case>) {
    let token = app.token(Role::Business).await;
    let mut accepted = 0;
    for (case, body, expected) in cases {
        let reply = app.post(path, &token, &body).await;
        if expected.is_empty() {
            assert_eq!(
                reply.status,
                201,
                "{case}: {}",
                String::from_utf8_lossy(&reply.body)
            );
            accepted += 1;
            continue;
        }
        let got = reply.violations();
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(p, r)| (p.to_string(), r.to_string()))
            .collect();
        assert_eq!(got, expected, "case {case:?}");
    }
    app.project().await;
    let stored = redtape_store::observations::all(&app.db)
        .await
        .map(|r| r.len())
        .unwrap_or(usize::MAX);
    assert_eq!(stored, accepted, "only the valid cases were stored");
}

async fn every_timing_rule_is_named(app: &TestApp) {
    check(app, "/v1/timings", timing_cases()).await;
}

async fn every_complaint_rule_is_named(app: &TestApp) {
    check(app, "/v1/complaints", complaint_cases()).await;
}

async fn hostile_bodies_get_4xx_problems(app: &TestApp) {
    let token = app.token(Role::Business).await;
    let send = |body: Vec<u8>, headers: &'static [(&'static str, &'static str)]| {
        let token = token.clone();
        async move {
            app.request("POST", "/v1/timings", Some(&token), headers, Some(body))
                .await
        }
    };
    const JSON: &[(&str, &str)] = &[("content-type", "application/json")];
    const TEXT: &[(&str, &str)] = &[("content-type", "text/plain")];
    const NONE: &[(&str, &str)] = &[];

    assert_eq!(
        send(b"{\"procedure_code\":".to_vec(), JSON)
            .await
            .problem(400)["type"],
        "/problems/malformed-json"
    );
    send(b"not json at all".to_vec(), JSON).await.problem(400);
    send(vec![0xff, 0xfe, 0x00], JSON).await.problem(400);
    send(b"".to_vec(), JSON).await.problem(400);
    assert_eq!(
        send(b"[]".to_vec(), JSON).await.problem(422)["errors"][0]["rule"],
        "type"
    );
    send(b"null".to_vec(), JSON).await.problem(422);
    send(b"\"a string\"".to_vec(), JSON).await.problem(422);
    send(b"{\"visits\": 1e400}".to_vec(), JSON)
        .await
        .problem(400);
    assert_eq!(
        send(timing().to_string().into_bytes(), TEXT)
            .await
            .problem(415)["type"],
        "/problems/unsupported-media-type"
    );
    send(timing().to_string().into_bytes(), NONE)
        .await
        .problem(415);
    // Over 64 KiB.
    let mut big = timing();
    big["padding"] = "x".repeat(70 * 1024).into();
    assert_eq!(
        send(big.to_string().into_bytes(), JSON).await.problem(413)["type"],
        "/problems/payload-too-large"
    );
    // Deeply nested JSON is refused by the parser's recursion limit, not by a stack overflow.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    send(deep.into_bytes(), JSON).await.problem(400);

    app.get("/v1/submissions/not-a-uuid", Some(&token))
        .await
        .problem(422);
    app.get("/v1/nothing-here", None).await.problem(404);
    let wrong = app
        .request("DELETE", "/v1/timings", Some(&token), &[], None)
        .await;
    wrong.problem(405);
    assert_eq!(wrong.header("allow").as_deref(), Some("POST"));

    app.project().await;
    assert_eq!(
        redtape_store::observations::all(&app.db)
            .await
            .map(|r| r.len())
            .unwrap_or(9),
        0
    );
    // And the service is still healthy after all of that.
    assert_eq!(app.get("/readyz", None).await.status, 200);
}

crate::on_both_stores!(
    every_timing_rule_is_named,
    every_complaint_rule_is_named,
    hostile_bodies_get_4xx_problems
);
