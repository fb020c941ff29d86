//! Public index figures (no account needed): `GET /v1/indices`.
//!
//! Every figure carries its cell's n, whether it is suppressed, the methodology version and
//! `provisional` (live figures are always provisional; published releases are not). Values
//! are rounded here, on output only (methodology §3).

use actix_web::{get, web, HttpRequest, HttpResponse};
use redtape_domain::procedure_terms::ProcedureTimeline;
use redtape_domain::{Geography, Provinces};
use redtape_index::rounding;
use redtape_store::cells::CellRecord;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::dictionary::DatasetId;
use crate::open::{next_url, Format, List, ListParams, Page};
use crate::problem::{ApiError, Problem};
use crate::AppState;

/// One cell, flat (the same columns in JSON, NDJSON and CSV).
#[derive(Debug, Serialize, ToSchema)]
pub struct IndexCell {
    #[schema(example = "vn-34")]
    pub geography: String,
    #[schema(example = 2025)]
    pub year: i32,
    #[schema(example = "1.001612")]
    pub procedure_code: String,
    #[schema(example = "79")]
    pub province_code: String,
    #[schema(example = "Thành phố Hồ Chí Minh")]
    pub province_name: String,
    /// All included observations (timings, pending timings, complaints).
    #[schema(example = 6)]
    pub n: i32,
    #[schema(example = 5)]
    pub n_timings: i32,
    #[schema(example = 0)]
    pub n_pending: i32,
    #[schema(example = 1)]
    pub n_complaints: i32,
    /// Observations an officer verified (all included observations count alike).
    #[schema(example = 2)]
    pub n_verified: i32,
    /// n below the disclosure threshold: counts only, every statistic null.
    #[schema(example = false)]
    pub suppressed: bool,
    /// Median elapsed working days of completed timings, to 0.1.
    #[schema(example = 4.5)]
    pub median_working_days: Option<f64>,
    #[schema(example = 3.0)]
    pub median_working_days_ci_low: Option<f64>,
    #[schema(example = 6.0)]
    pub median_working_days_ci_high: Option<f64>,
    #[schema(example = 8.5)]
    pub p90_working_days: Option<f64>,
    /// Median Standard Cost Model cost per case, to the nearest 1,000 VND.
    #[schema(example = 1705000)]
    pub median_scm_cost_vnd: Option<f64>,
    #[schema(example = 1550000)]
    pub median_scm_cost_ci_low_vnd: Option<f64>,
    #[schema(example = 2100000)]
    pub median_scm_cost_ci_high_vnd: Option<f64>,
    #[schema(example = 1.0)]
    pub median_visits: Option<f64>,
    /// Share of completed timings within the statutory limit, to 0.001.
    #[schema(example = 0.333)]
    pub on_time_rate: Option<f64>,
    /// Share of observations with an informal payment, to 0.001.
    #[schema(example = 0.0)]
    pub informal_payment_rate: Option<f64>,
    /// Compliance Burden Index, 0-100 (higher = lighter burden), to 0.1: relative to the
    /// other non-suppressed provinces of the same year and procedure (methodology §5).
    #[schema(example = 62.5)]
    pub cbi: Option<f64>,
    /// Rank by CBI within the year and procedure (1 = lightest; ties share a rank).
    #[schema(example = 3)]
    pub cbi_rank: Option<usize>,
    /// Dates on which a reform of the procedure took effect in this year (`;`-separated),
    /// so before/after can be told apart; null when there was none.
    #[schema(example = "2025-07-01")]
    pub reforms_in_year: Option<String>,
    #[schema(example = "1.0")]
    pub methodology_version: String,
    /// Live figures are provisional until a reform office publishes the year.
    #[schema(example = true)]
    pub provisional: bool,
}

/// The cells matching the filters, in key order, each with its CBI and rank (kept by the
/// projector per year and procedure, so a one-cell read reads one row).
pub(crate) async fn index_cells(
    state: &AppState,
    geography: Geography,
    year: Option<i32>,
    procedure: Option<&str>,
    province: Option<&str>,
) -> Result<Vec<IndexCell>, ApiError> {
    index_page(state, geography, year, procedure, province, None, None).await
}

/// A keyset page of [`index_cells`]: the cells after `after`, at most `limit`.
pub(crate) async fn index_page(
    state: &AppState,
    geography: Geography,
    year: Option<i32>,
    procedure: Option<&str>,
    province: Option<&str>,
    after: Option<&(i32, String, String)>,
    limit: Option<i64>,
) -> Result<Vec<IndexCell>, ApiError> {
    let cells = redtape_store::cells::query_page(
        &state.db,
        geography.as_str(),
        year,
        procedure,
        province,
        after,
        limit,
    )
    .await?;
    Ok(state.catalogue.with_timelines(|timelines| {
        cells
            .into_iter()
            .map(|c| IndexCell::of(c, geography, timelines))
            .collect()
    }))
}

/// Cells as CSV: a header line (even when there are no cells, so a reader sees the columns),
/// then one line per cell, in the given order.
pub(crate) fn csv_of(items: &[IndexCell]) -> Result<Vec<u8>, ApiError> {
    let mut body = crate::open::csv_header(&CSV_COLUMNS)?.to_vec();
    body.extend_from_slice(
        &crate::open::csv_chunk(&CSV_COLUMNS, items).map_err(ApiError::Internal)?,
    );
    Ok(body)
}

/// The `reforms_in_year` value of a cell.
pub(crate) fn reforms_in_year(
    timelines: &std::collections::BTreeMap<String, ProcedureTimeline>,
    code: &str,
    year: i32,
) -> Option<String> {
    let dates: Vec<String> = timelines
        .get(code)?
        .reforms_in(year)
        .map(|t| t.effective_from.to_string())
        .collect();
    (!dates.is_empty()).then(|| dates.join(";"))
}

impl IndexCell {
    pub(crate) fn of(
        c: CellRecord,
        geography: Geography,
        timelines: &std::collections::BTreeMap<String, ProcedureTimeline>,
    ) -> Self {
        let name = Provinces::get()
            .find(geography, &c.province_code)
            .map(|p| p.name.clone())
            .unwrap_or_default();
        let reforms = reforms_in_year(timelines, &c.procedure_code, c.year);
        IndexCell {
            geography: c.geography,
            year: c.year,
            procedure_code: c.procedure_code,
            province_code: c.province_code,
            province_name: name,
            n: c.n,
            n_timings: c.n_timings,
            n_pending: c.n_pending,
            n_complaints: c.n_complaints,
            n_verified: c.n_verified,
            suppressed: c.suppressed != 0,
            median_working_days: c.median_days.map(rounding::days),
            median_working_days_ci_low: c.median_days_ci_low.map(rounding::days),
            median_working_days_ci_high: c.median_days_ci_high.map(rounding::days),
            p90_working_days: c.p90_days.map(rounding::days),
            median_scm_cost_vnd: c.median_cost.map(rounding::vnd),
            median_scm_cost_ci_low_vnd: c.median_cost_ci_low.map(rounding::vnd),
            median_scm_cost_ci_high_vnd: c.median_cost_ci_high.map(rounding::vnd),
            median_visits: c.median_visits,
            on_time_rate: c.on_time_rate.map(rounding::rate),
            informal_payment_rate: c.informal_payment_rate.map(rounding::rate),
            cbi: c.cbi.map(rounding::cbi),
            cbi_rank: c.cbi_rank.and_then(|r| usize::try_from(r).ok()),
            reforms_in_year: reforms,
            methodology_version: c.methodology_version,
            provisional: true,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct IndexQuery {
    /// vn-34 (default; every year, older observations mapped to their successor province) or
    /// vn-63 (observations dated before 2025-07-01 only).
    #[param(example = "vn-34")]
    pub geography: Option<String>,
    #[param(example = 2025)]
    pub year: Option<String>,
    /// National procedure code.
    #[param(example = "1.001612")]
    pub procedure: Option<String>,
    /// Province code on the chosen geography.
    #[param(example = "79")]
    pub province: Option<String>,
    /// json (default), csv or ndjson; the Accept header (text/csv, application/x-ndjson) also
    /// selects the format.
    pub format: Option<String>,
    /// Cells per page, 1 to 10,000 (default 1,000).
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page (the `next` URL carries it).
    pub cursor: Option<String>,
}

/// The body of a JSON answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct IndexPage {
    pub methodology_version: String,
    pub provisional: bool,
    pub licence: crate::licence::Licence,
    pub items: Vec<IndexCell>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// The URL of the next page, every filter kept (also in `Link: <...>; rel="next"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Index cells.
///
/// Per-cell statistics (methodology §3) for a geography, filtered by year, procedure and
/// province; in key order. Suppressed cells (n below the disclosure threshold) show counts
/// only. See docs/methodology.md for every definition.
#[utoipa::path(
    tag = "indices",
    params(IndexQuery),
    responses(
        (status = 200, description = "The matching cells: JSON (default), CSV with a header \
line (the same columns as an item), or NDJSON (one item per line)", content(
            (IndexPage = "application/json"),
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
    query: web::Query<IndexQuery>,
) -> Result<HttpResponse, ApiError> {
    let format = Format::of(&req, query.format.as_deref())?;
    let page = Page::parse(query.limit.as_deref(), query.cursor.as_deref(), 3)?;
    let geography = geography_of(query.geography.as_deref())?;
    let year = given(query.year.as_deref()).map(year_of).transpose()?;
    let procedure = given(query.procedure.as_deref())
        .map(procedure_of)
        .transpose()?;
    let province = given(query.province.as_deref())
        .map(|p| province_of(geography, p))
        .transpose()?;
    // The cursor is the key of the last cell served: (year, procedure, province).
    let after = match &page.after {
        None => None,
        Some(parts) => Some((
            parts[0].parse::<i32>().map_err(|_| {
                ApiError::parameter("cursor", "format", "not a cursor this API gave out")
            })?,
            parts[1].clone(),
            parts[2].clone(),
        )),
    };
    // One more than the page, to know whether a next page exists.
    let mut items = index_page(
        &state,
        geography,
        year,
        procedure.as_ref().map(|p| p.as_str()),
        province.as_deref(),
        after.as_ref(),
        Some(page.limit as i64 + 1),
    )
    .await?;
    let next_cursor = if items.len() > page.limit {
        items.truncate(page.limit);
        items.last().map(|c| {
            crate::open::encode_cursor(&[
                c.year.to_string(),
                c.procedure_code.clone(),
                c.province_code.clone(),
            ])
        })
    } else {
        None
    };
    let next = next_cursor
        .as_deref()
        .map(|c| crate::open::next_url(&req, c));
    let list = List::of(DatasetId::Indices, items, next.clone(), "redtape-indices");
    list.respond(format, |items| IndexPage {
        methodology_version: redtape_index::METHODOLOGY_VERSION.to_string(),
        provisional: true,
        licence: state.licence.clone(),
        items,
        next_cursor,
        next,
    })
}

/// The CSV columns, in the order of [`IndexCell`]'s fields.
pub(crate) const CSV_COLUMNS: [&str; 26] = [
    "geography",
    "year",
    "procedure_code",
    "province_code",
    "province_name",
    "n",
    "n_timings",
    "n_pending",
    "n_complaints",
    "n_verified",
    "suppressed",
    "median_working_days",
    "median_working_days_ci_low",
    "median_working_days_ci_high",
    "p90_working_days",
    "median_scm_cost_vnd",
    "median_scm_cost_ci_low_vnd",
    "median_scm_cost_ci_high_vnd",
    "median_visits",
    "on_time_rate",
    "informal_payment_rate",
    "cbi",
    "cbi_rank",
    "reforms_in_year",
    "methodology_version",
    "provisional",
];

/// Filters of the CBI endpoints.
#[derive(Debug, Deserialize, IntoParams)]
pub struct RankingQuery {
    /// vn-34 (default) or vn-63.
    pub geography: Option<String>,
    /// Required.
    #[param(example = 2025)]
    pub year: Option<String>,
    /// Required for rankings.
    #[param(example = "1.001612")]
    pub procedure: Option<String>,
}

// Query parameters, parsed the same way by every endpoint: an empty value is an absent one,
// and each refusal names the parameter and the rule (problem+json `errors`).

/// The value of a parameter that was given and is not empty.
pub(crate) fn given(text: Option<&str>) -> Option<&str> {
    text.filter(|t| !t.is_empty())
}

/// A required parameter.
pub(crate) fn required<'a>(
    text: Option<&'a str>,
    name: &str,
    example: &str,
) -> Result<&'a str, ApiError> {
    given(text).ok_or_else(|| {
        ApiError::parameter(
            name,
            "required",
            format!("give a {name}, e.g. {name}={example}"),
        )
    })
}

fn geography_of(text: Option<&str>) -> Result<Geography, ApiError> {
    match given(text) {
        None => Ok(Geography::Vn34),
        Some(g) => {
            Geography::parse("", g).map_err(|v| ApiError::parameter("geography", &v.rule, v.detail))
        }
    }
}

/// A year redtape can hold observations for: from the earliest accepted date to 2100.
pub(crate) fn year_of(text: &str) -> Result<i32, ApiError> {
    let first = chrono::Datelike::year(&redtape_domain::submission::report::earliest_date());
    text.parse::<i32>()
        .ok()
        .filter(|y| (first..=2100).contains(y))
        .ok_or_else(|| {
            ApiError::parameter(
                "year",
                "range",
                format!("must be a year from {first} to 2100, got {text:?}"),
            )
        })
}

pub(crate) fn procedure_of(code: &str) -> Result<redtape_domain::ProcedureCode, ApiError> {
    redtape_domain::ProcedureCode::parse_format("", code)
        .map_err(|v| ApiError::parameter("procedure", &v.rule, v.detail))
}

pub(crate) fn province_of(geography: Geography, code: &str) -> Result<String, ApiError> {
    match Provinces::get().find(geography, code) {
        Some(_) => Ok(code.to_string()),
        None => Err(ApiError::parameter(
            "province",
            "unknown_province",
            format!(
                "{code:?} is not a province of {}; see GET /v1/provinces?geography={}",
                geography.as_str(),
                geography.as_str()
            ),
        )),
    }
}

fn province_cell(c: &CellRecord) -> redtape_index::cbi::ProvinceCell {
    redtape_index::cbi::ProvinceCell {
        province: c.province_code.clone(),
        suppressed: c.suppressed != 0,
        median_days: c.median_days,
        median_cost: c.median_cost,
        informal_payment_rate: c.informal_payment_rate,
        on_time_rate: c.on_time_rate,
    }
}

fn province_name(geography: Geography, code: &str) -> String {
    Provinces::get()
        .find(geography, code)
        .map(|p| p.name.clone())
        .unwrap_or_default()
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
}

/// The body of a ranking.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ranking {
    pub methodology_version: String,
    pub provisional: bool,
    pub geography: String,
    pub year: i32,
    pub procedure_code: String,
    pub items: Vec<RankedProvince>,
    /// The next page's URL (also in `Link: <...>; rel="next"`); absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
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
        (status = 200, description = "The ranking (JSON; CSV and NDJSON rows are its items)", body = Ranking),
        (status = 422, description = "A filter is missing or not valid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/indices/rankings")]
pub async fn rankings(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<RankingQuery>,
    list: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let (format, page) = list.parse(&req, 3)?;
    let geography = geography_of(query.geography.as_deref())?;
    let year = year_of(required(query.year.as_deref(), "year", "2025")?)?;
    let procedure = procedure_of(required(
        query.procedure.as_deref(),
        "procedure",
        "1.001612",
    )?)?;
    let cells = redtape_store::cells::query(
        &state.db,
        geography.as_str(),
        Some(year),
        Some(procedure.as_str()),
        None,
    )
    .await?;
    let ranked = redtape_index::cbi::compute(&cells.iter().map(province_cell).collect::<Vec<_>>());
    let mut items: Vec<RankedProvince> = cells
        .iter()
        .zip(ranked)
        .map(|(cell, r)| RankedProvince {
            rank: r.rank,
            province_name: province_name(geography, &cell.province_code),
            province_code: cell.province_code.clone(),
            cbi: r.cbi.map(rounding::cbi),
            score_days: r.scores[0].map(rounding::cbi),
            score_cost: r.scores[1].map(rounding::cbi),
            score_informal: r.scores[2].map(rounding::cbi),
            score_on_time: r.scores[3].map(rounding::cbi),
            n: cell.n,
            suppressed: cell.suppressed != 0,
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
    let next = cursor.map(|c| next_url(&req, &c));
    List::of(DatasetId::Rankings, items, next.clone(), "redtape-rankings").respond(
        format,
        |items| Ranking {
            methodology_version: redtape_index::METHODOLOGY_VERSION.into(),
            provisional: true,
            geography: geography.as_str().into(),
            year,
            procedure_code: procedure.as_str().into(),
            items,
            next,
        },
    )
}

/// A province's composite for a year.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProvinceComposite {
    pub province_code: String,
    pub province_name: String,
    /// Mean of the province's CBI over the procedures where it is not suppressed, to 0.1.
    pub mean_cbi: f64,
    /// How many procedures that mean covers.
    pub procedures: usize,
}

/// The body of the composites.
#[derive(Debug, Serialize, ToSchema)]
pub struct Composites {
    pub methodology_version: String,
    pub provisional: bool,
    pub geography: String,
    pub year: i32,
    pub items: Vec<ProvinceComposite>,
    /// The next page's URL (also in `Link: <...>; rel="next"`); absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Province composites for a year.
///
/// Each province's mean CBI over the procedures in which it is not suppressed, with the number
/// of procedures covered (methodology §5), best first.
#[utoipa::path(
    tag = "indices",
    params(RankingQuery, ListParams),
    responses(
        (status = 200, description = "The composites (JSON; CSV and NDJSON rows are its items)", body = Composites),
        (status = 422, description = "A filter is missing or not valid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/indices/provinces")]
pub async fn province_composites(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<RankingQuery>,
    list: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let (format, page) = list.parse(&req, 2)?;
    let geography = geography_of(query.geography.as_deref())?;
    let year = year_of(required(query.year.as_deref(), "year", "2025")?)?;
    let items = composites(&state, geography, year).await?;
    // Highest mean first (as tenths of a point, inverted), then by province.
    let (items, cursor) = page.apply(items, |c| {
        vec![
            format!("{:05}", 1000 - (c.mean_cbi * 10.0).round() as i64),
            c.province_code.clone(),
        ]
    });
    let next = cursor.map(|c| next_url(&req, &c));
    List::of(
        DatasetId::ProvinceComposites,
        items,
        next.clone(),
        "redtape-province-composites",
    )
    .respond(format, |items| Composites {
        methodology_version: redtape_index::METHODOLOGY_VERSION.into(),
        provisional: true,
        geography: geography.as_str().into(),
        year,
        items,
        next,
    })
}

/// Province composites of a year, highest mean CBI first (the handler's and the dashboard's).
pub(crate) async fn composites(
    state: &AppState,
    geography: Geography,
    year: i32,
) -> Result<Vec<ProvinceComposite>, ApiError> {
    let cells =
        redtape_store::cells::query(&state.db, geography.as_str(), Some(year), None, None).await?;
    let mut by_procedure: std::collections::BTreeMap<&str, Vec<redtape_index::cbi::ProvinceCell>> =
        Default::default();
    for cell in &cells {
        by_procedure
            .entry(cell.procedure_code.as_str())
            .or_default()
            .push(province_cell(cell));
    }
    let per_procedure: Vec<Vec<redtape_index::cbi::Ranked>> = by_procedure
        .values()
        .map(|cells| redtape_index::cbi::compute(cells))
        .collect();
    let mut items: Vec<ProvinceComposite> =
        redtape_index::cbi::composites(per_procedure.iter().map(Vec::as_slice))
            .into_iter()
            .map(|c| ProvinceComposite {
                province_name: province_name(geography, &c.province),
                province_code: c.province,
                mean_cbi: rounding::cbi(c.mean_cbi),
                procedures: c.procedures,
            })
            .collect();
    items.sort_by(|a, b| {
        b.mean_cbi
            .total_cmp(&a.mean_cbi)
            .then_with(|| a.province_code.cmp(&b.province_code))
    });
    Ok(items)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct TrendQuery {
    /// vn-34 (default) or vn-63.
    pub geography: Option<String>,
    /// Required.
    #[param(example = "1.001612")]
    pub procedure: Option<String>,
    /// Required: a province code on the geography.
    #[param(example = "79")]
    pub province: Option<String>,
}

/// A reform that took effect in a year.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReformMark {
    pub effective_from: chrono::NaiveDate,
    pub statutory_working_days: u16,
    pub legal_basis: String,
}

/// One year of a trend. Changes compare with the previous calendar year and are null when
/// either year has no published value.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrendPoint {
    pub year: i32,
    pub n: i32,
    pub suppressed: bool,
    pub median_working_days: Option<f64>,
    pub median_working_days_change: Option<f64>,
    /// Percentage change, to 0.1.
    pub median_working_days_change_pct: Option<f64>,
    pub median_scm_cost_vnd: Option<f64>,
    pub median_scm_cost_change_vnd: Option<f64>,
    pub median_scm_cost_change_pct: Option<f64>,
    pub on_time_rate: Option<f64>,
    pub on_time_rate_change: Option<f64>,
    pub informal_payment_rate: Option<f64>,
    pub informal_payment_rate_change: Option<f64>,
    /// Reforms of the procedure that took effect this year: before/after is visible here.
    pub reforms: Vec<ReformMark>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Trend {
    pub methodology_version: String,
    pub provisional: bool,
    pub geography: String,
    pub procedure_code: String,
    pub province_code: String,
    pub province_name: String,
    pub items: Vec<TrendPoint>,
    /// The next page's URL (also in `Link: <...>; rel="next"`); absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

fn change(now: Option<f64>, before: Option<f64>) -> Option<f64> {
    Some(now? - before?)
}

fn change_pct(now: Option<f64>, before: Option<f64>) -> Option<f64> {
    let before = before.filter(|b| *b != 0.0)?;
    Some(rounding::days((now? - before) / before * 100.0))
}

/// A province's series for a procedure, oldest year first (the handler's and the dashboard's).
pub(crate) async fn trend_points(
    state: &AppState,
    geography: Geography,
    procedure: &str,
    province: &str,
) -> Result<Vec<TrendPoint>, ApiError> {
    let cells = redtape_store::cells::query(
        &state.db,
        geography.as_str(),
        None,
        Some(procedure),
        Some(province),
    )
    .await?;
    let timeline = state.catalogue.timeline(procedure);
    let by_year: std::collections::BTreeMap<i32, &CellRecord> =
        cells.iter().map(|c| (c.year, c)).collect();
    let items = cells
        .iter()
        .map(|c| {
            let before = by_year.get(&(c.year - 1));
            let prev = |f: fn(&CellRecord) -> Option<f64>| before.and_then(|b| f(b));
            let reforms = timeline
                .as_ref()
                .map(|t| {
                    t.reforms_in(c.year)
                        .map(|p| ReformMark {
                            effective_from: p.effective_from,
                            statutory_working_days: p.statutory_working_days,
                            legal_basis: p.legal_basis.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            TrendPoint {
                year: c.year,
                n: c.n,
                suppressed: c.suppressed != 0,
                median_working_days: c.median_days.map(rounding::days),
                median_working_days_change: change(c.median_days, prev(|b| b.median_days))
                    .map(rounding::days),
                median_working_days_change_pct: change_pct(c.median_days, prev(|b| b.median_days)),
                median_scm_cost_vnd: c.median_cost.map(rounding::vnd),
                median_scm_cost_change_vnd: change(c.median_cost, prev(|b| b.median_cost))
                    .map(rounding::vnd),
                median_scm_cost_change_pct: change_pct(c.median_cost, prev(|b| b.median_cost)),
                on_time_rate: c.on_time_rate.map(rounding::rate),
                on_time_rate_change: change(c.on_time_rate, prev(|b| b.on_time_rate))
                    .map(rounding::rate),
                informal_payment_rate: c.informal_payment_rate.map(rounding::rate),
                informal_payment_rate_change: change(
                    c.informal_payment_rate,
                    prev(|b| b.informal_payment_rate),
                )
                .map(rounding::rate),
                reforms,
            }
        })
        .collect();
    Ok(items)
}

/// A trend over years for one procedure and province.
///
/// The absolute figures year by year, with changes from the previous year, and the years in
/// which a reform of the procedure took effect. This, not the CBI, is how progress is read.
#[utoipa::path(
    tag = "indices",
    params(TrendQuery, ListParams),
    responses(
        (status = 200, description = "The series, oldest year first (JSON; CSV and NDJSON rows are its items)", body = Trend),
        (status = 422, description = "A filter is missing or not valid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/indices/trends")]
pub async fn trends(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<TrendQuery>,
    list: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let (format, page) = list.parse(&req, 1)?;
    let geography = geography_of(query.geography.as_deref())?;
    let procedure = procedure_of(required(
        query.procedure.as_deref(),
        "procedure",
        "1.001612",
    )?)?;
    let province = province_of(
        geography,
        required(query.province.as_deref(), "province", "79")?,
    )?;
    let items = trend_points(&state, geography, procedure.as_str(), &province).await?;
    let (items, cursor) = page.apply(items, |p: &TrendPoint| vec![format!("{:04}", p.year)]);
    let next = cursor.map(|c| next_url(&req, &c));
    List::of(DatasetId::Trends, items, next.clone(), "redtape-trends").respond(format, |items| {
        Trend {
            methodology_version: redtape_index::METHODOLOGY_VERSION.into(),
            provisional: true,
            geography: geography.as_str().into(),
            procedure_code: procedure.as_str().into(),
            province_name: province_name(geography, &province),
            province_code: province,
            items,
            next,
        }
    })
}
