//! A `pg_dump` restored into another PostgreSQL cluster whose transaction counter is lower
//! (docs/operations.md, "Restoring into a new cluster"): after `redtape restamp`, the
//! service projects the restored events and new ones, in order, and its cells equal a
//! rebuild's. The test makes the second cluster itself (`pg_createcluster`, Debian's
//! postgresql-common) on a free port and drops it at the end.

use std::process::Command;

use redtape_domain::Role;

use crate::durability::cli;
use crate::helpers::{in_ci, settings_on, spawn_with, timing, Backend};
use crate::replicas_e2e::dump;

/// A PostgreSQL cluster of its own, stopped and dropped when this is dropped.
struct Cluster {
    version: String,
    name: String,
    port: u16,
}

impl Cluster {
    fn create() -> Cluster {
        let version = std::fs::read_dir("/etc/postgresql")
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .unwrap_or_else(|| panic!("no /etc/postgresql/VERSION"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("{e}"));
        let name = format!(
            "redtape_restore_{}",
            &uuid::Uuid::now_v7().simple().to_string()[20..]
        );
        let cluster = Cluster {
            version,
            name,
            port,
        };
        run(Command::new("pg_createcluster")
            .args([&cluster.version, &cluster.name, "-p", &port.to_string()])
            .args(["--", "--auth=trust"]));
        run(Command::new("pg_ctlcluster").args([&cluster.version, &cluster.name, "start"]));
        cluster
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("pg_dropcluster")
            .args(["--stop", &self.version, &self.name])
            .output();
    }
}

fn run(command: &mut Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn scalar(pool: &sqlx::PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[actix_web::test]
async fn a_dump_restored_into_a_younger_cluster_is_projected_in_order_after_restamp() {
    if Command::new("pg_createcluster")
        .arg("--help")
        .output()
        .is_err()
    {
        assert!(
            !in_ci(),
            "CI=true but pg_createcluster (postgresql-common) is missing"
        );
        eprintln!("\n*** SKIPPED: pg_createcluster is not installed.\n");
        return;
    }
    let Some(source) = spawn_with(Backend::Postgres, &[]).await else {
        return;
    };
    let token = source.token(Role::Business).await;
    let mut ids = Vec::new();
    for i in 0..12 {
        let mut body = timing();
        body["province_code"] = ["79", "01", "48"][i % 3].into();
        ids.push(source.file("/v1/timings", &token, &body).await);
    }
    source.project().await;
    let dir = std::env::temp_dir().join(format!("redtape-restore-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let archive = dir.join("redtape.dump");
    run(Command::new("pg_dump")
        .args(["-Fc", "-f"])
        .arg(&archive)
        .arg(&source.url));
    let Some(redtape_store::Db::Postgres(source_pool)) = Some(source.db.clone()) else {
        unreachable!()
    };
    let source_txid = scalar(&source_pool, "SELECT max(txid) FROM events").await;

    let cluster = Cluster::create();
    let admin = sqlx::PgPool::connect(&cluster.url("postgres"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    sqlx::query("CREATE DATABASE redtape")
        .execute(&admin)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    admin.close().await;
    let url = cluster.url("redtape");
    run(Command::new("pg_restore")
        .args(["--no-owner", "-d", &url])
        .arg(&archive));
    let _ = std::fs::remove_dir_all(&dir);
    let pool = sqlx::PgPool::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // What the test is about: the new cluster's counter is behind the restored ids.
    let counter = scalar(&pool, "SELECT pg_current_xact_id()::text::bigint").await;
    assert!(
        counter < source_txid,
        "the new cluster ({counter}) must be younger than the source ({source_txid})"
    );
    let restored = scalar(&pool, "SELECT count(*) FROM events").await;

    cli(&url, &["restamp"]);
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM events WHERE txid = 0").await,
        restored
    );
    let last_old = scalar(&pool, "SELECT max(position) FROM events").await;
    assert_eq!(last_old, restored, "positions renumbered 1..n");

    // The service on the new cluster: the restored submissions are there, new ones are
    // projected after them.
    let settings = settings_on(&url, &[]).unwrap_or_else(|e| panic!("{e}"));
    let (running, server) = redtape::start(&settings)
        .await
        .unwrap_or_else(|e| panic!("start on the restored store: {e}"));
    actix_web::rt::spawn(server);
    let base = format!("http://{}", running.addr);
    let client = awc::Client::default();
    let mut fresh = Vec::new();
    for _ in 0..5 {
        let mut reply = client
            .post(format!("{base}/v1/timings"))
            .insert_header(("Authorization", format!("Bearer {token}")))
            .send_json(&timing())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reply.status(), 201);
        let body: serde_json::Value = reply.json().await.unwrap_or_else(|e| panic!("{e}"));
        fresh.push(body["id"].as_str().unwrap_or_default().to_string());
    }
    redtape_store::Projector::new(running.db.clone())
        .catch_up()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let all: Vec<String> = ids.iter().chain(&fresh).cloned().collect();
    let observed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM observations WHERE submission_id = ANY($1)")
            .bind(&all)
            .fetch_one(&pool)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        observed as usize,
        all.len(),
        "old and new submissions projected"
    );
    let lag = redtape_store::projector::lag(&running.db)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(lag.events, 0);
    // New events sort after every restored one.
    let first_new: i64 =
        sqlx::query_scalar("SELECT min(position) FROM events WHERE aggregate_id = ANY($1)")
            .bind(&fresh)
            .fetch_one(&pool)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    assert!(first_new > last_old);
    running.stop().await;

    // A second run changes nothing; the cells are a rebuild's.
    let before = dump(&pool, "index_cells").await;
    cli(&url, &["restamp"]);
    assert_eq!(
        scalar(&pool, "SELECT max(position) FROM events").await,
        last_old + 5
    );
    cli(&url, &["rebuild"]);
    assert!(
        before == dump(&pool, "index_cells").await,
        "cells differ from a rebuild"
    );
    pool.close().await;
    source.stop().await;
    drop(cluster);
}
