//! JSON conventions of Verdict's external shapes.
//!
//! JSON has no infinities or NaN, but statistics do: a one-sided interval
//! ends at ±inf, a mean ratio over a zero mean is NaN. Verdict writes them as
//! the strings `"inf"`, `"-inf"` and `"NaN"` and reads those strings back
//! (plus the spellings `"Infinity"`, `"+Inf"` that Prometheus and Kayenta use).

use serde::{Deserialize, Deserializer, Serializer};
use serde_json::Value;

/// A float as a JSON value: a number when finite, otherwise a string.
pub fn number(x: f64) -> Value {
    if x.is_finite() {
        serde_json::Number::from_f64(x)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    } else if x.is_nan() {
        Value::String("NaN".into())
    } else if x > 0.0 {
        Value::String("inf".into())
    } else {
        Value::String("-inf".into())
    }
}

/// An interval as a two-element JSON array (see [`number`]).
pub fn interval(lo: f64, hi: f64) -> Value {
    Value::Array(vec![number(lo), number(hi)])
}

/// Parses the string spellings of non-finite floats.
pub fn parse_special(s: &str) -> Option<f64> {
    match s {
        "inf" | "+inf" | "Inf" | "+Inf" | "Infinity" | "+Infinity" => Some(f64::INFINITY),
        "-inf" | "-Inf" | "-Infinity" => Some(f64::NEG_INFINITY),
        "nan" | "NaN" => Some(f64::NAN),
        _ => None,
    }
}

/// Serde adapter: `#[serde(with = "crate::json::float")]` on an `f64` field.
pub mod float {
    use super::*;

    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(&number(*x), s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Num::deserialize(d)?.0)
    }
}

/// Serde adapter for `Vec<f64>` fields whose elements may be special strings.
pub mod floats {
    use super::*;

    pub fn serialize<S: Serializer>(xs: &[f64], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(xs.iter().map(|&x| number(x)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        let v: Vec<Num> = Vec::deserialize(d)?;
        Ok(v.into_iter().map(|n| n.0).collect())
    }
}

/// A float read from a JSON number or one of the special strings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Num(pub f64);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(x) => Ok(Num(x)),
            Raw::Text(s) => parse_special(&s).map(Num).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "expected a number or \"inf\"/\"-inf\"/\"NaN\", got string {s:?}"
                ))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_numbers_round_trip_as_strings() {
        assert_eq!(number(f64::INFINITY), Value::String("inf".into()));
        assert_eq!(number(f64::NEG_INFINITY), Value::String("-inf".into()));
        assert_eq!(number(f64::NAN), Value::String("NaN".into()));
        assert_eq!(number(1.5), serde_json::json!(1.5));
        let parsed: Vec<Num> =
            serde_json::from_str(r#"[1, "inf", "-inf", "NaN", "+Inf"]"#).unwrap();
        assert_eq!(parsed[0].0, 1.0);
        assert_eq!(parsed[1].0, f64::INFINITY);
        assert_eq!(parsed[2].0, f64::NEG_INFINITY);
        assert!(parsed[3].0.is_nan());
        assert_eq!(parsed[4].0, f64::INFINITY);
    }

    #[test]
    fn other_strings_are_rejected_with_the_value() {
        let err = serde_json::from_str::<Num>(r#""fast""#).unwrap_err();
        assert!(err.to_string().contains("\"fast\""), "{err}");
    }
}
