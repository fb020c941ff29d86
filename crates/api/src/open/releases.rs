//! Annual releases, as anyone reads them (methodology §6): the list of revisions, each
//! revision's metadata and changelog, and its CSV and JSON, byte for byte the same forever
//! (the documents live in the `ReleasePublished` event), with the SHA-256 to cite.
//! Publishing is the admins' ([`crate::officer::releases`]).

use actix_web::http::header;
use actix_web::{get, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use redtape_domain::release::{sha256_hex, CellChange, ReleaseEvent};
use serde::Serialize;
use utoipa::ToSchema;

use crate::datasets::DatasetId;
use crate::figures::IndexCell;
use crate::page::{List, ListParams, Paged, Rows};
use crate::params::{self, Query};
use crate::problem::{ApiError, Problem};

use crate::AppState;

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
    pub(crate) fn of(event: &ReleaseEvent) -> ReleaseView {
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
    pub(crate) year: i32,
    #[schema(example = 1)]
    pub(crate) revision: u32,
    #[schema(example = "1.1")]
    pub(crate) methodology_version: &'a str,
    pub(crate) generated_at: DateTime<Utc>,
    /// SHA-256 of the CSV rendering of the same cells.
    pub(crate) csv_sha256: &'a str,
    pub(crate) items: &'a [IndexCell],
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

/// List releases.
///
/// Every revision of every published year, oldest first.
#[utoipa::path(
    tag = "releases",
    params(ListParams),
    responses((status = 200, description = "All revisions (JSON; CSV and NDJSON rows are its items)", body = Paged<ReleaseSummary, Rows>))
)]
#[get("/v1/releases")]
pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    list: Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let page = list.page(2)?;
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
    List::of(DatasetId::Releases, items, cursor, &req).respond(list.format, Rows {})
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
    let year = params::value("year", &path, params::year)?;
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
    let year = params::value("year", &year, params::year)?;
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
