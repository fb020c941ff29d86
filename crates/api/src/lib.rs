//! # redtape-api
//!
//! The HTTP surface of redtape (actix-web 4), and nothing else: handlers are thin (parse,
//! command, answer), rules live in `redtape-domain`, statistics in `redtape-index`, SQL in
//! `redtape-store`.
//!
//! Handlers are grouped by who calls them, so an endpoint's code is found from its URL and
//! its audience (each folder's module doc lists its URLs):
//!
//! - [`business`]: businesses file, read, amend and withdraw their submissions.
//! - [`officer`]: reform offices moderate and answer, keep the procedure catalogue, publish
//!   releases, and read the dashboard.
//! - [`open`]: open data for anyone: indices, response statistics, releases, reference data,
//!   microdata, the dictionary and the catalogue.
//! - [`admin`]: administrators onboard filers and staff (filers, tokens).
//! - [`ops`]: probes for operators.
//!
//! Beside them, the pieces every handler shares:
//!
//! - [`openapi`]: the one list of endpoints, registered on the app and documented in the
//!   OpenAPI document served at `/openapi.json` (Swagger UI, offline, at `/docs/`).
//! - [`figures`]: index cells, composites and trends as the API, dashboard and releases
//!   publish them.
//! - [`accounts`]: filers and tokens as the API shows them, and their rule errors.
//! - [`submission`]: the submission view, visibility and changes, for business and officer
//!   handlers.
//! - [`datasets`]: every published dataset and its columns (the dictionary's, the CSV's).
//! - [`params`]: typed query parameters, parsed once, refusals naming parameter and rule.
//! - [`page`]: keyset pages of any list in JSON, CSV or NDJSON.
//! - [`conditional`]: ETag, 304 and the licence link on open data.
//! - [`licence`]: the licence of the published data.
//! - [`problem`]: the single mapping of every error to RFC 9457 problem+json.
//! - [`extract`]: JSON bodies with field pointers, bearer auth, request ids, event metadata.
//! - [`body`]: request bodies read whole within a deadline (408) and a size bound (413).
//! - [`strict_json`]: duplicate keys and control characters refused in every JSON body.
//! - [`idempotency`]: `Idempotency-Key` on every POST.
//! - [`limits`]: per-token rate limit (`RateLimit` headers, 429) and per-filer daily cap.
//! - [`routes`]: 405 with `Allow` and `HEAD` on every `GET`, from the OpenAPI document.
//! - [`telemetry`]: each request's contribution to the Prometheus series (`/metrics`).

// Tests may unwrap: a panic is how a test fails.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod accounts;
pub mod admin;
pub mod body;
pub mod business;
pub mod conditional;
pub mod datasets;
pub mod extract;
pub mod figures;
pub mod idempotency;
pub mod licence;
pub mod limits;
pub mod officer;
pub mod open;
pub mod openapi;
pub mod ops;
pub mod page;
pub mod params;
pub mod problem;
pub mod routes;
pub mod strict_json;
pub mod submission;
pub mod telemetry;

use std::sync::Arc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpMessage, HttpResponse, ResponseError};
use redtape_store::{Db, Submissions};
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::extract::{RequestId, MAX_BODY_BYTES, REQUEST_ID};
use crate::problem::{ApiError, PROBLEM_JSON};

/// What every handler may use.
pub struct AppState {
    pub db: Db,
    pub submissions: Submissions,
    /// The procedure catalogue in force (projected from Procedure events).
    pub catalogue: Arc<redtape_store::Catalogue>,
    pub tokens: redtape_store::tokens::TokenCache,
    /// The command side of filers and tokens (onboarding).
    pub accounts: redtape_store::accounts::Accounts,
    /// Filers as filings read them (profile, intermediary), briefly cached.
    pub filers: redtape_store::accounts::read::FilerCache,
    /// The command side of the procedure catalogue.
    pub procedures: redtape_store::Procedures,
    /// For requests that must see their own effect in the read models (procedure changes,
    /// releases); the live projector runs beside it, and the two serialize on the checkpoint.
    pub projector: redtape_store::Projector,
    /// Annual releases (command side and reader).
    pub releases: redtape_store::Releases,
    /// Per-token rate limit and per-filer daily cap.
    pub limits: limits::Limits,
    /// The licence every dataset is published under.
    pub licence: licence::Licence,
    /// The version of the live data, for ETags.
    pub data_version: conditional::DataVersion,
    /// How long a client may take to send a request body (408 after).
    pub body_deadline: std::time::Duration,
    /// The store held `Idempotency-Key` claims of an earlier version at start
    /// (`redtape_store::idempotency::has_claims`): filings then look their key up first.
    pub legacy_claims: bool,
}

/// Builds the application: routes, limits, middleware. Used by the server and by the tests,
/// so the tests exercise exactly what runs in production.
pub fn app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(state)
        .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
        .app_data(
            web::QueryConfig::default()
                .error_handler(|e, _| ApiError::parameter("query", "format", e.to_string()).into()),
        )
        .app_data(
            web::PathConfig::default()
                .error_handler(|e, _| ApiError::parameter("path", "format", e.to_string()).into()),
        )
        .wrap(from_fn(problem_safety_net))
        .wrap(from_fn(conditional::conditional))
        .wrap(from_fn(body::read_within_deadline))
        .wrap(from_fn(limits::rate_limit))
        .wrap(from_fn(routes::head_as_get))
        .wrap(from_fn(request_context))
        .configure(openapi::services)
        .service(officer::dashboard::dashboard)
        .service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", openapi::ApiDoc::openapi()))
        .route(
            "/docs",
            web::get().to(|| async {
                HttpResponse::PermanentRedirect()
                    .insert_header((header::LOCATION, "/docs/"))
                    .finish()
            }),
        )
        .default_service(web::to(routes::not_routed))
}

/// Gives every request an id (logged, stored in event metadata, echoed in `X-Request-Id`) and
/// logs one line per request.
async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = RequestId::from_headers(&req);
    let method = req.method().clone();
    let path = req.path().to_string();
    req.extensions_mut().insert(id.clone());
    let started = std::time::Instant::now();
    let mut res = next.call(req).await?;
    telemetry::record(&res, &method, started.elapsed());
    if let Ok(value) = HeaderValue::from_str(&id.0) {
        res.headers_mut()
            .insert(header::HeaderName::from_static(REQUEST_ID), value);
    }
    tracing::info!(
        request_id = %id.0,
        method = %method,
        path = %path,
        status = res.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    Ok(res)
}

/// Errors raised by actix itself (an oversize body, an unknown method on a known path) are
/// plain text; this turns any 4xx/5xx that is not already problem+json into one, so clients
/// see a single error format everywhere.
async fn problem_safety_net(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let res = next.call(req).await?;
    let status = res.status();
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(PROBLEM_JSON));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return Ok(res.map_into_boxed_body());
    }
    let (req, res) = res.into_parts();
    let error = match status.as_u16() {
        413 => ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        },
        404 => ApiError::NotFound("no such endpoint; see /openapi.json".into()),
        415 => ApiError::UnsupportedMediaType,
        401 => ApiError::Unauthorized("a valid bearer token is required"),
        s if s >= 500 => ApiError::internal(format!("framework error with status {s}")),
        _ => {
            let text = res
                .into_body()
                .try_into_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let mut problem = ApiError::parameter("request", "invalid", text).problem();
            problem.status = status.as_u16();
            let response = HttpResponse::build(status)
                .content_type(PROBLEM_JSON)
                .json(problem);
            return Ok(ServiceResponse::new(req, response));
        }
    };
    let mut response = error.error_response();
    *response.status_mut() = status;
    Ok(ServiceResponse::new(req, response))
}
