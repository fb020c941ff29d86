//! Filers (with a `business` token, or an `intermediary` token acting for its members): file
//! timings and complaints, read, amend and withdraw their own submissions, see the
//! government's responses to them, and their own account.
//!
//! - [`submissions`]: `POST /v1/timings`, `POST /v1/complaints` (`?on_behalf_of=` for an
//!   intermediary), `GET /v1/submissions/{id}`, `POST /v1/submissions/{id}/amendments`,
//!   `POST /v1/submissions/{id}/withdrawal`.
//! - [`account`]: `GET /v1/me`, `PUT /v1/me/profile`, `GET /v1/submissions`.
//! - [`members`]: an intermediary's members, `POST/GET /v1/members`,
//!   `PUT /v1/members/{id}/profile`.

pub mod account;
pub mod members;
pub mod submissions;
