//! Kayenta compatibility: canary configs, preprocessing, the
//! `NetflixACAJudge-v1.0` metric classifier and the canary scorer.
//!
//! # What parity means here
//!
//! Verdict loads Kayenta canary configs unchanged ([`config`]) and, given the
//! same control and experiment arrays, produces **the same metric labels**
//! (`Pass`, `High`, `Low`, `Nodata`, `NodataFailMetric`, `Error`), **the same
//! critical flags** and **the same canary score and classification** as
//! Kayenta's `NetflixACAJudge-v1.0`. Every label and score asserted by
//! Kayenta's own test-suite (`fixtures/reference/kayenta_vectors.json`) is
//! reproduced exactly.
//!
//! Parity does **not** extend to the last digits of Kayenta's interval and
//! estimate. Kayenta locates them with a Brent root finder (tolerance 1e-4)
//! on a step function, so its numbers sit anywhere within 1e-4 of the true
//! step, the estimate can coincide with an endpoint, and with heavy ties the
//! interval can come out inverted. Verdict takes the interval from
//! [`crate::hodges_lehmann`] (exact order statistics): the same steps,
//! located exactly, never inverted.
//!
//! # Where Verdict deviates on purpose
//!
//! Each is documented in `docs/statistics/kayenta.md` with its reason:
//! * no random noise for two constant-but-different sides (the exact interval
//!   of two constants is their difference, zero width);
//! * an interval endpoint that lands exactly on the tolerance band edge (only
//!   possible at a tie step) is resolved by testing that shift directly,
//!   instead of by which side of the step the root finder stopped on;
//! * an `Error` result of a critical metric stays critical (Kayenta drops the
//!   flag, so a broken critical metric silently stops counting);
//! * ±∞ values (left untouched by Kayenta's preprocessing) make the metric an
//!   `Error` with a reason, instead of feeding infinities into the test;
//! * every non-pass result carries a sentence with the numbers behind it, and
//!   the statistics (interval, estimate, band, effect sizes, p-value) are
//!   returned, not discarded.
//! * `effectSize.measure: "cohenD"` selects (signed) Cohen's d, which
//!   Kayenta computes but its classifier never selects;
//! * no NaN in a result: where Kayenta's deviation is NaN (a zero mean) it is
//!   1.0 with `mean_ratio: None`, and an undefined effect size is `None`;
//! * CLES is computed in floating point (Kayenta's 32-bit integers overflow
//!   for very large samples).

pub mod classifier;
pub mod config;
pub mod preprocess;
pub mod scorer;

pub use classifier::Label;
pub use config::{CanaryConfig, Direction, MetricSettings, NanStrategy, OutlierStrategy};
pub use scorer::{
    score, GroupScore, ScoreClassification, ScoreResult, ScoreThresholds, ScoredMetric,
};
