//! `rebuild` replays the log into read models identical to the incrementally maintained ones.

use redtape_domain::Role;
use serde_json::json;

use crate::helpers::{complaint, timing, TestApp};

async fn a_rebuild_gives_identical_rows(app: &TestApp) {
    let tokens = [
        app.token(Role::Business).await,
        app.token(Role::Business).await,
    ];
    let provinces_2024 = ["01", "79", "27", "48", "92"];
    let mut ids = Vec::new();
    for i in 0..40usize {
        let token = &tokens[i % 2];
        let reply = if i % 3 == 0 {
            let mut body = complaint();
            body["province_code"] = provinces_2024[i % 5].into();
            body["visits"] = (i as i64).into();
            app.post("/v1/complaints", token, &body).await
        } else {
            let mut body = timing();
            body["costs"]["official_fees"] = (1000 * i as i64).into();
            app.post("/v1/timings", token, &body).await
        };
        reply.expect(201);
        ids.push((
            i,
            reply.json()["id"].as_str().unwrap_or_default().to_string(),
        ));
    }
    for (i, id) in &ids {
        let token = &tokens[i % 2];
        if i % 4 == 1 {
            let amend =
                json!({"reason": "fix", "changes": {"staff_hours": (*i as f64) / 2.0 + 0.25}});
            assert_eq!(
                app.post(&format!("/v1/submissions/{id}/amendments"), token, &amend)
                    .await
                    .status,
                200
            );
        }
        if i % 5 == 2 {
            assert_eq!(
                app.post(
                    &format!("/v1/submissions/{id}/withdrawal"),
                    token,
                    &json!({})
                )
                .await
                .status,
                200
            );
        }
    }
    // Officers moderate and respond; one verified submission is then amended (back to
    // received).
    let officer = app.token(Role::Officer).await;
    let (mut verified, mut rejected, mut responses) = (0, 0, 0);
    for (i, id) in &ids {
        if i % 5 == 2 {
            continue; // withdrawn
        }
        if i % 3 == 1 {
            let path = format!("/v1/submissions/{id}/verification");
            app.post(&path, &officer, &json!({})).await.expect(200);
            verified += 1;
        }
        if i % 7 == 0 {
            let path = format!("/v1/submissions/{id}/rejection");
            let reason = json!({"reason": "implausible"});
            app.post(&path, &officer, &reason).await.expect(200);
            rejected += 1;
        }
        if i % 4 == 0 {
            let path = format!("/v1/submissions/{id}/responses");
            let body = json!({"agency": format!("Agency {}", i % 3), "text": "seen", "status": "in_progress"});
            app.post(&path, &officer, &body).await.expect(201);
            responses += 1;
        }
    }
    let amend = json!({"reason": "late fix", "changes": {"visits": 7}});
    app.post(
        &format!("/v1/submissions/{}/amendments", ids[4].1),
        &tokens[0],
        &amend,
    )
    .await
    .expect(200);
    app.project().await;
    let incremental = redtape_store::observations::all(&app.db)
        .await
        .unwrap_or_default();
    let count = |status: &str| incremental.iter().filter(|r| r.status == status).count();
    // 10 verified, of which one (28) was then rejected and one (4) amended; 5 rejected.
    assert_eq!(
        (count("verified"), count("rejected")),
        (8, 5),
        "(verified, rejected)"
    );
    assert_eq!((verified, rejected, responses), (10, 5, 8));
    let response_rows = redtape_store::moderation::responses(&app.db, None, None)
        .await
        .unwrap();
    assert_eq!(response_rows.len(), responses);
    assert_eq!(incremental.len(), 40);
    assert_eq!(
        incremental
            .iter()
            .filter(|r| r.status == "withdrawn")
            .count(),
        8
    );
    assert_eq!(
        incremental.iter().filter(|r| r.amendments == 1).count(),
        10 + 1
    );

    let procedures = procedure_rows(app).await;
    assert_eq!(procedures.len(), 12);
    let indexes = observation_indexes(app).await;
    let expected = match app.backend {
        // The primary key's index, named as its constraint, and four more (the partial
        // index on intermediaries among them).
        crate::helpers::Backend::Postgres => 5,
        crate::helpers::Backend::Sqlite => 4,
    };
    assert_eq!(indexes.len(), expected, "{indexes:?}");
    let cells = all_cells(app).await;
    let marked: i32 = cells
        .iter()
        .filter(|c| c.geography == "vn-34" && c.province_code == "all")
        .map(|c| c.n_verified)
        .sum();
    assert_eq!(marked, 8, "the cells count the verified observations");
    // The filers and tokens the test registered and issued are events too.
    let mut accounts = 0;
    for aggregate in ["Filer", "Token"] {
        accounts += redtape_store::db::count_events_of(&app.db, aggregate)
            .await
            .unwrap() as u64;
    }
    assert!(accounts >= 2, "{accounts}");
    let replayed = redtape_store::Projector::new(app.db.clone())
        .rebuild()
        .await
        .unwrap_or_else(|e| panic!("rebuild: {e}"));
    assert_eq!(
        replayed,
        12 + 40 + 10 + 8 + verified + rejected + responses as u64 + 1 + accounts,
        "every event replayed once (12 procedure registrations)"
    );
    assert_eq!(
        redtape_store::moderation::responses(&app.db, None, None)
            .await
            .unwrap(),
        response_rows,
        "the responses read model is rebuilt row for row"
    );
    assert_eq!(
        procedure_rows(app).await,
        procedures,
        "the catalogue is rebuilt byte for byte"
    );
    let rebuilt = redtape_store::observations::all(&app.db)
        .await
        .unwrap_or_default();
    assert_eq!(rebuilt, incremental);
    assert_eq!(
        observation_indexes(app).await,
        indexes,
        "the rebuild leaves the indexes it deferred as the migrations made them"
    );
    assert_eq!(
        all_cells(app).await,
        cells,
        "every cell is rebuilt identically"
    );
    // Projecting again after a rebuild applies nothing twice.
    app.project().await;
    assert_eq!(
        redtape_store::observations::all(&app.db)
            .await
            .unwrap_or_default(),
        incremental
    );
}

/// The acceptance test: a few thousand generated submissions (several years, both
/// maps, amendments, withdrawals and a reform), projected live by the running server while
/// they are filed, then rebuilt: every observation, procedure and index cell is identical.
async fn a_rebuild_of_generated_data_gives_identical_cells(app: &TestApp) {
    let summary = redtape::demo::generate(&app.db, 3000, 11, false)
        .await
        .unwrap_or_else(|e| panic!("demo data: {e}"));
    app.project().await;
    let observations = redtape_store::observations::all(&app.db)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(observations.len(), 3000);
    let procedures = procedure_rows(app).await;
    let cells = all_cells(app).await;
    // Enough cells, on both maps and some suppressed, for the comparison to mean something.
    assert!(cells.len() > 500, "{} cells", cells.len());
    assert!(cells.iter().any(|c| c.geography == "vn-63"));
    assert!(cells.iter().any(|c| c.suppressed == 1));
    assert!(cells
        .iter()
        .any(|c| c.suppressed == 0 && c.median_days_ci_low.is_some()));
    let events = 12 + 1 + 3000 + summary.amended + summary.withdrawn;
    the_stored_cbi_is_the_methodologys(&cells);
    // CBI rows stored before their scores were (migration 0011) get them at the next start,
    // exactly as the projector writes them.
    redtape_store::on_pool!(&app.db, pool => sqlx::query(
        "UPDATE index_cbi SET score_days = NULL, score_cost = NULL, score_informal = NULL, \
         score_on_time = NULL WHERE year = 2024",
    )
    .execute(pool)
    .await
    .map(|_| ()))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(all_cells(app).await, cells, "the scores are gone");
    let projector = redtape_store::Projector::new(app.db.clone());
    let filled = projector.fill_missing_scores().await.unwrap();
    assert!(filled >= 5, "{filled} groups");
    assert_eq!(
        all_cells(app).await,
        cells,
        "the scores are back, identical"
    );
    assert_eq!(projector.fill_missing_scores().await.unwrap(), 0);

    let replayed = redtape_store::Projector::new(app.db.clone())
        .rebuild()
        .await
        .unwrap_or_else(|e| panic!("rebuild: {e}"));
    assert_eq!(replayed, events);
    assert_eq!(procedure_rows(app).await, procedures);
    assert_eq!(
        redtape_store::observations::all(&app.db)
            .await
            .unwrap_or_default(),
        observations
    );
    let rebuilt = all_cells(app).await;
    assert_eq!(rebuilt.len(), cells.len());
    for (a, b) in rebuilt.iter().zip(&cells) {
        assert_eq!(a, b, "cell differs after rebuild");
    }
}

crate::on_both_stores!(
    a_rebuild_gives_identical_rows,
    a_rebuild_of_generated_data_gives_identical_cells,
    cells_stored_by_1_0_are_recomputed_once_by_1_1
);

/// Each stored CBI, rank and score equals the methodology's computation over its group's
/// stored cells (methodology §5), so a ranking that reads them shows what it would compute.
fn the_stored_cbi_is_the_methodologys(cells: &[redtape_store::cells::CellRecord]) {
    let mut groups: std::collections::BTreeMap<_, Vec<_>> = Default::default();
    // The CBI compares provinces only: no national or breakdown cell (methodology §3, §7).
    for c in cells
        .iter()
        .filter(|c| redtape_index::area::is_province_key(&c.province_code))
    {
        groups
            .entry((c.geography.clone(), c.year, c.procedure_code.clone()))
            .or_default()
            .push(c);
    }
    let mut ranked = 0;
    for members in groups.values() {
        let inputs: Vec<redtape_index::cbi::ProvinceCell> = members
            .iter()
            .map(|c| redtape_index::cbi::ProvinceCell {
                province: c.province_code.clone(),
                suppressed: c.suppressed != 0,
                median_days: c.median_days,
                median_cost: c.median_cost,
                informal_payment_rate: c.informal_payment_rate,
                on_time_rate: c.on_time_rate,
            })
            .collect();
        for (c, r) in members.iter().zip(redtape_index::cbi::compute(&inputs)) {
            assert_eq!(c.cbi, r.cbi, "{c:?}");
            assert_eq!(c.cbi_rank.map(|r| r as usize), r.rank, "{c:?}");
            let stored = [
                c.score_days,
                c.score_cost,
                c.score_informal,
                c.score_on_time,
            ];
            assert_eq!(stored, r.scores, "{c:?}");
            ranked += usize::from(r.rank.is_some());
        }
    }
    assert!(ranked > 30, "{ranked} ranked cells");
}

pub(crate) async fn all_cells(app: &TestApp) -> Vec<redtape_store::cells::CellRecord> {
    let mut cells = Vec::new();
    use redtape_store::cells::Areas;
    for geography in ["vn-34", "vn-63"] {
        // Provinces and the nation, then the breakdown groups (1.1).
        for areas in [Areas::Indices(None), Areas::Breakdowns(None)] {
            cells.extend(
                redtape_store::cells::query_page(&app.db, geography, None, None, areas, None, None)
                    .await
                    .unwrap_or_else(|e| panic!("{e}")),
            );
        }
    }
    cells
}

async fn procedure_rows(app: &TestApp) -> Vec<(String, String, i64)> {
    redtape_store::on_pool!(&app.db, pool => sqlx::query_as(
        "SELECT code, timeline, last_sequence FROM procedures ORDER BY code")
        .fetch_all(pool).await)
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The secondary indexes of `observations` and their definitions.
async fn observation_indexes(app: &TestApp) -> Vec<(String, String)> {
    let sql = match app.backend {
        crate::helpers::Backend::Postgres => {
            "SELECT indexname::text, indexdef || coalesce(' / ' || c.conname::text, '') \
             FROM pg_indexes i LEFT JOIN pg_constraint c ON c.conname = i.indexname \
             WHERE tablename = 'observations' ORDER BY indexname"
        }
        crate::helpers::Backend::Sqlite => {
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' \
             AND tbl_name = 'observations' AND sql IS NOT NULL ORDER BY name"
        }
    };
    redtape_store::on_pool!(&app.db, pool => sqlx::query_as(sql).fetch_all(pool).await)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A store whose cells a 1.0 service computed (no national or breakdown cell, no
/// `suppression`, stamped 1.0) is recomputed once at the first start on 1.1, to exactly what
/// the projector keeps; the next start finds nothing to do.
async fn cells_stored_by_1_0_are_recomputed_once_by_1_1(app: &TestApp) {
    let token = app.token(redtape_domain::Role::Business).await;
    for province in ["79", "79", "79", "79", "79", "01"] {
        let mut body = crate::helpers::timing();
        body["province_code"] = serde_json::json!(province);
        app.post("/v1/timings", &token, &body).await.expect(201);
    }
    app.project().await;
    let current = all_cells(app).await;
    assert!(current
        .iter()
        .any(|c| c.suppression.as_deref() == Some("secondary")));
    redtape_store::on_pool!(&app.db, pool => async {
        sqlx::query("DELETE FROM index_cells WHERE province_code = 'all' \
                     OR province_code LIKE '%=%'").execute(pool).await?;
        sqlx::query("UPDATE index_cells SET methodology_version = '1.0', suppression = NULL")
            .execute(pool).await?;
        // 1.0 published 79 (n = 5), which 1.1 hides beside the lone 01.
        sqlx::query("UPDATE index_cells SET suppressed = 0 WHERE province_code = '79'")
            .execute(pool).await.map(|_| ())
    }.await)
    .unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(all_cells(app).await, current);
    let projector = redtape_store::Projector::new(app.db.clone());
    assert!(projector.upgrade_methodology().await.unwrap());
    assert_eq!(all_cells(app).await, current);
    assert!(!projector.upgrade_methodology().await.unwrap());
}
