//! Onboarding over HTTP (issue 13): administrators register filers, issue tokens to filers and
//! staff, list both without ever showing a token or its hash, and revoke tokens.

use redtape_domain::Role;
use serde_json::{json, Value};

use crate::helpers::{timing, TestApp};

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

async fn admins_onboard_filers_and_staff_over_http(app: &TestApp) {
    let admin = app.token(Role::Admin).await;
    let officer = app.token(Role::Officer).await;

    // Register a business with its profile and enterprise code.
    let body = json!({"kind": "business", "enterprise_code": "0312345678",
        "profile": {"size_class": "small", "sector_section": "G", "woman_owned": true},
        "label": "Cong ty TNHH Minh Anh"});
    let reply = app.post("/v1/admin/filers", &admin, &body).await;
    let filer = reply.expect(201);
    let id = filer["id"].as_str().unwrap().to_string();
    assert_eq!(
        reply.header("location").as_deref(),
        Some(format!("/v1/admin/filers/{id}").as_str())
    );
    assert_eq!(filer["kind"], "business");
    assert_eq!(
        filer["profile"],
        json!({"size_class": "small", "sector_section": "G", "woman_owned": true,
               "ethnic_minority_owned": null})
    );
    assert!(!reply_text(&reply.body).contains("0312345678"));
    let again = app
        .post(
            "/v1/admin/filers",
            &admin,
            &json!({"enterprise_code": " 0312345678 "}),
        )
        .await;
    assert_eq!(
        again.problem(409)["type"],
        "/problems/enterprise-registered"
    );
    assert!(!reply_text(&again.body).contains("0312345678"));
    let got = app
        .get(&format!("/v1/admin/filers/{id}"), Some(&admin))
        .await
        .expect(200);
    assert_eq!(got, filer);

    // Refusals name the field and the rule.
    let bad = app
        .post(
            "/v1/admin/filers",
            &admin,
            &json!({"enterprise_code": "12345", "profile": {"size_class": "huge"}}),
        )
        .await;
    bad.problem(422);
    assert_eq!(
        bad.violations(),
        pairs(&[("/profile/size_class", "one_of")])
    );
    let bad = app
        .post(
            "/v1/admin/filers",
            &admin,
            &json!({"enterprise_code": "12345"}),
        )
        .await;
    bad.problem(422);
    assert_eq!(bad.violations(), pairs(&[("/enterprise_code", "format")]));
    for (body, expected) in [
        (json!({"role": "business"}), ("/filer_id", "required")),
        (
            json!({"role": "admin", "provinces": ["79"]}),
            ("/provinces", "not_allowed"),
        ),
        (
            json!({"role": "officer", "provinces": ["99"]}),
            ("/provinces/0", "unknown_province"),
        ),
        (
            json!({"role": "admin", "expires_at": "2020-01-01T00:00:00Z"}),
            ("/expires_at", "future"),
        ),
        (
            json!({"role": "admin", "expires_at": "+10000-01-01T00:00:00Z"}),
            ("/expires_at", "range"),
        ),
        (
            json!({"role": "business", "filer_id": "01932c4e-7d1a-7c3e-9a51-3f1f0c2b9d11"}),
            ("/filer_id", "registered"),
        ),
        (json!({"role": "root"}), ("/role", "one_of")),
    ] {
        let reply = app.post("/v1/admin/tokens", &admin, &body).await;
        reply.problem(422);
        assert_eq!(reply.violations(), pairs(&[expected]), "{body}");
    }

    // A token for the business, shown once, works at once.
    let reply = app
        .post(
            "/v1/admin/tokens",
            &admin,
            &json!({"role": "business", "filer_id": id, "label": "accountant"}),
        )
        .await;
    let issued = reply.expect(201);
    assert_eq!(reply.header("cache-control").as_deref(), Some("no-store"));
    let token = issued["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("rt_"));
    assert_eq!(
        (&issued["role"], &issued["filer_id"], &issued["status"]),
        (&json!("business"), &json!(id), &json!("active"))
    );
    app.post("/v1/timings", &token, &timing()).await.expect(201);

    // A scoped officer.
    let scoped = app
        .post(
            "/v1/admin/tokens",
            &admin,
            &json!({"role": "officer", "provinces": ["79"], "label": "HCMC DPI"}),
        )
        .await
        .expect(201);
    let scoped_token = scoped["token"].as_str().unwrap().to_string();
    assert_eq!(scoped["provinces"], json!(["79"]));
    app.get("/v1/moderation/queue", Some(&scoped_token))
        .await
        .expect(200);

    // Lists page, and never show a token or its hash.
    let hash = redtape_store::tokens::hash(&token);
    let mut seen = Vec::new();
    let mut url = "/v1/admin/tokens?limit=2".to_string();
    loop {
        let reply = app.get(&url, Some(&admin)).await;
        let page = reply.expect(200);
        let text = reply_text(&reply.body);
        assert!(!text.contains(&token) && !text.contains(&hash) && !text.contains("rt_"));
        seen.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(next) => url = next.to_string(),
            None => break,
        }
    }
    // Admin, officer, the business's and the scoped officer's.
    assert_eq!(seen.len(), 4, "{seen:?}");
    let used = seen.iter().find(|t| t["id"] == issued["id"]).unwrap();
    assert!(used["last_used_at"].is_string(), "{used}");
    let mine = app
        .get(&format!("/v1/admin/tokens?filer={id}"), Some(&admin))
        .await
        .expect(200);
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    let filers = app
        .get("/v1/admin/filers?limit=500", Some(&admin))
        .await
        .expect(200);
    assert!(filers["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["id"] == json!(id)));

    // Revocation: once, then 409; the token stops working.
    let path = format!(
        "/v1/admin/tokens/{}/revocation",
        issued["id"].as_str().unwrap()
    );
    let revoked = app.post(&path, &admin, &Value::Null).await.expect(200);
    assert_eq!(revoked["status"], "revoked");
    assert_eq!(
        app.post(&path, &admin, &Value::Null).await.problem(409)["type"],
        "/problems/token-revoked"
    );
    app.post("/v1/timings", &token, &timing())
        .await
        .problem(401);
    app.post(
        "/v1/admin/tokens/01932c4e-7d1a-7c3e-9a51-3f1f0c2b9d11/revocation",
        &admin,
        &Value::Null,
    )
    .await
    .problem(404);

    // Only admins onboard.
    for path in ["/v1/admin/filers", "/v1/admin/tokens"] {
        app.get(path, Some(&officer)).await.problem(403);
        app.post(path, &officer, &json!({"role": "admin"}))
            .await
            .problem(403);
    }
}

fn reply_text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

crate::on_both_stores!(admins_onboard_filers_and_staff_over_http);
