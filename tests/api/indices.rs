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
    assert_eq!(c.methodology_version, "1.1");

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
        (Some("1.1"), Some(true))
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
    // The province and the national cell, which holds the same six observations.
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with(
        "geography,year,procedure_code,province_code,province_name,dimension,group,n,"
    ));
    assert!(
        lines[1]
            .starts_with("vn-34,2025,1.001612,79,Thành phố Hồ Chí Minh,,,6,6,0,0,0,false,,4.5,"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with("vn-34,2025,1.001612,all,Toàn quốc,,,6,6,0,0,0,false,,4.5,"),
        "{}",
        lines[2]
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

    app.expect_parameter_violations(
        "/v1/indices",
        None,
        &[
            ("year=1999", "year", "range"),
            ("year=twenty", "year", "range"),
            ("geography=vn-99", "geography", "one_of"),
            ("procedure=1.0", "procedure", "format"),
            ("province=27", "province", "unknown_province"),
            ("format=xml", "format", "one_of"),
        ],
    )
    .await;
    // 27 exists on the old map.
    app.get("/v1/indices?geography=vn-63&province=27", None)
        .await
        .expect(200);
}

async fn file_run(
    app: &TestApp,
    token: &str,
    procedure: &str,
    province: &str,
    submitted: &str,
    completed: &str,
    count: usize,
) {
    for _ in 0..count {
        let mut body = timing();
        body["procedure_code"] = procedure.into();
        body["province_code"] = province.into();
        body["submitted_on"] = submitted.into();
        body["completed_on"] = completed.into();
        app.post("/v1/timings", token, &body).await.expect(201);
    }
}

async fn reform(app: &TestApp, code: &str, from: (i32, u32, u32), days: u16) {
    use redtape_domain::procedure_terms::{ProcedureCommand, Terms};
    let procedures =
        redtape_store::Procedures::new(&app.db, std::sync::Arc::new(tokio::sync::Notify::new()));
    let terms = Terms {
        effective_from: chrono::NaiveDate::from_ymd_opt(from.0, from.1, from.2).unwrap_or_default(),
        statutory_working_days: days,
        official_fee_vnd: Some(0),
        legal_basis: "Test reform".into(),
    };
    procedures
        .execute(
            code,
            ProcedureCommand::Reform {
                terms,
                at: chrono::Utc::now(),
            },
            Default::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    app.project().await;
}

/// By hand: three provinces, five timings each, submitted Mon 2025-09-08; A (79) done in 2
/// working days, B (01) in 4, C (48) in 6; equal costs, no informal payments; limit 3.
///   s1 (days 2, 4, 6):      A 100, B 50, C 0
///   s2 (equal costs):       100 for all (equal bounds)
///   s3 (all 0 informal):    100 for all
///   s4 (1 - on-time: 0,1,1): A 100, B 0, C 0
///   CBI A = 30 + 30 + 20 + 20 = 100; B = 15 + 30 + 20 + 0 = 65; C = 0 + 30 + 20 + 0 = 50.
/// D (31) and E (04) have one timing each: suppressed, listed last, no CBI, no rank. (With D
/// alone suppressed, §4 would suppress the smallest published province as well, B by its
/// lower code among equals: `tests/api/disclosure.rs` covers that.)
async fn rankings_composites_and_trends(app: &TestApp) {
    let token = app.token(Role::Business).await;
    file_run(app, &token, "1.001612", "79", "2025-09-08", "2025-09-10", 5).await;
    file_run(app, &token, "1.001612", "01", "2025-09-08", "2025-09-12", 5).await;
    file_run(app, &token, "1.001612", "48", "2025-09-08", "2025-09-16", 5).await;
    file_run(app, &token, "1.001612", "31", "2025-09-08", "2025-09-16", 1).await;
    file_run(app, &token, "1.001612", "04", "2025-09-08", "2025-09-16", 1).await;
    // A year earlier in 79: 4 working days (9-13 September 2024 has no holiday).
    file_run(app, &token, "1.001612", "79", "2024-09-09", "2024-09-13", 5).await;
    app.project().await;

    let ranking = app
        .get("/v1/indices/rankings?year=2025&procedure=1.001612", None)
        .await
        .expect(200);
    let rows: Vec<(String, Option<i64>, Option<f64>)> = ranking["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| {
                    (
                        i["province_code"].as_str().unwrap_or("").to_string(),
                        i["rank"].as_i64(),
                        i["cbi"].as_f64(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        rows,
        vec![
            ("79".to_string(), Some(1), Some(100.0)),
            ("01".to_string(), Some(2), Some(65.0)),
            ("48".to_string(), Some(3), Some(50.0)),
            ("04".to_string(), None, None),
            ("31".to_string(), None, None),
        ]
    );
    assert_eq!(ranking["items"][1]["score_days"], 50.0);
    assert_eq!(ranking["items"][3]["suppressed"], true);
    // Every cell carries the same CBI and rank (kept by the projector per group), also when
    // it is read alone.
    for (province, rank, cbi) in &rows {
        let one = app
            .get(
                &format!("/v1/indices?year=2025&procedure=1.001612&province={province}"),
                None,
            )
            .await
            .expect(200);
        let item = &one["items"][0];
        assert_eq!(
            (item["cbi_rank"].as_i64(), item["cbi"].as_f64()),
            (*rank, *cbi),
            "{province}"
        );
    }

    let composites = app
        .get("/v1/indices/provinces?year=2025", None)
        .await
        .expect(200);
    let rows: Vec<(String, f64, i64)> = composites["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| {
                    (
                        i["province_code"].as_str().unwrap_or("").to_string(),
                        i["mean_cbi"].as_f64().unwrap_or(-1.0),
                        i["procedures"].as_i64().unwrap_or(-1),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        rows,
        vec![
            ("79".to_string(), 100.0, 1),
            ("01".to_string(), 65.0, 1),
            ("48".to_string(), 50.0, 1)
        ]
    );

    // A reform from 2025-07-01 (limit 2), registered elsewhere; the server picks it up.
    reform(app, "1.001612", (2025, 7, 1), 2).await;
    let mut trend = serde_json::Value::Null;
    for _ in 0..40 {
        trend = app
            .get("/v1/indices/trends?procedure=1.001612&province=79", None)
            .await
            .expect(200);
        if trend["items"][1]["reforms"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
        {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let years: Vec<i64> = trend["items"]
        .as_array()
        .map(|i| i.iter().filter_map(|p| p["year"].as_i64()).collect())
        .unwrap_or_default();
    assert_eq!(years, vec![2024, 2025]);
    let y2025 = &trend["items"][1];
    // 4 working days in 2024, 2 in 2025: -2 days, -50.0 %.
    assert_eq!(
        (
            y2025["median_working_days"].as_f64(),
            y2025["median_working_days_change"].as_f64(),
            y2025["median_working_days_change_pct"].as_f64()
        ),
        (Some(2.0), Some(-2.0), Some(-50.0))
    );
    assert_eq!(y2025["reforms"][0]["effective_from"], "2025-07-01");
    assert_eq!(y2025["reforms"][0]["statutory_working_days"], 2);
    assert_eq!(
        trend["items"][0]["median_working_days_change"],
        serde_json::Value::Null,
        "no 2023 to compare with"
    );
    assert_eq!(trend["items"][0]["reforms"], serde_json::json!([]));

    for (path, parameter, rule) in [
        (
            "/v1/indices/rankings?procedure=1.001612",
            "year",
            "required",
        ),
        ("/v1/indices/rankings?year=2025", "procedure", "required"),
        ("/v1/indices/provinces", "year", "required"),
        (
            "/v1/indices/trends?procedure=1.001612",
            "province",
            "required",
        ),
        (
            "/v1/indices/trends?procedure=1.001612&province=99",
            "province",
            "unknown_province",
        ),
    ] {
        assert_eq!(
            app.get(path, None).await.violations(),
            vec![(parameter.to_string(), rule.to_string())],
            "{path}"
        );
    }
}

/// A reform changes the limit in force, so the projector recomputes the procedure's cells:
/// five timings of 3 working days are on time under a 3-day limit, late under 2.
async fn a_change_in_one_province_reranks_the_others(app: &TestApp) {
    let token = app.token(Role::Business).await;
    // 79: 2 working days; 01: 4.
    file_run(app, &token, "1.001612", "79", "2025-09-08", "2025-09-10", 5).await;
    file_run(app, &token, "1.001612", "01", "2025-09-08", "2025-09-12", 5).await;
    app.project().await;
    let rank = |province: &'static str| async move {
        let one = app
            .get(
                &format!("/v1/indices?year=2025&procedure=1.001612&province={province}"),
                None,
            )
            .await
            .expect(200);
        one["items"][0]["cbi_rank"].as_i64()
    };
    assert_eq!((rank("79").await, rank("01").await), (Some(1), Some(2)));
    // Seven slow runs in 79 (10 working days) lift its median above 01's; 01's own cell
    // did not change, yet its rank does.
    file_run(app, &token, "1.001612", "79", "2025-09-08", "2025-09-22", 7).await;
    app.project().await;
    assert_eq!((rank("79").await, rank("01").await), (Some(2), Some(1)));
}

async fn a_reform_recomputes_the_procedures_cells(app: &TestApp) {
    let token = app.token(Role::Business).await;
    file_run(app, &token, "2.001199", "79", "2025-09-08", "2025-09-11", 5).await;
    let before = cell(app, "vn-34", 2025, "2.001199", "79")
        .await
        .unwrap_or_else(|| panic!("no cell"));
    assert_eq!(before.on_time_rate, Some(1.0));
    reform(app, "2.001199", (2025, 1, 1), 2).await;
    let after = cell(app, "vn-34", 2025, "2.001199", "79")
        .await
        .unwrap_or_else(|| panic!("no cell"));
    assert_eq!(after.on_time_rate, Some(0.0));
    assert_eq!(after.median_days, before.median_days);
}

crate::on_both_stores!(
    rankings_composites_and_trends,
    a_change_in_one_province_reranks_the_others,
    a_reform_recomputes_the_procedures_cells,
    the_public_endpoint_serves_rounded_cells_in_three_formats,
    cells_follow_filings_withdrawals_and_amendments,
    old_map_observations_count_on_both_geographies,
);
