//! A small seeded PRNG and the samplers the traffic generator needs.
//!
//! * [`SplitMix64`] expands a 64-bit seed (and derives per-run seeds).
//! * [`Rng`] is xoshiro256** (Blackman and Vigna, 2018), seeded from
//!   SplitMix64 as its authors recommend. Fast, 256 bits of state, passes
//!   BigCrush; not cryptographic, which a simulation does not need.
//!
//! Samplers, all **exact** up to floating-point rounding of the
//! probabilities (no normal approximation anywhere):
//!
//! * [`Rng::uniform`] gives 53 random bits, uniform on [0, 1).
//! * [`Rng::normal`] uses Box-Muller.
//! * [`Rng::binomial`] and [`Rng::poisson`] invert the CDF. For a small
//!   mean (below 10) the search starts at 0 with the pmf recurrence
//!   (`P(0) = (1-p)^n` cannot underflow there). For a larger mean the search
//!   starts at the mode, whose pmf is computed from log-factorials, and then
//!   walks outward alternately (mode, mode+1, mode-1, mode+2, ...). Inverting
//!   the CDF of *any* fixed enumeration of the outcomes gives an exact sample,
//!   and starting at the mode needs about `O(sd)` steps instead of `O(mean)`
//!   and never evaluates an underflowing `(1-p)^n`. If rounding leaves the
//!   accumulated mass just below the uniform draw (probability ~1e-12), the
//!   mode is returned.
//! * [`Rng::multinomial`] draws conditional binomials, bucket by bucket.

pub use verdict_judges::splitmix64::SplitMix64;

/// A seed for run `run` of scenario `scenario`, derived from the master
/// seed: independent of thread scheduling, so results are reproducible.
pub fn derive_seed(master: u64, scenario: u64, run: u64) -> u64 {
    let mut s = SplitMix64::new(master);
    let a = s.next_u64();
    let mut s = SplitMix64::new(a ^ scenario.wrapping_mul(0xD1B5_4A32_D192_ED03));
    let b = s.next_u64();
    let mut s = SplitMix64::new(b ^ run.wrapping_mul(0x8CB9_2BA7_2F3D_8DD7));
    s.next_u64()
}

/// xoshiro256**.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub fn seed_from(seed: u64) -> Self {
        let mut sm = SplitMix64::new(seed);
        let s = [sm.next_u64(), sm.next_u64(), sm.next_u64(), sm.next_u64()];
        // SplitMix64 output is never all zero for four consecutive draws.
        Rng { s }
    }

    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform on [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal (Box-Muller; the second variate is discarded to keep
    /// the generator state simple).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Binomial(n, p), exact inversion (see the module documentation).
    pub fn binomial(&mut self, n: u64, p: f64) -> u64 {
        if n == 0 || p <= 0.0 || p.is_nan() {
            return 0;
        }
        if p >= 1.0 {
            return n;
        }
        if p > 0.5 {
            return n - self.binomial(n, 1.0 - p);
        }
        let q = 1.0 - p;
        let nf = n as f64;
        let ratio = p / q;
        let u = self.uniform();
        if nf * p < 10.0 {
            // P(0) = q^n >= exp(-10 * 1.39) for p <= 1/2: no underflow.
            let mut pk = (nf * (-p).ln_1p()).exp();
            let mut acc = pk;
            let mut k = 0u64;
            while u >= acc {
                if k == n || pk == 0.0 {
                    return k.min(n);
                }
                pk *= ratio * (n - k) as f64 / (k + 1) as f64;
                k += 1;
                acc += pk;
            }
            return k;
        }
        let mode = (((n + 1) as f64) * p).floor().min(nf) as u64;
        let ln_pm = ln_choose(n, mode) + mode as f64 * p.ln() + (n - mode) as f64 * (-p).ln_1p();
        let pm = ln_pm.exp();
        let mut acc = pm;
        if u < acc {
            return mode;
        }
        let (mut lo, mut p_lo, mut hi, mut p_hi) = (mode, pm, mode, pm);
        loop {
            let mut moved = false;
            if hi < n && p_hi > 0.0 {
                p_hi *= ratio * (n - hi) as f64 / (hi + 1) as f64;
                hi += 1;
                acc += p_hi;
                if u < acc {
                    return hi;
                }
                moved = true;
            }
            if lo > 0 && p_lo > 0.0 {
                p_lo *= lo as f64 / ((n - lo + 1) as f64 * ratio);
                lo -= 1;
                acc += p_lo;
                if u < acc {
                    return lo;
                }
                moved = true;
            }
            if !moved {
                return mode;
            }
        }
    }

    /// Poisson(lambda), exact inversion (see the module documentation).
    pub fn poisson(&mut self, lambda: f64) -> u64 {
        if lambda <= 0.0 || lambda.is_nan() {
            return 0;
        }
        let u = self.uniform();
        if lambda < 10.0 {
            let mut pk = (-lambda).exp();
            let mut acc = pk;
            let mut k = 0u64;
            while u >= acc {
                if pk == 0.0 && k as f64 > lambda {
                    return k;
                }
                pk *= lambda / (k + 1) as f64;
                k += 1;
                acc += pk;
            }
            return k;
        }
        let mode = lambda.floor() as u64;
        let pm = (mode as f64 * lambda.ln() - lambda - ln_factorial(mode)).exp();
        let mut acc = pm;
        if u < acc {
            return mode;
        }
        let (mut lo, mut p_lo, mut hi, mut p_hi) = (mode, pm, mode, pm);
        loop {
            let mut moved = false;
            if p_hi > 0.0 {
                p_hi *= lambda / (hi + 1) as f64;
                hi += 1;
                acc += p_hi;
                if u < acc {
                    return hi;
                }
                moved = true;
            }
            if lo > 0 && p_lo > 0.0 {
                p_lo *= lo as f64 / lambda;
                lo -= 1;
                acc += p_lo;
                if u < acc {
                    return lo;
                }
                moved = true;
            }
            if !moved {
                return mode;
            }
        }
    }

    /// Multinomial(n, probs) by conditional binomials; `probs` must sum to 1
    /// (the last bucket takes the remainder).
    pub fn multinomial<const K: usize>(&mut self, n: u64, probs: &[f64; K]) -> [u64; K] {
        let mut out = [0u64; K];
        let mut remaining = n;
        let mut mass = 1.0;
        for k in 0..K {
            if remaining == 0 {
                break;
            }
            if k == K - 1 {
                out[k] = remaining;
                break;
            }
            let p = if mass > 0.0 {
                (probs[k] / mass).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let x = self.binomial(remaining, p);
            out[k] = x;
            remaining -= x;
            mass -= probs[k];
        }
        out
    }
}

/// `ln n!`: a table below 16, Stirling's series above (error below 1e-15
/// relative to the result for n >= 16).
pub fn ln_factorial(n: u64) -> f64 {
    if n < 16 {
        let mut f = 1.0f64;
        for k in 2..=n {
            f *= k as f64;
        }
        return f.ln();
    }
    let x = (n + 1) as f64; // ln n! = lnGamma(n + 1)
    let r = 1.0 / x;
    let r2 = r * r;
    let series = r * (1.0 / 12.0 - r2 * (1.0 / 360.0 - r2 * (1.0 / 1260.0 - r2 / 1680.0)));
    (x - 0.5) * x.ln() - x + 0.5 * std::f64::consts::TAU.ln() + series
}

/// `ln C(n, k)`.
pub fn ln_choose(n: u64, k: u64) -> f64 {
    ln_factorial(n) - ln_factorial(k) - ln_factorial(n - k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_factorial_matches_direct_product() {
        let mut direct = 0.0f64;
        for n in 1..200u64 {
            direct += (n as f64).ln();
            let got = ln_factorial(n);
            assert!(
                (got - direct).abs() <= 1e-12 * direct.max(1.0),
                "n={n}: {got} vs {direct}"
            );
        }
    }

    fn moments(samples: &[u64]) -> (f64, f64) {
        let n = samples.len() as f64;
        let mean = samples.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = samples
            .iter()
            .map(|&x| (x as f64 - mean).powi(2))
            .sum::<f64>()
            / (n - 1.0);
        (mean, var)
    }

    #[test]
    fn binomial_mean_and_variance() {
        let mut rng = Rng::seed_from(1);
        for &(n, p) in &[
            (20u64, 0.3),
            (1000, 0.01),
            (2000, 0.05),
            (5000, 0.5),
            (100_000, 0.9),
            (7, 0.99),
        ] {
            let draws: Vec<u64> = (0..20_000).map(|_| rng.binomial(n, p)).collect();
            assert!(draws.iter().all(|&x| x <= n));
            let (mean, var) = moments(&draws);
            let (m0, v0) = (n as f64 * p, n as f64 * p * (1.0 - p));
            // 6 standard errors of the mean; variance within 6 %.
            assert!(
                (mean - m0).abs() < 6.0 * (v0 / 20_000.0).sqrt(),
                "n={n} p={p}: mean {mean} vs {m0}"
            );
            assert!(
                (var / v0 - 1.0).abs() < 0.06,
                "n={n} p={p}: var {var} vs {v0}"
            );
        }
    }

    #[test]
    fn binomial_small_case_matches_pmf() {
        // n = 4, p = 0.3: compare frequencies with the exact pmf.
        let mut rng = Rng::seed_from(5);
        let mut counts = [0u64; 5];
        let draws = 200_000;
        for _ in 0..draws {
            counts[rng.binomial(4, 0.3) as usize] += 1;
        }
        for (k, &c) in counts.iter().enumerate() {
            let pmf =
                ln_choose(4, k as u64).exp() * 0.3f64.powi(k as i32) * 0.7f64.powi(4 - k as i32);
            let se = (pmf * (1.0 - pmf) / draws as f64).sqrt();
            assert!((c as f64 / draws as f64 - pmf).abs() < 5.0 * se, "k={k}");
        }
    }

    #[test]
    fn poisson_mean_and_variance() {
        let mut rng = Rng::seed_from(2);
        for &lambda in &[0.5, 4.0, 10.0, 37.5, 2000.0] {
            let draws: Vec<u64> = (0..20_000).map(|_| rng.poisson(lambda)).collect();
            let (mean, var) = moments(&draws);
            assert!(
                (mean - lambda).abs() < 6.0 * (lambda / 20_000.0).sqrt(),
                "lambda={lambda}: {mean}"
            );
            assert!(
                (var / lambda - 1.0).abs() < 0.06,
                "lambda={lambda}: var {var}"
            );
        }
    }

    #[test]
    fn multinomial_sums_to_n() {
        let mut rng = Rng::seed_from(3);
        let probs = [0.5, 0.3, 0.15, 0.05];
        let mut totals = [0u64; 4];
        for _ in 0..2000 {
            let x = rng.multinomial(1000, &probs);
            assert_eq!(x.iter().sum::<u64>(), 1000);
            for k in 0..4 {
                totals[k] += x[k];
            }
        }
        for k in 0..4 {
            let share = totals[k] as f64 / 2_000_000.0;
            assert!((share - probs[k]).abs() < 0.002, "bucket {k}: {share}");
        }
    }

    #[test]
    fn seeds_are_reproducible_and_distinct() {
        let a: Vec<u64> = {
            let mut r = Rng::seed_from(derive_seed(7, 0, 3));
            (0..4).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = Rng::seed_from(derive_seed(7, 0, 3));
            (0..4).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(derive_seed(7, 0, 3), derive_seed(7, 0, 4));
        assert_ne!(derive_seed(7, 0, 3), derive_seed(7, 1, 3));
    }
}
