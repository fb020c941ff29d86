//! The indices scenario: a full rebuild of a loaded store (events/s) and the latency of a
//! one-cell `GET /v1/indices`.

use super::*;

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

/// Rebuild throughput target (issue 3), judged on a store of at least a million submissions:
/// a smaller one spends too much of its time on fixed costs to say anything.
const MIN_REBUILD_EVENTS_PER_S: f64 = 20_000.0;
const REBUILD_JUDGED_FROM: usize = 1_000_000;
/// One-cell `GET /v1/indices` latency target (issue 3).
const MAX_P99_MS: f64 = 5.0;

/// The table of every store's figures, then the checks of the targets.
pub(super) async fn indices_table(
    stores: &[&'static str],
    args: &BenchArgs,
) -> Result<Vec<Check>, BoxError> {
    let requests = args.requests.unwrap_or(20_000);
    if requests < args.clients {
        return Err("--requests must be at least --clients".into());
    }
    println!(
        "store     submissions   events  load s  rebuild s  events/s  cells  requests  \
         p50 ms  p99 ms  max ms  errors"
    );
    let mut reports = Vec::new();
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
        reports.push(r);
    }
    Ok(reports.iter().flat_map(checks).collect())
}

/// The verdicts of one store's run.
fn checks(r: &IndicesReport) -> Vec<Check> {
    let rate = r.events as f64 / r.rebuild_seconds;
    let rebuild = format!(
        "{rate:.0} events/s ({} events in {:.2} s; target >= {MIN_REBUILD_EVENTS_PER_S:.0}/s)",
        r.events, r.rebuild_seconds
    );
    vec![
        if r.submissions >= REBUILD_JUDGED_FROM {
            Check::new(
                r.store,
                "rebuild",
                rate >= MIN_REBUILD_EVENTS_PER_S,
                rebuild,
            )
        } else {
            Check::skip(
                r.store,
                "rebuild",
                format!("{rebuild}; judged from {REBUILD_JUDGED_FROM} submissions"),
            )
        },
        Check::new(
            r.store,
            "one-cell query p99",
            r.latency.p99_ms < MAX_P99_MS,
            format!(
                "{:.2} ms over {} requests (target < {MAX_P99_MS} ms)",
                r.latency.p99_ms, r.latency.count
            ),
        ),
        Check::new(
            r.store,
            "no failed requests",
            r.latency.errors == 0,
            format!(
                "{} of {} requests failed",
                r.latency.errors, r.latency.count
            ),
        ),
    ]
}

pub(super) async fn indices(
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

    let (running, server_task, settings) = serve(&url, false).await?;
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
pub(super) async fn query(
    base: String,
    path: String,
    clients: usize,
    total: usize,
) -> (Vec<Duration>, usize) {
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
