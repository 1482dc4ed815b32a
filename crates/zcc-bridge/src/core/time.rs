//! Times given by people (API parameters, command-line flags): RFC 3339, or a bare date whose meaning depends on
//! which end of a window it is.

use chrono::{DateTime, Duration, NaiveDate};

/// What a bare `yyyy-mm-dd` stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateAs {
    /// The start of a window: the date's first instant (midnight UTC).
    Start,
    /// The end of a half-open window (`< to`): the next day's midnight, so the date itself is included.
    EndExclusive,
    /// The end of a closed window walked in whole seconds (`<= to`, reconciliation): the date's last second.
    EndInclusive,
}

/// RFC 3339 or `yyyy-mm-dd` to epoch ms. A time with an offset is taken as given; a date is UTC.
pub fn parse_time(value: &str, date_as: DateAs) -> Result<i64, String> {
    let value = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.timestamp_millis());
    }
    let date = NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|_| format!("expected an RFC 3339 time or yyyy-mm-dd, got {value:?}"))?;
    let midnight = date
        .and_hms_opt(0, 0, 0)
        .ok_or_else(|| format!("{value:?} has no midnight"))?
        .and_utc();
    let instant = match date_as {
        DateAs::Start => midnight,
        DateAs::EndExclusive => midnight + Duration::days(1),
        DateAs::EndInclusive => midnight + Duration::days(1) - Duration::seconds(1),
    };
    Ok(instant.timestamp_millis())
}

/// Serde helpers for the API's one time format: instants kept as epoch milliseconds are shown as RFC 3339
/// (`#[serde(serialize_with = "rfc3339")]`, `rfc3339_opt` for optional ones). Fields that stay epoch ms say so
/// with a `_ms` suffix (or are Zoom's own `event_ts`).
pub fn rfc3339<S: serde::Serializer>(ms: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_some(&crate::core::record::format_ms(*ms))
}

/// [`rfc3339`] for an optional instant: `null` when absent.
pub fn rfc3339_opt<S: serde::Serializer>(
    ms: &Option<i64>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_some(&ms.and_then(crate::core::record::format_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_covers_its_whole_day_at_either_end() {
        const DAY: i64 = 86_400_000;
        assert_eq!(parse_time("1970-01-02", DateAs::Start), Ok(DAY));
        assert_eq!(parse_time("1970-01-02", DateAs::EndExclusive), Ok(2 * DAY));
        assert_eq!(
            parse_time("1970-01-02", DateAs::EndInclusive),
            Ok(2 * DAY - 1000)
        );
        // A full time means what it says, at either end.
        for date_as in [DateAs::Start, DateAs::EndExclusive, DateAs::EndInclusive] {
            assert_eq!(parse_time("1970-01-01T00:00:01Z", date_as), Ok(1000));
            assert_eq!(parse_time("1970-01-01T01:00:00+01:00", date_as), Ok(0));
        }
        assert!(parse_time("yesterday", DateAs::Start).is_err());
        assert!(parse_time("2026-02-30", DateAs::Start).is_err());
    }
}
