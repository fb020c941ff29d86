//! Conditional requests for open data (docs/open-data.md): a public GET gets an `ETag`
//! derived from the version of the live data (the projector's checkpoint), the URL and the
//! representation asked for, `Cache-Control`, and the licence's `Link: <...>; rel="license"`
//! (every dataset is published under one licence, CC BY 4.0 unless configured). A matching
//! `If-None-Match` is answered `304` before any query runs. The data only changes when the
//! projector commits, so the ETag changes exactly when an answer may.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use sha2::{Digest, Sha256};

use crate::problem::ApiError;
use crate::AppState;

/// How long a read of the data version is reused: ETags may lag a commit by this much, far
/// less than the one-minute cache lifetime of live data.
const VERSION_TTL: Duration = Duration::from_secs(1);

/// How long clients and caches may reuse a live answer without asking again.
pub const LIVE_MAX_AGE: &str = "public, max-age=60";

/// The version of the live data: the projector's checkpoint, read at most once a second.
#[derive(Default)]
pub struct DataVersion {
    cached: Mutex<Option<((i64, i64), Instant)>>,
}

impl DataVersion {
    pub async fn get(&self, state: &AppState) -> Result<(i64, i64), ApiError> {
        if let Ok(cached) = self.cached.lock() {
            if let Some((version, at)) = *cached {
                if at.elapsed() < VERSION_TTL {
                    return Ok(version);
                }
            }
        }
        let version = redtape_store::projector::checkpoint(&state.db).await?;
        if let Ok(mut cached) = self.cached.lock() {
            *cached = Some((version, Instant::now()));
        }
        Ok(version)
    }
}

/// Public GET endpoints whose answers depend only on the URL, the representation asked for
/// and the live data (release downloads set their own, content-derived ETag).
pub(crate) fn is_open_data(path: &str) -> bool {
    const PREFIXES: [&str; 7] = [
        "/v1/indices",
        "/v1/responses",
        "/v1/procedures",
        "/v1/provinces",
        "/v1/releases",
        "/v1/dictionary",
        "/v1/catalog",
    ];
    PREFIXES.iter().any(|p| path.starts_with(p)) || path.starts_with("/v1/open/")
}

/// A weak ETag for this request on this version of the data.
fn etag(state: &AppState, version: (i64, i64), req: &ServiceRequest) -> String {
    let mut h = Sha256::new();
    h.update(format!("{}.{}\n", version.0, version.1));
    h.update(req.uri().to_string());
    h.update("\n");
    for name in [header::ACCEPT, header::ACCEPT_LANGUAGE] {
        if let Some(v) = req.headers().get(name) {
            h.update(v.as_bytes());
        }
        h.update("\n");
    }
    h.update(state.licence.url.as_bytes());
    h.update(redtape_index::METHODOLOGY_VERSION);
    h.update(state.projector.methodology().k.to_string());
    format!("W/\"{}\"", &hex::encode(h.finalize())[..32])
}

/// Whether an `If-None-Match` value names `etag` (weak comparison, RFC 9110 §13.1.2). `*` is
/// not a match here: it matches only a representation that exists, which only the handler
/// knows (see [`any_representation`]).
pub fn matches(if_none_match: &str, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_string();
    if_none_match.split(',').any(|t| bare(t) == bare(etag))
}

/// Whether an `If-None-Match` value is `*` (any current representation).
pub fn any_representation(if_none_match: &str) -> bool {
    if_none_match.split(',').any(|t| t.trim() == "*")
}

/// Middleware: ETag, Cache-Control, licence link and 304 for open data.
pub async fn conditional(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let Some(state) = state.filter(|_| req.method() == Method::GET && is_open_data(req.path()))
    else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let version = match state.data_version.get(&state).await {
        Ok(v) => v,
        // Without a version there is no ETag; the handler reports the database itself.
        Err(_) => return Ok(next.call(req).await?.map_into_boxed_body()),
    };
    let tag = etag(&state, version, &req);
    let if_none_match = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // A tag we handed out was on a 200 for this URL and data version, so the representation
    // exists and the handler need not run; `*` must let the handler validate and resolve.
    let fresh = matches(if_none_match, &tag);
    let star = !fresh && any_representation(if_none_match);
    let headers = [
        (header::ETAG, tag),
        (header::CACHE_CONTROL, LIVE_MAX_AGE.to_string()),
        (header::LINK, state.licence.link()),
    ];
    if fresh {
        return Ok(req.into_response(not_modified(headers, None)));
    }
    let mut res = next.call(req).await?.map_into_boxed_body();
    if star && res.status() == StatusCode::OK {
        let own = res.headers().get(header::ETAG).cloned();
        return Ok(res.into_response(not_modified(headers, own)));
    }
    if res.status() == StatusCode::OK && !res.headers().contains_key(header::ETAG) {
        for (name, value) in headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                match name {
                    // Keep a `rel="next"` link the handler set.
                    header::LINK => {
                        res.headers_mut().append(name, v);
                    }
                    _ => {
                        res.headers_mut().insert(name, v);
                    }
                }
            }
        }
    }
    Ok(res)
}

/// A 304 with the representation's validators and cache headers; `own_etag` (a handler's own,
/// content-derived tag) replaces the data-version tag when there is one.
fn not_modified(
    headers: [(header::HeaderName, String); 3],
    own_etag: Option<HeaderValue>,
) -> HttpResponse {
    let mut response = HttpResponse::NotModified();
    for (name, value) in headers {
        response.insert_header((name, value));
    }
    if let Some(own) = own_etag {
        response.insert_header((header::ETAG, own));
    }
    response.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_match_weakly_and_by_list() {
        assert!(matches("W/\"abc\"", "W/\"abc\""));
        assert!(matches("\"abc\"", "W/\"abc\""));
        assert!(matches("\"x\", W/\"abc\"", "W/\"abc\""));
        assert!(!matches("*", "W/\"abc\""), "* is left to the handler");
        assert!(any_representation("\"x\", *"));
        assert!(!any_representation("W/\"abc\""));
        assert!(!matches("W/\"abd\"", "W/\"abc\""));
    }
}
