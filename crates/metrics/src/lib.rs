//! # redtape-metrics
//!
//! Every Prometheus series the service exposes at `/metrics`, in one place, so the list in
//! docs/operations.md has one source. The store records the projector's and the pool's
//! series, the API the requests', filings' and limits'; the `/metrics` handler sets the
//! gauges read at scrape time (lag, pool) and encodes the lot as OpenMetrics text.
//!
//! The registry is process-wide ([`get`]): the series describe the process, and threading a
//! handle through every store type would buy nothing. Labels are bounded sets only: route
//! templates (never raw paths, so no ids), methods, status codes, problem types and rule
//! codes.

// Tests may unwrap: a panic is how a test fails.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

use std::sync::atomic::AtomicU64;
use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

/// The content type of [`encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every series prefixed `redtape_` (`process_` for the process's own).
pub const PREFIX: &str = "redtape";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route template (`/v1/submissions/{id}`), or `unmatched`.
    pub route: String,
    pub method: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FilingLabels {
    /// timing, complaint, amendment or withdrawal.
    pub operation: &'static str,
    /// accepted (2xx), refused (4xx) or failed (5xx).
    pub outcome: &'static str,
    /// The problem type of a refusal (`invalid`, `amendment-window-closed`, ...); empty when
    /// accepted.
    pub problem: String,
    /// For a validation refusal, the rule of its first field (`range`, `required`, ...).
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    /// rate (requests per token per minute) or daily_cap (filings per filer per day).
    pub limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    /// in_use or idle.
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: &'static str,
    pub methodology_version: &'static str,
    /// postgres or sqlite.
    pub store: &'static str,
    /// on, off, or auto (this process projects when it holds the leader lock).
    pub projector: &'static str,
}

fn latency() -> Histogram {
    // 0.5 ms to about 16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// A gauge holding seconds (or any fraction).
pub type FloatGauge = Gauge<f64, AtomicU64>;

/// The series, grouped by who records them.
pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<RequestLabels, Counter>,
    pub http_duration: Family<RequestLabels, Histogram, fn() -> Histogram>,
    pub filings: Family<FilingLabels, Counter>,
    pub limit_refusals: Family<LimitLabels, Counter>,
    pub projector_lag_events: Gauge,
    pub projector_lag_seconds: FloatGauge,
    /// 1 while this process runs the projector (always with `on`; while it leads with `auto`).
    pub projector_leader: Gauge,
    /// Times this process became the projector (elections won).
    pub projector_takeovers: Counter,
    pub projector_events: Counter,
    pub projector_batch_events: Histogram,
    pub projector_batch_duration: Histogram,
    pub projector_batch_failures: Counter,
    pub cell_refresh_duration: Histogram,
    pub cells_written: Counter,
    pub pool_connections: Family<PoolLabels, Gauge>,
    pub pool_max: Gauge,
    /// Tasks waiting for a connection to begin a write transaction.
    pub pool_waiting: Gauge,
    pub pool_timeouts: Counter,
    pub build_info: Family<BuildLabels, Gauge>,
    /// 1 when the last scrape's store query answered.
    pub store_up: Gauge,
    pub resident_memory: Gauge,
}

impl Metrics {
    fn new() -> Self {
        let m = Metrics {
            registry: Registry::with_prefix(PREFIX),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(latency),
            filings: Family::default(),
            limit_refusals: Family::default(),
            projector_lag_events: Gauge::default(),
            projector_lag_seconds: FloatGauge::default(),
            projector_leader: Gauge::default(),
            projector_takeovers: Counter::default(),
            projector_events: Counter::default(),
            projector_batch_events: Histogram::new(exponential_buckets(1.0, 4.0, 8)),
            projector_batch_duration: latency(),
            projector_batch_failures: Counter::default(),
            cell_refresh_duration: latency(),
            cells_written: Counter::default(),
            pool_connections: Family::default(),
            pool_max: Gauge::default(),
            pool_waiting: Gauge::default(),
            pool_timeouts: Counter::default(),
            build_info: Family::default(),
            store_up: Gauge::default(),
            resident_memory: Gauge::default(),
        };
        m.register()
    }

    fn register(mut self) -> Self {
        let r = &mut self.registry;
        r.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            self.http_requests.clone(),
        );
        r.register_with_unit(
            "http_request_duration",
            "Time from a request's arrival to its response's headers, by route template, method and status",
            Unit::Seconds,
            self.http_duration.clone(),
        );
        r.register(
            "filings",
            "Filings (timings, complaints) and changes (amendments, withdrawals) by outcome and, when refused, by problem type and rule",
            self.filings.clone(),
        );
        r.register(
            "limit_refusals",
            "Requests refused by the per-token rate limit or the per-filer daily cap",
            self.limit_refusals.clone(),
        );
        r.register(
            "projector_lag_events",
            "Committed events the read models do not include yet (read from the store at scrape: the same on every replica)",
            self.projector_lag_events.clone(),
        );
        r.register_with_unit(
            "projector_lag",
            "Age of the oldest event the read models do not include yet; 0 when caught up",
            Unit::Seconds,
            self.projector_lag_seconds.clone(),
        );
        r.register(
            "projector_leader",
            "1 while this process runs the projector",
            self.projector_leader.clone(),
        );
        r.register(
            "projector_takeovers",
            "Times this process became the projector",
            self.projector_takeovers.clone(),
        );
        r.register(
            "projector_events",
            "Events this process applied to the read models",
            self.projector_events.clone(),
        );
        r.register(
            "projector_batch_events",
            "Events per projector write transaction",
            self.projector_batch_events.clone(),
        );
        r.register_with_unit(
            "projector_batch_duration",
            "Duration of each projector write transaction, commit included",
            Unit::Seconds,
            self.projector_batch_duration.clone(),
        );
        r.register(
            "projector_batch_failures",
            "Projector transactions that failed (and were retried)",
            self.projector_batch_failures.clone(),
        );
        r.register_with_unit(
            "cell_refresh_duration",
            "Time to recompute and write the index cells (and CBI rows) a batch changed",
            Unit::Seconds,
            self.cell_refresh_duration.clone(),
        );
        r.register(
            "cells_written",
            "Index cells written by the projector",
            self.cells_written.clone(),
        );
        r.register(
            "db_pool_connections",
            "Database connections of this process's pool, by state",
            self.pool_connections.clone(),
        );
        r.register(
            "db_pool_max_connections",
            "The pool's ceiling",
            self.pool_max.clone(),
        );
        r.register(
            "db_pool_waiting",
            "Tasks waiting for a pooled connection to begin a write transaction",
            self.pool_waiting.clone(),
        );
        r.register(
            "db_pool_timeouts",
            "Waits for a pooled connection that timed out (answered 503)",
            self.pool_timeouts.clone(),
        );
        r.register(
            "build_info",
            "The running build: version, methodology version, store and projector mode",
            self.build_info.clone(),
        );
        r.register(
            "store_up",
            "1 when the store answered the scrape's lag query within 0.5 s, else 0",
            self.store_up.clone(),
        );
        r.register_with_unit(
            "process_resident_memory",
            "Resident memory of the process (Linux)",
            Unit::Bytes,
            self.resident_memory.clone(),
        );
        self
    }

    /// Records that this build is running, publishing figures under `methodology_version`, on
    /// `store`, with the projector in `projector` mode.
    pub fn set_build(
        &self,
        methodology_version: &'static str,
        store: &'static str,
        projector: &'static str,
    ) {
        self.build_info.clear();
        self.build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                methodology_version,
                store,
                projector,
            })
            .set(1);
    }

    /// The OpenMetrics text of every series.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(32 * 1024);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The process's series.
pub fn get() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// Counts a task waiting for a pooled connection while it lives.
pub struct Waiting(());

impl Waiting {
    pub fn start() -> Self {
        get().pool_waiting.inc();
        Waiting(())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        get().pool_waiting.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_named_and_typed_as_documented() {
        let m = Metrics::new();
        m.http_requests
            .get_or_create(&RequestLabels {
                route: "/v1/submissions/{id}".into(),
                method: "GET",
                status: 200,
            })
            .inc();
        m.http_duration
            .get_or_create(&RequestLabels {
                route: "/v1/timings".into(),
                method: "POST",
                status: 201,
            })
            .observe(0.003);
        m.projector_lag_seconds.set(1.5);
        m.set_build("1.1", "sqlite", "on");
        let text = m.encode();
        assert!(
            text.contains("# TYPE redtape_http_requests counter"),
            "{text}"
        );
        assert!(
            text.contains(
                "redtape_http_requests_total{route=\"/v1/submissions/{id}\",method=\"GET\",status=\"200\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("redtape_projector_lag_seconds 1.5"), "{text}");
        assert!(text.contains("# TYPE redtape_http_request_duration_seconds histogram"));
        assert!(text.contains(
            "redtape_http_request_duration_seconds_bucket{le=\"0.004\",route=\"/v1/timings\",method=\"POST\",status=\"201\"} 1"
        ), "{text}");
        assert!(
            text.contains("store=\"sqlite\",projector=\"on\"} 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
        // Setting the build again replaces the series rather than adding one.
        m.set_build("1.1", "postgres", "auto");
        let text = m.encode();
        assert!(!text.contains("store=\"sqlite\""));
        assert_eq!(text.matches("redtape_build_info{").count(), 1, "{text}");
    }

    #[test]
    fn waiting_counts_while_held() {
        let before = get().pool_waiting.get();
        let w = Waiting::start();
        assert_eq!(get().pool_waiting.get(), before + 1);
        drop(w);
        assert_eq!(get().pool_waiting.get(), before);
    }
}
