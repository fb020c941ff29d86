//! The dashboard's "year at a glance" (issue 14): what a reform office prints as the year's
//! report, before the province tables. Three parts, each a figure and the table behind it,
//! every number from the same functions as the API (`crate::figures`):
//!
//! - per procedure, the national figures of the year (methodology 1.1, §3: province `all`)
//!   against the statutory limit, with the change from the year before as the national trend
//!   (`/v1/indices/trends?province=all`) gives it, direction shown by arrow and sign, not by
//!   colour alone, and reform years marked;
//! - a tile map of the 34 provinces (an SVG grid cartogram, laid out by hand roughly as the
//!   country lies, no map data) shaded by the province composite, with a legend;
//! - the breakdowns of one procedure (§7): women-owned against not, and by size class.

use maud::{html, Markup};
use redtape_domain::Geography;
use redtape_index::area::Dimension;

use crate::figures::{IndexCell, ProvinceComposite, TrendPoint};
use crate::officer::html::header_row;

/// The labels of this part of the page, in both languages.
pub(crate) struct GlanceLabels {
    pub glance: &'static str,
    pub national: &'static str,
    pub procedure: &'static str,
    pub n: &'static str,
    pub median_days: &'static str,
    pub limit: &'static str,
    pub on_time: &'static str,
    pub informal: &'static str,
    pub change: &'static str,
    pub reform: &'static str,
    pub suppressed: &'static str,
    pub map: &'static str,
    pub map_note: &'static str,
    pub no_data: &'static str,
    pub mean_cbi: &'static str,
    pub province: &'static str,
    pub breakdowns: &'static str,
    pub group: &'static str,
    pub woman_owned: &'static str,
    pub size_class: &'static str,
    pub more: &'static str,
    pub fewer: &'static str,
    pub national_note: &'static str,
    pub groups: [(&'static str, &'static str); 7],
}

pub(crate) const VI: GlanceLabels = GlanceLabels {
    glance: "Tổng quan năm",
    national: "Số liệu toàn quốc theo thủ tục",
    procedure: "Thủ tục",
    n: "Số quan sát",
    median_days: "Trung vị ngày làm việc",
    limit: "Thời hạn luật định",
    on_time: "Tỷ lệ đúng hạn",
    informal: "Tỷ lệ chi phí không chính thức",
    change: "So với năm trước (ngày)",
    reform: "năm cải cách",
    suppressed: "ẩn",
    map: "Bản đồ chỉ số tổng hợp CBI theo tỉnh",
    map_note: "Mỗi ô là một tỉnh/thành (34 đơn vị), xếp gần đúng theo vị trí địa lý; màu đậm hơn = gánh nặng nhẹ hơn.",
    no_data: "chưa có số liệu",
    mean_cbi: "CBI trung bình",
    province: "Tỉnh/thành",
    breakdowns: "Theo đặc điểm doanh nghiệp (toàn quốc)",
    group: "Nhóm",
    woman_owned: "Doanh nghiệp do nữ làm chủ",
    size_class: "Quy mô doanh nghiệp",
    more: "tăng",
    fewer: "giảm",
    national_note: "! trung vị vượt thời hạn luật định · ▲ tăng / ▼ giảm so với năm trước (số ngày tăng là chậm hơn) · ● năm có cải cách thủ tục. Trung vị và tỷ lệ tính trên mọi quan sát của cả nước.",
    groups: [
        ("yes", "có"),
        ("no", "không"),
        ("unknown", "không rõ"),
        ("micro", "siêu nhỏ"),
        ("small", "nhỏ"),
        ("medium", "vừa"),
        ("large", "lớn"),
    ],
};

pub(crate) const EN: GlanceLabels = GlanceLabels {
    glance: "The year at a glance",
    national: "National figures by procedure",
    procedure: "Procedure",
    n: "Observations",
    median_days: "Median working days",
    limit: "Statutory limit",
    on_time: "On-time rate",
    informal: "Informal-payment rate",
    change: "Change from the year before (days)",
    reform: "reform year",
    suppressed: "suppressed",
    map: "Province composite CBI",
    map_note: "One tile per province (34), placed roughly where it lies; darker = lighter burden.",
    no_data: "no data",
    mean_cbi: "Mean CBI",
    province: "Province",
    breakdowns: "By firm profile (national)",
    group: "Group",
    woman_owned: "Women-owned",
    size_class: "Size class",
    more: "up",
    fewer: "down",
    national_note: "! median above the statutory limit · ▲ up / ▼ down from the year before (more days is slower) · ● a reform of the procedure took effect that year. Medians and rates are over every observation in the country.",
    groups: [
        ("yes", "yes"),
        ("no", "no"),
        ("unknown", "unknown"),
        ("micro", "micro"),
        ("small", "small"),
        ("medium", "medium"),
        ("large", "large"),
    ],
};

impl GlanceLabels {
    fn group(&self, group: &str) -> &'static str {
        self.groups
            .iter()
            .find(|(g, _)| *g == group)
            .map_or("?", |(_, label)| *label)
    }
}

/// One procedure's row of the national overview.
pub(crate) struct NationalRow {
    pub code: String,
    pub name: String,
    pub limit: Option<u16>,
    /// The year's point of the national trend (`province=all`), if the year has one.
    pub point: TrendPoint,
}

/// Tile positions (column, row) of the 34 vn-34 provinces, north at the top.
const TILES: [(&str, u8, u8); 34] = [
    ("12", 1, 0),
    ("15", 2, 0),
    ("08", 3, 0),
    ("04", 4, 0),
    ("11", 0, 1),
    ("14", 1, 1),
    ("25", 2, 1),
    ("19", 3, 1),
    ("20", 4, 1),
    ("01", 2, 2),
    ("24", 3, 2),
    ("22", 4, 2),
    ("37", 2, 3),
    ("33", 3, 3),
    ("31", 4, 3),
    ("38", 2, 4),
    ("40", 2, 5),
    ("42", 3, 6),
    ("44", 3, 7),
    ("46", 3, 8),
    ("48", 4, 8),
    ("52", 3, 9),
    ("51", 4, 9),
    ("66", 3, 10),
    ("56", 4, 10),
    ("80", 1, 11),
    ("75", 2, 11),
    ("68", 3, 11),
    ("91", 0, 12),
    ("82", 1, 12),
    ("79", 2, 12),
    ("96", 0, 13),
    ("92", 1, 13),
    ("86", 2, 13),
];

/// Five classes of the composite (0-100), light to dark: a sequential blue scale that reads
/// in greyscale too; the legend and the table give the numbers.
const CLASSES: [(f64, &str, &str); 5] = [
    (20.0, "#eff3ff", "#1b1b1b"),
    (40.0, "#bdd7e7", "#1b1b1b"),
    (60.0, "#6baed6", "#1b1b1b"),
    (80.0, "#3182bd", "#ffffff"),
    (100.1, "#08519c", "#ffffff"),
];

fn class_of(cbi: f64) -> (&'static str, &'static str) {
    CLASSES
        .iter()
        .find(|(upper, _, _)| cbi < *upper)
        .map_or(("#08519c", "#ffffff"), |(_, fill, text)| (*fill, *text))
}

/// A change with its direction in words and arrow as well as sign: "▲ +1.5".
fn change(value: Option<f64>, labels: &GlanceLabels, digits: usize) -> Markup {
    match value.map(|v| (v, v == 0.0)) {
        None => html! { "—" },
        Some((_, true)) => html! { "= 0" },
        Some((v, false)) => {
            let (arrow, word) = if v > 0.0 {
                ("▲", labels.more)
            } else {
                ("▼", labels.fewer)
            };
            html! {
                span aria-hidden="true" { (arrow) " " }
                (format!("{v:+.digits$}"))
                span.visually-hidden { " (" (word) ")" }
            }
        }
    }
}

fn rate(value: Option<f64>) -> String {
    value.map_or_else(|| "—".into(), |v| format!("{:.1}%", v * 100.0))
}

fn days(value: Option<f64>) -> String {
    value.map_or_else(|| "—".into(), |v| format!("{v:.1}"))
}

/// The whole section.
pub(crate) fn render(
    labels: &GlanceLabels,
    year: i32,
    national: &[NationalRow],
    composites: &[ProvinceComposite],
    breakdown_name: &str,
    breakdowns: &[IndexCell],
) -> Markup {
    html! {
        section.glance aria-labelledby="glance" {
            h2 #glance { (labels.glance) " " (year) }
            (overview(labels, year, national))
            div.glance-row {
                (tile_map(labels, year, composites))
                (breakdown(labels, breakdown_name, breakdowns))
            }
        }
    }
}

fn overview(labels: &GlanceLabels, year: i32, rows: &[NationalRow]) -> Markup {
    html! {
        table data-table="national" {
            caption { (labels.national) ", " (year) " · "
                a href={ "/v1/indices?year=" (year) "&province=all&format=csv" } { "CSV" } }
            (header_row(&[labels.procedure, labels.n, labels.median_days, labels.limit,
                labels.change, labels.on_time, labels.informal]))
            tbody {
                @for r in rows {
                    tr.suppressed[r.point.suppressed] data-procedure=(r.code) {
                        th scope="row" { (r.name) " (" (r.code) ")"
                            @if !r.point.reforms.is_empty() { " " span.reform { "● " (labels.reform) } }
                            @if r.point.suppressed { " (" (labels.suppressed) ")" } }
                        td data-figure="n" { (r.point.n) }
                        td data-figure="median_working_days" {
                            (days(r.point.median_working_days))
                            @if let (Some(d), Some(l)) = (r.point.median_working_days, r.limit) {
                                @if d > f64::from(l) { span.over aria-hidden="true" { " !" } }
                            }
                        }
                        td data-figure="limit" { (r.limit.map(|l| l.to_string()).unwrap_or_else(|| "—".into())) }
                        td data-figure="median_working_days_change" { (change(r.point.median_working_days_change, labels, 1)) }
                        td data-figure="on_time_rate" { (rate(r.point.on_time_rate)) }
                        td data-figure="informal_payment_rate" { (rate(r.point.informal_payment_rate)) }
                    }
                }
            }
        }
        p.muted { (labels.national_note) }
    }
}

fn tile_map(labels: &GlanceLabels, year: i32, composites: &[ProvinceComposite]) -> Markup {
    let (size, gap, legend) = (46.0_f64, 4.0_f64, 150.0_f64);
    let (w, h) = (5.0 * (size + gap) + legend, 14.0 * (size + gap));
    let of = |code: &str| composites.iter().find(|c| c.province_code == code);
    let title = format!("{} {year}", labels.map);
    html! {
        div.tilemap {
        figure {
            svg viewBox={ "0 0 " (w) " " (h) } role="img" aria-labelledby="map-title" data-figure="tile-map" {
                title #map-title { (title) }
                @for (code, col, row) in TILES {
                    @let (x, y) = (f64::from(col) * (size + gap), f64::from(row) * (size + gap));
                    @let name = crate::figures::province_name(Geography::Vn34, code);
                    @match of(code) {
                        Some(c) => {
                            @let (fill, ink) = class_of(c.mean_cbi);
                            g data-province=(code) data-mean-cbi=(c.mean_cbi) {
                                title { (name) ": " (labels.mean_cbi) " " (format!("{:.1}", c.mean_cbi)) }
                                rect x=(x) y=(y) width=(size) height=(size) rx="4" fill=(fill) stroke="#1b1b1b" stroke-width="0.5" {}
                                text x=(x + size / 2.0) y=(y + 19.0) font-size="12" text-anchor="middle" fill=(ink) { (code) }
                                text x=(x + size / 2.0) y=(y + 35.0) font-size="11" text-anchor="middle" fill=(ink) { (format!("{:.0}", c.mean_cbi)) }
                            }
                        }
                        None => {
                            g data-province=(code) {
                                title { (name) ": " (labels.no_data) }
                                rect x=(x) y=(y) width=(size) height=(size) rx="4" fill="#ffffff" stroke="#4a4a4a" stroke-dasharray="3 2" {}
                                text x=(x + size / 2.0) y=(y + 19.0) font-size="12" text-anchor="middle" fill="#4a4a4a" { (code) }
                                text x=(x + size / 2.0) y=(y + 35.0) font-size="11" text-anchor="middle" fill="#4a4a4a" { "—" }
                            }
                        }
                    }
                }
                @let lx = 5.0 * (size + gap) + 8.0;
                text x=(lx) y="14" font-size="12" font-weight="600" { (labels.mean_cbi) }
                @for (i, (upper, fill, _)) in CLASSES.iter().enumerate() {
                    @let lower = if i == 0 { 0.0 } else { CLASSES[i - 1].0 };
                    @let y = 24.0 + i as f64 * 22.0;
                    rect x=(lx) y=(y) width="18" height="16" fill=(*fill) stroke="#1b1b1b" stroke-width="0.5" {}
                    text x=(lx + 24.0) y=(y + 12.0) font-size="11" { (format!("{lower:.0}–{:.0}", upper.min(100.0))) }
                }
                rect x=(lx) y=(24.0 + 5.0 * 22.0) width="18" height="16" fill="#ffffff" stroke="#4a4a4a" stroke-dasharray="3 2" {}
                text x=(lx + 24.0) y=(36.0 + 5.0 * 22.0) font-size="11" { (labels.no_data) }
            }
            figcaption.muted { (labels.map_note) }
        }
        details.map-table {
            summary { (labels.map) ": " (labels.province) " / " (labels.mean_cbi) }
            table data-table="map" {
                caption { (title) }
                (header_row(&[labels.province, labels.mean_cbi]))
                tbody {
                    @for (code, _, _) in TILES {
                        tr data-province=(code) {
                            th scope="row" { (crate::figures::province_name(Geography::Vn34, code)) " (" (code) ")" }
                            td data-figure="mean_cbi" { (of(code).map(|c| format!("{:.1}", c.mean_cbi)).unwrap_or_else(|| "—".into())) }
                        }
                    }
                }
            }
        }
        }
    }
}

/// Bars of the median working days of each group (suppressed groups named, without a bar),
/// then the table of the same groups.
fn breakdown(labels: &GlanceLabels, procedure: &str, cells: &[IndexCell]) -> Markup {
    let code = cells
        .first()
        .map(|c| c.procedure_code.as_str())
        .unwrap_or_default();
    let dimensions = [
        (Dimension::WomanOwned, labels.woman_owned),
        (Dimension::SizeClass, labels.size_class),
    ];
    let ordered = |d: Dimension| {
        let mut rows: Vec<&IndexCell> = cells
            .iter()
            .filter(|c| c.dimension.as_deref() == Some(d.as_str()))
            .collect();
        rows.sort_by_key(|c| c.group.as_deref().and_then(|g| d.rank(g)));
        rows
    };
    let max = cells
        .iter()
        .filter_map(|c| c.median_working_days)
        .fold(1.0_f64, f64::max);
    html! {
        figure.breakdown data-procedure=(code) {
            figcaption { strong { (labels.breakdowns) } ": " (procedure) }
            @for (dimension, title) in dimensions {
                @let rows = ordered(dimension);
                h4 { (title) }
                svg viewBox={ "0 0 320 " (rows.len().max(1) * 22 + 4) } role="img" aria-label={ (title) ": " (labels.median_days) } data-figure={ "bars-" (dimension.as_str()) } {
                    @for (i, c) in rows.iter().enumerate() {
                        @let y = i as f64 * 22.0 + 2.0;
                        @let group = c.group.as_deref().unwrap_or_default();
                        text x="0" y=(y + 14.0) font-size="12" { (labels.group(group)) }
                        @match c.median_working_days {
                            Some(d) => {
                                rect x="90" y=(y + 2.0) width=(180.0 * d / max) height="16" fill="#0b4f9c" {}
                                text x=(96.0 + 180.0 * d / max) y=(y + 14.0) font-size="12" { (days(Some(d))) }
                            }
                            None => { text x="90" y=(y + 14.0) font-size="12" fill="#4a4a4a" { "(" (labels.suppressed) ")" } }
                        }
                    }
                }
                table data-table={ "breakdown-" (dimension.as_str()) } {
                    (header_row(&[labels.group, labels.n, labels.median_days, labels.on_time,
                        labels.informal]))
                    tbody {
                        @for c in &rows {
                            tr.suppressed[c.suppressed] data-group=(c.group.as_deref().unwrap_or_default()) {
                                th scope="row" { (labels.group(c.group.as_deref().unwrap_or_default()))
                                    @if c.suppressed { " (" (labels.suppressed) ")" } }
                                td data-figure="n" { (c.n) }
                                td data-figure="median_working_days" { (days(c.median_working_days)) }
                                td data-figure="on_time_rate" { (rate(c.on_time_rate)) }
                                td data-figure="informal_payment_rate" { (rate(c.informal_payment_rate)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every vn-34 province has exactly one tile, and no two share a place.
    #[test]
    fn the_tile_map_places_each_province_once() {
        let codes: std::collections::BTreeSet<&str> = TILES.iter().map(|t| t.0).collect();
        let expected: std::collections::BTreeSet<String> = redtape_domain::Provinces::get()
            .list(Geography::Vn34)
            .map(|p| p.code.as_str().to_string())
            .collect();
        assert_eq!(
            codes,
            expected.iter().map(String::as_str).collect(),
            "tiles"
        );
        let places: std::collections::BTreeSet<(u8, u8)> =
            TILES.iter().map(|t| (t.1, t.2)).collect();
        assert_eq!(places.len(), TILES.len());
    }

    /// Direction is in the arrow, the sign and a word, not only a colour.
    #[test]
    fn a_change_says_its_direction_in_words() {
        let up = change(Some(1.5), &EN, 1).into_string();
        assert!(
            up.contains("▲") && up.contains("+1.5") && up.contains("(up)"),
            "{up}"
        );
        let down = change(Some(-0.3), &VI, 1).into_string();
        assert!(
            down.contains("▼") && down.contains("-0.3") && down.contains("(giảm)"),
            "{down}"
        );
        assert_eq!(change(None, &EN, 1).into_string(), "—");
        assert_eq!(class_of(95.0).0, "#08519c");
        assert_eq!(class_of(0.0).0, "#eff3ff");
    }
}
