//! Three `redtape serve` processes on one PostgreSQL database behind HAProxy (health checks
//! on `/readyz`), under filing load: the projector leader is killed with SIGKILL, then an
//! API-only replica, then both are started again. Nothing acknowledged is lost, another
//! replica takes over projecting within 5 s, clients see no 5xx but 503 with `Retry-After`,
//! and at the end the cells and composite rows equal `redtape rebuild`'s, byte for byte.
//!
//! Clients retry a refused or broken filing with the same `Idempotency-Key` (what the API
//! asks of them), and HAProxy re-sends a request whose server died before answering to
//! another one (`retry-on conn-failure empty-response`): the key makes that safe.
//!
//! HAProxy is Debian's package; `.ci/run` installs it. Without it the test says so and
//! passes, except under `CI=true`, where it fails.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::durability::{cli, redtape, spawn_serving};
use crate::helpers::{in_ci, timing, Backend, TestStore};

/// A free port on 127.0.0.1 (bound and released; nothing else here takes ports meanwhile).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// A `redtape serve` process on a fixed port.
struct Replica {
    child: Option<Child>,
}

impl Replica {
    fn start(url: &str, port: u16) -> Replica {
        let mut command = redtape(url);
        command
            .env("REDTAPE_BIND", format!("127.0.0.1:{port}"))
            .env("REDTAPE_RATE_LIMIT_PER_MINUTE", "0")
            .env("REDTAPE_DAILY_SUBMISSION_CAP", "0")
            .env("REDTAPE_DB_MAX_CONNECTIONS", "8");
        let (child, _, _) = spawn_serving(command);
        Replica { child: Some(child) }
    }

    fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// HAProxy in front of the replicas, in the foreground, killed when dropped.
struct Proxy {
    port: u16,
    child: Child,
    _dir: tempdir::Dir,
}

mod tempdir {
    /// A directory removed when dropped.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Proxy {
    fn start(replicas: &[u16]) -> Proxy {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("redtape-haproxy-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let servers: String = replicas
            .iter()
            .enumerate()
            .map(|(i, p)| format!("    server r{i} 127.0.0.1:{p} check\n"))
            .collect();
        // A 503 of HAProxy's own (no replica up) is a problem with Retry-After, like the
        // service's. Requests are buffered so that one whose server died can be re-sent.
        let config = format!(
            "global\n    maxconn 512\n\
             defaults\n    mode http\n    timeout connect 1s\n    timeout client 30s\n\
             \x20   timeout server 30s\n    timeout queue 5s\n    retries 3\n\
             \x20   option redispatch 1\n\
             \x20   retry-on conn-failure empty-response response-timeout\n\
             \x20   option http-buffer-request\n\
             \x20   http-error status 503 content-type application/problem+json hdr Retry-After 1 \
             string '{{\"type\":\"/problems/unavailable\",\"title\":\"Service unavailable\",\
             \"status\":503,\"detail\":\"no replica is ready; retry shortly\"}}'\n\
             frontend api\n    bind 127.0.0.1:{port}\n    default_backend replicas\n\
             backend replicas\n    balance roundrobin\n    option httpchk GET /readyz\n\
             \x20   http-check expect status 200\n\
             \x20   default-server inter 250ms fall 2 rise 2\n{servers}"
        );
        let file = dir.join("haproxy.cfg");
        std::fs::write(&file, config).unwrap_or_else(|e| panic!("{e}"));
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn haproxy: {e}"));
        Proxy {
            port,
            child,
            _dir: tempdir::Dir(dir),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn haproxy_available() -> bool {
    Command::new("haproxy")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn client() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish()
}

/// Whether the replica on `port` is ready and projects (`None`: not answering).
async fn projecting(port: u16) -> Option<bool> {
    let mut reply = client()
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .timeout(Duration::from_secs(1))
        .send()
        .await
        .ok()?;
    let body: Value = reply.json().await.ok()?;
    body["projection"]["projecting"].as_bool()
}

/// What the clients saw.
#[derive(Default)]
struct Seen {
    acknowledged: BTreeSet<String>,
    /// 5xx answers other than a 503 with Retry-After, and transport errors.
    violations: Vec<String>,
    unavailable: usize,
}

/// Files timings through the proxy until `stop`, retrying each with its own key.
async fn file_until(base: String, token: String, stop: Arc<AtomicBool>, seen: Arc<Mutex<Seen>>) {
    let client = client();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let key = uuid::Uuid::now_v7().to_string();
        // Spread over provinces, days and costs, so there are cells with spread to compare.
        n += 1;
        let mut body = timing();
        body["province_code"] = ["79", "01", "48", "92"][(n % 4) as usize].into();
        body["completed_on"] = format!("2025-09-{:02}", 3 + n % 20).into();
        body["costs"]["external_services"] = (100_000 * (n % 37)).into();
        for _attempt in 0..50 {
            let sent = client
                .post(format!("{base}/v1/timings"))
                .insert_header(("Authorization", format!("Bearer {token}")))
                .insert_header(("Idempotency-Key", key.as_str()))
                .send_json(&body)
                .await;
            let mut reply = match sent {
                Ok(reply) => reply,
                Err(e) => {
                    seen.lock()
                        .unwrap()
                        .violations
                        .push(format!("transport: {e}"));
                    break;
                }
            };
            let status = reply.status().as_u16();
            let retry_after = reply.headers().contains_key("retry-after");
            let body: Value = reply.json().await.unwrap_or(Value::Null);
            match status {
                201 => {
                    let id = body["id"].as_str().unwrap_or_default().to_string();
                    seen.lock().unwrap().acknowledged.insert(id);
                    break;
                }
                503 if retry_after => {
                    seen.lock().unwrap().unavailable += 1;
                    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
                }
                // Another request with this key is still being answered (a re-sent one).
                409 if retry_after => {
                    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
                }
                other => {
                    seen.lock()
                        .unwrap()
                        .violations
                        .push(format!("{other}: {body}"));
                    break;
                }
            }
        }
    }
}

/// Every row of the table, as PostgreSQL prints it, sorted: to compare read models byte for
/// byte.
pub(crate) async fn dump(pool: &sqlx::PgPool, table: &str) -> String {
    sqlx::query_scalar(&format!(
        "SELECT coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '') FROM {table} t"
    ))
    .fetch_one(pool)
    .await
    .unwrap_or_else(|e| panic!("dump {table}: {e}"))
}

#[actix_web::test]
async fn replicas_behind_haproxy_survive_kill_9_of_the_leader_and_of_an_api_replica() {
    if !haproxy_available() {
        assert!(
            !in_ci(),
            "CI=true but haproxy is not installed (.ci/run installs it)"
        );
        eprintln!("\n*** SKIPPED: haproxy is not installed (apt-get install haproxy).\n");
        return;
    }
    let Some(store) = TestStore::create(Backend::Postgres).await else {
        return;
    };
    cli(&store.url, &["migrate"]);
    let tokens: Vec<String> = (0..4)
        .map(|_| cli(&store.url, &["token", "issue", "--role", "business"]))
        .collect();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut replicas: Vec<Replica> = ports
        .iter()
        .map(|p| Replica::start(&store.url, *p))
        .collect();
    let proxy = Proxy::start(&ports);
    let base = format!("http://127.0.0.1:{}", proxy.port);
    let mut up = false;
    for _ in 0..100 {
        if let Ok(reply) = client().get(format!("{base}/readyz")).send().await {
            if reply.status() == 200 {
                up = true;
                break;
            }
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "haproxy did not route to a ready replica");

    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let clients: Vec<_> = (0..8)
        .map(|i| {
            actix_web::rt::spawn(file_until(
                base.clone(),
                tokens[i % tokens.len()].clone(),
                stop.clone(),
                seen.clone(),
            ))
        })
        .collect();
    actix_web::rt::time::sleep(Duration::from_secs(2)).await;

    // Exactly one replica projects; kill it, and time the takeover.
    let mut states = Vec::new();
    for p in &ports {
        states.push(projecting(*p).await);
    }
    let leaders: Vec<usize> = (0..3).filter(|i| states[*i] == Some(true)).collect();
    assert_eq!(leaders.len(), 1, "one leader among {states:?}");
    let leader = leaders[0];
    replicas[leader].kill_9();
    let killed = Instant::now();
    let mut new_leader = None;
    while killed.elapsed() < Duration::from_secs(10) && new_leader.is_none() {
        for i in (0..3).filter(|i| *i != leader) {
            if projecting(ports[i]).await == Some(true) {
                new_leader = Some(i);
            }
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let takeover = killed.elapsed();
    let new_leader = new_leader.expect("no replica took over");
    assert!(
        takeover < Duration::from_secs(5),
        "takeover took {takeover:?}"
    );
    actix_web::rt::time::sleep(Duration::from_secs(1)).await;

    // Then the API-only replica.
    let api_only = (0..3)
        .find(|i| *i != leader && *i != new_leader)
        .unwrap_or_else(|| panic!("three replicas"));
    replicas[api_only].kill_9();
    actix_web::rt::time::sleep(Duration::from_secs(2)).await;

    // Both come back on their ports and rejoin behind the proxy.
    replicas[leader] = Replica::start(&store.url, ports[leader]);
    replicas[api_only] = Replica::start(&store.url, ports[api_only]);
    actix_web::rt::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.await;
    }
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    eprintln!(
        "replicas e2e: {} acknowledged, {} answers 503 with Retry-After, takeover in {takeover:?}",
        seen.acknowledged.len(),
        seen.unavailable
    );
    assert!(seen.violations.is_empty(), "{:?}", seen.violations);
    assert!(seen.acknowledged.len() > 100, "{}", seen.acknowledged.len());

    // Nothing acknowledged is lost, and the leader catches up with all of it.
    let pool = sqlx::PgPool::connect(&store.url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ids: Vec<String> = seen.acknowledged.iter().cloned().collect();
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT aggregate_id) FROM events WHERE aggregate_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_one(&pool)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stored as usize, ids.len(), "acknowledged submissions lost");
    let mut caught_up = false;
    for _ in 0..200 {
        let observed: i64 =
            sqlx::query_scalar("SELECT count(*) FROM observations WHERE submission_id = ANY($1)")
                .bind(&ids)
                .fetch_one(&pool)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        let lag = redtape_store::projector::lag(&redtape_store::Db::Postgres(pool.clone()))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        if observed as usize == ids.len() && lag.events == 0 {
            caught_up = true;
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(caught_up, "the projector did not catch up");
    // Stop every replica (the projector refreshes waiting intervals when idle, and its last
    // pass runs at shutdown), then compare with a rebuild.
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    drop(proxy);
    for replica in &mut replicas {
        if let Some(child) = replica.child.as_mut() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let _ = child.wait();
            replica.child = None;
        }
    }
    let live = (
        dump(&pool, "index_cells").await,
        dump(&pool, "index_cbi").await,
    );
    // Four provinces, the nation and a group of each of the four profile dimensions.
    assert!(live.0.lines().count() >= 9, "cells: {}", live.0);
    cli(&store.url, &["rebuild"]);
    let rebuilt = (
        dump(&pool, "index_cells").await,
        dump(&pool, "index_cbi").await,
    );
    assert!(live.0 == rebuilt.0, "index_cells differ from a rebuild");
    assert!(live.1 == rebuilt.1, "index_cbi differs from a rebuild");
    pool.close().await;
}
