//! Reform offices (officer and admin tokens): moderate and answer submissions, keep the
//! procedure catalogue, publish the annual releases, and read the dashboard.
//!
//! - [`moderation`]: `/v1/moderation/queue`, `POST /v1/submissions/{id}/verification`,
//!   `.../rejection`, `.../responses`, and the audit trail `GET /v1/submissions/{id}/events`.
//! - [`procedures`]: `POST /v1/procedures`, `.../{code}/reforms`, `.../{code}/abolition`.
//! - [`releases`]: `POST /v1/releases/{year}` (admins publish a year).
//! - [`dashboard`]: `GET /`, the reform offices' dashboard (HTML; open, like the figures it
//!   shows).

pub mod dashboard;
mod glance;
mod html;
pub mod moderation;
pub mod procedures;
pub mod releases;
