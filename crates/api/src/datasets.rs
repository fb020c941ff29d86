//! Every published dataset and its columns, with each column's type, unit, definition and the
//! methodology section it comes from: the one source of a dataset's columns, for the data
//! dictionary (`crate::open::dictionary`), the catalogue, and the CSV header of every list
//! (`crate::page`). A test ties each dataset's columns to what the endpoint really emits, so
//! the dictionary cannot drift from the data.

use serde::Serialize;
use utoipa::ToSchema;

/// One column of a dataset.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Column {
    #[schema(example = "median_working_days")]
    pub name: &'static str,
    /// string, integer, number, boolean, date or datetime (RFC 3339, UTC).
    #[schema(example = "number")]
    pub r#type: &'static str,
    /// working days, VND, share (0-1), index (0-100), count, days, or null for none.
    #[schema(example = "working days")]
    pub unit: Option<&'static str>,
    #[schema(
        example = "Median of the elapsed working days of the cell's completed timings, to 0.1."
    )]
    pub definition: &'static str,
    /// Section of docs/methodology.md the value comes from, when it is computed.
    #[schema(example = "§3")]
    pub methodology: Option<&'static str>,
    /// Whether the value may be null (suppressed cells, missing inputs).
    pub nullable: bool,
}

// A list endpoint names its dataset with one of these (not a string), so a dataset without a
// dictionary entry cannot slip through with an empty CSV header.
/// The name of a published dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetId {
    Indices,
    Breakdowns,
    Rankings,
    ProvinceComposites,
    Trends,
    Responses,
    Releases,
    Observations,
    Procedures,
    Provinces,
}

impl DatasetId {
    pub const ALL: [DatasetId; 10] = [
        DatasetId::Indices,
        DatasetId::Breakdowns,
        DatasetId::Rankings,
        DatasetId::ProvinceComposites,
        DatasetId::Trends,
        DatasetId::Responses,
        DatasetId::Releases,
        DatasetId::Observations,
        DatasetId::Procedures,
        DatasetId::Provinces,
    ];

    /// The name in the dictionary, the catalogue and URLs' fragments.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetId::Indices => "indices",
            DatasetId::Breakdowns => "breakdowns",
            DatasetId::Rankings => "rankings",
            DatasetId::ProvinceComposites => "province-composites",
            DatasetId::Trends => "trends",
            DatasetId::Responses => "responses",
            DatasetId::Releases => "releases",
            DatasetId::Observations => "observations",
            DatasetId::Procedures => "procedures",
            DatasetId::Provinces => "provinces",
        }
    }
}

/// One dataset: where it is, and its columns.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Dataset {
    #[schema(example = "indices")]
    pub id: DatasetId,
    #[schema(example = "Compliance-burden index cells")]
    pub title: &'static str,
    pub description: &'static str,
    /// The URL of the dataset (filters as query parameters).
    #[schema(example = "/v1/indices")]
    pub url: &'static str,
    pub columns: Vec<Column>,
}

const fn col(
    name: &'static str,
    r#type: &'static str,
    unit: Option<&'static str>,
    definition: &'static str,
    methodology: Option<&'static str>,
    nullable: bool,
) -> Column {
    Column {
        name,
        r#type,
        unit,
        definition,
        methodology,
        nullable,
    }
}

const DAYS: Option<&str> = Some("working days");
const VND: Option<&str> = Some("VND");
const SHARE: Option<&str> = Some("share (0-1)");
const INDEX: Option<&str> = Some("index (0-100)");
const COUNT: Option<&str> = Some("count");
const S1: Option<&str> = Some("§1");
const S3: Option<&str> = Some("§3");
const S4: Option<&str> = Some("§4");
const S5: Option<&str> = Some("§5");

/// Columns that name a cell, shared by the cell datasets.
fn cell_key() -> Vec<Column> {
    vec![
        col("geography", "string", None, "The provincial map: vn-34 (from 2025-07-01; every year, older observations mapped to their successor province) or vn-63 (observations dated before 2025-07-01).", S1, false),
        col("year", "integer", None, "The year the observations count in: a completed timing's completion year, a pending timing's submission year, a complaint's experience year.", S1, false),
        col("procedure_code", "string", None, "National administrative procedure code (see /v1/procedures).", None, false),
        col("province_code", "string", None, "GSO province code on the geography (see /v1/provinces?geography=...), or `all` for a national cell and a breakdown cell (every province of the geography).", Some("§3, §7"), false),
        col("province_name", "string", None, "The province's name on that geography; `Toàn quốc` (the whole country) for `all`.", None, false),
        col("dimension", "string", None, "A breakdown cell's firm-profile dimension: size_class, sector_section, woman_owned or ethnic_minority_owned; null for province and national cells.", Some("§7"), true),
        col("group", "string", None, "A breakdown cell's group: micro/small/medium/large, a VSIC 2018 section A-U, or yes/no; `unknown` for filers that did not declare it. Null for province and national cells.", Some("§7"), true),
    ]
}

/// The columns of a cell row, in the order of the CSV (`indices::CSV_COLUMNS`).
pub fn cell_columns() -> Vec<Column> {
    let mut c = cell_key();
    c.extend([
        col("n", "integer", COUNT, "Included observations (received or verified submissions): completed and pending timings and complaints.", S3, false),
        col("n_timings", "integer", COUNT, "Completed timings.", S3, false),
        col("n_pending", "integer", COUNT, "Timings not completed yet.", S3, false),
        col("n_complaints", "integer", COUNT, "Complaints.", S3, false),
        col("n_verified", "integer", COUNT, "Observations a reform-office officer verified; verified and received observations weigh the same.", S3, false),
        col("suppressed", "boolean", None, "The cell's statistics are withheld (see suppression): counts are published, every statistic is null.", S4, false),
        col("suppression", "string", None, "primary: n is below the disclosure threshold k (5 by default); secondary: published, the cell would let a suppressed sibling or total be recovered by subtraction from published counts and rates. Null when published.", S4, true),
        col("median_working_days", "number", DAYS, "Median of the elapsed working days of completed timings (working days after submission up to and including completion), to 0.1.", Some("§2, §3"), true),
        col("median_working_days_ci_low", "number", DAYS, "Lower end of the 95% bootstrap confidence interval of the median working days.", S3, true),
        col("median_working_days_ci_high", "number", DAYS, "Upper end of that interval.", S3, true),
        col("p90_working_days", "number", DAYS, "90th percentile of the elapsed working days of completed timings.", S3, true),
        col("median_scm_cost_vnd", "number", VND, "Median Standard Cost Model cost per case (official fees + informal payments + external services + staff hours x the year's hourly tariff), to the nearest 1,000 VND.", Some("§2, §3"), true),
        col("median_scm_cost_ci_low_vnd", "number", VND, "Lower end of the 95% bootstrap confidence interval of the median cost.", S3, true),
        col("median_scm_cost_ci_high_vnd", "number", VND, "Upper end of that interval.", S3, true),
        col("median_visits", "number", COUNT, "Median number of visits to an office, over observations that report it.", S3, true),
        col("on_time_rate", "number", SHARE, "Share of completed timings within the statutory limit in force on their submission date, to 0.001.", Some("§2, §3"), true),
        col("informal_payment_rate", "number", SHARE, "Share of observations with an informal payment (unofficial payments above 0), to 0.001.", Some("§2, §3"), true),
        col("cbi", "number", INDEX, "Compliance Burden Index, 0-100, higher = lighter burden, relative to the other non-suppressed provinces of the same year and procedure, to 0.1.", S5, true),
        col("cbi_rank", "integer", None, "Rank by CBI within the year and procedure (1 = lightest burden; ties share a rank).", S5, true),
        col("reforms_in_year", "string", None, "Dates (;-separated) on which a reform of the procedure's statutory terms took effect in this year; null when none.", None, true),
        col("methodology_version", "string", None, "The methodology version that computed the figures.", None, false),
        col("provisional", "boolean", None, "true for live figures; false in a published annual release.", Some("§6"), false),
    ]);
    c
}

/// Every dataset redtape publishes.
pub fn datasets() -> Vec<Dataset> {
    vec![
        Dataset {
            id: DatasetId::Indices,
            title: "Compliance-burden index cells",
            description: "Per year, procedure and province: how long the procedure took, what it cost, how often it was on time and involved informal payments, with confidence intervals and the CBI. Live and provisional.",
            url: "/v1/indices",
            columns: cell_columns(),
        },
        Dataset {
            id: DatasetId::Breakdowns,
            title: "Compliance-burden breakdowns by firm profile",
            description: "Per year and procedure, nationally: the same figures for groups of firms by size class, VSIC sector section, women-owned and ethnic-minority-owned (each with `unknown` for undeclared), from the profile each filer had when it filed. The groups of a dimension add up to the national cell. No CBI. Live and provisional.",
            url: "/v1/indices/breakdowns",
            columns: cell_columns(),
        },
        Dataset {
            id: DatasetId::Rankings,
            title: "Province rankings by CBI",
            description: "For one year and procedure: each province's CBI, its four indicator scores and its rank.",
            url: "/v1/indices/rankings",
            columns: vec![
                col("rank", "integer", None, "1 = lightest burden; ties share a rank; null for suppressed provinces.", S5, true),
                col("province_code", "string", None, "GSO province code on the geography.", None, false),
                col("province_name", "string", None, "The province's name.", None, false),
                col("cbi", "number", INDEX, "Compliance Burden Index, to 0.1: 0.3 s1 + 0.3 s2 + 0.2 s3 + 0.2 s4 (weights re-normalised over the indicators present).", S5, true),
                col("score_days", "number", INDEX, "s1: median working days scaled across the compared provinces (100 = fastest).", S5, true),
                col("score_cost", "number", INDEX, "s2: median SCM cost scaled (100 = cheapest).", S5, true),
                col("score_informal", "number", INDEX, "s3: informal payment rate scaled (100 = lowest).", S5, true),
                col("score_on_time", "number", INDEX, "s4: late rate (1 - on-time rate) scaled (100 = most punctual).", S5, true),
                col("n", "integer", COUNT, "The cell's included observations.", S3, false),
                col("suppressed", "boolean", None, "Suppressed (primary or secondary, methodology §4): not ranked.", S4, false),
                col("suppression", "string", None, "primary, secondary or null, as in the indices dataset.", S4, true),
            ],
        },
        Dataset {
            id: DatasetId::ProvinceComposites,
            title: "Province composites",
            description: "For one year: each province's mean CBI over the procedures in which it is not suppressed.",
            url: "/v1/indices/provinces",
            columns: vec![
                col("province_code", "string", None, "GSO province code on the geography.", None, false),
                col("province_name", "string", None, "The province's name.", None, false),
                col("mean_cbi", "number", INDEX, "Mean of the province's CBI over the procedures it is ranked in, to 0.1.", S5, false),
                col("procedures", "integer", COUNT, "How many procedures that mean covers.", S5, false),
            ],
        },
        Dataset {
            id: DatasetId::Trends,
            title: "Trends by year",
            description: "For one procedure and province: the absolute figures year by year, changes from the previous year, and the reforms that took effect each year.",
            url: "/v1/indices/trends",
            columns: vec![
                col("year", "integer", None, "The year.", S1, false),
                col("n", "integer", COUNT, "Included observations.", S3, false),
                col("suppressed", "boolean", None, "Statistics withheld (see suppression).", S4, false),
                col("suppression", "string", None, "primary, secondary or null, as in the indices dataset.", S4, true),
                col("median_working_days", "number", DAYS, "As in the indices dataset.", S3, true),
                col("median_working_days_change", "number", DAYS, "Difference from the previous year, to 0.1; null when either year has no value.", S5, true),
                col("median_working_days_change_pct", "number", Some("percent"), "Percentage change from the previous year, to 0.1.", S5, true),
                col("median_scm_cost_vnd", "number", VND, "As in the indices dataset.", S3, true),
                col("median_scm_cost_change_vnd", "number", VND, "Difference from the previous year, to 1,000 VND.", S5, true),
                col("median_scm_cost_change_pct", "number", Some("percent"), "Percentage change from the previous year, to 0.1.", S5, true),
                col("on_time_rate", "number", SHARE, "As in the indices dataset.", S3, true),
                col("on_time_rate_change", "number", SHARE, "Difference from the previous year, to 0.001.", S5, true),
                col("informal_payment_rate", "number", SHARE, "As in the indices dataset.", S3, true),
                col("informal_payment_rate_change", "number", SHARE, "Difference from the previous year, to 0.001.", S5, true),
                col("reforms", "array", None, "Reforms of the procedure that took effect that year: effective_from, statutory_working_days, legal_basis.", None, false),
            ],
        },
        Dataset {
            id: DatasetId::Responses,
            title: "Government response statistics",
            description: "Per agency and province: submissions answered, responses posted, latest statuses, and the median days to a first response. Never a filer, a submission or a response's text.",
            url: "/v1/responses",
            columns: vec![
                col("agency", "string", None, "The agency that answered.", None, false),
                col("province_code", "string", None, "vn-34 province of the answered submissions.", S1, false),
                col("province_name", "string", None, "The province's name.", None, false),
                col("submissions", "integer", COUNT, "Submissions the agency answered at least once.", None, false),
                col("responses", "integer", COUNT, "Responses posted.", None, false),
                col("latest_status", "object", COUNT, "Answered submissions by the status of the agency's latest response: acknowledged, in_progress, resolved, not_actionable.", None, false),
                col("median_days_to_first_response", "number", Some("days"), "Median calendar days from filing to the agency's first response, to 0.1; null below the disclosure threshold.", S4, true),
                col("suppressed", "boolean", None, "Fewer answered submissions than the disclosure threshold.", S4, false),
            ],
        },
        Dataset {
            id: DatasetId::Releases,
            title: "Annual releases",
            description: "Each year a reform office published, by revision: a frozen CSV (with its SHA-256) and JSON of every cell of the year, byte-identical forever. Cite a release by its CSV URL and SHA-256.",
            url: "/v1/releases",
            columns: vec![
                col("year", "integer", None, "The year released.", Some("§6"), false),
                col("revision", "integer", None, "1 for the first publication; each correction adds one.", Some("§6"), false),
                col("superseded", "boolean", None, "A later revision of the year exists.", Some("§6"), false),
                col("methodology_version", "string", None, "The methodology that computed the figures.", Some("§6"), false),
                col("generated_at", "datetime", None, "When the revision was frozen.", Some("§6"), false),
                col("sha256", "string", None, "SHA-256 of the CSV's bytes, lower-case hex.", Some("§6"), false),
                col("cell_count", "integer", COUNT, "Cells in the release.", Some("§6"), false),
                col("changed_cells", "integer", COUNT, "Cells that differ from the previous revision.", Some("§6"), false),
                col("csv_url", "string", None, "The CSV (the indices columns, provisional false).", Some("§6"), false),
                col("json_url", "string", None, "The JSON rendering of the same cells.", Some("§6"), false),
                col("url", "string", None, "The revision's metadata and changelog.", Some("§6"), false),
            ],
        },
        Dataset {
            id: DatasetId::Observations,
            title: "Anonymised observations (microdata)",
            description: "One coarsened row per included observation of one year and procedure, from published province cells only (neither primary nor secondary suppression), with the filer profile recorded at filing, k-anonymous over province and profile. No narrative, business, enterprise code, id or exact date.",
            url: "/v1/open/observations",
            columns: vec![
                col("year", "integer", None, "The year the observation counts in.", S1, false),
                col("procedure_code", "string", None, "National procedure code.", None, false),
                col("province_code", "string", None, "vn-34 province (observations on the old map count under their successor).", S1, false),
                col("province_name", "string", None, "The province's name.", None, false),
                col("kind", "string", None, "completed_timing, pending_timing or complaint.", S1, false),
                col("size_class", "string", None, "micro, small, medium or large: the size class the filer had declared when it filed; unknown when it had not, when that group's breakdown cell is suppressed, or where k-anonymity hid it (every combination of province and the four profile fields appears in at least k rows of the year and procedure).", Some("§4, §7"), false),
                col("sector_section", "string", None, "The VSIC 2018 sector section (A-U) declared when it filed, or unknown as for size_class.", Some("§4, §7"), false),
                col("woman_owned", "string", None, "yes or no: women own at least 51% of the charter capital and one of them manages the firm, as declared when it filed; or unknown as for size_class.", Some("§4, §7"), false),
                col("ethnic_minority_owned", "string", None, "yes or no: persons of Vietnam's ethnic minorities own at least 51%, as declared when it filed; or unknown as for size_class.", Some("§4, §7"), false),
                col("working_days", "integer", DAYS, "Elapsed working days (completed timings).", Some("§2"), true),
                col("scm_cost_vnd", "number", VND, "Standard Cost Model cost per case, to the nearest 1,000 VND; null without staff hours.", Some("§2"), true),
                col("on_time", "boolean", None, "Within the statutory limit in force on the submission date (completed timings).", Some("§2"), true),
                col("visits", "integer", COUNT, "Visits to an office, when reported.", Some("§2"), true),
                col("informal_payment", "boolean", None, "Unofficial payments above 0.", Some("§2"), false),
            ],
        },
        Dataset {
            id: DatasetId::Procedures,
            title: "Procedure catalogue",
            description: "Every registered administrative procedure with its statutory terms over time.",
            url: "/v1/procedures",
            columns: vec![
                col("code", "string", None, "National procedure code.", None, false),
                col("name_vi", "string", None, "Name in Vietnamese.", None, false),
                col("name_en", "string", None, "Name in English.", None, false),
                col("level", "string", None, "central, provincial or commune.", None, false),
                col("agency", "string", None, "The agency that handles it.", None, false),
                col("statutory_working_days", "integer", DAYS, "The current statutory time limit.", Some("§2"), false),
                col("official_fee_vnd", "integer", VND, "The current official fee where set nationally; null where provinces set it.", None, true),
                col("legal_basis", "string", None, "The law or decision that sets the current terms.", None, false),
                col("terms", "array", None, "Every period of statutory terms, oldest first (effective_from, statutory_working_days, official_fee_vnd, legal_basis).", Some("§2"), false),
                col("abolished_from", "date", None, "The day from which the procedure no longer exists, if abolished.", None, true),
            ],
        },
        Dataset {
            id: DatasetId::Provinces,
            title: "Provinces of both maps",
            description: "Vietnam's provinces before (vn-63) and after (vn-34) the merger of 2025-07-01.",
            url: "/v1/provinces",
            columns: vec![
                col("geography", "string", None, "vn-63 or vn-34.", S1, false),
                col("code", "string", None, "GSO province code on that map.", None, false),
                col("name", "string", None, "The province's name.", None, false),
                col("successor_code", "string", None, "For a vn-63 province: the vn-34 province it became.", S1, true),
            ],
        },
    ]
}

/// The column names of dataset `id`, in order (every id has an entry: a test checks it).
pub fn columns_of(id: DatasetId) -> Vec<&'static str> {
    datasets()
        .into_iter()
        .find(|d| d.id == id)
        .map(|d| d.columns.iter().map(|c| c.name).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dataset_has_one_entry_with_columns() {
        for id in DatasetId::ALL {
            let entries = datasets().into_iter().filter(|d| d.id == id).count();
            assert_eq!(entries, 1, "{id:?}");
            assert!(!columns_of(id).is_empty(), "{id:?}");
            assert_eq!(
                serde_json::to_value(id).unwrap(),
                serde_json::json!(id.as_str())
            );
        }
        assert_eq!(datasets().len(), DatasetId::ALL.len());
    }

    fn names(id: DatasetId) -> Vec<&'static str> {
        datasets()
            .into_iter()
            .find(|d| d.id == id)
            .unwrap()
            .columns
            .iter()
            .map(|c| c.name)
            .collect()
    }

    #[test]
    fn the_cell_columns_are_the_csv_columns_in_order() {
        assert_eq!(
            names(DatasetId::Indices),
            crate::figures::CSV_COLUMNS.to_vec()
        );
    }

    #[test]
    fn every_column_is_defined_once_with_a_known_type() {
        for d in datasets() {
            let mut seen = std::collections::BTreeSet::new();
            for c in &d.columns {
                assert!(seen.insert(c.name), "{:?}.{} twice", d.id, c.name);
                assert!(
                    [
                        "string", "integer", "number", "boolean", "date", "datetime", "array",
                        "object"
                    ]
                    .contains(&c.r#type),
                    "{:?}.{}: {}",
                    d.id,
                    c.name,
                    c.r#type
                );
                assert!(c.definition.len() > 5, "{:?}.{}", d.id, c.name);
            }
        }
    }
}
