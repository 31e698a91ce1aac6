//! # verdict-judges
//!
//! The statistics behind Verdict's canary decisions, as a pure library: every
//! function takes slices or counts and returns a result struct. Nothing here
//! does I/O, spawns tasks, reads clocks or knows about HTTP or Prometheus; the
//! `analyzer` crate feeds data in and maps results to protocols.
//!
//! Layout, one statistical idea per module:
//!
//! * [`rank`]: average ranks with tie groups (shared by Mann-Whitney, HL, CLES).
//! * [`mann_whitney`]: the U test exactly as `scipy.stats.mannwhitneyu`.
//! * [`hodges_lehmann`]: shift estimate and interval as R's
//!   `wilcox.test(x, y, conf.int = TRUE)`, by order-statistic selection.
//! * [`welch`]: Welch's unequal-variance t-test.
//! * [`proportions`]: two-proportion z-test, Newcombe interval, Fisher's exact test.
//! * [`poisson`]: conditional binomial test of two Poisson rates.
//! * [`effect_size`]: Kayenta's mean ratio, CLES and Cohen's d.
//! * [`kayenta`]: Kayenta-compatible preprocessing, classifier, scorer and
//!   canary-config types.
//! * [`sequential`]: anytime-valid e-processes and confidence sequences.
//!
//! Conventions: `x` is the canary, `y` the baseline; `Alternative::Greater`
//! means the canary is larger. NaN never silently becomes a number: each test
//! documents what it does with non-finite input.

pub mod alternative;
pub mod decision;
pub mod effect_size;
pub mod error;
pub mod hodges_lehmann;
pub mod kayenta;
pub mod mann_whitney;
pub mod poisson;
pub mod proportions;
pub mod rank;
pub mod sequential;
pub mod splitmix64;
pub mod welch;

pub use alternative::Alternative;
pub use error::StatsError;
