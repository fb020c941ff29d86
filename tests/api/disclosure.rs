//! Disclosure control that survives subtraction (methodology 1.1, §4): from the published
//! figures alone, no suppressed cell's informal-payment or on-time count can be recovered, in
//! any partition of a total into parts (provinces under their national cell, a vn-34
//! province over its vn-63 predecessors, the groups of a dimension under their national
//! cell).

use std::collections::BTreeMap;

use redtape_domain::Role;
use serde_json::{json, Value};

use crate::helpers::{timing, TestApp};

/// Every item of a list endpoint (one page: the test asks for the largest).
async fn items(app: &TestApp, url: &str) -> Vec<Value> {
    let page = app
        .get(&format!("{url}&limit=10000"), None)
        .await
        .expect(200);
    assert!(page.get("next").is_none(), "more than one page at {url}");
    page["items"].as_array().cloned().unwrap_or_default()
}

/// What an attacker knows of one measure of a cell: its count (rate x denominator) when the
/// cell is published, nothing when it is suppressed.
fn known(cell: &Value, rate: &str, denominator: &str) -> Option<i64> {
    if cell["suppressed"].as_bool() != Some(false) {
        return None;
    }
    let d = cell[denominator].as_i64().unwrap_or(0);
    // A published cell with no such observation publishes no rate: its count is 0.
    Some(
        cell[rate]
            .as_f64()
            .map_or(0, |r| (r * d as f64).round() as i64),
    )
}

/// A total and its parts, for the report.
struct Partition<'a> {
    name: String,
    total: &'a Value,
    parts: Vec<&'a Value>,
}

impl Partition<'_> {
    /// Tries to recover a suppressed member's count of one measure by subtraction (or, for
    /// a suppressed total, by addition); returns what it recovered, if it could.
    fn recover(&self, rate: &str, denominator: &str) -> Option<(String, i64)> {
        let total = known(self.total, rate, denominator);
        let parts: Vec<Option<i64>> = self
            .parts
            .iter()
            .map(|p| known(p, rate, denominator))
            .collect();
        let unknown = parts.iter().filter(|p| p.is_none()).count() + usize::from(total.is_none());
        if unknown != 1 {
            return None;
        }
        let sum: i64 = parts.iter().flatten().sum();
        Some(match total {
            None => ("the total".to_string(), sum),
            Some(total) => {
                let i = parts.iter().position(Option::is_none)?;
                (label(self.parts[i]), total - sum)
            }
        })
    }

    /// Whether suppression by n < k alone would have left exactly one member suppressed: a
    /// partition where secondary suppression had work to do.
    fn needed_secondary(&self) -> bool {
        let primary = std::iter::once(self.total)
            .chain(self.parts.iter().copied())
            .filter(|c| c["suppression"] == "primary")
            .count();
        primary == 1 && self.parts.len() > 1
    }
}

fn label(cell: &Value) -> String {
    match cell["dimension"].as_str() {
        Some(d) => format!("{d}={}", cell["group"].as_str().unwrap_or("?")),
        None => cell["province_code"].as_str().unwrap_or("?").to_string(),
    }
}

/// (geography, year, procedure) of a cell.
type Group = (String, i64, String);

fn group_of(cell: &Value) -> Group {
    (
        cell["geography"].as_str().unwrap_or_default().to_string(),
        cell["year"].as_i64().unwrap_or_default(),
        cell["procedure_code"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// Every partition of §4 among the published cells, with the totals' n checked against
/// their parts' (the parts of a partition add up to its total).
fn partitions<'a>(
    cells: &'a [Value],
    breakdowns: &'a [Value],
    successors: &BTreeMap<String, String>,
) -> Vec<Partition<'a>> {
    let mut by_group: BTreeMap<Group, (Vec<&Value>, Vec<&Value>)> = BTreeMap::new();
    for c in cells {
        by_group.entry(group_of(c)).or_default().0.push(c);
    }
    for c in breakdowns {
        by_group.entry(group_of(c)).or_default().1.push(c);
    }
    let n = |c: &Value| c["n"].as_i64().unwrap_or(-1);
    let mut out = Vec::new();
    for ((geography, year, procedure), (cells, groups)) in &by_group {
        let name = format!("{geography} {year} {procedure}");
        let Some(national) = cells.iter().find(|c| c["province_code"] == "all") else {
            panic!("{name}: no national cell");
        };
        let provinces: Vec<&Value> = cells
            .iter()
            .copied()
            .filter(|c| c["province_code"] != "all")
            .collect();
        assert_eq!(
            provinces.iter().map(|c| n(c)).sum::<i64>(),
            n(national),
            "{name}: the provinces add up to the nation"
        );
        out.push(Partition {
            name: format!("{name}: provinces"),
            total: national,
            parts: provinces.clone(),
        });
        let mut dimensions: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
        for g in groups {
            dimensions
                .entry(g["dimension"].as_str().unwrap_or_default())
                .or_default()
                .push(g);
        }
        assert_eq!(dimensions.len(), 4, "{name}: four dimensions");
        for (dimension, members) in dimensions {
            assert_eq!(
                members.iter().map(|c| n(c)).sum::<i64>(),
                n(national),
                "{name}: the groups of {dimension} add up to the nation"
            );
            out.push(Partition {
                name: format!("{name}: {dimension}"),
                total: national,
                parts: members,
            });
        }
        // (a): a vn-34 province over its vn-63 predecessors, when it holds exactly theirs.
        if geography == "vn-34" {
            let old = by_group
                .get(&("vn-63".to_string(), *year, procedure.clone()))
                .map(|(cells, _)| cells.clone())
                .unwrap_or_default();
            for province in &provinces {
                let code = province["province_code"].as_str().unwrap_or_default();
                let predecessors: Vec<&Value> = old
                    .iter()
                    .copied()
                    .filter(|c| {
                        c["province_code"]
                            .as_str()
                            .and_then(|p| successors.get(p))
                            .is_some_and(|s| s == code)
                    })
                    .collect();
                let theirs: i64 = predecessors.iter().map(|c| n(c)).sum();
                if !predecessors.is_empty() && theirs == n(province) {
                    out.push(Partition {
                        name: format!("{name}: {code} over vn-63"),
                        total: province,
                        parts: predecessors,
                    });
                }
            }
        }
    }
    out
}

/// Tries every partition of every published cell (both maps, both endpoints) and fails if
/// any suppressed figure comes out; returns how many partitions of each kind (`provinces`,
/// a dimension, `over vn-63`) needed secondary suppression, so a test can show it was not
/// vacuous.
async fn nothing_is_recoverable(app: &TestApp) -> BTreeMap<String, usize> {
    let successors: BTreeMap<String, String> = items(app, "/v1/provinces?geography=vn-63")
        .await
        .iter()
        .filter_map(|p| {
            Some((
                p["code"].as_str()?.to_string(),
                p["successor_code"].as_str()?.to_string(),
            ))
        })
        .collect();
    let (mut cells, mut breakdowns) = (Vec::new(), Vec::new());
    for geography in ["vn-34", "vn-63"] {
        cells.extend(items(app, &format!("/v1/indices?geography={geography}")).await);
        breakdowns.extend(
            items(
                app,
                &format!("/v1/indices/breakdowns?geography={geography}"),
            )
            .await,
        );
    }
    let partitions = partitions(&cells, &breakdowns, &successors);
    let mut recovered = Vec::new();
    let mut needed = BTreeMap::new();
    for p in &partitions {
        for (rate, denominator) in [
            ("informal_payment_rate", "n"),
            ("on_time_rate", "n_timings"),
        ] {
            if let Some((member, count)) = p.recover(rate, denominator) {
                recovered.push(format!("{}: {member}'s {rate} count = {count}", p.name));
            }
        }
        let kind = p.name.rsplit(": ").next().unwrap_or_default();
        let kind = if kind.ends_with("over vn-63") {
            "over vn-63"
        } else {
            kind
        };
        *needed.entry(kind.to_string()).or_insert(0) += usize::from(p.needed_secondary());
    }
    assert!(
        recovered.is_empty(),
        "recovered by subtraction: {recovered:#?}"
    );
    needed
}

/// The differencing test, on generated data (several years, both maps, filers with
/// realistic profiles, rare combinations among them). Spread over 34 provinces, its
/// province cells are mostly below k, so their partitions hold several primary cells; the
/// breakdown groups are where suppression by n < k alone would have exposed a figure (the
/// province case is worked by hand below, through the same check).
async fn no_suppressed_count_can_be_recovered_by_subtraction(app: &TestApp) {
    // Imported (many submissions per transaction, then replayed), not filed one command at a
    // time: 32 concurrent writers racing the live projector on a debug build made filings
    // wait past the pool's 2 s timeout on SQLite when other tests loaded the machine.
    redtape::demo::generate_with(&app.db, 5000, 23, false, redtape::demo::Filing::Import)
        .await
        .unwrap_or_else(|e| panic!("demo data: {e}"));
    app.project().await;
    let needed = nothing_is_recoverable(app).await;
    let breakdowns: usize = [
        "size_class",
        "sector_section",
        "woman_owned",
        "ethnic_minority_owned",
    ]
    .iter()
    .map(|d| needed.get(*d).copied().unwrap_or(0))
    .sum();
    microdata_is_k_anonymous(app).await;
    assert!(
        breakdowns > 0,
        "no breakdown partition needed the rule: {needed:?}"
    );
}

/// The microdata test: within each (year, procedure), no combination of province
/// and the four profile fields is rarer than k = 5 among the published rows; the rows come
/// from published province cells only and are at most their n; and some rows do publish a
/// profile (the rule blanks what it must, not everything).
async fn microdata_is_k_anonymous(app: &TestApp) {
    let national: Vec<Value> = items(app, "/v1/indices?geography=vn-34&province=all").await;
    assert!(!national.is_empty());
    let (mut rows_seen, mut profiled) = (0, 0);
    for cell in &national {
        let (year, procedure) = (&cell["year"], cell["procedure_code"].as_str().unwrap());
        let rows = items(
            app,
            &format!("/v1/open/observations?year={year}&procedure={procedure}"),
        )
        .await;
        let provinces = items(
            app,
            &format!("/v1/indices?year={year}&procedure={procedure}"),
        )
        .await;
        let published: BTreeMap<&str, i64> = provinces
            .iter()
            .filter(|c| c["suppressed"] == false && c["province_code"] != "all")
            .map(|c| {
                (
                    c["province_code"].as_str().unwrap(),
                    c["n"].as_i64().unwrap(),
                )
            })
            .collect();
        let mut combinations: BTreeMap<Vec<String>, usize> = BTreeMap::new();
        let mut per_province: BTreeMap<String, i64> = BTreeMap::new();
        for row in &rows {
            let fields = [
                "province_code",
                "size_class",
                "sector_section",
                "woman_owned",
                "ethnic_minority_owned",
            ];
            let key: Vec<String> = fields
                .iter()
                .map(|f| row[*f].as_str().unwrap_or("<missing>").to_string())
                .collect();
            profiled += usize::from(key[1..].iter().any(|v| v != "unknown"));
            *per_province.entry(key[0].clone()).or_default() += 1;
            *combinations.entry(key).or_default() += 1;
        }
        rows_seen += rows.len();
        for (combination, count) in &combinations {
            assert!(
                *count >= 5,
                "{year} {procedure}: {combination:?} in {count} rows"
            );
        }
        for (province, count) in &per_province {
            let n = published.get(province.as_str()).copied();
            assert!(
                n.is_some_and(|n| *count <= n),
                "{year} {procedure} {province}: {count} rows, cell n {n:?}"
            );
        }
    }
    assert!(
        rows_seen > 0 && profiled > 0,
        "{rows_seen} rows, {profiled} profiled"
    );
}

/// By hand, k = 5: 1.001612 in 2025 with 79 (5 timings), 01 (5), 48 (6) and 31 (1). 31 is
/// primary; the provinces under the national cell (17) then have one suppressed member, so
/// the smallest published province goes too: 01 and 79 have 5 each, 01 has the lower code:
/// secondary. The national cell stays published (a total is never suppressed because of its
/// parts). Four more timings in 31 make it 5: nothing is suppressed any more, and 01 is
/// published again without any filing of its own.
async fn a_lone_suppressed_province_takes_the_smallest_published_one_along(app: &TestApp) {
    let token = app.token(Role::Business).await;
    let file = |province: &'static str, times: usize| {
        let (app, token) = (app, token.clone());
        async move {
            for _ in 0..times {
                let mut body = timing();
                body["province_code"] = json!(province);
                app.post("/v1/timings", &token, &body).await.expect(201);
            }
        }
    };
    file("79", 5).await;
    file("01", 5).await;
    file("48", 6).await;
    file("31", 1).await;
    app.project().await;
    let suppression = |cells: &[Value]| -> Vec<(String, Value)> {
        cells
            .iter()
            .map(|c| (label(c), c["suppression"].clone()))
            .collect()
    };
    let url = "/v1/indices?year=2025&procedure=1.001612";
    let cells = items(app, url).await;
    assert_eq!(
        suppression(&cells),
        [
            ("01".to_string(), json!("secondary")),
            ("31".to_string(), json!("primary")),
            ("48".to_string(), Value::Null),
            ("79".to_string(), Value::Null),
            ("all".to_string(), Value::Null),
        ]
    );
    // The differencing check finds nothing, where n < k alone would have exposed 31.
    assert_eq!(nothing_is_recoverable(app).await.get("provinces"), Some(&1));
    let hidden = &cells[0];
    assert_eq!(
        (hidden["n"].as_i64(), hidden["suppressed"].as_bool()),
        (Some(5), Some(true))
    );
    assert!(hidden["median_working_days"].is_null() && hidden["cbi"].is_null());
    assert_eq!(cells[4]["n"], 17);
    // 01 left the CBI: 48 and 79 are ranked, nothing else.
    let ranking = items(app, "/v1/indices/rankings?year=2025&procedure=1.001612").await;
    let ranked: Vec<&str> = ranking
        .iter()
        .filter(|r| !r["rank"].is_null())
        .filter_map(|r| r["province_code"].as_str())
        .collect();
    assert_eq!(ranked.len(), 2);
    assert!(!ranked.contains(&"01"), "{ranked:?}");

    file("31", 4).await;
    app.project().await;
    let cells = items(app, url).await;
    assert!(
        cells.iter().all(|c| c["suppression"].is_null()),
        "{:?}",
        suppression(&cells)
    );
    assert!(cells[0]["median_working_days"].is_number());
    // And a rebuild decides exactly as the projector did, cell by cell.
    let before = crate::rebuild::all_cells(app).await;
    redtape_store::Projector::new(app.db.clone())
        .rebuild()
        .await
        .unwrap_or_else(|e| panic!("rebuild: {e}"));
    assert_eq!(crate::rebuild::all_cells(app).await, before);
}

crate::on_both_stores!(
    no_suppressed_count_can_be_recovered_by_subtraction,
    a_lone_suppressed_province_takes_the_smallest_published_one_along
);
