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
async fn the_served_spec_is_the_committed_one_and_every_operation_is_routed() {
    let Some(app) = crate::helpers::spawn(crate::helpers::Backend::Sqlite).await else {
        return;
    };
    let served = app.get("/openapi.json", None).await.json();
    let generated: serde_json::Value =
        serde_json::from_str(&redtape_api::openapi::json()).unwrap_or_default();
    assert_eq!(served, generated);
    // Every documented operation reaches a handler: never the default service's 404 ("no such
    // endpoint") or 405. Routes and the document come from one list (openapi::endpoints!);
    // this checks the list took effect on both sides.
    let paths = served["paths"].as_object().cloned().unwrap_or_default();
    assert!(paths.len() >= 25, "{}", paths.len());
    let mut operations = 0;
    for (template, item) in &paths {
        let path = template
            .replace("{id}", "0190c3d4-0000-7000-8000-000000000000")
            .replace("{code}", "1.001612")
            .replace("{year}", "2025")
            .replace("{file}", "1.csv");
        assert!(
            !path.contains('{'),
            "a path parameter this test does not know: {template}"
        );
        for method in item.as_object().unwrap().keys() {
            let method = method.to_ascii_uppercase();
            let reply = app.request(&method, &path, None, &[], None).await;
            let detail = serde_json::from_slice::<serde_json::Value>(&reply.body)
                .map(|p| p["detail"].as_str().unwrap_or("").to_string())
                .unwrap_or_default();
            assert!(
                reply.status != 405
                    && !(reply.status == 404 && detail.contains("no such endpoint")),
                "{method} {path} is documented but not routed: {} {detail}",
                reply.status
            );
            operations += 1;
        }
    }
    assert!(operations >= 30, "{operations}");
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
