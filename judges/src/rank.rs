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

/// The tie term `Σ (t³ − t)` of one sample on its own, without ranks.
///
/// Sorts a copy; used where only the within-sample ties matter (the
/// Hodges-Lehmann asymptotic interval).
pub fn tie_term(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    tie_term_sorted(&sorted)
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

    #[test]
    fn tie_term_of_one_sample() {
        assert_eq!(tie_term(&[2.0, 1.0, 2.0, 2.0]), 24.0);
        assert_eq!(tie_term(&[]), 0.0);
    }
}
