//! Flattening typed requests into the RPC parameter map, and tolerant response decoding.
//!
//! One mechanism serves every request type: the request is serialised with serde (field names
//! are the API's PascalCase names) into a JSON value, which is then flattened the way the
//! official SDK's `Query` helper does (reference §1.6):
//!
//! * object → `Prefix.Field`, list → `Prefix.1`, `Prefix.2`, … (1-based);
//! * `null` (an unset `Option`) and empty lists or objects produce no parameter;
//! * booleans as `true`/`false`, numbers as JSON numbers with integral floats written without a
//!   fraction (`2`, `0.5`) like Go's `%v`.
//!
//! Parameters the API wants as a JSON string (`ContainerGroupIds`, `ExecContainerCommand`'s
//! `Command`) use [`json_string`] as their `serialize_with`.
//!
//! Responses go the other way through [`decode`]: `null`s are dropped before deserialising so
//! response types can use `#[serde(default)]` for every field and tolerate missing, `null` and
//! unknown fields alike.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer, de::DeserializeOwned};
use serde_json::Value;

/// Flattens a request into `name → value` parameters.
///
/// # Errors
/// Returns the reason if the value does not serialise to a JSON object (a bug in a request type).
pub fn to_params<T: Serialize + ?Sized>(request: &T) -> Result<BTreeMap<String, String>, String> {
    let value = serde_json::to_value(request).map_err(|e| e.to_string())?;
    let Value::Object(fields) = value else {
        return Err(format!("expected a struct, got {value}"));
    };
    let mut out = BTreeMap::new();
    for (name, value) in fields {
        flatten(&name, value, &mut out);
    }
    Ok(out)
}

fn flatten(prefix: &str, value: Value, out: &mut BTreeMap<String, String>) {
    match value {
        Value::Null => {}
        Value::Bool(b) => {
            out.insert(prefix.to_owned(), b.to_string());
        }
        Value::Number(n) => {
            out.insert(prefix.to_owned(), number(&n));
        }
        Value::String(s) => {
            out.insert(prefix.to_owned(), s);
        }
        Value::Array(items) => {
            for (i, item) in items.into_iter().enumerate() {
                flatten(&format!("{prefix}.{}", i + 1), item, out);
            }
        }
        Value::Object(fields) => {
            for (name, item) in fields {
                flatten(&format!("{prefix}.{name}"), item, out);
            }
        }
    }
}

/// A JSON number as Go's `%v` would print it: `2` for 2.0, `0.25` for 0.25.
fn number(n: &serde_json::Number) -> String {
    if let Some(f) = n.as_f64().filter(|_| n.is_f64())
        && f.fract() == 0.0
        && f.abs() < 1e15
    {
        // Exact: |f| < 2^53, and it has no fraction.
        #[allow(clippy::cast_possible_truncation)]
        return (f as i64).to_string();
    }
    n.to_string()
}

/// `serialize_with` for list parameters the API takes as one JSON-array string
/// (`["eci-a","eci-b"]`); an empty list is left out.
///
/// # Errors
/// Never fails for string lists; errors of the inner serialiser are passed on.
pub fn json_string<S: Serializer>(items: &[String], serializer: S) -> Result<S::Ok, S::Error> {
    if items.is_empty() {
        return serializer.serialize_none();
    }
    let text = serde_json::to_string(items).map_err(serde::ser::Error::custom)?;
    serializer.serialize_str(&text)
}

/// Deserialises a response body, dropping `null`s first (see the module docs).
///
/// # Errors
/// The body is not JSON, or a present field has the wrong type.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, serde_json::Error> {
    let mut value: Value = serde_json::from_slice(body)?;
    strip_nulls(&mut value);
    serde_json::from_value(value)
}

fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            fields.retain(|_, v| !v.is_null());
            fields.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => {
            items.retain(|v| !v.is_null());
            items.iter_mut().for_each(strip_nulls);
        }
        _ => {}
    }
}

/// `deserialize_with` helpers for integer fields that a service may answer as `500`, `500.0` or
/// `"500"`: the Go SDK types them as integers, but tolerance costs nothing and a newer (or
/// emulated) service may write floats. Fractions are rounded; out-of-range values are errors.
pub mod lenient {
    use serde::{Deserialize, Deserializer, de::Error as _};
    use serde_json::Value;

    fn number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::Number(n) => n
                .as_f64()
                .ok_or_else(|| D::Error::custom("number out of range")),
            Value::String(s) => s
                .trim()
                .parse()
                .map_err(|_| D::Error::custom(format!("expected a number, got {s:?}"))),
            other => Err(D::Error::custom(format!("expected a number, got {other}"))),
        }
    }

    /// An `f64` from a number or a numeric string.
    ///
    /// # Errors
    /// Not a number.
    pub fn f64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        number(deserializer)
    }

    /// An `i64` from an integer, a float or a numeric string.
    ///
    /// # Errors
    /// Not a number, or outside `i64`.
    pub fn i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
        let f = number(deserializer)?.round();
        // `i64::MAX as f64` rounds up to 2^63, which is itself out of range.
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        if f.is_finite() && f >= i64::MIN as f64 && f < i64::MAX as f64 {
            Ok(f as i64)
        } else {
            Err(D::Error::custom(format!("{f} is out of range")))
        }
    }

    /// A `u64` from an integer, a float or a numeric string.
    ///
    /// # Errors
    /// Not a number, negative, or outside `u64`.
    pub fn u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        let f = number(deserializer)?.round();
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        if f.is_finite() && f >= 0.0 && f < u64::MAX as f64 {
            Ok(f as u64)
        } else {
            Err(D::Error::custom(format!("{f} is out of range")))
        }
    }

    /// An `i32` from an integer, a float or a numeric string.
    ///
    /// # Errors
    /// Not a number, or outside `i32`.
    pub fn i32<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i32, D::Error> {
        let wide = i64(deserializer)?;
        i32::try_from(wide).map_err(|_| D::Error::custom(format!("{wide} is out of range")))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Inner {
        name: String,
        #[serde(rename = "Add")]
        adds: Vec<String>,
        missing: Option<u32>,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Req {
        cpu: Option<f64>,
        memory: f64,
        count: u32,
        flag: bool,
        unset: Option<String>,
        #[serde(rename = "Item")]
        items: Vec<Inner>,
        #[serde(rename = "Empty")]
        empty: Vec<String>,
        #[serde(serialize_with = "json_string")]
        ids: Vec<String>,
        #[serde(serialize_with = "json_string")]
        no_ids: Vec<String>,
    }

    #[test]
    fn flattens_lists_one_based_objects_dotted_and_skips_unset() {
        let req = Req {
            cpu: Some(0.25),
            memory: 2.0,
            count: 3,
            flag: false,
            unset: None,
            items: vec![
                Inner {
                    name: "a b".into(),
                    adds: vec!["NET_ADMIN".into(), "SYS_TIME".into()],
                    missing: None,
                },
                Inner {
                    name: "c".into(),
                    adds: vec![],
                    missing: Some(7),
                },
            ],
            empty: vec![],
            ids: vec!["eci-a".into(), "eci-b".into()],
            no_ids: vec![],
        };
        let params = to_params(&req).expect("a struct");
        let got: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("Count", "3"),
                ("Cpu", "0.25"),
                ("Flag", "false"),
                ("Ids", r#"["eci-a","eci-b"]"#),
                ("Item.1.Add.1", "NET_ADMIN"),
                ("Item.1.Add.2", "SYS_TIME"),
                ("Item.1.Name", "a b"),
                ("Item.2.Missing", "7"),
                ("Item.2.Name", "c"),
                ("Memory", "2"),
            ]
        );
    }

    #[test]
    fn top_level_must_be_a_struct() {
        assert!(to_params(&vec![1, 2]).is_err());
        assert!(to_params(&"x").is_err());
    }

    #[test]
    fn numbers_print_like_go() {
        let n = |v: Value| match v {
            Value::Number(n) => number(&n),
            _ => unreachable!(),
        };
        assert_eq!(n(serde_json::json!(2.0)), "2");
        assert_eq!(n(serde_json::json!(0.5)), "0.5");
        assert_eq!(n(serde_json::json!(-3)), "-3");
        assert_eq!(n(serde_json::json!(u64::MAX)), u64::MAX.to_string());
    }

    #[derive(Deserialize, Default, Debug, PartialEq)]
    #[serde(rename_all = "PascalCase", default)]
    struct Resp {
        name: String,
        list: Vec<String>,
        count: i64,
    }

    #[test]
    fn decode_tolerates_null_missing_and_unknown_fields() {
        let r: Resp =
            decode(br#"{"Name":null,"List":["a",null],"Unknown":{"X":1}}"#).expect("decodes");
        assert_eq!(
            r,
            Resp {
                name: String::new(),
                list: vec!["a".into()],
                count: 0
            }
        );
        assert!(decode::<Resp>(br#"{"Count":"many"}"#).is_err());
        assert!(decode::<Resp>(b"<Error/>").is_err());
    }

    #[derive(Deserialize, Default, Debug, PartialEq)]
    #[serde(rename_all = "PascalCase", default)]
    struct Loose {
        #[serde(deserialize_with = "lenient::u64")]
        a: u64,
        #[serde(deserialize_with = "lenient::i64")]
        b: i64,
        #[serde(deserialize_with = "lenient::i32")]
        c: i32,
    }

    #[test]
    fn lenient_integers_accept_floats_and_strings() {
        let l: Loose = decode(br#"{"A":500.0,"B":"-7","C":3}"#).expect("decodes");
        assert_eq!(
            l,
            Loose {
                a: 500,
                b: -7,
                c: 3
            }
        );
        let l: Loose = decode(br#"{"B":2.6}"#).expect("missing fields default");
        assert_eq!(l, Loose { a: 0, b: 3, c: 0 });
        assert!(decode::<Loose>(br#"{"A":-1}"#).is_err());
        assert!(decode::<Loose>(br#"{"A":"lots"}"#).is_err());
        assert!(decode::<Loose>(br#"{"A":true}"#).is_err());
        assert!(decode::<Loose>(br#"{"C":4294967296}"#).is_err());
        assert!(decode::<Loose>(br#"{"B":1e300}"#).is_err());
    }
}
