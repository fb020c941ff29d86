//! `redtape bench`: the performance targets, measured over real HTTP (docs/benchmarks.md).
//!
//! Two scenarios:
//! - `filing` (the default): submissions/s and latency of `POST /v1/timings`.
//! - `indices`: loads N demo submissions (decided by the aggregate, imported in bulk), then
//!   measures a full rebuild (events/s) and the latency of `GET /v1/indices` for one cell.
//!
//! For filing, for each store it starts the real service in-process on a fresh store (a temporary SQLite
//! file, or a temporary PostgreSQL database that is dropped afterwards), issues one business
//! token per client, and lets C clients file N timings in total, each waiting for its answer
//! before sending the next (closed loop). It reports submissions/s and latency percentiles,
//! then checks that every acknowledged submission is in the event log and, after catch-up, in
//! the read model: a fast but lossy run fails.

use std::time::{Duration, Instant};

use clap::Args;
use redtape_domain::Role;
use redtape_store::db;

use crate::{BoxError, Settings};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// What to measure: filing throughput, or rebuild throughput and index query latency.
    #[arg(long, default_value = "filing", value_parser = ["filing", "indices"])]
    pub scenario: String,
    /// Which store(s) to measure.
    #[arg(long, default_value = "both", value_parser = ["sqlite", "postgres", "both"])]
    pub store: String,
    /// Submissions to file in total (filing), or to load (indices; about 1.07 events each).
    #[arg(long, default_value_t = 20_000)]
    pub submissions: usize,
    /// Index queries to send in total (indices scenario).
    #[arg(long, default_value_t = 20_000)]
    pub requests: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Administrative PostgreSQL URL; a temporary database is created beside it.
    #[arg(
        long,
        env = "REDTAPE_BENCH_PG",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub pg_admin_url: String,
}

/// One store's figures.
#[derive(Debug)]
pub struct Report {
    pub store: &'static str,
    pub clients: usize,
    pub seconds: f64,
    pub per_second: f64,
    /// Of the acknowledged submissions.
    pub latency: Latency,
}

pub async fn run(args: BenchArgs) -> Result<(), BoxError> {
    if args.clients == 0 || args.submissions < args.clients || args.requests < args.clients {
        return Err(
            "--submissions and --requests must be at least --clients, and --clients at least 1"
                .into(),
        );
    }
    let stores: &[&'static str] = match args.store.as_str() {
        "sqlite" => &["sqlite"],
        "postgres" => &["postgres"],
        _ => &["sqlite", "postgres"],
    };
    if args.scenario == "indices" {
        println!(
            "store     submissions   events  load s  rebuild s  events/s  cells  requests  \
             p50 ms  p99 ms  max ms  errors"
        );
        for store in stores {
            let r = on_fresh_store(store, &args, |url| indices(store, url, &args)).await?;
            println!(
                "{:<9} {:>11} {:>8} {:>7.1} {:>10.2} {:>9.0} {:>6} {:>9} {:>7.2} {:>7.2} {:>7.2} {:>7}",
                r.store,
                r.submissions,
                r.events,
                r.load_seconds,
                r.rebuild_seconds,
                r.events as f64 / r.rebuild_seconds,
                r.cells,
                r.latency.count,
                r.latency.p50_ms,
                r.latency.p99_ms,
                r.latency.max_ms,
                r.latency.errors
            );
        }
        return Ok(());
    }
    println!("store     submissions clients  seconds  subm/s   p50 ms   p99 ms   max ms  errors");
    for store in stores {
        let report = on_fresh_store(store, &args, |url| measure(store, url, &args)).await?;
        println!(
            "{:<9} {:>11} {:>7} {:>8.2} {:>7.0} {:>8.2} {:>8.2} {:>8.2} {:>7}",
            report.store,
            report.latency.count,
            report.clients,
            report.seconds,
            report.per_second,
            report.latency.p50_ms,
            report.latency.p99_ms,
            report.latency.max_ms,
            report.latency.errors
        );
    }
    Ok(())
}

/// Runs `bench` on a fresh store (a temporary SQLite file, or a temporary PostgreSQL
/// database), which is removed afterwards whatever the outcome.
async fn on_fresh_store<T, F, Fut>(
    store: &'static str,
    args: &BenchArgs,
    bench: F,
) -> Result<T, BoxError>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<T, BoxError>>,
{
    let pg_name = format!("redtape_bench_{}", uuid::Uuid::now_v7().simple());
    let dir = std::env::temp_dir().join(format!("redtape-bench-{}", uuid::Uuid::now_v7()));
    let url = match store {
        "postgres" => db::create_pg_database(&args.pg_admin_url, &pg_name).await?,
        _ => format!("sqlite://{}", dir.join("bench.sqlite").display()),
    };
    let result = bench(url).await;
    match store {
        "postgres" => db::drop_pg_database(&args.pg_admin_url, &pg_name).await?,
        _ => {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    result
}

async fn measure(store: &'static str, url: String, args: &BenchArgs) -> Result<Report, BoxError> {
    let (running, server_task, _) = serve(&url).await?;
    let mut tokens = Vec::with_capacity(args.clients);
    for _ in 0..args.clients {
        tokens.push(
            redtape_store::tokens::issue(&running.db, Role::Business, None, Some("bench"))
                .await?
                .token,
        );
    }
    let base = format!("http://{}", running.addr);
    let (clients, total) = (args.clients, args.submissions);
    // awc runs on actix's single-threaded runtime: the clients get a thread of their own.
    let outcome = tokio::task::spawn_blocking(move || {
        actix_web::rt::System::new().block_on(drive(base, tokens, total))
    })
    .await?;
    let (elapsed, latencies, errors) = outcome;

    // Nothing acknowledged may be missing.
    let events = db::count_events(&running.db).await?;
    redtape_store::Projector::new(running.db.clone())
        .catch_up()
        .await?;
    let observations = db::count_observations(&running.db).await?;
    let acknowledged = latencies.len() as i64;
    running.stop().await;
    server_task.abort();
    if events != acknowledged || observations != acknowledged {
        return Err(format!(
            "{store}: {acknowledged} acknowledged but {events} events and {observations} observations stored"
        )
        .into());
    }

    let seconds = elapsed.as_secs_f64();
    Ok(Report {
        store,
        clients,
        seconds,
        per_second: latencies.len() as f64 / seconds,
        latency: Latency::of(latencies, errors),
    })
}

/// Starts the real service in-process on `url`, on an ephemeral port.
async fn serve(
    url: &str,
) -> Result<
    (
        crate::Running,
        tokio::task::JoinHandle<std::io::Result<()>>,
        Settings,
    ),
    BoxError,
> {
    let settings = Settings::from_args(&[
        "--database-url",
        url,
        "--bind",
        "127.0.0.1:0",
        "--log",
        "warn",
        // The bench measures the service, not its abuse control: a client files thousands of
        // submissions with one token.
        "--rate-limit-per-minute",
        "0",
        "--daily-submission-cap",
        "0",
    ])?;
    let (running, server) = crate::start(&settings).await?;
    Ok((running, tokio::spawn(server), settings))
}

/// Runs the clients; returns wall time, the latency of each acknowledged (201) submission,
/// and the number of failed requests.
async fn drive(
    base: String,
    tokens: Vec<String>,
    total: usize,
) -> (Duration, Vec<Duration>, usize) {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .finish();
    let per_client = total / tokens.len();
    let extra = total % tokens.len();
    let started = Instant::now();
    let runs = tokens.into_iter().enumerate().map(|(i, token)| {
        let client = client.clone();
        let url = format!("{base}/v1/timings");
        let count = per_client + usize::from(i < extra);
        async move {
            let mut latencies = Vec::with_capacity(count);
            let mut errors = 0usize;
            for n in 0..count {
                let body = body(i, n);
                let sent = Instant::now();
                let res = client
                    .post(&url)
                    .insert_header(("authorization", format!("Bearer {token}")))
                    .insert_header(("content-type", "application/json"))
                    .send_body(body)
                    .await;
                match res {
                    Ok(mut r) if r.status().as_u16() == 201 => {
                        let _ = r.body().await;
                        latencies.push(sent.elapsed());
                    }
                    Ok(mut r) => {
                        let text = r.body().await.unwrap_or_default();
                        if errors == 0 {
                            eprintln!("bench: {} {}", r.status(), String::from_utf8_lossy(&text));
                        }
                        errors += 1;
                    }
                    Err(e) => {
                        if errors == 0 {
                            eprintln!("bench: request failed: {e}");
                        }
                        errors += 1;
                    }
                }
            }
            (latencies, errors)
        }
    });
    let results = futures::future::join_all(runs).await;
    let elapsed = started.elapsed();
    let mut all = Vec::with_capacity(total);
    let mut errors = 0;
    for (latencies, e) in results {
        all.extend(latencies);
        errors += e;
    }
    (elapsed, all, errors)
}

/// A realistic, varied timing: the catalogue's procedures across vn-34 provinces.
fn body(client: usize, n: usize) -> String {
    const PROCEDURES: [&str; 6] = [
        "1.001612", "2.001199", "1.009645", "1.009972", "1.000097", "1.007425",
    ];
    const PROVINCES: [&str; 8] = ["01", "79", "48", "31", "92", "24", "52", "56"];
    let k = client * 7919 + n;
    let day = 1 + (k % 20) as u32;
    serde_json::json!({
        "procedure_code": PROCEDURES[k % PROCEDURES.len()],
        "province_code": PROVINCES[(k / 3) % PROVINCES.len()],
        "submitted_on": format!("2025-09-{day:02}"),
        "completed_on": format!("2025-10-{day:02}"),
        "outcome": "granted",
        "channel": "online",
        "costs": {"official_fees": 50000 + (k % 10) as i64 * 1000, "external_services": (k % 4) as i64 * 500000},
        "staff_hours": (k % 16) as f64 / 2.0,
        "visits": (k % 4) as i64
    })
    .to_string()
}

/// Latency figures of a closed-loop run.
#[derive(Debug)]
pub struct Latency {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub errors: usize,
}

impl Latency {
    fn of(mut latencies: Vec<Duration>, errors: usize) -> Latency {
        latencies.sort_unstable();
        let pick = |q: f64| -> f64 {
            if latencies.is_empty() {
                return 0.0;
            }
            let rank = ((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
            latencies[rank - 1].as_secs_f64() * 1000.0
        };
        Latency {
            count: latencies.len(),
            p50_ms: pick(0.50),
            p99_ms: pick(0.99),
            max_ms: pick(1.0),
            errors,
        }
    }
}

/// One store's index figures.
#[derive(Debug)]
pub struct IndicesReport {
    pub store: &'static str,
    pub submissions: usize,
    pub events: i64,
    pub load_seconds: f64,
    pub rebuild_seconds: f64,
    pub cells: usize,
    pub latency: Latency,
}

async fn indices(
    store: &'static str,
    url: String,
    args: &BenchArgs,
) -> Result<IndicesReport, BoxError> {
    let loaded = Instant::now();
    {
        let db = redtape_store::Db::connect(Some(&url), &Default::default()).await?;
        db.migrate().await?;
        crate::demo::generate_with(
            &db,
            args.submissions as u64,
            1,
            false,
            crate::demo::Filing::Import,
        )
        .await?;
        db.close().await;
    }
    let load_seconds = loaded.elapsed().as_secs_f64();

    let (running, server_task, settings) = serve(&url).await?;
    let outcome = async {
        let events = db::count_events(&running.db).await?;
        let observations = db::count_observations(&running.db).await?;
        if observations != args.submissions as i64 {
            return Err(format!("{store}: {observations} observations after loading").into());
        }
        let rebuilt = Instant::now();
        let replayed = redtape_store::Projector::new(running.db.clone())
            .with_methodology(std::sync::Arc::new(settings.methodology()?))
            .rebuild()
            .await?;
        let rebuild_seconds = rebuilt.elapsed().as_secs_f64();
        if replayed != events as u64 {
            return Err(format!("{store}: rebuild replayed {replayed} of {events} events").into());
        }
        // The busiest cell: the one a journalist is most likely to ask for.
        let cells = redtape_store::cells::query(&running.db, "vn-34", None, None, None).await?;
        let busiest = cells
            .iter()
            .max_by_key(|c| c.n)
            .ok_or("no cells after loading")?;
        let path = format!(
            "/v1/indices?year={}&procedure={}&province={}",
            busiest.year, busiest.procedure_code, busiest.province_code
        );
        let base = format!("http://{}", running.addr);
        let (clients, total) = (args.clients, args.requests);
        let (latencies, errors) = tokio::task::spawn_blocking(move || {
            actix_web::rt::System::new().block_on(query(base, path, clients, total))
        })
        .await?;
        Ok::<_, BoxError>(IndicesReport {
            store,
            submissions: args.submissions,
            events,
            load_seconds,
            rebuild_seconds,
            cells: cells.len(),
            latency: Latency::of(latencies, errors),
        })
    }
    .await;
    running.stop().await;
    server_task.abort();
    outcome
}

/// `clients` clients send `total` GETs of `path`, each waiting for its answer; an answer
/// counts only if it is a 200 holding exactly one cell.
async fn query(base: String, path: String, clients: usize, total: usize) -> (Vec<Duration>, usize) {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .finish();
    let runs = (0..clients).map(|i| {
        let client = client.clone();
        let url = format!("{base}{path}");
        let count = total / clients + usize::from(i < total % clients);
        async move {
            let mut latencies = Vec::with_capacity(count);
            let mut errors = 0usize;
            for _ in 0..count {
                let sent = Instant::now();
                let ok = match client.get(&url).send().await {
                    Ok(mut r) if r.status().as_u16() == 200 => r
                        .body()
                        .await
                        .ok()
                        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                        .is_some_and(|v| v["items"].as_array().is_some_and(|c| c.len() == 1)),
                    _ => false,
                };
                if ok {
                    latencies.push(sent.elapsed());
                } else {
                    errors += 1;
                }
            }
            (latencies, errors)
        }
    });
    let mut all = Vec::with_capacity(total);
    let mut errors = 0;
    for (latencies, e) in futures::future::join_all(runs).await {
        all.extend(latencies);
        errors += e;
    }
    (all, errors)
}
