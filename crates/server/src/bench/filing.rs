//! The filing scenario: closed-loop clients filing timings over HTTP, sampled per window,
//! with the hot cell and reforms during the run; the checks of throughput, flatness and lag.
//!
//! About 630 lines, one scenario: the load, the sampler and the checks share the run's state,
//! and a check is only meaningful read next to how its figure was sampled.

use super::*;
use redtape_store::accounts::{Accounts, TokenRequest};

/// What the clients and the sampler share. The clients run on actix's single-threaded
/// runtime in a thread of their own; the sampler on the main Tokio runtime.
#[derive(Default)]
pub(super) struct Shared {
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
pub(super) enum Until {
    /// After this many requests in total.
    Count(usize),
    /// At the first request that would start after this instant.
    Deadline(Instant),
}

/// One sample window.
#[derive(Debug)]
pub(super) struct Sample {
    elapsed: f64,
    per_second: f64,
    latency: Latency,
    /// Read at the end of the window; an error is kept as text and fails "keeps up".
    lag: Result<Lag, String>,
}

pub(super) async fn filing(
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

    let (running, server_task, settings) = serve(&url, args.limits).await?;
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

pub(super) async fn drive_and_check(
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

    let accounts = Accounts::new(&running.db, Arc::new(tokio::sync::Notify::new()));
    let mut tokens = Vec::new();
    for _ in 0..args.tokens {
        tokens.push(
            accounts
                .onboard_business(Default::default(), Some("bench"), "bench")
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
        let officer = accounts
            .issue(TokenRequest::new(Role::Officer, None), "bench")
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

pub(super) fn flat(store: &'static str, samples: &[Sample]) -> Check {
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

pub(super) fn lag_at_samples(store: &'static str, samples: &[Sample]) -> Check {
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
pub(super) async fn hot_cell_n(db: &Db) -> Result<i64, BoxError> {
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
pub(super) async fn caught_up_after(db: &Db, since: Instant) -> Result<Option<Duration>, BoxError> {
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
pub(super) async fn sample(
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
pub(super) async fn drive(
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
pub(super) fn body(k: usize) -> serde_json::Value {
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
pub(super) fn hot_body(k: usize) -> serde_json::Value {
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
pub(super) async fn reform_during(
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
pub(super) fn hot_timing(k: usize) -> Result<(FilerId, TimingDraft), serde_json::Error> {
    let filer = FilerId(uuid::Uuid::from_u64_pair(0xbe9c_0000, (k / 20) as u64));
    Ok((filer, serde_json::from_value(hot_body(k))?))
}

// ----------------------------------------------------------------------------------------
// pgbench

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
}
