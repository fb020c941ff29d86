//! The Compliance Burden Index (methodology §5): 0-100, higher = lighter burden, relative
//! within one year and procedure.

use serde::Serialize;

/// Weights of I1 (median working days), I2 (median SCM cost), I3 (informal payment rate),
/// I4 (1 - on-time rate).
pub const WEIGHTS: [f64; 4] = [0.3, 0.3, 0.2, 0.2];

/// One province's cell statistics, as the CBI needs them.
#[derive(Debug, Clone, PartialEq)]
pub struct ProvinceCell {
    pub province: String,
    pub suppressed: bool,
    pub median_days: Option<f64>,
    pub median_cost: Option<f64>,
    pub informal_payment_rate: Option<f64>,
    pub on_time_rate: Option<f64>,
}

impl ProvinceCell {
    /// I1..I4, higher = worse.
    fn indicators(&self) -> [Option<f64>; 4] {
        [
            self.median_days,
            self.median_cost,
            self.informal_payment_rate,
            self.on_time_rate.map(|r| 1.0 - r),
        ]
    }
}

/// A province's CBI and rank; both `None` for a suppressed cell or one with no indicator.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ranked {
    pub province: String,
    /// s1..s4, each 0-100 (100 = the lightest burden among the provinces compared).
    pub scores: [Option<f64>; 4],
    pub cbi: Option<f64>,
    /// 1 = lightest burden; ties share a rank (1, 2, 2, 4).
    pub rank: Option<usize>,
}

/// Two CBIs closer than this are a tie: the same inputs can reach the sum by different
/// floating-point paths.
const TIE: f64 = 1e-9;

/// Computes the CBI of each province in one (year, procedure), in the input order.
pub fn compute(cells: &[ProvinceCell]) -> Vec<Ranked> {
    let eligible: Vec<&ProvinceCell> = cells.iter().filter(|c| !c.suppressed).collect();
    // min and max of each indicator over the non-suppressed provinces that have it.
    let mut bounds: [Option<(f64, f64)>; 4] = [None; 4];
    for cell in &eligible {
        for (j, value) in cell.indicators().iter().enumerate() {
            if let Some(v) = value {
                bounds[j] = Some(match bounds[j] {
                    None => (*v, *v),
                    Some((lo, hi)) => (lo.min(*v), hi.max(*v)),
                });
            }
        }
    }
    let mut ranked: Vec<Ranked> = cells
        .iter()
        .map(|cell| {
            if cell.suppressed {
                return Ranked {
                    province: cell.province.clone(),
                    scores: [None; 4],
                    cbi: None,
                    rank: None,
                };
            }
            let mut scores = [None; 4];
            for (j, value) in cell.indicators().iter().enumerate() {
                if let (Some(v), Some((min, max))) = (value, bounds[j]) {
                    scores[j] = Some(if max == min {
                        100.0
                    } else {
                        100.0 * (max - v) / (max - min)
                    });
                }
            }
            let (weighted, weight) = scores
                .iter()
                .zip(WEIGHTS)
                .filter_map(|(s, w)| s.map(|s| (s * w, w)))
                .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
            Ranked {
                province: cell.province.clone(),
                scores,
                cbi: (weight > 0.0).then(|| weighted / weight),
                rank: None,
            }
        })
        .collect();
    let mut order: Vec<(usize, f64)> = ranked
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.cbi.map(|c| (i, c)))
        .collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut previous: Option<(f64, usize)> = None;
    for (position, (i, cbi)) in order.into_iter().enumerate() {
        let rank = match previous {
            Some((prev, rank)) if (prev - cbi).abs() < TIE => rank,
            _ => position + 1,
        };
        previous = Some((cbi, rank));
        if let Some(r) = ranked.get_mut(i) {
            r.rank = Some(rank);
        }
    }
    ranked
}

/// A province's composite for a year: the mean of its CBIs over the procedures where it is
/// not suppressed, with how many procedures that covers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Composite {
    pub province: String,
    pub mean_cbi: f64,
    pub procedures: usize,
}

/// The composites of one year from the CBI of each of its cells that has one (`(province,
/// cbi)`, any procedure: what the projector keeps per cell), in the order they are published:
/// the mean as published (to 0.1) best first, then by province code, so provinces whose
/// published means are equal are listed in code order.
pub fn composites<'a>(cbis: impl IntoIterator<Item = (&'a str, f64)>) -> Vec<Composite> {
    let mut sums: std::collections::BTreeMap<&str, (f64, usize)> = Default::default();
    for (province, cbi) in cbis {
        let entry = sums.entry(province).or_insert((0.0, 0));
        entry.0 += cbi;
        entry.1 += 1;
    }
    let mut composites: Vec<Composite> = sums
        .into_iter()
        .map(|(province, (sum, count))| Composite {
            province: province.to_string(),
            mean_cbi: sum / count as f64,
            procedures: count,
        })
        .collect();
    composites.sort_by(|a, b| {
        crate::rounding::cbi(b.mean_cbi)
            .total_cmp(&crate::rounding::cbi(a.mean_cbi))
            .then_with(|| a.province.cmp(&b.province))
    });
    composites
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(p: &str, days: f64, cost: Option<f64>, informal: f64, on_time: f64) -> ProvinceCell {
        ProvinceCell {
            province: p.into(),
            suppressed: false,
            median_days: Some(days),
            median_cost: cost,
            informal_payment_rate: Some(informal),
            on_time_rate: Some(on_time),
        }
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    /// Worked by hand:
    ///   A: days 10, cost 1.0M, informal 0.2, on-time 0.8 (I4 = 0.2)
    ///   B: days 20, cost 3.0M, informal 0.0, on-time 0.5 (I4 = 0.5)
    ///   C: days 15, cost --,   informal 0.4, on-time 1.0 (I4 = 0.0)
    /// s1: A 100*(20-10)/10 = 100, B 0, C 100*(20-15)/10 = 50
    /// s2: A 100, B 0, C null (no cost)
    /// s3: A 100*(0.4-0.2)/0.4 = 50, B 100, C 0
    /// s4: A 100*(0.5-0.2)/0.5 = 60, B 0, C 100
    /// CBI A = 0.3*100 + 0.3*100 + 0.2*50 + 0.2*60 = 82
    /// CBI B = 0.2*100 = 20
    /// CBI C = (0.3*50 + 0.2*0 + 0.2*100) / (0.3 + 0.2 + 0.2) = 35 / 0.7 = 50
    /// Ranks: A 1, C 2, B 3.
    #[test]
    fn golden_three_provinces_with_a_missing_cost() {
        let r = compute(&[
            cell("A", 10.0, Some(1e6), 0.2, 0.8),
            cell("B", 20.0, Some(3e6), 0.0, 0.5),
            cell("C", 15.0, None, 0.4, 1.0),
        ]);
        assert!(close(r[0].cbi, 82.0), "{:?}", r[0]);
        assert!(close(r[1].cbi, 20.0), "{:?}", r[1]);
        assert!(close(r[2].cbi, 50.0), "{:?}", r[2]);
        assert_eq!(
            r.iter().map(|x| x.rank).collect::<Vec<_>>(),
            vec![Some(1), Some(3), Some(2)]
        );
        assert_eq!(r[2].scores[1], None);
        assert!(close(r[0].scores[3], 60.0));
    }

    #[test]
    fn ties_share_a_rank_and_the_next_rank_skips() {
        let r = compute(&[
            cell("A", 10.0, Some(1.0), 0.1, 0.9),
            cell("B", 10.0, Some(1.0), 0.1, 0.9),
            cell("C", 30.0, Some(9.0), 0.5, 0.1),
        ]);
        assert_eq!(
            r.iter().map(|x| x.rank).collect::<Vec<_>>(),
            vec![Some(1), Some(1), Some(3)]
        );
        assert!(close(r[0].cbi, 100.0) && close(r[2].cbi, 0.0));
    }

    #[test]
    fn a_single_province_and_equal_bounds_score_100() {
        let r = compute(&[cell("A", 10.0, Some(5.0), 0.3, 0.5)]);
        assert!(close(r[0].cbi, 100.0));
        assert_eq!(r[0].rank, Some(1));
    }

    #[test]
    fn suppressed_cells_take_no_part() {
        let mut hidden = cell("Z", 1.0, Some(0.0), 0.0, 1.0);
        hidden.suppressed = true;
        let with = compute(&[
            cell("A", 10.0, Some(1e6), 0.2, 0.8),
            cell("B", 20.0, Some(3e6), 0.0, 0.5),
            hidden,
        ]);
        let without = compute(&[
            cell("A", 10.0, Some(1e6), 0.2, 0.8),
            cell("B", 20.0, Some(3e6), 0.0, 0.5),
        ]);
        assert_eq!(with[..2], without[..]);
        assert_eq!((with[2].cbi, with[2].rank), (None, None));
    }

    #[test]
    fn composites_average_over_covered_procedures() {
        let p1 = compute(&[
            cell("A", 10.0, None, 0.0, 1.0),
            cell("B", 20.0, None, 0.5, 0.0),
        ]);
        let mut hidden = cell("B", 1.0, None, 0.0, 1.0);
        hidden.suppressed = true;
        let p2 = compute(&[
            cell("A", 30.0, None, 0.2, 0.5),
            hidden,
            cell("C", 10.0, None, 0.2, 0.5),
        ]);
        // p1: A 100, B 0. p2: A = 0.3*0 + 0.2*100 + 0.2*100 over 0.7 = 40/0.7; C = 100; B suppressed.
        let cbis = p1
            .iter()
            .chain(&p2)
            .filter_map(|r| Some((r.province.as_str(), r.cbi?)));
        let c = composites(cbis);
        // Best first: C 100, A (100 + 57.14) / 2 = 78.6, B 0.
        assert_eq!(
            c.iter()
                .map(|x| (x.province.as_str(), x.procedures))
                .collect::<Vec<_>>(),
            vec![("C", 1), ("A", 2), ("B", 1)]
        );
        assert!((c[0].mean_cbi - 100.0).abs() < 1e-9);
        assert!((c[1].mean_cbi - (100.0 + 40.0 / 0.7) / 2.0).abs() < 1e-9);
        assert!((c[2].mean_cbi - 0.0).abs() < 1e-9);
        // Equal published means (65.04 and 65.01 are both 65.0) list in code order.
        let tied = composites([("Z", 65.04), ("Y", 65.01), ("X", 70.0)]);
        let order: Vec<&str> = tied.iter().map(|c| c.province.as_str()).collect();
        assert_eq!(order, ["X", "Y", "Z"]);
    }
}
