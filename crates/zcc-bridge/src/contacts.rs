//! Customer lookup for screen pops: a contacts file (CSV with a header row, or a JSON array of objects) indexed by
//! phone number. A live event's consumer number is matched on its digits; numbers written with and without the
//! country code match on their last ten digits.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Map, Value};

/// Column (or key) names tried, in order, for the number.
const PHONE_FIELDS: [&str; 5] = [
    "phone",
    "phone_number",
    "number",
    "mobile",
    "consumer_number",
];
/// Digits compared when the full numbers differ (national vs international form).
const SUFFIX_DIGITS: usize = 10;

#[derive(Debug, Default)]
pub struct Contacts {
    by_digits: HashMap<String, Value>,
    by_suffix: HashMap<String, Option<Value>>,
}

impl Contacts {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("contacts file {}: {e}", path.display()))?;
        let is_json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let records = if is_json {
            parse_json(&text)
        } else {
            parse_csv(&text)
        }
        .map_err(|e| anyhow::anyhow!("contacts file {}: {e}", path.display()))?;
        let contacts = Self::from_records(records);
        tracing::info!(path = %path.display(), contacts = contacts.by_digits.len(), "contacts loaded");
        Ok(contacts)
    }

    pub fn from_records(records: Vec<Map<String, Value>>) -> Self {
        let mut contacts = Self::default();
        for record in records {
            let Some(number) = PHONE_FIELDS
                .iter()
                .find_map(|f| record.get(*f).and_then(Value::as_str))
            else {
                continue;
            };
            let digits = digits(number);
            if digits.len() < 5 {
                continue;
            }
            let value = Value::Object(record.clone());
            if digits.len() >= SUFFIX_DIGITS {
                let suffix = digits[digits.len() - SUFFIX_DIGITS..].to_string();
                // Two contacts sharing a suffix: the suffix alone no longer identifies either.
                contacts
                    .by_suffix
                    .entry(suffix)
                    .and_modify(|v| *v = None)
                    .or_insert_with(|| Some(value.clone()));
            }
            contacts.by_digits.entry(digits).or_insert(value);
        }
        contacts
    }

    pub fn len(&self) -> usize {
        self.by_digits.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_digits.is_empty()
    }

    pub fn lookup(&self, number: &str) -> Option<&Value> {
        let digits = digits(number);
        if let Some(v) = self.by_digits.get(&digits) {
            return Some(v);
        }
        if digits.len() < SUFFIX_DIGITS {
            return None;
        }
        self.by_suffix
            .get(&digits[digits.len() - SUFFIX_DIGITS..])
            .and_then(Option::as_ref)
    }
}

fn digits(number: &str) -> String {
    number.chars().filter(char::is_ascii_digit).collect()
}

fn parse_json(text: &str) -> Result<Vec<Map<String, Value>>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let Value::Array(items) = value else {
        return Err("expected a JSON array of objects".into());
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::Object(map) => Ok(map),
            _ => Err(format!("item {i} is not an object")),
        })
        .collect()
}

/// CSV with a header row (RFC 4180 as the `csv` crate reads it: quoted fields, `""` for a quote, CRLF, LF or CR
/// line ends; rows may be shorter or longer than the header). Names and values are trimmed, names lower-cased,
/// blank rows skipped; a UTF-8 byte-order mark (spreadsheets' "CSV UTF-8") is dropped.
fn parse_csv(text: &str) -> Result<Vec<Map<String, Value>>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for row in reader.records() {
        rows.push(row.map_err(|e| e.to_string())?);
    }
    if let Some(last) = rows.last() {
        let start = usize::try_from(last.position().map_or(0, csv::Position::byte)).unwrap_or(0);
        if ends_in_open_quote(text.get(start..).unwrap_or_default()) {
            return Err("a quoted field is not closed".into());
        }
    }
    let mut rows = rows.into_iter();
    let Some(header) = rows.next() else {
        return Ok(Vec::new());
    };
    let header: Vec<String> = header.iter().map(str::to_ascii_lowercase).collect();
    Ok(rows
        .filter(|r| r.iter().any(|f| !f.is_empty()))
        .map(|row| {
            header
                .iter()
                .zip(row.iter())
                .map(|(k, v)| (k.clone(), Value::String(v.to_string())))
                .collect()
        })
        .collect())
}

/// Whether the last record (its raw text) ends inside a quoted field: the `csv` crate reads such a field to the
/// end of the file without an error, but a file cut short should not load as if it were whole.
fn ends_in_open_quote(record: &str) -> bool {
    let (mut quoted, mut field_quoted, mut at_start) = (false, false, true);
    for c in record.chars() {
        if std::mem::take(&mut at_start) && c == '"' {
            (quoted, field_quoted) = (true, true);
            continue;
        }
        match c {
            // In a quoted field every quote toggles: a doubled one (`""`) leaves it as it was.
            '"' if field_quoted => quoted = !quoted,
            ',' | '\n' | '\r' if !quoted => (at_start, field_quoted) = (true, false),
            _ => {}
        }
    }
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_numbers_match_in_any_format() {
        let records = parse_csv(
            "name,phone,tier\r\n\"Doe, Jane\",+1 (555) 010-0100,gold\nBob,5550100200,\"say \"\"hi\"\"\"\n",
        )
        .unwrap();
        let c = Contacts::from_records(records);
        assert_eq!(c.len(), 2);
        assert_eq!(c.lookup("+15550100100").unwrap()["name"], "Doe, Jane");
        assert_eq!(c.lookup("5550100100").unwrap()["tier"], "gold");
        assert_eq!(c.lookup("+1 555 010 0200").unwrap()["tier"], "say \"hi\"");
        assert!(c.lookup("+15559999999").is_none());
    }

    #[test]
    fn json_arrays_load_and_bad_files_say_why() {
        let c = Contacts::from_records(
            parse_json(r#"[{"phone_number":"+4420 7946 0000","crm_id":"A1"}]"#).unwrap(),
        );
        assert_eq!(c.lookup("+442079460000").unwrap()["crm_id"], "A1");
        assert!(parse_json("{}").is_err());
        assert!(parse_csv("a,b\n\"open").is_err());
        assert!(parse_csv("a,b\n1,\"x\"\"y").is_err());
        assert!(parse_csv("a,b\n1,\"x\"\"y\"").is_ok());
    }

    #[test]
    fn csv_with_a_byte_order_mark_or_cr_line_ends() {
        // Spreadsheets' "CSV UTF-8" starts with a BOM, which used to stick to the first column's name.
        let c =
            Contacts::from_records(parse_csv("\u{feff}Phone,name\n+1 555 010 0100,Ann\n").unwrap());
        assert_eq!(c.lookup("+15550100100").unwrap()["name"], "Ann");
        // Classic Mac line ends (CR only) used to run every row into one.
        let c = Contacts::from_records(
            parse_csv("phone,name\r5550100100,Ann\r5550100200,Bob\r").unwrap(),
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c.lookup("5550100200").unwrap()["name"], "Bob");
    }
}
