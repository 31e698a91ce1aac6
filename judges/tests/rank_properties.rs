//! Properties of the rank tests that must hold for any data: U1 + U2 = n·m,
//! p in [0, 1], the interval contains the estimate, and swapping x and y
//! swaps U, keeps the two-sided p and negates the HL estimate and interval.
use proptest::prelude::*;
use verdict_judges::hodges_lehmann::{hodges_lehmann, HodgesLehmannConfig};
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
}
