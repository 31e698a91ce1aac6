//! Hodges-Lehmann shift estimate and its confidence interval, as R's
//! `wilcox.test(x, y, conf.int = TRUE)` computes them, by order-statistic
//! selection over the pairwise differences.
//!
//! # Quantities
//!
//! The parameter is the shift Δ with `x − Δ ~ y`. Let `D[1..=mn]` be the
//! `n·m` pairwise differences `x_i − y_j` in ascending order (1-based).
//!
//! * Estimate: `median(D)` (the Hodges-Lehmann estimator; not the difference
//!   of medians).
//! * **Exact branch** (R's default when both sizes are below 50 and the
//!   pooled sample has no ties): with `W` the Wilcoxon statistic and
//!   `qu = qwilcox(α/2, n, m)` (smallest `q` with `P(W ≤ q) ≥ α/2`, target
//!   lowered by `10·ε`; `qu = 0` is raised to 1),
//!   two-sided `[D[qu], D[mn − qu + 1]]` with achieved `α* = 2·P(W ≤ qu − 1)`;
//!   `Greater`: `[D[qu], +∞)` with `qu = qwilcox(α)`, `α* = P(W ≤ qu − 1)`;
//!   `Less`: `(−∞, D[mn − qu + 1]]`. If `α* − α > α/2` the level is "not
//!   achievable" and R reports `1 − signif(α*, 2)`.
//! * **Asymptotic branch** (otherwise): R finds roots of a continuity-corrected
//!   normal statistic with `uniroot(tol = 1e-4)`. That statistic is a step
//!   function of Δ whose jumps sit at the `D[k]`, so its exact roots are order
//!   statistics:
//!
//!   ```text
//!   σ0   = sqrt( mn/12 · ((N+1) − (T_x + T_y)/(N(N−1))) ),  T = Σ(t³−t) within one sample
//!   A    = mn/2 + c + z·σ0,   c = ½ if `correct` else 0,   z = z_{1−α/2} (two-sided) or z_{1−α}
//!   lower = D[mn − ⌊A⌋],   upper = D[⌈A⌉]      (indices clamped to 1..=mn)
//!   ```
//!
//!   Ties *between* the samples do not enter σ0: between the jumps no
//!   shifted `x` equals a `y`.
//!
//! # Computation
//!
//! `x` and `y` are sorted once ([`sorted_copy`];
//! [`mann_whitney_hodges_lehmann`] shares them with the U test). The
//! estimate's and the interval's order statistics are selected together.
//! For at most [`MATERIALISE_MAX_PAIRS`] differences they are materialised,
//! unsorted, and each order statistic is *selected* (`select_nth_unstable`)
//! inside the stretch between the positions already selected (a canary's
//! windows are this size, and a replay judges hundreds of thousands of
//! them). Beyond that they are selected without materialising the matrix:
//! `count(d) = #{(i, j): x_i − y_j ≤ d}` takes one two-pointer pass
//! (rounded subtraction is monotone in each argument, so each row's
//! qualifying `y`s form a suffix whose start only moves right), and several
//! pivots' passes run interleaved. Each order statistic `k` is kept in a
//! bracket `(low, high]` of counted pivots, `count(low) < k ≤ count(high)`.
//! Pivots: the quantiles of a stratified grid of differences first, then
//! secants of `count` through the nearest counted pivots aimed just below
//! and above `k` (the empirical count is nearly smooth, so one or two
//! rounds usually suffice); once a bracket holds at most `n + m`
//! candidates they are collected and selected directly. If the secants
//! stall (massive ties) or differences overflow, bisection over the
//! *ordered bit patterns* of f64 finishes in at most 64 passes. Either way
//! the result is exactly the `k`-th computed difference, bit for bit;
//! pivots only affect speed. Cost O(n + m) per round, about three rounds
//! of three to six pivots; timings in `docs/benchmarks.md`.
//!
//! # Edge cases
//!
//! Empty side → [`StatsError::EmptySample`]; NaN or ±inf →
//! [`StatsError::NonFinite`] (a shift involving infinities is meaningless);
//! `conf_level` outside (0, 1) → [`StatsError::InvalidParameter`]. All values
//! equal: estimate 0 and the degenerate interval `[0, 0]`.
//!
//! References: Hodges & Lehmann (1963), *Ann. Math. Statist.* 34; Bauer
//! (1972), *JASA* 67 (the order-statistic interval); R 4.2 `wilcox.test`
//! (behaviour, cross-checked in `stat_vectors.json`).

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal};

use crate::alternative::Alternative;
use crate::error::{check_conf_level, check_values, StatsError};
use crate::mann_whitney::{
    mann_whitney_sorted, ExactUDistribution, MannWhitney, MannWhitneyConfig, Method,
};
use crate::rank::{from_ordered_key, ordered_key, sorted_copy, tie_term_sorted};

/// Options of [`hodges_lehmann`]. Defaults: two-sided, 95 %, continuity
/// correction on, R's rule for exactness.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HodgesLehmannConfig {
    pub alternative: Alternative,
    /// Confidence level in (0, 1).
    pub conf_level: f64,
    /// Continuity correction of the asymptotic interval (R's `correct`).
    pub correct: bool,
    /// `None`: R's rule, exact iff both sizes are below 50 and the pooled
    /// sample has no ties. `Some(true)` asks for exact, but as in R ties
    /// still force the asymptotic interval. `Some(false)`: asymptotic.
    pub exact: Option<bool>,
}

impl Default for HodgesLehmannConfig {
    fn default() -> Self {
        Self {
            alternative: Alternative::TwoSided,
            conf_level: 0.95,
            correct: true,
            exact: None,
        }
    }
}

/// Result of [`hodges_lehmann`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HodgesLehmannInterval {
    /// Median of the pairwise differences `x_i − y_j` (shift of x over y).
    pub estimate: f64,
    /// Lower end; `−inf` for `Less`.
    pub lower: f64,
    /// Upper end; `+inf` for `Greater`.
    pub upper: f64,
    /// Exact branch: `1 − α*`, the exact coverage of the order-statistic
    /// interval. Asymptotic branch: the requested level (nominal).
    pub achieved_conf_level: f64,
    /// `Exact` or `Asymptotic`.
    pub method: Method,
    /// False when `α* − α > α/2` (R's "Requested conf.level not achievable").
    pub conf_level_achievable: bool,
    /// The level R prints: the requested one, or `1 − signif(α*, 2)` when it
    /// is not achievable.
    pub reported_conf_level: f64,
}

/// Up to this many pairwise differences are materialised and sorted; beyond
/// it they are selected by counting (see the module docs). Counting is
/// already cheaper at a few thousand pairs; materialising small cases keeps a
/// second, independent path that the tests compare against.
pub const MATERIALISE_MAX_PAIRS: u64 = 1 << 16;

/// R's size limit for the default exact branch (exact iff both sizes < 50).
const EXACT_SIZE_LIMIT: usize = 50;

/// Hodges-Lehmann estimate and interval for the shift of `x` (canary) over
/// `y` (baseline); see the module docs for the formulas.
pub fn hodges_lehmann(
    x: &[f64],
    y: &[f64],
    config: &HodgesLehmannConfig,
) -> Result<HodgesLehmannInterval, StatsError> {
    check_inputs(x, y, config)?;
    Ok(hodges_lehmann_sorted(
        &sorted_copy(x),
        &sorted_copy(y),
        config,
    ))
}

/// [`mann_whitney`](crate::mann_whitney::mann_whitney) and [`hodges_lehmann`] of the same samples, sorting each
/// sample once for both (the test's ranks come from merging the sorted
/// samples, the interval selects among their differences).
///
/// The results are exactly those of the two functions; errors are those of
/// calling `mann_whitney` and then [`hodges_lehmann`] (so ±inf, which the
/// test ranks but the interval refuses, is an error).
pub fn mann_whitney_hodges_lehmann(
    x: &[f64],
    y: &[f64],
    test: &MannWhitneyConfig,
    interval: &HodgesLehmannConfig,
) -> Result<(MannWhitney, HodgesLehmannInterval), StatsError> {
    // mann_whitney's own checks (empty sides, NaN) come first.
    crate::mann_whitney::check_samples(x, y)?;
    check_inputs(x, y, interval)?;
    let (xs, ys) = (sorted_copy(x), sorted_copy(y));
    Ok((
        mann_whitney_sorted(&xs, &ys, test),
        hodges_lehmann_sorted(&xs, &ys, interval),
    ))
}

/// The input checks of [`hodges_lehmann`], in its order.
fn check_inputs(x: &[f64], y: &[f64], config: &HodgesLehmannConfig) -> Result<(), StatsError> {
    if x.is_empty() {
        return Err(StatsError::EmptySample { sample: "x" });
    }
    if y.is_empty() {
        return Err(StatsError::EmptySample { sample: "y" });
    }
    check_values("x", x, false)?;
    check_values("y", y, false)?;
    check_conf_level(config.conf_level)
}

/// [`hodges_lehmann`] of two checked samples, each sorted ascending.
fn hodges_lehmann_sorted(
    xs: &[f64],
    ys: &[f64],
    config: &HodgesLehmannConfig,
) -> HodgesLehmannInterval {
    let (n, m) = (xs.len(), ys.len());
    let tie_term_x = tie_term_sorted(xs);
    let tie_term_y = tie_term_sorted(ys);
    // Ties across the samples are looked for (a merge pass) only when the
    // exact branch is otherwise wanted: they matter for nothing else.
    let use_exact = config
        .exact
        .unwrap_or(n < EXACT_SIZE_LIMIT && m < EXACT_SIZE_LIMIT)
        && tie_term_x == 0.0
        && tie_term_y == 0.0
        && !share_a_value(xs, ys);
    let mut differences = PairwiseDifferences::new(xs, ys);
    let pairs = differences.len();
    let alpha = 1.0 - config.conf_level;
    let tail_alpha = match config.alternative {
        Alternative::TwoSided => alpha / 2.0,
        Alternative::Less | Alternative::Greater => alpha,
    };

    // The ranks of the interval's ends (`None`: infinite), and the levels.
    let (lower_rank, upper_rank, exact_alpha) = if use_exact {
        let distribution = ExactUDistribution::new(n, m);
        // R raises qu = 0 to 1: the interval cannot be wider than [D1, Dmn].
        let qu = distribution.quantile(tail_alpha).max(1);
        let tail_achieved = distribution.cdf(qu as i64 - 1);
        let (lower, upper) = (Some(qu), Some(pairs - qu + 1));
        match config.alternative {
            Alternative::TwoSided => (lower, upper, Some(2.0 * tail_achieved)),
            Alternative::Greater => (lower, None, Some(tail_achieved)),
            Alternative::Less => (None, upper, Some(tail_achieved)),
        }
    } else {
        let (nf, mf) = (n as f64, m as f64);
        let total = nf + mf;
        let pairs_f = pairs as f64;
        let sigma0 = (pairs_f / 12.0
            * ((total + 1.0) - (tie_term_x + tie_term_y) / (total * (total - 1.0))))
            .sqrt();
        let continuity = if config.correct { 0.5 } else { 0.0 };
        // z_{1−tail}, computed as −Φ⁻¹(tail) to keep precision for small tails.
        let z = -Normal::standard().inverse_cdf(tail_alpha);
        let crossing = pairs_f / 2.0 + continuity + z * sigma0;
        let clamp = |k: f64| -> u64 { k.clamp(1.0, pairs_f) as u64 };
        let (lower, upper) = (
            Some(clamp(pairs_f - crossing.floor())),
            Some(clamp(crossing.ceil())),
        );
        match config.alternative {
            Alternative::TwoSided => (lower, upper, None),
            Alternative::Greater => (lower, None, None),
            Alternative::Less => (None, upper, None),
        }
    };

    // All order statistics in one selection: they share counting passes.
    let mut ranks = median_ranks(pairs).to_vec();
    ranks.extend(lower_rank);
    ranks.extend(upper_rank);
    let values = differences.select(&ranks);
    let estimate = mean_of_middles(values[0], values[1]);
    let lower = lower_rank.map_or(f64::NEG_INFINITY, |_| values[2]);
    let upper = upper_rank.map_or(f64::INFINITY, |_| values[values.len() - 1]);

    let (method, achieved_conf_level, conf_level_achievable, reported_conf_level) =
        match exact_alpha {
            Some(achieved_alpha) => {
                let achievable = achieved_alpha - alpha <= alpha / 2.0;
                let reported = if achievable {
                    config.conf_level
                } else {
                    1.0 - signif_2(achieved_alpha)
                };
                (Method::Exact, 1.0 - achieved_alpha, achievable, reported)
            }
            // The asymptotic interval is reported at the requested level.
            None => (
                Method::Asymptotic,
                config.conf_level,
                true,
                config.conf_level,
            ),
        };
    HodgesLehmannInterval {
        estimate,
        lower,
        upper,
        achieved_conf_level,
        method,
        conf_level_achievable,
        reported_conf_level,
    }
}

/// Whether two sorted slices have a value in common (a tie across samples).
fn share_a_value(xs: &[f64], ys: &[f64]) -> bool {
    let (mut i, mut j) = (0, 0);
    while i < xs.len() && j < ys.len() {
        // `==` so that −0.0 and 0.0 count as tied, as in ranking.
        let (x, y) = (xs[i], ys[j]);
        if x == y {
            return true;
        }
        // Advanced by a flag: which side is smaller is a coin flip for
        // interleaved samples, a branch would mispredict half the time.
        let x_smaller = x < y;
        i += usize::from(x_smaller);
        j += usize::from(!x_smaller);
    }
    false
}

/// R's `signif(v, 2)` for the probabilities reported here (v in (0, 2]).
fn signif_2(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let scale = 10f64.powi(1 - v.abs().log10().floor() as i32);
    (v * scale).round() / scale
}

/// The multiset `{x_i − y_j}` of two sorted samples, queried by order
/// statistic: either materialised (and partially ordered by the queries) or
/// implicit (selected by counting).
#[derive(Debug, Clone)]
pub enum PairwiseDifferences<'a> {
    /// All differences, as ordered keys (integer comparisons select
    /// faster than `f64::total_cmp`). Every position in `placed`
    /// (ascending) holds its order statistic, everything before it is ≤ and
    /// everything after ≥, so a later query selects only between its two
    /// placed neighbours.
    Materialised { all: Vec<u64>, placed: Vec<usize> },
    /// Sorted `x` and `y`; differences are computed on demand.
    Implicit { xs: &'a [f64], ys: &'a [f64] },
}

impl<'a> PairwiseDifferences<'a> {
    /// Chooses the representation by [`MATERIALISE_MAX_PAIRS`]. `xs` and `ys`
    /// must be sorted ascending, non-empty and NaN-free.
    pub fn new(xs: &'a [f64], ys: &'a [f64]) -> Self {
        if (xs.len() as u64) * (ys.len() as u64) <= MATERIALISE_MAX_PAIRS {
            Self::materialised(xs, ys)
        } else {
            Self::implicit(xs, ys)
        }
    }

    /// Forces materialisation (any size; for tests and small inputs).
    pub fn materialised(xs: &[f64], ys: &[f64]) -> Self {
        let all: Vec<u64> = xs
            .iter()
            // `+ 0.0` turns −0.0 (e.g. −0.0 − 0.0) into +0.0, the value the
            // counting path returns for a zero difference.
            .flat_map(|&xi| ys.iter().map(move |&yj| ordered_key((xi - yj) + 0.0)))
            .collect();
        Self::Materialised {
            all,
            placed: Vec::new(),
        }
    }

    /// Forces the counting representation (any size).
    pub fn implicit(xs: &'a [f64], ys: &'a [f64]) -> Self {
        debug_assert!(xs.windows(2).all(|w| w[0] <= w[1]) && ys.windows(2).all(|w| w[0] <= w[1]));
        Self::Implicit { xs, ys }
    }

    /// Number of differences, `n·m`.
    pub fn len(&self) -> u64 {
        match self {
            Self::Materialised { all, .. } => all.len() as u64,
            Self::Implicit { xs, ys } => xs.len() as u64 * ys.len() as u64,
        }
    }

    /// Whether there are no differences (never, for non-empty samples).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `k`-th smallest difference, 1-based (`1 ≤ k ≤ len`).
    pub fn kth(&mut self, k: u64) -> f64 {
        self.select(&[k])[0]
    }

    /// The `k`-th smallest differences for every `k` in `ranks` (1-based,
    /// any order). The implicit representation shares its counting passes
    /// between the ranks, so asking for the estimate's and the interval's
    /// order statistics together is much cheaper than one by one.
    pub fn select(&mut self, ranks: &[u64]) -> Vec<f64> {
        let len = self.len();
        for &k in ranks {
            assert!(k >= 1 && k <= len, "order statistic {k} out of 1..={len}");
        }
        match self {
            Self::Materialised { all, placed } => ranks
                .iter()
                .map(|&k| select_between_placed(all, placed, (k - 1) as usize))
                .collect(),
            Self::Implicit { xs, ys } => select_differences(xs, ys, ranks),
        }
    }

    /// The median, averaging the two middle differences when `len` is even
    /// (R's `median`).
    pub fn median(&mut self) -> f64 {
        let middle = self.select(&median_ranks(self.len()));
        mean_of_middles(middle[0], middle[1])
    }
}

/// The ranks of the two middle order statistics of `len` values (the same
/// rank twice when `len` is odd).
fn median_ranks(len: u64) -> [u64; 2] {
    [len.div_ceil(2), len / 2 + 1]
}

/// The median from its two middle order statistics.
fn mean_of_middles(lower_middle: f64, upper_middle: f64) -> f64 {
    let mean = (lower_middle + upper_middle) / 2.0;
    if mean.is_finite() {
        mean
    } else {
        // The sum overflowed although both halves are finite.
        lower_middle / 2.0 + upper_middle / 2.0
    }
}

/// Selects the value of sorted position `index` in `all`, searching only
/// between the nearest positions already in `placed`, and records it there.
///
/// `select_nth_unstable` leaves everything before the chosen position ≤ it
/// and everything after ≥ it; inside a stretch bounded by placed positions
/// that holds for the whole vector, so the stretches only ever shrink.
fn select_between_placed(all: &mut [u64], placed: &mut Vec<usize>, index: usize) -> f64 {
    let at = match placed.binary_search(&index) {
        Ok(_) => return from_ordered_key(all[index]),
        Err(at) => at,
    };
    let start = if at == 0 { 0 } else { placed[at - 1] + 1 };
    let end = placed.get(at).copied().unwrap_or(all.len());
    all[start..end].select_nth_unstable(index - start);
    placed.insert(at, index);
    from_ordered_key(all[index])
}

/// `#{(i, j): xs[i] − ys[j] ≤ d}` (one walk; see [`count_pivots`]).
fn count_at_most(xs: &[f64], ys: &[f64], d: f64) -> u64 {
    count_pivots(xs, ys, &[d], None)[0]
}

/// Rows per walk segment at least, so the binary search that starts a
/// segment stays a small part of it.
const MIN_SEGMENT_ROWS: usize = 64;

/// For each pivot `d` in `pivots`: `count(d) = #{(i, j): x_i − y_j ≤ d}`,
/// and, if `rows` is given, the row thresholds into `rows[p]`:
/// `rows[p][i]` = the first `j` with `x_i − y_j ≤ d` (`ys.len()` if none).
///
/// Rounded subtraction is monotone in each argument, so each row's
/// qualifying `y`s form the suffix from its threshold, and the threshold
/// only moves right as `x_i` grows: a two-pointer walk finds them all in
/// `n + m` steps, each advancing `i` or `j` by a computed flag (no
/// data-dependent branch to mispredict). One walk is a single dependency
/// chain, each step's loads waiting for the previous comparison, so the rows
/// are cut into segments, each started at its first row's threshold (binary
/// search), and all (pivot, segment) walks step interleaved in one loop:
/// independent chains the CPU overlaps, with exactly the thresholds of the
/// single walk.
fn count_pivots(
    xs: &[f64],
    ys: &[f64],
    pivots: &[f64],
    rows: Option<&mut [Vec<usize>]>,
) -> Vec<u64> {
    let record = rows.is_some();
    let mut pivot_rows = rows.into_iter().flat_map(|rows| rows.iter_mut());
    let n = xs.len();
    // One pivot's segments fill a group of interleaved walks; short inputs
    // interleave whole walks of different pivots instead.
    let segments = if n >= INTERLEAVED_WALKS * MIN_SEGMENT_ROWS {
        INTERLEAVED_WALKS
    } else {
        1
    };
    let mut walks = Vec::with_capacity(pivots.len() * segments);
    for (pivot, &d) in pivots.iter().enumerate() {
        let mut rest: &mut [usize] = match pivot_rows.next() {
            Some(rows) => &mut rows[..n],
            None => &mut [],
        };
        let mut start = 0;
        for s in 0..segments {
            let end = (s + 1) * n / segments;
            // Without recording, every segment gets the empty slice.
            let len = if rest.is_empty() { 0 } else { end - start };
            let (segment, tail) = std::mem::take(&mut rest).split_at_mut(len);
            walks.push(Walk {
                pivot,
                d,
                xs: &xs[start..end],
                rows: segment,
            });
            (rest, start) = (tail, end);
        }
    }
    let mut counts = vec![0; pivots.len()];
    for group in walks.chunks_mut(INTERLEAVED_WALKS) {
        let group_counts = if record {
            walk_together::<true>(ys, group)
        } else {
            walk_together::<false>(ys, group)
        };
        for (walk, count) in group.iter().zip(group_counts) {
            counts[walk.pivot] += count;
        }
    }
    counts
}

/// Walks stepped together by [`walk_together`]: enough independent chains
/// to overlap their latencies, few enough for their state to stay in
/// registers.
const INTERLEAVED_WALKS: usize = 4;

/// One segment of rows of one pivot's walk.
struct Walk<'s> {
    pivot: usize,
    d: f64,
    xs: &'s [f64],
    rows: &'s mut [usize],
}

/// Runs up to [`INTERLEAVED_WALKS`] walks in lockstep (state in local
/// arrays, one step of each per iteration) and returns their counts.
fn walk_together<const RECORD: bool>(ys: &[f64], group: &mut [Walk]) -> [u64; INTERLEAVED_WALKS] {
    const K: usize = INTERLEAVED_WALKS;
    let m = ys.len();
    let mut xs: [&[f64]; K] = [&[]; K];
    let mut rows: [&mut [usize]; K] = Default::default();
    let mut d = [0.0; K];
    let mut i = [0usize; K];
    let mut j = [m; K];
    let mut count = [0u64; K];
    for (k, walk) in group.iter_mut().enumerate() {
        (xs[k], d[k]) = (walk.xs, walk.d);
        rows[k] = std::mem::take(&mut walk.rows);
        if let Some(&first) = xs[k].first() {
            // The segment starts at its first row's threshold.
            j[k] = ys.partition_point(|&y| first - y > d[k]);
        }
    }
    loop {
        let mut any_live = false;
        for k in 0..K {
            // Unused slots have no rows and are never live.
            let live = i[k] < xs[k].len() && j[k] < m;
            if live {
                let above = xs[k][i[k]] - ys[j[k]] > d[k];
                // Overwritten while row i is still above d; the write at the
                // step that finishes the row is its threshold.
                if RECORD {
                    rows[k][i[k]] = j[k];
                }
                // A finished row counts its suffix j..m; otherwise y_j is too
                // small for this row and every later one.
                count[k] += if above { 0 } else { (m - j[k]) as u64 };
                j[k] += usize::from(above);
                i[k] += usize::from(!above);
            }
            any_live |= live;
        }
        if !any_live {
            break;
        }
    }
    if RECORD {
        for k in 0..K {
            // Rows left when every y is exhausted have no difference ≤ d.
            rows[k][i[k]..].fill(m);
        }
    }
    count
}

/// Upper limit of the candidates of a bracket collected and selected
/// directly (below it the limit is `n + m`, at least 1 024).
pub const COLLECT_MAX_CANDIDATES: u64 = 1 << 18;

/// Candidates collected and selected directly once a bracket holds no more:
/// `n + m` (within 1 024..=[`COLLECT_MAX_CANDIDATES`]). Collecting and
/// selecting them costs about one or two counting passes; a smaller limit
/// made the secants of the benchmark data miss it and cost a round.
fn collect_limit(n: usize, m: usize) -> u64 {
    ((n + m) as u64).clamp(1024, COLLECT_MAX_CANDIDATES)
}

/// Rounds of pivots before the remaining order statistics are bisected over
/// f64 bit patterns (≤ 64 passes each; needed only when the pivots keep
/// failing, e.g. for adversarial value patterns).
const MAX_ROUNDS: usize = 16;

/// The aim of a secant pivot is widened to `1/SECANT_REACH` of the distance
/// from the nearest count, up to 1.5 times the usual aim (so that two hits
/// still make a bracket to collect; on the benchmark data a secant bridging 2·10⁷
/// ranks missed by 6.5·10⁴).
const SECANT_REACH: f64 = 128.0;

/// From this round on the pivots split brackets at the middle of their bit
/// patterns instead of by secant (guaranteed progress where the count
/// function is far from linear).
const STALLED_ROUND: usize = 8;

/// Side of the grid of [`grid_estimates`]: about `√(n + m)/2`, within
/// 8..=128 (selecting in the 128² grid costs a fraction of one counting
/// pass at n = m = 100k, and its better estimates save a round).
fn grid_side(n: usize, m: usize) -> usize {
    (((n + m) as f64).sqrt() / 2.0).clamp(8.0, 128.0) as usize
}

/// A counted pivot: `count = #{differences ≤ from_ordered_key(key)}` and,
/// once it ends a bracket to collect, its row thresholds (see
/// [`count_pivots`]).
struct Point {
    key: u64,
    count: u64,
    rows: Option<Vec<usize>>,
}

/// The `k`-th smallest computed differences `x_i − y_j` for every `k` in
/// `ranks` (1-based, any order), from sorted `xs` and `ys`, without
/// materialising the `n·m` matrix.
///
/// Each order statistic is kept in a bracket `(low, high]` of counted pivots,
/// `count(low) < k ≤ count(high)`; the pivots of all ranks are shared, and
/// each round's pivots are counted in one interleaved pass
/// ([`count_pivots`]). Once a bracket holds at most [`collect_limit`]
/// candidates (row `i` contributes the `j` between its two thresholds)
/// they are collected and selected directly.
///
/// Pivots: first the quantiles of a stratified grid, the differences of
/// `g` evenly spaced order statistics of each sample (`g` from
/// [`grid_side`]), at each rank's fraction; then, per rank, secants of
/// `count` through the two nearest counted pivots ([`secant`]) aimed at
/// `k ∓ aim` (`aim` = a quarter of the collect limit, widened when the
/// secant bridges far), which on the nearly smooth empirical distribution
/// of differences usually brackets the rank within one round (the secant
/// method; Press et al., *Numerical Recipes*, §9.2). Every pivot is clamped
/// strictly inside its bracket, so its count always narrows it. From
/// [`STALLED_ROUND`] on, brackets are split at the middle of their bit
/// patterns and just below their upper end instead (which settles a value
/// repeated by massive ties), and after [`MAX_ROUNDS`] the remaining ranks
/// are bisected over f64 bit patterns. Pivots only affect speed: every
/// bracket end is an exact count, so the result is exactly the `k`-th
/// computed difference. This replaces the random pivot samples of Monahan
/// (1984, *ACM TOMS* 10) by secants, which need far fewer passes on the
/// smooth count function.
fn select_differences(xs: &[f64], ys: &[f64], ranks: &[u64]) -> Vec<f64> {
    let (n, m) = (xs.len(), ys.len());
    let total = n as u64 * m as u64;
    let smallest = xs[0] - ys[m - 1];
    let largest = xs[n - 1] - ys[0];
    if smallest.is_infinite() || largest.is_infinite() {
        // Differences overflowed (inputs near ±f64::MAX): the key just below
        // −inf would be a NaN, so skip narrowing; bisection covers ±inf.
        let (low, high) = (ordered_key(smallest), ordered_key(largest));
        return ranks
            .iter()
            .map(|&k| bisect_ordered_keys(xs, ys, k, low, high))
            .collect();
    }
    // The lower sentinel is exclusive: the key of the largest value below the
    // smallest difference (stepping over −0.0, which equals +0.0).
    let mut low = ordered_key(smallest) - 1;
    if from_ordered_key(low) == smallest {
        low -= 1;
    }
    // Counted pivots by ascending key (so also by count), sentinels first/last.
    let mut points = vec![
        Point {
            key: low,
            count: 0,
            rows: None,
        },
        Point {
            key: ordered_key(largest),
            count: total,
            rows: None,
        },
    ];
    let limit = collect_limit(n, m);
    let aim = (limit / 4) as f64;
    let mut answers: Vec<Option<f64>> = vec![None; ranks.len()];
    let mut spare_rows: Vec<Vec<usize>> = Vec::new();
    for round in 0..=MAX_ROUNDS {
        // Brackets small enough to collect (by their upper end's index), and
        // the next pivots.
        let mut ready: Vec<usize> = Vec::new();
        let mut proposals: Vec<u64> = Vec::new();
        let mut grid_fractions: Vec<f64> = Vec::new();
        // (upper end's index, rank) of the ranks that proposed pivots: a
        // nearby rank in the same bracket (the median's k and k + 1) would
        // only propose the same again.
        let mut proposed: Vec<(usize, u64)> = Vec::new();
        for r in 0..ranks.len() {
            if answers[r].is_some() {
                continue;
            }
            let k = ranks[r];
            let at = points.partition_point(|p| p.count < k);
            let (lo, hi) = (&points[at - 1], &points[at]);
            if hi.key - lo.key == 1 {
                // No value lies strictly between: every candidate is hi's.
                answers[r] = Some(positive_zero(from_ordered_key(hi.key)));
                continue;
            }
            if hi.count - lo.count <= limit {
                ready.push(at);
                continue;
            }
            if round == MAX_ROUNDS {
                answers[r] = Some(bisect_ordered_keys(xs, ys, k, lo.key + 1, hi.key));
                continue;
            }
            if proposed
                .iter()
                .any(|&(a, other)| a == at && other.abs_diff(k) as f64 <= aim)
            {
                continue;
            }
            proposed.push((at, k));
            let inside = |key: u64| key.clamp(lo.key + 1, hi.key - 1);
            if round == 0 {
                grid_fractions.push((k as f64 - 0.5) / total as f64);
            } else if round < STALLED_ROUND {
                // A secant's error grows with the distance it bridges: aim
                // wider when the nearest count is far from k.
                let distance = lo.count.abs_diff(k).min(hi.count.abs_diff(k)) as f64;
                let aim = aim.max((distance / SECANT_REACH).min(1.5 * aim));
                for target in [k as f64 - aim, k as f64 + aim] {
                    proposals.push(inside(secant(&points, at, target)));
                }
            } else {
                proposals.push(inside(lo.key + (hi.key - lo.key) / 2));
                proposals.push(inside(hi.key - 1));
            }
        }
        if !ready.is_empty() {
            ready.sort_unstable();
            ready.dedup();
            record_rows(xs, ys, &mut points, &ready);
            for &at in &ready {
                answer_from_bracket(xs, ys, &points[at - 1], &points[at], ranks, &mut answers);
            }
        }
        // Row buffers of points that end no open bracket are reused.
        let open: Vec<usize> = ranks
            .iter()
            .zip(&answers)
            .filter(|(_, answer)| answer.is_none())
            .map(|(&k, _)| points.partition_point(|p| p.count < k))
            .collect();
        for (index, point) in points.iter_mut().enumerate() {
            if !open.iter().any(|&at| index == at || index + 1 == at) {
                spare_rows.extend(point.rows.take());
            }
        }
        if !grid_fractions.is_empty() {
            // Only the sentinels are counted yet. A grid value can equal the
            // largest difference (ties), so it is clamped inside like every
            // pivot: each open rank then proposes keys no point holds.
            let (bottom, top) = (points[0].key, points[points.len() - 1].key);
            proposals.extend(
                grid_estimates(xs, ys, &grid_fractions)
                    .into_iter()
                    .map(|key| key.clamp(bottom + 1, top - 1)),
            );
        }
        proposals.sort_unstable();
        proposals.dedup();
        if proposals.is_empty() {
            debug_assert!(answers.iter().all(Option::is_some));
            break;
        }
        let values: Vec<f64> = proposals.iter().map(|&key| from_ordered_key(key)).collect();
        // The grid's estimates only locate the ranks; later pivots usually
        // end the brackets that are collected, so their rows are recorded
        // in the same pass.
        let mut rows: Option<Vec<Vec<usize>>> = (round > 0).then(|| {
            values
                .iter()
                .map(|_| spare_rows.pop().unwrap_or_else(|| vec![0; n]))
                .collect()
        });
        let counts = count_pivots(xs, ys, &values, rows.as_deref_mut());
        let mut rows = rows.into_iter().flatten();
        for (key, count) in proposals.into_iter().zip(counts) {
            let at = points.partition_point(|p| p.key < key);
            let rows = rows.next();
            points.insert(at, Point { key, count, rows });
        }
    }
    answers
        .into_iter()
        .map(|a| a.expect("every rank is answered"))
        .collect()
}

/// Records the row thresholds of both ends of the brackets whose upper ends
/// are `points[at]` for `at` in `uppers`, all in one pass.
fn record_rows(xs: &[f64], ys: &[f64], points: &mut [Point], uppers: &[usize]) {
    let mut missing: Vec<usize> = uppers
        .iter()
        .flat_map(|&at| [at - 1, at])
        .filter(|&index| points[index].rows.is_none())
        .collect();
    missing.dedup();
    if missing.is_empty() {
        return;
    }
    let values: Vec<f64> = missing
        .iter()
        .map(|&index| from_ordered_key(points[index].key))
        .collect();
    let mut rows = vec![vec![0; xs.len()]; missing.len()];
    count_pivots(xs, ys, &values, Some(&mut rows));
    for (index, rows) in missing.into_iter().zip(rows) {
        points[index].rows = Some(rows);
    }
}

/// Collects the candidates of the bracket `(lo, hi]` and answers every
/// unanswered rank that falls inside it.
///
/// Selecting among all candidates costs several passes over them, so a
/// window around the wanted ranks (their positions interpolated between
/// the bracket ends, widened by an eighth of the bracket each way) is
/// taken first: candidates below it are only counted, those inside kept
/// (Floyd & Rivest's idea, *CACM* 18, 1975). A rank the window misses
/// falls back to selecting among all candidates.
fn answer_from_bracket(
    xs: &[f64],
    ys: &[f64],
    lo: &Point,
    hi: &Point,
    ranks: &[u64],
    answers: &mut [Option<f64>],
) {
    let (Some(hi_rows), Some(lo_rows)) = (&hi.rows, &lo.rows) else {
        unreachable!("bracket ends are recorded before collecting")
    };
    let size = hi.count - lo.count;
    let inside: Vec<usize> = (0..ranks.len())
        .filter(|&r| answers[r].is_none() && lo.count < ranks[r] && ranks[r] <= hi.count)
        .collect();
    let first = inside.iter().map(|&r| ranks[r]).min().unwrap_or(hi.count);
    let last = inside.iter().map(|&r| ranks[r]).max().unwrap_or(hi.count);
    let widen = size as f64 / 8.0;
    let at_count = |count: f64| {
        let t = ((count - lo.count as f64) / size as f64).clamp(0.0, 1.0);
        ordered_key(from_ordered_key(lo.key) * (1.0 - t) + from_ordered_key(hi.key) * t)
    };
    let (window_low, window_high) = (
        at_count(first as f64 - widen),
        at_count(last as f64 + widen),
    );
    // Every candidate is written; the write position only advances for the
    // kept ones (no branch on a comparison that is a coin flip near the
    // window's ends).
    let mut kept = vec![0u64; size as usize];
    let (mut below, mut written) = (0usize, 0usize);
    for key in bracket_keys(xs, ys, hi_rows, lo_rows) {
        kept[written] = key;
        below += usize::from(key <= window_low);
        written += usize::from(key > window_low && key <= window_high);
    }
    kept.truncate(written);
    let mut placed = Vec::new();
    let mut missed = false;
    for &r in &inside {
        let index = (ranks[r] - lo.count - 1) as usize;
        if index >= below && index < below + written {
            let value = select_between_placed(&mut kept, &mut placed, index - below);
            answers[r] = Some(positive_zero(value));
        } else {
            missed = true;
        }
    }
    if missed {
        let mut all: Vec<u64> = bracket_keys(xs, ys, hi_rows, lo_rows).collect();
        let mut placed = Vec::new();
        for &r in &inside {
            if answers[r].is_none() {
                let index = (ranks[r] - lo.count - 1) as usize;
                answers[r] = Some(positive_zero(select_between_placed(
                    &mut all,
                    &mut placed,
                    index,
                )));
            }
        }
    }
}

/// The keys of the differences in a bracket: row `i` holds `y` indices
/// `hi_rows[i]..lo_rows[i]` (the thresholds of its upper and lower end).
fn bracket_keys<'a>(
    xs: &'a [f64],
    ys: &'a [f64],
    hi_rows: &'a [usize],
    lo_rows: &'a [usize],
) -> impl Iterator<Item = u64> + 'a {
    xs.iter()
        .zip(hi_rows)
        .zip(lo_rows)
        .flat_map(move |((&xi, &start), &end)| {
            ys[start..end].iter().map(move |&yj| ordered_key(xi - yj))
        })
}

/// The key of the value where the secant through the two counted points
/// nearest to `target` (among the two on each side of the bracket ending at
/// `points[at]`) reaches `target`: inter- or extrapolation, so that a far
/// bracket end (a pivot that missed, or a sentinel) does not slow it down.
fn secant(points: &[Point], at: usize, target: f64) -> u64 {
    let mut near: Vec<&Point> = points[at.saturating_sub(2)..(at + 2).min(points.len())]
        .iter()
        .collect();
    near.sort_by(|a, b| {
        (a.count as f64 - target)
            .abs()
            .total_cmp(&(b.count as f64 - target).abs())
    });
    let first = near[0];
    let second = near
        .iter()
        .find(|p| p.count != first.count)
        .expect("the bracket ends have different counts");
    let t = (target - first.count as f64) / (second.count as f64 - first.count as f64);
    // Written so that ends near ±f64::MAX do not overflow when t is in
    // [0, 1]; anything else (even NaN) is clamped into the bracket's keys.
    ordered_key(from_ordered_key(first.key) * (1.0 - t) + from_ordered_key(second.key) * t)
}

/// Keys of approximate quantiles of the differences at `fractions`: the
/// same quantiles of the `g_x·g_y` differences of `g` evenly spaced
/// (mid-stratum) order statistics of each sample, `g` from [`grid_side`].
/// Each grid difference stands for a block of `n/g_x × m/g_y` differences;
/// only blocks the level set of `count` crosses are misjudged, so the
/// estimate is off by a fraction of about `1/g`, typically much less.
fn grid_estimates(xs: &[f64], ys: &[f64], fractions: &[f64]) -> Vec<u64> {
    let g = grid_side(xs.len(), ys.len());
    let spread = |values: &[f64]| -> Vec<f64> {
        let side = values.len().min(g);
        (0..side)
            .map(|p| values[(2 * p + 1) * values.len() / (2 * side)])
            .collect()
    };
    let (gx, gy) = (spread(xs), spread(ys));
    let mut grid: Vec<u64> = gx
        .iter()
        .flat_map(|&x| gy.iter().map(move |&y| ordered_key(x - y)))
        .collect();
    let len = grid.len();
    let mut placed = Vec::new();
    fractions
        .iter()
        .map(|&f| {
            let index = ((f * len as f64) as usize).min(len - 1);
            ordered_key(select_between_placed(&mut grid, &mut placed, index))
        })
        .collect()
}

/// The smallest value whose key lies in `[low, high]` with `count ≥ k`
/// (requires `count(from_ordered_key(high)) ≥ k`); at most 64 passes.
fn bisect_ordered_keys(xs: &[f64], ys: &[f64], k: u64, mut low: u64, mut high: u64) -> f64 {
    while low < high {
        let mid = low + (high - low) / 2;
        if count_at_most(xs, ys, from_ordered_key(mid)) >= k {
            high = mid;
        } else {
            low = mid + 1;
        }
    }
    positive_zero(from_ordered_key(low))
}

/// `count(−0.0) = count(+0.0)`, so a search can land on −0.0 where the
/// computed difference `x − x` is +0.0; report +0.0.
fn positive_zero(v: f64) -> f64 {
    if v == 0.0 {
        0.0
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::splitmix64::SplitMix64;

    fn kth_smallest_difference(xs: &[f64], ys: &[f64], k: u64) -> f64 {
        select_differences(xs, ys, &[k])[0]
    }

    fn two_sided(conf_level: f64) -> HodgesLehmannConfig {
        HodgesLehmannConfig {
            conf_level,
            ..HodgesLehmannConfig::default()
        }
    }

    /// A deterministic pseudo-random sample (splitmix64), optionally rounded
    /// to create ties.
    fn sample(seed: u64, n: usize, scale: f64, round: bool) -> Vec<f64> {
        let mut rng = crate::splitmix64::SplitMix64::new(seed);
        (0..n)
            .map(|_| {
                let u = rng.next_f64();
                let v = scale * (u / (1.0 - 0.9 * u)) - scale;
                if round {
                    v.round()
                } else {
                    v
                }
            })
            .collect()
    }

    fn sorted(mut v: Vec<f64>) -> Vec<f64> {
        v.sort_unstable_by(f64::total_cmp);
        v
    }

    #[test]
    fn implicit_selection_equals_materialised_order_statistics() {
        for (seed, n, m, round) in [
            (1, 7, 11, false),
            (2, 40, 31, true),
            (3, 1, 9, false),
            (4, 25, 25, true),
        ] {
            let xs = sorted(sample(seed, n, 10.0, round));
            let ys = sorted(sample(seed + 100, m, 9.0, round));
            let mut materialised = PairwiseDifferences::materialised(&xs, &ys);
            let mut implicit = PairwiseDifferences::implicit(&xs, &ys);
            for k in 1..=materialised.len() {
                assert_eq!(
                    implicit.kth(k).to_bits(),
                    materialised.kth(k).to_bits(),
                    "k={k}"
                );
            }
            assert_eq!(implicit.median(), materialised.median());
        }
    }

    #[test]
    fn selections_in_any_order_equal_the_sorted_differences() {
        let xs = sorted(sample(31, 37, 10.0, true));
        let ys = sorted(sample(32, 29, 9.0, true));
        let mut sorted_all: Vec<f64> = xs
            .iter()
            .flat_map(|&x| ys.iter().map(move |&y| (x - y) + 0.0))
            .collect();
        sorted_all.sort_unstable_by(f64::total_cmp);
        let len = sorted_all.len() as u64;
        let mut rng = SplitMix64::new(33);
        let mut differences = PairwiseDifferences::materialised(&xs, &ys);
        // The estimator's order (median, then the bounds), then at random,
        // with repeats, then every position.
        let queries = [len / 2, len / 2 + 1, 40, len - 39]
            .into_iter()
            .chain((0..200).map(|_| 1 + rng.next_u64() % len))
            .chain(1..=len);
        for k in queries {
            assert_eq!(
                differences.kth(k).to_bits(),
                sorted_all[(k - 1) as usize].to_bits(),
                "k={k}"
            );
        }
    }

    #[test]
    fn pure_bisection_agrees_with_narrowing_and_materialised() {
        let xs = sorted(sample(21, 700, 10.0, true));
        let ys = sorted(sample(22, 500, 9.0, false));
        let mut all = PairwiseDifferences::materialised(&xs, &ys);
        let top = ordered_key(xs[xs.len() - 1] - ys[0]);
        let bottom = ordered_key(xs[0] - ys[ys.len() - 1]);
        for k in [1, 2, 777, 175_000, 349_999, 350_000] {
            let expected = all.kth(k).to_bits();
            assert_eq!(
                kth_smallest_difference(&xs, &ys, k).to_bits(),
                expected,
                "k={k}"
            );
            assert_eq!(
                bisect_ordered_keys(&xs, &ys, k, bottom, top).to_bits(),
                expected,
                "k={k}"
            );
        }
    }

    #[test]
    fn overflowing_differences_are_selected() {
        let xs = [-1e308, 0.0, 1.7e308];
        let ys = [-1.7e308, 1.0, 1e308];
        let mut all = PairwiseDifferences::materialised(&xs, &ys);
        for k in 1..=9 {
            assert_eq!(
                kth_smallest_difference(&xs, &ys, k).to_bits(),
                all.kth(k).to_bits(),
                "k={k}"
            );
        }
        assert_eq!(kth_smallest_difference(&xs, &ys, 9), f64::INFINITY);
        assert_eq!(kth_smallest_difference(&xs, &ys, 1), f64::NEG_INFINITY);
    }

    #[test]
    fn massive_ties_are_settled_without_collecting_them() {
        // 600 × 600 differences, almost all exactly 0: no pivot splits them
        // into a bracket small enough to collect; the probe just below the
        // repeated value (or, failing that, bisection) must settle it.
        let mut xs = vec![1.0; 600];
        xs[599] = 2.0;
        let mut ys = vec![1.0; 600];
        ys[0] = 0.5;
        let mut all = PairwiseDifferences::materialised(&xs, &ys);
        for k in [1, 600, 180_000, 359_401, 360_000] {
            assert_eq!(
                kth_smallest_difference(&xs, &ys, k).to_bits(),
                all.kth(k).to_bits(),
                "k={k}"
            );
        }
    }

    #[test]
    fn implicit_selection_of_one_row_one_column_and_all_equal() {
        // Above the materialisation threshold, so hodges_lehmann counts.
        let wide = sorted(sample(41, 70_000, 10.0, true));
        for (xs, ys) in [(&[2.5][..], &wide[..]), (&wide[..], &[2.5][..])] {
            let mut all = PairwiseDifferences::materialised(xs, ys);
            let mut implicit = PairwiseDifferences::implicit(xs, ys);
            let ranks = [1, 2, 35_000, 35_001, 69_999, 70_000, 17];
            let expected: Vec<u64> = ranks.iter().map(|&k| all.kth(k).to_bits()).collect();
            let selected: Vec<u64> = implicit
                .select(&ranks)
                .iter()
                .map(|v| v.to_bits())
                .collect();
            assert_eq!(selected, expected);
        }
        let r = hodges_lehmann(&[3.0; 300], &[3.0; 300], &HodgesLehmannConfig::default()).unwrap();
        assert_eq!((r.estimate, r.lower, r.upper), (0.0, 0.0, 0.0));
        assert_eq!(r.upper.to_bits(), 0.0f64.to_bits());
    }

    #[test]
    fn zero_differences_come_back_as_positive_zero() {
        let xs = [1.0, 2.0];
        let ys = [1.0, 2.0];
        let mut implicit = PairwiseDifferences::implicit(&xs, &ys);
        assert_eq!(implicit.kth(2).to_bits(), 0.0f64.to_bits());
        assert_eq!(implicit.median().to_bits(), 0.0f64.to_bits());
    }

    #[test]
    fn median_of_even_count_with_repeated_middle() {
        let xs = [0.0, 0.0];
        let ys = [0.0, 5.0];
        // Differences: -5, -5, 0, 0 → median -2.5.
        assert_eq!(PairwiseDifferences::implicit(&xs, &ys).median(), -2.5);
        let xs = [0.0, 1.0];
        let ys = [0.0, 1.0];
        // -1, 0, 0, 1 → 0 (middle pair repeats).
        assert_eq!(PairwiseDifferences::implicit(&xs, &ys).median(), 0.0);
    }

    #[test]
    fn signif_two_digits() {
        assert_eq!(signif_2(0.1), 0.1);
        assert_eq!(signif_2(0.123456), 0.12);
        assert_eq!(signif_2(0.0285714), 0.029);
        assert_eq!(signif_2(1.0), 1.0);
    }

    #[test]
    fn errors_for_empty_non_finite_and_bad_level() {
        let cfg = HodgesLehmannConfig::default();
        assert_eq!(
            hodges_lehmann(&[], &[1.0], &cfg),
            Err(StatsError::EmptySample { sample: "x" })
        );
        assert_eq!(
            hodges_lehmann(&[1.0], &[], &cfg),
            Err(StatsError::EmptySample { sample: "y" })
        );
        assert!(matches!(
            hodges_lehmann(&[1.0], &[f64::INFINITY], &cfg),
            Err(StatsError::NonFinite {
                sample: "y",
                index: 0,
                ..
            })
        ));
        assert!(matches!(
            hodges_lehmann(&[f64::NAN], &[1.0], &cfg),
            Err(StatsError::NonFinite { sample: "x", .. })
        ));
        for bad in [0.0, 1.0, -0.5, f64::NAN] {
            assert!(matches!(
                hodges_lehmann(&[1.0], &[2.0], &two_sided(bad)),
                Err(StatsError::InvalidParameter {
                    name: "conf_level",
                    ..
                })
            ));
        }
    }

    #[test]
    fn one_value_each_is_exact_and_not_achievable() {
        let r = hodges_lehmann(&[3.0], &[1.0], &HodgesLehmannConfig::default()).unwrap();
        assert_eq!(r.method, Method::Exact);
        assert_eq!((r.estimate, r.lower, r.upper), (2.0, 2.0, 2.0));
        assert!(!r.conf_level_achievable);
        // 2·P(W ≤ 0) = 2·½ = 1: the interval [D1, D1] has coverage 0.
        assert_eq!(r.achieved_conf_level, 0.0);
    }

    #[test]
    fn all_values_equal_give_a_degenerate_zero_interval() {
        let r = hodges_lehmann(&[4.0; 30], &[4.0; 60], &HodgesLehmannConfig::default()).unwrap();
        assert_eq!(r.method, Method::Asymptotic, "ties force asymptotic");
        assert_eq!((r.estimate, r.lower, r.upper), (0.0, 0.0, 0.0));
        let single = hodges_lehmann(&[4.0], &[4.0], &HodgesLehmannConfig::default()).unwrap();
        assert_eq!(
            (single.estimate, single.lower, single.upper),
            (0.0, 0.0, 0.0)
        );
    }

    #[test]
    fn constant_but_different_sides() {
        let r = hodges_lehmann(&[5.0; 10], &[3.0; 12], &HodgesLehmannConfig::default()).unwrap();
        assert_eq!((r.estimate, r.lower, r.upper), (2.0, 2.0, 2.0));
    }

    #[test]
    fn tiny_exact_case_is_min_max_at_ninety_percent() {
        // 3 vs 3 at 95 %: qwilcox(0.025, 3, 3) = 0 → 1, achieved α = 2/20.
        let r = hodges_lehmann(
            &[1.0, 2.0, 3.0],
            &[10.0, 20.0, 30.0],
            &HodgesLehmannConfig::default(),
        )
        .unwrap();
        assert_eq!((r.lower, r.upper), (1.0 - 30.0, 3.0 - 10.0));
        assert!(!r.conf_level_achievable);
        assert!((r.achieved_conf_level - 0.9).abs() < 1e-15);
        assert_eq!(r.reported_conf_level, 0.9);
    }

    #[test]
    fn exact_requested_with_ties_falls_back_to_asymptotic() {
        let cfg = HodgesLehmannConfig {
            exact: Some(true),
            ..HodgesLehmannConfig::default()
        };
        let r = hodges_lehmann(&[1.0, 2.0, 2.0], &[0.0, 3.0], &cfg).unwrap();
        assert_eq!(r.method, Method::Asymptotic);
        let no_ties = hodges_lehmann(&[1.0, 2.0, 2.5], &[0.0, 3.0], &cfg).unwrap();
        assert_eq!(no_ties.method, Method::Exact);
    }

    #[test]
    fn one_sided_intervals_are_half_open() {
        let x = sample(7, 30, 10.0, false);
        let y = sample(8, 40, 10.0, false);
        for exact in [Some(true), Some(false)] {
            let greater = hodges_lehmann(
                &x,
                &y,
                &HodgesLehmannConfig {
                    alternative: Alternative::Greater,
                    exact,
                    ..HodgesLehmannConfig::default()
                },
            )
            .unwrap();
            assert_eq!(greater.upper, f64::INFINITY);
            assert!(greater.lower <= greater.estimate);
            let less = hodges_lehmann(
                &x,
                &y,
                &HodgesLehmannConfig {
                    alternative: Alternative::Less,
                    exact,
                    ..HodgesLehmannConfig::default()
                },
            )
            .unwrap();
            assert_eq!(less.lower, f64::NEG_INFINITY);
            assert!(less.upper >= less.estimate);
        }
    }

    #[test]
    fn both_representations_give_the_same_interval() {
        // 300 × 300 = 90 000 pairs: above the materialisation threshold.
        let x = sample(11, 300, 10.0, true);
        let y = sample(12, 300, 9.0, true);
        let r = hodges_lehmann(&x, &y, &HodgesLehmannConfig::default()).unwrap();
        let (xs, ys) = (sorted(x), sorted(y));
        let mut all = PairwiseDifferences::materialised(&xs, &ys);
        assert!(matches!(
            PairwiseDifferences::new(&xs, &ys),
            PairwiseDifferences::Implicit { .. }
        ));
        assert_eq!(r.estimate, all.median());
        let PairwiseDifferences::Materialised { all: d, .. } = &all else {
            unreachable!()
        };
        assert!(d.contains(&ordered_key(r.lower)) && d.contains(&ordered_key(r.upper)));
    }
}
