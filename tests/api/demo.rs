//! `redtape demo-data`: realistic, reproducible, and never mixed into real data.

use redtape::demo::Filing;

use crate::helpers::{Backend, TestStore};

async fn rows_without_times(
    db: &redtape_store::Db,
) -> Vec<redtape_store::observations::ObservationRow> {
    let mut rows = redtape_store::observations::all(db)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for row in &mut rows {
        row.filed_at.clear();
        row.updated_at.clear();
    }
    rows
}

async fn demo_data_is_realistic_reproducible_and_guarded(backend: Backend) {
    let (Some(a), Some(b)) = (
        TestStore::create(backend).await,
        TestStore::create(backend).await,
    ) else {
        return;
    };
    let mut dbs = Vec::new();
    for store in [&a, &b] {
        let db = redtape_store::Db::connect(Some(&store.url), &Default::default())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        db.migrate().await.unwrap_or_else(|e| panic!("{e}"));
        dbs.push(db);
    }
    // 400 submissions come from 20 filers; seed 13 gives them every size class (the
    // demo declares medium for about 1 filer in 12).
    let summary = redtape::demo::generate(&dbs[0], 400, 13, false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary.timings + summary.complaints, 400);
    assert!(
        summary.timings > 250 && summary.complaints > 40,
        "{summary:?}"
    );
    assert!(summary.amended > 5 && summary.withdrawn > 0, "{summary:?}");

    let rows = rows_without_times(&dbs[0]).await;
    assert_eq!(rows.len(), 400);
    assert_eq!(
        rows.iter().filter(|r| r.status == "withdrawn").count() as u64,
        summary.withdrawn
    );
    assert_eq!(
        rows.iter().filter(|r| r.amendments == 1).count() as u64,
        summary.amended
    );
    assert!(
        rows.iter().any(|r| r.geography == "vn-63") && rows.iter().any(|r| r.geography == "vn-34")
    );
    assert!(
        rows.iter()
            .any(|r| r.kind == "timing" && r.completed_on.is_none()),
        "some timings are pending"
    );
    assert!(rows.iter().all(|r| (2022..=2026).contains(&r.year)));
    // Filers carry realistic profiles, recorded with each filing: every size class, women- and
    // ethnic-minority-owned firms, and undeclared attributes.
    let sizes: std::collections::BTreeSet<Option<&str>> =
        rows.iter().map(|r| r.size_class.as_deref()).collect();
    assert_eq!(
        sizes,
        [
            None,
            Some("large"),
            Some("medium"),
            Some("micro"),
            Some("small")
        ]
        .into_iter()
        .collect()
    );
    for (what, values) in [
        (
            "woman_owned",
            rows.iter().map(|r| r.woman_owned).collect::<Vec<_>>(),
        ),
        (
            "ethnic_minority_owned",
            rows.iter().map(|r| r.ethnic_minority_owned).collect(),
        ),
    ] {
        for value in [Some(true), Some(false), None] {
            assert!(values.contains(&value), "{what}: no {value:?}");
        }
    }
    let reforms: (i64,) = redtape_store::on_pool!(&dbs[0], pool => sqlx::query_as(
        "SELECT count(*) FROM events WHERE event_type = 'StatutoryTermsChanged'").fetch_one(pool).await)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reforms.0, 1);

    // The same seed on another fresh store files the same submissions, also when they are
    // imported in bulk (the benchmark's loader) instead of filed one command at a time.
    let imported = redtape::demo::generate_with(&dbs[1], 400, 13, false, Filing::Import)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(imported, summary);
    assert_eq!(rows_without_times(&dbs[1]).await, rows);
    assert_eq!(
        redtape_store::db::count_events(&dbs[1]).await.ok(),
        redtape_store::db::count_events(&dbs[0]).await.ok()
    );
    let cells = |db| async move {
        redtape_store::cells::query(db, "vn-34", None, None, None)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let (a_cells, b_cells) = (cells(&dbs[0]).await, cells(&dbs[1]).await);
    assert!(a_cells.len() > 100);
    assert_eq!(a_cells, b_cells);
    // Importing an id that exists fails as a whole and changes nothing.
    let before = redtape_store::db::count_events(&dbs[1]).await.ok();
    let again = redtape::demo::generate_with(&dbs[1], 400, 13, true, Filing::Import).await;
    assert!(again.is_err());
    assert_eq!(redtape_store::db::count_events(&dbs[1]).await.ok(), before);

    // Never into a store that has data, unless forced.
    let refused = redtape::demo::generate(&dbs[0], 10, 8, false).await;
    assert!(refused.is_err_and(|e| e.to_string().contains("already has 400 submissions")));
    assert_eq!(
        redtape_store::db::count_observations(&dbs[0]).await.ok(),
        Some(400)
    );
    for db in dbs {
        db.close().await;
    }
}

#[actix_web::test]
async fn sqlite_demo_data() {
    demo_data_is_realistic_reproducible_and_guarded(Backend::Sqlite).await;
}

#[actix_web::test]
async fn postgres_demo_data() {
    demo_data_is_realistic_reproducible_and_guarded(Backend::Postgres).await;
}
