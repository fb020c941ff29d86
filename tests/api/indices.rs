//! Index cells, maintained by the projector as observations change (methodology §3).

use redtape_domain::Role;
use redtape_store::cells::{query, CellRecord};
use serde_json::json;

use crate::helpers::{timing, TestApp};

async fn cell(
    app: &TestApp,
    geography: &str,
    year: i32,
    procedure: &str,
    province: &str,
) -> Option<CellRecord> {
    app.project().await;
    query(
        &app.db,
        geography,
        Some(year),
        Some(procedure),
        Some(province),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"))
    .into_iter()
    .next()
}

/// Six timings of business registration (limit 3 working days) in Hồ Chí Minh City,
/// submitted Mon 2025-09-08 and completed 1, 2, 4, 5, 7 and 10 working days later (no
/// holidays in 8-22 September 2025). By hand:
///   days sorted 1 2 4 5 7 10: median h = 2.5 -> 4 + 0.5 (5 - 4) = 4.5;
///   p90 h = 4.5 -> 7 + 0.5 (10 - 7) = 8.5; on time (<= 3): 1 and 2 -> 2/6;
///   SCM cost each = 50,000 + 1,500,000 + 6.5 h x 23,800 VND/h (2025) = 1,704,700;
///   visits 1 each; no unofficial payments -> informal rate 0.
async fn cells_follow_filings_withdrawals_and_amendments(app: &TestApp) {
    let token = app.token(Role::Business).await;
    let completions = [
        "2025-09-09",
        "2025-09-10",
        "2025-09-12",
        "2025-09-15",
        "2025-09-17",
        "2025-09-22",
    ];
    let mut ids = Vec::new();
    for done in completions {
        let mut body = timing();
        body["submitted_on"] = "2025-09-08".into();
        body["completed_on"] = done.into();
        let reply = app.post("/v1/timings", &token, &body).await.expect(201);
        ids.push(reply["id"].as_str().unwrap_or_default().to_string());
    }
    let c = cell(app, "vn-34", 2025, "1.001612", "79")
        .await
        .unwrap_or_else(|| panic!("no cell"));
    assert_eq!(
        (c.n, c.n_timings, c.n_pending, c.n_complaints, c.suppressed),
        (6, 6, 0, 0, 0)
    );
    assert_eq!((c.median_days, c.p90_days), (Some(4.5), Some(8.5)));
    assert_eq!(c.on_time_rate, Some(2.0 / 6.0));
    assert_eq!(c.median_cost, Some(1_704_700.0));
    assert_eq!(
        (c.median_visits, c.informal_payment_rate),
        (Some(1.0), Some(0.0))
    );
    let ci = (
        c.median_days_ci_low.unwrap_or(-1.0),
        c.median_days_ci_high.unwrap_or(-1.0),
    );
    assert!(
        ci.0 >= 1.0 && ci.0 <= 4.5 && ci.1 >= 4.5 && ci.1 <= 10.0,
        "{ci:?}"
    );
    assert_eq!(c.methodology_version, "1.0");

    // Withdraw the slowest: n = 5 (still published), days 1 2 4 5 7 -> median 4.
    app.post(
        &format!("/v1/submissions/{}/withdrawal", ids[5]),
        &token,
        &json!({}),
    )
    .await
    .expect(200);
    let c = cell(app, "vn-34", 2025, "1.001612", "79")
        .await
        .unwrap_or_else(|| panic!("no cell"));
    assert_eq!((c.n, c.suppressed, c.median_days), (5, 0, Some(4.0)));

    // Move one to Hà Nội by amendment: HCMC drops to 4 (suppressed: counts only), Hà Nội has 1.
    let amend = json!({"reason": "wrong province", "changes": {"province_code": "01"}});
    app.post(
        &format!("/v1/submissions/{}/amendments", ids[0]),
        &token,
        &amend,
    )
    .await
    .expect(200);
    let hcmc = cell(app, "vn-34", 2025, "1.001612", "79")
        .await
        .unwrap_or_else(|| panic!("no cell"));
    assert_eq!((hcmc.n, hcmc.suppressed), (4, 1));
    assert_eq!(
        (hcmc.median_days, hcmc.on_time_rate, hcmc.median_cost),
        (None, None, None)
    );
    let hanoi = cell(app, "vn-34", 2025, "1.001612", "01")
        .await
        .unwrap_or_else(|| panic!("no Hà Nội cell"));
    assert_eq!((hanoi.n, hanoi.suppressed), (1, 1));

    // Incremental cells equal a full recompute.
    let before = query(&app.db, "vn-34", None, None, None)
        .await
        .unwrap_or_default();
    redtape_store::Projector::new(app.db.clone())
        .rebuild()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        query(&app.db, "vn-34", None, None, None)
            .await
            .unwrap_or_default(),
        before
    );
}

/// An observation recorded on the old map counts in its vn-34 successor's cell and in its
/// own vn-63 cell.
async fn old_map_observations_count_on_both_geographies(app: &TestApp) {
    let token = app.token(Role::Business).await;
    let mut body = timing();
    body["province_code"] = "27".into(); // old Bắc Ninh, merged into 24 on 2025-07-01
    body["submitted_on"] = "2024-03-04".into();
    body["completed_on"] = "2024-03-06".into();
    app.post("/v1/timings", &token, &body).await.expect(201);
    let new_map = cell(app, "vn-34", 2024, "1.001612", "24")
        .await
        .unwrap_or_else(|| panic!("no vn-34 cell"));
    let old_map = cell(app, "vn-63", 2024, "1.001612", "27")
        .await
        .unwrap_or_else(|| panic!("no vn-63 cell"));
    assert_eq!((new_map.n, old_map.n), (1, 1));
    assert!(
        cell(app, "vn-63", 2024, "1.001612", "24").await.is_none(),
        "old code 24 was Bắc Giang"
    );
}

/// The public endpoint: rounded figures, three formats, named filter errors.
async fn the_public_endpoint_serves_rounded_cells_in_three_formats(app: &TestApp) {
    let token = app.token(Role::Business).await;
    for done in [
        "2025-09-09",
        "2025-09-10",
        "2025-09-12",
        "2025-09-15",
        "2025-09-17",
        "2025-09-22",
    ] {
        let mut body = timing();
        body["submitted_on"] = "2025-09-08".into();
        body["completed_on"] = done.into();
        app.post("/v1/timings", &token, &body).await.expect(201);
    }
    app.project().await;
    let page = app
        .get("/v1/indices?year=2025&procedure=1.001612&province=79", None)
        .await
        .expect(200);
    assert_eq!(
        (
            page["methodology_version"].as_str(),
            page["provisional"].as_bool()
        ),
        (Some("1.0"), Some(true))
    );
    let item = &page["items"][0];
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(item["province_name"], "Thành phố Hồ Chí Minh");
    assert_eq!(
        (item["n"].as_i64(), item["suppressed"].as_bool()),
        (Some(6), Some(false))
    );
    assert_eq!(item["median_working_days"], 4.5);
    assert_eq!(item["p90_working_days"], 8.5);
    // 1,704,700 VND rounds to the nearest 1,000; 2/6 to 0.001.
    assert_eq!(item["median_scm_cost_vnd"], 1_705_000.0);
    assert_eq!(item["on_time_rate"], 0.333);
    assert_eq!(item["provisional"], true);

    let csv = app
        .request("GET", "/v1/indices?year=2025&format=csv", None, &[], None)
        .await;
    assert_eq!(csv.status, 200);
    assert_eq!(
        csv.header("content-type").as_deref(),
        Some("text/csv; charset=utf-8")
    );
    let text = String::from_utf8_lossy(&csv.body).to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("geography,year,procedure_code,province_code,province_name,n,"));
    assert!(
        lines[1].starts_with("vn-34,2025,1.001612,79,Thành phố Hồ Chí Minh,6,6,0,0,false,4.5,"),
        "{}",
        lines[1]
    );
    // No match still gives the header, with the same columns as a non-empty answer.
    let empty = app
        .request("GET", "/v1/indices?year=2020&format=csv", None, &[], None)
        .await;
    assert_eq!(
        String::from_utf8_lossy(&empty.body).lines().next(),
        Some(lines[0])
    );

    let nd = app
        .request(
            "GET",
            "/v1/indices?year=2025",
            None,
            &[("accept", "application/x-ndjson")],
            None,
        )
        .await;
    assert_eq!(
        nd.header("content-type").as_deref(),
        Some("application/x-ndjson")
    );
    let first: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&nd.body)
            .lines()
            .next()
            .unwrap_or(""),
    )
    .unwrap_or_default();
    assert_eq!(first["median_working_days"], 4.5);

    for (query, parameter, rule) in [
        ("year=1999", "year", "range"),
        ("year=twenty", "year", "range"),
        ("geography=vn-99", "geography", "one_of"),
        ("procedure=1.0", "procedure", "format"),
        ("province=27", "province", "unknown_province"),
        ("format=xml", "format", "one_of"),
    ] {
        let reply = app.get(&format!("/v1/indices?{query}"), None).await;
        assert_eq!(
            reply.violations(),
            vec![(parameter.to_string(), rule.to_string())],
            "{query}"
        );
    }
    // 27 exists on the old map.
    app.get("/v1/indices?geography=vn-63&province=27", None)
        .await
        .expect(200);
}

crate::on_both_stores!(
    the_public_endpoint_serves_rounded_cells_in_three_formats,
    cells_follow_filings_withdrawals_and_amendments,
    old_map_observations_count_on_both_geographies,
);
