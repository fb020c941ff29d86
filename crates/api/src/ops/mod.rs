//! Operators: probes for orchestrators and load balancers.
//!
//! - [`health`]: `/healthz` (alive), `/readyz` (the store answers; the projector's lag).
//! - [`metrics`]: `/metrics` (Prometheus series, OpenMetrics text).

pub mod health;
pub mod metrics;
