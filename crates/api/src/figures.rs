//! The figures that several readers share: index cells, province composites and trends, as
//! the open API (`crate::open::indices`), the dashboard (`crate::officer::dashboard`) and
//! releases (`crate::officer::releases`) publish them. One function per figure, so the
//! dashboard's numbers are the API's numbers and a release freezes exactly what the API showed.
//!
//! Every figure carries its cell's n, whether it is suppressed, the methodology version and
//! `provisional` (live figures are always provisional; published releases are not). Values
//! are rounded here, on output only (methodology §3); the statistics themselves are computed
//! in `redtape_index` and stored by the projector.

use redtape_domain::procedure_terms::ProcedureTimeline;
use redtape_domain::{Geography, Provinces};
use redtape_index::area::{Area, NATIONAL};
use redtape_index::{change, rounding};
use redtape_store::cells::CellRecord;
use serde::Serialize;
use utoipa::ToSchema;

use crate::problem::ApiError;
use crate::AppState;

/// The name a national cell (province `all`) publishes: "the whole country".
pub(crate) const NATIONAL_NAME: &str = "Toàn quốc";

/// One cell, flat (the same columns in JSON, NDJSON and CSV): a province's, the nation's
/// (province `all`) or, with `dimension` and `group`, a breakdown group's.
#[derive(Debug, Serialize, ToSchema)]
pub struct IndexCell {
    #[schema(example = "vn-34")]
    pub geography: String,
    #[schema(example = 2025)]
    pub year: i32,
    #[schema(example = "1.001612")]
    pub procedure_code: String,
    /// A province code on the geography, or `all` for a national cell (methodology §3) and
    /// for a breakdown cell (§7), which covers every province.
    #[schema(example = "79")]
    pub province_code: String,
    /// The province's name; `Toàn quốc` (the whole country) for `all`.
    #[schema(example = "Thành phố Hồ Chí Minh")]
    pub province_name: String,
    /// A breakdown cell's profile dimension (`size_class`, `sector_section`, `woman_owned`,
    /// `ethnic_minority_owned`; methodology §7); null for province and national cells.
    #[schema(example = json!(null))]
    pub dimension: Option<String>,
    /// A breakdown cell's group within its dimension (e.g. `micro`, `G`, `yes`, `unknown`);
    /// null for province and national cells.
    #[schema(example = json!(null))]
    pub group: Option<String>,
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
    /// Suppressed (methodology §4): counts only, every statistic null.
    #[schema(example = false)]
    pub suppressed: bool,
    /// Why: `primary` (n below the disclosure threshold) or `secondary` (published, the cell
    /// would let a suppressed sibling or total be recovered by subtraction); null when
    /// published.
    #[schema(example = json!(null))]
    pub suppression: Option<String>,
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
    #[schema(example = "1.1")]
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
    let areas = redtape_store::cells::Areas::Indices(province);
    index_page(state, geography, year, procedure, areas, None, None).await
}

/// A keyset page of cells (of [`index_cells`], or breakdown cells): the cells after `after`,
/// at most `limit`.
pub(crate) async fn index_page(
    state: &AppState,
    geography: Geography,
    year: Option<i32>,
    procedure: Option<&str>,
    areas: redtape_store::cells::Areas<'_>,
    after: Option<&(i32, String, String)>,
    limit: Option<i64>,
) -> Result<Vec<IndexCell>, ApiError> {
    let cells = redtape_store::cells::query_page(
        &state.db,
        geography.as_str(),
        year,
        procedure,
        areas,
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
    let mut body = crate::page::csv_header(&CSV_COLUMNS)?.to_vec();
    body.extend_from_slice(
        &crate::page::csv_chunk(&CSV_COLUMNS, items).map_err(ApiError::internal)?,
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
        let (province_code, dimension, group) = match Area::parse(&c.province_code) {
            Some(Area::Group(dimension, group)) => (
                NATIONAL.to_string(),
                Some(dimension.as_str().to_string()),
                Some(group.to_string()),
            ),
            _ => (c.province_code, None, None),
        };
        let reforms = reforms_in_year(timelines, &c.procedure_code, c.year);
        IndexCell {
            geography: c.geography,
            year: c.year,
            procedure_code: c.procedure_code,
            province_name: province_name(geography, &province_code),
            province_code,
            dimension,
            group,
            n: c.n,
            n_timings: c.n_timings,
            n_pending: c.n_pending,
            n_complaints: c.n_complaints,
            n_verified: c.n_verified,
            suppressed: c.suppressed != 0,
            suppression: c.suppression,
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

    /// The cell's key as stored and paged: its province code, `all`, or `dimension=group`.
    pub(crate) fn area_key(&self) -> String {
        match (&self.dimension, &self.group) {
            (Some(dimension), Some(group)) => format!("{dimension}={group}"),
            _ => self.province_code.clone(),
        }
    }
}

/// The CSV columns, in the order of [`IndexCell`]'s fields.
pub(crate) const CSV_COLUMNS: [&str; 29] = [
    "geography",
    "year",
    "procedure_code",
    "province_code",
    "province_name",
    "dimension",
    "group",
    "n",
    "n_timings",
    "n_pending",
    "n_complaints",
    "n_verified",
    "suppressed",
    "suppression",
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

/// The name of a province code of `geography`; `Toàn quốc` (the whole country) for `all`.
pub(crate) fn province_name(geography: Geography, code: &str) -> String {
    if code == NATIONAL {
        return NATIONAL_NAME.to_string();
    }
    Provinces::get()
        .find(geography, code)
        .map(|p| p.name.clone())
        .unwrap_or_default()
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

/// Province composites of a year, as published: highest mean CBI first (the handler's and
/// the dashboard's), from the CBI the projector keeps for each cell.
pub(crate) async fn composites(
    state: &AppState,
    geography: Geography,
    year: i32,
) -> Result<Vec<ProvinceComposite>, ApiError> {
    let cells =
        redtape_store::cells::query(&state.db, geography.as_str(), Some(year), None, None).await?;
    let cbis = cells
        .iter()
        .filter_map(|c| Some((c.province_code.as_str(), c.cbi?)));
    Ok(redtape_index::cbi::composites(cbis)
        .into_iter()
        .map(|c| ProvinceComposite {
            province_name: province_name(geography, &c.province),
            province_code: c.province,
            mean_cbi: rounding::cbi(c.mean_cbi),
            procedures: c.procedures,
        })
        .collect())
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
    /// `primary`, `secondary` or null, as in the indices (methodology §4).
    pub suppression: Option<String>,
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
                suppression: c.suppression.clone(),
                median_working_days: c.median_days.map(rounding::days),
                median_working_days_change: change::absolute(
                    c.median_days,
                    prev(|b| b.median_days),
                )
                .map(rounding::days),
                median_working_days_change_pct: change::percent(
                    c.median_days,
                    prev(|b| b.median_days),
                )
                .map(rounding::percent),
                median_scm_cost_vnd: c.median_cost.map(rounding::vnd),
                median_scm_cost_change_vnd: change::absolute(
                    c.median_cost,
                    prev(|b| b.median_cost),
                )
                .map(rounding::vnd),
                median_scm_cost_change_pct: change::percent(c.median_cost, prev(|b| b.median_cost))
                    .map(rounding::percent),
                on_time_rate: c.on_time_rate.map(rounding::rate),
                on_time_rate_change: change::absolute(c.on_time_rate, prev(|b| b.on_time_rate))
                    .map(rounding::rate),
                informal_payment_rate: c.informal_payment_rate.map(rounding::rate),
                informal_payment_rate_change: change::absolute(
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
