//! The memory scenario: the real service as a child process on a loaded store, its resident
//! memory read from /proc while it answers index queries.

use super::*;

pub(super) async fn memory(
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
            "--log",
            "warn",
            "--log-format",
            "text",
            "serve",
            "--bind",
            &addr,
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

pub(super) const INDICES_PATH: &str = "/v1/indices?year=2025&procedure=1.001612";

/// The service in a child process, killed when dropped.
pub(super) struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(super) struct Probed {
    ready_after: Duration,
    latency: Latency,
    rss_mb: f64,
    hwm_mb: f64,
}

/// Waits until the child's /readyz reports no projection lag, sends `requests` index
/// queries (each must answer 200 with a non-empty page), reads its memory, and kills it.
pub(super) async fn probe(
    mut child: Child,
    base: String,
    requests: usize,
) -> Result<Probed, BoxError> {
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
