//! The committed seed corpus replays without a finding, and a short session
//! of fixed seed finds none either (the CI step runs a longer one:
//! scripts/test.sh).

use std::path::Path;
use verdict_fuzz::{corpus, execute, fuzz, Budget, Target};

fn corpus_root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

#[test]
fn every_target_has_seeds_and_none_panics() {
    for target in Target::ALL {
        let seeds = corpus(&corpus_root(), target).unwrap();
        assert!(seeds.len() >= 3, "{}: too few seeds", target.name());
        for (i, seed) in seeds.iter().enumerate() {
            if let Err(crash) = execute(target, seed) {
                panic!("{} seed {i}: {}", target.name(), crash.message);
            }
        }
    }
}

#[test]
fn seeds_reach_both_acceptance_and_refusal() {
    for target in Target::ALL {
        let outcomes: Vec<String> = corpus(&corpus_root(), target)
            .unwrap()
            .iter()
            .map(|s| execute(target, s).unwrap())
            .collect();
        let accepted = outcomes
            .iter()
            .filter(|o| o.starts_with("ok") || o.starts_with("rendered"))
            .count();
        assert!(
            accepted > 0,
            "{}: no seed is accepted: {outcomes:?}",
            target.name()
        );
        assert!(
            accepted < outcomes.len(),
            "{}: no seed is refused",
            target.name()
        );
    }
}

#[test]
fn a_short_fixed_seed_session_finds_nothing() {
    for target in Target::ALL {
        let seeds = corpus(&corpus_root(), target).unwrap();
        let report = fuzz(target, seeds, 20261122, Budget::Iterations(3000));
        assert_eq!(report.executions, 3000);
        assert!(
            report.crashes.is_empty(),
            "{}: {:?}",
            target.name(),
            report.crashes
        );
        assert!(report.pool > 3, "{}: no input kept", target.name());
    }
}
