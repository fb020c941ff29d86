//! The role matrix: every endpoint, called by every kind of caller, gives the expected status;
//! and nothing a business filed leaks to callers who may not see it.

use redtape_domain::Role;
use serde_json::{json, Value};

use crate::helpers::{complaint, timing, Reply, TestApp};

/// Who calls, in the order of every row's expectations.
const CALLERS: [&str; 7] = [
    "none",
    "owner",
    "other business",
    "officer",
    "officer elsewhere",
    "admin",
    "intermediary",
];

/// What a row's path needs created first, fresh for every call (so one caller's success
/// cannot change what the next one gets).
#[derive(Clone, Copy)]
enum Fresh {
    Nothing,
    /// A timing filed by the owner, in Hồ Chí Minh City (79): `{id}`.
    Submission,
    /// A procedure registered by an admin: `{code}`.
    Procedure,
    /// An officer token issued by an admin: `{token}` (its id).
    Token,
}

struct Row {
    method: &'static str,
    path: &'static str,
    body: Option<Value>,
    fresh: Fresh,
    expect: [u16; 7],
}

fn row(
    method: &'static str,
    path: &'static str,
    body: Option<Value>,
    fresh: Fresh,
    expect: [u16; 7],
) -> Row {
    Row {
        method,
        path,
        body,
        fresh,
        expect,
    }
}

const NARRATIVE: &str = "PLANTED-NARRATIVE-7f3a: the clerk asked for coffee money";

async fn every_endpoint_answers_every_role_as_specified(app: &TestApp) {
    let owner = app.token(Role::Business).await;
    let other = app.token(Role::Business).await;
    let officer = app.token(Role::Officer).await;
    let elsewhere = app.officer_for(&["01"]).await;
    let admin = app.token(Role::Admin).await;
    let intermediary = app.token(Role::Intermediary).await;
    let tokens: [Option<&str>; 7] = [
        None,
        Some(&owner),
        Some(&other),
        Some(&officer),
        Some(&elsewhere),
        Some(&admin),
        Some(&intermediary),
    ];

    // Data every open endpoint can show: a complaint with a narrative, a year to release.
    let mut planted = complaint();
    planted["narrative"] = json!(NARRATIVE);
    planted["province_code"] = json!("79");
    let planted_id = app.file("/v1/complaints", &owner, &planted).await;
    let filer_id = app.observation(&planted_id).await.unwrap().filer_id;
    app.request("POST", "/v1/releases/2024", Some(&admin), &[], None)
        .await
        .expect(201);

    let amend = json!({"reason": "typo", "changes": {"visits": 2}});
    let respond = json!({"agency": "Sở Tư pháp", "text": "Noted", "status": "acknowledged"});
    let reform = json!({"effective_from": "2026-01-01", "statutory_working_days": 2, "legal_basis": "Decree 1"});
    let abolish = json!({"effective_from": "2026-01-01", "legal_basis": "Decree 2"});
    use Fresh::*;
    let rows = vec![
        // Businesses file and manage their own submissions.
        row(
            "POST",
            "/v1/timings",
            Some(timing()),
            Nothing,
            [401, 201, 201, 403, 403, 403, 422],
        ),
        row(
            "POST",
            "/v1/complaints",
            Some(complaint()),
            Nothing,
            [401, 201, 201, 403, 403, 403, 422],
        ),
        row(
            "GET",
            "/v1/submissions/{id}",
            None,
            Submission,
            [401, 200, 404, 200, 404, 200, 404],
        ),
        row(
            "POST",
            "/v1/submissions/{id}/amendments",
            Some(amend),
            Submission,
            [401, 200, 404, 403, 403, 403, 404],
        ),
        row(
            "POST",
            "/v1/submissions/{id}/withdrawal",
            Some(json!({})),
            Submission,
            [401, 200, 404, 403, 403, 403, 404],
        ),
        // A filer's own account; an intermediary's members.
        row(
            "GET",
            "/v1/me",
            None,
            Nothing,
            [401, 200, 200, 403, 403, 403, 200],
        ),
        row(
            "PUT",
            "/v1/me/profile",
            Some(json!({})),
            Nothing,
            [401, 200, 200, 403, 403, 403, 200],
        ),
        row(
            "GET",
            "/v1/submissions",
            None,
            Nothing,
            [401, 200, 200, 403, 403, 403, 200],
        ),
        row(
            "POST",
            "/v1/members",
            Some(json!({})),
            Nothing,
            [401, 403, 403, 403, 403, 403, 201],
        ),
        row(
            "GET",
            "/v1/members",
            None,
            Nothing,
            [401, 403, 403, 403, 403, 403, 200],
        ),
        // The owner is not this intermediary's member.
        row(
            "PUT",
            "/v1/members/{filer}/profile",
            Some(json!({})),
            Nothing,
            [401, 403, 403, 403, 403, 403, 404],
        ),
        // Officers moderate in their provinces; admins everywhere.
        row(
            "GET",
            "/v1/moderation/queue",
            None,
            Nothing,
            [401, 403, 403, 200, 200, 200, 403],
        ),
        row(
            "POST",
            "/v1/submissions/{id}/verification",
            Some(json!({})),
            Submission,
            [401, 403, 403, 200, 404, 200, 403],
        ),
        row(
            "POST",
            "/v1/submissions/{id}/rejection",
            Some(json!({"reason": "spam"})),
            Submission,
            [401, 403, 403, 200, 404, 200, 403],
        ),
        row(
            "POST",
            "/v1/submissions/{id}/responses",
            Some(respond),
            Submission,
            [401, 403, 403, 201, 404, 201, 403],
        ),
        row(
            "GET",
            "/v1/submissions/{id}/events",
            None,
            Submission,
            [401, 403, 403, 200, 404, 200, 403],
        ),
        // The catalogue is national: officers for every province, and admins.
        row(
            "POST",
            "/v1/procedures",
            None,
            Nothing,
            [401, 403, 403, 201, 403, 201, 403],
        ),
        row(
            "POST",
            "/v1/procedures/{code}/reforms",
            Some(reform),
            Procedure,
            [401, 403, 403, 200, 403, 200, 403],
        ),
        row(
            "POST",
            "/v1/procedures/{code}/abolition",
            Some(abolish),
            Procedure,
            [401, 403, 403, 200, 403, 200, 403],
        ),
        // Releases: admins publish (2025: one row of this test per admin call).
        row(
            "POST",
            "/v1/releases/2025",
            None,
            Nothing,
            [401, 403, 403, 403, 403, 201, 403],
        ),
        // Admins onboard filers and staff.
        row(
            "POST",
            "/v1/admin/filers",
            Some(json!({})),
            Nothing,
            [401, 403, 403, 403, 403, 201, 403],
        ),
        row(
            "GET",
            "/v1/admin/filers",
            None,
            Nothing,
            [401, 403, 403, 403, 403, 200, 403],
        ),
        row(
            "GET",
            "/v1/admin/filers/{filer}",
            None,
            Nothing,
            [401, 403, 403, 403, 403, 200, 403],
        ),
        row(
            "POST",
            "/v1/admin/tokens",
            Some(json!({"role": "admin"})),
            Nothing,
            [401, 403, 403, 403, 403, 201, 403],
        ),
        row(
            "GET",
            "/v1/admin/tokens",
            None,
            Nothing,
            [401, 403, 403, 403, 403, 200, 403],
        ),
        row(
            "POST",
            "/v1/admin/tokens/{token}/revocation",
            None,
            Token,
            [401, 403, 403, 403, 403, 200, 403],
        ),
        // Open data: the same for everyone, token or not.
        row("GET", "/v1/procedures", None, Nothing, [200; 7]),
        row("GET", "/v1/procedures/1.001612", None, Nothing, [200; 7]),
        row("GET", "/v1/provinces", None, Nothing, [200; 7]),
        row("GET", "/v1/indices", None, Nothing, [200; 7]),
        row("GET", "/v1/indices?format=csv", None, Nothing, [200; 7]),
        row(
            "GET",
            "/v1/indices/breakdowns?dimension=woman_owned",
            None,
            Nothing,
            [200; 7],
        ),
        row(
            "GET",
            "/v1/indices/rankings?year=2024&procedure=1.009972",
            None,
            Nothing,
            [200; 7],
        ),
        row(
            "GET",
            "/v1/indices/provinces?year=2024",
            None,
            Nothing,
            [200; 7],
        ),
        row(
            "GET",
            "/v1/indices/trends?procedure=1.009972&province=79",
            None,
            Nothing,
            [200; 7],
        ),
        row("GET", "/v1/responses", None, Nothing, [200; 7]),
        row("GET", "/v1/releases", None, Nothing, [200; 7]),
        row("GET", "/v1/releases/2024", None, Nothing, [200; 7]),
        row("GET", "/v1/releases/2024/1.csv", None, Nothing, [200; 7]),
        row("GET", "/v1/releases/2024/1.json", None, Nothing, [200; 7]),
        row("GET", "/v1/dictionary", None, Nothing, [200; 7]),
        row("GET", "/v1/catalog", None, Nothing, [200; 7]),
        row(
            "GET",
            "/v1/open/observations?year=2025&procedure=1.001612",
            None,
            Nothing,
            [200; 7],
        ),
        row("GET", "/?year=2025", None, Nothing, [200; 7]),
        row("GET", "/healthz", None, Nothing, [200; 7]),
        row("GET", "/readyz", None, Nothing, [200; 7]),
        row("GET", "/metrics", None, Nothing, [200; 7]),
        row("GET", "/openapi.json", None, Nothing, [200; 7]),
    ];

    // Every documented operation has a row.
    let spec = app.get("/openapi.json", None).await.expect(200);
    let matches = |template: &str, path: &str| {
        let path = path.split('?').next().unwrap_or(path);
        let (t, p): (Vec<_>, Vec<_>) = (template.split('/').collect(), path.split('/').collect());
        t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| t.starts_with('{') || t == p)
    };
    for (template, operations) in spec["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            assert!(
                rows.iter()
                    .any(|r| r.method == method && matches(template, r.path)),
                "{method} {template} has no row in the role matrix"
            );
        }
    }

    let mut failures = Vec::new();
    let mut codes = 0;
    for r in &rows {
        for (i, caller) in CALLERS.iter().enumerate() {
            let mut path = r.path.replace("{filer}", &filer_id);
            match r.fresh {
                Nothing => {}
                Token => {
                    let issued = app.issue(Role::Officer, Default::default()).await;
                    path = path.replace("{token}", &issued.principal.token_id.to_string());
                }
                Submission => {
                    let id = app.file("/v1/timings", &owner, &timing()).await;
                    path = path.replace("{id}", &id);
                }
                Procedure => {
                    codes += 1;
                    let code = format!("1.{:06}", 900_000 + codes);
                    let mut body = registration(&code);
                    body["effective_from"] = json!("2024-01-01");
                    app.post("/v1/procedures", &admin, &body).await.expect(201);
                    path = path.replace("{code}", &code);
                }
            }
            let body = match (r.path, &r.body) {
                ("/v1/procedures", _) => {
                    codes += 1;
                    Some(registration(&format!("1.{:06}", 900_000 + codes)))
                }
                (_, b) => b.clone(),
            };
            let reply = call(app, r.method, &path, tokens[i], body).await;
            if reply.status != r.expect[i] {
                failures.push(format!(
                    "{} {path} as {caller}: {} (expected {}): {}",
                    r.method,
                    reply.status,
                    r.expect[i],
                    String::from_utf8_lossy(&reply.body)
                ));
            }
            // Nothing filed by the owner reaches anyone but the owner and officers who may
            // moderate it.
            let may_see_narrative = matches!(i, 1 | 3 | 5) && path.contains("/submissions/");
            // Admins see filers (never narratives) in the onboarding lists.
            let may_see_filer = may_see_narrative
                || (i == 5 && path.starts_with("/v1/admin/"))
                || (i == 1 && (path.starts_with("/v1/me") || path == "/v1/submissions"));
            let text = String::from_utf8_lossy(&reply.body);
            if (!may_see_narrative && text.contains(NARRATIVE))
                || (!may_see_filer && text.contains(&filer_id))
            {
                failures.push(format!(
                    "{} {path} as {caller} leaks the owner's data",
                    r.method
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // The planted submission itself: its owner and moderators see the narrative; nobody else.
    let path = format!("/v1/submissions/{planted_id}");
    for (i, token) in tokens.iter().enumerate() {
        let reply = app.get(&path, *token).await;
        let sees = String::from_utf8_lossy(&reply.body).contains(NARRATIVE);
        assert_eq!(sees, matches!(i, 1 | 3 | 5), "{} as {}", path, CALLERS[i]);
    }
}

fn registration(code: &str) -> Value {
    json!({
        "code": code,
        "name_vi": "Thủ tục thử",
        "name_en": "Test procedure",
        "level": "provincial",
        "agency": "Sở Thử",
        "statutory_working_days": 5,
        "legal_basis": "Test decree",
        "effective_from": "2024-01-01"
    })
}

async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Reply {
    match body {
        Some(b) => {
            app.request(
                method,
                path,
                token,
                &[("content-type", "application/json")],
                Some(b.to_string().into_bytes()),
            )
            .await
        }
        None => app.request(method, path, token, &[], None).await,
    }
}

crate::on_both_stores!(every_endpoint_answers_every_role_as_specified);
