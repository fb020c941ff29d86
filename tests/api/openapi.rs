//! The committed OpenAPI document is what the code serves.

#[test]
fn committed_spec_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../api-spec/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    let generated = redtape_api::openapi::json();
    if committed != generated {
        panic!(
            "api-spec/openapi.json differs from the code's OpenAPI document.\n\
             Regenerate it with: cargo run -q -p redtape -- openapi > api-spec/openapi.json"
        );
    }
}

#[actix_web::test]
async fn the_served_spec_is_the_committed_one_and_documents_every_route() {
    let Some(app) = crate::helpers::spawn(crate::helpers::Backend::Sqlite).await else {
        return;
    };
    let served = app.get("/openapi.json", None).await.json();
    let generated: serde_json::Value =
        serde_json::from_str(&redtape_api::openapi::json()).unwrap_or_default();
    assert_eq!(served, generated);
    let paths = served["paths"].as_object().cloned().unwrap_or_default();
    for route in [
        "/v1/timings",
        "/v1/complaints",
        "/v1/submissions/{id}",
        "/v1/submissions/{id}/amendments",
        "/v1/submissions/{id}/withdrawal",
        "/v1/procedures",
        "/v1/provinces",
        "/v1/indices",
        "/v1/indices/rankings",
        "/v1/indices/provinces",
        "/v1/indices/trends",
        "/healthz",
        "/readyz",
    ] {
        assert!(paths.contains_key(route), "{route} is not documented");
    }
    // Request schemas come from the domain's drafts, with examples.
    let timing = &served["components"]["schemas"]["TimingDraft"];
    assert_eq!(
        timing["properties"]["procedure_code"]["example"],
        "1.001612"
    );
    assert!(timing["required"]
        .as_array()
        .is_some_and(|r| r.contains(&"channel".into())));
    app.stop().await;
}
