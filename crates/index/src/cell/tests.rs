use proptest::prelude::*;

use super::*;

fn timing(
    days: u32,
    limit: u32,
    cost: Option<f64>,
    visits: Option<u16>,
    informal: bool,
) -> Measures {
    Measures {
        kind: Kind::CompletedTiming,
        elapsed_days: Some(days),
        on_time: Some(days <= limit),
        scm_cost: cost,
        visits,
        informal_payment: informal,
        verified: false,
    }
}

fn other(kind: Kind, cost: Option<f64>, visits: Option<u16>, informal: bool) -> Measures {
    Measures {
        kind,
        elapsed_days: None,
        on_time: None,
        scm_cost: cost,
        visits,
        informal_payment: informal,
        verified: false,
    }
}

/// The golden cell, worked by hand.
///
/// Six completed timings (limit 5 working days), one pending timing, one complaint: n = 8.
///   elapsed days, sorted: 2 3 3 5 9 12 (m = 6)
///     median: h = 5 * 0.5 = 2.5 -> x3 + 0.5 (x4 - x3) = 3 + 0.5 * 2 = 4.0
///     p90:    h = 5 * 0.9 = 4.5 -> x5 + 0.5 (x6 - x5) = 9 + 0.5 * 3 = 10.5
///   on time (<= 5): 2 3 3 5 yes, 9 12 no -> 4/6 = 0.666...
///   SCM costs present (timings, pending and complaint alike), sorted:
///     50,000 100,000 250,000 300,000 400,000 2,000,000 (m = 6; two timings have none)
///     median: h = 2.5 -> 250,000 + 0.5 * 50,000 = 275,000
///   visits present, sorted: 0 1 1 2 2 3 4 (m = 7) -> median h = 3 -> x4 = 2
///   informal payments: one timing and the complaint -> 2/8 = 0.25
fn golden() -> Vec<Measures> {
    vec![
        timing(3, 5, Some(100_000.0), Some(1), false),
        timing(12, 5, Some(250_000.0), Some(2), true),
        timing(3, 5, None, None, false),
        timing(2, 5, Some(400_000.0), Some(0), false),
        timing(9, 5, Some(50_000.0), Some(3), false),
        timing(5, 5, None, Some(1), false),
        other(Kind::PendingTiming, Some(300_000.0), Some(2), false),
        other(Kind::Complaint, Some(2_000_000.0), Some(4), true),
    ]
}

#[test]
fn golden_cell() {
    let s = compute(&golden(), DEFAULT_K, "vn-34/2025/1.001612/79");
    assert_eq!(
        (s.n, s.n_timings, s.n_pending, s.n_complaints),
        (8, 6, 1, 1)
    );
    assert!(!s.suppressed);
    assert_eq!(s.median_days, Some(4.0));
    assert_eq!(s.p90_days, Some(10.5));
    assert_eq!(s.median_cost, Some(275_000.0));
    assert_eq!(s.median_visits, Some(2.0));
    assert_eq!(s.on_time_rate, Some(4.0 / 6.0));
    assert_eq!(s.informal_payment_rate, Some(0.25));
    // Rounded as published.
    assert_eq!(crate::rounding::rate(s.on_time_rate.unwrap()), 0.667);
}

#[test]
fn bootstrap_is_deterministic_and_brackets_the_median() {
    let a = compute(&golden(), DEFAULT_K, "vn-34/2025/1.001612/79");
    let b = compute(&golden(), DEFAULT_K, "vn-34/2025/1.001612/79");
    assert_eq!(a, b, "the same cell gives the same numbers");
    let ci = a.median_days_ci.unwrap();
    assert!(ci.low <= 4.0 && 4.0 <= ci.high, "{ci:?}");
    assert!(ci.low >= 2.0 && ci.high <= 12.0, "{ci:?}");
    let other_cell = compute(&golden(), DEFAULT_K, "vn-34/2025/1.001612/01");
    assert_eq!(other_cell.median_days, a.median_days);
}

/// Pins the bootstrap's numbers: if an upgrade of rand_chacha or rand_distr changed the
/// stream, published confidence intervals would change silently. This test makes that loud
/// (and such a change needs a new methodology version).
#[test]
fn bootstrap_numbers_are_pinned() {
    let days: Vec<f64> = (1..=101).map(f64::from).collect();
    let ci = bootstrap_median_ci(&days, "pinned").unwrap();
    assert_eq!((ci.low, ci.high), PINNED, "the bootstrap stream changed");
    // And it is a sensible interval for the median (51) of 1..=101.
    assert!(ci.low < 51.0 && 51.0 < ci.high);
}

/// Measured once and checked for sense: the median of 1..=101 is 51 with a standard error of
/// about 101 / (2 sqrt(101)) = 5.0, so a 95% interval near (41, 61) is expected.
const PINNED: (f64, f64) = (40.0, 61.0);

#[test]
fn bootstrap_matches_literal_resampling_in_distribution() {
    // For a small sample, compare the order-statistic method's interval with one from
    // literal resampling (many resamples): both estimate the same quantiles.
    let values = sorted(vec![1.0, 2.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0, 55.0]);
    let mut rng = rng_for("literal");
    let mut medians = Vec::new();
    for _ in 0..20_000 {
        let sample: Vec<f64> = (0..values.len())
            .map(|_| {
                let u: f64 = StandardUniform.sample(&mut rng);
                values[((u * values.len() as f64) as usize).min(values.len() - 1)]
            })
            .collect();
        medians.push(median(&sorted(sample)).unwrap());
    }
    let medians = sorted(medians);
    let literal = (
        type7(&medians, 0.025).unwrap(),
        type7(&medians, 0.975).unwrap(),
    );
    let fast = bootstrap_median_ci(&values, "fast").unwrap();
    assert!(
        (fast.low - literal.0).abs() <= 1.0,
        "{fast:?} vs {literal:?}"
    );
    assert!(
        (fast.high - literal.1).abs() <= 8.5,
        "{fast:?} vs {literal:?}"
    );
}

#[test]
fn suppression_at_k_minus_one_and_k() {
    let four: Vec<Measures> = golden().into_iter().take(4).collect();
    let s = compute(&four, 5, "c");
    assert!(s.suppressed);
    assert_eq!((s.n, s.n_timings), (4, 4));
    assert_eq!(
        (
            s.median_days,
            s.p90_days,
            s.median_cost,
            s.median_visits,
            s.on_time_rate,
            s.informal_payment_rate,
            s.median_days_ci,
            s.median_cost_ci
        ),
        (None, None, None, None, None, None, None, None)
    );
    let five: Vec<Measures> = golden().into_iter().take(5).collect();
    assert!(!compute(&five, 5, "c").suppressed);
    // k is never below 3, whatever the configuration says.
    let two: Vec<Measures> = golden().into_iter().take(2).collect();
    assert!(compute(&two, 1, "c").suppressed);
    let three: Vec<Measures> = golden().into_iter().take(3).collect();
    assert!(!compute(&three, 1, "c").suppressed);
}

#[test]
fn all_equal_values_and_missing_costs() {
    let same: Vec<Measures> = (0..6).map(|_| timing(7, 5, None, None, false)).collect();
    let s = compute(&same, 5, "c");
    assert_eq!((s.median_days, s.p90_days), (Some(7.0), Some(7.0)));
    assert_eq!(
        s.median_days_ci,
        Some(Interval {
            low: 7.0,
            high: 7.0
        })
    );
    assert_eq!(s.on_time_rate, Some(0.0));
    assert_eq!(
        (s.median_cost, s.median_cost_ci, s.median_visits),
        (None, None, None)
    );
}

#[test]
fn a_cell_of_complaints_has_no_timing_statistics() {
    let complaints: Vec<Measures> = (0..5)
        .map(|i| {
            other(
                Kind::Complaint,
                Some(f64::from(i) * 1000.0),
                None,
                i % 2 == 0,
            )
        })
        .collect();
    let s = compute(&complaints, 5, "c");
    assert_eq!((s.median_days, s.on_time_rate), (None, None));
    assert_eq!(s.median_cost, Some(2000.0));
    assert_eq!(s.informal_payment_rate, Some(0.6));
}

#[test]
fn scm_cost_rules() {
    let inputs = CostInputs {
        official_fees: Some(50_000),
        unofficial_payments: None,
        external_services: Some(1_000_000),
        staff_hours: Some(2.5),
    };
    // 50,000 + 0 + 1,000,000 + 2.5 h x 40,000 VND/h = 1,150,000
    assert_eq!(scm_cost(&inputs, 40_000.0), Some(1_150_000.0));
    let no_hours = CostInputs {
        staff_hours: None,
        ..inputs
    };
    assert_eq!(scm_cost(&no_hours, 40_000.0), None, "not computed is not 0");
    let only_hours = CostInputs {
        staff_hours: Some(0.0),
        ..CostInputs::default()
    };
    assert_eq!(scm_cost(&only_hours, 40_000.0), Some(0.0));
}

fn any_measures() -> impl Strategy<Value = Measures> {
    (
        0u32..60,
        0u32..30,
        proptest::option::of(0.0f64..1e8),
        proptest::option::of(0u16..20),
        any::<bool>(),
        0u8..3,
    )
        .prop_map(|(days, limit, cost, visits, informal, kind)| match kind {
            0 => timing(days, limit, cost, visits, informal),
            1 => other(Kind::PendingTiming, cost, visits, informal),
            _ => other(Kind::Complaint, cost, visits, informal),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn order_never_changes_a_result(obs in proptest::collection::vec(any_measures(), 0..40), seed in any::<u64>()) {
        let mut shuffled = obs.clone();
        // A deterministic permutation from the seed.
        let len = shuffled.len();
        for i in (1..len).rev() {
            let j = (seed.wrapping_mul(6364136223846793005).wrapping_add(i as u64) % (i as u64 + 1)) as usize;
            shuffled.swap(i, j);
        }
        prop_assert_eq!(compute(&obs, 5, "k"), compute(&shuffled, 5, "k"));
    }

    #[test]
    fn adding_an_observation_above_the_max_never_lowers_p90(days in proptest::collection::vec(0u32..100, 5..40), extra in 0u32..50) {
        let obs: Vec<Measures> = days.iter().map(|d| timing(*d, 10, None, None, false)).collect();
        let before = compute(&obs, 5, "k").p90_days.unwrap();
        let max = *days.iter().max().unwrap();
        let mut more = obs.clone();
        more.push(timing(max + extra, 10, None, None, false));
        prop_assert!(compute(&more, 5, "k").p90_days.unwrap() >= before);
    }

    #[test]
    fn suppression_hides_every_statistic(obs in proptest::collection::vec(any_measures(), 0..5)) {
        let s = compute(&obs, 5, "k");
        prop_assert!(s.suppressed);
        prop_assert_eq!(s.n, obs.len());
        let hidden = [s.median_days, s.p90_days, s.median_cost, s.median_visits, s.on_time_rate, s.informal_payment_rate];
        prop_assert!(hidden.iter().all(Option::is_none));
        prop_assert!(s.median_days_ci.is_none() && s.median_cost_ci.is_none());
    }

    #[test]
    fn confidence_intervals_contain_the_median(days in proptest::collection::vec(0u32..100, 5..60)) {
        let obs: Vec<Measures> = days.iter().map(|d| timing(*d, 10, None, None, false)).collect();
        let s = compute(&obs, 5, "k");
        let (m, ci) = (s.median_days.unwrap(), s.median_days_ci.unwrap());
        prop_assert!(ci.low <= ci.high);
        let min = f64::from(*days.iter().min().unwrap());
        let max = f64::from(*days.iter().max().unwrap());
        prop_assert!(ci.low >= min && ci.high <= max);
        prop_assert!(min <= m && m <= max);
    }
}

/// Worked by hand with the built-in calendar and the default tariff:
/// submitted Fri 2025-04-25, completed Mon 2025-05-05: working days after the 25th up to the
/// 5th are Sat 26 Apr (make-up day), Mon 28, Tue 29 and Mon 5 May (30 Apr, 1 and 2 May off)
/// = 4, over a limit of 3: late. SCM cost = 50,000 + 0 + 1,000,000 + 2 h x 23,800 (2025)
/// = 1,097,600 VND.
#[test]
fn golden_measures_of_one_timing() {
    let calendar = crate::calendar::WorkingCalendar::vietnam().unwrap();
    let tariffs = crate::tariff::HourlyTariffs::vietnam_minimum_wage();
    let d = |m, day| chrono::NaiveDate::from_ymd_opt(2025, m, day);
    let facts = Facts {
        is_complaint: false,
        submitted_on: d(4, 25),
        completed_on: d(5, 5),
        statutory_limit: Some(3),
        year: 2025,
        costs: CostInputs {
            official_fees: Some(50_000),
            unofficial_payments: Some(0),
            external_services: Some(1_000_000),
            staff_hours: Some(2.0),
        },
        visits: Some(2),
        verified: true,
    };
    let m = measures(&facts, &calendar, &tariffs);
    assert!(m.verified, "the verification mark is carried to the cell");
    assert_eq!(m.kind, Kind::CompletedTiming);
    assert_eq!(m.elapsed_days, Some(4));
    assert_eq!(m.on_time, Some(false));
    assert_eq!(m.scm_cost, Some(1_097_600.0));
    assert!(!m.informal_payment, "0 VND is not an informal payment");

    let pending = measures(
        &Facts {
            completed_on: None,
            ..facts
        },
        &calendar,
        &tariffs,
    );
    assert_eq!(
        (pending.kind, pending.elapsed_days, pending.on_time),
        (Kind::PendingTiming, None, None)
    );
    let unregulated = measures(
        &Facts {
            statutory_limit: None,
            ..facts
        },
        &calendar,
        &tariffs,
    );
    assert_eq!(
        unregulated.on_time, None,
        "no limit in force: no on-time verdict"
    );
    let no_tariff = measures(
        &Facts {
            year: 2019,
            ..facts
        },
        &calendar,
        &tariffs,
    );
    assert_eq!(
        no_tariff.scm_cost, None,
        "no tariff for the year: no cost, never a guess"
    );
    let complaint = measures(
        &Facts {
            is_complaint: true,
            costs: CostInputs {
                unofficial_payments: Some(1),
                ..facts.costs
            },
            ..facts
        },
        &calendar,
        &tariffs,
    );
    assert_eq!(
        (
            complaint.kind,
            complaint.elapsed_days,
            complaint.informal_payment
        ),
        (Kind::Complaint, None, true)
    );
}

#[test]
fn the_seed_key_is_spelled_as_the_methodology_says() {
    // The spelling seeds every published interval: changing it changes the figures.
    assert_eq!(
        seed_key("vn-34", 2025, "1.001612", "79"),
        "vn-34/2025/1.001612/79"
    );
}

/// Methodology 1.1, §3: a national cell is computed from every observation of the year and
/// procedure, never from its provinces' figures. By hand, limit 5: province A has completed
/// timings of 1, 2 and 3 working days (median 2), B of 10, 20 and 30 (median 20). The
/// national days 1 2 3 10 20 30 (m = 6, h = 2.5) have median 3 + 0.5 x (10 - 3) = 6.5, not
/// the mean of the medians (11). Informal payments: one (B's 20-day timing) of 6 = 0.1667,
/// not the mean of 0 and 1/3. On time: 3 of 6. Costs 100,000 x 3, 300,000, 500,000 x 2:
/// median 100,000 + 0.5 x 200,000 = 200,000. The seed key ends in `all`.
#[test]
fn a_national_cell_is_recomputed_from_its_observations() {
    let a = [
        timing(1, 5, Some(100_000.0), Some(1), false),
        timing(2, 5, Some(100_000.0), Some(1), false),
        timing(3, 5, Some(100_000.0), Some(1), false),
    ];
    let b = [
        timing(10, 5, Some(300_000.0), Some(2), false),
        timing(20, 5, Some(500_000.0), Some(3), true),
        timing(30, 5, Some(500_000.0), Some(3), false),
    ];
    let k = 3;
    let province_a = compute(&a, k, "vn-34/2025/1.001612/01");
    let province_b = compute(&b, k, "vn-34/2025/1.001612/79");
    assert_eq!(
        (province_a.median_days, province_b.median_days),
        (Some(2.0), Some(20.0))
    );
    let all: Vec<Measures> = a.iter().chain(&b).copied().collect();
    let key = seed_key("vn-34", 2025, "1.001612", crate::area::NATIONAL);
    assert_eq!(key, "vn-34/2025/1.001612/all");
    let national = compute(&all, k, &key);
    assert_eq!(national.n, 6);
    assert_eq!(national.median_days, Some(6.5));
    assert_eq!(national.informal_payment_rate, Some(1.0 / 6.0));
    assert_eq!(national.on_time_rate, Some(0.5));
    assert_eq!(national.median_cost, Some(200_000.0));
}
