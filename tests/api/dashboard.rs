//! The dashboard over HTTP: its numbers are the API's, in both languages, with nothing
//! loaded from elsewhere. (The browser test, scripts/dashboard-e2e, drives it in Chromium.)

use redtape_domain::Role;
use serde_json::{json, Value};

use crate::helpers::{timing, TestApp};

/// The text of every `<td data-figure=...>` of the row of `province` in the table of
/// `procedure`, by figure name.
fn row_figures(html: &str, procedure: &str, province: &str) -> Vec<(String, String)> {
    let table = html
        .split(&format!("<table data-procedure=\"{procedure}\">"))
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .unwrap_or_else(|| panic!("no table for {procedure}"));
    let row = table
        .split(&format!("data-province=\"{province}\">"))
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .unwrap_or_else(|| panic!("no row for {province}"));
    row.split("data-figure=\"")
        .skip(1)
        .map(|f| {
            let (name, rest) = f.split_once('"').unwrap();
            let value = rest.trim_start_matches('>').split('<').next().unwrap();
            (name.to_string(), value.to_string())
        })
        .collect()
}

fn shown(v: &Value) -> String {
    match v.as_f64() {
        None => "—".into(),
        Some(f) if f.fract() == 0.0 => {
            let digits = (f as i64).to_string();
            let mut out = String::new();
            for (i, c) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i).is_multiple_of(3) {
                    out.push(',');
                }
                out.push(c);
            }
            out
        }
        Some(f) => format!("{f:.1}"),
    }
}

async fn the_dashboard_shows_the_apis_numbers(app: &TestApp) {
    let token = app.token(Role::Business).await;
    for (province, completed) in [
        ("79", "2025-09-10"),
        ("01", "2025-09-12"),
        ("48", "2025-09-16"),
    ] {
        for _ in 0..5 {
            let mut body = timing();
            body["province_code"] = json!(province);
            body["completed_on"] = json!(completed);
            app.post("/v1/timings", &token, &body).await.expect(201);
        }
    }
    // Two in 2024, one province: a suppressed cell.
    for _ in 0..2 {
        let mut body = timing();
        body["submitted_on"] = json!("2024-09-09");
        body["completed_on"] = json!("2024-09-13");
        app.post("/v1/timings", &token, &body).await.expect(201);
    }
    app.project().await;

    let page = app.get("/?year=2025", None).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    let html = String::from_utf8(page.body).unwrap();
    assert!(
        html.starts_with("<!DOCTYPE html><html lang=\"vi\">"),
        "{}",
        &html[..80]
    );
    assert!(html.contains("Đăng ký thành lập doanh nghiệp (1.001612)"));
    // Nothing is fetched from another site: no absolute URL anywhere in the page.
    assert!(!html.contains("http://") && !html.contains("https://"));
    let api = app
        .get("/v1/indices?year=2025&procedure=1.001612", None)
        .await
        .expect(200);
    let provinces = api["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["province_code"] != "all");
    for cell in provinces {
        let province = cell["province_code"].as_str().unwrap();
        let figures = row_figures(&html, "1.001612", province);
        let expected = vec![
            ("cbi".to_string(), shown(&cell["cbi"])),
            (
                "median_working_days".to_string(),
                shown(&cell["median_working_days"]),
            ),
            ("limit".to_string(), "3".to_string()),
            (
                "median_scm_cost_vnd".to_string(),
                shown(&cell["median_scm_cost_vnd"]),
            ),
            ("n".to_string(), cell["n"].to_string()),
        ];
        assert_eq!(figures, expected, "{province}");
    }
    // The year at a glance: the national row of 1.001612 is the national trend's 2025 point
    // (15 timings from 2 September, a holiday: 6, 8 and 10 working days, five each: median
    // 8.0, over the limit of 3, marked "!"; no change, 2024's national cell being suppressed).
    let national = html
        .split("data-table=\"national\"")
        .nth(1)
        .and_then(|t| t.split("data-procedure=\"1.001612\"").nth(1))
        .and_then(|r| r.split("</tr>").next())
        .expect("a national row for 1.001612");
    let trend = app
        .get("/v1/indices/trends?procedure=1.001612&province=all", None)
        .await
        .expect(200);
    let point = &trend["items"][1];
    assert_eq!(
        (point["year"].as_i64(), point["n"].as_i64()),
        (Some(2025), Some(15))
    );
    assert!(national.contains("data-figure=\"n\">15<"), "{national}");
    assert!(
        national.contains("data-figure=\"median_working_days\">8.0<span class=\"over\""),
        "{national}"
    );
    assert!(national.contains("data-figure=\"limit\">3<"), "{national}");
    assert!(
        national.contains("data-figure=\"median_working_days_change\">—<"),
        "{national}"
    );
    assert_eq!(point["median_working_days"], 8.0);
    // Every province has a tile; the three with figures carry their composite.
    assert_eq!(html.matches("<g data-province=").count(), 34);
    assert!(html.contains("<g data-province=\"79\" data-mean-cbi="));
    // Ranked best first: 79 (6 working days) before 01 (8) before 48 (10).
    let ranking = html
        .split("<table data-procedure=\"1.001612\">")
        .nth(1)
        .unwrap();
    let order: Vec<usize> = ["79", "01", "48"]
        .iter()
        .map(|p| ranking.find(&format!("data-province=\"{p}\">")).unwrap())
        .collect();
    assert!(order[0] < order[1] && order[1] < order[2], "{order:?}");

    // Another year, in English: the suppressed cell is marked and shows no statistics.
    let en = String::from_utf8(app.get("/?year=2024&lang=en", None).await.body).unwrap();
    assert!(en.contains("<html lang=\"en\">"));
    assert!(en.contains("Business registration (new enterprise) (1.001612)"));
    assert!(
        en.contains("<option value=\"2024\" selected>2024</option>"),
        "year picker"
    );
    let figures = row_figures(&en, "1.001612", "79");
    assert_eq!(figures[0], ("cbi".to_string(), "—".to_string()));
    assert_eq!(figures[4], ("n".to_string(), "2".to_string()));
    assert!(en.contains("(suppressed)"));
    // The trend of the chosen procedure and province, with the API's numbers.
    let trend = String::from_utf8(
        app.get("/?year=2025&procedure=1.001612&province=79&lang=en", None)
            .await
            .body,
    )
    .unwrap();
    assert!(trend.contains("<svg viewBox=\"0 0 640 260\" role=\"img\""));
    let api = app
        .get("/v1/indices/trends?procedure=1.001612&province=79", None)
        .await
        .expect(200);
    let last = api["items"].as_array().unwrap().last().unwrap();
    let row = trend
        .split("data-table=\"trend\"")
        .nth(1)
        .and_then(|t| t.split(&format!("data-year=\"{}\">", last["year"])).nth(1))
        .unwrap();
    assert!(
        row.contains(&format!(
            "data-figure=\"median_working_days\">{}<",
            shown(&last["median_working_days"])
        )),
        "{row}"
    );
    // Every link of the page answers (the CSVs of every table, microdata, the release).
    let admin = app.token(Role::Admin).await;
    app.request("POST", "/v1/releases/2024", Some(&admin), &[], None)
        .await
        .expect(201);
    let with_release = String::from_utf8(app.get("/?year=2024", None).await.body).unwrap();
    assert!(with_release.contains("href=\"/v1/releases/2024/1.csv\""));
    let mut links: Vec<String> = [html.as_str(), with_release.as_str()]
        .iter()
        .flat_map(|page| page.split("href=\"").skip(1))
        .map(|rest| rest.split('"').next().unwrap().replace("&amp;", "&"))
        .filter(|href| href.starts_with('/'))
        .collect();
    links.sort();
    links.dedup();
    assert!(
        links.iter().any(|l| l.starts_with("/v1/open/observations")),
        "{links:?}"
    );
    assert!(links.len() > 10, "{links:?}");
    for link in &links {
        assert_eq!(app.get(link, None).await.status, 200, "{link}");
    }
    // With no data at all, the page says so instead of failing.
    assert_eq!(app.get("/?year=1999", None).await.status, 200);
}

async fn an_empty_store_gets_a_page_that_says_so(app: &TestApp) {
    let html = String::from_utf8(app.get("/?lang=en", None).await.body).unwrap();
    assert!(html.contains("No figures for this year yet."), "{html}");
}

crate::on_both_stores!(
    the_dashboard_shows_the_apis_numbers,
    an_empty_store_gets_a_page_that_says_so,
);
