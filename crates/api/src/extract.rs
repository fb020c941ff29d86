//! Request plumbing shared by the handlers: JSON bodies parsed with field pointers, bearer
//! authentication, request ids.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use futures::future::LocalBoxFuture;
use redtape_domain::submission::FilerId;
use redtape_domain::Role;
use redtape_store::tokens::Principal;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::problem::{ApiError, ProblemField};
use crate::AppState;

/// Largest accepted request body (the 64 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Parses a JSON body. Syntax errors are 400; shape errors (wrong type, unknown or missing
/// field) are 422 with the JSON pointer of the field, so a form can highlight it.
pub fn parse_json<T: DeserializeOwned>(req: &HttpRequest, body: &[u8]) -> Result<T, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence != "application/json" && !essence.ends_with("+json") {
        return Err(ApiError::UnsupportedMediaType);
    }
    // Syntax first, so "not JSON" and "JSON of the wrong shape" get different answers.
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    redtape_domain::submission::report::from_json(value, "").map_err(ApiError::from)
}

/// The id of this request: the client's `X-Request-Id` if it is sane, else a new UUIDv7.
/// Logged, returned in the response header, and stored in event metadata.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

pub const REQUEST_ID: &str = "x-request-id";

impl RequestId {
    pub fn from_headers(req: &actix_web::dev::ServiceRequest) -> RequestId {
        let given = req
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|v| {
                !v.is_empty()
                    && v.len() <= 64
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        RequestId(given.map_or_else(|| Uuid::now_v7().to_string(), str::to_string))
    }

    pub fn of(req: &HttpRequest) -> String {
        req.extensions()
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default()
    }
}

/// A caller holding a valid business token: the filer it files as.
#[derive(Debug, Clone)]
pub struct Business {
    pub filer: FilerId,
    pub principal: Principal,
}

fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or(ApiError::Unauthorized("send Authorization: Bearer <token>"))?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthorized("the Authorization header is not valid text"))?;
    let mut parts = value.splitn(2, ' ');
    let scheme = parts.next().unwrap_or("");
    let token = parts.next().unwrap_or("").trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::Unauthorized(
            "use the Bearer scheme: Authorization: Bearer <token>",
        ));
    }
    Ok(token.to_string())
}

impl FromRequest for Business {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = bearer(req);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let token = token?;
            let state =
                state.ok_or_else(|| ApiError::Internal("application state missing".into()))?;
            let principal = state
                .tokens
                .authenticate(&state.db, &token)
                .await?
                .ok_or(ApiError::Unauthorized("the token is unknown or revoked"))?;
            match (principal.role, principal.filer) {
                (Role::Business, Some(filer)) => Ok(Business { filer, principal }),
                _ => Err(ApiError::Forbidden(
                    "this endpoint is for business (filer) tokens",
                )),
            }
        })
    }
}

/// Parses a path id as a UUID, naming the parameter when it is not one.
pub fn path_uuid(name: &str, text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| {
        ApiError::Invalid(vec![ProblemField {
            pointer: None,
            parameter: Some(name.to_string()),
            rule: "format".into(),
            detail: format!("must be a UUID, got {text:?}"),
        }])
    })
}
