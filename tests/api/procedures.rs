//! Procedure administration: register, reform, abolish; the catalogue, validation, on-time
//! verdicts and reform marks follow.

use redtape_domain::Role;
use serde_json::{json, Value};

use crate::helpers::{timing, TestApp};

const CODE: &str = "1.004227";

pub(crate) fn registration() -> Value {
    json!({
        "code": CODE,
        "name_vi": "Cấp Giấy phép xây dựng mới",
        "name_en": "Construction permit (new building)",
        "level": "provincial",
        "agency": "Sở Xây dựng",
        "statutory_working_days": 20,
        "official_fee_vnd": 150000,
        "legal_basis": "Luật Xây dựng 2014",
        "effective_from": "2024-01-01"
    })
}

pub(crate) fn permit_timing() -> Value {
    let mut t = timing();
    t["procedure_code"] = json!(CODE);
    // 2025-09-02 to 2025-09-10: 6 working days (3, 4, 5, 8, 9, 10 September).
    t
}

async fn cell(app: &TestApp) -> Value {
    app.project().await;
    let page = app
        .get(
            &format!("/v1/indices?year=2025&procedure={CODE}&province=79"),
            None,
        )
        .await
        .expect(200);
    page["items"][0].clone()
}

async fn officers_register_reform_and_abolish_procedures(app: &TestApp) {
    let officer = app.token(Role::Officer).await;
    let business = app.token(Role::Business).await;

    // Unknown before registration.
    let before = app.post("/v1/timings", &business, &permit_timing()).await;
    assert_eq!(
        before.violations(),
        vec![("/procedure_code".into(), "unknown_procedure".into())]
    );
    app.get(&format!("/v1/procedures/{CODE}"), None)
        .await
        .problem(404);

    let registered = app.post("/v1/procedures", &officer, &registration()).await;
    let view = registered.expect(201);
    assert_eq!(
        registered.header("location"),
        Some(format!("/v1/procedures/{CODE}"))
    );
    assert_eq!(view["statutory_working_days"], 20);
    assert_eq!(view["terms"].as_array().map(Vec::len), Some(1));
    // The catalogue shows it at once, and businesses can file about it at once.
    let listed = app
        .get(&format!("/v1/procedures/{CODE}"), None)
        .await
        .expect(200);
    assert_eq!(listed["name_en"], "Construction permit (new building)");
    for _ in 0..5 {
        app.file("/v1/timings", &business, &permit_timing()).await;
    }
    let c = cell(app).await;
    assert_eq!(
        (c["n"].as_i64(), c["suppressed"].as_bool()),
        (Some(5), Some(false))
    );
    assert_eq!(c["median_working_days"].as_f64(), Some(6.0));
    assert_eq!(c["on_time_rate"].as_f64(), Some(1.0), "6 days within 20");
    assert_eq!(c["reforms_in_year"], Value::Null);

    // Before its first terms, it did not exist.
    let mut early = permit_timing();
    early["submitted_on"] = json!("2023-12-01");
    early["completed_on"] = json!("2023-12-05");
    assert_eq!(
        app.post("/v1/timings", &business, &early)
            .await
            .violations(),
        vec![("/submitted_on".into(), "procedure_not_in_force".into())]
    );

    // Registering twice is a conflict; a broken registration names every field.
    let again = app.post("/v1/procedures", &officer, &registration()).await;
    assert_eq!(again.problem(409)["type"], "/problems/already-exists");
    let mut bad = registration();
    bad["code"] = json!("1.0042");
    bad["name_vi"] = json!(" ");
    bad["level"] = json!("district");
    assert_eq!(
        app.post("/v1/procedures", &officer, &bad)
            .await
            .violations(),
        vec![("/level".into(), "one_of".into())]
    );
    bad["level"] = json!("provincial");
    assert_eq!(
        app.post("/v1/procedures", &officer, &bad)
            .await
            .violations(),
        vec![
            ("/code".into(), "format".into()),
            ("/name_vi".into(), "required".into())
        ]
    );

    // A reform from 1 September 2025 cuts the limit to 2 days: the same timings are now late.
    let path = format!("/v1/procedures/{CODE}/reforms");
    let reform = json!({
        "effective_from": "2025-09-01",
        "statutory_working_days": 2,
        "official_fee_vnd": 0,
        "legal_basis": "Nghị định 1/2025"
    });
    let reformed = app.post(&path, &officer, &reform).await.expect(200);
    assert_eq!(reformed["statutory_working_days"], 2);
    assert_eq!(reformed["terms"][1]["effective_from"], "2025-09-01");
    let c = cell(app).await;
    assert_eq!(c["on_time_rate"].as_f64(), Some(0.0), "6 days over 2");
    assert_eq!(c["reforms_in_year"], "2025-09-01");
    let trend = app
        .get(
            &format!("/v1/indices/trends?procedure={CODE}&province=79"),
            None,
        )
        .await
        .expect(200);
    assert_eq!(
        trend["items"][0]["reforms"][0]["effective_from"],
        "2025-09-01"
    );
    assert_eq!(trend["items"][0]["reforms"][0]["statutory_working_days"], 2);
    // Reforms go forward in time.
    assert_eq!(
        app.post(&path, &officer, &reform).await.violations(),
        vec![("/effective_from".into(), "after_previous_terms".into())]
    );

    // Abolished from 1 October 2025: no filing about later dates, no further reform.
    let abolished = app
        .post(
            &format!("/v1/procedures/{CODE}/abolition"),
            &officer,
            &json!({"effective_from": "2025-10-01", "legal_basis": "Nghị quyết 2/2025"}),
        )
        .await
        .expect(200);
    assert_eq!(abolished["abolished_from"], "2025-10-01");
    let mut late = permit_timing();
    late["submitted_on"] = json!("2025-10-02");
    late["completed_on"] = json!("2025-10-03");
    assert_eq!(
        app.post("/v1/timings", &business, &late).await.violations(),
        vec![("/submitted_on".into(), "procedure_not_in_force".into())]
    );
    let mut later = reform.clone();
    later["effective_from"] = json!("2025-12-01");
    assert_eq!(
        app.post(&path, &officer, &later).await.problem(409)["type"],
        "/problems/procedure-abolished"
    );
    // Past figures stay.
    assert_eq!(cell(app).await["n"], 5);

    // Unknown and malformed codes.
    app.post("/v1/procedures/1.999999/reforms", &officer, &later)
        .await
        .problem(404);
    assert_eq!(
        app.post("/v1/procedures/abc/reforms", &officer, &later)
            .await
            .violations(),
        vec![("code".into(), "format".into())]
    );
}

async fn only_national_officers_and_admins_change_the_catalogue(app: &TestApp) {
    let scoped = app.officer_for(&["79"]).await;
    let business = app.token(Role::Business).await;
    let admin = app.token(Role::Admin).await;
    app.post("/v1/procedures", &scoped, &registration())
        .await
        .problem(403);
    app.post("/v1/procedures", &business, &registration())
        .await
        .problem(403);
    app.post("/v1/procedures", &admin, &registration())
        .await
        .expect(201);
}

crate::on_both_stores!(
    officers_register_reform_and_abolish_procedures,
    only_national_officers_and_admins_change_the_catalogue,
);
