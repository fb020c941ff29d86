//! Idempotency-Key: retries are safe.

use redtape_domain::Role;

use crate::helpers::{timing, TestApp};

async fn a_retry_with_the_same_key_returns_the_original_response(app: &TestApp) {
    let token = app.token(Role::Business).await;
    let key = [("idempotency-key", "retry-1")];
    let first = app.post_with("/v1/timings", &token, &timing(), &key).await;
    assert_eq!(first.status, 201);
    let second = app.post_with("/v1/timings", &token, &timing(), &key).await;
    assert_eq!(second.status, 201);
    assert_eq!(
        second.body, first.body,
        "the replay is byte for byte the original"
    );
    assert_eq!(second.header("location"), first.header("location"));
    assert_eq!(
        second.header("idempotent-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(first.header("idempotent-replayed"), None);

    app.project().await;
    let rows = redtape_store::observations::all(&app.db)
        .await
        .unwrap_or_default();
    assert_eq!(rows.len(), 1, "a retry files nothing new");

    // The same key with another body is refused.
    let mut other = timing();
    other["visits"] = 3.into();
    let reply = app.post_with("/v1/timings", &token, &other, &key).await;
    assert_eq!(
        reply.problem(422)["type"],
        "/problems/idempotency-key-reused"
    );

    // Keys belong to a filer: another filer may use the same key for its own submission.
    let other_filer = app.token(Role::Business).await;
    let theirs = app
        .post_with("/v1/timings", &other_filer, &timing(), &key)
        .await;
    assert_eq!(theirs.status, 201);
    assert_ne!(theirs.json()["id"], first.json()["id"]);
}

async fn a_rejected_request_is_replayed_as_rejected(app: &TestApp) {
    let token = app.token(Role::Business).await;
    let mut bad = timing();
    bad["visits"] = 5000.into();
    let key = [("idempotency-key", "bad-1")];
    let first = app.post_with("/v1/timings", &token, &bad, &key).await;
    first.problem(422);
    let second = app.post_with("/v1/timings", &token, &bad, &key).await;
    assert_eq!(second.body, first.body);
    assert_eq!(
        second.header("content-type").as_deref(),
        Some("application/problem+json")
    );
}

async fn a_malformed_key_is_refused(app: &TestApp) {
    let token = app.token(Role::Business).await;
    let long = "k".repeat(256);
    let reply = app
        .post_with(
            "/v1/timings",
            &token,
            &timing(),
            &[("idempotency-key", long.as_str())],
        )
        .await;
    assert_eq!(
        reply.violations(),
        vec![("Idempotency-Key".to_string(), "format".to_string())]
    );
}

/// A claim left `pending` by an earlier version (which claimed keys before processing) blocks
/// its key while locked; once it expires (its process died), a retry takes it over with the
/// resource id it reserved, and the answer replaces the claim.
async fn an_abandoned_claim_of_an_earlier_version_is_taken_over(app: &TestApp) {
    use redtape_store::idempotency::{lookup, Answer, Lookup, StoredResponse};
    let fresh = lookup(&app.db, "filer:x", "k", "hash", "id-new")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        fresh,
        Lookup::Proceed {
            resource_id: "id-new".into()
        }
    );
    let far = chrono::Utc::now().timestamp() + 30;
    redtape_store::on_pool!(&app.db, pool => sqlx::query(
        "INSERT INTO idempotency_keys (principal, idempotency_key, request_hash, resource_id, \
         state, created_at, locked_until) VALUES ('filer:x', 'k', 'hash', 'id-1', 'pending', \
         '2026-01-01T00:00:00.000000Z', $1)")
        .bind(far).execute(pool).await.map(|_| ()))
    .unwrap_or_else(|e| panic!("{e}"));
    let locked = lookup(&app.db, "filer:x", "k", "hash", "id-2")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(locked, Lookup::InProgress);
    let other = lookup(&app.db, "filer:x", "k", "other-hash", "id-3")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(other, Lookup::Mismatch);
    // Simulate the first process dying: its lock expires.
    redtape_store::on_pool!(&app.db, pool => sqlx::query("UPDATE idempotency_keys SET locked_until = 0").execute(pool).await.map(|_| ()))
        .unwrap_or_else(|e| panic!("{e}"));
    let retry = lookup(&app.db, "filer:x", "k", "hash", "id-4")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        retry,
        Lookup::Proceed {
            resource_id: "id-1".into()
        },
        "the retry reuses the first id"
    );
    let submissions = redtape_store::Submissions::new(
        &app.db,
        redtape_domain::submission::SubmissionServices {
            procedures: std::sync::Arc::new(redtape_store::Catalogue::new()),
            amendment_window_days: 90,
        },
        std::sync::Arc::new(tokio::sync::Notify::new()),
    );
    let response = StoredResponse {
        status: 201,
        location: Some("/v1/submissions/id-1".into()),
        body: "{}".into(),
    };
    let answer = |hash: &str| Answer {
        principal: "filer:x".into(),
        key: "k".into(),
        request_hash: hash.into(),
        resource_id: "id-1".into(),
        created_at: "2026-01-01T00:00:01.000000Z".into(),
        response: response.clone(),
    };
    // Another request cannot take the claim over; the same request can, once.
    assert!(matches!(
        submissions.answer(answer("other-hash")).await,
        Err(redtape_store::CommandError::KeyTaken)
    ));
    submissions
        .answer(answer("hash"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        submissions.answer(answer("hash")).await,
        Err(redtape_store::CommandError::KeyTaken)
    ));
    let replay = lookup(&app.db, "filer:x", "k", "hash", "id-5")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(replay, Lookup::Replay(response));
}

/// End to end: two identical requests at the same moment create one submission.
async fn simultaneous_identical_requests_file_once(app: &TestApp) {
    let token = app.token(Role::Business).await;
    let key = [("idempotency-key", "burst")];
    let body = timing();
    let replies = futures::future::join_all(
        (0..8).map(|_| app.post_with("/v1/timings", &token, &body, &key)),
    )
    .await;
    let created: Vec<_> = replies.iter().filter(|r| r.status == 201).collect();
    assert!(!created.is_empty());
    for r in &replies {
        // The request whose answer commits first files; the others replay that answer (or,
        // while it is committing, are told to retry).
        assert!(
            r.status == 201 || r.status == 409,
            "unexpected {}: {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        if r.status == 409 {
            assert_eq!(r.problem(409)["type"], "/problems/idempotency-key-in-use");
            assert_eq!(r.header("retry-after").as_deref(), Some("1"));
        }
    }
    let ids: std::collections::BTreeSet<String> =
        created.iter().map(|r| r.json()["id"].to_string()).collect();
    assert_eq!(ids.len(), 1);
    app.project().await;
    assert_eq!(
        redtape_store::observations::all(&app.db)
            .await
            .map(|r| r.len())
            .unwrap_or(0),
        1
    );
}

crate::on_both_stores!(
    a_retry_with_the_same_key_returns_the_original_response,
    a_rejected_request_is_replayed_as_rejected,
    a_malformed_key_is_refused,
    an_abandoned_claim_of_an_earlier_version_is_taken_over,
    simultaneous_identical_requests_file_once,
);
