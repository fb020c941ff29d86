//! The `Idempotency-Key` request header on every POST (IETF draft semantics; see
//! redtape_store::idempotency for the storage side).

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use redtape_store::idempotency::{self, Claim, StoredResponse};
use sha2::{Digest, Sha256};

use crate::problem::{ApiError, PROBLEM_JSON};
use crate::AppState;

pub const HEADER: &str = "idempotency-key";

/// The `Idempotency-Key` request header, as documented on every POST.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // Documentation only: the handlers read the header through `run`.
pub struct IdempotencyKey {
    /// Makes retries safe: a retry with the same key and body gets the first response
    /// (`Idempotent-Replayed: true`); the same key with another body gets a 422. 1 to 255
    /// visible ASCII characters; a UUID is a good choice.
    #[param(rename = "Idempotency-Key")]
    idempotency_key: Option<String>,
}

/// What a handler produced, in a form that can be stored and replayed byte for byte.
pub struct Outcome {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: String,
}

impl Outcome {
    pub fn into_response(self, replayed: bool) -> HttpResponse {
        let mut r = HttpResponse::build(self.status);
        r.content_type(if self.status.is_success() {
            "application/json"
        } else {
            PROBLEM_JSON
        });
        if let Some(location) = self.location {
            r.insert_header((header::LOCATION, location));
        }
        if replayed {
            r.insert_header(("idempotent-replayed", "true"));
        }
        r.body(self.body)
    }

    fn from_error(e: &ApiError) -> Outcome {
        use actix_web::ResponseError;
        Outcome {
            status: e.status_code(),
            location: None,
            body: serde_json::to_string(&e.problem()).unwrap_or_default(),
        }
    }
}

/// The key, if the request has one; a present but unusable key is a 400-class problem.
fn key_of(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .unwrap_or("")
        .trim()
        .trim_matches('"')
        .to_string();
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(ApiError::parameter(
            "Idempotency-Key",
            "format",
            "must be 1 to 255 visible ASCII characters (a UUID is a good choice)",
        ));
    }
    Ok(Some(key))
}

/// Runs `handler` at most once per (caller, key): replays the stored outcome for a retry with
/// the same body, refuses the key with another body (422) or while the first request is still
/// running (409). `handler` receives the id of the resource it may create, which is fixed at
/// claim time so a retry after a crash creates nothing twice.
pub async fn run<F, Fut>(
    state: &AppState,
    req: &HttpRequest,
    caller: &str,
    body: &[u8],
    new_resource_id: String,
    handler: F,
) -> Result<HttpResponse, ApiError>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<Outcome, ApiError>>,
{
    let Some(key) = key_of(req)? else {
        return Ok(handler(new_resource_id).await?.into_response(false));
    };
    let fingerprint = {
        let mut h = Sha256::new();
        h.update(req.method().as_str().as_bytes());
        h.update(b" ");
        h.update(req.path().as_bytes());
        h.update(b"\n");
        h.update(body);
        hex::encode(h.finalize())
    };
    let claim = idempotency::claim(&state.db, caller, &key, &fingerprint, &new_resource_id).await?;
    let resource_id =
        match claim {
            Claim::Proceed { resource_id } => resource_id,
            Claim::Replay(stored) => {
                let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
                return Ok(Outcome {
                    status,
                    location: stored.location,
                    body: stored.body,
                }
                .into_response(true));
            }
            Claim::InProgress => return Err(ApiError::Conflict {
                slug: "idempotency-key-in-use",
                title: "Request already in progress",
                detail:
                    "a request with this Idempotency-Key is still being processed; retry shortly"
                        .into(),
                retry_after: Some(1),
            }),
            Claim::Mismatch => return Err(ApiError::IdempotencyMismatch),
        };
    let outcome = match handler(resource_id).await {
        Ok(outcome) => outcome,
        // Final answers (the same request would fail the same way) are stored; transient ones
        // (conflicts, a used-up cap, unavailability, bugs) release the key so a retry can run.
        Err(e) => {
            use actix_web::ResponseError;
            let status = e.status_code();
            if status.is_server_error()
                || status == StatusCode::CONFLICT
                || status == StatusCode::TOO_MANY_REQUESTS
            {
                idempotency::release(&state.db, caller, &key).await?;
                return Err(e);
            }
            Outcome::from_error(&e)
        }
    };
    idempotency::complete(
        &state.db,
        caller,
        &key,
        &StoredResponse {
            status: outcome.status.as_u16(),
            location: outcome.location.clone(),
            body: outcome.body.clone(),
        },
    )
    .await?;
    Ok(outcome.into_response(false))
}
