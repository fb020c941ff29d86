//! Publishing a year (methodology §6): an admin freezes the year's cells as a numbered
//! revision, which [`crate::open::releases`] serves to anyone.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{post, web, HttpRequest, HttpResponse};
use chrono::{Datelike, Utc};
use redtape_domain::release::{sha256_hex, ReleaseCommand, ReleaseError};
use redtape_domain::submission::aggregate::vietnam_date;
use redtape_domain::Geography;

use crate::extract::{Admin, Caller};
use crate::figures::{csv_of, index_cells, index_page};
use crate::idempotency::{self, Creates, Handled, IdempotencyKey, Outcome};
use crate::open::releases::{ReleaseDocument, ReleaseView};
use crate::params;
use crate::problem::{ApiError, Conflict, WriteProblems};
use crate::submission::{metadata, now};
use crate::AppState;
use redtape_store::cells::Areas;

/// How long a publication waits for the projector to include every committed event.
const SETTLE: Duration = Duration::from_secs(30);

impl From<ReleaseError> for ApiError {
    fn from(e: ReleaseError) -> Self {
        match e {
            ReleaseError::Unchanged(_) => ApiError::Conflict {
                kind: Conflict::ReleaseUnchanged,
                detail: e.to_string(),
            },
            // Another publication of the year took the revision number first.
            ReleaseError::WrongRevision { .. } => ApiError::concurrent_change(),
            ReleaseError::Empty(_) => ApiError::parameter("year", "no_data", e.to_string()),
            // The service builds the CSV itself: one it cannot read is a bug.
            ReleaseError::BadCsv(_) => ApiError::internal(e),
        }
    }
}

/// A year that has ended in Vietnam: only whole years are released.
fn ended_year(text: &str) -> Result<i32, ApiError> {
    let year = params::value("year", text, params::year)?;
    let current = vietnam_date(Utc::now()).year();
    if year >= current {
        return Err(ApiError::parameter(
            "year",
            "year_not_ended",
            format!("{year} has not ended in Vietnam; releases cover whole years"),
        ));
    }
    Ok(year)
}

/// Publish a year.
///
/// Freezes the year's cells (both maps, with CBI and rank) as the next revision: a CSV with
/// its SHA-256 and a JSON rendering, downloadable byte for byte forever. A later publication
/// makes revision n+1 with a changelog; publishing unchanged figures is refused (409). Only
/// years that have ended can be published. Admins only.
#[utoipa::path(
    tag = "releases",
    params(("year" = i32, Path, description = "The year", example = 2025), IdempotencyKey),
    responses(
        (status = 201, description = "Published", body = ReleaseView,
         headers(("Location" = String, description = "URL of the new revision"))),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
#[post("/v1/releases/{year}")]
pub async fn publish(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Admin,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let year = ended_year(&path)?;
    let who = Caller(who.0);
    let caller = who.actor();
    let (state2, req2) = (state.clone(), req.clone());
    // No body: the figures are the service's own.
    idempotency::run(
        &state2,
        &req2,
        &caller,
        &[],
        year.to_string(),
        Creates::Other,
        |_, _| async move {
            if !state.projector.settle(SETTLE).await? {
                return Err(ApiError::unavailable(
                    "the figures are still being brought up to date",
                ));
            }
            let revision = state.releases.state(year).await?.revisions + 1;
            let mut items = Vec::new();
            // Every cell of the year: provinces and the nation, then the breakdowns (1.1).
            for geography in [Geography::Vn34, Geography::Vn63] {
                items.extend(index_cells(&state, geography, Some(year), None, None).await?);
                let breakdowns = Areas::Breakdowns(None);
                items.extend(
                    index_page(&state, geography, Some(year), None, breakdowns, None, None).await?,
                );
            }
            for item in &mut items {
                item.provisional = false;
            }
            let csv = String::from_utf8(csv_of(&items)?)
                .map_err(|e| ApiError::internal(format!("CSV is not UTF-8: {e}")))?;
            let generated_at = now();
            let methodology_version = redtape_index::METHODOLOGY_VERSION;
            let mut json = serde_json::to_string_pretty(&ReleaseDocument {
                year,
                revision,
                methodology_version,
                generated_at,
                csv_sha256: &sha256_hex(csv.as_bytes()),
                items: &items,
            })
            .map_err(ApiError::internal)?;
            json.push('\n');
            let command = ReleaseCommand::Publish {
                year,
                revision,
                methodology_version: methodology_version.to_string(),
                generated_at,
                csv,
                json,
            };
            let event = state
                .releases
                .publish(year, command, metadata(&req, &who, generated_at))
                .await?;
            let view = ReleaseView::of(&event);
            Ok(Handled {
                outcome: Outcome {
                    status: StatusCode::CREATED,
                    location: Some(format!("/v1/releases/{year}/{revision}")),
                    body: serde_json::to_string(&view).map_err(ApiError::internal)?,
                },
                answered: false,
            })
        },
    )
    .await
}
