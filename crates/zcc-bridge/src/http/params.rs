//! What the admin API's handlers share to read requests: time bounds, page sizes, state filters.

use chrono::{DateTime, NaiveDate};

use super::error::ApiError;

/// RFC 3339 or `yyyy-mm-dd` (midnight UTC) to epoch ms.
pub fn parse_bound(name: &str, value: &str) -> Result<i64, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.timestamp_millis());
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "{name}: expected an RFC 3339 time or yyyy-mm-dd, got {value:?}"
            ))
        })
}

/// A page size: `default` when absent, refused outside `1..=max`.
pub fn page_limit(limit: Option<u32>, default: u32, max: u32) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::bad_request(format!(
            "limit: must be between 1 and {max}"
        )))
    }
}

/// The page size of a list endpoint (default 100, at most 1,000) and its `state` filter, checked against
/// `states`.
pub fn list_limit_and_state(
    limit: Option<u32>,
    state: Option<&str>,
    states: &[&str],
) -> Result<u32, ApiError> {
    let limit = page_limit(limit, 100, 1000)?;
    match state {
        Some(state) if !states.contains(&state) => Err(ApiError::bad_request(format!(
            "state: one of {}",
            states.join(", ")
        ))),
        _ => Ok(limit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_and_limits() {
        assert_eq!(parse_bound("from", "1970-01-02"), Ok(86_400_000));
        assert_eq!(parse_bound("from", "1970-01-01T00:00:01Z"), Ok(1000));
        assert!(parse_bound("from", "yesterday").is_err());
        assert_eq!(page_limit(None, 20, 200), Ok(20));
        assert!(page_limit(Some(0), 20, 200).is_err());
        assert!(page_limit(Some(201), 20, 200).is_err());
        assert_eq!(
            list_limit_and_state(Some(5), Some("dead"), &["dead"]),
            Ok(5)
        );
        assert!(list_limit_and_state(None, Some("bogus"), &["dead"]).is_err());
    }
}
