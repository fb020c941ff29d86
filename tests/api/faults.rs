//! PostgreSQL going away under filing load (what a restart or a failover does to the server's
//! sessions): every filing is answered 201 or 503 with Retry-After, never 500; filing works
//! again without restarting redtape; nothing acknowledged is lost.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use redtape_domain::Role;
use serde_json::Value;

use crate::helpers::{pg_admin_url, spawn_with, timing, Backend, TestApp};

const CLIENTS: usize = 8;
const LOAD: Duration = Duration::from_secs(4);

/// Terminates every session of `database` but the caller's; returns how many.
async fn terminate_sessions(database: &str) -> i64 {
    let admin = sqlx::PgPool::connect(&pg_admin_url()).await.unwrap();
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(database)
    .fetch_one(&admin)
    .await
    .unwrap();
    admin.close().await;
    killed
}

/// One client filing until the load ends, as a careful client does: a refused filing is
/// sent again with the same Idempotency-Key until it is answered 201 (so every filing it
/// started is acknowledged exactly once). Returns the ids acknowledged, and every refusal as
/// (status, problem type, Retry-After).
async fn file_until(
    app: &TestApp,
    token: &str,
    client: usize,
    until: Instant,
) -> (Vec<String>, Vec<(u16, String, Option<String>)>) {
    let mut acknowledged = Vec::new();
    let mut refused = Vec::new();
    let mut n = 0;
    let mut retries = 0;
    loop {
        let key = format!("fault-{client}-{n}");
        let reply = app
            .post_with(
                "/v1/timings",
                token,
                &timing(),
                &[("idempotency-key", &key)],
            )
            .await;
        if reply.status == 201 {
            acknowledged.push(reply.json()["id"].as_str().unwrap().to_string());
            n += 1;
            retries = 0;
            if Instant::now() >= until {
                break;
            }
        } else {
            let kind = serde_json::from_slice::<serde_json::Value>(&reply.body)
                .ok()
                .and_then(|p| p["type"].as_str().map(str::to_string))
                .unwrap_or_default();
            refused.push((reply.status, kind, reply.header("retry-after")));
            retries += 1;
            assert!(retries < 50, "filing {key} refused 50 times: {refused:?}");
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
    }
    (acknowledged, refused)
}

#[actix_web::test]
async fn postgres_sessions_terminated_under_load_give_only_201_or_503() {
    let Some(app) = spawn_with(
        Backend::Postgres,
        &[
            "--rate-limit-per-minute",
            "0",
            "--daily-submission-cap",
            "0",
        ],
    )
    .await
    else {
        return;
    };
    let database: String = match &app.db {
        redtape_store::Db::Postgres(pool) => sqlx::query_scalar("SELECT current_database()")
            .fetch_one(pool)
            .await
            .unwrap(),
        redtape_store::Db::Sqlite(_) => unreachable!("a PostgreSQL test"),
    };
    let mut tokens = Vec::new();
    for _ in 0..CLIENTS {
        tokens.push(app.token(Role::Business).await);
    }
    let until = Instant::now() + LOAD;
    let killer = async {
        let mut killed = Vec::new();
        for _ in 0..8 {
            actix_web::rt::time::sleep(Duration::from_millis(400)).await;
            killed.push(terminate_sessions(&database).await);
        }
        killed
    };
    let clients = futures::future::join_all(
        tokens
            .iter()
            .enumerate()
            .map(|(i, token)| file_until(&app, token, i, until)),
    );
    let (killed, results) = futures::join!(killer, clients);
    assert!(
        killed.iter().all(|k| *k > 0),
        "each round terminated the server's sessions: {killed:?}"
    );

    let mut acknowledged = Vec::new();
    let mut refusals: BTreeMap<(u16, String), usize> = BTreeMap::new();
    for (ids, refused) in results {
        acknowledged.extend(ids);
        for (status, kind, retry_after) in refused {
            if status == 503 {
                assert!(retry_after.is_some(), "a 503 says when to retry");
            }
            *refusals.entry((status, kind)).or_default() += 1;
        }
    }
    eprintln!(
        "fault: {} acknowledged, refused {refusals:?}, sessions terminated {killed:?}",
        acknowledged.len()
    );
    for (status, kind) in refusals.keys() {
        assert_eq!(
            (*status, kind.as_str()),
            (503, "/problems/unavailable"),
            "only 503 unavailable besides 201: {refusals:?}"
        );
    }
    assert!(
        acknowledged.len() > 20,
        "filing went on: {}",
        acknowledged.len()
    );

    // Filing works again without a restart: the pool has replaced what was terminated.
    let reply = app.post("/v1/timings", &tokens[0], &timing()).await;
    acknowledged.push(reply.expect(201)["id"].as_str().unwrap().to_string());

    // Nothing acknowledged is lost: each has its events and, once projected, its observation.
    app.project().await;
    let observed: std::collections::BTreeSet<String> = redtape_store::observations::all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.submission_id)
        .collect();
    for id in &acknowledged {
        assert!(
            observed.contains(id),
            "acknowledged {id} has no observation"
        );
    }
    // Every refused filing was retried to its 201, so nothing else may have been counted.
    assert_eq!(observed.len(), acknowledged.len());
    app.stop().await;
}

/// A TCP proxy in front of PostgreSQL that a test can cut: what the service sees when the
/// database goes down (connections dropped, new ones closed at once) or behind a dead network
/// (new connections accepted and never answered).
mod proxy {
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::sync::Arc;

    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::watch;

    pub const FORWARD: u8 = 0;
    pub const DOWN: u8 = 1;
    pub const BLACKHOLE: u8 = 2;

    pub struct Proxy {
        pub port: u16,
        mode: Arc<AtomicU8>,
        cut: watch::Sender<u64>,
    }

    impl Proxy {
        pub async fn start(upstream: String) -> Proxy {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let mode = Arc::new(AtomicU8::new(FORWARD));
            let (cut, _) = watch::channel(0u64);
            let (accept_mode, accept_cut) = (mode.clone(), cut.clone());
            tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    let mut cuts = accept_cut.subscribe();
                    match accept_mode.load(Ordering::SeqCst) {
                        DOWN => drop(client),
                        BLACKHOLE => {
                            tokio::spawn(async move {
                                let _ = cuts.changed().await;
                                drop(client);
                            });
                        }
                        _ => {
                            let upstream = upstream.clone();
                            tokio::spawn(async move {
                                let Ok(mut server) = TcpStream::connect(&upstream).await else {
                                    return;
                                };
                                tokio::select! {
                                    _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                                    _ = cuts.changed() => {}
                                }
                            });
                        }
                    }
                }
            });
            Proxy { port, mode, cut }
        }

        /// Switches mode, dropping every connection open through the proxy.
        pub fn set(&self, mode: u8) {
            self.mode.store(mode, Ordering::SeqCst);
            self.cut.send_modify(|n| *n += 1);
        }
    }
}

/// Asserts a 503 with Retry-After that took at most `within`.
fn unavailable_within(
    what: &str,
    within: Duration,
    started: Instant,
    reply: &crate::helpers::Reply,
) {
    let took = started.elapsed();
    let problem = reply.problem(503);
    assert_eq!(problem["type"], "/problems/unavailable", "{what}");
    assert!(reply.header("retry-after").is_some(), "{what}");
    assert!(took <= within, "{what} took {took:?}");
    eprintln!("fault: {what}: 503 in {took:?}");
}

#[actix_web::test]
async fn postgres_down_or_unreachable_is_503_within_2_s_and_readyz_within_1_s() {
    let Some(mut store) = crate::helpers::TestStore::create(Backend::Postgres).await else {
        return;
    };
    let options: sqlx::postgres::PgConnectOptions = store.url.parse().unwrap();
    let upstream = format!("{}:{}", options.get_host(), options.get_port());
    let proxy = proxy::Proxy::start(upstream.clone()).await;
    store.url = store
        .url
        .replacen(&upstream, &format!("127.0.0.1:{}", proxy.port), 1);
    assert!(store.url.contains(&proxy.port.to_string()), "{}", store.url);
    let app = crate::helpers::spawn_configured(
        Backend::Postgres,
        store,
        &["--rate-limit-per-minute", "0"],
    )
    .await
    .unwrap();
    let token = app.token(Role::Business).await;
    let before = app.file("/v1/timings", &token, &timing()).await;

    for (mode, name) in [(proxy::DOWN, "down"), (proxy::BLACKHOLE, "unreachable")] {
        proxy.set(mode);
        let key = format!("while-{name}");
        let started = Instant::now();
        let reply = app
            .post_with(
                "/v1/timings",
                &token,
                &timing(),
                &[("idempotency-key", &key)],
            )
            .await;
        // The pool waits 2 s for a connection; the answer must not take much longer.
        let what = format!("filing, {name}");
        unavailable_within(&what, Duration::from_millis(3500), started, &reply);
        let started = Instant::now();
        let reply = app.get("/readyz", None).await;
        let what = format!("/readyz, {name}");
        unavailable_within(&what, Duration::from_millis(1500), started, &reply);
    }

    // Back up: filing works again without a restart (the key refused meanwhile included).
    proxy.set(proxy::FORWARD);
    let mut after = None;
    for _ in 0..20 {
        let reply = app
            .post_with(
                "/v1/timings",
                &token,
                &timing(),
                &[("idempotency-key", "while-down")],
            )
            .await;
        if reply.status == 201 {
            after = Some(reply.json()["id"].as_str().unwrap().to_string());
            break;
        }
        assert_eq!(reply.status, 503);
        actix_web::rt::time::sleep(Duration::from_millis(250)).await;
    }
    let after = after.expect("filing works again once PostgreSQL is back");
    // The live projector recovers by itself too: the lag it reports drains to zero.
    let mut lag = Value::Null;
    for _ in 0..40 {
        let ready = app.get("/readyz", None).await.expect(200);
        lag = ready["projection"]["lag_events"].clone();
        if lag == 0 {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(lag, 0, "the live projector caught up after the outage");
    app.project().await;
    let observed: Vec<String> = redtape_store::observations::all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.submission_id)
        .collect();
    let mut expected = vec![before, after];
    expected.sort();
    assert_eq!(observed, expected);
    app.stop().await;
}
