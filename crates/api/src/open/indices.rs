//! Public index figures (no account needed): `GET /v1/indices`.
//!
//! Every figure carries its cell's n, whether it is suppressed, the methodology version and
//! `provisional` (live figures are always provisional; published releases are not). Values
//! are rounded here, on output only (methodology §3).

use actix_web::{get, web, HttpRequest, HttpResponse};
use redtape_domain::{Geography, ProcedureCode};
use redtape_index::area::Dimension;
use redtape_index::rounding;
use redtape_store::cells::Areas;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::datasets::DatasetId;
use crate::figures::{
    composites, index_page, province_name, trend_points, IndexCell, ProvinceComposite, TrendPoint,
};
use crate::page::{List, ListParams, Live, Paged};
use crate::params::{self, FromQuery, Query, QueryString};
use crate::problem::{ApiError, Problem};
use crate::AppState;

/// Filters of the index cells.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IndexQuery {
    /// vn-34 (default; every year, older observations mapped to their successor province) or
    /// vn-63 (observations dated before 2025-07-01 only).
    #[param(value_type = Option<Geography>, inline)]
    pub geography: Geography,
    #[param(example = 2025)]
    pub year: Option<i32>,
    /// National procedure code.
    #[param(value_type = Option<String>, example = "1.001612")]
    pub procedure: Option<ProcedureCode>,
    /// Province code on the chosen geography, or `all` for the national cells.
    #[param(example = "79")]
    pub province: Option<String>,
}

impl FromQuery for IndexQuery {
    fn from_query(q: &QueryString, _: &HttpRequest) -> Result<Self, ApiError> {
        let geography = q.geography()?;
        Ok(IndexQuery {
            geography,
            year: q.optional("year", params::year)?,
            procedure: q.optional("procedure", params::procedure)?,
            province: q.optional("province", params::province_or_all(geography))?,
        })
    }
}

/// What a page of index cells is about.
#[derive(Debug, Serialize, ToSchema)]
pub struct IndexAbout {
    #[serde(flatten)]
    pub live: Live,
    pub licence: crate::licence::Licence,
}

/// Index cells.
///
/// Per-cell statistics (methodology §3) for a geography, filtered by year, procedure and
/// province; in key order. Each year and procedure also has a national cell (province `all`,
/// no CBI). Suppressed cells (`suppression`: `primary` below the disclosure threshold,
/// `secondary` where the cell would reveal a suppressed one by subtraction) show counts only.
/// Breakdowns by firm profile are at `/v1/indices/breakdowns`. See docs/methodology.md for
/// every definition.
#[utoipa::path(
    tag = "indices",
    params(IndexQuery, ListParams),
    responses(
        (status = 200, description = "The matching cells: JSON (default), CSV with a header \
line (the same columns as an item), or NDJSON (one item per line)", content(
            (Paged<IndexCell, IndexAbout> = "application/json"),
            (String = "text/csv"),
            (IndexCell = "application/x-ndjson"),
        )),
        (status = 422, description = "A filter is not valid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/indices")]
pub async fn list_indices(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: Query<IndexQuery>,
    list: Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let filter = CellFilter {
        geography: query.geography,
        year: query.year,
        procedure: query.procedure.as_ref().map(|p| p.as_str()),
        areas: Areas::Indices(query.province.as_deref()),
    };
    cells_page(&state, &req, &list, filter, DatasetId::Indices).await
}

/// Which cells a page of `/v1/indices` or `/v1/indices/breakdowns` reads.
struct CellFilter<'a> {
    geography: Geography,
    year: Option<i32>,
    procedure: Option<&'a str>,
    areas: Areas<'a>,
}

/// A keyset page of cells as `dataset`, in the format asked for.
async fn cells_page(
    state: &AppState,
    req: &HttpRequest,
    list: &ListParams,
    filter: CellFilter<'_>,
    dataset: DatasetId,
) -> Result<HttpResponse, ApiError> {
    let page = list.page(3)?;
    let after = cell_cursor(&page)?;
    // One more than the page, to know whether a next page exists.
    let mut items = index_page(
        state,
        filter.geography,
        filter.year,
        filter.procedure,
        filter.areas,
        after.as_ref(),
        Some(page.limit as i64 + 1),
    )
    .await?;
    let next_cursor = crate::page::cut(&mut items, page.limit, cell_cursor_of);
    List::of(dataset, items, next_cursor, req).respond(
        list.format,
        IndexAbout {
            live: Live::now(),
            licence: state.licence.clone(),
        },
    )
}

/// The cursor of a page of cells: the key of the last cell served (year, procedure, area),
/// the area being a province code, `all` or `dimension=group`.
fn cell_cursor(page: &crate::page::Page) -> Result<Option<(i32, String, String)>, ApiError> {
    Ok(match &page.after {
        None => None,
        Some(parts) => Some((
            parts[0].parse::<i32>().map_err(|_| {
                ApiError::parameter("cursor", "format", "not a cursor this API gave out")
            })?,
            parts[1].clone(),
            parts[2].clone(),
        )),
    })
}

fn cell_cursor_of(c: &IndexCell) -> Vec<String> {
    vec![c.year.to_string(), c.procedure_code.clone(), c.area_key()]
}

/// Filters of the breakdown cells.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BreakdownQuery {
    /// vn-34 (default; every year) or vn-63 (observations dated before 2025-07-01 only).
    #[param(value_type = Option<Geography>, inline)]
    pub geography: Geography,
    #[param(example = 2025)]
    pub year: Option<i32>,
    /// National procedure code.
    #[param(value_type = Option<String>, example = "1.001612")]
    pub procedure: Option<ProcedureCode>,
    /// One profile dimension (methodology §7): `size_class`, `sector_section`, `woman_owned`
    /// or `ethnic_minority_owned`; all four when absent.
    #[param(value_type = Option<String>, example = "woman_owned")]
    pub dimension: Option<Dimension>,
}

impl FromQuery for BreakdownQuery {
    fn from_query(q: &QueryString, _: &HttpRequest) -> Result<Self, ApiError> {
        Ok(BreakdownQuery {
            geography: q.geography()?,
            year: q.optional("year", params::year)?,
            procedure: q.optional("procedure", params::procedure)?,
            dimension: q.optional("dimension", params::dimension)?,
        })
    }
}

/// Breakdown cells by firm profile.
///
/// National figures for groups of firms (methodology §7, version 1.1): per year and
/// procedure, the same statistics as a national cell for each group of each profile
/// dimension (size class, VSIC sector section, women-owned, ethnic-minority-owned, each with
/// `unknown` for filers that did not declare it), from the profile a filer had when it filed.
/// The groups of a dimension add up to the national cell (province `all` in
/// `/v1/indices`). Suppression as every cell: primary below k, secondary where a published
/// group would reveal a suppressed one. No CBI. In key order: year, procedure, then
/// `dimension=group` by name.
#[utoipa::path(
    tag = "indices",
    params(BreakdownQuery, ListParams),
    responses(
        (status = 200, description = "The matching breakdown cells: JSON (default), CSV with a \
header line (the indices columns), or NDJSON (one item per line)", content(
            (Paged<IndexCell, IndexAbout> = "application/json"),
            (String = "text/csv"),
            (IndexCell = "application/x-ndjson"),
        )),
        (status = 422, description = "A filter is not valid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/indices/breakdowns")]
pub async fn breakdowns(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: Query<BreakdownQuery>,
    list: Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let filter = CellFilter {
        geography: query.geography,
        year: query.year,
        procedure: query.procedure.as_ref().map(|p| p.as_str()),
        areas: Areas::Breakdowns(query.dimension),
    };
    cells_page(&state, &req, &list, filter, DatasetId::Breakdowns).await
}

/// Filters of a ranking.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RankingQuery {
    /// vn-34 (default) or vn-63.
    #[param(value_type = Option<Geography>, inline)]
    pub geography: Geography,
    #[param(example = 2025)]
    pub year: i32,
    #[param(value_type = String, example = "1.001612")]
    pub procedure: ProcedureCode,
}

impl FromQuery for RankingQuery {
    fn from_query(q: &QueryString, _: &HttpRequest) -> Result<Self, ApiError> {
        Ok(RankingQuery {
            geography: q.geography()?,
            year: q.required("year", "2025", params::year)?,
            procedure: q.required("procedure", "1.001612", params::procedure)?,
        })
    }
}

/// Filters of the province composites.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CompositeQuery {
    /// vn-34 (default) or vn-63.
    #[param(value_type = Option<Geography>, inline)]
    pub geography: Geography,
    #[param(example = 2025)]
    pub year: i32,
}

impl FromQuery for CompositeQuery {
    fn from_query(q: &QueryString, _: &HttpRequest) -> Result<Self, ApiError> {
        Ok(CompositeQuery {
            geography: q.geography()?,
            year: q.required("year", "2025", params::year)?,
        })
    }
}

/// One province in a ranking.
#[derive(Debug, Serialize, ToSchema)]
pub struct RankedProvince {
    /// 1 = lightest burden; ties share a rank. Null for suppressed cells.
    pub rank: Option<usize>,
    pub province_code: String,
    pub province_name: String,
    /// Compliance Burden Index, 0-100 (higher = lighter), to 0.1.
    #[schema(example = 65.0)]
    pub cbi: Option<f64>,
    /// Scaled indicators, 0-100, to 0.1: working days, SCM cost, informal payments, delays.
    pub score_days: Option<f64>,
    pub score_cost: Option<f64>,
    pub score_informal: Option<f64>,
    pub score_on_time: Option<f64>,
    pub n: i32,
    pub suppressed: bool,
    /// `primary`, `secondary` or null, as in the indices (methodology §4).
    pub suppression: Option<String>,
}

/// What a ranking is about.
#[derive(Debug, Serialize, ToSchema)]
pub struct RankingAbout {
    #[serde(flatten)]
    pub live: Live,
    pub geography: Geography,
    pub year: i32,
    pub procedure_code: String,
}

/// Province ranking by CBI for one year and procedure.
///
/// The Compliance Burden Index (methodology §5) of every province with a cell, best first;
/// suppressed cells are listed last without a CBI. The CBI is relative within the year and
/// procedure: compare years on the absolute figures (`/v1/indices/trends`).
#[utoipa::path(
    tag = "indices",
    params(RankingQuery, ListParams),
    responses(
        (status = 200, description = "The ranking (JSON; CSV and NDJSON rows are its items)", body = Paged<RankedProvince, RankingAbout>),
        (status = 422, description = "A filter is missing or not valid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/indices/rankings")]
pub async fn rankings(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: Query<RankingQuery>,
    list: Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let page = list.page(3)?;
    let RankingQuery {
        geography,
        year,
        ref procedure,
    } = *query;
    let cells = redtape_store::cells::query(
        &state.db,
        geography.as_str(),
        Some(year),
        Some(procedure.as_str()),
        None,
    )
    .await?;
    // The CBI, rank and scores the projector keeps for the group (index_cbi); the national
    // cell takes no part (methodology §3).
    let mut items: Vec<RankedProvince> = cells
        .into_iter()
        .filter(|cell| redtape_index::area::is_province_key(&cell.province_code))
        .map(|cell| RankedProvince {
            rank: cell.cbi_rank.and_then(|r| usize::try_from(r).ok()),
            province_name: province_name(geography, &cell.province_code),
            province_code: cell.province_code,
            cbi: cell.cbi.map(rounding::cbi),
            score_days: cell.score_days.map(rounding::cbi),
            score_cost: cell.score_cost.map(rounding::cbi),
            score_informal: cell.score_informal.map(rounding::cbi),
            score_on_time: cell.score_on_time.map(rounding::cbi),
            n: cell.n,
            suppressed: cell.suppressed != 0,
            suppression: cell.suppression,
        })
        .collect();
    items.sort_by(|a, b| {
        (a.rank.is_none(), a.rank, &a.province_code).cmp(&(
            b.rank.is_none(),
            b.rank,
            &b.province_code,
        ))
    });
    // Ranked first by rank, then the unranked; by province within.
    let (items, cursor) = page.apply(items, |r| {
        vec![
            u8::from(r.rank.is_none()).to_string(),
            format!("{:04}", r.rank.unwrap_or(0)),
            r.province_code.clone(),
        ]
    });
    List::of(DatasetId::Rankings, items, cursor, &req).respond(
        list.format,
        RankingAbout {
            live: Live::now(),
            geography,
            year,
            procedure_code: procedure.as_str().into(),
        },
    )
}

/// What a page of composites is about.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompositeAbout {
    #[serde(flatten)]
    pub live: Live,
    pub geography: Geography,
    pub year: i32,
}

/// Province composites for a year.
///
/// Each province's mean CBI over the procedures in which it is not suppressed, with the number
/// of procedures covered (methodology §5), best first.
#[utoipa::path(
    tag = "indices",
    params(CompositeQuery, ListParams),
    responses(
        (status = 200, description = "The composites (JSON; CSV and NDJSON rows are its items)", body = Paged<ProvinceComposite, CompositeAbout>),
        (status = 422, description = "A filter is missing or not valid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/indices/provinces")]
pub async fn province_composites(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: Query<CompositeQuery>,
    list: Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let page = list.page(2)?;
    let CompositeQuery { geography, year } = *query;
    let items = composites(&state, geography, year).await?;
    // Highest mean first (as tenths of a point, inverted), then by province.
    let (items, cursor) = page.apply(items, |c| {
        vec![
            format!("{:05}", 1000 - (c.mean_cbi * 10.0).round() as i64),
            c.province_code.clone(),
        ]
    });
    List::of(DatasetId::ProvinceComposites, items, cursor, &req).respond(
        list.format,
        CompositeAbout {
            live: Live::now(),
            geography,
            year,
        },
    )
}

/// The series of a trend.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrendQuery {
    /// vn-34 (default) or vn-63.
    #[param(value_type = Option<Geography>, inline)]
    pub geography: Geography,
    #[param(value_type = String, example = "1.001612")]
    pub procedure: ProcedureCode,
    /// A province code on the geography, or `all` for the national series (methodology §3:
    /// the headline figure of a procedure's year and the base of its year-on-year change).
    #[param(example = "79")]
    pub province: String,
}

impl FromQuery for TrendQuery {
    fn from_query(q: &QueryString, _: &HttpRequest) -> Result<Self, ApiError> {
        let geography = q.geography()?;
        Ok(TrendQuery {
            geography,
            procedure: q.required("procedure", "1.001612", params::procedure)?,
            province: q.required("province", "79", params::province_or_all(geography))?,
        })
    }
}

/// What a trend is about.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrendAbout {
    #[serde(flatten)]
    pub live: Live,
    pub geography: Geography,
    pub procedure_code: String,
    pub province_code: String,
    pub province_name: String,
}

/// A trend over years for one procedure and province.
///
/// The absolute figures year by year, with changes from the previous year, and the years in
/// which a reform of the procedure took effect. This, not the CBI, is how progress is read.
#[utoipa::path(
    tag = "indices",
    params(TrendQuery, ListParams),
    responses(
        (status = 200, description = "The series, oldest year first (JSON; CSV and NDJSON rows are its items)", body = Paged<TrendPoint, TrendAbout>),
        (status = 422, description = "A filter is missing or not valid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/indices/trends")]
pub async fn trends(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: Query<TrendQuery>,
    list: Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let page = list.page(1)?;
    let TrendQuery {
        geography,
        ref procedure,
        ref province,
    } = *query;
    let items = trend_points(&state, geography, procedure.as_str(), province).await?;
    let (items, cursor) = page.apply(items, |p: &TrendPoint| vec![format!("{:04}", p.year)]);
    List::of(DatasetId::Trends, items, cursor, &req).respond(
        list.format,
        TrendAbout {
            live: Live::now(),
            geography,
            procedure_code: procedure.as_str().into(),
            province_name: province_name(geography, province),
            province_code: province.clone(),
        },
    )
}
