//! Percentiles by linear interpolation between order statistics ("type 7").
//!
//! For sorted x_1..x_m and p in [0, 1]: h = (m - 1) p, and the value is
//! x_{floor(h)+1} + (h - floor(h)) (x_{floor(h)+2} - x_{floor(h)+1}) (methodology §3).

/// The type-7 percentile of `sorted` (ascending, no NaN); `None` for an empty slice.
pub fn type7(sorted: &[f64], p: f64) -> Option<f64> {
    let m = sorted.len();
    if m == 0 || !(0.0..=1.0).contains(&p) {
        return None;
    }
    let h = (m - 1) as f64 * p;
    let lo = h.floor() as usize;
    let x_lo = *sorted.get(lo)?;
    let frac = h - lo as f64;
    match sorted.get(lo + 1) {
        Some(x_hi) if frac > 0.0 => Some(x_lo + frac * (x_hi - x_lo)),
        _ => Some(x_lo),
    }
}

/// The median (p = 0.5).
pub fn median(sorted: &[f64]) -> Option<f64> {
    type7(sorted, 0.5)
}

/// Sorts values for [`type7`] (total order; the inputs never hold NaN).
pub fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_numpy_default() {
        // numpy.percentile([1, 2, 3, 4], [0, 25, 50, 90, 100]) = [1, 1.75, 2.5, 3.7, 4]
        let x = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(type7(&x, 0.0), Some(1.0));
        assert_eq!(type7(&x, 0.25), Some(1.75));
        assert_eq!(type7(&x, 0.5), Some(2.5));
        assert!((type7(&x, 0.9).unwrap() - 3.7).abs() < 1e-12);
        assert_eq!(type7(&x, 1.0), Some(4.0));
    }

    #[test]
    fn odd_count_median_is_the_middle_value() {
        assert_eq!(median(&[3.0, 5.0, 11.0]), Some(5.0));
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(type7(&[7.0], 0.9), Some(7.0));
        assert_eq!(median(&[]), None);
        assert_eq!(type7(&[1.0], 1.5), None);
    }
}
