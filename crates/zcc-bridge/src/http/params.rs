//! What the admin API's handlers share to read requests: time bounds, page sizes, state filters.

use super::error::ApiError;
use crate::core::time::parse_time;
pub use crate::core::time::DateAs;

/// A time parameter to epoch ms: RFC 3339, or a date taken as `date_as` says (`core::time`).
pub fn parse_bound(name: &str, value: &str, date_as: DateAs) -> Result<i64, ApiError> {
    parse_time(value, date_as)
        .map_err(|problem| ApiError::bad_request(format!("{name}: {problem}")))
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
        assert_eq!(
            parse_bound("from", "1970-01-02", DateAs::Start),
            Ok(86_400_000)
        );
        assert_eq!(
            parse_bound("to", "1970-01-02", DateAs::EndExclusive),
            Ok(2 * 86_400_000)
        );
        assert!(parse_bound("from", "yesterday", DateAs::Start)
            .unwrap_err()
            .to_string()
            .contains("from:"));
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
