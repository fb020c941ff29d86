//! `/metrics` over HTTP: OpenMetrics text whose series move with the traffic.
//!
//! The registry is the process's, and the other tests of this binary run beside these, so a
//! check is that a series moved by at least what this test did, never an exact total; what
//! must never appear (a raw id in a label) is checked exactly.

use std::collections::HashMap;

use redtape_domain::Role;
use serde_json::json;

use crate::helpers::{timing, TestApp};

/// Every sample of a scrape, by its name and labels as printed.
async fn scrape(app: &TestApp) -> (String, HashMap<String, f64>) {
    let reply = app.get("/metrics", None).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let text = String::from_utf8(reply.body.to_vec()).unwrap();
    assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    let samples = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect();
    (text, samples)
}

fn value(samples: &HashMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

async fn series_move_with_requests_filings_and_the_projector(app: &TestApp) {
    let token = app.token(Role::Business).await;
    let (_, before) = scrape(app).await;

    let id = app.file("/v1/timings", &token, &timing()).await;
    let mut bad = timing();
    bad["costs"]["official_fees"] = json!(-5);
    app.post("/v1/timings", &token, &bad).await.problem(422);
    app.get(&format!("/v1/submissions/{id}"), Some(&token))
        .await
        .expect(200);
    app.project().await;

    let (text, after) = scrape(app).await;
    let moved = |series: &str| value(&after, series) - value(&before, series);
    assert!(
        moved(
            r#"redtape_http_requests_total{route="/v1/submissions/{id}",method="GET",status="200"}"#
        ) >= 1.0,
        "{text}"
    );
    assert!(
        moved(
            r#"redtape_http_request_duration_seconds_count{route="/v1/timings",method="POST",status="201"}"#
        ) >= 1.0
    );
    assert!(
        moved(r#"redtape_filings_total{operation="timing",outcome="accepted",problem="",rule=""}"#)
            >= 1.0,
        "{text}"
    );
    assert!(
        moved(
            r#"redtape_filings_total{operation="timing",outcome="refused",problem="validation-failed",rule="range"}"#
        ) >= 1.0,
        "{text}"
    );
    assert!(moved("redtape_projector_events_total") >= 1.0, "{text}");
    assert!(moved("redtape_projector_batch_duration_seconds_count") >= 1.0);
    assert!(moved("redtape_cell_refresh_duration_seconds_count") >= 1.0);
    assert!(moved("redtape_cells_written_total") >= 1.0);
    // Read at scrape time from this app's store: caught up, and the pool is described.
    assert_eq!(value(&after, "redtape_projector_lag_events"), 0.0, "{text}");
    assert_eq!(value(&after, "redtape_store_up"), 1.0);
    assert!(value(&after, "redtape_db_pool_max_connections") >= 1.0);
    assert!(value(&after, r#"redtape_db_pool_connections{state="idle"}"#) >= 0.0);
    assert!(value(&after, "redtape_process_resident_memory_bytes") > 1e6);
    // The build's labels (the store label is whichever app of this process set it last).
    assert!(
        text.contains("redtape_build_info{version=\"0.1.0\",methodology_version=\"1.1\",store=\""),
        "{text}"
    );
    // Route templates only: no id in any label.
    assert!(!text.contains(&id), "a submission id leaked into a label");
    app.get("/no/such/path/12345", None).await.problem(404);
    let (text, _) = scrape(app).await;
    assert!(text.contains(r#"route="unmatched""#));
    assert!(!text.contains("/no/such/path"));
}

async fn refusals_by_the_rate_limit_are_counted(app: &TestApp) {
    let token = app.token(Role::Business).await;
    let (_, before) = scrape(app).await;
    let missing = format!("/v1/submissions/{}", uuid::Uuid::now_v7());
    for _ in 0..2 {
        app.get(&missing, Some(&token)).await.problem(404);
    }
    app.get(&missing, Some(&token)).await.problem(429);
    let (_, after) = scrape(app).await;
    let series = r#"redtape_limit_refusals_total{limit="rate"}"#;
    assert!(value(&after, series) - value(&before, series) >= 1.0);
}

crate::on_both_stores!(series_move_with_requests_filings_and_the_projector);

mod limited {
    use super::refusals_by_the_rate_limit_are_counted;
    crate::on_both_stores!(
        with ["--rate-limit-per-minute", "2"]
        refusals_by_the_rate_limit_are_counted,
    );
}
