//! An acknowledged submission survives `kill -9`: the real binary is started, gets a 201,
//! is killed with SIGKILL at once, and restarted; the submission and its observation row are
//! there. Run on both stores.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::helpers::{timing, Backend, TestStore};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_redtape");

pub(crate) fn redtape(url: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("DATABASE_URL", url)
        .env("REDTAPE_BIND", "127.0.0.1:0")
        .env("REDTAPE_WORKERS", "2")
        .env("REDTAPE_LOG_FORMAT", "text")
        .env("RUST_LOG", "warn");
    cmd
}

/// Starts `redtape serve` and returns it with its address, read from its start-up line.
fn serve(url: &str) -> (Child, String) {
    let (child, addr, _) = serve_logging(url, "warn");
    (child, addr)
}

/// Starts `redtape serve` logging at `level`; returns it with its address and every log line
/// it writes (collected as they come).
fn serve_logging(
    url: &str,
    level: &str,
) -> (Child, String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let mut command = redtape(url);
    command.env("RUST_LOG", level);
    spawn_serving(command)
}

/// Spawns `command` (a `redtape serve` made by [`redtape`]) and waits for its start-up line;
/// returns it with its address and every log line it writes.
pub(crate) fn spawn_serving(
    mut command: Command,
) -> (Child, String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = lines.clone();
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {BIN}: {e}"));
    let stderr = child.stderr.take().unwrap_or_else(|| panic!("no stderr"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(mut kept) = kept.lock() {
                kept.push(line.clone());
            }
            if let Some(rest) = line.strip_prefix("redtape listening on http://") {
                let addr = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("redtape did not start: {e}"));
    (child, addr, lines)
}

pub(crate) fn cli(url: &str, args: &[&str]) -> String {
    let out = redtape(url)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "redtape {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

async fn kill_9_after_201_loses_nothing(backend: Backend) {
    let Some(store) = TestStore::create(backend).await else {
        return;
    };
    // The operator's migrate command on an empty store, then again: idempotent.
    cli(&store.url, &["migrate"]);
    cli(&store.url, &["migrate"]);
    let token = cli(&store.url, &["token", "issue", "--role", "business"]);
    assert!(token.starts_with("rt_") && token.len() == 67, "{token}");

    let (mut child, addr) = serve(&store.url);
    let client = awc::Client::default();
    let mut res = client
        .post(format!("http://{addr}/v1/timings"))
        .insert_header(("authorization", format!("Bearer {token}")))
        .insert_header(("content-type", "application/json"))
        .send_body(timing().to_string())
        .await
        .unwrap_or_else(|e| panic!("post: {e}"));
    assert_eq!(res.status().as_u16(), 201);
    child.kill().unwrap_or_else(|e| panic!("kill: {e}")); // SIGKILL: no shutdown code runs
    let _ = child.wait();
    let created: serde_json::Value =
        serde_json::from_slice(&res.body().await.unwrap_or_default()).unwrap_or_default();
    let id = created["id"].as_str().unwrap_or_default().to_string();

    let (mut child, addr) = serve(&store.url);
    let mut res = client
        .get(format!("http://{addr}/v1/submissions/{id}"))
        .insert_header(("authorization", format!("Bearer {token}")))
        .send()
        .await
        .unwrap_or_else(|e| panic!("get: {e}"));
    assert_eq!(res.status().as_u16(), 200);
    let read: serde_json::Value =
        serde_json::from_slice(&res.body().await.unwrap_or_default()).unwrap_or_default();
    assert_eq!(read, created);
    // The restarted server caught the read model up before serving.
    let db = redtape_store::Db::connect(Some(&store.url), &Default::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let row = redtape_store::observations::get(&db, &id)
        .await
        .ok()
        .flatten();
    let row = row.unwrap_or_else(|| panic!("observation row for {id} is missing after restart"));
    assert_eq!((row.status.as_str(), row.last_sequence), ("received", 1));
    child.kill().unwrap_or_else(|e| panic!("kill: {e}"));
    let _ = child.wait();

    // Two starts registered the seed catalogue once.
    let registrations: (i64,) = redtape_store::on_pool!(&db, pool => sqlx::query_as(
        "SELECT count(*) FROM events WHERE aggregate_type = 'Procedure'").fetch_one(pool).await)
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(registrations.0, 12);

    // The operator's rebuild command reproduces the same row.
    cli(&store.url, &["rebuild"]);
    let rebuilt = redtape_store::observations::get(&db, &id)
        .await
        .ok()
        .flatten();
    assert_eq!(rebuilt, Some(row));
    db.close().await;
}

#[actix_web::test]
async fn sqlite_kill_9_after_201_loses_nothing() {
    kill_9_after_201_loses_nothing(Backend::Sqlite).await;
}

#[actix_web::test]
async fn postgres_kill_9_after_201_loses_nothing() {
    kill_9_after_201_loses_nothing(Backend::Postgres).await;
}

/// Issue 13: an enterprise code is replaced by a keyed hash at once; neither the code nor the
/// hash reaches any answer or any log line, at debug level, through a registration, a
/// refused one and a duplicate.
async fn an_enterprise_code_reaches_no_answer_and_no_log(backend: Backend) {
    let Some(store) = TestStore::create(backend).await else {
        return;
    };
    cli(&store.url, &["migrate"]);
    let admin = cli(&store.url, &["token", "issue", "--role", "admin"]);
    let (mut child, addr, lines) = serve_logging(&store.url, "debug");
    let client = awc::Client::default();
    let code = "0311122233";
    let mut answers = Vec::new();
    for (body, status) in [
        (
            serde_json::json!({"enterprise_code": code, "label": "x"}),
            201,
        ),
        (serde_json::json!({"enterprise_code": code}), 409),
        (
            serde_json::json!({"enterprise_code": code, "profile": {"size_class": "huge"}}),
            422,
        ),
        (
            serde_json::json!({"enterprise_code": code, "unknown": 1}),
            422,
        ),
    ] {
        let mut res = client
            .post(format!("http://{addr}/v1/admin/filers"))
            .insert_header(("authorization", format!("Bearer {admin}")))
            .insert_header(("content-type", "application/json"))
            .send_body(body.to_string())
            .await
            .unwrap_or_else(|e| panic!("post: {e}"));
        assert_eq!(res.status().as_u16(), status, "{body}");
        answers.push(String::from_utf8_lossy(&res.body().await.unwrap_or_default()).into_owned());
    }
    // Give the log a moment to be written, then stop the server.
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.kill().unwrap_or_else(|e| panic!("kill: {e}"));
    let _ = child.wait();
    let db = redtape_store::Db::connect(Some(&store.url), &Default::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let payload: String = redtape_store::on_pool!(&db, pool => sqlx::query_scalar(
        "SELECT CAST(payload AS text) FROM events WHERE aggregate_type = 'Filer'")
        .fetch_one(pool).await)
    .unwrap_or_else(|e| panic!("{e}"));
    db.close().await;
    let key = serde_json::from_str::<serde_json::Value>(&payload).unwrap_or_default()
        ["FilerRegistered"]["enterprise_key"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(key.len(), 64, "{payload}");
    assert!(!payload.contains(code));
    let lines = lines.lock().map(|l| l.clone()).unwrap_or_default();
    assert!(lines.len() > 5, "debug logging wrote {} lines", lines.len());
    for text in answers.iter().chain(&lines) {
        assert!(
            !text.contains(code) && !text.contains(&key),
            "leaks: {text}"
        );
    }
}

#[actix_web::test]
async fn sqlite_an_enterprise_code_reaches_no_answer_and_no_log() {
    an_enterprise_code_reaches_no_answer_and_no_log(Backend::Sqlite).await;
}

#[actix_web::test]
async fn postgres_an_enterprise_code_reaches_no_answer_and_no_log() {
    an_enterprise_code_reaches_no_answer_and_no_log(Backend::Postgres).await;
}
