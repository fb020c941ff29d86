//! Rounding on output only, half away from zero (methodology §3): days to 0.1, VND to the
//! nearest 1,000, rates to 0.001, CBI to 0.1. Computations always use unrounded values.

/// Rounds `x` to a multiple of `step`, halves away from zero.
///
/// Works in decimal steps (`step` = 10^k), so 0.15 days rounds to 0.2 as a reader expects,
/// despite 0.15 having no exact binary representation.
pub fn half_away(x: f64, step: f64) -> f64 {
    let scaled = x / step;
    // Correct binary representation error before deciding which way a half goes.
    let nudged = scaled + scaled.signum() * 1e-9;
    let r = nudged.round() * step;
    // Normalise -0.0 and express the result at the step's precision.
    if r == 0.0 {
        0.0
    } else {
        let decimals = (-step.log10()).max(0.0).round() as i32;
        let f = 10f64.powi(decimals);
        (r * f).round() / f
    }
}

pub fn days(x: f64) -> f64 {
    half_away(x, 0.1)
}
pub fn vnd(x: f64) -> f64 {
    half_away(x, 1000.0)
}
pub fn rate(x: f64) -> f64 {
    half_away(x, 0.001)
}
pub fn cbi(x: f64) -> f64 {
    half_away(x, 0.1)
}
/// Percentage changes, to 0.1 point.
pub fn percent(x: f64) -> f64 {
    half_away(x, 0.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_go_away_from_zero() {
        assert_eq!(days(2.25), 2.3);
        assert_eq!(days(0.15), 0.2);
        assert_eq!(days(-0.15), -0.2);
        assert_eq!(days(2.24), 2.2);
        assert_eq!(vnd(1_500.0), 2_000.0);
        assert_eq!(vnd(2_499.99), 2_000.0);
        assert_eq!(vnd(-1_500.0), -2_000.0);
        assert_eq!(rate(0.0005), 0.001);
        assert_eq!(rate(2.0 / 3.0), 0.667);
        assert_eq!(cbi(87.45), 87.5);
        assert_eq!(cbi(100.0), 100.0);
        assert_eq!(days(-0.04), 0.0);
    }
}
