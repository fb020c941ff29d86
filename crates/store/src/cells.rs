//! The `index_cells` and `index_cbi` read models: what a cell is, which cells an observation
//! belongs to, how a stored cell is written and read. The statistics themselves come from
//! `redtape-index`; the projector keeps each cell's running state (`projector::cell_state`).

use redtape_index::area::{Area, Profile};
use redtape_index::calendar::WorkingCalendar;
use redtape_index::cell::{CellStats, CostInputs, Facts};
use redtape_index::suppression::{self, Breakdown, CellRef, Suppression, YearCells};
use redtape_index::tariff::HourlyTariffs;

use crate::observations::ProfileColumns;

/// A cell: (geography, year, procedure code, area): the area is a province code on that
/// geography, `all` (the national cell) or `dimension=group` (a breakdown cell), as
/// [`redtape_index::area::Area`] spells it. Stored in `index_cells.province_code`.
pub type CellKey = (String, i32, String, String);

/// The methodology's configuration.
#[derive(Debug, Clone)]
pub struct Methodology {
    pub calendar: WorkingCalendar,
    pub tariffs: HourlyTariffs,
    /// Suppression threshold (clamped to at least 3 by the index crate).
    pub k: usize,
}

impl Methodology {
    /// The built-in calendar, the default tariffs and k = 5.
    pub fn vietnam() -> Result<Self, crate::StoreError> {
        Ok(Self {
            calendar: WorkingCalendar::vietnam()
                .map_err(|e| crate::StoreError::Corrupt(e.to_string()))?,
            tariffs: HourlyTariffs::vietnam_minimum_wage(),
            k: redtape_index::cell::DEFAULT_K,
        })
    }
}

/// The cells an observation row belongs to: on vn-34 always, and on vn-63 too when it was
/// recorded on the old map (methodology §1), its province cell, the national cell (§3, 1.1)
/// and one group of each profile dimension (§7, 1.1); see [`redtape_index::area`].
pub fn keys(
    geography: &str,
    province_code: &str,
    province_vn34: &str,
    year: i32,
    procedure: &str,
    profile: &Profile<'_>,
) -> Vec<CellKey> {
    let mut provinces = vec![("vn-34", province_vn34)];
    if geography == "vn-63" {
        provinces.push(("vn-63", province_code));
    }
    let mut keys = Vec::with_capacity(6 * provinces.len());
    for (geography, province) in provinces {
        keys.extend(Area::of_observation(province, profile).iter().map(|area| {
            (
                geography.to_string(),
                year,
                procedure.to_string(),
                area.key(),
            )
        }));
    }
    keys
}

/// An empty running cell for `key`: a province cell keeps its observations exactly (it is
/// what catches a state that drifted from the tables); national and breakdown cells, which
/// sum observations held by province cells too, keep only their costs, so 1.1's six or
/// twelve cells per observation cost less than twice 1.0's one or two (docs/benchmarks.md,
/// issue 14).
pub(crate) fn running_cell(key: &CellKey) -> redtape_index::cell::running::RunningCell {
    if redtape_index::area::is_province_key(&key.3) {
        redtape_index::cell::running::RunningCell::new()
    } else {
        redtape_index::cell::running::RunningCell::summing()
    }
}

/// The observation columns a cell needs.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub(crate) struct CellRow {
    pub kind: String,
    pub submitted_on: Option<chrono::NaiveDate>,
    pub completed_on: Option<chrono::NaiveDate>,
    pub year: i32,
    pub official_fees: Option<i64>,
    pub unofficial_payments: Option<i64>,
    pub external_services: Option<i64>,
    pub staff_hours: Option<f64>,
    pub visits: Option<i32>,
    pub status: String,
}

impl CellRow {
    /// The row of an observation held in memory (a rebuild).
    pub(crate) fn of(c: &crate::observations::ReportColumns, status: &str) -> CellRow {
        CellRow {
            status: status.to_string(),
            kind: c.kind.to_string(),
            submitted_on: c.submitted_on,
            completed_on: c.completed_on,
            year: c.year,
            official_fees: c.official_fees,
            unofficial_payments: c.unofficial_payments,
            external_services: c.external_services,
            staff_hours: c.staff_hours,
            visits: c.visits,
        }
    }
}

/// What the cells need of an observation row: where it belongs and what it measures.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub(crate) struct Placed {
    pub geography: String,
    pub province_code: String,
    pub province_vn34: String,
    pub procedure_code: String,
    #[sqlx(flatten)]
    pub row: CellRow,
    /// The profile recorded with the filing (§7), which picks the breakdown cells.
    #[sqlx(flatten)]
    pub profile: ProfileColumns,
}

/// The columns of [`Placed`]; callers add the WHERE clause.
pub(crate) const SELECT_PLACED: &str = "SELECT geography, province_code, province_vn34, \
    procedure_code, kind, submitted_on, completed_on, year, official_fees, \
    unofficial_payments, external_services, staff_hours, visits, status, size_class, \
    sector_section, woman_owned, ethnic_minority_owned FROM observations";

impl Placed {
    /// The row an event writes, as the cells see it.
    pub(crate) fn of(
        c: &crate::observations::ReportColumns,
        status: &str,
        profile: ProfileColumns,
    ) -> Placed {
        Placed {
            geography: c.geography.to_string(),
            province_code: c.province_code.clone(),
            province_vn34: c.province_vn34.clone(),
            procedure_code: c.procedure_code.clone(),
            row: CellRow::of(c, status),
            profile,
        }
    }

    /// Counts in the indices (methodology §1).
    pub(crate) fn included(&self) -> bool {
        included(&self.row.status)
    }

    /// The cells the observation belongs to.
    pub(crate) fn keys(&self) -> Vec<CellKey> {
        keys(
            &self.geography,
            &self.province_code,
            &self.province_vn34,
            self.row.year,
            &self.procedure_code,
            &self.profile.as_index(),
        )
    }
}

/// An observation's measures (methodology §2): elapsed working days, on time, SCM cost,
/// informal payment. The same function serves the cells and the open microdata.
pub(crate) fn measure(
    r: &CellRow,
    timeline: Option<&redtape_domain::procedure_terms::ProcedureTimeline>,
    methodology: &Methodology,
) -> redtape_index::cell::Measures {
    let facts = Facts {
        is_complaint: r.kind == "complaint",
        submitted_on: r.submitted_on,
        completed_on: r.completed_on,
        statutory_limit: r
            .submitted_on
            .and_then(|d| timeline.and_then(|t| t.limit_on(d))),
        year: r.year,
        costs: CostInputs {
            official_fees: r.official_fees,
            unofficial_payments: r.unofficial_payments,
            external_services: r.external_services,
            staff_hours: r.staff_hours,
        },
        visits: r.visits.and_then(|v| u16::try_from(v).ok()),
        verified: r.status == redtape_domain::submission::Status::Verified.as_str(),
    };
    redtape_index::cell::measures(&facts, &methodology.calendar, &methodology.tariffs)
}

/// The seed key of a cell's bootstrap ([`redtape_index::cell::seed_key`]).
pub(crate) fn seed_key(key: &CellKey) -> String {
    redtape_index::cell::seed_key(&key.0, key.1, &key.2, &key.3)
}

/// The cells of one (year, procedure), both geographies, that §4's secondary suppression
/// hides (1.1), decided from each cell's n by [`redtape_index::suppression::decide_year`]:
/// this only says which cell is which (a vn-63 province's successor comes from the reference
/// data) and lists provinces by code and groups in §7's order, the tie-break orders.
pub(crate) fn secondary<'a>(
    cells: impl IntoIterator<Item = (&'a CellKey, usize)>,
    k: usize,
) -> std::collections::BTreeSet<CellKey> {
    use redtape_domain::geography::{Geography, Provinces};
    let mut year_cells = YearCells::default();
    let mut groups: std::collections::BTreeMap<(String, redtape_index::area::Dimension), Vec<_>> =
        Default::default();
    let mut year_procedure = None;
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    for (key, n) in cells {
        year_procedure.get_or_insert_with(|| (key.1, key.2.clone()));
        let vn63 = key.0 == Geography::Vn63.as_str();
        match Area::parse(&key.3) {
            Some(Area::Province(code)) if vn63 => {
                let successor = Provinces::get()
                    .find(Geography::Vn63, &code)
                    .and_then(|p| p.successor.as_ref())
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default();
                year_cells.vn63.push((code, count(n), successor));
            }
            Some(Area::Province(code)) => year_cells.vn34.push((code, count(n))),
            Some(Area::National) if vn63 => year_cells.vn63_national = Some(count(n)),
            Some(Area::National) => year_cells.vn34_national = Some(count(n)),
            Some(Area::Group(dimension, group)) => groups
                .entry((key.0.clone(), dimension))
                .or_default()
                .push((dimension.rank(group).unwrap_or(usize::MAX), group, count(n))),
            None => {}
        }
    }
    let Some((year, procedure)) = year_procedure else {
        return Default::default();
    };
    year_cells.vn63.sort();
    year_cells.vn34.sort();
    for ((geography, dimension), mut members) in groups {
        members.sort();
        year_cells.breakdowns.push(Breakdown {
            geography,
            dimension: dimension.as_str().to_string(),
            groups: members
                .into_iter()
                .map(|(_, group, n)| (group.to_string(), n))
                .collect(),
        });
    }
    let threshold = count(k.max(redtape_index::cell::MIN_K));
    suppression::decide_year(&year_cells, threshold)
        .into_iter()
        .filter(|(_, s)| *s == Some(Suppression::Secondary))
        .map(|(cell, _)| {
            let (geography, area) = match cell {
                CellRef::Province(geography, code) => (geography, code),
                CellRef::National(geography) => (geography, Area::National.key()),
                CellRef::Group(geography, dimension, group) => {
                    (geography, format!("{dimension}={group}"))
                }
            };
            (geography, year, procedure.clone(), area)
        })
        .collect()
}

/// `index_cells` rows that are a province's or the nation's, not a breakdown group's: what
/// `/v1/indices` lists.
pub const NOT_BREAKDOWN_SQL: &str = "province_code NOT LIKE '%=%'";

/// `index_cells` rows that are a province's: what the CBI ranks.
pub const PROVINCE_ONLY_SQL: &str = "province_code <> 'all' AND province_code NOT LIKE '%=%'";

/// The columns of `index_cells`, in the order [`bind_cell!`] binds them.
pub(crate) const INSERT: &str = "INSERT INTO index_cells (geography, year, procedure_code, \
    province_code, n, n_timings, n_pending, n_complaints, suppressed, median_days, p90_days, \
    median_days_ci_low, median_days_ci_high, median_cost, median_cost_ci_low, \
    median_cost_ci_high, median_visits, on_time_rate, informal_payment_rate, \
    methodology_version, n_verified, suppression, intervals_due) ";

/// Appended to a multi-row [`INSERT`]: a recomputed cell replaces the stored one.
pub(crate) const ON_CONFLICT: &str = " ON CONFLICT (geography, year, procedure_code, \
    province_code) DO UPDATE SET n = excluded.n, n_timings = excluded.n_timings, \
    n_pending = excluded.n_pending, n_complaints = excluded.n_complaints, \
    suppressed = excluded.suppressed, median_days = excluded.median_days, \
    p90_days = excluded.p90_days, median_days_ci_low = excluded.median_days_ci_low, \
    median_days_ci_high = excluded.median_days_ci_high, median_cost = excluded.median_cost, \
    median_cost_ci_low = excluded.median_cost_ci_low, \
    median_cost_ci_high = excluded.median_cost_ci_high, median_visits = excluded.median_visits, \
    on_time_rate = excluded.on_time_rate, informal_payment_rate = excluded.informal_payment_rate, \
    methodology_version = excluded.methodology_version, n_verified = excluded.n_verified, \
    suppression = excluded.suppression, intervals_due = excluded.intervals_due";

/// Cells per multi-row statement: 23 binds each, far below both drivers' bind limits.
pub(crate) const CHUNK: usize = 1000;

/// Binds a cell's first 22 columns onto a row of a multi-row insert (the caller binds
/// `intervals_due`).
macro_rules! bind_cell {
    ($row:expr, $key:expr, $stats:expr) => {{
        let as_i32 = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        let (key, stats) = ($key, $stats);
        $row.push_bind(&key.0)
            .push_bind(key.1)
            .push_bind(&key.2)
            .push_bind(&key.3)
            .push_bind(as_i32(stats.n))
            .push_bind(as_i32(stats.n_timings))
            .push_bind(as_i32(stats.n_pending))
            .push_bind(as_i32(stats.n_complaints))
            .push_bind(i32::from(stats.suppressed))
            .push_bind(stats.median_days)
            .push_bind(stats.p90_days)
            .push_bind(stats.median_days_ci.map(|c| c.low))
            .push_bind(stats.median_days_ci.map(|c| c.high))
            .push_bind(stats.median_cost)
            .push_bind(stats.median_cost_ci.map(|c| c.low))
            .push_bind(stats.median_cost_ci.map(|c| c.high))
            .push_bind(stats.median_visits)
            .push_bind(stats.on_time_rate)
            .push_bind(stats.informal_payment_rate)
            .push_bind(redtape_index::METHODOLOGY_VERSION)
            .push_bind(as_i32(stats.n_verified))
            .push_bind(stats.suppression.map(|s| s.as_str()))
    }};
}
pub(crate) use bind_cell;

pub(crate) const DELETE: &str = "DELETE FROM index_cells WHERE geography = $1 AND year = $2 \
    AND procedure_code = $3 AND province_code = $4";

/// A cell to write: its key, statistics, and whether its intervals are due a refresh.
pub(crate) type Published = (CellKey, redtape_index::cell::CellStats, bool);

/// A group of cells compared by the CBI: (geography, year, procedure code).
pub type GroupKey = (String, i32, String);

pub(crate) fn group_of(key: &CellKey) -> GroupKey {
    (key.0.clone(), key.1, key.2.clone())
}

/// What the CBI needs of one cell of a group: (province, suppressed, median days, median
/// cost, informal payment rate, on-time rate).
pub(crate) type GroupRow = (
    String,
    i32,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
);

pub(crate) const DELETE_CBI: &str =
    "DELETE FROM index_cbi WHERE geography = $1 AND year = $2 AND procedure_code = $3";

pub(crate) const INSERT_CBI: &str = "INSERT INTO index_cbi (geography, year, procedure_code, \
    province_code, cbi, cbi_rank, score_days, score_cost, score_informal, score_on_time) ";

/// One province's stored CBI: the index, its rank in the group and the four scaled
/// indicators it averages (methodology §5).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CbiRow {
    pub province: String,
    pub cbi: f64,
    pub rank: i32,
    pub scores: [Option<f64>; 4],
}

/// The stored CBI of every ranked province of a group (rows in province order).
pub(crate) fn rank_group(rows: &[GroupRow]) -> Vec<CbiRow> {
    let cells: Vec<redtape_index::cbi::ProvinceCell> = rows
        .iter()
        .map(|r| redtape_index::cbi::ProvinceCell {
            province: r.0.clone(),
            suppressed: r.1 != 0,
            median_days: r.2,
            median_cost: r.3,
            informal_payment_rate: r.4,
            on_time_rate: r.5,
        })
        .collect();
    redtape_index::cbi::compute(&cells)
        .into_iter()
        .filter_map(|r| {
            Some(CbiRow {
                rank: i32::try_from(r.rank?).ok()?,
                cbi: r.cbi?,
                scores: r.scores,
                province: r.province,
            })
        })
        .collect()
}

/// The CBI input of a cell's statistics.
pub(crate) fn group_row(province: &str, s: &CellStats) -> GroupRow {
    (
        province.to_string(),
        i32::from(s.suppressed),
        s.median_days,
        s.median_cost,
        s.informal_payment_rate,
        s.on_time_rate,
    )
}

/// A stored cell, for the query API, tests and rebuild comparisons.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct CellRecord {
    pub geography: String,
    pub year: i32,
    pub procedure_code: String,
    pub province_code: String,
    pub n: i32,
    pub n_timings: i32,
    pub n_pending: i32,
    pub n_complaints: i32,
    pub suppressed: i32,
    pub median_days: Option<f64>,
    pub p90_days: Option<f64>,
    pub median_days_ci_low: Option<f64>,
    pub median_days_ci_high: Option<f64>,
    pub median_cost: Option<f64>,
    pub median_cost_ci_low: Option<f64>,
    pub median_cost_ci_high: Option<f64>,
    pub median_visits: Option<f64>,
    pub on_time_rate: Option<f64>,
    pub informal_payment_rate: Option<f64>,
    pub methodology_version: String,
    pub n_verified: i32,
    /// `primary` or `secondary` (§4, 1.1) when suppressed; null when published, and on the
    /// cells of version 1.0, which had no secondary suppression.
    pub suppression: Option<String>,
    /// Unrounded CBI and rank within the cell's year and procedure; null when suppressed.
    pub cbi: Option<f64>,
    pub cbi_rank: Option<i32>,
    /// The scaled indicators the CBI averages, 0-100, unrounded; null when suppressed.
    pub score_days: Option<f64>,
    pub score_cost: Option<f64>,
    pub score_informal: Option<f64>,
    pub score_on_time: Option<f64>,
}

/// Province and national cells (not breakdown groups: see [`breakdown_page`]) matching
/// optional filters, in key order.
pub async fn query(
    db: &crate::Db,
    geography: &str,
    year: Option<i32>,
    procedure: Option<&str>,
    province: Option<&str>,
) -> Result<Vec<CellRecord>, crate::StoreError> {
    let areas = Areas::Indices(province);
    query_page(db, geography, year, procedure, areas, None, None).await
}

/// Like [`query`], but for any [`Areas`], and only the cells after `after` (a key: year,
/// procedure, area) and at most `limit` of them: a keyset page read as a page, not filtered
/// from all the cells. Breakdown cells come in key order too: year, procedure, then
/// `dimension=group` by name (callers that show them put the groups in §7's order,
/// [`redtape_index::area::Dimension::groups`]).
pub async fn query_page(
    db: &crate::Db,
    geography: &str,
    year: Option<i32>,
    procedure: Option<&str>,
    areas: Areas<'_>,
    after: Option<&(i32, String, String)>,
    limit: Option<i64>,
) -> Result<Vec<CellRecord>, crate::StoreError> {
    let filter = Filter {
        geography,
        year,
        procedure,
        areas,
    };
    select_page(db, &filter, after, limit).await
}

/// Which cells of a geography a page reads.
struct Filter<'a> {
    geography: &'a str,
    year: Option<i32>,
    procedure: Option<&'a str>,
    areas: Areas<'a>,
}

/// The kind of cells a page reads.
#[derive(Debug, Clone, Copy)]
pub enum Areas<'a> {
    /// Province and national cells, or one province's (or `all`, the national one).
    Indices(Option<&'a str>),
    /// Breakdown cells (§7), of one dimension or all.
    Breakdowns(Option<redtape_index::area::Dimension>),
}

/// Only the filters given become SQL conditions: a generic `($2 IS NULL OR year = $2)` form
/// keeps both databases from using the primary key, and a one-cell query then scans every
/// cell (measured: 0.4 ms per request with 2,000 cells, most of it in the scan).
async fn select_page(
    db: &crate::Db,
    filter: &Filter<'_>,
    after: Option<&(i32, String, String)>,
    limit: Option<i64>,
) -> Result<Vec<CellRecord>, crate::StoreError> {
    let prefix = match filter.areas {
        Areas::Breakdowns(Some(d)) => Some(format!("{}=%", d.as_str())),
        Areas::Breakdowns(None) => Some("%=%".to_string()),
        Areas::Indices(_) => None,
    };
    macro_rules! select {
        ($database:ty, $pool:expr) => {{
            let mut sql = sqlx::QueryBuilder::<$database>::new(
                "SELECT c.*, b.cbi, b.cbi_rank, b.score_days, b.score_cost, b.score_informal, \
                 b.score_on_time FROM index_cells c LEFT JOIN index_cbi b \
                 ON b.geography = c.geography AND b.year = c.year \
                 AND b.procedure_code = c.procedure_code AND b.province_code = c.province_code \
                 WHERE c.geography = ",
            );
            sql.push_bind(filter.geography);
            match (&filter.areas, &prefix) {
                (Areas::Indices(province), _) => {
                    sql.push(" AND c.").push(NOT_BREAKDOWN_SQL);
                    if let Some(province) = province {
                        sql.push(" AND c.province_code = ").push_bind(*province);
                    }
                }
                (Areas::Breakdowns(_), Some(prefix)) => {
                    sql.push(" AND c.province_code LIKE ")
                        .push_bind(prefix.as_str());
                }
                (Areas::Breakdowns(_), None) => {}
            }
            if let Some(year) = filter.year {
                sql.push(" AND c.year = ").push_bind(year);
            }
            if let Some(procedure) = filter.procedure {
                sql.push(" AND c.procedure_code = ").push_bind(procedure);
            }
            if let Some((y, p, v)) = after {
                sql.push(" AND (c.year, c.procedure_code, c.province_code) > (")
                    .push_bind(*y)
                    .push(", ")
                    .push_bind(p.as_str())
                    .push(", ")
                    .push_bind(v.as_str())
                    .push(")");
            }
            sql.push(" ORDER BY c.year, c.procedure_code, c.province_code");
            if let Some(limit) = limit {
                sql.push(" LIMIT ").push_bind(limit);
            }
            sql.build_query_as::<CellRecord>().fetch_all($pool).await?
        }};
    }
    Ok(match db {
        crate::Db::Postgres(pool) => select!(sqlx::Postgres, pool),
        crate::Db::Sqlite(pool) => select!(sqlx::Sqlite, pool),
    })
}

/// The first and last year with any cell, if there is one (the temporal coverage of the
/// live datasets).
pub async fn year_range(db: &crate::Db) -> Result<Option<(i32, i32)>, crate::StoreError> {
    let (first, last): (Option<i32>, Option<i32>) = crate::on_pool!(db, pool =>
        sqlx::query_as("SELECT min(year), max(year) FROM index_cells").fetch_one(pool).await)?;
    Ok(first.zip(last))
}

/// Whether an observation with this stored status counts (`Status::INCLUDED`).
pub(crate) fn included(status: &str) -> bool {
    redtape_domain::submission::Status::parse(status).is_some_and(|s| s.is_included())
}

/// `<column> IN (...)` for the statuses that count, from `Status::INCLUDED`, for the queries
/// that read included observations.
pub(crate) fn included_sql(column: &str) -> String {
    let list: Vec<String> = redtape_domain::submission::Status::INCLUDED
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    format!("{column} IN ({})", list.join(", "))
}

#[cfg(test)]
mod tests {
    use chrono::Datelike;

    /// Methodology §1: received and verified observations count; rejected and withdrawn ones
    /// do not; the SQL and the Rust rule come from the same list.
    #[test]
    fn one_inclusion_rule_in_sql_and_in_memory() {
        assert_eq!(
            super::included_sql("o.status"),
            "o.status IN ('received', 'verified')"
        );
        let counted: Vec<_> = ["received", "verified", "rejected", "withdrawn", "other"]
            .into_iter()
            .filter(|s| super::included(s))
            .collect();
        assert_eq!(counted, ["received", "verified"]);
    }

    /// redtape must not accept an observation the default methodology cannot measure.
    #[test]
    fn the_default_methodology_covers_every_accepted_year() {
        let first = redtape_domain::submission::report::earliest_date().year();
        let methodology = super::Methodology::vietnam().unwrap();
        assert!(redtape_index::calendar::VIETNAM_YEARS.contains(&first));
        for year in first..=*redtape_index::calendar::VIETNAM_YEARS.end() {
            assert!(
                methodology.tariffs.for_year(year).is_some(),
                "no tariff for {year}"
            );
        }
    }
}
