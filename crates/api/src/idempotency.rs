//! The `Idempotency-Key` request header on every POST (IETF draft semantics; see
//! redtape_store::idempotency for the storage side).

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use redtape_store::idempotency::{self, Answer, Lookup, StoredResponse};
use redtape_store::CommandError;
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

/// A request's key, looked up and not answered yet: what a handler needs to commit the
/// answer together with the request's events.
#[derive(Debug, Clone)]
pub struct Key {
    principal: String,
    key: String,
    fingerprint: String,
    resource_id: String,
}

impl Key {
    /// The answer to store for `outcome`.
    pub fn answer(&self, outcome: &Outcome) -> Answer {
        Answer {
            principal: self.principal.clone(),
            key: self.key.clone(),
            request_hash: self.fingerprint.clone(),
            resource_id: self.resource_id.clone(),
            created_at: redtape_store::timestamp(chrono::Utc::now()),
            response: StoredResponse {
                status: outcome.status.as_u16(),
                location: outcome.location.clone(),
                body: outcome.body.clone(),
            },
        }
    }
}

impl Key {
    /// What the store holds for this key now.
    async fn lookup(&self, state: &AppState) -> Result<Lookup, ApiError> {
        Ok(idempotency::lookup(
            &state.db,
            &self.principal,
            &self.key,
            &self.fingerprint,
            &self.resource_id,
        )
        .await?)
    }
}

/// What a handler did: its outcome, and whether the answer was committed with its events
/// (otherwise [`run`] stores it afterwards).
pub struct Handled {
    pub outcome: Outcome,
    pub answered: bool,
}

/// What the request does, for [`run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creates {
    /// It creates a resource under a fresh id and its answer is committed with it: the key
    /// needs no lookup first, since the answer's insert tells whether the key was free and a
    /// retry's fresh id then commits nothing (one statement saved per filing).
    Fresh,
    /// Anything else: a retry could be decided differently (an amendment already applied),
    /// so the stored answer is looked up first.
    Other,
}

/// Runs `handler` at most once per (caller, key): replays the stored answer for a retry with
/// the same body, refuses the key with another body (422). `handler` receives the id of the
/// resource it may create (fixed by an abandoned claim of an earlier version, if any) and the
/// key, whose answer it should commit with its events (`Key::answer`). If another request
/// with the same key is answered first, this one commits nothing and replays that answer.
pub async fn run<F, Fut>(
    state: &AppState,
    req: &HttpRequest,
    caller: &str,
    body: &[u8],
    new_resource_id: String,
    creates: Creates,
    handler: F,
) -> Result<HttpResponse, ApiError>
where
    F: FnOnce(String, Option<Key>) -> Fut,
    Fut: std::future::Future<Output = Result<Handled, ApiError>>,
{
    let Some(key) = key_of(req)? else {
        return Ok(handler(new_resource_id, None)
            .await?
            .outcome
            .into_response(false));
    };
    let fingerprint = {
        let mut h = Sha256::new();
        h.update(req.method().as_str().as_bytes());
        h.update(b" ");
        h.update(req.path().as_bytes());
        // The query too (an intermediary's `on_behalf_of` names whom it files for); only when
        // there is one, so the fingerprints stored before this stay valid.
        if !req.query_string().is_empty() {
            h.update(b"?");
            h.update(req.query_string().as_bytes());
        }
        h.update(b"\n");
        h.update(body);
        hex::encode(h.finalize())
    };
    let optimistic = creates == Creates::Fresh && !state.legacy_claims;
    let resource_id = if optimistic {
        new_resource_id
    } else {
        match idempotency::lookup(&state.db, caller, &key, &fingerprint, &new_resource_id).await? {
            Lookup::Proceed { resource_id } => resource_id,
            other => return settled(other),
        }
    };
    let key = Key {
        principal: caller.to_string(),
        key,
        fingerprint,
        resource_id: resource_id.clone(),
    };
    let handled = match handler(resource_id, Some(key.clone())).await {
        Ok(handled) => handled,
        Err(ApiError::KeyTaken) => return answered_meanwhile(state, &key).await,
        // Final answers (the same request would fail the same way) are stored; transient ones
        // (conflicts, a used-up cap, unavailability, bugs) are not, so a retry can run.
        Err(e) => {
            use actix_web::ResponseError;
            if optimistic {
                // Not looked up yet: a retry of an answered request (refused meanwhile by
                // the daily cap, say) is still answered with its first answer.
                let looked_up = key.lookup(state).await?;
                if matches!(looked_up, Lookup::Replay(_) | Lookup::Mismatch) {
                    return settled(looked_up);
                }
            }
            let status = e.status_code();
            if status.is_server_error()
                || status == StatusCode::CONFLICT
                || status == StatusCode::TOO_MANY_REQUESTS
            {
                return Err(e);
            }
            Handled {
                outcome: Outcome::from_error(&e),
                answered: false,
            }
        }
    };
    if !handled.answered {
        match state.submissions.answer(key.answer(&handled.outcome)).await {
            Ok(()) => {}
            Err(CommandError::KeyTaken) => return answered_meanwhile(state, &key).await,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(handled.outcome.into_response(false))
}

/// The answer to a request whose key was answered by another request while it ran.
async fn answered_meanwhile(state: &AppState, key: &Key) -> Result<HttpResponse, ApiError> {
    match key.lookup(state).await? {
        Lookup::Proceed { .. } => settled(Lookup::InProgress),
        other => settled(other),
    }
}

/// The answer to a key that is not free.
fn settled(looked_up: Lookup) -> Result<HttpResponse, ApiError> {
    match looked_up {
        Lookup::Replay(stored) => {
            let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
            Ok(Outcome {
                status,
                location: stored.location,
                body: stored.body,
            }
            .into_response(true))
        }
        Lookup::Mismatch => Err(ApiError::IdempotencyMismatch),
        Lookup::InProgress | Lookup::Proceed { .. } => Err(ApiError::KeyTaken),
    }
}
