//! Operators: probes for orchestrators and load balancers.
//!
//! - [`health`]: `/healthz` (alive), `/readyz` (the store answers; the projector's lag).

pub mod health;
