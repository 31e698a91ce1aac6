//! The alternative hypothesis shared by every two-sample test.

use serde::{Deserialize, Serialize};

/// Which departure from "canary equals baseline" a test looks for.
///
/// `Greater` means the canary (`x`) is larger than the baseline (`y`): for a
/// lower-is-better metric such as latency or errors, that is "canary worse".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Alternative {
    #[default]
    #[serde(alias = "two.sided", alias = "two_sided")]
    TwoSided,
    Less,
    Greater,
}
