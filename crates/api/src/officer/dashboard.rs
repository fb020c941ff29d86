//! The reform offices' dashboard (`GET /`), rendered on the server from the same functions as
//! the API, so the numbers it shows are the API's numbers. Plain HTML forms (no script), one
//! embedded stylesheet, Vietnamese and English labels; every figure carries a `data-figure`
//! attribute naming it, so the browser test can compare it with the API.

use std::collections::BTreeMap;

use actix_web::{get, web, HttpResponse};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use redtape_domain::{Geography, Provinces};
use serde::Deserialize;

use crate::figures::{composites, index_cells, index_page, trend_points, IndexCell, TrendPoint};
use crate::officer::glance;
use crate::officer::html::header_row;
use crate::problem::ApiError;
use crate::AppState;
use redtape_index::area::NATIONAL;

const CSS: &str = include_str!("dashboard.css");

#[derive(Debug, Deserialize)]
pub struct DashboardQuery {
    pub year: Option<String>,
    /// vi (default) or en.
    pub lang: Option<String>,
    /// The trend's procedure and province.
    pub procedure: Option<String>,
    pub province: Option<String>,
}

/// Every label in both languages.
struct Labels {
    lang: &'static str,
    title: &'static str,
    intro: &'static str,
    year: &'static str,
    show: &'static str,
    other_lang: (&'static str, &'static str),
    ranking: &'static str,
    rank: &'static str,
    province: &'static str,
    cbi: &'static str,
    median_days: &'static str,
    limit: &'static str,
    median_cost: &'static str,
    n: &'static str,
    suppressed: &'static str,
    suppressed_note: &'static str,
    composites: &'static str,
    mean_cbi: &'static str,
    procedures: &'static str,
    trend: &'static str,
    procedure: &'static str,
    downloads: &'static str,
    no_data: &'static str,
    provisional: &'static str,
    reform: &'static str,
    microdata: &'static str,
    release: &'static str,
}

const VI: Labels = Labels {
    lang: "vi",
    title: "Chi phí tuân thủ thủ tục hành chính",
    intro: "Số liệu tạm thời, cập nhật liên tục từ phản ánh của doanh nghiệp (phương pháp 1.1).",
    year: "Năm",
    show: "Xem",
    other_lang: ("en", "English"),
    ranking: "Xếp hạng tỉnh",
    rank: "Hạng",
    province: "Tỉnh/thành",
    cbi: "Chỉ số CBI",
    median_days: "Trung vị ngày làm việc",
    limit: "Thời hạn luật định",
    median_cost: "Trung vị chi phí (VND)",
    n: "Số quan sát",
    suppressed: "ẩn",
    suppressed_note: "Ô có dưới 5 quan sát, và ô có thể làm lộ một ô như vậy qua phép trừ, chỉ công bố số lượng (được đánh dấu \"ẩn\").",
    composites: "Chỉ số tổng hợp của tỉnh",
    mean_cbi: "CBI trung bình",
    procedures: "Số thủ tục",
    trend: "Xu hướng theo năm",
    procedure: "Thủ tục",
    downloads: "Tải dữ liệu (CSV)",
    no_data: "Chưa có số liệu cho năm này.",
    provisional: "tạm thời",
    reform: "cải cách",
    microdata: "dữ liệu vi mô",
    release: "bản công bố",
};

const EN: Labels = Labels {
    lang: "en",
    title: "Compliance burden of administrative procedures",
    intro: "Provisional live figures from businesses' reports (methodology 1.1).",
    year: "Year",
    show: "Show",
    other_lang: ("vi", "Tiếng Việt"),
    ranking: "Province ranking",
    rank: "Rank",
    province: "Province",
    cbi: "CBI",
    median_days: "Median working days",
    limit: "Statutory limit",
    median_cost: "Median cost (VND)",
    n: "Observations",
    suppressed: "suppressed",
    suppressed_note: "Cells with fewer than 5 observations, and cells that would reveal one by \
        subtraction, publish counts only (marked \"suppressed\").",
    composites: "Province composites",
    mean_cbi: "Mean CBI",
    procedures: "Procedures",
    trend: "Trend by year",
    procedure: "Procedure",
    downloads: "Download the data (CSV)",
    no_data: "No figures for this year yet.",
    provisional: "provisional",
    reform: "reform",
    microdata: "microdata",
    release: "release",
};

fn number(value: Option<f64>) -> String {
    match value {
        None => "—".into(),
        Some(v) if v.fract() == 0.0 => group_thousands(v as i64),
        Some(v) => format!("{v:.1}"),
    }
}

fn group_thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

/// The procedures with a national cell in `year` (on vn-34), by code.
async fn national_procedures(state: &AppState, year: i32) -> Result<Vec<String>, ApiError> {
    let cells = index_cells(state, Geography::Vn34, Some(year), None, Some(NATIONAL)).await?;
    Ok(cells.into_iter().map(|c| c.procedure_code).collect())
}

/// The dashboard.
#[get("/")]
pub async fn dashboard(
    state: web::Data<AppState>,
    query: web::Query<DashboardQuery>,
) -> Result<HttpResponse, ApiError> {
    let labels = match query.lang.as_deref() {
        Some("en") => &EN,
        _ => &VI,
    };
    let years: Vec<i32> = match redtape_store::cells::year_range(&state.db).await? {
        Some((first, last)) => (first..=last).rev().collect(),
        None => Vec::new(),
    };
    let year = query
        .year
        .as_deref()
        .and_then(|y| y.parse::<i32>().ok())
        .filter(|y| years.contains(y))
        .or_else(|| years.first().copied());
    let cells = match year {
        Some(y) => index_cells(&state, Geography::Vn34, Some(y), None, None).await?,
        None => Vec::new(),
    };
    let mut by_procedure: BTreeMap<String, Vec<IndexCell>> = BTreeMap::new();
    // The province tables; the national cells are the year at a glance's.
    for cell in cells
        .into_iter()
        .filter(|c| redtape_index::area::is_province_key(&c.province_code))
    {
        by_procedure
            .entry(cell.procedure_code.clone())
            .or_default()
            .push(cell);
    }
    for rows in by_procedure.values_mut() {
        rows.sort_by(|a, b| {
            (a.cbi_rank.is_none(), a.cbi_rank, &a.province_code).cmp(&(
                b.cbi_rank.is_none(),
                b.cbi_rank,
                &b.province_code,
            ))
        });
    }
    // The year's latest annual release, if one was published.
    let release = match year {
        Some(y) => state.releases.revisions(y).await?.last().map(|e| {
            let redtape_domain::release::ReleaseEvent::ReleasePublished { revision, .. } = e;
            format!("/v1/releases/{y}/{revision}.csv")
        }),
        None => None,
    };
    let composite = match year {
        Some(y) => composites(&state, Geography::Vn34, y).await?,
        None => Vec::new(),
    };
    let timelines = state.catalogue.timelines();
    let name = |code: &str| {
        timelines
            .get(code)
            .map(|t| {
                if labels.lang == "en" {
                    t.name_en.clone()
                } else {
                    t.name_vi.clone()
                }
            })
            .unwrap_or_else(|| code.to_string())
    };
    // The trend: the asked procedure and province, else the first procedure's top province.
    let trend_procedure = query
        .procedure
        .clone()
        .filter(|p| timelines.contains_key(p))
        .or_else(|| by_procedure.keys().next().cloned());
    let trend_province = query
        .province
        .clone()
        .filter(|p| Provinces::get().find(Geography::Vn34, p).is_some())
        .or_else(|| {
            trend_procedure
                .as_ref()
                .and_then(|p| by_procedure.get(p))
                .and_then(|rows| rows.first())
                .map(|c| c.province_code.clone())
        });
    let trend = match (&trend_procedure, &trend_province) {
        (Some(p), Some(v)) => trend_points(&state, Geography::Vn34, p, v).await?,
        _ => Vec::new(),
    };
    let glance_labels = if labels.lang == "en" {
        &glance::EN
    } else {
        &glance::VI
    };
    // The year at a glance: each procedure's national point of the year, as the national
    // trend gives it (so its change from the year before is the API's), and the breakdowns
    // of the trend's procedure.
    let mut national = Vec::new();
    let mut breakdowns = Vec::new();
    if let Some(y) = year {
        for code in national_procedures(&state, y).await? {
            let point = trend_points(&state, Geography::Vn34, &code, NATIONAL)
                .await?
                .into_iter()
                .find(|p| p.year == y);
            if let Some(point) = point {
                let limit = timelines.get(&code).and_then(|t| {
                    chrono::NaiveDate::from_ymd_opt(y, 12, 31).and_then(|d| t.limit_on(d))
                });
                national.push(glance::NationalRow {
                    name: name(&code),
                    code,
                    limit,
                    point,
                });
            }
        }
        if let Some(p) = &trend_procedure {
            let areas = redtape_store::cells::Areas::Breakdowns(None);
            breakdowns =
                index_page(&state, Geography::Vn34, Some(y), Some(p), areas, None, None).await?;
        }
    }
    let limit_in = |code: &str, year: i32| {
        timelines
            .get(code)
            .and_then(|t| chrono::NaiveDate::from_ymd_opt(year, 12, 31).and_then(|d| t.limit_on(d)))
    };
    let province_name = |code: &str| {
        Provinces::get()
            .find(Geography::Vn34, code)
            .map(|p| p.name.clone())
            .unwrap_or_default()
    };
    let lang = labels.lang;
    let page = html! {
        (DOCTYPE)
        html lang=(lang) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (labels.title) }
                style { (PreEscaped(CSS)) }
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    h1 { (labels.title) }
                    p.muted { (labels.intro) " · "
                        a href={ "/?lang=" (labels.other_lang.0) (year.map(|y| format!("&year={y}")).unwrap_or_default()) } lang=(labels.other_lang.0) { (labels.other_lang.1) }
                    }
                    form.picker method="get" action="/" {
                        input type="hidden" name="lang" value=(lang);
                        label for="year" { (labels.year)
                            select #year name="year" {
                                @for y in &years {
                                    option value=(y) selected[Some(*y) == year] { (y) }
                                }
                            }
                        }
                        button type="submit" { (labels.show) }
                    }
                }
                main #main {
                    @if let Some(y) = year {
                        p.muted data-figure="year" data-year=(y) { (labels.year) " " (y) " (" (labels.provisional) "). " (labels.suppressed_note) }
                        nav.downloads aria-label=(labels.downloads) {
                            strong { (labels.downloads) ": " }
                            a href={ "/v1/indices?year=" (y) "&format=csv" } { "indices-" (y) ".csv" }
                            a href={ "/v1/indices/provinces?year=" (y) "&format=csv" } { "composites-" (y) ".csv" }
                            @if let Some(release) = &release {
                                a href=(release) { (labels.release) " " (y) " (CSV)" }
                            }
                            a href="/v1/dictionary" { "dictionary" }
                        }
                        (glance::render(glance_labels, y, &national, &composite,
                            &trend_procedure.as_deref().map(|p| format!("{} ({p})", name(p))).unwrap_or_default(),
                            &breakdowns))
                        h2 { (labels.ranking) }
                        @for (code, rows) in &by_procedure {
                            section aria-labelledby={ "p-" (code) } {
                                h3 #{ "p-" (code) } { (name(code)) " (" (code) ")" }
                                table data-procedure=(code) {
                                    caption { (labels.ranking) ", " (y) " · "
                                        a href={ "/v1/indices/rankings?year=" (y) "&procedure=" (code) "&format=csv" } { "CSV" }
                                        " · "
                                        a href={ "/v1/open/observations?year=" (y) "&procedure=" (code) "&format=csv" } { (labels.microdata) " (CSV)" } }
                                    (header_row(&[labels.rank, labels.province, labels.cbi, labels.median_days, labels.limit, labels.median_cost, labels.n]))
                                    tbody {
                                        @for c in rows {
                                            tr.suppressed[c.suppressed] data-province=(c.province_code) {
                                                td { (c.cbi_rank.map(|r| r.to_string()).unwrap_or_else(|| "—".into())) }
                                                th scope="row" { (c.province_name) @if c.suppressed { " (" (labels.suppressed) ")" } }
                                                td data-figure="cbi" { (number(c.cbi)) }
                                                td data-figure="median_working_days" { (number(c.median_working_days)) }
                                                td data-figure="limit" { (number(limit_in(code, y).map(f64::from))) }
                                                td data-figure="median_scm_cost_vnd" { (number(c.median_scm_cost_vnd)) }
                                                td data-figure="n" { (c.n) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        h2 { (labels.composites) }
                        table data-table="composites" {
                            caption { (labels.composites) ", " (y) }
                            (header_row(&["#", labels.province, labels.mean_cbi, labels.procedures]))
                            tbody {
                                @for (i, c) in composite.iter().enumerate() {
                                    tr data-province=(c.province_code) {
                                        td { (i + 1) }
                                        th scope="row" { (c.province_name) }
                                        td data-figure="mean_cbi" { (number(Some(c.mean_cbi))) }
                                        td data-figure="procedures" { (c.procedures) }
                                    }
                                }
                            }
                        }
                    } @else {
                        p { (labels.no_data) }
                    }
                    h2 { (labels.trend) }
                    form.picker method="get" action="/" {
                        input type="hidden" name="lang" value=(lang);
                        @if let Some(y) = year { input type="hidden" name="year" value=(y); }
                        label for="procedure" { (labels.procedure)
                            select #procedure name="procedure" {
                                @for (code, t) in &timelines {
                                    option value=(code) selected[Some(code) == trend_procedure.as_ref()] {
                                        (if lang == "en" { &t.name_en } else { &t.name_vi }) " (" (code) ")"
                                    }
                                }
                            }
                        }
                        label for="province" { (labels.province)
                            select #province name="province" {
                                @for p in Provinces::get().list(Geography::Vn34) {
                                    option value=(p.code.as_str()) selected[Some(p.code.as_str()) == trend_province.as_deref()] { (p.name) }
                                }
                            }
                        }
                        button type="submit" { (labels.show) }
                    }
                    @if let (Some(p), Some(v)) = (&trend_procedure, &trend_province) {
                        (trend_chart(labels, &name(p), &province_name(v), &trend, |y| limit_in(p, y)))
                        p.downloads { a href={ "/v1/indices/trends?procedure=" (p) "&province=" (v) "&format=csv" } { "trend.csv" } }
                    }
                }
            }
        }
    };
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("cache-control", "public, max-age=60"))
        .body(page.into_string()))
}

/// A line chart of median working days by year, with the statutory limit in force at each
/// year's end and the years of reforms marked; the same numbers follow as a table, for
/// screen readers and for copying.
fn trend_chart(
    labels: &Labels,
    procedure: &str,
    province: &str,
    points: &[TrendPoint],
    limit: impl Fn(i32) -> Option<u16>,
) -> Markup {
    let (w, h, left, bottom, top) = (640.0_f64, 260.0_f64, 48.0_f64, 32.0_f64, 16.0_f64);
    let values: Vec<f64> = points
        .iter()
        .filter_map(|p| p.median_working_days)
        .chain(points.iter().filter_map(|p| limit(p.year).map(f64::from)))
        .collect();
    let max = values.iter().copied().fold(1.0_f64, f64::max) * 1.15;
    let n = points.len().max(1) as f64;
    let x = |i: usize| left + (w - left - 16.0) * (i as f64 + 0.5) / n;
    let y = |v: f64| top + (h - top - bottom) * (1.0 - v / max);
    let line: Vec<String> = points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            p.median_working_days
                .map(|v| format!("{:.1},{:.1}", x(i), y(v)))
        })
        .collect();
    let caption = format!("{}: {} — {}", labels.trend, procedure, province);
    html! {
        figure {
            svg viewBox={ "0 0 " (w) " " (h) } role="img" aria-labelledby="trend-title" {
                title #trend-title { (caption) }
                line x1=(left) y1=(h - bottom) x2=(w - 8.0) y2=(h - bottom) stroke="#1b1b1b" {}
                line x1=(left) y1=(top) x2=(left) y2=(h - bottom) stroke="#1b1b1b" {}
                text x="4" y=(top + 4.0) font-size="11" { (format!("{:.0}", max)) }
                text x="4" y=(h - bottom) font-size="11" { "0" }
                @for (i, p) in points.iter().enumerate() {
                    text x=(x(i) - 14.0) y=(h - 10.0) font-size="12" { (p.year) }
                    @if let Some(l) = limit(p.year) {
                        line x1=(x(i) - 18.0) x2=(x(i) + 18.0) y1=(y(f64::from(l))) y2=(y(f64::from(l))) stroke="#b3261e" stroke-dasharray="4 3" {}
                    }
                    @if !p.reforms.is_empty() {
                        line x1=(x(i)) x2=(x(i)) y1=(top) y2=(h - bottom) stroke="#f2a900" stroke-dasharray="2 2" {}
                        text x=(x(i) + 3.0) y=(top + 10.0) font-size="11" { (labels.reform) }
                    }
                    @if let Some(v) = p.median_working_days {
                        circle cx=(x(i)) cy=(y(v)) r="4" fill="#0b4f9c" {}
                    }
                }
                polyline points=(line.join(" ")) fill="none" stroke="#0b4f9c" stroke-width="2" {}
            }
            figcaption.muted { (caption) ". " (labels.median_days) " (—), " (labels.limit) " (- -)." }
        }
        table data-table="trend" {
            caption { (caption) }
            (header_row(&[labels.year, labels.n, labels.median_days, labels.limit, labels.median_cost]))
            tbody {
                @for p in points {
                    tr.suppressed[p.suppressed] data-year=(p.year) {
                        td { (p.year) @if !p.reforms.is_empty() { " (" (labels.reform) ")" } }
                        th scope="row" data-figure="n" { (p.n) }
                        td data-figure="median_working_days" { (number(p.median_working_days)) }
                        td data-figure="limit" { (number(limit(p.year).map(f64::from))) }
                        td data-figure="median_scm_cost_vnd" { (number(p.median_scm_cost_vnd)) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_and_missing_ones_are_a_dash() {
        assert_eq!(number(Some(1_705_000.0)), "1,705,000");
        assert_eq!(number(Some(4.5)), "4.5");
        assert_eq!(number(Some(62.0)), "62");
        assert_eq!(number(None), "—");
        assert_eq!(group_thousands(-1234), "-1,234");
    }
}
