//! Annual releases: publish, revise with a changelog, download byte-identical documents.

use redtape_domain::Role;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{timing, Reply, TestApp};

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

async fn publish(app: &TestApp, token: &str, year: &str) -> Reply {
    app.request(
        "POST",
        &format!("/v1/releases/{year}"),
        Some(token),
        &[],
        None,
    )
    .await
}

async fn a_published_year_stays_byte_identical_and_revisions_list_their_changes(app: &TestApp) {
    let business = app.token(Role::Business).await;
    let admin = app.token(Role::Admin).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(app.file("/v1/timings", &business, &timing()).await);
    }
    // A 2024 complaint in Hà Nội: a vn-63 cell and a vn-34 cell of another year.
    app.file("/v1/complaints", &business, &crate::helpers::complaint())
        .await;

    let first = publish(app, &admin, "2025").await;
    let view = first.expect(201);
    assert_eq!(
        first.header("location").as_deref(),
        Some("/v1/releases/2025/1")
    );
    assert_eq!(
        (view["year"].as_i64(), view["revision"].as_i64()),
        (Some(2025), Some(1))
    );
    // 2025 on vn-34, procedure 1.001612: province 79, the national cell and, the filer having
    // declared no profile, the group `unknown` of each of the four dimensions (§7).
    assert_eq!(view["cell_count"], 6);
    assert_eq!(view["changelog"], json!([]));
    assert_eq!(view["methodology_version"], "1.1");

    let csv1 = app.get("/v1/releases/2025/1.csv", None).await;
    assert_eq!(csv1.status, 200);
    assert_eq!(sha256(&csv1.body), view["sha256"].as_str().unwrap());
    assert_eq!(
        csv1.header("etag"),
        Some(format!("\"{}\"", view["sha256"].as_str().unwrap()))
    );
    assert!(csv1
        .header("cache-control")
        .is_some_and(|c| c.contains("immutable")));
    let text = String::from_utf8(csv1.body.clone()).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("geography,year,procedure_code,province_code,"),
        "{header}"
    );
    assert!(header.contains(",cbi,cbi_rank,"), "{header}");
    assert!(
        header.contains(",dimension,group,") && header.contains(",suppression,"),
        "{header}"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 6);
    assert!(
        rows[0].starts_with("vn-34,2025,1.001612,79,"),
        "{}",
        rows[0]
    );
    assert!(
        rows[1].starts_with("vn-34,2025,1.001612,all,Toàn quốc,,,5,"),
        "{}",
        rows[1]
    );
    assert!(
        rows[2].starts_with("vn-34,2025,1.001612,all,Toàn quốc,ethnic_minority_owned,unknown,5,"),
        "{}",
        rows[2]
    );
    for row in &rows {
        assert!(
            row.ends_with(",1.1,false"),
            "released figures are not provisional: {row}"
        );
    }

    let json1 = app.get("/v1/releases/2025/1.json", None).await;
    let doc: Value = serde_json::from_slice(&json1.body).unwrap();
    assert_eq!(doc["csv_sha256"], view["sha256"]);
    assert_eq!(doc["items"][0]["n"], 5);
    assert_eq!(doc["items"][0]["provisional"], false);
    // A CBI over one province: every scaled indicator is 100 (methodology §5).
    assert_eq!(doc["items"][0]["cbi"].as_f64(), Some(100.0));
    assert_eq!(doc["items"][0]["cbi_rank"], 1);

    // A conditional download is answered without a body.
    let etag = csv1.header("etag").unwrap();
    let again = app
        .request(
            "GET",
            "/v1/releases/2025/1.csv",
            None,
            &[("if-none-match", &etag)],
            None,
        )
        .await;
    assert_eq!((again.status, again.body.len()), (304, 0));

    // Nothing changed: no new revision.
    let same = publish(app, &admin, "2025").await;
    assert_eq!(same.problem(409)["type"], "/problems/release-unchanged");

    // A correction, then revision 2 with a changelog; revision 1 is untouched.
    let amend = json!({"reason": "wrong date", "changes": {"completed_on": "2025-09-12"}});
    app.post(
        &format!("/v1/submissions/{}/amendments", ids[0]),
        &business,
        &amend,
    )
    .await
    .expect(200);
    let second = publish(app, &admin, "2025").await.expect(201);
    assert_eq!(second["revision"], 2);
    let change = &second["changelog"][0];
    assert_eq!(
        (
            &change["geography"],
            &change["procedure_code"],
            &change["province_code"],
            &change["change"]
        ),
        (
            &json!("vn-34"),
            &json!("1.001612"),
            &json!("79"),
            &json!("changed")
        )
    );
    assert!(
        change["columns"]
            .as_array()
            .unwrap()
            .contains(&json!("p90_working_days")),
        "{change}"
    );
    assert_ne!(second["sha256"], view["sha256"]);

    // A rebuild of every read model changes nothing that was released.
    redtape_store::Projector::new(app.db.clone())
        .rebuild()
        .await
        .unwrap();
    let csv1_after = app.get("/v1/releases/2025/1.csv", None).await;
    assert_eq!(csv1_after.body, csv1.body);
    let json1_after = app.get("/v1/releases/2025/1.json", None).await;
    assert_eq!(json1_after.body, json1.body);

    let list = app.get("/v1/releases", None).await.expect(200);
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(
        (
            items[0]["revision"].as_i64(),
            items[0]["superseded"].as_bool()
        ),
        (Some(1), Some(true))
    );
    // The amended timing moved its province's cell, the national one and its four groups.
    assert_eq!(items[1]["changed_cells"], 6);
    let latest = app.get("/v1/releases/2025", None).await.expect(200);
    assert_eq!(latest["revision"], 2);
    let meta = app.get("/v1/releases/2025/1", None).await.expect(200);
    assert_eq!(meta["sha256"], view["sha256"]);

    // 2024 holds the complaint: its release has its province, national and four group cells
    // on vn-34, and the same on vn-63.
    let y2024 = publish(app, &admin, "2024").await.expect(201);
    assert_eq!(y2024["cell_count"], 12);
    let csv = app.get("/v1/releases/2024/1.csv", None).await;
    let text = String::from_utf8(csv.body).unwrap();
    let geographies: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(geographies, [["vn-34"; 6], ["vn-63"; 6]].concat());
}

async fn only_admins_publish_whole_years_with_data(app: &TestApp) {
    let officer = app.token(Role::Officer).await;
    let business = app.token(Role::Business).await;
    let admin = app.token(Role::Admin).await;
    publish(app, &officer, "2025").await.problem(403);
    publish(app, &business, "2025").await.problem(403);
    app.request("POST", "/v1/releases/2025", None, &[], None)
        .await
        .problem(401);
    for (year, rule) in [("2021", "no_data"), ("2019", "range"), ("twenty", "range")] {
        assert_eq!(
            publish(app, &admin, year).await.violations(),
            vec![("year".to_string(), rule.to_string())],
            "{year}"
        );
    }
    let this_year = chrono::Datelike::year(&chrono::Utc::now().date_naive());
    assert_eq!(
        publish(app, &admin, &this_year.to_string())
            .await
            .violations(),
        vec![("year".to_string(), "year_not_ended".to_string())]
    );
    app.get("/v1/releases/2025", None).await.problem(404);
    app.get("/v1/releases/2025/1.csv", None).await.problem(404);
    assert_eq!(
        app.get("/v1/releases/2025/first.csv", None)
            .await
            .violations(),
        vec![("file".to_string(), "format".to_string())]
    );
    assert_eq!(
        app.get("/v1/releases", None).await.expect(200),
        json!({"items": []})
    );
}

/// A year published under methodology 1.0 (its event as a 1.0 service stored it: the 26
/// columns of 1.0, no national or breakdown cell) keeps its documents byte for byte; the next
/// revision is computed under 1.1, says so, and its changelog names what moved: the province
/// cell's version, and the national and breakdown cells as added.
async fn a_year_released_under_1_0_stays_and_a_new_revision_is_1_1(app: &TestApp) {
    let business = app.token(Role::Business).await;
    let admin = app.token(Role::Admin).await;
    for _ in 0..5 {
        app.file("/v1/timings", &business, &timing()).await;
    }
    app.project().await;
    let header = "geography,year,procedure_code,province_code,province_name,n,n_timings,\
        n_pending,n_complaints,n_verified,suppressed,median_working_days,\
        median_working_days_ci_low,median_working_days_ci_high,p90_working_days,\
        median_scm_cost_vnd,median_scm_cost_ci_low_vnd,median_scm_cost_ci_high_vnd,\
        median_visits,on_time_rate,informal_payment_rate,cbi,cbi_rank,reforms_in_year,\
        methodology_version,provisional";
    let csv = format!(
        "{header}\nvn-34,2025,1.001612,79,Thành phố Hồ Chí Minh,5,5,0,0,0,false,6.0,6.0,6.0,\
         6.0,1705000.0,1705000.0,1705000.0,1.0,0.0,0.0,100.0,1,,1.0,false\n"
    );
    let json = "{\"methodology_version\": \"1.0\"}\n".to_string();
    redtape_store::Releases::new(&app.db)
        .publish(
            2025,
            redtape_domain::release::ReleaseCommand::Publish {
                year: 2025,
                revision: 1,
                methodology_version: "1.0".into(),
                generated_at: chrono::Utc::now(),
                csv: csv.clone(),
                json: json.clone(),
            },
            Default::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let second = publish(app, &admin, "2025").await.expect(201);
    assert_eq!(
        (
            second["revision"].as_i64(),
            second["methodology_version"].as_str()
        ),
        (Some(2), Some("1.1"))
    );
    let changes: Vec<(String, Option<String>, Option<String>, String)> = second["changelog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["province_code"].as_str().unwrap().to_string(),
                c["dimension"].as_str().map(str::to_string),
                c["group"].as_str().map(str::to_string),
                c["change"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let added = |d: &str| {
        (
            "all".to_string(),
            Some(d.to_string()),
            Some("unknown".to_string()),
            "added".to_string(),
        )
    };
    assert_eq!(
        changes,
        vec![
            ("79".into(), None, None, "changed".into()),
            ("all".into(), None, None, "added".into()),
            added("ethnic_minority_owned"),
            added("sector_section"),
            added("size_class"),
            added("woman_owned"),
        ]
    );
    assert_eq!(
        second["changelog"][0]["columns"],
        json!(["methodology_version"]),
        "only the version moved for 79"
    );
    let first = app.get("/v1/releases/2025/1.csv", None).await;
    assert_eq!(
        first.body,
        csv.as_bytes(),
        "revision 1 is byte for byte as published"
    );
    let first_json = app.get("/v1/releases/2025/1.json", None).await;
    assert_eq!(first_json.body, json.as_bytes());
    let meta = app.get("/v1/releases/2025/1", None).await.expect(200);
    assert_eq!(meta["methodology_version"], "1.0");
}

crate::on_both_stores!(
    a_published_year_stays_byte_identical_and_revisions_list_their_changes,
    only_admins_publish_whole_years_with_data,
    a_year_released_under_1_0_stays_and_a_new_revision_is_1_1,
);
