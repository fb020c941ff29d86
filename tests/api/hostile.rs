//! What hostile-input and fault testing found (issue 11), each kept found: the status and the
//! problem type every case must get, on both stores.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use redtape_domain::Role;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{complaint, timing, TestApp};

/// The single violation of a 422 answer.
fn only_violation(reply: &crate::helpers::Reply) -> (String, String) {
    let mut all = reply.violations();
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

async fn control_characters_are_refused_in_every_free_text_field(app: &TestApp) {
    let business = app.token(Role::Business).await;
    let officer = app.token(Role::Officer).await;
    let admin = app.token(Role::Admin).await;
    let id = app.file("/v1/timings", &business, &timing()).await;
    let registration = json!({
        "code": "1.004227",
        "name_vi": "Cấp phép",
        "name_en": "Permit",
        "level": "provincial",
        "agency": "Sở Xây dựng",
        "statutory_working_days": 20,
        "legal_basis": "Luật Xây dựng 2014",
        "effective_from": "2024-01-01"
    });
    let with = |base: &Value, field: &str, text: &str| {
        let mut body = base.clone();
        body[field] = json!(text);
        body
    };
    // (path, token, body, pointer): every free-text field the API takes.
    let mut cases: Vec<(String, &str, Value, &str)> = vec![
        (
            format!("/v1/submissions/{id}/withdrawal"),
            &business,
            json!({"reason": "x\u{0}"}),
            "/reason",
        ),
        (
            format!("/v1/submissions/{id}/rejection"),
            &officer,
            json!({"reason": "spam\u{0}"}),
            "/reason",
        ),
        (
            format!("/v1/submissions/{id}/responses"),
            &officer,
            json!({"agency": "Sở\u{0}", "status": "acknowledged", "text": "ok"}),
            "/agency",
        ),
        (
            format!("/v1/submissions/{id}/responses"),
            &officer,
            json!({"agency": "Sở", "status": "acknowledged", "text": "ok \u{1b}[2J"}),
            "/text",
        ),
        (
            "/v1/procedures/1.001612/reforms".into(),
            &admin,
            json!({"effective_from": "2026-01-01", "statutory_working_days": 3,
                   "legal_basis": "Nghị định\u{0}"}),
            "/legal_basis",
        ),
        (
            "/v1/procedures/1.001612/abolition".into(),
            &admin,
            json!({"effective_from": "2026-07-01", "legal_basis": "\u{7f}"}),
            "/legal_basis",
        ),
    ];
    for field in ["name_vi", "name_en", "agency", "legal_basis"] {
        cases.push((
            "/v1/procedures".into(),
            &admin,
            with(&registration, field, "a\u{0}b"),
            match field {
                "name_vi" => "/name_vi",
                "name_en" => "/name_en",
                "agency" => "/agency",
                _ => "/legal_basis",
            },
        ));
    }
    let mut narrative = complaint();
    narrative["narrative"] = json!("\u{0}");
    cases.push(("/v1/complaints".into(), &business, narrative, "/narrative"));
    for (path, token, body, pointer) in &cases {
        let reply = app.post(path, token, body).await;
        assert_eq!(
            only_violation(&reply),
            (pointer.to_string(), "control_characters".to_string()),
            "{path} {body}"
        );
    }
    // Tab and newline are text; nothing above was stored: the submission is still open and
    // the procedure unchanged and unregistered.
    let view = app
        .get(&format!("/v1/submissions/{id}"), Some(&business))
        .await
        .expect(200);
    assert_eq!(view["status"], "received");
    app.get("/v1/procedures/1.004227", None).await.problem(404);
    let withdrawn = app
        .post(
            &format!("/v1/submissions/{id}/withdrawal"),
            &business,
            &json!({"reason": "filed\ttwice\nby mistake"}),
        )
        .await;
    assert_eq!(withdrawn.expect(200)["status"], "withdrawn");
}

async fn duplicate_keys_are_refused_naming_the_key(app: &TestApp) {
    let business = app.token(Role::Business).await;
    let body = r#"{"procedure_code":"1.001612","province_code":"79","province_code":"01",
        "submitted_on":"2025-09-02","completed_on":"2025-09-10","outcome":"granted",
        "channel":"online","costs":{"official_fees":1,"official_fees":2}}"#;
    let reply = app
        .request(
            "POST",
            "/v1/timings",
            Some(&business),
            &[("content-type", "application/json")],
            Some(body.as_bytes().to_vec()),
        )
        .await;
    assert_eq!(
        only_violation(&reply),
        ("/province_code".into(), "duplicate_key".into())
    );
    app.project().await;
    assert!(redtape_store::observations::all(&app.db)
        .await
        .unwrap()
        .is_empty());
}

async fn if_none_match_star_matches_only_what_exists(app: &TestApp) {
    let star = [("if-none-match", "*")];
    let get = |path: &'static str| app.request("GET", path, None, &star, None);
    get("/v1/releases/2025/1.csv").await.problem(404);
    assert_eq!(
        only_violation(&get("/v1/releases/2019/1.csv").await),
        ("year".into(), "range".into())
    );
    get("/v1/procedures/9.999999").await.problem(404);
    assert_eq!(only_violation(&get("/v1/indices?year=abc").await).0, "year");
    // An existing representation matches `*`, with its validators.
    let fresh = get("/v1/procedures").await;
    assert_eq!(fresh.status, 304);
    assert!(fresh.header("etag").is_some_and(|t| t.starts_with("W/\"")));
    assert!(fresh.body.is_empty());
    // A tag the server gave still answers 304 without running the handler.
    let etag = app
        .get("/v1/procedures", None)
        .await
        .header("etag")
        .unwrap();
    let again = app
        .request(
            "GET",
            "/v1/procedures",
            None,
            &[("if-none-match", &etag)],
            None,
        )
        .await;
    assert_eq!(again.status, 304);
}

async fn head_works_on_every_get_and_a_wrong_method_is_405(app: &TestApp) {
    let got = app.get("/v1/procedures", None).await;
    let head = app.request("HEAD", "/v1/procedures", None, &[], None).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty(), "a HEAD answer has no body");
    assert_eq!(head.header("content-type"), got.header("content-type"));
    assert_eq!(head.header("etag"), got.header("etag"));
    let head = app.request("HEAD", "/healthz", None, &[], None).await;
    assert_eq!(head.status, 200);
    let cases = [
        ("PUT", "/v1/procedures", "GET, HEAD, POST"),
        ("DELETE", "/v1/procedures/1.001612", "GET, HEAD"),
        ("PATCH", "/v1/timings", "POST"),
        (
            "GET",
            "/v1/submissions/0190c3d4-0000-7000-8000-000000000000/withdrawal",
            "POST",
        ),
        ("POST", "/v1/releases/2025/1.csv", "GET, HEAD"),
    ];
    for (method, path, allow) in cases {
        let reply = app.request(method, path, None, &[], None).await;
        let problem = reply.problem(405);
        assert_eq!(problem["type"], "/problems/method-not-allowed");
        assert_eq!(
            reply.header("allow").as_deref(),
            Some(allow),
            "{method} {path}"
        );
    }
    app.request("PUT", "/v1/nothing-here", None, &[], None)
        .await
        .problem(404);
}

async fn csv_text_cells_cannot_be_formulas(app: &TestApp) {
    let admin = app.token(Role::Admin).await;
    let business = app.token(Role::Business).await;
    let formula = "=HYPERLINK(\"http://evil.example\",\"click\")";
    let registration = json!({
        "code": "1.004227",
        "name_vi": formula,
        "name_en": "+cmd|' /C calc'!A0",
        "level": "provincial",
        "agency": "@SUM(1+1)",
        "statutory_working_days": 20,
        "legal_basis": "-2+3",
        "effective_from": "2024-01-01"
    });
    app.post("/v1/procedures", &admin, &registration)
        .await
        .expect(201);
    let id = app.file("/v1/timings", &business, &timing()).await;
    app.post(
        &format!("/v1/submissions/{id}/responses"),
        &admin,
        &json!({"agency": formula, "status": "acknowledged", "text": "ok"}),
    )
    .await
    .expect(201);
    app.project().await;
    let procedures = app.get("/v1/procedures?format=csv", None).await;
    let responses = app.get("/v1/responses?format=csv", None).await;
    for (what, reply) in [("procedures", &procedures), ("responses", &responses)] {
        assert_eq!(reply.status, 200, "{what}");
        let mut reader = csv::Reader::from_reader(reply.body.as_slice());
        let headers = reader.headers().unwrap().clone();
        for record in reader.records() {
            let record = record.unwrap();
            for (column, cell) in headers.iter().zip(record.iter()) {
                assert!(
                    !cell.starts_with(['=', '+', '@', '\t', '\r'])
                        && (!cell.starts_with('-') || cell.parse::<f64>().is_ok()),
                    "{what}: {column} = {cell:?}"
                );
            }
        }
    }
    let text = String::from_utf8_lossy(&procedures.body);
    assert!(text.contains("'+cmd|"), "{text}");
    assert!(text.contains("'@SUM(1+1)"), "{text}");
    assert!(String::from_utf8_lossy(&responses.body).contains("'=HYPERLINK("));
    // JSON carries the name exactly as registered.
    let json = app.get("/v1/procedures/1.004227", None).await.expect(200);
    assert_eq!(json["name_vi"], formula);
}

async fn microdata_rows_cannot_be_linked_to_submissions(app: &TestApp) {
    let business = app.token(Role::Business).await;
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(app.file("/v1/timings", &business, &timing()).await);
    }
    app.project().await;
    // The digest the service used to order rows by: anyone could compute it from an id.
    let unkeyed: Vec<String> = ids
        .iter()
        .map(|id| {
            let d = Sha256::digest(format!("redtape open observation{id}").as_bytes());
            hex::encode(&d[..8])
        })
        .collect();
    let mut keys = Vec::new();
    let mut url = "/v1/open/observations?year=2025&procedure=1.001612&limit=1".to_string();
    loop {
        let page = app.get(&url, None).await.expect(200);
        assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
        let Some(next) = page["next"].as_str() else {
            break;
        };
        let cursor = next
            .split("cursor=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap();
        let decoded = String::from_utf8(hex::decode(cursor).unwrap()).unwrap();
        let key = decoded.split('\u{1f}').nth(1).unwrap().to_string();
        assert!(!unkeyed.contains(&key), "{key} is derivable from an id");
        assert!(!ids.iter().any(|id| decoded.contains(id.as_str())));
        keys.push(key);
        url = next.to_string();
    }
    assert_eq!(keys.len(), 5, "six rows, five cursors");
    // The order is stable across requests (the secret is kept in the store).
    let first = app
        .get(
            "/v1/open/observations?year=2025&procedure=1.001612&limit=1",
            None,
        )
        .await
        .expect(200);
    assert!(first["next"]
        .as_str()
        .unwrap()
        .contains(&hex::encode(format!("79\u{1f}{}", keys[0]))));
}

async fn every_spelling_of_bearer_shares_one_rate_limit(app: &TestApp) {
    let token = app.token(Role::Business).await;
    let missing = format!("/v1/submissions/{}", uuid::Uuid::now_v7());
    let spellings = [
        format!("Bearer {token}"),
        format!("bearer {token}"),
        format!("BEARER {token}"),
        format!("Bearer   {token}  "),
        format!("bEaReR {token}"),
    ];
    for spelling in &spellings {
        let reply = app
            .request("GET", &missing, None, &[("authorization", spelling)], None)
            .await;
        assert_eq!(reply.status, 404, "{spelling:?}");
    }
    for spelling in &spellings {
        let reply = app
            .request("GET", &missing, None, &[("authorization", spelling)], None)
            .await;
        reply.problem(429);
    }
}

/// Sends a POST's headers and 10 of its 100 bytes, then waits; returns the answer's status
/// line and body, and how long the server took to give them.
fn trickle(base: &str) -> (String, String, Duration) {
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let started = Instant::now();
    write!(
        stream,
        "POST /v1/timings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Authorization: Bearer rt_unknown\r\nContent-Length: 100\r\n\r\n{{\"procedu"
    )
    .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text.lines().next().unwrap_or("").to_string();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body, started.elapsed())
}

async fn a_slow_body_is_answered_408_and_closed(app: &TestApp) {
    let base = app.base.clone();
    let (status, body, took) = actix_web::rt::task::spawn_blocking(move || trickle(&base))
        .await
        .unwrap();
    assert!(status.starts_with("HTTP/1.1 408"), "{status}");
    assert!(body.contains("/problems/body-timeout"), "{body}");
    // The deadline is 1 s here; the connection is closed after the answer (read_to_end ended).
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(took >= Duration::from_millis(900), "{took:?}");
}

crate::on_both_stores!(
    control_characters_are_refused_in_every_free_text_field,
    duplicate_keys_are_refused_naming_the_key,
    if_none_match_star_matches_only_what_exists,
    head_works_on_every_get_and_a_wrong_method_is_405,
    csv_text_cells_cannot_be_formulas,
    microdata_rows_cannot_be_linked_to_submissions,
);

mod limited {
    use super::every_spelling_of_bearer_shares_one_rate_limit;
    crate::on_both_stores!(
        with ["--rate-limit-per-minute", "5"]
        every_spelling_of_bearer_shares_one_rate_limit,
    );
}

mod slow {
    use super::a_slow_body_is_answered_408_and_closed;
    crate::on_both_stores!(
        with ["--body-timeout-seconds", "1"]
        a_slow_body_is_answered_408_and_closed,
    );
}
