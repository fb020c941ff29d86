//! Several services on one store (`--projector on|off|auto`), in one process: on PostgreSQL
//! one replica projects and another takes over when it stops; API-only replicas serve
//! everything, including requests that wait for their own effect; SQLite admits one service.
//! (Processes killed with SIGKILL behind a load balancer: scripts/replicas-e2e.py.)

use std::time::{Duration, Instant};

use redtape_domain::Role;

use crate::helpers::{spawn_with, timing, Backend, TestApp};
use crate::procedures::{permit_timing, registration};

/// Waits until `check` holds, up to `within`; returns how long it took.
async fn until(within: Duration, mut check: impl AsyncFnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        if check().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// Whether the app's /readyz says it projects, and its lag in events.
async fn ready(app: &TestApp) -> (bool, i64) {
    let body = app.get("/readyz", None).await.expect(200);
    (
        body["projection"]["projecting"].as_bool().unwrap(),
        body["projection"]["lag_events"].as_i64().unwrap(),
    )
}

#[actix_web::test]
async fn one_replica_projects_and_another_takes_over_when_it_stops() {
    let Some(first) = spawn_with(Backend::Postgres, &[]).await else {
        return;
    };
    let second = first.replica(&[]).await.unwrap();
    let api_only = first.replica(&["--projector", "off"]).await.unwrap();
    assert!(first.projects(), "the first replica took the leader lock");
    assert!(!second.projects());
    assert!(!api_only.projects());
    assert!(ready(&first).await.0);
    assert!(!ready(&second).await.0);

    // Filed through a replica that does not project, projected by the leader, woken by
    // PostgreSQL's NOTIFY: every replica sees the lag go back to 0 within a second.
    let token = first.token(Role::Business).await;
    let id = api_only.file("/v1/timings", &token, &timing()).await;
    let projected = until(Duration::from_secs(2), async || {
        ready(&second).await.1 == 0 && ready(&api_only).await.1 == 0
    })
    .await;
    assert!(
        projected.is_some(),
        "the leader projected a follower's filing"
    );
    let row = redtape_store::observations::get(&second.db, &id)
        .await
        .unwrap();
    assert!(row.is_some());

    // A request that must see its own effect, on a replica that does not project, waits for
    // the leader: a registered procedure can be filed about at once.
    let officer = first.token(Role::Officer).await;
    api_only
        .post("/v1/procedures", &officer, &registration())
        .await
        .expect(201);
    api_only.file("/v1/timings", &token, &permit_timing()).await;

    // The leader stops; the competing replica takes over within a few seconds (the API-only
    // one never does) and projects what is filed next.
    let store = first.stop_keeping_store().await;
    let took_over = until(Duration::from_secs(5), async || second.projects()).await;
    assert!(took_over.is_some(), "no replica took over within 5 s");
    assert!(!api_only.projects());
    let id = api_only.file("/v1/timings", &token, &timing()).await;
    let projected = until(Duration::from_secs(2), async || {
        ready(&api_only).await.1 == 0
    })
    .await;
    assert!(projected.is_some(), "the new leader projects");
    assert!(redtape_store::observations::get(&second.db, &id)
        .await
        .unwrap()
        .is_some());
    api_only.stop().await;
    second.stop().await;
    drop(store);
}

#[actix_web::test]
async fn the_embedded_store_admits_one_service() {
    let Some(app) = spawn_with(Backend::Sqlite, &[]).await else {
        return;
    };
    assert!(app.projects(), "auto projects on SQLite");
    let refused = app
        .replica(&[])
        .await
        .err()
        .expect("a second service is refused");
    let message = refused.to_string();
    assert!(
        message.contains("another redtape process is already serving")
            && message.contains("redtape.sqlite"),
        "{message}"
    );
    let off = app
        .replica(&["--projector", "off"])
        .await
        .err()
        .expect("off is refused");
    assert!(off.to_string().contains("needs PostgreSQL"), "{off}");
    // The first still serves; once it stops, the file is free again.
    app.get("/readyz", None).await.expect(200);
    let url = app.url.clone();
    let store = app.stop_keeping_store().await;
    let settings = crate::helpers::settings_on(&url, &[]).unwrap();
    let (running, server) = redtape::start(&settings).await.unwrap();
    actix_web::rt::spawn(server);
    running.stop().await;
    drop(store);
}

#[actix_web::test]
async fn replicas_on_postgresql_share_the_rate_limit_and_the_daily_cap() {
    let limits = [
        "--rate-limit-per-minute",
        "5",
        "--daily-submission-cap",
        "3",
    ];
    let Some(first) = spawn_with(Backend::Postgres, &limits).await else {
        return;
    };
    let second = first.replica(&limits).await.unwrap();

    // Five requests a minute for a token, whichever replica answers.
    let reader = first.token(Role::Business).await;
    let missing = format!("/v1/submissions/{}", uuid::Uuid::now_v7());
    for (i, app) in [&first, &second, &first, &second, &first]
        .iter()
        .enumerate()
    {
        let reply = app.get(&missing, Some(&reader)).await;
        assert_eq!(reply.status, 404, "request {i}");
        assert_eq!(
            reply
                .header("ratelimit")
                .unwrap_or_default()
                .split(";t=")
                .next(),
            Some(format!("\"per-token\";r={}", 4 - i).as_str()),
            "request {i} sees the quota the other replica used"
        );
    }
    let refused = second.get(&missing, Some(&reader)).await;
    refused.problem(429);
    let wait: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((11..=12).contains(&wait), "{wait}");

    // Three filings a day for a business, whichever replica files them; the count survives
    // the replica that took them.
    let filer = first.token(Role::Business).await;
    first.file("/v1/timings", &filer, &timing()).await;
    second.file("/v1/timings", &filer, &timing()).await;
    first.file("/v1/timings", &filer, &timing()).await;
    let store = first.stop_keeping_store().await;
    let over = second.post("/v1/timings", &filer, &timing()).await;
    assert!(over.problem(429)["detail"]
        .as_str()
        .unwrap()
        .contains("filed 3 submissions today"),);
    second.stop().await;
    drop(store);
}

#[actix_web::test]
async fn replicas_take_a_busy_tokens_quota_in_chunks_and_never_exceed_it() {
    // 120 a minute: replicas take 6 at a time (a twentieth) and spend them locally.
    let limits = ["--rate-limit-per-minute", "120"];
    let Some(first) = spawn_with(Backend::Postgres, &limits).await else {
        return;
    };
    let second = first.replica(&limits).await.unwrap();
    let token = first.token(Role::Business).await;
    let missing = format!("/v1/submissions/{}", uuid::Uuid::now_v7());
    let started = Instant::now();
    // The first request took a whole chunk from the database.
    assert_eq!(first.get(&missing, Some(&token)).await.status, 404);
    let taken: Option<i32> = redtape_store::on_pool!(&first.db, pool => sqlx::query_scalar(
        "SELECT max(taken) FROM rate_limits")
        .fetch_one(pool).await)
    .unwrap();
    assert_eq!(taken, Some(6));
    let mut allowed = 1;
    let mut refused = 0;
    for i in 1..200 {
        let app = if i % 2 == 0 { &first } else { &second };
        match app.get(&missing, Some(&token)).await.status {
            404 => allowed += 1,
            429 => refused += 1,
            other => panic!("request {i}: {other}"),
        }
    }
    // One request a half-second comes back while the test runs.
    let replenished = (started.elapsed().as_secs_f64() * 2.0).ceil() as i32;
    assert_eq!(allowed + refused, 200);
    assert!(
        allowed <= 120 + replenished,
        "{allowed} allowed: more than the quota ({replenished} replenished)"
    );
    // A replica may be refused while the other still holds part of a chunk: at most 5 early.
    assert!(allowed >= 120 - 5, "{allowed} allowed");
    second.stop().await;
    first.stop().await;
}
