//! The one error type of the statistics functions.

use thiserror::Error;

/// Why a statistic could not be computed. Callers turn these into "no data"
/// or "error" classifications with the message as the reason, never a pass.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum StatsError {
    /// A sample that must have values has none (after NaN removal, if any).
    #[error("the {sample} sample is empty")]
    EmptySample { sample: &'static str },
    /// A sample is too small for the statistic (e.g. a variance needs two values).
    #[error("the {sample} sample has {len} value(s); at least {needed} are needed")]
    TooFewValues {
        sample: &'static str,
        len: usize,
        needed: usize,
    },
    /// A NaN (or, where the arithmetic is meaningless, an infinity) in the input.
    #[error("the {sample} sample contains a non-finite value ({value}) at index {index}")]
    NonFinite {
        sample: &'static str,
        index: usize,
        value: f64,
    },
    /// A parameter outside its domain, e.g. `conf_level` not in (0, 1).
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter { name: &'static str, reason: String },
}

/// Checks that `conf_level` lies strictly between 0 and 1.
pub fn check_conf_level(conf_level: f64) -> Result<(), StatsError> {
    if conf_level > 0.0 && conf_level < 1.0 {
        Ok(())
    } else {
        Err(StatsError::InvalidParameter {
            name: "conf_level",
            reason: format!("must be strictly between 0 and 1, got {conf_level}"),
        })
    }
}

/// Rejects NaN (always) and, when `allow_infinite` is false, ±inf.
pub fn check_values(
    sample: &'static str,
    values: &[f64],
    allow_infinite: bool,
) -> Result<(), StatsError> {
    for (index, &value) in values.iter().enumerate() {
        if value.is_nan() || (!allow_infinite && value.is_infinite()) {
            return Err(StatsError::NonFinite {
                sample,
                index,
                value,
            });
        }
    }
    Ok(())
}
