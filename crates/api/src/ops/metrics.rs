//! `/metrics`: the process's Prometheus series (redtape-metrics) in OpenMetrics text.
//!
//! Most series are recorded where things happen; the ones that describe a state rather than
//! events are read here, at scrape time: the projector's lag from the store (so every replica
//! reports the same, whichever one projects), the pool's connections, the resident memory.
//! A scrape answers even when the database does not: `redtape_store_up` then says 0 and the
//! lag keeps its last value.

use actix_web::{get, web, HttpResponse};

use crate::AppState;

/// How long a scrape waits for the lag query.
const LAG_WITHIN: std::time::Duration = std::time::Duration::from_millis(500);

/// Prometheus metrics (OpenMetrics text).
///
/// Every series, its labels and what to alert on are listed in docs/operations.md. Labels
/// carry route templates (`/v1/submissions/{id}`), never raw paths. Serve it to the scraper
/// only: a reverse proxy in front of the public API should not route `/metrics`.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Every series, OpenMetrics 1.0 text ending with `# EOF`",
         body = String, content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
    )
)]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let m = redtape_metrics::get();
    let lag =
        actix_web::rt::time::timeout(LAG_WITHIN, redtape_store::projector::lag(&state.db)).await;
    match lag {
        Ok(Ok(lag)) => {
            m.store_up.set(1);
            m.projector_lag_events.set(lag.events);
            m.projector_lag_seconds.set(lag.seconds);
        }
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "lag not read for /metrics");
            m.store_up.set(0);
        }
        Err(_) => {
            m.store_up.set(0);
        }
    }
    let (open, idle, max) = state.db.pool_stats();
    let idle = i64::try_from(idle).unwrap_or(i64::MAX);
    let pool = |state| {
        m.pool_connections
            .get_or_create(&redtape_metrics::PoolLabels { state })
            .clone()
    };
    pool("in_use").set((i64::from(open) - idle).max(0));
    pool("idle").set(idle);
    m.pool_max.set(i64::from(max));
    if let Some(rss) = resident_bytes() {
        m.resident_memory.set(rss);
    }
    HttpResponse::Ok()
        .content_type(redtape_metrics::CONTENT_TYPE)
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .body(m.encode())
}

/// The process's resident set, from /proc (Linux); `None` elsewhere.
fn resident_bytes() -> Option<i64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
