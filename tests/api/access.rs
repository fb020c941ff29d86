//! Authentication and isolation between filers.

use redtape_domain::Role;
use serde_json::json;

use crate::helpers::{timing, TestApp};

async fn a_filer_cannot_see_or_change_another_filers_submission(app: &TestApp) {
    let alice = app.token(Role::Business).await;
    let bob = app.token(Role::Business).await;
    let reply = app.post("/v1/timings", &alice, &timing()).await;
    assert_eq!(reply.status, 201);
    let id = reply.json()["id"].as_str().unwrap_or_default().to_string();

    let path = format!("/v1/submissions/{id}");
    let missing = format!("/v1/submissions/{}", uuid::Uuid::now_v7());
    // Bob gets exactly the answer he would get for an id that does not exist.
    let foreign = app.get(&path, Some(&bob)).await;
    let absent = app.get(&missing, Some(&bob)).await;
    assert_eq!(
        foreign.problem(404)["detail"],
        absent.problem(404)["detail"]
    );
    let amend = json!({"reason": "mine now", "changes": {"visits": 9}});
    app.post(&format!("{path}/amendments"), &bob, &amend)
        .await
        .problem(404);
    app.post(&format!("{path}/withdrawal"), &bob, &json!({}))
        .await
        .problem(404);
    // Alice's submission is untouched.
    let view = app.get(&path, Some(&alice)).await.json();
    assert_eq!(
        (view["version"].as_i64(), view["status"].as_str()),
        (Some(1), Some("received"))
    );
}

async fn business_endpoints_need_a_business_token(app: &TestApp) {
    let officer = app.token(Role::Officer).await;
    let admin = app.token(Role::Admin).await;
    app.post("/v1/timings", &officer, &timing())
        .await
        .problem(403);
    app.post("/v1/complaints", &admin, &timing())
        .await
        .problem(403);

    let none = app
        .request(
            "POST",
            "/v1/timings",
            None,
            &[("content-type", "application/json")],
            Some(timing().to_string().into_bytes()),
        )
        .await;
    none.problem(401);
    assert_eq!(
        none.header("www-authenticate").as_deref(),
        Some("Bearer realm=\"redtape\"")
    );
    app.post("/v1/timings", "rt_not-a-real-token", &timing())
        .await
        .problem(401);
    let basic = app
        .request(
            "GET",
            "/v1/submissions/x",
            None,
            &[("authorization", "Basic dXNlcjpwYXNz")],
            None,
        )
        .await;
    basic.problem(401);
}

async fn a_revoked_token_stops_working(app: &TestApp) {
    let issued = app.issue(Role::Business, Default::default()).await;
    assert_eq!(
        app.post("/v1/timings", &issued.token, &timing())
            .await
            .status,
        201
    );
    let revoked = app
        .accounts()
        .revoke(issued.principal.token_id, "test")
        .await;
    assert!(matches!(revoked, Ok(())), "{revoked:?}");
    app.post("/v1/timings", &issued.token, &timing())
        .await
        .problem(401);
}

crate::on_both_stores!(
    a_filer_cannot_see_or_change_another_filers_submission,
    business_endpoints_need_a_business_token,
    a_revoked_token_stops_working,
);
