//! Annual releases (methodology §6): an admin freezes a year's cells as a numbered revision;
//! anyone lists them and downloads each revision's CSV and JSON, byte for byte the same
//! forever (the documents live in the `ReleasePublished` event), with its SHA-256 to cite.

use std::time::Duration;

use actix_web::http::{header, StatusCode};
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Datelike, Utc};
use redtape_domain::release::{sha256_hex, CellChange, ReleaseCommand, ReleaseError, ReleaseEvent};
use redtape_domain::submission::aggregate::vietnam_date;
use redtape_domain::Geography;
use serde::Serialize;
use utoipa::ToSchema;

use crate::dictionary::DatasetId;
use crate::extract::{Admin, Caller};
use crate::idempotency::{self, Creates, Handled, IdempotencyKey, Outcome};
use crate::indices::{csv_of, index_cells, year_of, IndexCell};
use crate::open::{next_url, List, ListParams};
use crate::problem::{ApiError, Conflict, Problem, WriteProblems};
use crate::submissions::{metadata, now};
use crate::AppState;

/// How long a publication waits for the projector to include every committed event.
const SETTLE: Duration = Duration::from_secs(30);

/// A release revision's metadata.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReleaseView {
    #[schema(example = 2025)]
    pub year: i32,
    #[schema(example = 1)]
    pub revision: u32,
    #[schema(example = "1.0")]
    pub methodology_version: String,
    #[schema(example = "2026-01-15T02:00:00.000000Z")]
    pub generated_at: DateTime<Utc>,
    /// SHA-256 of the CSV's bytes: cite it with the CSV's URL.
    #[schema(example = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")]
    pub sha256: String,
    #[schema(example = 408)]
    pub cell_count: usize,
    #[schema(example = "/v1/releases/2025/1.csv")]
    pub csv_url: String,
    #[schema(example = "/v1/releases/2025/1.json")]
    pub json_url: String,
    /// Cells that differ from the previous revision (empty for revision 1).
    pub changelog: Vec<CellChange>,
}

impl ReleaseView {
    fn of(event: &ReleaseEvent) -> ReleaseView {
        let ReleaseEvent::ReleasePublished {
            year,
            revision,
            methodology_version,
            generated_at,
            sha256,
            cell_count,
            changelog,
            ..
        } = event;
        ReleaseView {
            year: *year,
            revision: *revision,
            methodology_version: methodology_version.clone(),
            generated_at: *generated_at,
            sha256: sha256.clone(),
            cell_count: *cell_count,
            csv_url: format!("/v1/releases/{year}/{revision}.csv"),
            json_url: format!("/v1/releases/{year}/{revision}.json"),
            changelog: changelog.clone(),
        }
    }
}

/// Every revision of every year.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReleaseList {
    /// By year, then revision; the changelogs are on each revision's own page.
    pub items: Vec<ReleaseSummary>,
    /// The next page's URL (also in `Link: <...>; rel="next"`); absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReleaseSummary {
    #[schema(example = 2025)]
    pub year: i32,
    #[schema(example = 1)]
    pub revision: u32,
    /// Whether a later revision of the year exists.
    #[schema(example = false)]
    pub superseded: bool,
    #[schema(example = "1.0")]
    pub methodology_version: String,
    #[schema(example = "2026-01-15T02:00:00.000000Z")]
    pub generated_at: DateTime<Utc>,
    #[schema(example = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")]
    pub sha256: String,
    #[schema(example = 408)]
    pub cell_count: usize,
    /// How many cells changed since the previous revision.
    #[schema(example = 0)]
    pub changed_cells: usize,
    #[schema(example = "/v1/releases/2025/1.csv")]
    pub csv_url: String,
    #[schema(example = "/v1/releases/2025/1.json")]
    pub json_url: String,
    #[schema(example = "/v1/releases/2025/1")]
    pub url: String,
}

/// The JSON document of a release: the same cells as the CSV, with the release's identity.
/// Frozen at publication: `GET /v1/releases/{year}/{n}.json` returns it byte for byte.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReleaseDocument<'a> {
    #[schema(example = 2025)]
    year: i32,
    #[schema(example = 1)]
    revision: u32,
    #[schema(example = "1.1")]
    methodology_version: &'a str,
    generated_at: DateTime<Utc>,
    /// SHA-256 of the CSV rendering of the same cells.
    csv_sha256: &'a str,
    items: &'a [IndexCell],
}

/// What `GET /v1/releases/{year}/{file}` answers in JSON: the revision's metadata
/// (`ReleaseView`) for a bare revision number, the frozen document for `{n}.json`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // Documentation only: never constructed.
pub enum ReleaseJson<'a> {
    Metadata(ReleaseView),
    Document(ReleaseDocument<'a>),
}

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
            ReleaseError::BadCsv(_) => ApiError::Internal(e.to_string()),
        }
    }
}

/// A year that has ended in Vietnam: only whole years are released.
fn ended_year(text: &str) -> Result<i32, ApiError> {
    let year = year_of(text)?;
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
                return Err(ApiError::Unavailable(
                    "the figures are still being brought up to date".into(),
                ));
            }
            let revision = state.releases.state(year).await?.revisions + 1;
            let mut items = Vec::new();
            for geography in [Geography::Vn34, Geography::Vn63] {
                items.extend(index_cells(&state, geography, Some(year), None, None).await?);
            }
            for item in &mut items {
                item.provisional = false;
            }
            let csv = String::from_utf8(csv_of(&items)?)
                .map_err(|e| ApiError::Internal(format!("CSV is not UTF-8: {e}")))?;
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
            .map_err(|e| ApiError::Internal(e.to_string()))?;
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
                    body: serde_json::to_string(&view)
                        .map_err(|e| ApiError::Internal(e.to_string()))?,
                },
                answered: false,
            })
        },
    )
    .await
}

/// List releases.
///
/// Every revision of every published year, oldest first.
#[utoipa::path(
    tag = "releases",
    params(ListParams),
    responses((status = 200, description = "All revisions (JSON; CSV and NDJSON rows are its items)", body = ReleaseList))
)]
#[get("/v1/releases")]
pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let (format, page) = params.parse(&req, 2)?;
    let mut items = Vec::new();
    for year in state.releases.years().await? {
        let revisions = state.releases.revisions(year).await?;
        let count = revisions.len();
        for (i, event) in revisions.iter().enumerate() {
            let view = ReleaseView::of(event);
            items.push(ReleaseSummary {
                url: format!("/v1/releases/{}/{}", view.year, view.revision),
                year: view.year,
                revision: view.revision,
                superseded: i + 1 < count,
                methodology_version: view.methodology_version,
                generated_at: view.generated_at,
                sha256: view.sha256,
                cell_count: view.cell_count,
                changed_cells: view.changelog.len(),
                csv_url: view.csv_url,
                json_url: view.json_url,
            });
        }
    }
    let (items, cursor) = page.apply(items, |r: &ReleaseSummary| {
        vec![format!("{:04}", r.year), format!("{:06}", r.revision)]
    });
    let next = cursor.map(|c| next_url(&req, &c));
    List::of(DatasetId::Releases, items, next.clone(), "redtape-releases")
        .respond(format, |items| ReleaseList { items, next })
}

/// The latest revision of a year.
#[utoipa::path(
    tag = "releases",
    params(("year" = i32, Path, description = "The year", example = 2025)),
    responses(
        (status = 200, description = "The latest revision's metadata and changelog", body = ReleaseView),
        (status = 404, description = "The year was never published", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a year", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/releases/{year}")]
pub async fn latest(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let year = year_of(&path)?;
    let revisions = state.releases.revisions(year).await?;
    let event = revisions
        .last()
        .ok_or_else(|| ApiError::NotFound(format!("{year} has not been published")))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=60"))
        .json(ReleaseView::of(event)))
}

/// One revision: its metadata, CSV or JSON.
///
/// `{revision}` gives the metadata and changelog; `{revision}.csv` and `{revision}.json` the
/// documents, identical byte for byte on every download, with an `ETag` of their SHA-256 and
/// a year-long immutable cache lifetime.
#[utoipa::path(
    tag = "releases",
    params(
        ("year" = i32, Path, description = "The year", example = 2025),
        ("file" = String, Path, description = "The revision, alone or with .csv or .json", example = "1.csv"),
    ),
    responses(
        (status = 200, description = "The revision: `{n}` its metadata (ReleaseView), `{n}.json` the frozen JSON document (ReleaseDocument), `{n}.csv` the frozen CSV", content(
            (ReleaseJson = "application/json"),
            (String = "text/csv"),
        )),
        (status = 304, description = "Not modified (If-None-Match matched the ETag)"),
        (status = 404, description = "No such revision", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a year or not a revision", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/releases/{year}/{file}")]
pub async fn download(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (year, file) = path.into_inner();
    let year = year_of(&year)?;
    let (number, kind) = match file.rsplit_once('.') {
        Some((n, "csv")) => (n, Some("csv")),
        Some((n, "json")) => (n, Some("json")),
        _ => (file.as_str(), None),
    };
    let number: u32 = number.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
        ApiError::parameter(
            "file",
            "format",
            format!("must be a revision number, alone or with .csv or .json, got {file:?}"),
        )
    })?;
    let revisions = state.releases.revisions(year).await?;
    let event = revisions
        .get(number as usize - 1)
        .ok_or_else(|| ApiError::NotFound(format!("{year} has no revision {number}")))?;
    let ReleaseEvent::ReleasePublished {
        csv, json, sha256, ..
    } = event;
    let (body, content_type, etag) = match kind {
        None => return Ok(HttpResponse::Ok().json(ReleaseView::of(event))),
        Some("csv") => (csv.clone(), "text/csv; charset=utf-8", sha256.clone()),
        _ => (
            json.clone(),
            "application/json",
            sha256_hex(json.as_bytes()),
        ),
    };
    let etag = format!("\"{etag}\"");
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if matches {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"));
    if matches {
        return Ok(response.finish());
    }
    Ok(response
        .content_type(content_type)
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"redtape-{year}-r{number}.{}\"",
                kind.unwrap_or("json")
            ),
        ))
        .body(body))
}
