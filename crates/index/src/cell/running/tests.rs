use proptest::prelude::*;
use proptest::sample::Index;

use super::*;
use crate::cell::compute;

/// Bitwise equality of measures, the identity `remove` uses (f64 `==` would equate 0.0 and
/// -0.0), written independently of `encode`.
fn same_bits(a: &Measures, b: &Measures) -> bool {
    a.kind == b.kind
        && a.elapsed_days == b.elapsed_days
        && a.on_time == b.on_time
        && a.scm_cost.map(f64::to_bits) == b.scm_cost.map(f64::to_bits)
        && a.visits == b.visits
        && a.informal_payment == b.informal_payment
        && a.verified == b.verified
}

fn without_intervals(mut s: CellStats) -> CellStats {
    s.median_days_ci = None;
    s.median_cost_ci = None;
    s
}

/// The running cell agrees with `compute` on `model`, for k = 3 and 5 (suppression flips for
/// n = 3 and 4). With `full`, the intervals too.
fn assert_agrees(cell: &RunningCell, model: &[Measures], key: &str, full: bool) {
    assert_eq!(cell.len(), model.len());
    assert_eq!(cell.is_empty(), model.is_empty());
    for k in [3, 5] {
        let want = compute(model, k, key);
        let fast = cell.stats_without_intervals(k);
        assert_eq!(fast, without_intervals(want.clone()), "k = {k}, {model:?}");
        if full {
            assert_eq!(cell.stats(k, key), want, "k = {k}, {model:?}");
            assert_eq!(
                cell.intervals(k, key),
                (want.median_days_ci, want.median_cost_ci)
            );
        }
    }
}

fn timing(days: u32, cost: Option<f64>, visits: Option<u16>) -> Measures {
    Measures {
        kind: Kind::CompletedTiming,
        elapsed_days: Some(days),
        on_time: Some(days <= 5),
        scm_cost: cost,
        visits,
        informal_payment: false,
        verified: false,
    }
}

fn any_cost() -> impl Strategy<Value = f64> {
    prop_oneof![
        // A small pool, so costs repeat (0.0 and -0.0 sort apart but compare ==).
        proptest::sample::select(vec![0.0, -0.0, 50_000.0, 100_000.5, 250_000.25, 1e15 + 0.5]),
        0.0f64..1e8,
        (0u64..1_000_000_000_000_000, 0u32..100)
            .prop_map(|(whole, cents)| whole as f64 + f64::from(cents) / 100.0),
        -1e6f64..0.0,
    ]
}

fn any_days() -> impl Strategy<Value = u32> {
    prop_oneof![
        8 => 0u32..60,
        1 => 4000u32..4200,
        1 => any::<u32>(),
    ]
}

fn any_measures() -> impl Strategy<Value = Measures> {
    (
        (0u8..3, proptest::option::weighted(0.8, any_days())),
        proptest::option::of(any::<bool>()),
        proptest::option::weighted(0.7, any_cost()),
        proptest::option::of(prop_oneof![9 => 0u16..20, 1 => any::<u16>()]),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |((kind, elapsed_days), on_time, scm_cost, visits, informal_payment, verified)| {
                Measures {
                    // Any combination, even ones `measures` never makes (a pending timing
                    // with elapsed days): the membership rules must agree on all of them.
                    kind: match kind {
                        0 => Kind::CompletedTiming,
                        1 => Kind::PendingTiming,
                        _ => Kind::Complaint,
                    },
                    elapsed_days,
                    on_time,
                    scm_cost,
                    visits,
                    informal_payment,
                    verified,
                }
            },
        )
}

#[derive(Debug, Clone)]
enum Op {
    Add(Measures),
    /// Adds again a measure already held (or this one if none is).
    AddCopy(Index, Measures),
    /// Removes a held measure (or tries this one if none is).
    RemoveHeld(Index, Measures),
    /// Tries to remove this measure, most likely never added.
    RemoveAny(Measures),
}

fn any_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => any_measures().prop_map(Op::Add),
        2 => (any::<Index>(), any_measures()).prop_map(|(i, m)| Op::AddCopy(i, m)),
        3 => (any::<Index>(), any_measures()).prop_map(|(i, m)| Op::RemoveHeld(i, m)),
        1 => any_measures().prop_map(Op::RemoveAny),
    ]
}

/// Applies `m`'s removal to the model as `remove` should: the first bitwise-equal measure.
fn model_remove(model: &mut Vec<Measures>, m: &Measures) -> bool {
    match model.iter().position(|held| same_bits(held, m)) {
        Some(at) => {
            model.remove(at);
            true
        }
        None => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn equals_compute_after_every_step(ops in proptest::collection::vec(any_op(), 0..48)) {
        let mut cell = RunningCell::new();
        let mut model: Vec<Measures> = Vec::new();
        for (step, op) in ops.iter().enumerate() {
            match op {
                Op::Add(m) => {
                    cell.add(m);
                    model.push(*m);
                }
                Op::AddCopy(i, m) => {
                    let m = if model.is_empty() { *m } else { model[i.index(model.len())] };
                    cell.add(&m);
                    model.push(m);
                }
                Op::RemoveHeld(i, m) => {
                    let m = if model.is_empty() { *m } else { model[i.index(model.len())] };
                    let held = model_remove(&mut model, &m);
                    prop_assert_eq!(cell.remove(&m), held);
                }
                Op::RemoveAny(m) => {
                    let held = model_remove(&mut model, m);
                    prop_assert_eq!(cell.remove(m), held);
                }
            }
            // The intervals (2 x 1000 bootstrap draws each side) at every third step.
            assert_agrees(&cell, &model, "vn-34/2025/1.001612/79", step % 3 == 2);
        }
        assert_agrees(&cell, &model, "vn-34/2025/1.001612/79", true);
        // The order in which the same multiset was reached does not matter.
        let mut fresh = RunningCell::new();
        for m in &model {
            fresh.add(m);
        }
        prop_assert_eq!(fresh.stats(5, "c"), cell.stats(5, "c"));
    }

    /// A summing cell (national and breakdown cells, 1.1) gives the same figures as `compute`
    /// for what it holds, bit for bit, through additions and removals of held measures
    /// (which is all the projector gives it: each observation also sits in an exact cell).
    #[test]
    fn a_summing_cell_equals_compute_too(ops in proptest::collection::vec(any_op(), 0..48)) {
        let mut cell = RunningCell::summing();
        let mut model: Vec<Measures> = Vec::new();
        for (step, op) in ops.iter().enumerate() {
            match op {
                Op::Add(m) => {
                    cell.add(m);
                    model.push(*m);
                }
                Op::AddCopy(i, m) | Op::RemoveHeld(i, m) if model.is_empty() => {
                    let _ = i;
                    cell.add(m);
                    model.push(*m);
                }
                Op::AddCopy(i, _) => {
                    let m = model[i.index(model.len())];
                    cell.add(&m);
                    model.push(m);
                }
                Op::RemoveHeld(i, _) => {
                    let m = model[i.index(model.len())];
                    prop_assert!(model_remove(&mut model, &m));
                    prop_assert!(cell.remove(&m));
                }
                Op::RemoveAny(_) => {}
            }
            assert_agrees(&cell, &model, "vn-34/2025/1.001612/all", step % 3 == 2);
        }
        assert_agrees(&cell, &model, "vn-34/2025/1.001612/all", true);
    }

    #[test]
    fn encoding_is_exact_and_ordered_by_cost(a in any_measures(), b in any_measures()) {
        prop_assert_eq!(encode(&a) == encode(&b), same_bits(&a, &b));
        prop_assert_eq!(cost_of(encode(&a)).map(f64::to_bits), a.scm_cost.map(f64::to_bits));
        if let (Some(x), Some(y)) = (a.scm_cost, b.scm_cost) {
            if x.total_cmp(&y).is_ne() {
                prop_assert_eq!(encode(&a).cmp(&encode(&b)), x.total_cmp(&y));
            }
        }
        if a.scm_cost.is_some() && b.scm_cost.is_none() {
            prop_assert!(encode(&a) < encode(&b), "costs absent sort last");
        }
    }
}

#[test]
fn cost_keys_follow_total_order_and_round_trip() {
    let values = [
        f64::NEG_INFINITY,
        -1e300,
        -1.5,
        -f64::MIN_POSITIVE,
        -0.0,
        0.0,
        f64::MIN_POSITIVE,
        0.1,
        1.0,
        275_000.0,
        1e15 + 0.5,
        f64::MAX,
        f64::INFINITY,
    ];
    for pair in values.windows(2) {
        assert!(cost_key(pair[0]) < cost_key(pair[1]), "{pair:?}");
    }
    for v in values {
        assert_eq!(cost_from_key(cost_key(v)).to_bits(), v.to_bits());
    }
}

/// The golden cell of cell/tests.rs, built up, torn down and rebuilt.
#[test]
fn golden_cell_incrementally() {
    let golden = [
        timing(3, Some(100_000.0), Some(1)),
        timing(12, Some(250_000.0), Some(2)),
        timing(3, None, None),
        timing(2, Some(400_000.0), Some(0)),
        timing(9, Some(50_000.0), Some(3)),
        timing(5, None, Some(1)),
        Measures {
            kind: Kind::PendingTiming,
            elapsed_days: None,
            on_time: None,
            scm_cost: Some(300_000.0),
            visits: Some(2),
            informal_payment: false,
            verified: false,
        },
        Measures {
            kind: Kind::Complaint,
            elapsed_days: None,
            on_time: None,
            scm_cost: Some(2_000_000.0),
            visits: Some(4),
            informal_payment: true,
            verified: true,
        },
    ];
    let mut cell = RunningCell::new();
    for m in &golden {
        cell.add(m);
    }
    let s = cell.stats(5, "vn-34/2025/1.001612/79");
    assert_eq!(s, compute(&golden, 5, "vn-34/2025/1.001612/79"));
    // The hand-worked figures of cell/tests.rs.
    assert_eq!((s.median_days, s.p90_days), (Some(4.0), Some(10.5)));
    assert_eq!(
        (s.median_cost, s.median_visits),
        (Some(275_000.0), Some(2.0))
    );
    assert_eq!(s.on_time_rate, Some(4.0 / 6.0));
    assert_eq!(s.n_verified, 1);
    for (i, m) in golden.iter().enumerate().rev() {
        assert!(cell.remove(m));
        assert_eq!(cell.stats(5, "g"), compute(&golden[..i], 5, "g"));
    }
    assert!(cell.is_empty());
}

#[test]
fn remove_of_an_absent_measure_changes_nothing() {
    let mut cell = RunningCell::new();
    assert!(!cell.remove(&timing(3, None, None)), "nothing held");
    let held = [
        timing(3, Some(0.0), Some(1)),
        timing(4, Some(10.5), None),
        timing(40, None, Some(2)),
        timing(3, Some(0.0), Some(1)),
        timing(7, Some(99.0), Some(0)),
    ];
    for m in &held {
        cell.add(m);
    }
    let before = (
        cell.stats(3, "c"),
        cell.heap_bytes(),
        cell.len(),
        format!("{cell:?}"),
    );
    let first = held[0];
    let near_misses = [
        Measures {
            scm_cost: Some(-0.0),
            ..first
        },
        Measures {
            scm_cost: None,
            ..first
        },
        Measures {
            verified: true,
            ..first
        },
        Measures {
            informal_payment: true,
            ..first
        },
        Measures {
            visits: Some(2),
            ..first
        },
        Measures {
            on_time: None,
            ..first
        },
        Measures {
            kind: Kind::PendingTiming,
            ..first
        },
        // Each part is held, by different observations: still not an observation held.
        timing(3, Some(10.5), Some(2)),
        timing(u32::MAX, None, None),
    ];
    for m in &near_misses {
        assert!(!cell.remove(m), "{m:?}");
        let after = (
            cell.stats(3, "c"),
            cell.heap_bytes(),
            cell.len(),
            format!("{cell:?}"),
        );
        assert_eq!(after, before, "{m:?}");
    }
    // The duplicate goes twice, not thrice.
    assert!(cell.remove(&first));
    assert!(cell.remove(&first));
    assert!(!cell.remove(&first));
    let rest = [held[1], held[2], held[4]];
    assert_eq!(cell.stats(3, "c"), compute(&rest, 3, "c"));
    assert_eq!(cell.stats(3, "c").median_cost, Some(54.75));
}

/// SplitMix64: a deterministic stream for the large tests, without a dependency.
struct Stream(u64);

impl Stream {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Plausible measures: mostly completed timings, costs with fractional parts, some
    /// missing values and some duplicates.
    fn measures(&mut self) -> Measures {
        let kind = match self.below(10) {
            0 => Kind::PendingTiming,
            1 => Kind::Complaint,
            _ => Kind::CompletedTiming,
        };
        let days = (kind == Kind::CompletedTiming).then(|| match self.below(1000) {
            0 => 5000 + self.below(100_000) as u32,
            _ => self.below(400) as u32,
        });
        let hours = self.below(2000) as f64 / 4.0;
        Measures {
            kind,
            elapsed_days: days,
            on_time: days.filter(|_| self.below(20) != 0).map(|d| d <= 15),
            scm_cost: (self.below(8) != 0)
                .then(|| (self.below(5_000) * 1000) as f64 + hours * 23_800.0),
            visits: (self.below(4) != 0).then(|| self.below(12) as u16),
            informal_payment: self.below(7) == 0,
            verified: self.below(3) == 0,
        }
    }
}

#[test]
fn a_large_cell_equals_compute() {
    let mut stream = Stream(2025);
    let all: Vec<Measures> = (0..200_000).map(|_| stream.measures()).collect();
    let mut cell = RunningCell::new();
    for m in &all {
        cell.add(m);
    }
    assert_eq!(cell.stats(5, "large"), compute(&all, 5, "large"));
    // Remove a pseudo-random half: swap-remove chosen positions of a copy.
    let mut kept = all.clone();
    for _ in 0..100_000 {
        let at = stream.below(kept.len() as u64) as usize;
        let m = kept.swap_remove(at);
        assert!(cell.remove(&m));
    }
    assert_eq!(cell.len(), 100_000);
    let s = cell.stats(5, "large");
    assert_eq!(s, compute(&kept, 5, "large"));
    assert!(s.median_cost_ci.is_some() && s.median_days_ci.is_some());
    // Back to empty: nothing left over.
    for m in &kept {
        assert!(cell.remove(m));
    }
    assert!(cell.is_empty());
    assert_eq!(cell.stats(5, "large"), compute(&[], 5, "large"));
}

#[test]
fn heap_bytes_per_observation_stay_small() {
    // 100,000 observations over 70 cells: about 1,430 each, as in the service's sizing.
    let mut stream = Stream(7);
    let mut cells = vec![RunningCell::new(); 70];
    for i in 0..100_000 {
        let m = stream.measures();
        cells[i % 70].add(&m);
    }
    let bytes: usize = cells.iter().map(RunningCell::heap_bytes).sum();
    let per_observation = bytes as f64 / 100_000.0;
    // 16 bytes per observation in a block of at most twice its length, plus each cell's
    // days tree (512 slots of 4 bytes here) and visits tree (16 slots).
    assert!(
        (16.0..48.0).contains(&per_observation),
        "{per_observation} bytes per observation"
    );
    let empty = RunningCell::new();
    assert_eq!(empty.heap_bytes(), 0, "an empty cell allocates nothing");
}

/// A summing cell refuses, changing nothing, a removal its costs or counters show it cannot
/// hold: a cost it never received, a kind, a verdict or a day count it has none of.
#[test]
fn a_summing_cell_refuses_what_it_cannot_hold() {
    let mut cell = RunningCell::summing();
    let held = timing(3, Some(100_000.0), Some(1));
    cell.add(&held);
    let before = cell.stats(5, "k");
    for never in [
        timing(3, Some(99_000.0), Some(1)),
        timing(4, Some(100_000.0), Some(1)),
        timing(3, Some(100_000.0), Some(2)),
        timing(3, None, Some(1)),
        Measures {
            kind: Kind::Complaint,
            elapsed_days: None,
            on_time: None,
            ..held
        },
        Measures {
            verified: true,
            ..held
        },
    ] {
        assert!(!cell.remove(&never), "{never:?}");
        assert_eq!(cell.stats(5, "k"), before);
    }
    assert!(cell.remove(&held));
    assert!(cell.is_empty());
    assert!(!cell.remove(&held));
}

/// A cell built at once (a start-up) is the cell the same adds give: for an exact and a
/// summing cell, started empty or holding a third of them already, with one block or many,
/// and it goes on accepting adds and removes as one built by adds does.
#[test]
fn a_cell_built_at_once_equals_one_built_by_adds() {
    let mut stream = Stream(7);
    for n in [0, 1, 3, 1_024, 1_025, 1_500, 2_047, 2_048, 5_000, 60_000] {
        let all: Vec<Measures> = (0..n).map(|_| stream.measures()).collect();
        for summing in [false, true] {
            let empty = || {
                if summing {
                    RunningCell::summing()
                } else {
                    RunningCell::new()
                }
            };
            let mut one_by_one = empty();
            let mut started = empty();
            for m in &all {
                one_by_one.add(m);
            }
            let before = n / 3;
            for m in &all[..before] {
                started.add(m);
            }
            let mut builder = started.builder();
            for m in &all[before..] {
                builder.add(m);
            }
            let mut built = builder.build();
            let key = format!("n{n}/{summing}");
            assert_eq!(built.stats(5, &key), one_by_one.stats(5, &key), "{key}");
            assert_eq!(built.stats(5, &key), compute(&all, 5, &key), "{key}");
            // Then it changes as a cell built by adds does.
            let extra = stream.measures();
            built.add(&extra);
            one_by_one.add(&extra);
            for m in all.iter().step_by(3) {
                assert!(built.remove(m));
                assert!(one_by_one.remove(m));
            }
            assert_eq!(built.stats(5, &key), one_by_one.stats(5, &key), "{key}");
            assert_eq!(built.len(), one_by_one.len());
        }
    }
}
