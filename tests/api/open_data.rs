//! Open-data conventions: ETag/304, Cache-Control, licence, keyset pagination in every format,
//! the data dictionary (tied to what the endpoints emit) and the DCAT catalogue.

use std::collections::BTreeSet;

use redtape_domain::Role;
use serde_json::{json, Value};

use crate::helpers::{timing, TestApp};

/// Files five timings per (procedure, province): non-suppressed cells.
async fn cells(app: &TestApp, token: &str, procedures: &[&str], provinces: &[&str]) {
    for procedure in procedures {
        for province in provinces {
            for _ in 0..5 {
                let mut body = timing();
                body["procedure_code"] = json!(procedure);
                body["province_code"] = json!(province);
                app.post("/v1/timings", token, &body).await.expect(201);
            }
        }
    }
    app.project().await;
}

async fn answers_carry_etags_and_304_until_the_data_changes(app: &TestApp) {
    let token = app.token(Role::Business).await;
    cells(app, &token, &["1.001612"], &["79"]).await;
    let url = "/v1/indices?year=2025";
    let first = app.get(url, None).await;
    assert_eq!(first.status, 200);
    let etag = first.header("etag").expect("an ETag");
    assert!(etag.starts_with("W/\""), "{etag}");
    assert_eq!(
        first.header("cache-control").as_deref(),
        Some("public, max-age=60")
    );
    assert_eq!(
        first.header("link").as_deref(),
        Some("<https://creativecommons.org/licenses/by/4.0/>; rel=\"license\"")
    );
    let again = app
        .request("GET", url, None, &[("if-none-match", &etag)], None)
        .await;
    assert_eq!((again.status, again.body.len()), (304, 0));
    assert_eq!(again.header("etag"), Some(etag.clone()));
    // Another representation or another filter is another ETag.
    let csv = app.get("/v1/indices?year=2025&format=csv", None).await;
    assert_ne!(csv.header("etag"), Some(etag.clone()));
    let other = app.get("/v1/indices?year=2024", None).await;
    assert_ne!(other.header("etag"), Some(etag.clone()));
    // New data: the ETag changes (the data version is re-read at most once a second).
    cells(app, &token, &["1.001612"], &["01"]).await;
    actix_web::rt::time::sleep(std::time::Duration::from_millis(1100)).await;
    let changed = app
        .request("GET", url, None, &[("if-none-match", &etag)], None)
        .await;
    assert_eq!(changed.status, 200);
    assert_ne!(changed.header("etag"), Some(etag));
    // Two province cells and their national cell (province `all`).
    assert_eq!(changed.json()["items"].as_array().map(Vec::len), Some(3));
    // Authenticated endpoints get none of this.
    let business = app
        .get(
            &format!("/v1/submissions/{}", uuid::Uuid::now_v7()),
            Some(&token),
        )
        .await;
    assert_eq!(business.header("etag"), None);
}

async fn every_format_pages_with_a_cursor_and_a_next_link(app: &TestApp) {
    let token = app.token(Role::Business).await;
    cells(app, &token, &["1.001612", "1.009972"], &["79", "01", "48"]).await;
    let all = app.get("/v1/indices?year=2025", None).await.expect(200);
    let keys = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| format!("{}/{}", c["procedure_code"], c["province_code"]))
            .collect()
    };
    let expected = keys(&all);
    // Three provinces and the national cell, for each of two procedures.
    assert_eq!(expected.len(), 8);
    assert!(all.get("next").is_none());
    assert_eq!(all["licence"]["id"], "CC-BY-4.0");

    let mut seen = Vec::new();
    let mut url = "/v1/indices?year=2025&limit=4".to_string();
    let mut pages = 0;
    loop {
        let reply = app.get(&url, None).await;
        let page = reply.expect(200);
        seen.extend(keys(&page));
        pages += 1;
        match page["next"].as_str() {
            Some(next) => {
                assert!(
                    next.contains("year=2025") && next.contains("limit=4"),
                    "{next}"
                );
                assert_eq!(
                    reply
                        .header("link")
                        .as_deref()
                        .map(|l| l.contains(&format!("<{next}>; rel=\"next\""))),
                    Some(true),
                    "{:?}",
                    reply.header("link")
                );
                url = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!((seen, pages), (expected.clone(), 2));

    // CSV pages the same way, with the next page in the Link header.
    let csv = app
        .get("/v1/indices?year=2025&limit=4&format=csv", None)
        .await;
    assert_eq!(csv.status, 200);
    let text = String::from_utf8(csv.body.clone()).unwrap();
    assert_eq!(text.lines().count(), 1 + 4, "{text}");
    let link = csv.header("link").unwrap_or_default();
    let next = link
        .split(',')
        .find(|l| l.contains("rel=\"next\""))
        .and_then(|l| l.trim().strip_prefix('<'))
        .and_then(|l| l.split('>').next())
        .unwrap_or_else(|| panic!("no next link: {link}"))
        .to_string();
    let rest = app.get(&next, None).await;
    let rest_text = String::from_utf8(rest.body).unwrap();
    assert_eq!(rest_text.lines().count(), 1 + 4, "{rest_text}");
    assert_eq!(text.lines().next(), rest_text.lines().next(), "same header");
    let nd = app.get("/v1/indices?year=2025&format=ndjson", None).await;
    assert_eq!(String::from_utf8(nd.body).unwrap().lines().count(), 8);

    app.expect_parameter_violations(
        "/v1/indices",
        None,
        &[
            ("limit=0", "limit", "range"),
            ("limit=10001", "limit", "range"),
            ("cursor=xyz", "cursor", "format"),
            // Well-formed, but its year is not a number: never a cursor this API gave out.
            ("cursor=61621f781f79", "cursor", "format"),
            ("format=xml", "format", "one_of"),
        ],
    )
    .await;
}

/// Every open list with data in the dictionary test: (dataset id, URL). Every one answers
/// the same page envelope (`items`, `next_cursor`, `next`) in JSON.
const LISTS: [(&str, &str); 9] = [
    ("indices", "/v1/indices?year=2025"),
    (
        "rankings",
        "/v1/indices/rankings?year=2025&procedure=1.001612",
    ),
    ("province-composites", "/v1/indices/provinces?year=2025"),
    (
        "trends",
        "/v1/indices/trends?procedure=1.001612&province=79",
    ),
    ("responses", "/v1/responses"),
    ("releases", "/v1/releases"),
    ("provinces", "/v1/provinces"),
    ("procedures", "/v1/procedures"),
    (
        "observations",
        "/v1/open/observations?year=2025&procedure=1.001612",
    ),
];

fn item_keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect()
}

async fn the_dictionary_describes_exactly_what_each_dataset_emits(app: &TestApp) {
    let token = app.token(Role::Business).await;
    let officer = app.token(Role::Officer).await;
    let admin = app.token(Role::Admin).await;
    cells(app, &token, &["1.001612"], &["79", "01"]).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(app.file("/v1/timings", &token, &timing()).await);
    }
    for id in &ids {
        let body = json!({"agency": "Sở Tư pháp", "text": "ok", "status": "resolved"});
        app.post(&format!("/v1/submissions/{id}/responses"), &officer, &body)
            .await
            .expect(201);
    }
    app.project().await;
    app.request("POST", "/v1/releases/2025", Some(&admin), &[], None)
        .await
        .expect(201);

    let dictionary = app.get("/v1/dictionary", None).await.expect(200);
    assert_eq!(
        dictionary["licence"]["url"],
        "https://creativecommons.org/licenses/by/4.0/"
    );
    let columns = |id: &str| -> BTreeSet<String> {
        dictionary["datasets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id)
            .unwrap_or_else(|| panic!("no dataset {id}"))["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    // Each dataset's first item has exactly the dictionary's columns.
    for (id, url) in LISTS {
        let body = app.get(url, None).await.expect(200);
        let first = &body["items"][0];
        let mut emitted = item_keys(first);
        // Optional fields left out when absent.
        if id == "provinces" {
            emitted.insert("successor_code".into());
        }
        assert_eq!(emitted, columns(id), "{id}");
    }
    // Every list answers CSV with the dictionary's columns as header, NDJSON, and pages of
    // one row that add up to the whole list.
    for (id, url) in LISTS {
        let whole = app.get(url, None).await.expect(200)["items"].clone();
        let total = whole.as_array().map(Vec::len).unwrap_or(0);
        assert!(total >= 1, "{id}");
        let ordered: Vec<String> = dictionary["datasets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id)
            .unwrap()["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect();
        let csv = app
            .get(
                &format!(
                    "{url}{}format=csv",
                    if url.contains('?') { "&" } else { "?" }
                ),
                None,
            )
            .await;
        assert_eq!(
            csv.header("content-type").as_deref(),
            Some("text/csv; charset=utf-8"),
            "{id}"
        );
        let text = String::from_utf8(csv.body).unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_string)
            .collect();
        assert_eq!(header, ordered, "{id}");
        assert_eq!(reader.records().count(), total, "{id}");
        let nd = app
            .get(
                &format!(
                    "{url}{}format=ndjson",
                    if url.contains('?') { "&" } else { "?" }
                ),
                None,
            )
            .await;
        let lines: Vec<Value> = String::from_utf8(nd.body)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            Value::Array(lines),
            whole,
            "{id}: NDJSON rows are the JSON items"
        );
        // Pages of one, following the Link header, give the same rows in the same order.
        let mut rows = Vec::new();
        let mut next = Some(format!(
            "{url}{}limit=1",
            if url.contains('?') { "&" } else { "?" }
        ));
        while let Some(page_url) = next.take() {
            let reply = app.get(&page_url, None).await;
            let body = reply.expect(200);
            rows.extend(body["items"].as_array().unwrap().iter().cloned());
            next = reply
                .header("link")
                .and_then(|l| {
                    l.split(',')
                        .find(|p| p.contains("rel=\"next\""))
                        .map(str::to_string)
                })
                .and_then(|l| {
                    l.trim()
                        .strip_prefix('<')
                        .and_then(|r| r.split('>').next())
                        .map(str::to_string)
                });
            assert!(rows.len() <= total, "{id}: more rows than the list");
            // The envelope says the same as the Link header.
            assert_eq!(body["next"].as_str(), next.as_deref(), "{id}");
            assert_eq!(body["next_cursor"].is_string(), next.is_some(), "{id}");
        }
        assert_eq!(Value::Array(rows), whole, "{id}");
    }
    // The CSV header is the dictionary's column list, in order.
    let csv = app.get("/v1/indices?year=2025&format=csv", None).await;
    let header = String::from_utf8(csv.body)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let ordered: Vec<String> = dictionary["datasets"][0]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(header, ordered.join(","));
}

async fn the_catalogue_lists_datasets_and_releases_in_dcat(app: &TestApp) {
    let token = app.token(Role::Business).await;
    let admin = app.token(Role::Admin).await;
    cells(app, &token, &["1.001612"], &["79"]).await;
    let release = app
        .request("POST", "/v1/releases/2025", Some(&admin), &[], None)
        .await
        .expect(201);
    let reply = app.get("/v1/catalog", None).await;
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/ld+json")
    );
    let catalog = reply.expect(200);
    assert_eq!(catalog["@type"], "dcat:Catalog");
    assert_eq!(catalog["@context"]["dcat"], "http://www.w3.org/ns/dcat#");
    let datasets = catalog["dcat:dataset"].as_array().unwrap();
    let indices = datasets
        .iter()
        .find(|d| d["dct:identifier"] == "indices")
        .unwrap();
    assert_eq!(
        indices["dct:license"]["@id"],
        "https://creativecommons.org/licenses/by/4.0/"
    );
    assert_eq!(
        indices["dct:temporal"]["dcat:startDate"]["@value"],
        "2025-01-01"
    );
    assert!(indices["dct:accrualPeriodicity"]["@id"]
        .as_str()
        .unwrap()
        .ends_with("/CONT"));
    let downloads: Vec<&str> = indices["dcat:distribution"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["dcat:downloadURL"]["@id"].as_str().unwrap())
        .collect();
    assert!(
        downloads
            .iter()
            .any(|u| u.ends_with("/v1/indices?format=csv")),
        "{downloads:?}"
    );
    // Every download URL of the catalogue answers 200.
    let base = &app.base;
    let distributions = datasets
        .iter()
        .flat_map(|d| d["dcat:distribution"].as_array().unwrap());
    for url in distributions.filter_map(|d| d["dcat:downloadURL"]["@id"].as_str()) {
        let path = url
            .strip_prefix(base.as_str())
            .unwrap_or_else(|| panic!("{url} not under {base}"));
        assert_eq!(app.get(path, None).await.status, 200, "{url}");
    }
    let y2025 = datasets
        .iter()
        .find(|d| d["dct:identifier"] == "release-2025")
        .expect("the release is a dataset");
    assert!(y2025["dct:accrualPeriodicity"]["@id"]
        .as_str()
        .unwrap()
        .ends_with("/ANNUAL"));
    assert_eq!(
        y2025["dct:temporal"]["dcat:endDate"]["@value"],
        "2025-12-31"
    );
    let csv = &y2025["dcat:distribution"][0];
    assert!(csv["dcat:downloadURL"]["@id"]
        .as_str()
        .unwrap()
        .ends_with("/v1/releases/2025/1.csv"));
    assert_eq!(
        csv["spdx:checksum"]["spdx:checksumValue"],
        release["sha256"]
    );
}

async fn the_licence_is_configurable(app: &TestApp) {
    let reply = app.get("/v1/provinces", None).await;
    assert_eq!(
        reply.header("link").as_deref(),
        Some("<https://example.org/licence>; rel=\"license\"")
    );
    let dictionary = app.get("/v1/dictionary", None).await.expect(200);
    assert_eq!(dictionary["licence"]["id"], "ODbL-1.0");
}

crate::on_both_stores!(
    answers_carry_etags_and_304_until_the_data_changes,
    every_format_pages_with_a_cursor_and_a_next_link,
    the_dictionary_describes_exactly_what_each_dataset_emits,
    the_catalogue_lists_datasets_and_releases_in_dcat,
    microdata_is_coarse_and_only_from_published_cells,
    no_public_answer_contains_a_planted_identifier,
);

mod licence {
    use super::the_licence_is_configurable;
    crate::on_both_stores!(
        with ["--data-licence-id", "ODbL-1.0", "--data-licence-name", "Open Database License", "--data-licence-url", "https://example.org/licence"]
        the_licence_is_configurable,
    );
}

/// Issues a business token for a new filer with a profile.
async fn profiled_business(app: &TestApp, size: &str, sector: &str) -> String {
    let profile = redtape_domain::filer::FilerProfile {
        size_class: redtape_domain::filer::SizeClass::parse(size),
        sector_section: redtape_domain::filer::SectorSection::parse(sector),
        ..Default::default()
    };
    app.issue(Role::Business, profile).await.token
}

/// k = 5. In 79: five timings by a small trader of section G, six by a filer with no
/// profile (one rejected); two each in 01 and 48 (suppressed provinces, so not published).
/// Breakdowns: size class small 5, unknown 9 (5 + 4); sector G 5, unknown 9: all published,
/// so the trader's rows show its profile; woman-owned and ethnic-minority-owned are unknown
/// for everyone. The microdata's combinations (79, small, G, unknown, unknown) and (79, all
/// unknown) have five rows each: k-anonymous as they are.
async fn microdata_is_coarse_and_only_from_published_cells(app: &TestApp) {
    let small_trader = profiled_business(app, "small", "G").await;
    let anonymous = app.token(Role::Business).await;
    let officer = app.token(Role::Officer).await;
    let mut ids = Vec::new();
    for token in [[&small_trader; 5], [&anonymous; 5]].concat() {
        ids.push(app.file("/v1/timings", token, &timing()).await);
    }
    let rejected = app.file("/v1/timings", &anonymous, &timing()).await;
    // Two in Hà Nội and two in Đà Nẵng: suppressed cells, so not published. (Two of them: a
    // lone suppressed province would take the smallest published one along, §4.)
    for province in ["01", "01", "48", "48"] {
        let mut body = timing();
        body["province_code"] = json!(province);
        app.file("/v1/timings", &anonymous, &body).await;
    }
    // One rejected: it leaves the microdata as it leaves the cells.
    app.post(
        &format!("/v1/submissions/{rejected}/rejection"),
        &officer,
        &json!({"reason": "duplicate"}),
    )
    .await
    .expect(200);
    app.project().await;

    let page = app
        .get("/v1/open/observations?year=2025&procedure=1.001612", None)
        .await
        .expect(200);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 10, "{page}");
    assert_eq!(page["methodology_version"], "1.1");
    // 2-10 September 2025: 6 working days, over the 3-day limit; 50,000 + 1,500,000 VND
    // + 6.5 h x 23,800 VND (2025 tariff) = 1,704,700 -> 1,705,000.
    let expected_common = json!({
        "year": 2025, "procedure_code": "1.001612", "province_code": "79",
        "province_name": "Thành phố Hồ Chí Minh", "kind": "completed_timing",
        "working_days": 6, "scm_cost_vnd": 1705000.0, "on_time": false, "visits": 1,
        "informal_payment": false, "woman_owned": "unknown", "ethnic_minority_owned": "unknown",
    });
    let mut profiles = Vec::new();
    for item in items {
        let mut common = item.clone();
        let object = common.as_object_mut().unwrap();
        profiles.push((object.remove("size_class"), object.remove("sector_section")));
        assert_eq!(common, expected_common);
    }
    profiles.sort_by_key(|p| format!("{p:?}"));
    let small = (Some(json!("small")), Some(json!("G")));
    let unknown = (Some(json!("unknown")), Some(json!("unknown")));
    assert_eq!(profiles, [vec![small; 5], vec![unknown; 5]].concat());
    assert_eq!(page["licence"]["id"], "CC-BY-4.0");
    // Pages of two add up, in a stable order.
    let mut seen = Vec::new();
    let mut url = Some("/v1/open/observations?year=2025&procedure=1.001612&limit=2".to_string());
    while let Some(u) = url.take() {
        let body = app.get(&u, None).await.expect(200);
        seen.extend(body["items"].as_array().unwrap().iter().cloned());
        url = body["next"].as_str().map(str::to_string);
    }
    assert_eq!(Value::Array(seen), page["items"]);
    app.expect_parameter_violations(
        "/v1/open/observations",
        None,
        &[
            ("procedure=1.001612", "year", "required"),
            ("year=2025", "procedure", "required"),
            (
                "year=2025&procedure=1.001612&province=77",
                "province",
                "unknown_province",
            ),
        ],
    )
    .await;
}

/// The acceptance test of issue 5 item 3: identifiers and narratives planted in every kind of
/// record never appear in any public answer, in any format.
async fn no_public_answer_contains_a_planted_identifier(app: &TestApp) {
    let token = app.token(Role::Business).await;
    let officer = app.token(Role::Officer).await;
    let admin = app.token(Role::Admin).await;
    let narrative = "PLANTED-NARRATIVE-c0ffee the clerk wanted an envelope";
    let response_text = "PLANTED-RESPONSE-5eed we will call you";
    let mut planted: Vec<String> = vec![narrative.into(), response_text.into(), token.clone()];
    for i in 0..6 {
        let mut body = crate::helpers::complaint();
        body["narrative"] = json!(narrative);
        body["province_code"] = json!("79");
        body["experienced_on"] = json!("2025-09-03");
        let key = format!("PLANTED-KEY-{i}");
        let reply = app
            .post_with(
                "/v1/complaints",
                &token,
                &body,
                &[
                    ("idempotency-key", &key),
                    ("x-request-id", &format!("PLANTED-REQ-{i}")),
                ],
            )
            .await;
        let id = reply.expect(201)["id"].as_str().unwrap().to_string();
        planted.extend([id.clone(), key, format!("PLANTED-REQ-{i}")]);
        let answer =
            json!({"agency": "Sở Công Thương", "text": response_text, "status": "resolved"});
        app.post(
            &format!("/v1/submissions/{id}/responses"),
            &officer,
            &answer,
        )
        .await
        .expect(201);
    }
    for _ in 0..5 {
        app.file("/v1/timings", &token, &timing()).await;
    }
    // Filers and tokens (issue 13): an intermediary's and its member's ids, labels, the
    // member's enterprise code and the keyed hash that stands for it, a token's id and label.
    let centre = app
        .post(
            "/v1/admin/filers",
            &admin,
            &json!({"kind": "intermediary", "label": "PLANTED-CENTRE-LABEL"}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let issued = app
        .post(
            "/v1/admin/tokens",
            &admin,
            &json!({"role": "intermediary", "filer_id": centre, "label": "PLANTED-TOKEN-LABEL"}),
        )
        .await
        .expect(201);
    let centre_token = issued["token"].as_str().unwrap().to_string();
    let member = app
        .post(
            "/v1/members",
            &centre_token,
            &json!({"enterprise_code": "0399999999", "label": "PLANTED-MEMBER-LABEL",
                    "profile": {"size_class": "micro", "woman_owned": true}}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..5 {
        app.file(
            &format!("/v1/timings?on_behalf_of={member}"),
            &centre_token,
            &timing(),
        )
        .await;
    }
    let enterprise_key: String = redtape_store::on_pool!(&app.db, pool =>
        sqlx::query_scalar("SELECT CAST(payload AS text) FROM events \
                            WHERE aggregate_type = 'Filer' AND aggregate_id = $1")
            .bind(&member).fetch_one(pool).await)
    .unwrap();
    let enterprise_key = serde_json::from_str::<Value>(&enterprise_key).unwrap()["FilerRegistered"]
        ["enterprise_key"]
        .as_str()
        .unwrap()
        .to_string();
    planted.extend([
        centre,
        member,
        centre_token,
        issued["id"].as_str().unwrap().to_string(),
        "PLANTED-CENTRE-LABEL".into(),
        "PLANTED-TOKEN-LABEL".into(),
        "PLANTED-MEMBER-LABEL".into(),
        "0399999999".into(),
        enterprise_key,
    ]);
    app.project().await;
    let filer = redtape_store::observations::all(&app.db).await.unwrap()[0]
        .filer_id
        .clone();
    planted.push(filer);
    app.request("POST", "/v1/releases/2025", Some(&admin), &[], None)
        .await
        .expect(201);

    let mut urls: Vec<String> = [
        "/v1/indices",
        "/v1/indices/rankings?year=2025&procedure=1.009972",
        "/v1/indices/provinces?year=2025",
        "/v1/indices/trends?procedure=1.009972&province=79",
        "/v1/responses",
        "/v1/releases",
        "/v1/releases/2025",
        "/v1/releases/2025/1",
        "/v1/procedures",
        "/v1/provinces",
        "/v1/open/observations?year=2025&procedure=1.009972",
        "/v1/open/observations?year=2025&procedure=1.001612",
    ]
    .iter()
    .flat_map(|u| {
        let sep = if u.contains('?') { '&' } else { '?' };
        ["json", "csv", "ndjson"].map(|f| format!("{u}{sep}format={f}"))
    })
    .collect();
    urls.extend(
        [
            "/v1/releases/2025/1.csv",
            "/v1/releases/2025/1.json",
            "/v1/dictionary",
            "/v1/catalog",
            "/openapi.json",
            "/?year=2025",
            "/?year=2025&lang=en&procedure=1.009972&province=79",
        ]
        .map(str::to_string),
    );
    let mut checked = 0;
    for url in &urls {
        let reply = app.get(url, None).await;
        assert_eq!(reply.status, 200, "{url}");
        let text = String::from_utf8_lossy(&reply.body);
        for secret in &planted {
            assert!(!text.contains(secret.as_str()), "{url} contains {secret}");
        }
        checked += 1;
    }
    assert_eq!(checked, 12 * 3 + 7);
    // The planted complaints are published, coarsely: the microdata has them.
    let micro = app
        .get("/v1/open/observations?year=2025&procedure=1.009972", None)
        .await
        .expect(200);
    assert_eq!(micro["items"].as_array().map(Vec::len), Some(6));
}
