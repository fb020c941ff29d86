//! Abuse control over HTTP: the per-token rate limit and the per-filer daily cap.

use redtape_domain::Role;
use serde_json::json;

use crate::helpers::{timing, TestApp};

async fn a_token_over_its_rate_gets_429_with_retry_after(app: &TestApp) {
    let token = app.token(Role::Business).await;
    let other = app.token(Role::Business).await;
    let missing = format!("/v1/submissions/{}", uuid::Uuid::now_v7());
    for left in (0..5).rev() {
        let reply = app.get(&missing, Some(&token)).await;
        assert_eq!(reply.status, 404);
        assert_eq!(
            reply.header("ratelimit-policy").as_deref(),
            Some("\"per-token\";q=5;w=60")
        );
        let state = reply.header("ratelimit").unwrap_or_default();
        assert!(
            state.starts_with(&format!("\"per-token\";r={left};t=")),
            "{state}"
        );
    }
    let refused = app.get(&missing, Some(&token)).await;
    let problem = refused.problem(429);
    assert_eq!(problem["type"], "/problems/too-many-requests");
    // One request comes back every 12 s.
    let wait: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((11..=12).contains(&wait), "{wait}");
    assert_eq!(
        refused.header("ratelimit"),
        Some(format!("\"per-token\";r=0;t={wait}"))
    );
    // Writes are refused too, and nothing is filed.
    app.post("/v1/timings", &token, &timing())
        .await
        .problem(429);
    // Other tokens and anonymous readers are not affected.
    app.get(&missing, Some(&other)).await.problem(404);
    for _ in 0..10 {
        let open = app.get("/v1/provinces", None).await;
        assert_eq!(open.status, 200);
        assert_eq!(open.header("ratelimit"), None);
    }
}

async fn a_business_files_up_to_its_daily_cap(app: &TestApp) {
    let token = app.token(Role::Business).await;
    // A refused (invalid) filing does not use the cap.
    let mut invalid = timing();
    invalid["visits"] = json!(-1);
    app.post("/v1/timings", &token, &invalid).await.problem(422);
    // The same key three times: one filing and two replays of it, which count once.
    let mut first = None;
    for _ in 0..3 {
        let reply = app
            .post_with(
                "/v1/timings",
                &token,
                &timing(),
                &[("idempotency-key", "cap-1")],
            )
            .await;
        first.get_or_insert(reply.expect(201)["id"].clone());
    }
    app.file("/v1/timings", &token, &timing()).await;
    app.file("/v1/complaints", &token, &crate::helpers::complaint())
        .await;
    let refused = app.post("/v1/timings", &token, &timing()).await;
    let problem = refused.problem(429);
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("3 submissions today")),
        "{problem}"
    );
    let wait: i64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&wait), "{wait}");
    // An acknowledged filing is still replayed after the cap is reached.
    let replay = app
        .post_with(
            "/v1/timings",
            &token,
            &timing(),
            &[("idempotency-key", "cap-1")],
        )
        .await;
    assert_eq!(replay.expect(201)["id"], first.unwrap());
    app.project().await;
    let filed = redtape_store::observations::all(&app.db).await.unwrap();
    assert_eq!(filed.len(), 3, "exactly the cap was filed");
    // Another business has its own cap.
    let other = app.token(Role::Business).await;
    app.file("/v1/timings", &other, &timing()).await;
}

async fn concurrent_filings_stop_exactly_at_the_cap(app: &TestApp) {
    let token = app.token(Role::Business).await;
    // Twelve filings at once land in the same write groups: the cap still lets exactly three
    // through, and the others are refused before anything is stored.
    let bodies: Vec<_> = (0..12).map(|_| timing()).collect();
    let replies =
        futures::future::join_all(bodies.iter().map(|b| app.post("/v1/timings", &token, b))).await;
    let mut statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [[201; 3].as_slice(), &[429; 9]].concat());
    for refused in replies.iter().filter(|r| r.status == 429) {
        assert!(refused.header("retry-after").is_some());
    }
    app.project().await;
    let filed = redtape_store::observations::all(&app.db).await.unwrap();
    assert_eq!(filed.len(), 3);
    // The next filing is refused too: the count was kept, not recomputed.
    app.post("/v1/timings", &token, &timing())
        .await
        .problem(429);
}

/// Each limit in an application configured for it alone.
mod rate {
    use super::a_token_over_its_rate_gets_429_with_retry_after;
    crate::on_both_stores!(
        with ["--rate-limit-per-minute", "5"]
        a_token_over_its_rate_gets_429_with_retry_after,
    );
}

mod cap {
    use super::{a_business_files_up_to_its_daily_cap, concurrent_filings_stop_exactly_at_the_cap};
    crate::on_both_stores!(
        with ["--daily-submission-cap", "3"]
        a_business_files_up_to_its_daily_cap,
        concurrent_filings_stop_exactly_at_the_cap,
    );
}
