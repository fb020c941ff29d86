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

mod filing;
mod indices;
mod memory;
mod pgbench;

use filing::*;
use pgbench::*;

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
    /// filing: run with the rate limit and the daily cap on, both set too high to refuse
    /// (1,000,000 a minute, a day), to measure what they cost: on PostgreSQL, where replicas
    /// share them, a statement per request and one per filing.
    #[arg(long)]
    pub limits: bool,
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
        "indices" => checks.extend(indices::indices_table(stores, &args).await?),
        "memory" => {
            for store in stores {
                checks.extend(
                    on_fresh_store(store, &args, |url| memory::memory(store, url, &args)).await?,
                );
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
    limits: bool,
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
        // submissions with one token. With --limits they run, never refusing: 32 clients over
        // 256 tokens send each token about 1,400 requests a minute at 6,000 filings/s, so a
        // quota of 6,000 a minute is never used up yet is taken in chunks of 300 (as the
        // default 600 is in chunks of 30), not in one chunk of 50,000 a million would give.
        "--rate-limit-per-minute",
        if limits { "6000" } else { "0" },
        "--daily-submission-cap",
        if limits { "1000000" } else { "0" },
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
