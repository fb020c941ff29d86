//! Open reference data and probes.

use crate::helpers::TestApp;

async fn the_catalogue_and_both_maps_are_published(app: &TestApp) {
    let procedures = app.get("/v1/procedures", None).await;
    assert_eq!(procedures.status, 200);
    let list = procedures.json()["items"].clone();
    let list = list.as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 12);
    let br = list
        .iter()
        .find(|p| p["code"] == "1.001612")
        .cloned()
        .unwrap_or_default();
    assert_eq!(br["statutory_working_days"], 3);
    assert_eq!(br["name_en"], "Business registration (new enterprise)");
    assert_eq!(br["level"], "provincial");
    // The catalogue is the projection of ProcedureRegistered events: one period of terms,
    // in force from the earliest date redtape accepts, not abolished.
    assert_eq!(br["terms"].as_array().map(Vec::len), Some(1));
    assert_eq!(br["terms"][0]["effective_from"], "2020-01-01");
    assert_eq!(br["terms"][0]["statutory_working_days"], 3);
    assert_eq!(br["abolished_from"], serde_json::Value::Null);

    let vn34 = app.get("/v1/provinces", None).await.json()["items"].clone();
    assert_eq!(vn34.as_array().map(Vec::len), Some(34));
    assert_eq!(vn34[0]["geography"], "vn-34");
    let vn63 = app.get("/v1/provinces?geography=vn-63", None).await.json()["items"].clone();
    assert_eq!(vn63.as_array().map(Vec::len), Some(63));
    let bac_giang = vn63
        .as_array()
        .and_then(|l| l.iter().find(|p| p["code"] == "24").cloned())
        .unwrap_or_default();
    assert_eq!(
        (
            bac_giang["name"].as_str(),
            bac_giang["successor_code"].as_str()
        ),
        (Some("Bắc Giang"), Some("24"))
    );
    let reply = app.get("/v1/provinces?geography=vn-99", None).await;
    assert_eq!(
        reply.violations(),
        vec![("geography".to_string(), "one_of".to_string())]
    );
}

async fn probes_answer(app: &TestApp) {
    let health = app.get("/healthz", None).await;
    assert_eq!(
        (health.status, health.json()["status"].as_str()),
        (200, Some("ok"))
    );
    let ready = app.get("/readyz", None).await.json();
    let expected = match app.backend {
        crate::helpers::Backend::Sqlite => "sqlite",
        crate::helpers::Backend::Postgres => "postgres",
    };
    assert_eq!(ready["store"], expected);
    let docs = app.get("/docs/", None).await;
    assert_eq!(docs.status, 200);
    assert!(
        String::from_utf8_lossy(&docs.body).contains("swagger"),
        "the docs UI is embedded"
    );
    // /docs redirects to /docs/ (the client follows it).
    let redirected = app.get("/docs", None).await;
    assert_eq!(redirected.status, 200);
    assert_eq!(redirected.body, docs.body);
}

/// A procedure registered and projected by another process (another replica, the CLI) is
/// picked up by the running server: its catalogue follows the read model, not only the events
/// its own projector happened to apply.
async fn a_procedure_registered_elsewhere_becomes_valid_here(app: &TestApp) {
    use redtape_domain::procedure::{Procedure, ProcedureCode, ProcedureLevel};
    use redtape_domain::procedure_terms::ProcedureCommand;
    let code = "2.000999";
    let procedure = Procedure {
        code: ProcedureCode::parse_format("/code", code).unwrap_or_else(|e| panic!("{e:?}")),
        name_vi: "Thủ tục thử nghiệm".into(),
        name_en: "Test procedure".into(),
        level: ProcedureLevel::Provincial,
        agency: "Test agency".into(),
        statutory_working_days: 10,
        official_fee_vnd: None,
        legal_basis: "Test decision".into(),
    };
    let elsewhere =
        redtape_store::Procedures::new(&app.db, std::sync::Arc::new(tokio::sync::Notify::new()));
    let start = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap_or_default();
    elsewhere
        .execute(
            code,
            ProcedureCommand::Register {
                procedure,
                effective_from: start,
                at: chrono::Utc::now(),
            },
            Default::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Projected by a projector that is not the server's.
    app.project().await;

    let token = app.token(redtape_domain::Role::Business).await;
    let mut body = crate::helpers::timing();
    body["procedure_code"] = code.into();
    let mut filed = None;
    for _ in 0..40 {
        let reply = app.post("/v1/timings", &token, &body).await;
        if reply.status == 201 {
            filed = Some(reply);
            break;
        }
        assert_eq!(
            reply.violations(),
            vec![(
                "/procedure_code".to_string(),
                "unknown_procedure".to_string()
            )]
        );
        actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        filed.is_some(),
        "the server never learned of the new procedure"
    );
    let list = app.get("/v1/procedures", None).await.expect(200);
    assert!(list["items"]
        .as_array()
        .is_some_and(|l| l.iter().any(|p| p["code"] == code)));
}

crate::on_both_stores!(
    the_catalogue_and_both_maps_are_published,
    probes_answer,
    a_procedure_registered_elsewhere_becomes_valid_here,
);
