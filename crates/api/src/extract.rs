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
use crate::strict_json::BodyRule;
use crate::AppState;

/// Largest accepted request body (the 64 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Parses a JSON body. Syntax errors are 400; shape errors (wrong type, unknown or missing
/// field), repeated keys and control characters (see [`crate::strict_json`]) are 422 with the
/// JSON pointer of the field, so a form can highlight it.
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
    let value = crate::strict_json::parse(body).map_err(|rule| match rule {
        BodyRule::Syntax(message) => ApiError::MalformedJson(message),
        BodyRule::DuplicateKey { pointer } => ApiError::Invalid(vec![ProblemField {
            detail: format!("the key {pointer} appears twice; send it once"),
            pointer: Some(pointer),
            parameter: None,
            rule: "duplicate_key".into(),
        }]),
        BodyRule::ControlCharacters { pointers } => ApiError::Invalid(
            pointers
                .into_iter()
                .map(|pointer| ProblemField {
                    pointer: Some(pointer),
                    parameter: None,
                    rule: "control_characters".into(),
                    detail: redtape_domain::values::CONTROL_CHARACTERS.into(),
                })
                .collect(),
        ),
    })?;
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

/// Any caller holding a valid token, whatever its role.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

/// A caller holding a valid business token: the filer it files as.
#[derive(Debug, Clone)]
pub struct Business {
    pub filer: FilerId,
    pub principal: Principal,
}

/// A caller who files: a business, for itself, or an intermediary, for the member businesses
/// it registered. `filer` is the token's own filer.
#[derive(Debug, Clone)]
pub struct Filer {
    pub filer: FilerId,
    pub intermediary: bool,
    pub principal: Principal,
}

/// A caller holding an intermediary token.
#[derive(Debug, Clone)]
pub struct Intermediary {
    pub filer: FilerId,
    pub principal: Principal,
}

/// A caller who may moderate and respond: an officer (perhaps limited to some provinces) or
/// an admin (everywhere).
#[derive(Debug, Clone)]
pub struct Officer(pub Principal);

/// A caller holding an admin token.
#[derive(Debug, Clone)]
pub struct Admin(pub Principal);

impl Caller {
    /// How the caller is named in event metadata and idempotency records: the filer for a
    /// business (its submissions are its own whichever token it uses), else role and token.
    pub fn actor(&self) -> String {
        match (self.0.role, self.0.filer) {
            (Role::Business, Some(filer)) => format!("filer:{filer}"),
            (role, _) => format!("{}:{}", role.as_str(), self.0.token_id),
        }
    }
}

impl Officer {
    pub fn scope(&self) -> &redtape_domain::Scope {
        &self.0.scope
    }
}

/// The token of an `Authorization: Bearer <token>` header, however the scheme is spelt: the
/// one reading of the header that authentication and the rate limit share, so that `bearer`,
/// `BEARER` or extra spaces name the same token (and the same quota).
pub fn bearer(headers: &header::HeaderMap) -> Result<String, ApiError> {
    let value = headers
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

/// Resolves the request's bearer token: 401 for none, another scheme, or an unknown or
/// revoked token.
fn authenticate(req: &HttpRequest) -> LocalBoxFuture<'static, Result<Principal, ApiError>> {
    let token = bearer(req.headers());
    let state = req.app_data::<web::Data<AppState>>().cloned();
    Box::pin(async move {
        let token = token?;
        let state = state.ok_or_else(|| ApiError::internal("application state missing"))?;
        state
            .tokens
            .authenticate(&state.db, &token)
            .await?
            .ok_or(ApiError::Unauthorized("the token is unknown or revoked"))
    })
}

/// An extractor that authenticates, then admits some roles (403 for the others).
macro_rules! role_extractor {
    ($name:ident, |$p:ident| $admit:expr, $refusal:literal) => {
        impl FromRequest for $name {
            type Error = ApiError;
            type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

            fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
                let principal = authenticate(req);
                Box::pin(async move {
                    let $p = principal.await?;
                    let admitted: Option<$name> = $admit;
                    admitted.ok_or(ApiError::Forbidden($refusal))
                })
            }
        }
    };
}

role_extractor!(Caller, |p| Some(Caller(p)), "unreachable");
role_extractor!(
    Business,
    |p| match (p.role, p.filer) {
        (Role::Business, Some(filer)) => Some(Business {
            filer,
            principal: p
        }),
        _ => None,
    },
    "this endpoint is for business (filer) tokens"
);
role_extractor!(
    Filer,
    |p| match (p.role, p.filer) {
        (Role::Business | Role::Intermediary, Some(filer)) => Some(Filer {
            filer,
            intermediary: p.role == Role::Intermediary,
            principal: p
        }),
        _ => None,
    },
    "this endpoint is for business or intermediary tokens"
);
role_extractor!(
    Intermediary,
    |p| match (p.role, p.filer) {
        (Role::Intermediary, Some(filer)) => Some(Intermediary {
            filer,
            principal: p
        }),
        _ => None,
    },
    "this endpoint is for intermediary tokens"
);
role_extractor!(
    Officer,
    |p| matches!(p.role, Role::Officer | Role::Admin).then_some(Officer(p)),
    "this endpoint is for officer or admin tokens"
);
role_extractor!(
    Admin,
    |p| (p.role == Role::Admin).then_some(Admin(p)),
    "this endpoint is for admin tokens"
);

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
