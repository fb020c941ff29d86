//! Per-cell statistics (methodology §3) and disclosure control (§4).
//!
//! A cell is (geography, year, procedure, province); its observations are the current states
//! of the included submissions (status received or verified). This module takes observations
//! already reduced to their measures and returns the cell's statistics, unrounded.

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use rand_distr::{Beta, Distribution, StandardUniform};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::percentile::{median, sorted, type7};
use crate::suppression::Suppression;

pub mod running;

/// The measures of one observation (methodology §2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measures {
    pub kind: Kind,
    /// Completed timings only: elapsed working days.
    pub elapsed_days: Option<u32>,
    /// Completed timings only: elapsed <= the statutory limit in force on submitted_on.
    pub on_time: Option<bool>,
    /// Standard Cost Model cost per case, VND; `None` when staff hours are missing.
    pub scm_cost: Option<f64>,
    pub visits: Option<u16>,
    /// unofficial_payments > 0.
    pub informal_payment: bool,
    pub verified: bool,
}

impl Measures {
    /// The elapsed days this observation gives the days statistics: completed timings only.
    /// One definition shared by [`compute`] and [`running`], so they cannot disagree on
    /// membership.
    pub(crate) fn timing_days(&self) -> Option<u32> {
        self.elapsed_days
            .filter(|_| self.kind == Kind::CompletedTiming)
    }

    /// The verdict this observation gives the on-time rate: completed timings only.
    pub(crate) fn timing_on_time(&self) -> Option<bool> {
        self.on_time.filter(|_| self.kind == Kind::CompletedTiming)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    CompletedTiming,
    PendingTiming,
    Complaint,
}

/// Inputs of the SCM cost, in VND and hours.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CostInputs {
    pub official_fees: Option<i64>,
    pub unofficial_payments: Option<i64>,
    pub external_services: Option<i64>,
    pub staff_hours: Option<f64>,
}

/// SCM cost per case = official fees + unofficial payments + external services + staff hours
/// x hourly tariff. Missing amounts count as 0; missing staff hours mean no cost at all
/// (methodology §2: "not computed", which is not 0).
pub fn scm_cost(c: &CostInputs, hourly_tariff_vnd: f64) -> Option<f64> {
    let hours = c.staff_hours?;
    let amounts = [c.official_fees, c.unofficial_payments, c.external_services];
    let money: i64 = amounts.iter().map(|a| a.unwrap_or(0)).sum();
    Some(money as f64 + hours * hourly_tariff_vnd)
}

/// What an observation row says, for [`measures`]: the raw facts, plus the statutory limit
/// in force on `submitted_on` (looked up by the caller on the procedure's timeline).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Facts {
    pub is_complaint: bool,
    pub submitted_on: Option<chrono::NaiveDate>,
    pub completed_on: Option<chrono::NaiveDate>,
    /// `None` when no terms were in force on submitted_on (before registration, after
    /// abolition): the timing then has no on-time verdict and leaves the on-time rate.
    pub statutory_limit: Option<u16>,
    /// The year the observation counts in (methodology §1), which selects the tariff.
    pub year: i32,
    pub costs: CostInputs,
    pub visits: Option<u16>,
    /// An officer verified the submission (counted, never weighted: methodology §1 includes
    /// received and verified observations alike).
    pub verified: bool,
}

/// An observation's measures (methodology §2).
pub fn measures(
    facts: &Facts,
    calendar: &crate::calendar::WorkingCalendar,
    tariffs: &crate::tariff::HourlyTariffs,
) -> Measures {
    let (kind, elapsed_days) = match (facts.is_complaint, facts.submitted_on, facts.completed_on) {
        (true, _, _) => (Kind::Complaint, None),
        (false, Some(from), Some(to)) => (Kind::CompletedTiming, Some(calendar.elapsed(from, to))),
        (false, _, _) => (Kind::PendingTiming, None),
    };
    Measures {
        kind,
        elapsed_days,
        on_time: elapsed_days
            .zip(facts.statutory_limit)
            .map(|(days, limit)| days <= u32::from(limit)),
        scm_cost: tariffs
            .for_year(facts.year)
            .and_then(|tariff| scm_cost(&facts.costs, tariff)),
        visits: facts.visits,
        informal_payment: facts.costs.unofficial_payments.is_some_and(|v| v > 0),
        verified: facts.verified,
    }
}

/// A confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

/// The statistics of one cell, unrounded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CellStats {
    pub n: usize,
    pub n_timings: usize,
    pub n_pending: usize,
    pub n_complaints: usize,
    /// Observations an officer verified (published with the counts, even when suppressed).
    pub n_verified: usize,
    /// Primary or secondary suppression (§4): every statistic below is then null.
    pub suppressed: bool,
    /// Why the cell is suppressed; `None` when it is published.
    pub suppression: Option<Suppression>,
    pub median_days: Option<f64>,
    pub p90_days: Option<f64>,
    pub median_days_ci: Option<Interval>,
    pub median_cost: Option<f64>,
    pub median_cost_ci: Option<Interval>,
    pub median_visits: Option<f64>,
    pub on_time_rate: Option<f64>,
    pub informal_payment_rate: Option<f64>,
}

impl CellStats {
    /// A cell's counts, suppressed below k (clamped to at least [`MIN_K`]), every statistic
    /// still null: what a suppressed cell publishes (methodology §4), and where [`compute`]
    /// and the running cell both start.
    pub fn counts_only(
        n: usize,
        n_timings: usize,
        n_pending: usize,
        n_complaints: usize,
        n_verified: usize,
        k: usize,
    ) -> CellStats {
        let suppressed = is_suppressed(n, k);
        CellStats {
            n,
            n_timings,
            n_pending,
            n_complaints,
            n_verified,
            suppressed,
            suppression: suppressed.then_some(Suppression::Primary),
            median_days: None,
            p90_days: None,
            median_days_ci: None,
            median_cost: None,
            median_cost_ci: None,
            median_visits: None,
            on_time_rate: None,
            informal_payment_rate: None,
        }
    }
}

impl CellStats {
    /// What the cell publishes when §4's secondary suppression hides it: its counts, and
    /// every statistic null, as a primary suppression (1.1). A cell already suppressed keeps
    /// its primary reason.
    pub fn secondary(self) -> CellStats {
        if self.suppressed {
            return self;
        }
        CellStats {
            suppressed: true,
            suppression: Some(Suppression::Secondary),
            ..CellStats::counts_only(
                self.n,
                self.n_timings,
                self.n_pending,
                self.n_complaints,
                self.n_verified,
                0,
            )
        }
    }
}

/// Whether a cell of n observations is suppressed under threshold k (clamped to at least
/// [`MIN_K`]; methodology §4).
pub(crate) fn is_suppressed(n: usize, k: usize) -> bool {
    n < k.max(MIN_K)
}

/// Disclosure threshold: the default k and the floor no configuration may go below.
pub const DEFAULT_K: usize = 5;
pub const MIN_K: usize = 3;

/// Bootstrap resamples (methodology §3).
pub const BOOTSTRAP_B: usize = 1000;

/// A cell's key as it seeds the bootstrap (methodology §3), `geography/year/procedure/province`
/// (e.g. `vn-34/2025/1.001612/79`): part of the published method, since another spelling
/// would draw other intervals.
pub fn seed_key(geography: &str, year: i32, procedure: &str, province: &str) -> String {
    format!("{geography}/{year}/{procedure}/{province}")
}

/// Computes a cell. `k` is the suppression threshold (clamped to at least [`MIN_K`]);
/// `cell_key` identifies the cell (e.g. `vn-34/2025/1.001612/79`) and seeds the bootstrap
/// together with the methodology version, so every rebuild gives identical numbers.
pub fn compute(observations: &[Measures], k: usize, cell_key: &str) -> CellStats {
    let n = observations.len();
    let count = |kind: Kind| observations.iter().filter(|o| o.kind == kind).count();
    let (n_timings, n_pending, n_complaints) = (
        count(Kind::CompletedTiming),
        count(Kind::PendingTiming),
        count(Kind::Complaint),
    );
    let n_verified = observations.iter().filter(|o| o.verified).count();
    let mut stats = CellStats::counts_only(n, n_timings, n_pending, n_complaints, n_verified, k);
    if stats.suppressed {
        // Counts only: every statistic stays null (methodology §4).
        return stats;
    }
    let days = sorted(
        observations
            .iter()
            .filter_map(|o| o.timing_days().map(f64::from))
            .collect(),
    );
    let costs = sorted(observations.iter().filter_map(|o| o.scm_cost).collect());
    let visits = sorted(
        observations
            .iter()
            .filter_map(|o| o.visits.map(f64::from))
            .collect(),
    );
    let on_time: Vec<bool> = observations
        .iter()
        .filter_map(Measures::timing_on_time)
        .collect();

    stats.median_days = median(&days);
    stats.p90_days = type7(&days, 0.9);
    stats.median_cost = median(&costs);
    stats.median_visits = median(&visits);
    stats.on_time_rate = share(on_time.iter().filter(|t| **t).count(), on_time.len());
    stats.informal_payment_rate = share(
        observations.iter().filter(|o| o.informal_payment).count(),
        n,
    );
    stats.median_days_ci = bootstrap_median_ci(&days, &days_ci_key(cell_key));
    stats.median_cost_ci = bootstrap_median_ci(&costs, &cost_ci_key(cell_key));
    stats
}

/// The bootstrap keys of a cell's two intervals, shared with [`running`]: the key seeds the
/// random stream, so a different spelling would be a different interval.
fn days_ci_key(cell_key: &str) -> String {
    format!("{cell_key}/days")
}

fn cost_ci_key(cell_key: &str) -> String {
    format!("{cell_key}/cost")
}

fn share(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// The version in the bootstrap's seed: the one that introduced the bootstrap (§3). It stays
/// `1.0` until the bootstrap rule itself changes, so 1.1 draws the intervals 1.0 drew.
pub const BOOTSTRAP_VERSION: &str = "1.0";

/// The generator for one statistic of one cell: ChaCha8 seeded with
/// SHA-256("redtape-methodology-<bootstrap version>/<key>").
fn rng_for(key: &str) -> ChaCha8Rng {
    let digest = Sha256::digest(format!("redtape-methodology-{BOOTSTRAP_VERSION}/{key}"));
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&digest);
    ChaCha8Rng::from_seed(seed)
}

/// 95% percentile-bootstrap interval of the median of `sorted` values, B = 1000 resamples.
///
/// Each resample's median is drawn through its order statistics instead of by drawing m
/// values: a resample of m values with replacement from the observations is F^-1(U_1..U_m)
/// for independent uniforms U_i and the empirical quantile function F^-1 (monotone), so its
/// k-th smallest value is F^-1(U_(k)), where the k-th smallest of m uniforms U_(k) follows
/// Beta(k, m - k + 1); the next one is U_(k) + (1 - U_(k)) (1 - W^(1/(m-k))) for a uniform W.
/// This is the same distribution as literal resampling, at O(1) per resample instead of O(m),
/// which matters for cells with a million observations.
pub fn bootstrap_median_ci(sorted: &[f64], key: &str) -> Option<Interval> {
    bootstrap_median_ci_of(sorted.len(), |i| sorted.get(i).copied(), key)
}

/// [`bootstrap_median_ci`] of m values given by `at(i)`, the i-th smallest (0-based).
///
/// The one implementation of the bootstrap: the slice form and the incremental cell
/// ([`running`]) both call it, so the same values and key draw the same random stream, read
/// the same order statistics and give bit-for-bit the same interval. Reads at most
/// 2 [`BOOTSTRAP_B`] order statistics. `None` for m = 0 or an `at` that has no such value.
pub fn bootstrap_median_ci_of(
    m: usize,
    at: impl Fn(usize) -> Option<f64>,
    key: &str,
) -> Option<Interval> {
    if m == 0 {
        return None;
    }
    if m == 1 {
        let x = at(0)?;
        return Some(Interval { low: x, high: x });
    }
    let quantile = |u: f64| -> Option<f64> {
        // F^-1(u) = x_(ceil(u m)), 1-based, for u in (0, 1].
        let j = ((u * m as f64).ceil() as usize).clamp(1, m);
        at(j - 1)
    };
    // The type-7 median of m values: one middle order statistic (m odd) or the mean of two.
    let k = m.div_ceil(2);
    let even = m.is_multiple_of(2);
    let Ok(beta) = Beta::new(k as f64, (m - k + 1) as f64) else {
        return None;
    };
    let mut rng = rng_for(key);
    let mut medians = Vec::with_capacity(BOOTSTRAP_B);
    for _ in 0..BOOTSTRAP_B {
        let u_k: f64 = beta.sample(&mut rng);
        let low = quantile(u_k)?;
        let value = if even {
            let w: f64 = StandardUniform.sample(&mut rng);
            let u_next = u_k + (1.0 - u_k) * (1.0 - w.powf(1.0 / (m - k) as f64));
            (low + quantile(u_next)?) / 2.0
        } else {
            low
        };
        medians.push(value);
    }
    let medians = crate::percentile::sorted(medians);
    Some(Interval {
        low: type7(&medians, 0.025)?,
        high: type7(&medians, 0.975)?,
    })
}

#[cfg(test)]
mod tests;
