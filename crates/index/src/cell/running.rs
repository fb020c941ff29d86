//! A cell's statistics kept up to date observation by observation.
//!
//! [`compute`](super::compute) scans a cell's observations, which is O(cell size) for every
//! projected event. The projector instead keeps one [`RunningCell`] per cell and adds or
//! removes an observation's measures as its state changes, so projecting an event costs
//! O(log n) whatever the cell holds, and every statistic but the intervals is read in
//! O(log n) ([`RunningCell::stats_without_intervals`]). The two bootstrap intervals read up
//! to 2 B order statistics (B = [`BOOTSTRAP_B`](super::BOOTSTRAP_B) = 1000), O(B log n)
//! plus B random draws, which is why they are a separate call
//! ([`RunningCell::intervals`]) the projector may make at a bounded rate.
//!
//! The figures are bit for bit those of `compute` for the same multiset of measures: the
//! counters are exact, the order statistics are the same values in the same (total) order,
//! and the percentile and bootstrap arithmetic is the very same code ([`type7_of`],
//! [`bootstrap_median_ci_of`]), fed by an accessor instead of a sorted slice.

use super::{
    bootstrap_median_ci_of, cost_ci_key, days_ci_key, share, CellStats, Interval, Kind, Measures,
};
use crate::percentile::type7_of;

mod order;

use order::{IntCounts, SortedBlocks, Unsorted};

/// A cell's observations' measures, kept so that any statistic of §3 is read without a scan.
#[derive(Debug, Clone, Default)]
pub struct RunningCell {
    n: usize,
    n_timings: usize,
    n_pending: usize,
    n_complaints: usize,
    n_verified: usize,
    n_informal: usize,
    /// Completed timings with an on-time verdict, and those on time.
    n_verdicts: usize,
    n_on_time: usize,
    /// Observations with a cost: they are the first `n_costs` of `observations`.
    n_costs: usize,
    /// The observations, or only their costs (see [`Held`]).
    observations: Held,
    /// Elapsed days of completed timings.
    days: IntCounts,
    visits: IntCounts,
}

/// Many observations added to a cell at once, as a start-up does for every cell: the
/// counters are kept as [`RunningCell::add`] keeps them, the ordered values are gathered
/// unsorted and sorted once by [`CellBuilder::build`]. Adding a value one by one shifts half
/// a block (up to a thousand values) each time; measured on the load of 1,000,000
/// observations, that was a third of the start-up (docs/benchmarks.md, issue 15).
#[derive(Debug)]
pub struct CellBuilder {
    /// Everything but `observations`, which is empty until `build`.
    cell: RunningCell,
    pending: Pending,
}

/// The ordered values of a [`CellBuilder`], in the form its cell will hold them ([`Held`]).
#[derive(Debug)]
enum Pending {
    Exact(Unsorted<u128>),
    Costs(Unsorted<u64>),
}

impl CellBuilder {
    /// Adds one observation's measures.
    pub fn add(&mut self, m: &Measures) {
        match &mut self.pending {
            Pending::Exact(all) => all.push(encode(m)),
            Pending::Costs(costs) => {
                if let Some(cost) = m.scm_cost {
                    costs.push(cost_key(cost));
                }
            }
        }
        self.cell.count(m);
    }

    /// The cell: the same as adding every observation to it with [`RunningCell::add`].
    pub fn build(self) -> RunningCell {
        let mut cell = self.cell;
        cell.observations = match self.pending {
            Pending::Exact(all) => Held::Exact(all.sorted()),
            Pending::Costs(costs) => Held::Costs(costs.sorted()),
        };
        cell
    }
}

/// What a cell keeps of each observation beyond its counters.
#[derive(Debug, Clone)]
enum Held {
    /// Every observation, encoded exactly ([`encode`]) and ordered by cost first. Being
    /// exact, it is what lets [`RunningCell::remove`] refuse measures it never received;
    /// being ordered by cost, it is also the cost order statistics. 16 bytes each.
    Exact(SortedBlocks<u128>),
    /// Only the costs, as order keys ([`cost_key`]): the cost order statistics, 8 bytes per
    /// observation with a cost. For cells that sum others (national and breakdown cells,
    /// 1.1), whose observations each also sit in an exact province cell: that one catches
    /// a removal of something never added; this one refuses only what its costs and
    /// counters show it cannot hold.
    Costs(SortedBlocks<u64>),
}

impl Default for Held {
    fn default() -> Self {
        Held::Exact(SortedBlocks::default())
    }
}

impl RunningCell {
    pub fn new() -> Self {
        Self::default()
    }

    /// A cell that keeps only its observations' costs beyond its counters (see [`Held`]):
    /// the same figures, in half the memory or less.
    pub fn summing() -> Self {
        RunningCell {
            observations: Held::Costs(SortedBlocks::default()),
            ..Self::default()
        }
    }

    /// Adds one observation's measures.
    pub fn add(&mut self, m: &Measures) {
        match &mut self.observations {
            Held::Exact(all) => all.insert(encode(m)),
            Held::Costs(costs) => {
                if let Some(cost) = m.scm_cost {
                    costs.insert(cost_key(cost));
                }
            }
        }
        self.count(m);
    }

    /// A builder that adds many observations to this cell at once (see [`CellBuilder`]).
    pub fn builder(mut self) -> CellBuilder {
        let pending = match std::mem::take(&mut self.observations) {
            Held::Exact(all) => Pending::Exact(all.into_unsorted()),
            Held::Costs(costs) => Pending::Costs(costs.into_unsorted()),
        };
        CellBuilder {
            cell: self,
            pending,
        }
    }

    /// Counts one observation's measures in everything but the ordered values.
    fn count(&mut self, m: &Measures) {
        self.n += 1;
        *self.kind_count(m.kind) += 1;
        self.n_verified += usize::from(m.verified);
        self.n_informal += usize::from(m.informal_payment);
        if let Some(on_time) = m.timing_on_time() {
            self.n_verdicts += 1;
            self.n_on_time += usize::from(on_time);
        }
        self.n_costs += usize::from(m.scm_cost.is_some());
        if let Some(days) = m.timing_days() {
            self.days.insert(days);
        }
        if let Some(visits) = m.visits {
            self.visits.insert(u32::from(visits));
        }
    }

    /// Removes one observation with exactly these measures (as added earlier). Returns false
    /// (and changes nothing) if no such observation is held: a caller bug the projector logs.
    ///
    /// "Exactly" is bitwise: a cost of -0.0 is not a cost of 0.0 (they also sort apart in
    /// `compute`), which is right since the same observation always yields the same bits.
    pub fn remove(&mut self, m: &Measures) -> bool {
        let could = matches!(self.observations, Held::Exact(_)) || self.could_hold(m);
        let held = could
            && match &mut self.observations {
                Held::Exact(all) => all.remove(encode(m)),
                Held::Costs(costs) => m.scm_cost.is_none_or(|cost| costs.remove(cost_key(cost))),
            };
        if !held {
            return false;
        }
        // The observation was held, so each of its parts is too: the counters cannot
        // underflow and the value structures find their values.
        self.n -= 1;
        *self.kind_count(m.kind) -= 1;
        self.n_verified -= usize::from(m.verified);
        self.n_informal -= usize::from(m.informal_payment);
        if let Some(on_time) = m.timing_on_time() {
            self.n_verdicts -= 1;
            self.n_on_time -= usize::from(on_time);
        }
        self.n_costs -= usize::from(m.scm_cost.is_some());
        if let Some(days) = m.timing_days() {
            let held = self.days.remove(days);
            debug_assert!(held, "days out of step with the observations");
        }
        if let Some(visits) = m.visits {
            let held = self.visits.remove(u32::from(visits));
            debug_assert!(held, "visits out of step with the observations");
        }
        true
    }

    /// Whether every counter an observation with these measures adds to is above 0 (and,
    /// without a cost, whether some observation without one is held): a removal cannot
    /// underflow them.
    fn could_hold(&self, m: &Measures) -> bool {
        let kind = match m.kind {
            Kind::CompletedTiming => self.n_timings,
            Kind::PendingTiming => self.n_pending,
            Kind::Complaint => self.n_complaints,
        };
        let verdict = m
            .timing_on_time()
            .is_none_or(|on_time| self.n_verdicts > 0 && (!on_time || self.n_on_time > 0));
        kind > 0
            && (!m.verified || self.n_verified > 0)
            && (!m.informal_payment || self.n_informal > 0)
            && verdict
            && (m.scm_cost.is_some() || self.n > self.n_costs)
            && m.timing_days().is_none_or(|d| self.days.contains(d))
            && m.visits.is_none_or(|v| self.visits.contains(u32::from(v)))
    }

    fn kind_count(&mut self, kind: Kind) -> &mut usize {
        match kind {
            Kind::CompletedTiming => &mut self.n_timings,
            Kind::PendingTiming => &mut self.n_pending,
            Kind::Complaint => &mut self.n_complaints,
        }
    }

    /// n.
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    fn suppressed(&self, k: usize) -> bool {
        super::is_suppressed(self.n, k)
    }

    fn day_at(&self, rank: usize) -> Option<f64> {
        self.days.kth(rank).map(f64::from)
    }

    fn cost_at(&self, rank: usize) -> Option<f64> {
        if rank >= self.n_costs {
            return None;
        }
        match &self.observations {
            Held::Exact(all) => all.kth(rank).and_then(cost_of),
            Held::Costs(costs) => costs.kth(rank).map(cost_from_key),
        }
    }

    fn visits_at(&self, rank: usize) -> Option<f64> {
        self.visits.kth(rank).map(f64::from)
    }

    /// Every statistic of `compute` except the two bootstrap intervals (left None): O(log n).
    pub fn stats_without_intervals(&self, k: usize) -> CellStats {
        let mut stats = CellStats::counts_only(
            self.n,
            self.n_timings,
            self.n_pending,
            self.n_complaints,
            self.n_verified,
            k,
        );
        if stats.suppressed {
            // Counts only, as in `compute` (methodology §4).
            return stats;
        }
        let days = |i| self.day_at(i);
        stats.median_days = type7_of(self.days.len(), 0.5, days);
        stats.p90_days = type7_of(self.days.len(), 0.9, days);
        stats.median_cost = type7_of(self.n_costs, 0.5, |i| self.cost_at(i));
        stats.median_visits = type7_of(self.visits.len(), 0.5, |i| self.visits_at(i));
        stats.on_time_rate = share(self.n_on_time, self.n_verdicts);
        stats.informal_payment_rate = share(self.n_informal, self.n);
        stats
    }

    /// The two bootstrap intervals (median days, median cost), exactly as `compute` gives
    /// them for this cell key (None where compute gives None, e.g. when suppressed).
    pub fn intervals(&self, k: usize, cell_key: &str) -> (Option<Interval>, Option<Interval>) {
        if self.suppressed(k) {
            return (None, None);
        }
        (
            bootstrap_median_ci_of(self.days.len(), |i| self.day_at(i), &days_ci_key(cell_key)),
            bootstrap_median_ci_of(self.n_costs, |i| self.cost_at(i), &cost_ci_key(cell_key)),
        )
    }

    /// Everything: equal (==) to `compute(&all_measures, k, cell_key)`.
    pub fn stats(&self, k: usize, cell_key: &str) -> CellStats {
        let mut stats = self.stats_without_intervals(k);
        (stats.median_days_ci, stats.median_cost_ci) = self.intervals(k, cell_key);
        stats
    }

    /// Approximate heap bytes held (for memory accounting; the service must stay under 300 MB
    /// with 1,000,000 observations spread over its cells, each observation in 1-2 cells).
    /// O(1). Excludes the `RunningCell` value itself (`size_of::<RunningCell>()`), which
    /// lives wherever the caller keeps it.
    pub fn heap_bytes(&self) -> usize {
        let held = match &self.observations {
            Held::Exact(all) => all.heap_bytes(),
            Held::Costs(costs) => costs.heap_bytes(),
        };
        held + self.days.heap_bytes() + self.visits.heap_bytes()
    }
}

// An observation as one u128, so that the cell holds its exact multiset of observations in
// 16 bytes each and orders it by cost (in f64::total_cmp order, costs absent last). Layout,
// from the top (121 bits used):
//   120       cost absent
//   56..120   cost, as an order key (0 when absent)
//   54..56    kind
//   53        elapsed days present, 21..53 elapsed days
//   19..21    on time: 0 none, 1 late, 2 on time
//   18        visits present, 2..18 visits
//   1         informal payment
//   0         verified
const COST_ABSENT: u32 = 120;
const COST: u32 = 56;
const KIND: u32 = 54;
const DAYS_PRESENT: u32 = 53;
const DAYS: u32 = 21;
const ON_TIME: u32 = 19;
const VISITS_PRESENT: u32 = 18;
const VISITS: u32 = 2;
const INFORMAL: u32 = 1;

const SIGN: u64 = 1 << 63;

/// f64 bits to a u64 whose unsigned order is f64::total_cmp's order (a bijection).
fn cost_key(cost: f64) -> u64 {
    let bits = cost.to_bits();
    if bits & SIGN != 0 {
        !bits
    } else {
        bits | SIGN
    }
}

fn cost_from_key(key: u64) -> f64 {
    f64::from_bits(if key & SIGN != 0 { key & !SIGN } else { !key })
}

fn encode(m: &Measures) -> u128 {
    let cost = match m.scm_cost {
        Some(cost) => u128::from(cost_key(cost)) << COST,
        None => 1 << COST_ABSENT,
    };
    let kind: u128 = match m.kind {
        Kind::CompletedTiming => 0,
        Kind::PendingTiming => 1,
        Kind::Complaint => 2,
    };
    let days = m
        .elapsed_days
        .map_or(0, |d| (1 << DAYS_PRESENT) | (u128::from(d) << DAYS));
    let on_time: u128 = match m.on_time {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    };
    let visits = m
        .visits
        .map_or(0, |v| (1 << VISITS_PRESENT) | (u128::from(v) << VISITS));
    cost | (kind << KIND)
        | days
        | (on_time << ON_TIME)
        | visits
        | (u128::from(m.informal_payment) << INFORMAL)
        | u128::from(m.verified)
}

/// The cost of an encoded observation, `None` if it has none.
fn cost_of(encoded: u128) -> Option<f64> {
    if (encoded >> COST_ABSENT) & 1 == 1 {
        return None;
    }
    let key = (encoded >> COST) as u64;
    Some(cost_from_key(key))
}

#[cfg(test)]
mod tests;
