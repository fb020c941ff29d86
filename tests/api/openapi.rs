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

/// A path template with example values in place of its parameters.
fn concrete(template: &str) -> String {
    template
        .replace("{id}", "0190c3d4-0000-7000-8000-000000000000")
        .replace("{code}", "1.001612")
        .replace("{year}", "2025")
        .replace("{file}", "1.csv")
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
        let path = concrete(template);
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

/// The document's query parameters say what the handlers do (issue 12): a parameter marked
/// required is refused with `required` when absent, and only then; an integer refuses a word
/// and an enumerated one refuses a value outside its list, each naming the parameter.
#[actix_web::test]
async fn query_parameters_are_typed_and_required_as_documented() {
    let Some(app) = crate::helpers::spawn(crate::helpers::Backend::Sqlite).await else {
        return;
    };
    let admin = app.token(redtape_domain::Role::Admin).await;
    let business = app.token(redtape_domain::Role::Business).await;
    let intermediary = app.token(redtape_domain::Role::Intermediary).await;
    // A caller the endpoint admits, so its parameters are what is checked.
    let caller = |path: &str| match path {
        "/v1/submissions" => business.clone(),
        "/v1/members" => intermediary.clone(),
        _ => admin.clone(),
    };
    let spec = app.get("/openapi.json", None).await.json();
    let example = |p: &serde_json::Value| -> String {
        match (&p["example"], &p["schema"]["enum"]) {
            (serde_json::Value::String(s), _) => s.clone(),
            (serde_json::Value::Number(n), _) => n.to_string(),
            (_, serde_json::Value::Array(e)) => e[0].as_str().unwrap_or("").to_string(),
            _ => panic!("a query parameter without an example: {p}"),
        }
    };
    let mut checked = 0;
    for (template, item) in spec["paths"].as_object().unwrap() {
        let path = concrete(template);
        let Some(params) = item["get"]["parameters"].as_array() else {
            continue;
        };
        let admin = caller(&path);
        let query: Vec<&serde_json::Value> = params.iter().filter(|p| p["in"] == "query").collect();
        let required: Vec<(String, String)> = query
            .iter()
            .filter(|p| p["required"] == true)
            .map(|p| (p["name"].as_str().unwrap().to_string(), example(p)))
            .collect();
        let url = |pairs: &[(String, String)]| {
            let q: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{path}?{}", q.join("&"))
        };
        // All required parameters given: no parameter is refused.
        let reply = app.get(&url(&required), Some(&admin)).await;
        assert_ne!(reply.status, 422, "{} with its examples", url(&required));
        for (name, _) in &required {
            let without: Vec<(String, String)> = required
                .iter()
                .filter(|(n, _)| n != name)
                .cloned()
                .collect();
            let reply = app.get(&url(&without), Some(&admin)).await;
            assert_eq!(
                reply.violations(),
                vec![(name.clone(), "required".to_string())],
                "{}",
                url(&without)
            );
            checked += 1;
        }
        for p in &query {
            let name = p["name"].as_str().unwrap().to_string();
            let bad = if p["schema"]["type"] == "integer" {
                "twelve"
            } else if p["schema"]["enum"].is_array() {
                "none-of-these"
            } else {
                continue;
            };
            let mut pairs: Vec<(String, String)> = required
                .iter()
                .filter(|(n, _)| *n != name)
                .cloned()
                .collect();
            pairs.push((name.clone(), bad.to_string()));
            let reply = app.get(&url(&pairs), Some(&admin)).await;
            let violations = reply.violations();
            assert_eq!(violations.len(), 1, "{}: {violations:?}", url(&pairs));
            assert_eq!(violations[0].0, name, "{}", url(&pairs));
            checked += 1;
        }
    }
    assert!(checked >= 30, "{checked}");
    app.stop().await;
}
