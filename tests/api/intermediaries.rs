//! Intermediaries and a filer's own view (issue 13): an intermediary registers member
//! businesses and files, amends and withdraws for them; it sees only what it filed and the
//! members it registered; a member's own token sees everything filed for it; another
//! intermediary sees nothing of either. Filings record the profile in force.

use redtape_domain::Role;
use serde_json::{json, Value};

use crate::helpers::{timing, TestApp};

/// Registers an intermediary through the admin API and issues its token.
async fn intermediary(app: &TestApp, admin: &str) -> (String, String) {
    let filer = app
        .post(
            "/v1/admin/filers",
            admin,
            &json!({"kind": "intermediary", "label": "SME support centre"}),
        )
        .await
        .expect(201);
    let id = filer["id"].as_str().unwrap().to_string();
    let token = app
        .post(
            "/v1/admin/tokens",
            admin,
            &json!({"role": "intermediary", "filer_id": id}),
        )
        .await
        .expect(201)["token"]
        .as_str()
        .unwrap()
        .to_string();
    (id, token)
}

/// The JSON payload of a submission's filing event.
async fn filing_event(app: &TestApp, id: &str) -> (String, Value) {
    let (version, payload): (String, String) = redtape_store::on_pool!(&app.db, pool =>
        sqlx::query_as("SELECT event_version, CAST(payload AS text) FROM events \
                        WHERE aggregate_type = 'Submission' AND aggregate_id = $1 AND sequence = 1")
            .bind(id).fetch_one(pool).await)
    .unwrap();
    let payload: Value = serde_json::from_str(&payload).unwrap();
    (version, payload["TimingReported"].clone())
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

async fn intermediaries_file_for_their_members_only(app: &TestApp) {
    let admin = app.token(Role::Admin).await;
    let officer = app.token(Role::Officer).await;
    let (centre, centre_token) = intermediary(app, &admin).await;
    let (_, rival) = intermediary(app, &admin).await;

    // The centre registers a member with a profile.
    let member = app
        .post(
            "/v1/members",
            &centre_token,
            &json!({"profile": {"size_class": "micro", "woman_owned": true,
                                "ethnic_minority_owned": true}, "label": "member 17"}),
        )
        .await
        .expect(201);
    let member_id = member["id"].as_str().unwrap().to_string();
    assert_eq!(member["registered_by"], json!(centre));
    assert_eq!(member["kind"], "business");
    let members = app
        .get("/v1/members", Some(&centre_token))
        .await
        .expect(200);
    assert_eq!(ids(&members), vec![member_id.clone()]);
    let members = app.get("/v1/members", Some(&rival)).await.expect(200);
    assert!(ids(&members).is_empty());
    let refused = app
        .post(
            "/v1/members",
            &centre_token,
            &json!({"kind": "intermediary"}),
        )
        .await;
    refused.problem(422);
    assert_eq!(
        refused.violations(),
        vec![("/kind".to_string(), "one_of".to_string())]
    );

    // It files for the member, and only for a member of its own.
    let for_member = format!("/v1/timings?on_behalf_of={member_id}");
    let filed = app.file(&for_member, &centre_token, &timing()).await;
    let second = app.file(&for_member, &centre_token, &timing()).await;
    let missing = app.post("/v1/timings", &centre_token, &timing()).await;
    missing.problem(422);
    assert_eq!(
        missing.violations(),
        vec![("on_behalf_of".to_string(), "required".to_string())]
    );
    let foreign = app.post(&for_member, &rival, &timing()).await;
    foreign.problem(422);
    assert_eq!(
        foreign.violations(),
        vec![("on_behalf_of".to_string(), "member".to_string())]
    );
    let business = app.token(Role::Business).await;
    let not_allowed = app.post(&for_member, &business, &timing()).await;
    not_allowed.problem(422);
    assert_eq!(
        not_allowed.violations(),
        vec![("on_behalf_of".to_string(), "not_allowed".to_string())]
    );

    // The event records the member, the intermediary and the member's profile (v1.1).
    let (version, event) = filing_event(app, &filed).await;
    assert_eq!(version, "1.1");
    assert_eq!(event["filer"], json!(member_id));
    assert_eq!(event["intermediary"], json!(centre));
    assert_eq!(
        event["profile"],
        json!({"size_class": "micro", "sector_section": null, "woman_owned": true,
               "ethnic_minority_owned": true})
    );

    // It amends and withdraws what it filed; the rival cannot even see it.
    let amend = json!({"reason": "typo", "changes": {"visits": 3}});
    app.post(
        &format!("/v1/submissions/{filed}/amendments"),
        &centre_token,
        &amend,
    )
    .await
    .expect(200);
    app.post(
        &format!("/v1/submissions/{second}/withdrawal"),
        &centre_token,
        &json!({}),
    )
    .await
    .expect(200);
    app.get(&format!("/v1/submissions/{filed}"), Some(&rival))
        .await
        .problem(404);
    app.post(
        &format!("/v1/submissions/{filed}/amendments"),
        &rival,
        &amend,
    )
    .await
    .problem(404);
    app.request(
        "PUT",
        &format!("/v1/members/{member_id}/profile"),
        Some(&rival),
        &[("content-type", "application/json")],
        Some(b"{}".to_vec()),
    )
    .await
    .problem(404);

    // The member's own token sees what was filed for it, and files for itself.
    let member_token = app
        .post(
            "/v1/admin/tokens",
            &admin,
            &json!({"role": "business", "filer_id": member_id}),
        )
        .await
        .expect(201)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let me = app.get("/v1/me", Some(&member_token)).await.expect(200);
    assert_eq!(
        (
            &me["role"],
            &me["filer"]["id"],
            &me["filer"]["profile"]["size_class"]
        ),
        (&json!("business"), &json!(member_id), &json!("micro"))
    );
    let centre_me = app.get("/v1/me", Some(&centre_token)).await.expect(200);
    assert_eq!(centre_me["role"], "intermediary");
    app.get(&format!("/v1/submissions/{filed}"), Some(&member_token))
        .await
        .expect(200);
    // A profile change moves later filings only.
    let changed = app
        .request(
            "PUT",
            "/v1/me/profile",
            Some(&member_token),
            &[("content-type", "application/json")],
            Some(br#"{"size_class": "small", "sector_section": "C"}"#.to_vec()),
        )
        .await
        .expect(200);
    assert_eq!(
        changed["profile"],
        json!({"size_class": "small", "sector_section": "C", "woman_owned": null,
               "ethnic_minority_owned": null})
    );
    let own = app.file("/v1/timings", &member_token, &timing()).await;
    assert_eq!(
        filing_event(app, &own).await.1["profile"]["size_class"],
        "small"
    );
    assert_eq!(filing_event(app, &own).await.1["intermediary"], Value::Null);
    assert_eq!(
        filing_event(app, &filed).await.1["profile"]["size_class"],
        "micro"
    );
    app.get(&format!("/v1/submissions/{own}"), Some(&centre_token))
        .await
        .problem(404);

    // Each lists its own: the member all three, the centre the two it filed.
    app.project().await;
    app.post(
        &format!("/v1/submissions/{filed}/responses"),
        &officer,
        &json!({"agency": "Sở Tư pháp", "text": "Noted", "status": "in_progress"}),
    )
    .await
    .expect(201);
    app.project().await;
    let mine = app
        .get("/v1/submissions", Some(&member_token))
        .await
        .expect(200);
    let mut expected = vec![filed.clone(), second.clone(), own.clone()];
    expected.sort();
    assert_eq!(ids(&mine), expected);
    let first = &mine["items"][0];
    assert_eq!(
        (
            &first["latest_response"],
            &first["intermediary_id"],
            &first["amendments"]
        ),
        (&json!("in_progress"), &json!(centre), &json!(1))
    );
    let centre_list = app
        .get("/v1/submissions", Some(&centre_token))
        .await
        .expect(200);
    assert_eq!(ids(&centre_list), vec![filed.clone(), second.clone()]);
    let withdrawn = app
        .get("/v1/submissions?status=withdrawn", Some(&member_token))
        .await
        .expect(200);
    assert_eq!(ids(&withdrawn), vec![second.clone()]);
    let none = app
        .get("/v1/submissions?year=2024", Some(&member_token))
        .await
        .expect(200);
    assert!(ids(&none).is_empty());
    let paged = app
        .get("/v1/submissions?limit=2", Some(&member_token))
        .await
        .expect(200);
    assert_eq!(ids(&paged).len(), 2);
    let next = app
        .get(paged["next"].as_str().unwrap(), Some(&member_token))
        .await
        .expect(200);
    assert_eq!(ids(&next), vec![own.clone()]);
    assert!(ids(&app.get("/v1/submissions", Some(&rival)).await.expect(200)).is_empty());

    // Officers filter the queue by intermediary; public figures count each filing once.
    let queue = app
        .get(
            &format!("/v1/moderation/queue?intermediary={centre}"),
            Some(&officer),
        )
        .await
        .expect(200);
    assert_eq!(ids(&queue), vec![filed.clone()]);
    let rows = redtape_store::observations::all(&app.db).await.unwrap();
    assert_eq!(
        rows.iter().filter(|r| r.filer_id == member_id).count(),
        3,
        "one observation per filing, all the member's"
    );
    // Each row keeps the profile its filing recorded (the microdata reads these).
    let profile_of = |id: &str| {
        let r = rows.iter().find(|r| r.submission_id == id).unwrap();
        (
            r.size_class.clone(),
            r.sector_section.clone(),
            r.woman_owned,
            r.intermediary_id.clone(),
        )
    };
    assert_eq!(
        profile_of(&filed),
        (Some("micro".into()), None, Some(true), Some(centre.clone()))
    );
    assert_eq!(
        profile_of(&own),
        (Some("small".into()), Some("C".into()), None, None)
    );

    // The audit trail names the intermediary, and leaves the profile out.
    let trail = app
        .get(&format!("/v1/submissions/{filed}/events"), Some(&officer))
        .await
        .expect(200);
    let filing = &trail[0];
    assert!(filing["actor"]
        .as_str()
        .unwrap()
        .starts_with("intermediary:"));
    assert_eq!(
        filing["data"]["TimingReported"]["intermediary"],
        json!(centre)
    );
    assert!(
        filing["data"]["TimingReported"].get("profile").is_none(),
        "{filing}"
    );

    // An Idempotency-Key names one request: the same body for another member is not it.
    let other = app
        .post("/v1/members", &centre_token, &json!({}))
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let key = [("idempotency-key", "centre-batch-1")];
    app.post_with(&for_member, &centre_token, &timing(), &key)
        .await
        .expect(201);
    let reused = app
        .post_with(
            &format!("/v1/timings?on_behalf_of={other}"),
            &centre_token,
            &timing(),
            &key,
        )
        .await;
    assert_eq!(
        reused.problem(422)["type"],
        "/problems/idempotency-key-reused"
    );
}

crate::on_both_stores!(intermediaries_file_for_their_members_only);
