//! Shared test helpers: spawn the real application (the same `redtape::start` the binary
//! runs) on a random port against a fresh store, and talk to it over real HTTP.
//!
//! - SQLite: a fresh file in a fresh temporary directory, removed afterwards.
//! - PostgreSQL: a fresh database `redtape_test_<uuid>` on the server named by
//!   `REDTAPE_TEST_PG` (default `postgres://postgres@127.0.0.1:5432/postgres`), dropped
//!   afterwards (also when the test panics). When the server is unreachable the test is
//!   skipped with a loud message, except under `CI=true`, where it fails.

use std::path::PathBuf;

use awc::http::header;
use redtape::{Running, Settings};
use redtape_domain::Role;
use redtape_store::Db;
use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn pg_admin_url() -> String {
    std::env::var("REDTAPE_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A store that exists for one test and is removed when dropped.
pub struct TestStore {
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(PathBuf),
    PgDatabase(String),
}

impl TestStore {
    /// Creates a fresh store, or `None` (after saying so) when PostgreSQL is unreachable
    /// outside CI.
    pub async fn create(backend: Backend) -> Option<TestStore> {
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(format!("redtape-test-{}", Uuid::now_v7()));
                std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("temp dir: {e}"));
                let url = format!("sqlite://{}", dir.join("redtape.sqlite").display());
                Some(TestStore {
                    url,
                    cleanup: Cleanup::Dir(dir),
                })
            }
            Backend::Postgres => {
                let admin = pg_admin_url();
                let pool = match sqlx::PgPool::connect(&admin).await {
                    Ok(pool) => pool,
                    Err(e) if in_ci() => {
                        panic!("CI=true but PostgreSQL at {admin} is unreachable: {e}")
                    }
                    Err(e) => {
                        eprintln!(
                            "\n*** SKIPPED: PostgreSQL at {admin} is unreachable ({e}); \
                             this test runs on the embedded store only. Under CI=true it fails.\n"
                        );
                        return None;
                    }
                };
                let name = format!("redtape_test_{}", Uuid::now_v7().simple());
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&pool)
                    .await
                    .unwrap_or_else(|e| panic!("create database {name}: {e}"));
                pool.close().await;
                let url = match admin.rfind('/') {
                    Some(slash) => format!("{}/{name}", &admin[..slash]),
                    None => panic!("REDTAPE_TEST_PG must end with /database: {admin}"),
                };
                Some(TestStore {
                    url,
                    cleanup: Cleanup::PgDatabase(name),
                })
            }
        }
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::PgDatabase(name) => {
                // Drop runs outside any async context (and during unwinding), so a short-lived
                // runtime on its own thread does the cleanup.
                let name = name.clone();
                let _ = std::thread::spawn(move || {
                    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    else {
                        return;
                    };
                    rt.block_on(async move {
                        if let Ok(pool) = sqlx::PgPool::connect(&pg_admin_url()).await {
                            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                            if let Err(e) = sqlx::query(&sql).execute(&pool).await {
                                eprintln!("could not drop test database {name}: {e}");
                            }
                            pool.close().await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

/// A running application on a fresh store.
pub struct TestApp {
    pub base: String,
    pub client: awc::Client,
    pub db: Db,
    pub backend: Backend,
    running: Option<Running>,
    /// The store's URL, for another replica on it ([`TestApp::replica`]).
    pub url: String,
    /// Kept alive (and so not yet removed) for as long as the app runs; `None` on a replica,
    /// whose first app owns the store.
    _store: Option<TestStore>,
}

/// An HTTP answer, read completely.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: awc::http::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}); status {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Asserts the status (showing the body when it differs) and returns the JSON body.
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        self.json()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// Asserts an RFC 9457 problem with this status, and returns it.
    pub fn problem(&self, status: u16) -> Value {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(
            self.header("content-type").as_deref(),
            Some("application/problem+json"),
            "status {status}"
        );
        let p = self.json();
        assert_eq!(p["status"], status);
        assert!(
            p["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("/problems/")),
            "{p}"
        );
        assert!(p["title"].is_string() && p["detail"].is_string(), "{p}");
        p
    }

    /// The (pointer or parameter, rule) pairs of a validation problem.
    pub fn violations(&self) -> Vec<(String, String)> {
        let p = self.problem(422);
        p["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("no errors member: {p}"))
            .iter()
            .map(|e| {
                let at = e["pointer"]
                    .as_str()
                    .or(e["parameter"].as_str())
                    .unwrap_or("");
                (at.to_string(), e["rule"].as_str().unwrap_or("").to_string())
            })
            .collect()
    }
}

pub async fn spawn(backend: Backend) -> Option<TestApp> {
    spawn_with(backend, &[]).await
}

/// A fresh store and an application started with extra command-line settings.
pub async fn spawn_with(backend: Backend, extra: &[&str]) -> Option<TestApp> {
    let store = TestStore::create(backend).await?;
    spawn_configured(backend, store, extra).await
}

pub async fn spawn_configured(
    backend: Backend,
    store: TestStore,
    extra: &[&str],
) -> Option<TestApp> {
    let settings = settings_on(&store.url, extra).unwrap_or_else(|e| panic!("settings: {e}"));
    let (running, server) = redtape::start(&settings)
        .await
        .unwrap_or_else(|e| panic!("start on {}: {e}", store.url));
    actix_web::rt::spawn(server);
    Some(TestApp::of(
        running,
        backend,
        store.url.clone(),
        Some(store),
    ))
}

/// The settings a test app starts with on `url`, plus `extra`.
pub fn settings_on(url: &str, extra: &[&str]) -> Result<Settings, clap::Error> {
    let mut args = vec![
        "--database-url",
        url,
        "--bind",
        "127.0.0.1:0",
        "--workers",
        "2",
        "--db-max-connections",
        "5",
        // Revocation must take effect at once in the tests that revoke.
        "--token-cache-seconds",
        "0",
    ];
    args.extend_from_slice(extra);
    Settings::from_args(&args)
}

impl TestApp {
    fn of(running: Running, backend: Backend, url: String, store: Option<TestStore>) -> TestApp {
        TestApp {
            base: format!("http://{}", running.addr),
            client: awc::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .finish(),
            db: running.db.clone(),
            backend,
            running: Some(running),
            url,
            _store: store,
        }
    }

    /// Another service on this app's store, started with `extra` (a second replica); it
    /// must be stopped before this app, which owns the store.
    pub async fn replica(&self, extra: &[&str]) -> Result<TestApp, redtape::BoxError> {
        let settings = settings_on(&self.url, extra)?;
        let (running, server) = redtape::start(&settings).await?;
        actix_web::rt::spawn(server);
        Ok(TestApp::of(running, self.backend, self.url.clone(), None))
    }

    /// Whether this app runs the projector now.
    pub fn projects(&self) -> bool {
        self.running.as_ref().is_some_and(Running::projects)
    }

    /// The command side of filers and tokens, on the app's store.
    pub fn accounts(&self) -> redtape_store::accounts::Accounts {
        redtape_store::accounts::Accounts::new(&self.db, Default::default())
    }

    /// Issues a token (with a new filer for a business or intermediary); returns it with its
    /// principal.
    pub async fn issue(
        &self,
        role: Role,
        profile: redtape_domain::filer::FilerProfile,
    ) -> redtape_store::tokens::IssuedToken {
        use redtape_store::accounts::{Registration, TokenRequest};
        let accounts = self.accounts();
        let filer = if role.files() {
            let kind = if role == Role::Intermediary {
                redtape_domain::filer::aggregate::FilerKind::Intermediary
            } else {
                redtape_domain::filer::aggregate::FilerKind::Business
            };
            let registration = Registration {
                kind,
                profile,
                ..Registration::business()
            };
            Some(
                accounts
                    .register(registration, "test")
                    .await
                    .unwrap_or_else(|e| panic!("register filer: {e}")),
            )
        } else {
            None
        };
        let mut request = TokenRequest::new(role, filer);
        request.label = Some("test".into());
        accounts
            .issue(request, "test")
            .await
            .unwrap_or_else(|e| panic!("issue token: {e}"))
    }

    /// Issues a token; business and intermediary tokens get a new filer.
    pub async fn token(&self, role: Role) -> String {
        self.issue(role, Default::default()).await.token
    }

    /// Issues an officer token limited to these vn-34 provinces.
    pub async fn officer_for(&self, provinces: &[&str]) -> String {
        let scope =
            redtape_domain::Scope::provinces(provinces).unwrap_or_else(|v| panic!("scope: {v}"));
        let mut request = redtape_store::accounts::TokenRequest::new(Role::Officer, None);
        request.scope = scope;
        self.accounts()
            .issue(request, "test")
            .await
            .unwrap_or_else(|e| panic!("issue token: {e}"))
            .token
    }

    /// Files a body at `path` ("/v1/timings" or "/v1/complaints"); returns the new id.
    pub async fn file(&self, path: &str, token: &str, body: &Value) -> String {
        let reply = self.post(path, token, body).await;
        reply.expect(201)["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id"))
            .to_string()
    }

    /// GETs `path?query` for each case and asserts exactly one violation of `parameter`
    /// with `rule`.
    pub async fn expect_parameter_violations(
        &self,
        path: &str,
        token: Option<&str>,
        cases: &[(&str, &str, &str)],
    ) {
        for (query, parameter, rule) in cases {
            let reply = self.get(&format!("{path}?{query}"), token).await;
            assert_eq!(
                reply.violations(),
                vec![(parameter.to_string(), rule.to_string())],
                "{path}?{query}"
            );
        }
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Reply {
        let method = awc::http::Method::from_bytes(method.as_bytes())
            .unwrap_or_else(|e| panic!("method: {e}"));
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(token) = token {
            req = req.insert_header((header::AUTHORIZATION, format!("Bearer {token}")));
        }
        for (name, value) in headers {
            req = req.insert_header((*name, *value));
        }
        let sent = match body {
            Some(bytes) => req.send_body(bytes).await,
            None => req.send().await,
        };
        let mut res = sent.unwrap_or_else(|e| panic!("request to {path}: {e}"));
        let body = res
            .body()
            .limit(64 * 1024 * 1024)
            .await
            .unwrap_or_else(|e| panic!("read body of {path}: {e}"))
            .to_vec();
        Reply {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            body,
        }
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.post_with(path, token, body, &[]).await
    }

    pub async fn post_with(
        &self,
        path: &str,
        token: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        self.request(
            "POST",
            path,
            Some(token),
            &all,
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.request("GET", path, token, &[], None).await
    }

    /// Brings the read models up to date now (the projector would within milliseconds; this
    /// makes tests deterministic, and is safe because projectors serialize on the checkpoint).
    pub async fn project(&self) {
        redtape_store::Projector::new(self.db.clone())
            .catch_up()
            .await
            .unwrap_or_else(|e| panic!("projector: {e}"));
    }

    pub async fn observation(
        &self,
        id: &str,
    ) -> Option<redtape_store::observations::ObservationRow> {
        self.project().await;
        redtape_store::observations::get(&self.db, id)
            .await
            .unwrap_or_else(|e| panic!("read observation: {e}"))
    }

    /// Stops the app and hands back its store (not yet removed).
    pub async fn stop_keeping_store(mut self) -> Option<TestStore> {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
        self._store.take()
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
    }
}

/// A valid timing body (Hồ Chí Minh City, September 2025: the vn-34 map).
pub fn timing() -> Value {
    serde_json::json!({
        "procedure_code": "1.001612",
        "province_code": "79",
        "submitted_on": "2025-09-02",
        "completed_on": "2025-09-10",
        "outcome": "granted",
        "channel": "online",
        "costs": {"official_fees": 50000, "external_services": 1500000},
        "staff_hours": 6.5,
        "visits": 1
    })
}

/// A valid complaint body (Hà Nội, May 2024: the vn-63 map).
pub fn complaint() -> Value {
    serde_json::json!({
        "procedure_code": "1.009972",
        "province_code": "01",
        "experienced_on": "2024-05-06",
        "categories": ["delay", "informal_payment_requested"],
        "narrative": "The officer asked for a payment to speed things up.",
        "costs": {"unofficial_payments": 2000000},
        "staff_hours": 12,
        "visits": 4
    })
}

/// Runs each named test case on both stores: `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! on_both_stores {
    (with $args:tt $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[actix_web::test]
                async fn $name() {
                    let backend = $crate::helpers::Backend::Sqlite;
                    if let Some(app) = $crate::helpers::spawn_with(backend, &$args).await {
                        super::$name(&app).await;
                        app.stop().await;
                    }
                }
            )*
        }
        mod postgres {
            $(
                #[actix_web::test]
                async fn $name() {
                    let backend = $crate::helpers::Backend::Postgres;
                    if let Some(app) = $crate::helpers::spawn_with(backend, &$args).await {
                        super::$name(&app).await;
                        app.stop().await;
                    }
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        $crate::on_both_stores!(with [] $($name),*);
    };
}
