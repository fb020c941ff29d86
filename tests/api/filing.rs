//! Filing timings and complaints, and reading them back.

use redtape_domain::Role;

use crate::helpers::{complaint, timing, TestApp};

async fn a_timing_is_filed_read_back_and_projected(app: &TestApp) {
    let token = app.token(Role::Business).await;
    let reply = app.post("/v1/timings", &token, &timing()).await;
    reply.expect(201);
    let created = reply.json();
    let id = created["id"].as_str().unwrap_or_default().to_string();
    assert_eq!(
        reply.header("location"),
        Some(format!("/v1/submissions/{id}"))
    );
    assert_eq!(created["status"], "received");
    assert_eq!(created["kind"], "timing");
    assert_eq!(created["geography"], "vn-34");
    assert_eq!(created["province_name"], "Thành phố Hồ Chí Minh");
    assert_eq!(created["timing"]["costs"]["external_services"], 1_500_000);
    assert_eq!(created["timing"]["staff_hours"], 6.5);
    assert_eq!(created["history"][0]["event"], "TimingReported");
    assert_eq!(
        created["history"][0]["request_id"].as_str(),
        reply.header("x-request-id").as_deref()
    );
    // UUIDv7: the version nibble is 7.
    assert_eq!(id.chars().nth(14), Some('7'), "{id}");

    let read = app
        .get(&format!("/v1/submissions/{id}"), Some(&token))
        .await;
    assert_eq!(read.status, 200);
    assert_eq!(
        read.json(),
        created,
        "a read returns exactly what the filing returned"
    );

    let row = app
        .observation(&id)
        .await
        .unwrap_or_else(|| panic!("no observation for {id}"));
    assert_eq!(row.kind, "timing");
    assert_eq!(row.status, "received");
    assert_eq!(row.procedure_code, "1.001612");
    assert_eq!(
        (
            row.geography.as_str(),
            row.province_code.as_str(),
            row.province_vn34.as_str()
        ),
        ("vn-34", "79", "79")
    );
    assert_eq!(row.year, 2025);
    assert_eq!(row.official_fees, Some(50_000));
    assert_eq!(row.unofficial_payments, None);
    assert_eq!(row.external_services, Some(1_500_000));
    assert_eq!(row.staff_hours, Some(6.5));
    assert_eq!(row.visits, Some(1));
    assert_eq!(row.last_sequence, 1);
}

async fn a_complaint_on_the_old_map_is_mapped_to_its_successor(app: &TestApp) {
    let token = app.token(Role::Business).await;
    let mut body = complaint();
    // 27 was Bắc Ninh until 2025-06-30; it merged into code 24 (the new Bắc Ninh).
    body["province_code"] = "27".into();
    let reply = app.post("/v1/complaints", &token, &body).await;
    reply.expect(201);
    let created = reply.json();
    assert_eq!(created["geography"], "vn-63");
    assert_eq!(created["province_name"], "Bắc Ninh");
    assert_eq!(
        created["complaint"]["categories"],
        serde_json::json!(["delay", "informal_payment_requested"])
    );
    // The filer sees its own narrative; it is never published (no public endpoint shows it).
    assert_eq!(
        created["complaint"]["narrative"],
        "The officer asked for a payment to speed things up."
    );
    let id = created["id"].as_str().unwrap_or_default();
    let row = app
        .observation(id)
        .await
        .unwrap_or_else(|| panic!("no observation"));
    assert_eq!(
        (
            row.geography.as_str(),
            row.province_code.as_str(),
            row.province_vn34.as_str()
        ),
        ("vn-63", "27", "24")
    );
    assert_eq!(row.year, 2024);
    assert_eq!(
        row.categories.as_deref(),
        Some("delay,informal_payment_requested")
    );
    assert_eq!(row.unofficial_payments, Some(2_000_000));
}

async fn a_pending_timing_counts_in_the_year_it_was_submitted(app: &TestApp) {
    let token = app.token(Role::Business).await;
    let mut body = timing();
    body["submitted_on"] = "2024-12-30".into();
    body["province_code"] = "01".into();
    body.as_object_mut().map(|o| {
        o.remove("completed_on");
        o.remove("outcome")
    });
    let reply = app.post("/v1/timings", &token, &body).await;
    reply.expect(201);
    let id = reply.json()["id"].as_str().unwrap_or_default().to_string();
    let row = app
        .observation(&id)
        .await
        .unwrap_or_else(|| panic!("no observation"));
    assert_eq!(row.year, 2024);
    assert_eq!(row.completed_on, None);
    assert_eq!(row.outcome, None);
}

crate::on_both_stores!(
    a_timing_is_filed_read_back_and_projected,
    a_complaint_on_the_old_map_is_mapped_to_its_successor,
    a_pending_timing_counts_in_the_year_it_was_submitted,
);
