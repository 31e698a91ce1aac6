//! Durations as Prometheus and Kubernetes users write them: `90s`, `5m`,
//! `1h30m`, `250ms`. Used in configs, webhook metadata and PromQL ranges.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// A duration written in Prometheus syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PromDuration(pub Duration);

impl PromDuration {
    pub fn from_secs(secs: u64) -> Self {
        PromDuration(Duration::from_secs(secs))
    }

    pub fn as_secs_f64(&self) -> f64 {
        self.0.as_secs_f64()
    }
}

impl From<PromDuration> for Duration {
    fn from(d: PromDuration) -> Duration {
        d.0
    }
}

/// Parses `1h30m`, `15s`, `250ms`, `2d`, `1w`; a bare number is seconds.
pub fn parse(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(Duration::from_secs_f64(secs));
        }
        return Err(format!("invalid duration {text:?}"));
    }
    let mut total_ms: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "invalid duration {text:?}: expected a number before {rest:?}"
            ));
        }
        let n: u128 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid duration {text:?}"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit_ms: u128 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "y" => 31_536_000_000,
            other => {
                return Err(format!(
                    "invalid duration {text:?}: unknown unit {other:?} (use ms, s, m, h, d, w, y)"
                ))
            }
        };
        total_ms = total_ms
            .checked_add(n.checked_mul(unit_ms).ok_or("duration overflows")?)
            .ok_or("duration overflows")?;
        rest = &rest[unit_len..];
    }
    let ms = u64::try_from(total_ms).map_err(|_| "duration overflows".to_string())?;
    Ok(Duration::from_millis(ms))
}

/// Formats in the largest whole units, PromQL-compatible (`90s` → `1m30s`).
pub fn format(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [("h", 3_600_000u128), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

impl fmt::Display for PromDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format(self.0))
    }
}

impl std::str::FromStr for PromDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse(s).map(PromDuration)
    }
}

impl Serialize for PromDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(s) => Ok(PromDuration::from_secs(s)),
            Raw::Text(t) => parse(&t)
                .map(PromDuration)
                .map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_durations() {
        assert_eq!(parse("15s").unwrap(), Duration::from_secs(15));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse("2").unwrap(), Duration::from_secs(2));
        assert!(parse("").is_err());
        assert!(parse("5 minutes").is_err());
        assert!(parse("m5").is_err());
        assert!(parse("-1").is_err());
    }

    #[test]
    fn formats_round_trip() {
        for s in ["1m30s", "2h", "15s", "1s500ms", "0s"] {
            assert_eq!(format(parse(s).unwrap()), s);
        }
    }
}
