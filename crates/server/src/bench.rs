//! `redtape bench`: the performance targets, measured over real HTTP (docs/benchmarks.md).
//!
//! Three scenarios:
//! - `filing` (the default): submissions/s and latency of `POST /v1/timings`, either a fixed
//!   number of submissions or, with `--seconds`, a timed run sampled every `--sample-seconds`
//!   (throughput, latency and the projector's lag per window). `--hot-cell N` pre-loads N
//!   timings into one cell and aims every request at it. On PostgreSQL, pgbench measures a
//!   durable single-row insert on the same database for comparison.
//! - `indices`: loads N demo submissions (decided by the aggregate, imported in bulk), then
//!   measures a full rebuild (events/s) and the latency of `GET /v1/indices` for one cell.
//! - `memory`: loads N demo submissions, starts the real service as a child process, queries
//!   it, and reads its resident memory from /proc.
//!
//! For filing, for each store it starts the real service in-process on a fresh store (a
//! temporary SQLite file, or a temporary PostgreSQL database that is dropped afterwards),
//! issues `--tokens` business tokens, and lets C closed-loop clients file timings, each
//! waiting for its answer before sending the next. Every request is a new timing with its own
//! `Idempotency-Key`, and requests rotate over the tokens. Afterwards it waits for the
//! projector to catch up and checks that every acknowledged submission is in the event log
//! and in the read model: a fast but lossy run fails.
//!
//! Every target is a check printed as PASS or FAIL; one FAIL makes the command fail.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use redtape_domain::submission::{FilerId, Submission, TimingDraft};
use redtape_domain::Role;
use redtape_store::db::{self, PoolOptions};
use redtape_store::projector::{self, Lag};
use redtape_store::Db;
use tokio::sync::watch;

use crate::{BoxError, Settings};

#[derive(Debug, Args)]
#[command(
    next_help_heading = "Bench options",
    after_help = "Every target is printed as a check, PASS or FAIL (SKIP when a run is too \
                  short to judge it); the command exits non-zero if any check FAILs. \
                  Commands for each target: docs/benchmarks.md."
)]
pub struct BenchArgs {
    /// What to measure: filing throughput (and, with --seconds, its stability and the
    /// projector's lag); rebuild throughput and index query latency; or the resident memory
    /// of the service with a large store loaded.
    #[arg(long, default_value = "filing", value_parser = ["filing", "indices", "memory"])]
    pub scenario: String,
    /// Which store(s) to measure.
    #[arg(long, default_value = "both", value_parser = ["sqlite", "postgres", "both"])]
    pub store: String,
    /// filing without --seconds: submissions to file in total [default: 20000]. indices and
    /// memory: demo submissions to load (about 1.07 events each) [default: 20000 for indices,
    /// 1000000 for memory].
    #[arg(long)]
    pub submissions: Option<usize>,
    /// Index queries to send in total [default: 20000 for indices, 500 for memory].
    #[arg(long)]
    pub requests: Option<usize>,
    /// Concurrent closed-loop clients (also pgbench's -c).
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// filing: business tokens issued before the run; successive requests rotate over them.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub tokens: u64,
    /// filing: file continuously for this many seconds instead of a fixed --submissions, and
    /// check that throughput stays flat and the projector keeps up.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=86_400),
          conflicts_with = "submissions")]
    pub seconds: Option<u64>,
    /// filing with --seconds: seconds of load before the measured run, not counted in any
    /// window or rate (connections opened, statements prepared, caches filled); their
    /// submissions are still checked for loss.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(0..=600))]
    pub warmup_seconds: u64,
    /// filing: length of a sample window: every window prints submissions/s, p50/p99 latency
    /// and the projector's lag read at its end.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub sample_seconds: u64,
    /// filing: pre-load this many timings into one cell (vn-34, 2025, procedure 1.001612,
    /// province 79) through the bulk import, project them, then aim every request at that
    /// cell. Without it, requests vary over six procedures and eight provinces.
    #[arg(long)]
    pub hot_cell: Option<u64>,
    /// filing with --hot-cell and --seconds: this many reforms of the hot cell's procedure,
    /// evenly spaced over the measured run, each re-measuring every observation of the
    /// procedure (new terms change on-time verdicts) while the filings go on.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=27),
          requires_all = ["hot_cell", "seconds"])]
    pub reforms: u64,
    /// filing: the throughput target, in acknowledged submissions per second; a slower run
    /// FAILs.
    #[arg(long, default_value_t = 4000.0)]
    pub min_rate: f64,
    /// filing on PostgreSQL: seconds of pgbench (single-row durable inserts into an
    /// events-shaped table, same database, --clients clients) to compare with; 0 skips it.
    #[arg(long, default_value_t = 10)]
    pub pgbench_seconds: u64,
    /// The pgbench executable.
    #[arg(long, default_value = "pgbench")]
    pub pgbench: String,
    /// memory: the largest acceptable resident set (VmRSS) of the service, in MB (10^6 bytes).
    #[arg(long, default_value_t = 300.0)]
    pub max_rss_mb: f64,
    /// Administrative PostgreSQL URL; a temporary database is created beside it.
    #[arg(
        long,
        env = "REDTAPE_BENCH_PG",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub pg_admin_url: String,
}

/// The cell `--hot-cell` fills, and every body of such a run targets.
const HOT_PROCEDURE: &str = "1.001612";
const HOT_PROVINCE: &str = "79";
const HOT_YEAR: i32 = 2025;

/// Flat: the last window's rate within this fraction of the first window's.
const FLAT_TOLERANCE: f64 = 0.15;
/// Keeps up: the projector's lag at every sample, and the time to catch up after the load.
const MAX_LAG_SECONDS: f64 = 1.0;
/// How long to wait for the projector to catch up after the load before calling it failed.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(30);

/// One verdict.
#[derive(Debug)]
struct Check {
    store: &'static str,
    name: &'static str,
    /// None: not applicable to this run (printed as SKIP, never a failure).
    pass: Option<bool>,
    detail: String,
}

impl Check {
    fn new(store: &'static str, name: &'static str, pass: bool, detail: String) -> Check {
        let check = Check {
            store,
            name,
            pass: Some(pass),
            detail,
        };
        check.print();
        check
    }

    fn skip(store: &'static str, name: &'static str, detail: String) -> Check {
        let check = Check {
            store,
            name,
            pass: None,
            detail,
        };
        check.print();
        check
    }

    fn print(&self) {
        let verdict = match self.pass {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "SKIP",
        };
        println!(
            "{verdict}  {:<8} {}: {}",
            self.store, self.name, self.detail
        );
    }
}

pub async fn run(args: BenchArgs) -> Result<(), BoxError> {
    if args.clients == 0 {
        return Err("--clients must be at least 1".into());
    }
    let stores: &[&'static str] = match args.store.as_str() {
        "sqlite" => &["sqlite"],
        "postgres" => &["postgres"],
        _ => &["sqlite", "postgres"],
    };
    let mut checks = Vec::new();
    match args.scenario.as_str() {
        "indices" => return indices_table(stores, &args).await,
        "memory" => {
            for store in stores {
                checks.extend(on_fresh_store(store, &args, |url| memory(store, url, &args)).await?);
            }
        }
        _ => {
            if args.seconds.is_none() && args.submissions.unwrap_or(20_000) < args.clients {
                return Err("--submissions must be at least --clients".into());
            }
            for store in stores {
                checks.extend(on_fresh_store(store, &args, |url| filing(store, url, &args)).await?);
            }
        }
    }
    conclude(&checks)
}

/// Prints the tally; an error (a non-zero exit) if any check failed.
fn conclude(checks: &[Check]) -> Result<(), BoxError> {
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| c.pass == Some(false))
        .map(|c| format!("{} {}", c.store, c.name))
        .collect();
    let passed = checks.iter().filter(|c| c.pass == Some(true)).count();
    let skipped = checks.iter().filter(|c| c.pass.is_none()).count();
    println!(
        "checks: {passed} passed, {} FAILED, {skipped} skipped",
        failed.len()
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("{} check(s) FAILED: {}", failed.len(), failed.join(", ")).into())
    }
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

/// A second pool on the bench's store, for the sampler and the checks: on SQLite the
/// service's pool has one connection, and a bench query must not queue behind its writes.
async fn observer(url: &str) -> Result<Db, BoxError> {
    Ok(Db::connect(
        Some(url),
        &PoolOptions {
            max_connections: 2,
            ..PoolOptions::default()
        },
    )
    .await?)
}

// ----------------------------------------------------------------------------------------
// Filing

/// What the clients and the sampler share. The clients run on actix's single-threaded
/// runtime in a thread of their own; the sampler on the main Tokio runtime.
#[derive(Default)]
struct Shared {
    /// Requests started so far: each request's number picks its body and token.
    next: AtomicUsize,
    acknowledged: AtomicU64,
    errors: AtomicU64,
    /// Latencies of acknowledged submissions since the last sample.
    window: Mutex<Vec<Duration>>,
}

impl Shared {
    fn take_window(&self) -> Vec<Duration> {
        std::mem::take(&mut *self.window.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// When the clients stop.
#[derive(Clone, Copy)]
enum Until {
    /// After this many requests in total.
    Count(usize),
    /// At the first request that would start after this instant.
    Deadline(Instant),
}

/// One sample window.
#[derive(Debug)]
struct Sample {
    elapsed: f64,
    per_second: f64,
    latency: Latency,
    /// Read at the end of the window; an error is kept as text and fails "keeps up".
    lag: Result<Lag, String>,
}

async fn filing(
    store: &'static str,
    url: String,
    args: &BenchArgs,
) -> Result<Vec<Check>, BoxError> {
    let hot = args.hot_cell.filter(|n| *n > 0);
    if let Some(n) = hot {
        let started = Instant::now();
        let db = Db::connect(Some(&url), &Default::default()).await?;
        db.migrate().await?;
        let timings = (0..n as usize)
            .map(hot_timing)
            .collect::<Result<Vec<_>, _>>()?;
        let imported = crate::demo::import_timings(&db, timings.into_iter()).await?;
        db.close().await;
        println!(
            "{store}: pre-loaded {imported} timings into cell vn-34/{HOT_YEAR}/{HOT_PROCEDURE}/{HOT_PROVINCE} \
             and projected them in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }

    let (running, server_task, settings) = serve(&url).await?;
    let outcome = async {
        let observer = observer(&url).await?;
        let result = drive_and_check(store, &running, &settings, &observer, args, hot).await;
        observer.close().await;
        result
    }
    .await;
    running.stop().await;
    server_task.abort();
    let (mut checks, per_second) = outcome?;

    if store == "postgres" {
        if args.pgbench_seconds == 0 {
            checks.push(Check::skip(
                store,
                "pgbench",
                "--pgbench-seconds 0: not measured".into(),
            ));
        } else {
            checks.push(pgbench(store, &url, args, per_second).await);
        }
    }
    Ok(checks)
}

async fn drive_and_check(
    store: &'static str,
    running: &crate::Running,
    settings: &Settings,
    observer: &Db,
    args: &BenchArgs,
    hot: Option<u64>,
) -> Result<(Vec<Check>, f64), BoxError> {
    let submission_type = <Submission as cqrs_es::Aggregate>::TYPE;
    let events_before = db::count_events_of(observer, submission_type).await?;
    let observations_before = db::count_observations(observer).await?;
    let hot_before = match hot {
        Some(n) => {
            let cell = hot_cell_n(observer).await?;
            if cell != n as i64 || observations_before != n as i64 {
                return Err(format!(
                    "{store}: the hot cell holds {cell} observations (of {observations_before}) \
                     after pre-loading {n}"
                )
                .into());
            }
            Some(cell)
        }
        None => None,
    };

    let mut tokens = Vec::new();
    for _ in 0..args.tokens {
        tokens.push(
            redtape_store::tokens::issue(&running.db, Role::Business, None, Some("bench"))
                .await?
                .token,
        );
    }

    let shared = Arc::new(Shared::default());
    let every = Duration::from_secs(args.sample_seconds);
    let warmup = Duration::from_secs(args.seconds.map_or(0, |_| args.warmup_seconds));
    let load_started = Instant::now();
    // The measured run starts after the warm-up (none in count mode).
    let started = load_started + warmup;
    let until = match args.seconds {
        Some(s) => Until::Deadline(started + Duration::from_secs(s)),
        None => Until::Count(args.submissions.unwrap_or(20_000)),
    };
    println!(
        "{store}: {} clients filing {} over {} tokens{}",
        args.clients,
        match (args.seconds, until) {
            (Some(s), _) => format!("for {s} s after {} s of warm-up", warmup.as_secs()),
            (None, Until::Count(n)) => format!("{n} timings"),
            (None, Until::Deadline(_)) => String::new(),
        },
        tokens.len(),
        if hot.is_some() {
            " into the hot cell"
        } else {
            ""
        }
    );
    let (stop, stopped) = watch::channel(false);
    let sampler = tokio::spawn(sample(
        store,
        observer.clone(),
        shared.clone(),
        started,
        every,
        stopped,
    ));
    let base = format!("http://{}", running.addr);
    let reformer = if args.reforms > 0 {
        let officer = redtape_store::tokens::issue(&running.db, Role::Officer, None, Some("bench"))
            .await?
            .token;
        let (base, n) = (base.clone(), args.reforms);
        let run = Duration::from_secs(args.seconds.unwrap_or(0));
        Some(tokio::task::spawn_blocking(move || {
            actix_web::rt::System::new().block_on(reform_during(base, officer, n, started, run))
        }))
    } else {
        None
    };
    let clients = args.clients;
    let load = shared.clone();
    // awc runs on actix's single-threaded runtime: the clients get a thread of their own.
    let driven = tokio::task::spawn_blocking(move || {
        actix_web::rt::System::new().block_on(drive(
            base,
            tokens,
            clients,
            until,
            hot.is_some(),
            load,
        ))
    })
    .await;
    let _ = stop.send(true);
    let (samples, acked_at_start) = sampler.await?;
    let load_ended = driven?;
    let elapsed = load_ended.duration_since(started).as_secs_f64();
    let reforms = match reformer {
        Some(reformer) => Some(reformer.await?),
        None => None,
    };

    // After the load: how long until the projector has applied everything?
    let caught_up = caught_up_after(observer, load_ended).await?;
    if caught_up.is_none() {
        // Project what is left, so the loss check below still says what is stored.
        redtape_store::Projector::new(running.db.clone())
            .with_methodology(Arc::new(settings.methodology()?))
            .catch_up()
            .await?;
    }
    let events = db::count_events_of(observer, submission_type).await? - events_before;
    let observations = db::count_observations(observer).await? - observations_before;

    let acknowledged = shared.acknowledged.load(Ordering::SeqCst);
    let errors = shared.errors.load(Ordering::SeqCst);
    // The windows' latencies were handed to the samples; the tail after the last window
    // is still in the buffer.
    let mut all: Vec<Duration> = samples
        .iter()
        .flat_map(|s| s.latency.raw.iter().copied())
        .collect();
    all.extend(shared.take_window());
    let latency = Latency::of(all, errors as usize);
    let measured = acknowledged - acked_at_start;
    let per_second = measured as f64 / elapsed;
    println!(
        "{store}: {measured} acknowledged in {elapsed:.2} s (and {acked_at_start} in the \
         warm-up): {per_second:.0} subm/s, \
         p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {errors} failed requests; {}",
        latency.p50_ms,
        latency.p99_ms,
        latency.max_ms,
        match caught_up {
            Some(d) => format!(
                "projector caught up {:.3} s after the load",
                d.as_secs_f64()
            ),
            None => format!(
                "projector NOT caught up {} s after the load",
                CATCH_UP_TIMEOUT.as_secs()
            ),
        }
    );

    let acked = acknowledged as i64;
    let mut checks = vec![Check::new(
        store,
        "nothing lost",
        events == acked && observations == acked,
        format!(
            "{acknowledged} acknowledged; {events} submission events and {observations} \
             observations added"
        ),
    )];
    if let Some(before) = hot_before {
        let after = hot_cell_n(observer).await?;
        checks.push(Check::new(
            store,
            "hot cell",
            after - before == acked,
            format!("cell n {before} -> {after} (+{acknowledged} expected)"),
        ));
    }
    if let Some(reforms) = &reforms {
        for (at, status, took) in reforms {
            println!(
                "{store}: reform of {HOT_PROCEDURE} at t={at:.1} s answered {status} in {:.1} ms",
                took.as_secs_f64() * 1000.0
            );
        }
        let applied = reforms
            .iter()
            .filter(|(_, status, _)| *status == 200)
            .count();
        checks.push(Check::new(
            store,
            "reforms",
            applied == reforms.len(),
            format!("{applied} of {} reforms answered 200", reforms.len()),
        ));
    }
    checks.push(Check::new(
        store,
        "no failed requests",
        errors == 0,
        format!("{errors} of {} requests failed", acknowledged + errors),
    ));
    checks.push(Check::new(
        store,
        "throughput",
        per_second >= args.min_rate,
        format!("{per_second:.0}/s (target >= {}/s)", args.min_rate),
    ));
    if args.seconds.is_some() {
        if samples.len() >= 2 {
            checks.push(flat(store, &samples));
            checks.push(lag_at_samples(store, &samples));
        } else {
            for name in ["flat", "keeps up: lag at every sample"] {
                checks.push(Check::skip(
                    store,
                    name,
                    format!(
                        "{} full window(s) of {} s; at least 2 are needed",
                        samples.len(),
                        args.sample_seconds
                    ),
                ));
            }
        }
        checks.push(Check::new(
            store,
            "keeps up: caught up after the load",
            caught_up.is_some_and(|d| d.as_secs_f64() <= MAX_LAG_SECONDS),
            match caught_up {
                Some(d) => format!("{:.3} s (target <= {MAX_LAG_SECONDS} s)", d.as_secs_f64()),
                None => format!("not within {} s", CATCH_UP_TIMEOUT.as_secs()),
            },
        ));
    }
    Ok((checks, per_second))
}

fn flat(store: &'static str, samples: &[Sample]) -> Check {
    let (first, last) = match (samples.first(), samples.last()) {
        (Some(f), Some(l)) => (f.per_second, l.per_second),
        _ => (0.0, 0.0),
    };
    let ratio = if first > 0.0 { last / first } else { 0.0 };
    Check::new(
        store,
        "flat",
        first > 0.0 && (ratio - 1.0).abs() <= FLAT_TOLERANCE,
        format!(
            "last window {last:.0}/s vs first {first:.0}/s: {:+.1}% (target within {:.0}%)",
            (ratio - 1.0) * 100.0,
            FLAT_TOLERANCE * 100.0
        ),
    )
}

fn lag_at_samples(store: &'static str, samples: &[Sample]) -> Check {
    let worst = samples
        .iter()
        .map(|s| s.lag.as_ref().map_or(f64::INFINITY, |l| l.seconds))
        .fold(0.0, f64::max);
    let unread = samples.iter().filter(|s| s.lag.is_err()).count();
    Check::new(
        store,
        "keeps up: lag at every sample",
        worst <= MAX_LAG_SECONDS,
        if unread > 0 {
            format!("{unread} sample(s) could not read the lag")
        } else {
            format!(
                "worst {worst:.3} s over {} samples (target <= {MAX_LAG_SECONDS} s)",
                samples.len()
            )
        },
    )
}

/// The number of observations in the hot cell's read model (0 if it has no row).
async fn hot_cell_n(db: &Db) -> Result<i64, BoxError> {
    let cells = redtape_store::cells::query(
        db,
        "vn-34",
        Some(HOT_YEAR),
        Some(HOT_PROCEDURE),
        Some(HOT_PROVINCE),
    )
    .await?;
    Ok(cells.first().map_or(0, |c| i64::from(c.n)))
}

/// Polls the projector's lag every 50 ms until it is 0 events; returns how long after `since`
/// that was, or None after [`CATCH_UP_TIMEOUT`].
async fn caught_up_after(db: &Db, since: Instant) -> Result<Option<Duration>, BoxError> {
    loop {
        let lag = projector::lag(db).await?;
        if lag.events == 0 {
            return Ok(Some(since.elapsed()));
        }
        if since.elapsed() > CATCH_UP_TIMEOUT {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every `every` from `started`, until `stop` turns true: takes the window's figures and the
/// projector's lag, prints them, and keeps them. A window the load did not fill (it stopped
/// before the window's end) is not a sample. Also returns how many submissions were
/// acknowledged before `started` (the warm-up), whose latencies it drops.
async fn sample(
    store: &'static str,
    db: Db,
    shared: Arc<Shared>,
    started: Instant,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> (Vec<Sample>, u64) {
    let mut samples = Vec::new();
    tokio::time::sleep_until(started.into()).await;
    let at_start = shared.acknowledged.load(Ordering::SeqCst);
    shared.take_window();
    let (mut last_at, mut last_acked) = (started, at_start);
    for k in 1u32.. {
        if *stop.borrow() {
            break;
        }
        let tick = started + every * k;
        let stopped = tokio::select! {
            biased;
            _ = tokio::time::sleep_until(tick.into()) => false,
            _ = stop.changed() => true,
        };
        let now = Instant::now();
        if stopped && now < tick {
            break;
        }
        let acked = shared.acknowledged.load(Ordering::SeqCst);
        let window = shared.take_window();
        let lag = projector::lag(&db).await.map_err(|e| e.to_string());
        let seconds = now.duration_since(last_at).as_secs_f64();
        let sample = Sample {
            elapsed: now.duration_since(started).as_secs_f64(),
            per_second: (acked - last_acked) as f64 / seconds,
            latency: Latency::of(window, 0),
            lag,
        };
        println!(
            "{store}: t={:>6.1} s  {:>6.0} subm/s  p50 {:>7.2} ms  p99 {:>7.2} ms  lag {}",
            sample.elapsed,
            sample.per_second,
            sample.latency.p50_ms,
            sample.latency.p99_ms,
            match &sample.lag {
                Ok(l) => format!("{} events, {:.3} s", l.events, l.seconds),
                Err(e) => format!("unreadable: {e}"),
            }
        );
        samples.push(sample);
        (last_at, last_acked) = (now, acked);
    }
    (samples, at_start)
}

/// Runs the clients until `until`; each request files a new timing with a fresh
/// Idempotency-Key, and successive requests rotate over the tokens. Returns when the last
/// answer arrived.
async fn drive(
    base: String,
    tokens: Vec<String>,
    clients: usize,
    until: Until,
    hot: bool,
    shared: Arc<Shared>,
) -> Instant {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .finish();
    let tokens = Arc::new(tokens);
    let runs = (0..clients).map(|i| {
        let (client, tokens, shared) = (client.clone(), tokens.clone(), shared.clone());
        let url = format!("{base}/v1/timings");
        async move {
            let mut sent = 0usize;
            loop {
                match until {
                    Until::Count(total)
                        if sent >= total / clients + usize::from(i < total % clients) =>
                    {
                        break
                    }
                    Until::Deadline(at) if Instant::now() >= at => break,
                    _ => {}
                }
                sent += 1;
                let k = shared.next.fetch_add(1, Ordering::Relaxed);
                let token = &tokens[k % tokens.len()];
                let body = if hot { hot_body(k) } else { body(k) }.to_string();
                let began = Instant::now();
                let res = client
                    .post(&url)
                    .insert_header(("authorization", format!("Bearer {token}")))
                    .insert_header(("content-type", "application/json"))
                    .insert_header(("idempotency-key", uuid::Uuid::now_v7().to_string()))
                    .send_body(body)
                    .await;
                let failure = match res {
                    Ok(mut r) if r.status().as_u16() == 201 => {
                        let _ = r.body().await;
                        let latency = began.elapsed();
                        shared.acknowledged.fetch_add(1, Ordering::SeqCst);
                        shared
                            .window
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(latency);
                        None
                    }
                    Ok(mut r) => {
                        let text = r.body().await.unwrap_or_default();
                        Some(format!("{} {}", r.status(), String::from_utf8_lossy(&text)))
                    }
                    Err(e) => Some(format!("request failed: {e}")),
                };
                if let Some(failure) = failure {
                    // The first few failures are shown; all are counted.
                    if shared.errors.fetch_add(1, Ordering::SeqCst) < 5 {
                        eprintln!("bench: {failure}");
                    }
                }
            }
        }
    });
    futures::future::join_all(runs).await;
    Instant::now()
}

/// A realistic, varied timing: the catalogue's procedures across vn-34 provinces.
fn body(k: usize) -> serde_json::Value {
    const PROCEDURES: [&str; 6] = [
        "1.001612", "2.001199", "1.009645", "1.009972", "1.000097", "1.007425",
    ];
    const PROVINCES: [&str; 8] = ["01", "79", "48", "31", "92", "24", "52", "56"];
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
}

/// A timing of the hot cell (vn-34/2025/1.001612/79): submitted in August or September
/// 2025, completed in October 2025; costs, staff hours, visits and days differ.
fn hot_body(k: usize) -> serde_json::Value {
    const CHANNELS: [&str; 3] = ["in_person", "online", "online"];
    let month = 8 + k % 2;
    let day = 1 + (k / 2) % 28;
    let done = 1 + (k / 7) % 28;
    serde_json::json!({
        "procedure_code": HOT_PROCEDURE,
        "province_code": HOT_PROVINCE,
        "submitted_on": format!("{HOT_YEAR}-{month:02}-{day:02}"),
        "completed_on": format!("{HOT_YEAR}-10-{done:02}"),
        "outcome": "granted",
        "channel": CHANNELS[k % 3],
        "costs": {
            "official_fees": 50000 + (k % 10) as i64 * 1000,
            "external_services": (k % 4) as i64 * 500000
        },
        "staff_hours": (k % 16) as f64 / 2.0,
        "visits": (k % 5) as i64
    })
}

/// Posts `n` reforms of the hot procedure, evenly spaced over the `run` that starts at
/// `started`, alternating tight and loose statutory deadlines so each one changes the on-time
/// verdict of most observations; returns when each was sent (seconds into the run), its status
/// (0 if it got no answer) and its latency.
async fn reform_during(
    base: String,
    officer: String,
    n: u64,
    started: Instant,
    run: Duration,
) -> Vec<(f64, u16, Duration)> {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .finish();
    let mut sent = Vec::new();
    for k in 0..n {
        let at = started + run.mul_f64((k as f64 + 0.5) / n as f64);
        tokio::time::sleep_until(at.into()).await;
        let body = serde_json::json!({
            // Each after the last (the run allows at most 27).
            "effective_from": format!("{HOT_YEAR}-08-{:02}", 1 + k),
            "statutory_working_days": if k % 2 == 0 { 15 } else { 40 },
            "official_fee_vnd": 0,
            "legal_basis": format!("Bench reform {k}"),
        });
        let began = Instant::now();
        let status = match client
            .post(format!("{base}/v1/procedures/{HOT_PROCEDURE}/reforms"))
            .insert_header(("authorization", format!("Bearer {officer}")))
            .send_json(&body)
            .await
        {
            Ok(mut r) => {
                let _ = r.body().await;
                r.status().as_u16()
            }
            Err(_) => 0,
        };
        sent.push((
            began.duration_since(started).as_secs_f64(),
            status,
            began.elapsed(),
        ));
    }
    sent
}

/// The `k`-th pre-loaded timing of the hot cell: the same bodies the run sends, filed by one
/// of k/20 filers.
fn hot_timing(k: usize) -> Result<(FilerId, TimingDraft), serde_json::Error> {
    let filer = FilerId(uuid::Uuid::from_u64_pair(0xbe9c_0000, (k / 20) as u64));
    Ok((filer, serde_json::from_value(hot_body(k))?))
}

// ----------------------------------------------------------------------------------------
// pgbench

/// The pgbench script: one durable single-row insert of an events-shaped row. The JSON is
/// bound as parameters (`-D`, see [`PGBENCH_PAYLOAD`]) as the service binds it, and stays out
/// of the script, where pgbench would read `:name` inside it as a variable.
const PGBENCH_SCRIPT: &str = "\\set id random(1, 9000000000000000000)\n\
    INSERT INTO pgbench_events (aggregate_type, aggregate_id, sequence, event_type, \
    event_version, payload, metadata) VALUES ('Submission', 'pgbench-' || :client_id || '-' || :id, \
    1, 'TimingReported', '1.0', :payload, :metadata);\n";

/// A timing's event as the service stores it (same fields and sizes as a hot-cell body).
const PGBENCH_PAYLOAD: &str = r#"{"TimingReported":{"filed_at":"2026-12-01T04:43:54.033099Z","filer":"489ff253-d51b-cbe5-b5ea-8d36e9e22058","timing":{"channel":"online","completed_on":"2025-10-05","costs":{"external_services":500000,"official_fees":53000,"unofficial_payments":0},"outcome":"granted","procedure":"1.001612","province":{"code":"79","geography":"vn-34"},"staff_hours":2.5,"submitted_on":"2025-09-05","visits":1}}}"#;

/// The metadata the API records with it (api: submissions::metadata).
const PGBENCH_METADATA: &str = r#"{"actor":"filer:489ff253-d51b-cbe5-b5ea-8d36e9e22058","idempotency_key":"019ad8a4-5f1e-7d3a-9b11-4c2f8e6a1d03","received_at":"2026-12-01T04:43:54.033099Z","request_id":"019ad8a4-5f1e-7d3a-9b11-4c2f8e6a1d02","token_id":"019ad8a4-5f1e-7d3a-9b11-4c2f8e6a1d01"}"#;

/// Runs pgbench on the bench's database and compares the rates; FAILs if pgbench cannot run.
async fn pgbench(store: &'static str, url: &str, args: &BenchArgs, redtape_rate: f64) -> Check {
    match run_pgbench(url, args).await {
        Ok(tps) => {
            let ratio = format!(
                "; redtape/pgbench = {redtape_rate:.0}/{tps:.0} = {:.2}",
                redtape_rate / tps
            );
            Check::new(
                store,
                "pgbench",
                true,
                format!(
                    "{tps:.0} single-row inserts/s ({} clients, {} s){ratio}",
                    args.clients, args.pgbench_seconds
                ),
            )
        }
        Err(e) => Check::new(store, "pgbench", false, e),
    }
}

async fn run_pgbench(url: &str, args: &BenchArgs) -> Result<f64, String> {
    let db = Db::connect(Some(url), &Default::default())
        .await
        .map_err(|e| e.to_string())?;
    let created = db::create_pgbench_events(&db).await;
    db.close().await;
    created.map_err(|e| format!("cannot create pgbench_events: {e}"))?;

    let path = std::env::temp_dir().join(format!("redtape-pgbench-{}.sql", uuid::Uuid::now_v7()));
    std::fs::write(&path, PGBENCH_SCRIPT).map_err(|e| format!("{}: {e}", path.display()))?;
    let command = [
        "-n".to_string(),
        "-M".into(),
        "prepared".into(),
        "-c".into(),
        args.clients.to_string(),
        "-j".into(),
        args.clients.min(2).to_string(),
        "-T".into(),
        args.pgbench_seconds.to_string(),
        "-D".into(),
        format!("payload={PGBENCH_PAYLOAD}"),
        "-D".into(),
        format!("metadata={PGBENCH_METADATA}"),
        "-f".into(),
        path.display().to_string(),
        url.to_string(),
    ];
    println!(
        "postgres: {} -n -M prepared -c {} -j {} -T {} -D payload=<a TimingReported event, {} \
         bytes> -D metadata=<its metadata, {} bytes> -f <one INSERT: docs/benchmarks.md> {url}",
        args.pgbench,
        args.clients,
        args.clients.min(2),
        args.pgbench_seconds,
        PGBENCH_PAYLOAD.len(),
        PGBENCH_METADATA.len()
    );
    let output = tokio::process::Command::new(&args.pgbench)
        .args(&command)
        .output()
        .await;
    let _ = std::fs::remove_file(&path);
    let output = output.map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "pgbench not found ({:?}): install PostgreSQL's client tools or pass --pgbench PATH",
            args.pgbench
        ),
        _ => format!("cannot run {}: {e}", args.pgbench),
    })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "pgbench exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok())
        .ok_or_else(|| format!("no \"tps = \" line in pgbench's output: {stdout}"))
}

// ----------------------------------------------------------------------------------------
// Memory

async fn memory(
    store: &'static str,
    url: String,
    args: &BenchArgs,
) -> Result<Vec<Check>, BoxError> {
    let submissions = args.submissions.unwrap_or(1_000_000);
    let requests = args.requests.unwrap_or(500);
    let loaded = Instant::now();
    {
        let db = load_demo(&url, submissions).await?;
        let observations = db::count_observations(&db).await?;
        let events = db::count_events(&db).await?;
        db.close().await;
        if observations != submissions as i64 {
            return Err(format!("{store}: {observations} observations after loading").into());
        }
        println!(
            "{store}: loaded {submissions} submissions ({events} events) in {:.1} s",
            loaded.elapsed().as_secs_f64()
        );
    }

    // A free port for the child: bound and released (a tiny race, harmless here).
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = std::process::Command::new(std::env::current_exe()?)
        .args([
            "--database-url",
            &url,
            "--bind",
            &addr,
            "--log",
            "warn",
            "--log-format",
            "text",
            "serve",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()?;
    let child = Child(child);
    let pid = child.0.id();
    println!("{store}: started the service as process {pid} on {addr}");
    let base = format!("http://{addr}");
    // The child moves into the client thread and is killed there on every path (Drop).
    let probed = tokio::task::spawn_blocking(move || {
        actix_web::rt::System::new().block_on(probe(child, base, requests))
    })
    .await??;
    println!(
        "{store}: ready after {:.1} s; {} GETs of {INDICES_PATH}: {} answered 200 \
         (p50 {:.2} ms, p99 {:.2} ms); VmRSS {:.1} MB, VmHWM {:.1} MB",
        probed.ready_after.as_secs_f64(),
        requests,
        probed.latency.count,
        probed.latency.p50_ms,
        probed.latency.p99_ms,
        probed.rss_mb,
        probed.hwm_mb
    );
    Ok(vec![
        Check::new(
            store,
            "queries answered",
            probed.latency.errors == 0 && probed.latency.count == requests,
            format!(
                "{} of {requests} GETs answered 200 with a non-empty page",
                probed.latency.count
            ),
        ),
        Check::new(
            store,
            "memory",
            probed.rss_mb <= args.max_rss_mb,
            format!(
                "VmRSS {:.1} MB with {submissions} submissions loaded (target <= {} MB; \
                 peak VmHWM {:.1} MB)",
                probed.rss_mb, args.max_rss_mb, probed.hwm_mb
            ),
        ),
    ])
}

const INDICES_PATH: &str = "/v1/indices?year=2025&procedure=1.001612";

/// The service in a child process, killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Probed {
    ready_after: Duration,
    latency: Latency,
    rss_mb: f64,
    hwm_mb: f64,
}

/// Waits until the child's /readyz reports no projection lag, sends `requests` index
/// queries (each must answer 200 with a non-empty page), reads its memory, and kills it.
async fn probe(mut child: Child, base: String, requests: usize) -> Result<Probed, BoxError> {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .finish();
    let started = Instant::now();
    loop {
        if let Some(status) = child.0.try_wait()? {
            return Err(format!("the service exited before it was ready: {status}").into());
        }
        let ready = match client.get(format!("{base}/readyz")).send().await {
            Ok(mut r) if r.status().as_u16() == 200 => r
                .body()
                .await
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .is_some_and(|v| v["projection"]["lag_events"].as_i64() == Some(0)),
            _ => false,
        };
        if ready {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err("the service was not ready with no projection lag within 600 s".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ready_after = started.elapsed();
    let url = format!("{base}{INDICES_PATH}");
    let (mut latencies, mut errors) = (Vec::with_capacity(requests), 0usize);
    for _ in 0..requests {
        let sent = Instant::now();
        let ok = match client.get(&url).send().await {
            // A page of the procedure's cells; an empty page would measure nothing.
            Ok(mut r) if r.status().as_u16() == 200 => r
                .body()
                .limit(64 << 20)
                .await
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .is_some_and(|v| v["items"].as_array().is_some_and(|c| !c.is_empty())),
            _ => false,
        };
        if ok {
            latencies.push(sent.elapsed());
        } else {
            errors += 1;
        }
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.0.id()))?;
    let kib = |field: &str| -> Result<f64, BoxError> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<f64>().ok())
            .ok_or_else(|| format!("no {field} in /proc/{}/status", child.0.id()).into())
    };
    let (rss, hwm) = (kib("VmRSS:")?, kib("VmHWM:")?);
    drop(child);
    Ok(Probed {
        ready_after,
        latency: Latency::of(latencies, errors),
        rss_mb: rss * 1024.0 / 1e6,
        hwm_mb: hwm * 1024.0 / 1e6,
    })
}

// ----------------------------------------------------------------------------------------
// Latency

/// Latency figures of a closed-loop run.
#[derive(Debug)]
pub struct Latency {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub errors: usize,
    /// The latencies themselves, sorted.
    raw: Vec<Duration>,
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
            raw: latencies,
        }
    }
}

// ----------------------------------------------------------------------------------------
// Indices

/// Migrates a fresh store and loads `submissions` demo submissions into it (seed 1, the bulk
/// import of `demo-data --import`); returns the connection.
async fn load_demo(url: &str, submissions: usize) -> Result<Db, BoxError> {
    let db = Db::connect(Some(url), &Default::default()).await?;
    db.migrate().await?;
    crate::demo::generate_with(
        &db,
        submissions as u64,
        1,
        false,
        crate::demo::Filing::Import,
    )
    .await?;
    Ok(db)
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

async fn indices_table(stores: &[&'static str], args: &BenchArgs) -> Result<(), BoxError> {
    let requests = args.requests.unwrap_or(20_000);
    if requests < args.clients {
        return Err("--requests must be at least --clients".into());
    }
    println!(
        "store     submissions   events  load s  rebuild s  events/s  cells  requests  \
         p50 ms  p99 ms  max ms  errors"
    );
    for store in stores {
        let r = on_fresh_store(store, args, |url| indices(store, url, args, requests)).await?;
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
    Ok(())
}

async fn indices(
    store: &'static str,
    url: String,
    args: &BenchArgs,
    requests: usize,
) -> Result<IndicesReport, BoxError> {
    let submissions = args.submissions.unwrap_or(20_000);
    let loaded = Instant::now();
    {
        load_demo(&url, submissions).await?.close().await;
    }
    let load_seconds = loaded.elapsed().as_secs_f64();

    let (running, server_task, settings) = serve(&url).await?;
    let outcome = async {
        let events = db::count_events(&running.db).await?;
        let observations = db::count_observations(&running.db).await?;
        if observations != submissions as i64 {
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
        let clients = args.clients;
        let (latencies, errors) = tokio::task::spawn_blocking(move || {
            actix_web::rt::System::new().block_on(query(base, path, clients, requests))
        })
        .await?;
        Ok::<_, BoxError>(IndicesReport {
            store,
            submissions,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hot_bodies_are_valid_timings_of_the_hot_cell() {
        for k in [0, 1, 7, 55, 49_999] {
            let (_, draft) = hot_timing(k).unwrap();
            assert_eq!(draft.procedure_code, HOT_PROCEDURE);
            assert_eq!(draft.province_code, HOT_PROVINCE);
            let completed = draft.completed_on.unwrap();
            assert_eq!(chrono::Datelike::year(&completed), HOT_YEAR);
            assert!(draft.submitted_on < completed);
        }
    }

    #[test]
    fn pgbench_script_uses_only_its_variables() {
        let vars: Vec<&str> = PGBENCH_SCRIPT
            .split(':')
            .skip(1)
            .map(|rest| {
                rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or("")
            })
            .collect();
        assert_eq!(vars, ["client_id", "id", "payload", "metadata"]);
        for json in [PGBENCH_PAYLOAD, PGBENCH_METADATA] {
            serde_json::from_str::<serde_json::Value>(json).unwrap();
        }
    }
}
