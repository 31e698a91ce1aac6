//! JSON conventions of Verdict's external shapes.
//!
//! JSON has no infinities or NaN, but statistics do: a one-sided interval
//! ends at ±inf, a mean ratio over a zero mean is NaN, a histogram's last
//! bucket is `le = +Inf`. Verdict writes them as the strings `"inf"`,
//! `"-inf"` and `"NaN"` and reads those strings back (plus the spellings
//! `"Infinity"`, `"+Inf"` that Prometheus and Kayenta use).
//!
//! Two ways to get there:
//! * [`to_string`], [`to_vec`] and [`from_str`] apply the convention to
//!   every `f64` of any serde type, however deep, without annotations. The
//!   run store and the run API use them, so whatever is written can be read
//!   back (serde_json alone writes a non-finite float as `null` and then
//!   refuses that `null` where a float is expected). [`from_str`] also
//!   reads such a `null` as NaN, which is what older versions wrote.
//! * [`float`], [`floats`] and [`bucket_bounds`] are field adapters, for the
//!   one place the codec cannot reach: serde buffers an internally tagged
//!   (`#[serde(tag = ...)]`) or untagged enum before it knows the variant,
//!   and reads the variant's fields from that buffer, not through the codec.

use serde::de::{self, DeserializeOwned, DeserializeSeed, Visitor};
use serde::ser::{self, Serialize};
use serde::{Deserialize, Deserializer, Serializer};
use serde_json::Value;
use std::fmt;

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

    /// Also reads `null` as NaN: what serde_json wrote for any non-finite
    /// float before Verdict wrote them as strings.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<Num>::deserialize(d)?.map_or(f64::NAN, |n| n.0))
    }
}

/// Serde adapter for `Vec<f64>` fields whose elements may be special strings.
pub mod floats {
    use super::*;

    pub fn serialize<S: Serializer>(xs: &[f64], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(xs.iter().map(|&x| number(x)))
    }

    /// Also reads `null` elements as NaN (see [`float::deserialize`]).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        let v: Vec<Option<Num>> = Vec::deserialize(d)?;
        Ok(v.into_iter().map(|n| n.map_or(f64::NAN, |n| n.0)).collect())
    }
}

/// Serde adapter for a histogram's upper bucket bounds (`le`), written as
/// [`floats`] writes them. A `null` bound is `+Inf`: older versions wrote
/// the last bucket's `le = +Inf` that way, and no bound is ever NaN.
pub mod bucket_bounds {
    use super::*;

    pub fn serialize<S: Serializer>(xs: &[f64], s: S) -> Result<S::Ok, S::Error> {
        floats::serialize(xs, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        let v: Vec<Option<Num>> = Vec::deserialize(d)?;
        Ok(v.into_iter()
            .map(|n| n.map_or(f64::INFINITY, |n| n.0))
            .collect())
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

/// `value` as JSON text, every non-finite `f64` in it written as a string
/// (see the module documentation).
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    serde_json::to_string(&NonFinite(value))
}

/// [`to_string`] as bytes.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&NonFinite(value))
}

/// [`to_string`], pretty-printed.
pub fn to_string_pretty<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    serde_json::to_string_pretty(&NonFinite(value))
}

/// Reads what [`to_string`] wrote: wherever an `f64` is expected, a number,
/// one of the special strings, or `null` (NaN, as older versions wrote it).
pub fn from_str<T: DeserializeOwned>(text: &str) -> serde_json::Result<T> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = T::deserialize(Lenient(&mut de))?;
    de.end()?;
    Ok(value)
}

// ---- writing: a serializer that forwards everything but non-finite floats

/// A value serialized with non-finite floats as strings, at any depth.
struct NonFinite<'a, T: ?Sized>(&'a T);

impl<T: Serialize + ?Sized> Serialize for NonFinite<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(Writer(s))
    }
}

struct Writer<S>(S);

/// The compound serializers of [`Writer`]: each element goes through it too.
struct Compound<C>(C);

macro_rules! forward_ser {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method(self, $($arg: $ty),*) -> Result<S::Ok, S::Error> {
            self.0.$method($($arg),*)
        }
    )*};
}

impl<S: Serializer> Serializer for Writer<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Compound<S::SerializeSeq>;
    type SerializeTuple = Compound<S::SerializeTuple>;
    type SerializeTupleStruct = Compound<S::SerializeTupleStruct>;
    type SerializeTupleVariant = Compound<S::SerializeTupleVariant>;
    type SerializeMap = Compound<S::SerializeMap>;
    type SerializeStruct = Compound<S::SerializeStruct>;
    type SerializeStructVariant = Compound<S::SerializeStructVariant>;

    forward_ser! {
        serialize_bool(v: bool);
        serialize_i8(v: i8);
        serialize_i16(v: i16);
        serialize_i32(v: i32);
        serialize_i64(v: i64);
        serialize_i128(v: i128);
        serialize_u8(v: u8);
        serialize_u16(v: u16);
        serialize_u32(v: u32);
        serialize_u64(v: u64);
        serialize_u128(v: u128);
        serialize_char(v: char);
        serialize_str(v: &str);
        serialize_bytes(v: &[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(name: &'static str);
        serialize_unit_variant(name: &'static str, index: u32, variant: &'static str);
    }

    fn serialize_f32(self, v: f32) -> Result<S::Ok, S::Error> {
        self.serialize_f64(f64::from(v))
    }

    fn serialize_f64(self, v: f64) -> Result<S::Ok, S::Error> {
        match number(v) {
            Value::String(text) => self.0.serialize_str(&text),
            _ => self.0.serialize_f64(v),
        }
    }

    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<S::Ok, S::Error> {
        self.0.serialize_some(&NonFinite(v))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        v: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_newtype_struct(name, &NonFinite(v))
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0
            .serialize_newtype_variant(name, index, variant, &NonFinite(v))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        self.0.serialize_seq(len).map(Compound)
    }

    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        self.0.serialize_tuple(len).map(Compound)
    }

    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        self.0.serialize_tuple_struct(name, len).map(Compound)
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        self.0
            .serialize_tuple_variant(name, index, variant, len)
            .map(Compound)
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        self.0.serialize_map(len).map(Compound)
    }

    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        self.0.serialize_struct(name, len).map(Compound)
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        self.0
            .serialize_struct_variant(name, index, variant, len)
            .map(Compound)
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

macro_rules! compound {
    ($trait:ident, $element:ident $(, $key:ident: $kty:ty)?) => {
        impl<C: ser::$trait> ser::$trait for Compound<C> {
            type Ok = C::Ok;
            type Error = C::Error;

            fn $element<T: Serialize + ?Sized>(
                &mut self,
                $($key: $kty,)?
                v: &T,
            ) -> Result<(), C::Error> {
                self.0.$element($($key,)? &NonFinite(v))
            }

            fn end(self) -> Result<C::Ok, C::Error> {
                self.0.end()
            }
        }
    };
}

compound!(SerializeSeq, serialize_element);
compound!(SerializeTuple, serialize_element);
compound!(SerializeTupleStruct, serialize_field);
compound!(SerializeTupleVariant, serialize_field);
compound!(SerializeStruct, serialize_field, key: &'static str);
compound!(SerializeStructVariant, serialize_field, key: &'static str);

impl<C: ser::SerializeMap> ser::SerializeMap for Compound<C> {
    type Ok = C::Ok;
    type Error = C::Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), C::Error> {
        self.0.serialize_key(&NonFinite(k))
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), C::Error> {
        self.0.serialize_value(&NonFinite(v))
    }

    fn end(self) -> Result<C::Ok, C::Error> {
        self.0.end()
    }
}

// ---- reading: a deserializer that accepts the spellings where a float goes

/// Wraps a deserializer so that every `f64` below it, however deep, is read
/// from a number, a special string or `null`.
struct Lenient<D>(D);

/// Passes a visitor's nested deserializers through [`Lenient`].
struct Wrapped<V>(V);

/// Reads a float in any of the forms [`to_string`] and older versions wrote.
struct FloatVisitor<V>(V);

macro_rules! forward_de {
    ($($method:ident),*) => {$(
        fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
            self.0.$method(Wrapped(v))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Lenient<D> {
    type Error = D::Error;

    forward_de!(
        deserialize_any,
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_option,
        deserialize_unit,
        deserialize_seq,
        deserialize_map,
        deserialize_identifier,
        deserialize_ignored_any
    );

    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(FloatVisitor(v))
    }

    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(FloatVisitor(v))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_unit_struct(name, Wrapped(v))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_newtype_struct(name, Wrapped(v))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple(len, Wrapped(v))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        v: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple_struct(name, len, Wrapped(v))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_struct(name, fields, Wrapped(v))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_enum(name, variants, Wrapped(v))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident($ty:ty);)*) => {$(
        fn $method<E: de::Error>(self, x: $ty) -> Result<V::Value, E> {
            self.0.$method(x)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrapped<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.expecting(f)
    }

    forward_visit! {
        visit_bool(bool);
        visit_i8(i8);
        visit_i16(i16);
        visit_i32(i32);
        visit_i64(i64);
        visit_i128(i128);
        visit_u8(u8);
        visit_u16(u16);
        visit_u32(u32);
        visit_u64(u64);
        visit_u128(u128);
        visit_f32(f32);
        visit_f64(f64);
        visit_char(char);
        visit_str(&str);
        visit_borrowed_str(&'de str);
        visit_string(String);
        visit_bytes(&[u8]);
        visit_borrowed_bytes(&'de [u8]);
        visit_byte_buf(Vec<u8>);
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.0.visit_some(Lenient(d))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.0.visit_newtype_struct(Lenient(d))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.0.visit_seq(Wrapped(seq))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.0.visit_map(Wrapped(map))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.0.visit_enum(Wrapped(data))
    }
}

impl<'de, T: DeserializeSeed<'de>> DeserializeSeed<'de> for Wrapped<T> {
    type Value = T::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T::Value, D::Error> {
        self.0.deserialize(Lenient(d))
    }
}

impl<'de, A: de::SeqAccess<'de>> de::SeqAccess<'de> for Wrapped<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(Wrapped(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for Wrapped<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(Wrapped(seed))
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.0.next_value_seed(Wrapped(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: de::EnumAccess<'de>> de::EnumAccess<'de> for Wrapped<A> {
    type Error = A::Error;
    type Variant = Wrapped<A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), A::Error> {
        let (value, variant) = self.0.variant_seed(Wrapped(seed))?;
        Ok((value, Wrapped(variant)))
    }
}

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for Wrapped<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.0.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.0.newtype_variant_seed(Wrapped(seed))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value, A::Error> {
        self.0.tuple_variant(len, Wrapped(v))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, A::Error> {
        self.0.struct_variant(fields, Wrapped(v))
    }
}

impl<'de, V: Visitor<'de>> Visitor<'de> for FloatVisitor<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number, \"inf\", \"-inf\", \"NaN\" or null")
    }

    fn visit_f64<E: de::Error>(self, x: f64) -> Result<V::Value, E> {
        self.0.visit_f64(x)
    }

    fn visit_i64<E: de::Error>(self, x: i64) -> Result<V::Value, E> {
        self.0.visit_f64(x as f64)
    }

    fn visit_u64<E: de::Error>(self, x: u64) -> Result<V::Value, E> {
        self.0.visit_f64(x as f64)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<V::Value, E> {
        match parse_special(s) {
            Some(x) => self.0.visit_f64(x),
            None => Err(E::invalid_value(de::Unexpected::Str(s), &self)),
        }
    }

    /// What serde_json wrote for a non-finite float (older stores).
    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_f64(f64::NAN)
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

    #[derive(Debug, serde::Serialize, Deserialize)]
    struct Deep {
        a: f64,
        b: Option<f64>,
        c: Vec<f64>,
        d: std::collections::BTreeMap<String, (f64, f32)>,
        e: Shape,
        f: Value,
    }

    #[derive(Debug, serde::Serialize, Deserialize)]
    enum Shape {
        Interval { lo: f64, hi: f64 },
        Point(f64),
    }

    fn same(x: f64, y: f64) -> bool {
        x == y || (x.is_nan() && y.is_nan())
    }

    #[test]
    fn the_codec_writes_and_reads_every_non_finite_float_at_any_depth() {
        let deep = Deep {
            a: f64::NAN,
            b: Some(f64::INFINITY),
            c: vec![0.5, f64::INFINITY, f64::NEG_INFINITY, f64::NAN],
            d: [("k".to_string(), (f64::NEG_INFINITY, f32::NAN))].into(),
            e: Shape::Interval {
                lo: f64::NEG_INFINITY,
                hi: 1.25,
            },
            f: number(f64::INFINITY),
        };
        let text = to_string(&deep).unwrap();
        assert!(!text.contains("null"), "{text}");
        let back: Deep = from_str(&text).unwrap();
        assert!(same(back.a, deep.a) && back.b == deep.b);
        assert!(back.c.iter().zip(&deep.c).all(|(x, y)| same(*x, *y)));
        let (x, y) = back.d["k"];
        assert!(x == f64::NEG_INFINITY && y.is_nan());
        assert!(
            matches!(back.e, Shape::Interval { lo, hi } if lo == f64::NEG_INFINITY && hi == 1.25)
        );
        assert_eq!(back.f, Value::String("inf".into()));
        let point: Shape = from_str(&to_string(&Shape::Point(f64::NAN)).unwrap()).unwrap();
        assert!(matches!(point, Shape::Point(x) if x.is_nan()));
        // Finite floats are written as serde_json writes them.
        assert_eq!(
            to_string(&[0.1, 1e300]).unwrap(),
            serde_json::to_string(&[0.1, 1e300]).unwrap()
        );
    }

    #[test]
    fn the_codec_reads_what_serde_json_wrote_before() {
        let old = serde_json::to_string(&Deep {
            a: f64::NAN,
            b: None,
            c: vec![f64::INFINITY],
            d: Default::default(),
            e: Shape::Point(f64::INFINITY),
            f: Value::Null,
        })
        .unwrap();
        let back: Deep = from_str(&old).unwrap();
        assert!(back.a.is_nan() && back.b.is_none() && back.c[0].is_nan());
        // Anything else still fails, naming what was found.
        let err = from_str::<Deep>(&old.replace("\"a\":null", "\"a\":\"fast\"")).unwrap_err();
        assert!(err.to_string().contains("fast"), "{err}");
        assert!(
            from_str::<Vec<f64>>("[1] x").is_err(),
            "trailing text is refused"
        );
    }

    #[test]
    fn bucket_bounds_read_an_old_null_as_plus_inf() {
        #[derive(Deserialize)]
        struct H {
            #[serde(with = "super::bucket_bounds")]
            le: Vec<f64>,
        }
        let h: H = serde_json::from_str(r#"{"le":[0.1,"+Inf"]}"#).unwrap();
        assert_eq!(h.le, vec![0.1, f64::INFINITY]);
        let h: H = serde_json::from_str(r#"{"le":[0.1,null]}"#).unwrap();
        assert_eq!(h.le, vec![0.1, f64::INFINITY]);
    }
}
