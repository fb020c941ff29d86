//! The hourly tariff of the Standard Cost Model (methodology §2): VND per hour of staff time,
//! per year. Configuration; this is the documented default.
//!
//! Default: the statutory **Region I minimum hourly wage** in force on 1 July of the year.
//! It is the one hourly labour price set by law, so every figure can be traced to a decree; it
//! is a conservative lower bound (staff who handle procedures usually earn more), which
//! docs/methodology.md says plainly. Hourly minimum wages exist from Decree 38/2022/ND-CP; for
//! earlier years the monthly minimum is converted the way that decree converts it (/208:
//! 26 days x 8 hours; 4,680,000 / 208 = 22,500 exactly).
//!
//! | year | VND/hour | source |
//! |---|---|---|
//! | 2020, 2021 | 21,250 | Decree 90/2019/ND-CP: 4,420,000 VND/month / 208 |
//! | 2022, 2023 | 22,500 | Decree 38/2022/ND-CP, from 2022-07-01 |
//! | 2024, 2025 | 23,800 | Decree 74/2024/ND-CP, from 2024-07-01 |
//! | 2026 | 25,500 | Decree 293/2025/ND-CP, from 2026-01-01 |
//! | 2027 | 25,500 | provisional: the latest decree, until a new one is issued |
//!
//! Years outside the table have no tariff, so their SCM cost is not computed (null), never
//! guessed.

use std::collections::BTreeMap;

/// VND per hour, by year.
#[derive(Debug, Clone, PartialEq)]
pub struct HourlyTariffs {
    by_year: BTreeMap<i32, f64>,
}

impl HourlyTariffs {
    /// The documented default (see the module documentation).
    pub fn vietnam_minimum_wage() -> Self {
        let by_year = [
            (2020, 21_250.0),
            (2021, 21_250.0),
            (2022, 22_500.0),
            (2023, 22_500.0),
            (2024, 23_800.0),
            (2025, 23_800.0),
            (2026, 25_500.0),
            (2027, 25_500.0),
        ]
        .into_iter()
        .collect();
        Self { by_year }
    }

    /// Overrides (or adds) years from `YEAR=VND,YEAR=VND` (e.g. `2025=45000,2026=48000`), as
    /// given in configuration.
    pub fn with_overrides(mut self, spec: &str) -> Result<Self, String> {
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (year, vnd) = item
                .split_once('=')
                .ok_or_else(|| format!("{item:?}: write YEAR=VND_PER_HOUR, e.g. 2025=45000"))?;
            let year: i32 = year
                .trim()
                .parse()
                .map_err(|_| format!("{item:?}: the year is not a number"))?;
            let vnd: f64 = vnd
                .trim()
                .parse()
                .map_err(|_| format!("{item:?}: the tariff is not a number"))?;
            if !(2000..=2100).contains(&year)
                || !vnd.is_finite()
                || !(0.0..=10_000_000.0).contains(&vnd)
            {
                return Err(format!(
                    "{item:?}: year 2000-2100 and 0 to 10,000,000 VND per hour"
                ));
            }
            self.by_year.insert(year, vnd);
        }
        Ok(self)
    }

    pub fn for_year(&self, year: i32) -> Option<f64> {
        self.by_year.get(&year).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_decrees() {
        let t = HourlyTariffs::vietnam_minimum_wage();
        assert_eq!(t.for_year(2022), Some(4_680_000.0 / 208.0));
        assert_eq!(t.for_year(2021), Some(4_420_000.0 / 208.0));
        assert_eq!(t.for_year(2026), Some(25_500.0));
        assert_eq!(t.for_year(2019), None, "no tariff is guessed");
    }

    #[test]
    fn overrides_replace_years_and_bad_specs_are_named() {
        let t = HourlyTariffs::vietnam_minimum_wage()
            .with_overrides("2025=45000, 2030=60000")
            .unwrap();
        assert_eq!(
            (t.for_year(2025), t.for_year(2030), t.for_year(2024)),
            (Some(45_000.0), Some(60_000.0), Some(23_800.0))
        );
        for bad in ["2025", "x=1", "2025=y", "1999=1", "2025=-1", "2025=NaN"] {
            assert!(
                HourlyTariffs::vietnam_minimum_wage()
                    .with_overrides(bad)
                    .is_err(),
                "{bad}"
            );
        }
    }
}
