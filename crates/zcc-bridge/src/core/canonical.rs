//! Canonical JSON for dedup keys, written here rather than left to `serde_json`'s defaults, so that no
//! dependency's feature (serde_json's `preserve_order`, say, which keeps object keys in arrival order) can change
//! the key of an event and turn a redelivery into a second event.
//!
//! `jcs` is RFC 8785 (JSON Canonicalization Scheme): object members sorted by the UTF-16 code units of their names,
//! numbers as ECMAScript prints them, strings with the minimal escapes, no whitespace.
//!
//! `legacy` is what the bridge hashed before (serde_json's compact output of a `Value` whose maps were sorted by
//! UTF-8 bytes, numbers as serde_json prints them). The two agree on every value without a fractional number and
//! without a member name outside the Basic Multilingual Plane, which covers Zoom's and Genesys's payloads; where
//! they differ, the ingest path also looks for the legacy key (`legacy_differs`), so an event logged before the
//! change is still found when Zoom redelivers it.

use serde_json::{Number, Value};

/// RFC 8785 bytes of `value`.
pub fn jcs(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write(&mut out, value, Mode::Jcs);
    out
}

/// The bytes the bridge hashed before RFC 8785 (see the module's comment).
pub fn legacy(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write(&mut out, value, Mode::Legacy);
    out
}

/// Whether `legacy(value)` may differ from `jcs(value)`: a fractional number, or a member name with a character
/// outside the Basic Multilingual Plane. Cheap: no bytes are written.
pub fn legacy_differs(value: &Value) -> bool {
    match value {
        Value::Number(n) => !(n.is_i64() || n.is_u64()),
        Value::Array(items) => items.iter().any(legacy_differs),
        Value::Object(members) => members
            .iter()
            .any(|(name, v)| name.chars().any(|c| c > '\u{FFFF}') || legacy_differs(v)),
        _ => false,
    }
}

/// The SHA-256 (hex) of `prefix` then `value`'s RFC 8785 bytes, and of `prefix` then its legacy bytes where those
/// may differ: a dedup key's hash and, when there is one, the hash its event had before RFC 8785.
pub fn digests(prefix: &[u8], value: &Value) -> (String, Option<String>) {
    use sha2::{Digest, Sha256};
    let digest = |bytes: &[u8]| {
        let mut hash = Sha256::new();
        hash.update(prefix);
        hash.update(bytes);
        hex::encode(hash.finalize())
    };
    let canonical = digest(&jcs(value));
    let before = legacy_differs(value)
        .then(|| digest(&legacy(value)))
        .filter(|before| *before != canonical);
    (canonical, before)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Jcs,
    Legacy,
}

fn write(out: &mut Vec<u8>, value: &Value, mode: Mode) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => match mode {
            Mode::Jcs => out.extend_from_slice(number(n).as_bytes()),
            Mode::Legacy => out.extend_from_slice(n.to_string().as_bytes()),
        },
        Value::String(s) => string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(out, item, mode);
            }
            out.push(b']');
        }
        Value::Object(members) => {
            let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
            match mode {
                Mode::Jcs => sorted.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16())),
                Mode::Legacy => sorted.sort_by(|a, b| a.0.cmp(b.0)),
            }
            out.push(b'{');
            for (i, (name, member)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                string(out, name);
                out.push(b':');
                write(out, member, mode);
            }
            out.push(b'}');
        }
    }
}

/// RFC 8785 §3.2.2.2 escapes exactly what serde_json escapes, in the same forms (`\b \t \n \f \r`, other control
/// characters as `\u00xx` in lower case, `\"` and `\\`), so serde_json writes strings for both modes.
fn string(out: &mut Vec<u8>, s: &str) {
    // Writing a str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// A number as ECMAScript's `Number.prototype.toString` prints it (RFC 8785 §3.2.2.3).
fn number(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    if f == 0.0 {
        return "0".into();
    }
    // Rust's `{:e}` gives the shortest digits that read back as the same double, as ECMAScript requires.
    let shortest = format!("{:e}", f.abs());
    let (mantissa, exponent) = shortest.split_once('e').unwrap_or((&shortest, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let k = digits.len() as i32;
    // ECMAScript's n: the value is 0.digits × 10^n.
    let n = exponent + 1;
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let e = n - 1;
        let sign = if e < 0 { '-' } else { '+' };
        let (first, rest) = digits.split_at(1);
        if rest.is_empty() {
            format!("{first}e{sign}{}", e.abs())
        } else {
            format!("{first}.{rest}e{sign}{}", e.abs())
        }
    };
    if f < 0.0 {
        format!("-{body}")
    } else {
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn jcs_str(v: &Value) -> String {
        String::from_utf8(jcs(v)).expect("utf-8")
    }

    #[test]
    fn numbers_print_as_ecmascript_does() {
        // RFC 8785 appendix B and ECMAScript's rules at their edges.
        for (value, expected) in [
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (-1.5, "-1.5"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (123456789012345680000.0, "123456789012345680000"),
            (1e-6, "0.000001"),
            (1e-7, "1e-7"),
            (0.000001234, "0.000001234"),
            (4.50, "4.5"),
            (2e-3, "0.002"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (9007199254740992.0, "9007199254740992"),
            (295147905179352830000.0, "295147905179352830000"),
            (0.1 + 0.2, "0.30000000000000004"),
        ] {
            assert_eq!(jcs_str(&json!(value)), expected, "{value:e}");
        }
        assert_eq!(jcs_str(&json!(u64::MAX)), u64::MAX.to_string());
        assert_eq!(jcs_str(&json!(i64::MIN)), i64::MIN.to_string());
    }

    #[test]
    fn members_sort_by_utf16_code_units() {
        // RFC 8785 §3.2.3's example: "\u{20ac}" (€) sorts after "\u{1f600}" (😀) in UTF-16, before it in UTF-8.
        let v = json!({"\u{20ac}": "Euro Sign", "\r": "Carriage Return", "\u{fb33}": "Hebrew Letter Dalet With Dagesh",
                       "1": "One", "\u{1f600}": "Emoji: Grinning Face", "\u{0080}": "Control", "\u{00f6}": "Latin Small Letter O With Diaeresis"});
        let text = jcs_str(&v);
        let order: Vec<&str> = [
            "\\r",
            "1",
            "\u{0080}",
            "\u{00f6}",
            "\u{20ac}",
            "\u{1f600}",
            "\u{fb33}",
        ]
        .to_vec();
        let mut at = 0;
        for name in order {
            let found = text[at..]
                .find(name)
                .unwrap_or_else(|| panic!("{name} out of order in {text}"));
            at += found + name.len();
        }
        assert!(legacy_differs(&v));
        assert_ne!(jcs(&v), legacy(&v));
    }

    #[test]
    fn strings_take_the_minimal_escapes() {
        let v = json!({"s": "\u{0}\u{8}\t\n\u{c}\r\u{1f}\"\\/é😀\u{7f}"});
        assert_eq!(
            jcs_str(&v),
            "{\"s\":\"\\u0000\\b\\t\\n\\f\\r\\u001f\\\"\\\\/é😀\u{7f}\"}"
        );
    }

    fn values() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|i| json!(i)),
            any::<u64>().prop_map(|u| json!(u)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(".{0,8}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Canonical bytes are JSON that reads back as the same value, and canonicalizing them again changes nothing.
        #[test]
        fn canonical_bytes_read_back_and_are_a_fixed_point(v in values()) {
            let bytes = jcs(&v);
            let back: Value = serde_json::from_slice(&bytes).expect("valid JSON");
            prop_assert_eq!(jcs(&back), bytes);
        }

        /// Where `legacy_differs` says no, the key is what the bridge computed before: old keys stay valid.
        #[test]
        fn keys_of_integer_and_bmp_values_are_unchanged(v in values()) {
            if !legacy_differs(&v) {
                prop_assert_eq!(jcs(&v), legacy(&v));
                prop_assert_eq!(legacy(&v), serde_json::to_vec(&v).expect("serializes"));
            }
        }
    }
}
