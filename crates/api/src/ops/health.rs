//! Liveness and readiness probes for orchestrators.

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::problem::{ApiError, Problem};
use crate::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
    /// Which event store is in use: postgres or sqlite.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "sqlite")]
    pub store: Option<String>,
    /// How far the read models are behind the event log (readiness only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub projection: Option<ProjectionLag>,
}

/// The projector's distance from the head of the event log. Open data, indices and the
/// moderation queue are read models: they show the log as of `lag_events` events ago.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectionLag {
    /// Committed events the read models do not include yet.
    #[schema(example = 0)]
    pub lag_events: i64,
    /// How long the oldest of those events has waited, in seconds; 0 when caught up.
    #[schema(example = 0.0)]
    pub lag_seconds: f64,
    /// Whether this replica runs the projector now: always with `--projector on`, never with
    /// `off`, and with `auto` (the default) on one PostgreSQL replica at a time.
    #[schema(example = true)]
    pub projecting: bool,
}

/// How long readiness waits for the store.
const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

/// Liveness: the process answers.
#[utoipa::path(tag = "operations", responses((status = 200, description = "Alive", body = Health)))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok".into(),
        store: None,
        projection: None,
    })
}

/// Readiness: the event store answers; also reports the projector's lag.
///
/// Ready means the store answers. The lag is reported, not judged: a backlog after a bulk
/// import is normal and the service answers meanwhile. Monitoring should alert when
/// `projection.lag_seconds` stays above a few seconds.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "The store does not answer", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    // An orchestrator's probe gives up after a second or so: answer within one, whatever the
    // database does (a pool still trying to connect would otherwise hold the probe).
    let lag = actix_web::rt::time::timeout(READY_WITHIN, redtape_store::projector::lag(&state.db))
        .await
        .map_err(|_| ApiError::unavailable("the store did not answer within 1 s"))?
        .map_err(ApiError::unavailable)?;
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(Health {
            status: "ready".into(),
            store: Some(state.db.backend().as_str().into()),
            projection: Some(ProjectionLag {
                lag_events: lag.events,
                lag_seconds: lag.seconds,
                projecting: state.projector.projects(),
            }),
        }))
}
