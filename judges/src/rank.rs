//! Average ranks with tie groups: the common ground of the rank tests.
//!
//! Ranks are 1-based; tied values share the mean of the ranks they span
//! (`scipy.stats.rankdata(method="average")`, R's `rank()`). The tie term
//! `Σ (t³ − t)` over tie groups of size `t` feeds the tie-corrected variance
//! of the Mann-Whitney statistic.

/// Average ranks of a pooled sample and its tie summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranks {
    /// `ranks[i]` is the average rank of `values[i]`.
    pub ranks: Vec<f64>,
    /// `Σ (t³ − t)` over tie groups; 0 when all values are distinct.
    pub tie_term: f64,
}

impl Ranks {
    /// Whether any two values were equal.
    pub fn has_ties(&self) -> bool {
        self.tie_term > 0.0
    }
}

/// Ranks `values` (which must not contain NaN; ±inf rank as extremes).
///
/// O(N log N): one sort of indices, one pass over tie runs.
pub fn average_ranks(values: &[f64]) -> Ranks {
    debug_assert!(values.iter().all(|v| !v.is_nan()), "NaN cannot be ranked");
    let n = values.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; n];
    let mut tie_term = 0.0;
    let mut start = 0;
    while start < n {
        let mut end = start + 1;
        // `==` (not total_cmp) so that -0.0 and 0.0 tie, as in scipy.
        while end < n && values[order[end]] == values[order[start]] {
            end += 1;
        }
        let t = (end - start) as f64;
        // Ranks start..end (0-based) are start+1..=end (1-based); their mean:
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        tie_term += t * t * t - t;
        start = end;
    }
    Ranks { ranks, tie_term }
}

/// The rank sum of `xs` in the pooled sample `xs ∪ ys` and the pooled tie
/// term, from the two samples sorted ascending (no NaN): the same numbers as
/// [`average_ranks`] of the pooled sample, summed over `xs`.
///
/// One merge of the sorted arms, O(n + m): tie groups (values equal by `==`,
/// so −0.0 and 0.0 tie) are visited in ascending order; a group spanning
/// pooled positions `start..end` (0-based) has average rank
/// `(start + 1 + end)/2`, contributes `c_x·rank` to the rank sum (`c_x` of
/// its values from `xs`) and `t³ − t` to the tie term, in the order
/// [`average_ranks`] adds them. Ranks are multiples of ½, so the rank sum is
/// exact below 2^52 whatever the order.
pub fn merged_rank_sum(xs: &[f64], ys: &[f64]) -> (f64, f64) {
    debug_assert!(xs.is_sorted() && ys.is_sorted());
    let (n, m) = (xs.len(), ys.len());
    let (mut i, mut j) = (0, 0);
    let mut rank_sum = 0.0;
    let mut tie_term = 0.0;
    // The open group: its first pooled position, its value, and how many of
    // its values came from xs.
    let (mut start, mut value, mut group_x) = (0usize, f64::NAN, 0usize);
    for position in 0..n + m {
        // Which arm holds the next pooled value is a coin flip for
        // interleaved samples: computed as a flag and selected, not branched
        // on (only the rare tie continues a group).
        let x = if i < n { xs[i] } else { f64::INFINITY };
        let y = if j < m { ys[j] } else { f64::INFINITY };
        // `&`/`|`, not `&&`/`||`: no short-circuit branch on the comparison.
        let from_x = (i < n) & ((j == m) | (x <= y));
        let next = if from_x { x } else { y };
        if next != value {
            let t = (position - start) as f64;
            rank_sum += group_x as f64 * ((start + 1 + position) as f64 / 2.0);
            tie_term += t * t * t - t;
            (start, value, group_x) = (position, next, 0);
        }
        group_x += usize::from(from_x);
        i += usize::from(from_x);
        j += usize::from(!from_x);
    }
    let t = (n + m - start) as f64;
    rank_sum += group_x as f64 * ((start + 1 + n + m) as f64 / 2.0);
    tie_term += t * t * t - t;
    (rank_sum, tie_term)
}

/// Maps an f64 to a u64 whose unsigned order is `f64::total_cmp`'s order,
/// i.e. the numeric order of non-NaN floats with −0.0 just below +0.0.
pub(crate) fn ordered_key(v: f64) -> u64 {
    let bits = v.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// Inverse of [`ordered_key`].
pub(crate) fn from_ordered_key(key: u64) -> f64 {
    if key >> 63 == 1 {
        f64::from_bits(key & !(1 << 63))
    } else {
        f64::from_bits(!key)
    }
}

/// From this length on [`sorted_copy`] radix-sorts; below it a comparison
/// sort of the keys is faster (measured: 1.2× slower radix at 10k, 1.5×
/// faster at 100k on the benchmark data).
const RADIX_SORT_MIN_LEN: usize = 1 << 15;

/// Bits per least-significant-digit radix pass: 2^11 counters (16 KiB) stay
/// in L1, and 64 bits take 6 passes.
const RADIX_BITS: usize = 11;

/// `values` sorted ascending in `f64::total_cmp` order (the order of
/// `sort_unstable_by(f64::total_cmp)`, bit for bit).
///
/// Sorts the ordered keys (`ordered_key`) as integers: `sort_unstable` for short inputs,
/// otherwise an LSD radix sort (Knuth, TAOCP vol. 3, §5.2.5) whose digit
/// counts come from one read pass and which skips a digit position where
/// all keys agree (exponent bits of same-magnitude data).
pub fn sorted_copy(values: &[f64]) -> Vec<f64> {
    let mut keys: Vec<u64> = values.iter().map(|&v| ordered_key(v)).collect();
    if keys.len() < RADIX_SORT_MIN_LEN {
        keys.sort_unstable();
    } else {
        radix_sort(&mut keys);
    }
    // Same size and alignment: collected in place, no second allocation.
    keys.into_iter().map(from_ordered_key).collect()
}

fn radix_sort(keys: &mut Vec<u64>) {
    const DIGITS: usize = 64usize.div_ceil(RADIX_BITS);
    const MASK: u64 = (1 << RADIX_BITS) - 1;
    let mut counts = vec![[0usize; 1 << RADIX_BITS]; DIGITS];
    for &key in keys.iter() {
        for (digit, count) in counts.iter_mut().enumerate() {
            count[((key >> (digit * RADIX_BITS)) & MASK) as usize] += 1;
        }
    }
    let mut scratch = vec![0u64; keys.len()];
    for (digit, count) in counts.iter_mut().enumerate() {
        if count.contains(&keys.len()) {
            continue;
        }
        let mut next = 0;
        for c in count.iter_mut() {
            (*c, next) = (next, next + *c);
        }
        for &key in keys.iter() {
            let bucket = &mut count[((key >> (digit * RADIX_BITS)) & MASK) as usize];
            scratch[*bucket] = key;
            *bucket += 1;
        }
        std::mem::swap(keys, &mut scratch);
    }
}

/// The tie term `Σ (t³ − t)` of one sample on its own, without ranks.
///
/// Sorts a copy; used where only the within-sample ties matter (the
/// Hodges-Lehmann asymptotic interval).
pub fn tie_term(values: &[f64]) -> f64 {
    tie_term_sorted(&sorted_copy(values))
}

/// [`tie_term`] of an already sorted slice.
pub fn tie_term_sorted(sorted: &[f64]) -> f64 {
    let mut term = 0.0;
    let mut start = 0;
    while start < sorted.len() {
        let mut end = start + 1;
        while end < sorted.len() && sorted[end] == sorted[start] {
            end += 1;
        }
        let t = (end - start) as f64;
        term += t * t * t - t;
        start = end;
    }
    term
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_values_get_their_positions() {
        let r = average_ranks(&[3.0, 1.0, 2.0]);
        assert_eq!(r.ranks, vec![3.0, 1.0, 2.0]);
        assert_eq!(r.tie_term, 0.0);
        assert!(!r.has_ties());
    }

    #[test]
    fn ties_share_the_average_rank() {
        // scipy.stats.rankdata([1, 2, 2, 3, 3, 3]) = [1, 2.5, 2.5, 5, 5, 5]
        let r = average_ranks(&[1.0, 2.0, 2.0, 3.0, 3.0, 3.0]);
        assert_eq!(r.ranks, vec![1.0, 2.5, 2.5, 5.0, 5.0, 5.0]);
        assert_eq!(r.tie_term, (8.0 - 2.0) + (27.0 - 3.0));
    }

    #[test]
    fn all_equal_is_one_tie_group() {
        let r = average_ranks(&[7.0; 4]);
        assert_eq!(r.ranks, vec![2.5; 4]);
        assert_eq!(r.tie_term, 64.0 - 4.0);
    }

    #[test]
    fn empty_and_single() {
        assert_eq!(average_ranks(&[]).ranks, Vec::<f64>::new());
        assert_eq!(average_ranks(&[5.0]).ranks, vec![1.0]);
    }

    #[test]
    fn infinities_rank_as_extremes_and_signed_zeros_tie() {
        let r = average_ranks(&[f64::INFINITY, 0.0, -0.0, f64::NEG_INFINITY]);
        assert_eq!(r.ranks, vec![4.0, 2.5, 2.5, 1.0]);
    }

    /// Small samples with frequent ties, signed zeros and infinities.
    fn tricky_sample(seed: u64, len: usize) -> Vec<f64> {
        let mut rng = crate::splitmix64::SplitMix64::new(seed);
        let pool = [
            f64::NEG_INFINITY,
            -2.0,
            -0.0,
            0.0,
            0.5,
            1.0,
            3.0,
            f64::INFINITY,
        ];
        (0..len)
            .map(|_| {
                let r = rng.next_u64();
                if r.is_multiple_of(3) {
                    rng.next_f64()
                } else {
                    pool[(r >> 8) as usize % pool.len()]
                }
            })
            .collect()
    }

    #[test]
    fn merged_rank_sum_equals_pooled_average_ranks() {
        for seed in 0..300u64 {
            let x = tricky_sample(seed, 1 + (seed % 23) as usize);
            let y = tricky_sample(seed + 1000, 1 + (seed % 17) as usize);
            let pooled: Vec<f64> = x.iter().chain(&y).copied().collect();
            let ranks = average_ranks(&pooled);
            let expected: f64 = ranks.ranks[..x.len()].iter().sum();
            let (rank_sum, tie) = merged_rank_sum(&sorted_copy(&x), &sorted_copy(&y));
            assert_eq!(rank_sum, expected, "seed {seed}");
            assert_eq!(tie.to_bits(), ranks.tie_term.to_bits(), "seed {seed}");
        }
        assert_eq!(merged_rank_sum(&[1.0], &[1.0]), (1.5, 6.0));
        assert_eq!(merged_rank_sum(&[2.0], &[]), (1.0, 0.0));
    }

    #[test]
    fn sorted_copy_is_total_cmp_order_at_every_length() {
        // Both sides of the radix threshold, with signed zeros and infinities.
        for len in [0, 1, 2, 100, RADIX_SORT_MIN_LEN - 1, RADIX_SORT_MIN_LEN + 7] {
            let values = tricky_sample(len as u64, len);
            let mut expected = values.clone();
            expected.sort_unstable_by(f64::total_cmp);
            let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&sorted_copy(&values)), bits(&expected), "len {len}");
        }
        // All keys equal: every digit pass is skipped.
        assert_eq!(
            sorted_copy(&vec![4.0; RADIX_SORT_MIN_LEN]),
            vec![4.0; RADIX_SORT_MIN_LEN]
        );
    }

    #[test]
    fn ordered_key_is_monotone_and_invertible() {
        let values = [
            f64::NEG_INFINITY,
            -1e300,
            -1.0,
            -1e-310,
            -0.0,
            0.0,
            1e-310,
            1.0,
            1e300,
            f64::INFINITY,
        ];
        for pair in values.windows(2) {
            assert!(ordered_key(pair[0]) < ordered_key(pair[1]), "{pair:?}");
        }
        for v in values {
            assert_eq!(from_ordered_key(ordered_key(v)).to_bits(), v.to_bits());
        }
    }

    #[test]
    fn tie_term_of_one_sample() {
        assert_eq!(tie_term(&[2.0, 1.0, 2.0, 2.0]), 24.0);
        assert_eq!(tie_term(&[]), 0.0);
    }
}
