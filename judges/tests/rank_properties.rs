//! Properties of the rank tests that must hold for any data: U1 + U2 = n·m,
//! p in [0, 1], the interval contains the estimate, and swapping x and y
//! swaps U, keeps the two-sided p and negates the HL estimate and interval;
//! the counting selection of pairwise differences equals sorting all of
//! them, and the combined test-and-interval equals the two functions.
use proptest::prelude::*;
use verdict_judges::hodges_lehmann::{
    hodges_lehmann, mann_whitney_hodges_lehmann, HodgesLehmannConfig, PairwiseDifferences,
};
use verdict_judges::mann_whitney::{mann_whitney, MannWhitneyConfig, Method};
use verdict_judges::Alternative;

/// Samples with frequent ties (small integer grid) or continuous values.
fn sample() -> impl Strategy<Value = Vec<f64>> {
    prop_oneof![
        prop::collection::vec((-5i32..5).prop_map(f64::from), 1..40),
        prop::collection::vec(-1e3f64..1e3, 1..80),
    ]
}

fn alternatives() -> impl Strategy<Value = Alternative> {
    prop_oneof![
        Just(Alternative::TwoSided),
        Just(Alternative::Less),
        Just(Alternative::Greater)
    ]
}

fn methods() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::Auto),
        Just(Method::Exact),
        Just(Method::Asymptotic)
    ]
}

proptest! {
    #[test]
    fn u_sums_to_pairs_and_p_is_a_probability(
        x in sample(), y in sample(), alternative in alternatives(),
        method in methods(), use_continuity in any::<bool>(),
    ) {
        let config = MannWhitneyConfig { alternative, method, use_continuity };
        let r = mann_whitney(&x, &y, &config).unwrap();
        prop_assert_eq!(r.u_statistic + r.u2, (x.len() * y.len()) as f64);
        prop_assert!((0.0..=1.0).contains(&r.p_value), "p = {}", r.p_value);
        prop_assert!(r.method != Method::Auto);
    }

    #[test]
    fn swapping_samples_mirrors_mann_whitney(
        x in sample(), y in sample(), method in methods(), use_continuity in any::<bool>(),
    ) {
        let two_sided = MannWhitneyConfig { alternative: Alternative::TwoSided, method, use_continuity };
        let forward = mann_whitney(&x, &y, &two_sided).unwrap();
        let backward = mann_whitney(&y, &x, &two_sided).unwrap();
        prop_assert_eq!(forward.u_statistic, backward.u2);
        prop_assert_eq!(forward.u2, backward.u_statistic);
        prop_assert_eq!(forward.method, backward.method);
        prop_assert!((forward.p_value - backward.p_value).abs() <= 1e-12);
        // One-sided tests swap too: "x greater" is "y less".
        let greater = MannWhitneyConfig { alternative: Alternative::Greater, ..two_sided };
        let less = MannWhitneyConfig { alternative: Alternative::Less, ..two_sided };
        let a = mann_whitney(&x, &y, &greater).unwrap().p_value;
        let b = mann_whitney(&y, &x, &less).unwrap().p_value;
        prop_assert!((a - b).abs() <= 1e-12, "{} vs {}", a, b);
    }

    #[test]
    fn interval_contains_the_estimate(
        x in sample(), y in sample(), alternative in alternatives(),
        conf_level in 0.5f64..0.999, exact in prop::option::of(any::<bool>()), correct in any::<bool>(),
    ) {
        let config = HodgesLehmannConfig { alternative, conf_level, correct, exact };
        let r = hodges_lehmann(&x, &y, &config).unwrap();
        prop_assert!(r.lower <= r.estimate && r.estimate <= r.upper,
            "[{}, {}] misses {}", r.lower, r.upper, r.estimate);
        prop_assert!(r.achieved_conf_level >= 0.0 && r.achieved_conf_level < 1.0);
    }

    #[test]
    fn swapping_samples_negates_hodges_lehmann(
        x in sample(), y in sample(), conf_level in 0.5f64..0.999,
        exact in prop::option::of(any::<bool>()), correct in any::<bool>(),
    ) {
        let config = HodgesLehmannConfig { alternative: Alternative::TwoSided, conf_level, correct, exact };
        let forward = hodges_lehmann(&x, &y, &config).unwrap();
        let backward = hodges_lehmann(&y, &x, &config).unwrap();
        // y − x = −(x − y) exactly in IEEE arithmetic, so the order
        // statistics negate bit for bit (up to the sign of zero).
        prop_assert_eq!(forward.estimate, -backward.estimate);
        prop_assert_eq!(forward.lower, -backward.upper);
        prop_assert_eq!(forward.upper, -backward.lower);
        prop_assert_eq!(forward.method, backward.method);
        prop_assert_eq!(forward.achieved_conf_level, backward.achieved_conf_level);
    }

    /// Every order statistic the counting path selects (several ranks per
    /// call, in any order, with repeats) is the one a brute-force sort of all
    /// n·m differences puts there. Sizes reach 90 × 90 so that brackets are
    /// narrowed over several rounds before collecting.
    #[test]
    fn implicit_selection_equals_brute_force(
        x in larger_sample(), y in larger_sample(), picks in prop::collection::vec(any::<u64>(), 1..8),
    ) {
        let mut xs = x.clone();
        let mut ys = y.clone();
        xs.sort_unstable_by(f64::total_cmp);
        ys.sort_unstable_by(f64::total_cmp);
        let mut all: Vec<f64> = xs.iter().flat_map(|&a| ys.iter().map(move |&b| a - b)).collect();
        all.sort_unstable_by(f64::total_cmp);
        let len = all.len() as u64;
        let ranks: Vec<u64> = picks.iter().map(|p| 1 + p % len).chain([1, len, len.div_ceil(2)]).collect();
        let selected = PairwiseDifferences::implicit(&xs, &ys).select(&ranks);
        for (&k, &value) in ranks.iter().zip(&selected) {
            // The selection reports a zero difference as +0.0.
            let expected = all[(k - 1) as usize] + 0.0;
            prop_assert_eq!(value.to_bits(), expected.to_bits(), "k = {} of {}", k, len);
        }
    }

    #[test]
    fn combined_test_and_interval_equal_the_two_functions(
        x in larger_sample(), y in larger_sample(), alternative in alternatives(),
        method in methods(), correct in any::<bool>(), exact in prop::option::of(any::<bool>()),
    ) {
        let test = MannWhitneyConfig { alternative, method, use_continuity: correct };
        let interval = HodgesLehmannConfig { alternative, conf_level: 0.9, correct, exact };
        let (u, hl) = mann_whitney_hodges_lehmann(&x, &y, &test, &interval).unwrap();
        prop_assert_eq!(u, mann_whitney(&x, &y, &test).unwrap());
        prop_assert_eq!(hl, hodges_lehmann(&x, &y, &interval).unwrap());
    }
}

/// Up to 90 values: heavy ties (a coarse grid, signed zeros) or continuous.
fn larger_sample() -> impl Strategy<Value = Vec<f64>> {
    prop_oneof![
        prop::collection::vec((-3i32..3).prop_map(|v| f64::from(v) * 0.5), 1..90),
        prop::collection::vec(prop_oneof![Just(-0.0), Just(0.0), -2.0f64..2.0], 1..90),
        prop::collection::vec(-1e3f64..1e3, 1..90),
    ]
}

#[test]
fn combined_errors_are_those_of_the_two_calls_in_turn() {
    use verdict_judges::StatsError;
    let test = MannWhitneyConfig::default();
    let interval = HodgesLehmannConfig::default();
    let both = |x: &[f64], y: &[f64]| mann_whitney_hodges_lehmann(x, y, &test, &interval);
    assert_eq!(
        both(&[], &[1.0]),
        Err(StatsError::EmptySample { sample: "x" })
    );
    assert_eq!(
        both(&[1.0], &[]),
        Err(StatsError::EmptySample { sample: "y" })
    );
    // NaN is mann_whitney's error (the first NaN, even after an infinity;
    // compared as text, NaN ≠ NaN)...
    assert_eq!(
        both(&[f64::INFINITY], &[f64::NAN]).unwrap_err().to_string(),
        mann_whitney(&[f64::INFINITY], &[f64::NAN], &test)
            .unwrap_err()
            .to_string()
    );
    // ...an infinity, which the test ranks, is the interval's.
    assert_eq!(
        both(&[1.0], &[f64::INFINITY]).unwrap_err(),
        hodges_lehmann(&[1.0], &[f64::INFINITY], &interval).unwrap_err()
    );
    let bad_level = HodgesLehmannConfig {
        conf_level: 1.0,
        ..interval
    };
    assert!(matches!(
        mann_whitney_hodges_lehmann(&[1.0], &[2.0], &test, &bad_level),
        Err(StatsError::InvalidParameter {
            name: "conf_level",
            ..
        })
    ));
    // One value each and all values equal.
    let (u, hl) = both(&[3.0], &[1.0]).unwrap();
    assert_eq!(
        (u.u_statistic, hl.estimate, hl.lower, hl.upper),
        (1.0, 2.0, 2.0, 2.0)
    );
    let (u, hl) = both(&[4.0; 30], &[4.0; 60]).unwrap();
    assert_eq!(
        (u.p_value, hl.estimate, hl.lower, hl.upper),
        (1.0, 0.0, 0.0, 0.0)
    );
}
