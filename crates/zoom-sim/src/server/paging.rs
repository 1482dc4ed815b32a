//! Pagination shared by every list endpoint: `page_size` validation, `from`/`to` windows and expiring keyset
//! `next_page_token`s bound to the query (reference §1.0, §6.3).

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use chrono::{DateTime, Months, NaiveDate, NaiveTime, Utc};

use super::{bad_request, later, lock, Shared, ZoomError};
use crate::opaque_id;

/// A request's query parameters (a repeated key keeps its last value).
pub(super) type Params = HashMap<String, String>;

const PAGE_TOKEN_INVALID: &str = "The next page token is invalid or expired.";
const DAY_MS: i64 = 24 * 3600 * 1000;

/// A non-empty query parameter (Zoom treats `?x=` like an absent `x`).
pub(super) fn param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// An enumerated parameter: absent, or one of `allowed` (else Zoom's 300 "Invalid field").
pub(super) fn one_of<'a>(
    params: &'a Params,
    name: &str,
    allowed: &[&str],
) -> Result<Option<&'a str>, ZoomError> {
    match param(params, name) {
        Some(value) if !allowed.contains(&value) => {
            Err(bad_request(&format!("Invalid field: {name}.")))
        }
        value => Ok(value),
    }
}

/// Where a paginated walk stands. Keyset (not offset) so that items becoming visible mid-walk (`completed_only`)
/// cannot shift pages and make the walk skip or repeat one.
#[derive(Debug, Clone)]
pub(super) struct PageCursor {
    /// The endpoint (path) and query parameters the token is bound to (all but `next_page_token` and `page_size`).
    binding: String,
    /// The window resolved by the first request, so a defaulted "past 24 h" does not slide between pages.
    window: Option<(i64, i64)>,
    /// Sort key `(time_ms, id)` of the last item already returned.
    after: (i64, String),
    pub(super) expires: Instant,
}

/// Page sizes and window of one list endpoint.
#[derive(Debug, Clone, Copy)]
pub(super) struct PageRules {
    pub(super) default_size: u32,
    pub(super) max_size: u32,
    /// `Some(lookback)`: the endpoint takes `from`/`to` (at most one month), defaulting to the past `lookback` ms.
    pub(super) window: Option<i64>,
}

/// List engagements: page size max 100, default 10; window default the past 24 hours (reference §1.1).
pub(super) const ENGAGEMENT_PAGES: PageRules = PageRules {
    default_size: 10,
    max_size: 100,
    window: Some(DAY_MS),
};
/// Recordings and inbox messages: max 300, default 30; window default the past 30 days (reference §1.5, §1.6).
pub(super) const THIRTY_DAY_PAGES: PageRules = PageRules {
    default_size: 30,
    max_size: 300,
    window: Some(30 * DAY_MS),
};
/// Notes and engagement-scoped lists: max 300, default 30, no window (reference §1.7).
pub(super) const PLAIN_PAGES: PageRules = PageRules {
    default_size: 30,
    max_size: 300,
    window: None,
};

/// A validated page request, before the endpoint selects its items.
#[derive(Debug)]
pub(super) struct PageStart {
    pub(super) page_size: u32,
    /// The inclusive epoch-ms window, for endpoints that have one.
    pub(super) window: Option<(i64, i64)>,
    binding: String,
    after: Option<(i64, String)>,
}

impl PageStart {
    /// Whether `ms` lies in the window (always, for endpoints without one).
    pub(super) fn in_window(&self, ms: i64) -> bool {
        self.window.is_none_or(|(from, to)| from <= ms && ms <= to)
    }
}

/// One served page.
#[derive(Debug)]
pub(super) struct Page<'a, T> {
    pub(super) items: Vec<&'a T>,
    /// Empty on the last page.
    pub(super) next_page_token: String,
    /// Every matching item, across all pages.
    pub(super) total_records: usize,
}

impl Shared {
    /// Validates `page_size`, then resumes the walk of `next_page_token` (which must have been issued for this `scope`
    /// and the same parameters, and not have expired) or resolves a fresh window.
    pub(super) fn begin_page(
        &self,
        params: &Params,
        scope: &str,
        rules: PageRules,
    ) -> Result<PageStart, ZoomError> {
        let page_size = match param(params, "page_size") {
            None => rules.default_size,
            Some(raw) => match raw.parse::<u32>() {
                Ok(n) if (1..=rules.max_size).contains(&n) => n,
                Ok(n) if n > rules.max_size => {
                    return Err(bad_request(&format!(
                        "The page_size can not exceed {}.",
                        rules.max_size
                    )))
                }
                _ => return Err(bad_request("Invalid field: page_size.")),
            },
        };
        // Bound to every non-empty parameter but the token itself and the page size, as Zoom asks for "the same
        // query parameters" on each page; and to the endpoint, so one list's token cannot page another.
        let query = params
            .iter()
            .filter(|(k, v)| {
                !v.is_empty() && k.as_str() != "next_page_token" && k.as_str() != "page_size"
            })
            .collect::<BTreeMap<_, _>>()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let binding = format!("{scope}?{query}");
        match param(params, "next_page_token") {
            Some(token) => {
                let cursor = lock(&self.page_tokens).get(token).cloned();
                match cursor {
                    Some(c) if c.binding == binding && Instant::now() < c.expires => {
                        Ok(PageStart {
                            page_size,
                            window: c.window,
                            binding,
                            after: Some(c.after),
                        })
                    }
                    _ => Err(bad_request(PAGE_TOKEN_INVALID)),
                }
            }
            None => {
                let window = match rules.window {
                    Some(lookback) => Some(window(
                        param(params, "from"),
                        param(params, "to"),
                        Utc::now(),
                        lookback,
                    )?),
                    None => None,
                };
                Ok(PageStart {
                    page_size,
                    window,
                    binding,
                    after: None,
                })
            }
        }
    }

    /// Cuts the page after the cursor out of `matching` (sorted by `key`, which must be unique) and issues the next
    /// token when more items remain.
    pub(super) fn finish_page<'a, T>(
        &self,
        start: PageStart,
        matching: &[&'a T],
        key: impl Fn(&T) -> (i64, &str),
    ) -> Page<'a, T> {
        let remaining: Vec<&'a T> = match &start.after {
            Some((ms, id)) => matching
                .iter()
                .copied()
                .filter(|item| key(item) > (*ms, id.as_str()))
                .collect(),
            None => matching.to_vec(),
        };
        let size = usize::try_from(start.page_size).unwrap_or(usize::MAX);
        let items: Vec<&'a T> = remaining.iter().copied().take(size).collect();
        let next_page_token = match items.last() {
            Some(last) if remaining.len() > items.len() => {
                let (ms, id) = key(last);
                let token = opaque_id(&mut rand::rng());
                let cursor = PageCursor {
                    binding: start.binding,
                    window: start.window,
                    after: (ms, id.to_owned()),
                    expires: later(Instant::now(), self.config.page_token_ttl),
                };
                let mut tokens = lock(&self.page_tokens);
                // Forget long-dead cursors so a long benchmark does not grow the map without bound.
                let horizon = Instant::now();
                tokens.retain(|_, c| later(c.expires, self.config.page_token_ttl) > horizon);
                tokens.insert(token.clone(), cursor);
                token
            }
            _ => String::new(),
        };
        Page {
            items,
            next_page_token,
            total_records: matching.len(),
        }
    }
}

/// Resolves `from`/`to` to an inclusive epoch-ms window: default the past `lookback_ms`, at most one month.
pub(super) fn window(
    from: Option<&str>,
    to: Option<&str>,
    now: DateTime<Utc>,
    lookback_ms: i64,
) -> Result<(i64, i64), ZoomError> {
    let lookback = chrono::Duration::milliseconds(lookback_ms);
    // Checked: a `to` at the edge of chrono's range (year -262143) must not make the subtraction panic.
    let before = |to: DateTime<Utc>| {
        to.checked_sub_signed(lookback)
            .map(|from| (from, to))
            .ok_or_else(|| bad_request("Invalid field: to."))
    };
    let (from, to) = match (from, to) {
        (None, None) => before(now)?,
        (Some(_), None) => {
            return Err(bad_request(
                "The to parameter is required when from is given.",
            ))
        }
        (None, Some(to)) => {
            before(parse_time(to, true).ok_or_else(|| bad_request("Invalid field: to."))?)?
        }
        (Some(from), Some(to)) => (
            parse_time(from, false).ok_or_else(|| bad_request("Invalid field: from."))?,
            parse_time(to, true).ok_or_else(|| bad_request("Invalid field: to."))?,
        ),
    };
    if from > to {
        return Err(bad_request(
            "The from date can not be later than the to date.",
        ));
    }
    if from
        .checked_add_months(Months::new(1))
        .is_some_and(|limit| to > limit)
    {
        return Err(bad_request("The date range can not exceed one month."));
    }
    Ok((from.timestamp_millis(), to.timestamp_millis()))
}

/// `yyyy-mm-dd` (the whole day: its first second for `from`, its last for `to`) or an RFC 3339 time
/// (`yyyy-MM-ddTHH:mm:ssZ`; offsets such as `-08:00` are accepted too, as the recordings spec shows).
pub(super) fn parse_time(value: &str, end_of_day: bool) -> Option<DateTime<Utc>> {
    if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        let time = if end_of_day {
            NaiveTime::from_hms_opt(23, 59, 59)?
        } else {
            NaiveTime::MIN
        };
        return Some(date.and_time(time).and_utc());
    }
    DateTime::parse_from_rfc3339(value)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iso_time;

    #[test]
    fn windows_follow_zoom_rules() {
        let now = Utc::now();
        let (from, to) = window(None, None, now, DAY_MS).expect("default window");
        assert_eq!(to - from, DAY_MS);
        let (from, to) = window(None, None, now, 30 * DAY_MS).expect("30-day default");
        assert_eq!(to - from, 30 * DAY_MS);
        let (from, to) =
            window(Some("2026-11-01"), Some("2026-11-30"), now, DAY_MS).expect("dates");
        assert_eq!(iso_time(from), "2026-11-01T00:00:00Z");
        assert_eq!(iso_time(to), "2026-11-30T23:59:59Z");
        let (from, _) = window(
            Some("2023-01-01T00:00:00-08:00"),
            Some("2023-01-01T01:00:00-08:00"),
            now,
            DAY_MS,
        )
        .expect("offsets");
        assert_eq!(iso_time(from), "2023-01-01T08:00:00Z");
        assert!(window(
            Some("2026-10-01T00:00:00Z"),
            Some("2026-11-01T00:00:00Z"),
            now,
            DAY_MS
        )
        .is_ok());
        assert!(window(
            Some("2026-10-01T00:00:00Z"),
            Some("2026-11-01T00:00:01Z"),
            now,
            DAY_MS
        )
        .is_err());
        assert!(window(Some("2026-11-01"), None, now, DAY_MS).is_err());
        assert!(window(Some("2026-11-02"), Some("2026-11-01"), now, DAY_MS).is_err());
        assert!(window(Some("yesterday"), Some("2026-11-01"), now, DAY_MS).is_err());
        // No panic at the edges of the calendar.
        let earliest = DateTime::<Utc>::MIN_UTC.to_rfc3339();
        assert!(window(None, Some(&earliest), now, DAY_MS).is_err());
        assert!(window(None, Some("0000-01-01"), now, DAY_MS).is_ok());
    }
}
