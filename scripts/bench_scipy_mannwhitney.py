#!/usr/bin/env python3
"""Time scipy.stats.mannwhitneyu on the data of judges/benches/mann_whitney.rs.

The samples are the splitmix64 recipe of stat_vectors.json (seeds 1001 and
2002, 20 + 30*u/(1 - 0.9u) and 20 + 29.4*u/(1 - 0.9u)), generated here with
the same f64 arithmetic, so both sides see identical values.  Also times
numpy's sort of the pooled sample as the reference floor.

Usage: python3 scripts/bench_scipy_mannwhitney.py
"""
import sys
import timeit

import numpy as np
import scipy
from scipy.stats import mannwhitneyu

MASK = (1 << 64) - 1


def splitmix64_sample(seed, n, scale):
    state = seed
    out = np.empty(n)
    for k in range(n):
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        z ^= z >> 31
        u = (z >> 11) * 2.0**-53
        out[k] = 20.0 + scale * (u / (1.0 - 0.9 * u))
    return out


def best_of(fn, repeat):
    """Best per-call time in seconds over `repeat` timing runs."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=repeat, number=number)) / number


def main():
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, scipy {scipy.__version__}")
    # Check the generator against the first stored value of the recipe.
    assert splitmix64_sample(1001, 1, 30.0)[0] == 33.790800967764625
    print(f"{'n':>8} {'sort pooled':>14} {'mannwhitneyu':>14}  p-value")
    for n in (1_000, 10_000, 100_000):
        x = splitmix64_sample(1001, n, 30.0)
        y = splitmix64_sample(2002, n, 29.4)
        pooled = np.concatenate([x, y])
        t_sort = best_of(lambda: np.sort(pooled), 5)
        t_mwu = best_of(lambda: mannwhitneyu(x, y, alternative="two-sided"), 5)
        p = mannwhitneyu(x, y, alternative="two-sided").pvalue
        print(f"{n:>8} {t_sort * 1e3:>11.3f} ms {t_mwu * 1e3:>11.3f} ms  {p:.17g}")


if __name__ == "__main__":
    main()
