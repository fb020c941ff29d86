//! Percentiles by linear interpolation between order statistics ("type 7").
//!
//! For sorted x_1..x_m and p in [0, 1]: h = (m - 1) p, and the value is
//! x_{floor(h)+1} + (h - floor(h)) (x_{floor(h)+2} - x_{floor(h)+1}) (methodology §3).

/// The type-7 percentile of `sorted` (ascending, no NaN); `None` for an empty slice.
pub fn type7(sorted: &[f64], p: f64) -> Option<f64> {
    type7_of(sorted.len(), p, |i| sorted.get(i).copied())
}

/// The type-7 percentile of m values given by `at(i)`, the i-th smallest (0-based).
///
/// This is the one implementation of the arithmetic: [`type7`] and the incremental cell
/// (`cell::running`), which reads order statistics from a tree instead of a sorted slice,
/// both call it, so the same values give bit-for-bit the same percentile either way. `None`
/// for m = 0, p outside [0, 1], or an `at` that has no such value.
pub fn type7_of(m: usize, p: f64, at: impl Fn(usize) -> Option<f64>) -> Option<f64> {
    if m == 0 || !(0.0..=1.0).contains(&p) {
        return None;
    }
    let h = (m - 1) as f64 * p;
    let lo = h.floor() as usize;
    if lo >= m {
        return None;
    }
    let x_lo = at(lo)?;
    let frac = h - lo as f64;
    if frac > 0.0 && lo + 1 < m {
        let x_hi = at(lo + 1)?;
        Some(x_lo + frac * (x_hi - x_lo))
    } else {
        Some(x_lo)
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

    #[test]
    fn accessor_form_reads_only_the_order_statistics_it_needs() {
        use std::cell::RefCell;
        let x = [1.0, 2.0, 3.0, 4.0, 10.0];
        let read = RefCell::new(Vec::new());
        let at = |i: usize| {
            read.borrow_mut().push(i);
            x.get(i).copied()
        };
        // h = 4 * 0.9 = 3.6 -> x4 + 0.6 (x5 - x4) = 4 + 0.6 * 6 = 7.6 (to rounding).
        assert_eq!(type7_of(5, 0.9, at), type7(&x, 0.9));
        assert!((type7_of(5, 0.9, at).unwrap() - 7.6).abs() < 1e-12);
        read.borrow_mut().clear();
        assert_eq!(type7_of(5, 0.5, at), Some(3.0));
        assert_eq!(
            *read.borrow(),
            vec![2],
            "an exact order statistic needs one read"
        );
        assert_eq!(type7_of(0, 0.5, at), None);
        // An accessor short of values is an absent percentile, not a panic.
        assert_eq!(type7_of(7, 1.0, at), None);
    }
}
