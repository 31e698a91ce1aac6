//! Mann-Whitney, Hodges-Lehmann and both from one sort
//! (`mann_whitney_hodges_lehmann`) at n = m = 1k, 10k, 100k, with sorting the
//! same data as the floor any rank method pays.
//!
//! Data: the splitmix64 recipe of `stat_vectors.json` (seeds 1001 / 2002,
//! `20 + 30·u/(1 − 0.9u)` and `20 + 29.4·u/(1 − 0.9u)`), so
//! `scripts/bench_scipy_mannwhitney.py` times scipy on identical values.
//!
//! Run: `cargo bench -p verdict-judges --bench mann_whitney`
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::hint::black_box;
use verdict_judges::hodges_lehmann::{
    hodges_lehmann, mann_whitney_hodges_lehmann, HodgesLehmannConfig,
};
use verdict_judges::mann_whitney::{mann_whitney, MannWhitneyConfig};
use verdict_judges::splitmix64::SplitMix64;

fn splitmix64_sample(seed: u64, n: usize, scale: f64) -> Vec<f64> {
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|_| {
            let u = rng.next_f64();
            20.0 + scale * (u / (1.0 - 0.9 * u))
        })
        .collect()
}

fn rank_tests(c: &mut Criterion) {
    let mut group = c.benchmark_group("rank_tests");
    for n in [1_000usize, 10_000, 100_000] {
        let x = splitmix64_sample(1001, n, 30.0);
        let y = splitmix64_sample(2002, n, 29.4);
        if n == 100_000 {
            group.sample_size(20);
        }
        group.bench_with_input(BenchmarkId::new("sort_pooled", n), &n, |b, _| {
            b.iter(|| {
                let mut pooled: Vec<f64> = x.iter().chain(&y).copied().collect();
                pooled.sort_unstable_by(f64::total_cmp);
                black_box(pooled)
            })
        });
        group.bench_with_input(BenchmarkId::new("mann_whitney", n), &n, |b, _| {
            b.iter(|| mann_whitney(black_box(&x), black_box(&y), &MannWhitneyConfig::default()))
        });
        group.bench_with_input(BenchmarkId::new("hodges_lehmann", n), &n, |b, _| {
            b.iter(|| {
                hodges_lehmann(
                    black_box(&x),
                    black_box(&y),
                    &HodgesLehmannConfig::default(),
                )
            })
        });
        group.bench_with_input(BenchmarkId::new("mwu_and_interval", n), &n, |b, _| {
            b.iter(|| {
                mann_whitney_hodges_lehmann(
                    black_box(&x),
                    black_box(&y),
                    &MannWhitneyConfig::default(),
                    &HodgesLehmannConfig::default(),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, rank_tests);
criterion_main!(benches);
