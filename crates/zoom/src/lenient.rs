//! Reading Zoom JSON one field at a time, so that one field of an unexpected type or format costs that field
//! and never the event: each accessor returns what it could read and notes what it could not.
//!
//! Zoom's published examples already disagree with Zoom's own descriptions (`*_time_ms` fields are ISO-8601
//! strings, not epoch milliseconds) and Zoom adds fields over time, so strict typing would quarantine real traffic.

use chrono::{DateTime, NaiveDateTime};
use serde_json::{Map, Value};

/// A field that was present but could not be read: its path (`payload.object.recording_start_time_ms`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub problem: String,
}

/// Times before this (1990-01-01) or after [`LATEST_MS`] are refused as implausible: they would sort a record
/// to the far past or future and usually mean seconds were sent as milliseconds or the reverse.
pub const EARLIEST_MS: i64 = 631_152_000_000;
/// 2200-01-01.
pub const LATEST_MS: i64 = 7_258_118_400_000;

/// A time in epoch milliseconds from what Zoom sends: epoch milliseconds as a number or a numeric string
/// (values below 10^11 are read as seconds), or an ISO-8601 / RFC 3339 string (with or without fractional
/// seconds; without an offset it is UTC).
pub fn time_ms(value: &Value) -> Result<i64, String> {
    let ms = match value {
        Value::Number(n) => number_ms(n.as_f64())?,
        Value::String(s) => {
            let s = s.trim();
            if s.is_empty() {
                return Err("empty time".into());
            }
            if let Ok(n) = s.parse::<f64>() {
                number_ms(Some(n))?
            } else if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                t.timestamp_millis()
            } else if let Some(t) = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
            {
                t.and_utc().timestamp_millis()
            } else {
                return Err(format!("{s:?} is not a time"));
            }
        }
        other => return Err(format!("expected a time, found {}", kind(other))),
    };
    if !(EARLIEST_MS..LATEST_MS).contains(&ms) {
        return Err(format!("{ms} ms is outside 1990..2200"));
    }
    Ok(ms)
}

fn number_ms(n: Option<f64>) -> Result<i64, String> {
    let n = n.filter(|n| n.is_finite()).ok_or("not a finite number")?;
    let ms = if n.abs() < 1e11 { n * 1000.0 } else { n };
    if ms.abs() > 9.0e15 {
        return Err("time out of range".into());
    }
    Ok(ms as i64)
}

/// The JSON type of a value, for messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads the fields of one JSON object, collecting what cannot be read into `errors`.
pub struct Reader<'a> {
    object: &'a Map<String, Value>,
    path: String,
    errors: &'a mut Vec<FieldError>,
}

static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();

impl<'a> Reader<'a> {
    pub fn new(
        object: &'a Map<String, Value>,
        path: &str,
        errors: &'a mut Vec<FieldError>,
    ) -> Self {
        Self {
            object,
            path: path.to_string(),
            errors,
        }
    }

    /// A reader over nothing (every field absent).
    pub fn empty(path: &str, errors: &'a mut Vec<FieldError>) -> Self {
        Self::new(EMPTY.get_or_init(Map::new), path, errors)
    }

    fn field_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn fail(&mut self, key: &str, problem: String) {
        let field = self.field_path(key);
        self.errors.push(FieldError { field, problem });
    }

    /// The raw value (null counts as absent).
    pub fn value(&self, key: &str) -> Option<&'a Value> {
        self.object.get(key).filter(|v| !v.is_null())
    }

    /// A string; a number or boolean is taken as its text (ids sometimes arrive as numbers). Empty or blank
    /// strings count as absent.
    pub fn string(&mut self, key: &str) -> Option<String> {
        let text = match self.value(key)? {
            Value::String(s) => s.trim().to_string(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                let problem = format!("expected a string, found {}", kind(other));
                self.fail(key, problem);
                return None;
            }
        };
        (!text.is_empty()).then_some(text)
    }

    /// The first of several spellings that is present and readable.
    pub fn string_of(&mut self, keys: &[&str]) -> Option<String> {
        keys.iter().find_map(|k| self.string(k))
    }

    /// An integer: a JSON number (a fraction is truncated) or a numeric string.
    pub fn int(&mut self, key: &str) -> Option<i64> {
        let value = self.value(key)?;
        let parsed = match value {
            Value::Number(n) => n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite() && f.abs() < 9.0e18)
                    .map(|f| f as i64)
            }),
            Value::String(s) => s.trim().parse::<i64>().ok().or_else(|| {
                s.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite() && f.abs() < 9.0e18)
                    .map(|f| f as i64)
            }),
            _ => None,
        };
        if parsed.is_none() {
            let problem = format!("expected an integer, found {}", kind(value));
            self.fail(key, problem);
        }
        parsed
    }

    /// A boolean, or the strings `true` / `false`.
    pub fn bool(&mut self, key: &str) -> Option<bool> {
        let value = self.value(key)?;
        let parsed = match value {
            Value::Bool(b) => Some(*b),
            Value::String(s) => match s.trim() {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            },
            _ => None,
        };
        if parsed.is_none() {
            let problem = format!("expected a boolean, found {}", kind(value));
            self.fail(key, problem);
        }
        parsed
    }

    /// A time in epoch milliseconds (see [`time_ms`]).
    pub fn time(&mut self, key: &str) -> Option<i64> {
        let value = self.value(key)?;
        match time_ms(value) {
            Ok(ms) => Some(ms),
            Err(problem) => {
                self.fail(key, problem);
                None
            }
        }
    }

    /// The first of several time fields that is present and readable.
    pub fn time_of(&mut self, keys: &[&str]) -> Option<i64> {
        keys.iter().find_map(|k| self.time(k))
    }

    /// A nested object read by `read`; anything but an object is an error.
    pub fn object<T>(&mut self, key: &str, read: impl FnOnce(&mut Reader<'_>) -> T) -> Option<T> {
        match self.value(key)? {
            Value::Object(inner) => {
                let path = self.field_path(key);
                let mut reader = Reader::new(inner, &path, self.errors);
                Some(read(&mut reader))
            }
            other => {
                let problem = format!("expected an object, found {}", kind(other));
                self.fail(key, problem);
                None
            }
        }
    }

    /// An array of objects, each read by `read` (which may skip one by returning None). A non-array is an error,
    /// and so is an element that is not an object; the other elements are still read.
    pub fn list<T>(
        &mut self,
        key: &str,
        mut read: impl FnMut(&mut Reader<'_>) -> Option<T>,
    ) -> Vec<T> {
        let Some(value) = self.value(key) else {
            return Vec::new();
        };
        let Value::Array(items) = value else {
            let problem = format!("expected an array, found {}", kind(value));
            self.fail(key, problem);
            return Vec::new();
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let path = format!("{}[{i}]", self.field_path(key));
            match item {
                Value::Object(inner) => {
                    let mut reader = Reader::new(inner, &path, self.errors);
                    out.extend(read(&mut reader));
                }
                Value::Null => {}
                other => self.errors.push(FieldError {
                    field: path,
                    problem: format!("expected an object, found {}", kind(other)),
                }),
            }
        }
        out
    }

    /// An array of strings (numbers taken as text); other elements are errors.
    pub fn strings(&mut self, key: &str) -> Vec<String> {
        let Some(value) = self.value(key) else {
            return Vec::new();
        };
        let Value::Array(items) = value else {
            let problem = format!("expected an array, found {}", kind(value));
            self.fail(key, problem);
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(s) if !s.trim().is_empty() => out.push(s.trim().to_string()),
                Value::Number(n) => out.push(n.to_string()),
                Value::String(_) | Value::Null => {}
                other => self.errors.push(FieldError {
                    field: format!("{}[{i}]", self.field_path(key)),
                    problem: format!("expected a string, found {}", kind(other)),
                }),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_in_every_form_zoom_uses() {
        let iso = 1_644_917_235_987; // 2022-02-15T09:27:15.987Z
        assert_eq!(time_ms(&json!("2022-02-15T09:27:15.987Z")), Ok(iso));
        assert_eq!(time_ms(&json!("2022-02-15T10:27:15.987+01:00")), Ok(iso));
        assert_eq!(time_ms(&json!("2022-02-15T09:27:15.987")), Ok(iso));
        assert_eq!(time_ms(&json!(iso)), Ok(iso));
        assert_eq!(time_ms(&json!(iso.to_string())), Ok(iso));
        assert_eq!(time_ms(&json!(1_644_917_235)), Ok(1_644_917_235_000));
        assert!(time_ms(&json!("09:00")).is_err());
        assert!(time_ms(&json!(i64::MAX)).is_err());
        assert!(time_ms(&json!(0)).is_err());
        assert!(time_ms(&json!(true)).is_err());
        assert!(time_ms(&json!("")).is_err());
    }

    #[test]
    fn a_bad_field_costs_only_itself() {
        let object = json!({
            "a": "text", "n": 7, "t": [1], "o": {"inner": {"x": 1}}, "l": [{"id": "1"}, 3, {"id": 2}],
            "b": "maybe", "s": ["x", {"y": 1}, 5]
        });
        let mut errors = Vec::new();
        let mut r = Reader::new(object.as_object().unwrap(), "payload.object", &mut errors);
        assert_eq!(r.string("a").as_deref(), Some("text"));
        assert_eq!(r.string("n").as_deref(), Some("7"));
        assert_eq!(r.string("t"), None);
        assert_eq!(r.int("a"), None);
        assert_eq!(r.bool("b"), None);
        assert_eq!(r.object("o", |o| o.string("inner")), Some(None));
        let ids = r.list("l", |item| item.string("id"));
        assert_eq!(ids, vec!["1", "2"]);
        assert_eq!(r.strings("s"), vec!["x", "5"]);
        assert_eq!(r.string("missing"), None);
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "payload.object.t",
                "payload.object.a",
                "payload.object.b",
                "payload.object.o.inner",
                "payload.object.l[1]",
                "payload.object.s[1]"
            ]
        );
    }
}
