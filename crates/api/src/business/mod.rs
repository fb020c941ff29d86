//! Businesses (with a `business` token): file timings and complaints, read, amend and
//! withdraw their own submissions, see the government's responses to them.
//!
//! - [`submissions`]: `POST /v1/timings`, `POST /v1/complaints`, `GET /v1/submissions/{id}`,
//!   `POST /v1/submissions/{id}/amendments`, `POST /v1/submissions/{id}/withdrawal`.

pub mod submissions;
