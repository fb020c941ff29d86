//! Operators of the service (admin tokens): onboarding over HTTP.
//!
//! - [`accounts`]: `POST/GET /v1/admin/filers`, `GET /v1/admin/filers/{id}`,
//!   `POST/GET /v1/admin/tokens`, `POST /v1/admin/tokens/{id}/revocation`.

pub mod accounts;
