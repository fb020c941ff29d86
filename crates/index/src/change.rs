//! Year-on-year changes of a figure (a trend's `..._change` and `..._change_pct`): what a reader
//! compares when asking whether a reform worked. Unrounded; rounded on output like the figures.

/// `now - before`; `None` when either year has no published value.
pub fn absolute(now: Option<f64>, before: Option<f64>) -> Option<f64> {
    Some(now? - before?)
}

/// The change as a percentage of `before`; `None` when either is missing or `before` is 0
/// (no percentage of nothing).
pub fn percent(now: Option<f64>, before: Option<f64>) -> Option<f64> {
    let before = before.filter(|b| *b != 0.0)?;
    Some((now? - before) / before * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_need_both_years_and_a_base() {
        // 8 working days to 6: down 2 days, -25 %.
        assert_eq!(absolute(Some(6.0), Some(8.0)), Some(-2.0));
        assert_eq!(percent(Some(6.0), Some(8.0)), Some(-25.0));
        // 3 to 4: +33.333...%, +33.3 on output.
        let up = percent(Some(4.0), Some(3.0)).unwrap();
        assert_eq!(crate::rounding::percent(up), 33.3);
        assert_eq!(absolute(None, Some(8.0)), None);
        assert_eq!(absolute(Some(6.0), None), None);
        assert_eq!(percent(Some(0.2), Some(0.0)), None, "no percentage of zero");
        assert_eq!(percent(Some(0.0), Some(0.5)), Some(-100.0));
    }
}
