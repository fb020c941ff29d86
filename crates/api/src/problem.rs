//! RFC 9457 problem details: the one error shape of the whole API.
//!
//! Every failure, from a malformed body to an unavailable database, becomes an [`ApiError`],
//! and [`ApiError`] is turned into `application/problem+json` in exactly one place
//! (`ResponseError::error_response`). Validation problems carry an `errors` array naming each
//! field (a JSON pointer into the body, or a parameter name) and the rule it broke.

use std::sync::Arc;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use redtape_domain::submission::SubmissionError;
use redtape_domain::{FieldViolation, Violations};
use redtape_store::{Cause, CommandError, StoreError};
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ProblemField {
    /// JSON pointer (RFC 6901) to the field in the request body, when the field is in the body.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "/costs/official_fees")]
    pub pointer: Option<String>,
    /// Name of the query, path or header parameter, when the field is not in the body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
    /// Stable rule code: `range`, `required`, `format`, `one_of`, `unknown_field`, `type`, ...
    #[schema(example = "range")]
    pub rule: String,
    #[schema(example = "must be a whole number of VND between 0 and 1000000000000, got -5")]
    pub detail: String,
}

impl From<FieldViolation> for ProblemField {
    fn from(v: FieldViolation) -> Self {
        Self {
            pointer: Some(v.pointer),
            parameter: None,
            rule: v.rule,
            detail: v.detail,
        }
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference identifying the problem type; documented in docs/api.md.
    #[serde(rename = "type")]
    #[schema(example = "/problems/validation-failed")]
    pub problem_type: String,
    #[schema(example = "The request is not valid")]
    pub title: String,
    #[schema(example = 422)]
    pub status: u16,
    #[schema(example = "1 field breaks a rule; see errors")]
    pub detail: String,
    /// Field-level details, for validation problems.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
}

/// The kinds of 409: the one table of their problem types, titles and whether a retry can
/// succeed (then `Retry-After: 1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    ConcurrentChange,
    AlreadyExists,
    SubmissionClosed,
    AmendmentWindowClosed,
    AlreadyModerated,
    ProcedureAbolished,
    ReleaseUnchanged,
    EnterpriseRegistered,
    TokenRevoked,
}

impl Conflict {
    pub const ALL: [Conflict; 9] = [
        Conflict::ConcurrentChange,
        Conflict::AlreadyExists,
        Conflict::SubmissionClosed,
        Conflict::AmendmentWindowClosed,
        Conflict::AlreadyModerated,
        Conflict::ProcedureAbolished,
        Conflict::ReleaseUnchanged,
        Conflict::EnterpriseRegistered,
        Conflict::TokenRevoked,
    ];

    /// (problem type slug, title, seconds to wait before a retry that may succeed).
    pub fn parts(self) -> (&'static str, &'static str, Option<u32>) {
        use Conflict::*;
        match self {
            ConcurrentChange => ("concurrent-change", "Concurrent change", Some(1)),
            AlreadyExists => ("already-exists", "Already exists", None),
            SubmissionClosed => ("submission-closed", "Submission closed", None),
            AmendmentWindowClosed => ("amendment-window-closed", "Amendment window closed", None),
            AlreadyModerated => ("already-moderated", "Already moderated", None),
            ProcedureAbolished => ("procedure-abolished", "Procedure abolished", None),
            ReleaseUnchanged => ("release-unchanged", "Nothing changed", None),
            EnterpriseRegistered => (
                "enterprise-registered",
                "Enterprise already registered",
                None,
            ),
            TokenRevoked => ("token-revoked", "Token already revoked", None),
        }
    }
}

/// Everything that can go wrong in a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("{} field(s) break a rule", .0.len())]
    Invalid(Vec<ProblemField>),
    #[error("send the body as application/json")]
    UnsupportedMediaType,
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The body did not arrive within the deadline.
    #[error("the request body did not arrive within {seconds} s")]
    BodyTimeout { seconds: f64 },
    /// The request is malformed below the level of fields (a broken chunked body).
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(String),
    /// The path exists but not with this method; `allow` lists the methods it has.
    #[error("{method} is not allowed here; this path allows {allow}")]
    MethodNotAllowed { method: String, allow: String },
    #[error("{detail}")]
    Conflict { kind: Conflict, detail: String },
    #[error("this Idempotency-Key was already used with a different request body")]
    IdempotencyMismatch,
    /// Another request with the same Idempotency-Key is being answered; retry in a second.
    #[error("a request with this Idempotency-Key is still being processed; retry shortly")]
    KeyTaken,
    /// A rate limit or a daily cap refused the request; retry after `retry_after` seconds.
    #[error("{detail}")]
    TooManyRequests { detail: String, retry_after: u64 },
    /// A dependency (the database) does not answer: 503 with `Retry-After`; the cause is
    /// logged.
    #[error("the service is temporarily unavailable; retry shortly")]
    Unavailable(#[source] Cause),
    /// A bug or a broken invariant: 500; the cause is logged with its sources, never shown.
    #[error("an unexpected error occurred; it has been logged")]
    Internal(#[source] Cause),
}

/// Whether the pool had no connection to give within its timeout (somewhere in the chain).
fn timed_out_waiting_for_pool(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if matches!(
            e.downcast_ref::<redtape_store::db::SqlxError>(),
            Some(redtape_store::db::SqlxError::PoolTimedOut)
        ) {
            return true;
        }
        next = e.source();
    }
    false
}

/// An error and every error under it, `: `-separated: what the log shows of a cause.
struct Chain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

impl std::fmt::Display for ProblemField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = self
            .pointer
            .as_deref()
            .or(self.parameter.as_deref())
            .unwrap_or("");
        write!(f, "{at} ({}): {}", self.rule, self.detail)
    }
}

impl ApiError {
    /// A 500 whose cause (an error, kept with its sources, or a message) is logged.
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        ApiError::Internal(Cause::from(cause.into()))
    }

    /// A 503 whose cause (an error, kept with its sources, or a message) is logged.
    pub fn unavailable(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        ApiError::Unavailable(Cause::from(cause.into()))
    }

    /// Another change to the same record won the race: retrying is safe.
    pub fn concurrent_change() -> Self {
        ApiError::Conflict {
            kind: Conflict::ConcurrentChange,
            detail: "another change to the same record was saved at the same moment; retry".into(),
        }
    }

    /// A single invalid query, path or header parameter.
    pub fn parameter(name: &str, rule: &str, detail: impl Into<String>) -> Self {
        ApiError::Invalid(vec![ProblemField {
            pointer: None,
            parameter: Some(name.to_string()),
            rule: rule.to_string(),
            detail: detail.into(),
        }])
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        use ApiError::*;
        match self {
            MalformedJson(_) => (
                StatusCode::BAD_REQUEST,
                "malformed-json",
                "The body is not valid JSON",
            ),
            Invalid(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation-failed",
                "The request is not valid",
            ),
            UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            PayloadTooLarge { .. } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "The body is too large",
            ),
            BodyTimeout { .. } => (
                StatusCode::REQUEST_TIMEOUT,
                "body-timeout",
                "The body took too long to arrive",
            ),
            BadRequest(_) => (
                StatusCode::BAD_REQUEST,
                "bad-request",
                "The request is malformed",
            ),
            Unauthorized(_) => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "A valid bearer token is required",
            ),
            Forbidden(_) => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "This token's role may not do this",
            ),
            NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            MethodNotAllowed { .. } => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            Conflict { kind, .. } => {
                let (slug, title, _) = kind.parts();
                (StatusCode::CONFLICT, slug, title)
            }
            KeyTaken => (
                StatusCode::CONFLICT,
                "idempotency-key-in-use",
                "Request already in progress",
            ),
            IdempotencyMismatch => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency-Key reused with another body",
            ),
            TooManyRequests { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-requests",
                "Too many requests",
            ),
            Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }

    pub fn problem(&self) -> Problem {
        let (status, slug, title) = self.parts();
        let errors = match self {
            ApiError::Invalid(fields) => fields.clone(),
            _ => Vec::new(),
        };
        let detail = match self {
            ApiError::Invalid(fields) if fields.len() == 1 => format!("{}", fields[0]),
            ApiError::Invalid(fields) => {
                format!("{} fields break a rule; see errors", fields.len())
            }
            other => other.to_string(),
        };
        Problem {
            problem_type: format!("/problems/{slug}"),
            title: title.to_string(),
            status: status.as_u16(),
            detail,
            errors,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.parts().0
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Internal(cause) => {
                tracing::error!(cause = %Chain(cause.as_ref()), "internal error")
            }
            ApiError::Unavailable(cause) => {
                tracing::warn!(cause = %Chain(cause.as_ref()), "dependency unavailable")
            }
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        response.content_type(PROBLEM_JSON);
        response.extensions_mut().insert(crate::telemetry::Refusal {
            problem: self.parts().1,
            rule: match self {
                ApiError::Invalid(fields) => fields.first().map(|f| f.rule.clone()),
                _ => None,
            },
        });
        if let ApiError::Unavailable(cause) = self {
            if timed_out_waiting_for_pool(cause.as_ref()) {
                redtape_metrics::get().pool_timeouts.inc();
            }
        }
        match self {
            ApiError::Unauthorized(_) => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"redtape\""));
            }
            ApiError::Conflict { kind, .. } => {
                if let (_, _, Some(s)) = kind.parts() {
                    response.insert_header((header::RETRY_AFTER, s.to_string()));
                }
            }
            ApiError::KeyTaken => {
                response.insert_header((header::RETRY_AFTER, "1"));
            }
            ApiError::MethodNotAllowed { allow, .. } => {
                response.insert_header((header::ALLOW, allow.clone()));
            }
            ApiError::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, "5"));
            }
            ApiError::TooManyRequests { retry_after, .. } => {
                response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            _ => {}
        }
        response.json(self.problem())
    }
}

impl From<Violations> for ApiError {
    fn from(v: Violations) -> Self {
        ApiError::Invalid(v.0.into_iter().map(ProblemField::from).collect())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let unavailable = match &e {
            StoreError::Connect(_) => true,
            StoreError::Sql(sqlx_error) => is_unavailable(sqlx_error),
            _ => false,
        };
        if unavailable {
            ApiError::Unavailable(Arc::new(e))
        } else {
            ApiError::Internal(Arc::new(e))
        }
    }
}

fn is_unavailable(e: &redtape_store::db::SqlxError) -> bool {
    redtape_store::db::is_unavailable(e)
}

/// Every aggregate's command errors, mapped once; each rule error type maps itself
/// (`From<SubmissionError>`, `From<ProcedureError>`, `From<ReleaseError>`).
impl<E> From<CommandError<E>> for ApiError
where
    E: std::error::Error,
    ApiError: From<E>,
{
    fn from(e: CommandError<E>) -> Self {
        match e {
            CommandError::Rule(rule) => rule.into(),
            CommandError::Conflict => ApiError::concurrent_change(),
            CommandError::KeyTaken => ApiError::KeyTaken,
            CommandError::CapReached { cap } => crate::limits::cap_reached(cap, chrono::Utc::now()),
            CommandError::Unavailable(cause) => ApiError::Unavailable(cause),
            CommandError::Internal(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<SubmissionError> for ApiError {
    fn from(e: SubmissionError) -> Self {
        match e {
            SubmissionError::Invalid(v) => v.into(),
            // Another filer's submission is reported exactly like a missing one, so ids
            // cannot be probed.
            SubmissionError::NotFound | SubmissionError::NotFiler => {
                ApiError::NotFound("no such submission".into())
            }
            SubmissionError::AlreadyExists => ApiError::Conflict {
                kind: Conflict::AlreadyExists,
                detail: e.to_string(),
            },
            SubmissionError::Closed { .. } => ApiError::Conflict {
                kind: Conflict::SubmissionClosed,
                detail: e.to_string(),
            },
            SubmissionError::WindowClosed { .. } => ApiError::Conflict {
                kind: Conflict::AmendmentWindowClosed,
                detail: e.to_string(),
            },
            SubmissionError::AlreadyInStatus(_) => ApiError::Conflict {
                kind: Conflict::AlreadyModerated,
                detail: e.to_string(),
            },
        }
    }
}

/// The problems any authenticated POST with a JSON body may answer with: one list shared by
/// every write endpoint's OpenAPI description, so they cannot disagree.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Documentation only: never constructed.
pub enum WriteProblems {
    /// The body is not JSON (syntax).
    #[response(status = 400, content_type = "application/problem+json")]
    MalformedJson(Problem),
    /// No token, another scheme, or an unknown or revoked token.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// The token's role may not use this endpoint.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// A request with the same Idempotency-Key is still running, or a concurrent change to the
    /// same submission won (both: retry after `Retry-After`), or the submission is withdrawn or
    /// past its amendment window.
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(Problem),
    /// The body is over 64 KiB.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// The body is not `application/json`.
    #[response(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Problem),
    /// A field breaks a rule (see `errors`: a JSON pointer and a rule code each), or the
    /// Idempotency-Key was used before with another body.
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
    /// The token's rate limit, or the filer's daily cap on new submissions, is used up: retry
    /// after `Retry-After` seconds (`RateLimit` tells the budget left).
    #[response(status = 429, content_type = "application/problem+json")]
    TooMany(Problem),
    /// The database does not answer; retry after `Retry-After`.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

/// The problems an authenticated read of one submission may answer with.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Documentation only: never constructed.
pub enum ReadProblems {
    /// No token, another scheme, or an unknown or revoked token.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// The token's role may not use this endpoint.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// No such submission, or one this token may not see: another business's, or outside an
    /// officer's provinces (indistinguishable from a missing one).
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// The id is not a UUID.
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
    /// The token's rate limit is used up: retry after `Retry-After` seconds.
    #[response(status = 429, content_type = "application/problem+json")]
    TooMany(Problem),
    /// The database does not answer; retry after `Retry-After`.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

#[cfg(test)]
mod tests;
