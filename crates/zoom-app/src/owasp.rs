//! The security headers the Zoom client requires on the Home URL and every other HTML page of the app.
//!
//! The client checks every `text/html` response with status 200 for `Strict-Transport-Security`,
//! `X-Content-Type-Options`, `Content-Security-Policy` and `Referrer-Policy`, and refuses to render a page that
//! lacks one ("Missing OWASP Secure Headers") — developers.zoom.us/docs/build-flow/security/owasp/ and
//! developers.zoom.us/docs/zoom-apps/architecture/. Zoom requires the headers, not particular values; the values
//! here follow Zoom's samples (reference §1.5):
//! - HSTS `max-age=31536000` (zoomapps-advancedsample-react `backend/middleware.js`, zoomapps-sample-js `app.js`).
//!   Not `includeSubDomains`: a self-hosted bridge should not decide for its operator's other subdomains.
//! - `X-Content-Type-Options: nosniff`, `Referrer-Policy: same-origin` (both samples).
//! - For the PWA (web) client, which frames the app: `script-src` must allow `appssdk.zoom.us`,
//!   `Cross-Origin-Embedder-Policy: require-corp`, `Cross-Origin-Resource-Policy: cross-origin`, and no
//!   `X-Frame-Options: DENY` nor `frame-ancestors 'none'` (developers.zoom.us/docs/contact-center/apps/zcc-pwa/).
//! - `frame-ancestors 'self' https://*.zoom.us https://*.zoom.com` as Zoom's ZCC quickstart (branch `zcc-pwa`,
//!   `server.js`) sets it, so that only Zoom can frame the panel.
//!
//! The panel itself is served from the bridge (`'self'`) including the vendored SDK; `https://appssdk.zoom.us`
//! stays allowed so that the CDN build of the SDK can be used instead.

use http::header::{
    HeaderMap, HeaderName, HeaderValue, CONTENT_SECURITY_POLICY, REFERRER_POLICY,
    STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};

pub const STRICT_TRANSPORT_SECURITY_VALUE: &str = "max-age=31536000";
pub const X_CONTENT_TYPE_OPTIONS_VALUE: &str = "nosniff";
pub const REFERRER_POLICY_VALUE: &str = "same-origin";
pub const CROSS_ORIGIN_EMBEDDER_POLICY_VALUE: &str = "require-corp";
pub const CROSS_ORIGIN_RESOURCE_POLICY_VALUE: &str = "cross-origin";
/// Where Zoom serves the SDK from (`https://appssdk.zoom.us/sdk.min.js` in the samples).
pub const SDK_ORIGIN: &str = "https://appssdk.zoom.us";

pub const CROSS_ORIGIN_EMBEDDER_POLICY: HeaderName =
    HeaderName::from_static("cross-origin-embedder-policy");
pub const CROSS_ORIGIN_RESOURCE_POLICY: HeaderName =
    HeaderName::from_static("cross-origin-resource-policy");

/// The Content-Security-Policy directives, in order. `default-src 'none'` so that anything not named is refused.
pub const CSP_DIRECTIVES: &[(&str, &[&str])] = &[
    ("default-src", &["'none'"]),
    ("script-src", &["'self'", SDK_ORIGIN]),
    ("style-src", &["'self'"]),
    ("img-src", &["'self'", "data:"]),
    ("font-src", &["'self'"]),
    ("connect-src", &["'self'"]),
    ("media-src", &["'self'"]),
    ("object-src", &["'none'"]),
    ("base-uri", &["'self'"]),
    ("form-action", &["'self'"]),
    (
        "frame-ancestors",
        &["'self'", "https://*.zoom.us", "https://*.zoom.com"],
    ),
];

/// The Content-Security-Policy value built from [`CSP_DIRECTIVES`].
pub fn content_security_policy() -> String {
    CSP_DIRECTIVES
        .iter()
        .map(|(name, sources)| format!("{name} {}", sources.join(" ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Every header an HTML response of the app carries, as (name, value) pairs.
pub fn header_pairs() -> Vec<(HeaderName, String)> {
    vec![
        (
            STRICT_TRANSPORT_SECURITY,
            STRICT_TRANSPORT_SECURITY_VALUE.to_string(),
        ),
        (
            X_CONTENT_TYPE_OPTIONS,
            X_CONTENT_TYPE_OPTIONS_VALUE.to_string(),
        ),
        (CONTENT_SECURITY_POLICY, content_security_policy()),
        (REFERRER_POLICY, REFERRER_POLICY_VALUE.to_string()),
        (
            CROSS_ORIGIN_EMBEDDER_POLICY,
            CROSS_ORIGIN_EMBEDDER_POLICY_VALUE.to_string(),
        ),
        (
            CROSS_ORIGIN_RESOURCE_POLICY,
            CROSS_ORIGIN_RESOURCE_POLICY_VALUE.to_string(),
        ),
    ]
}

/// The headers as a map, ready for a tower layer (`SetResponseHeader`-style, overriding) on the HTML routes.
pub fn html_headers() -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in header_pairs() {
        // Every value above is printable ASCII, so `from_str` cannot fail; a failure would drop the header and
        // `check` (which the bridge's route test runs) would report it.
        if let Ok(value) = HeaderValue::from_str(&value) {
            map.insert(name, value);
        }
    }
    map
}

/// Sets the headers on a response's header map, replacing any earlier value and removing `X-Frame-Options`.
pub fn apply(headers: &mut HeaderMap) {
    headers.remove(X_FRAME_OPTIONS);
    for (name, value) in html_headers() {
        if let Some(name) = name {
            headers.insert(name, value);
        }
    }
}

/// What is wrong with an HTML response's headers for the Zoom client; empty when nothing is.
/// For tests of every HTML route.
pub fn check(headers: &HeaderMap) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, expected) in header_pairs() {
        match headers.get(&name).and_then(|v| v.to_str().ok()) {
            None => problems.push(format!("missing {name}")),
            Some(actual) if actual != expected => {
                problems.push(format!("{name} is {actual:?}, expected {expected:?}"))
            }
            Some(_) => {}
        }
    }
    if let Some(xfo) = headers.get(X_FRAME_OPTIONS) {
        problems.push(format!(
            "X-Frame-Options {xfo:?} is present: the PWA client frames the app"
        ));
    }
    for csp in headers.get_all(CONTENT_SECURITY_POLICY) {
        let csp = csp.to_str().unwrap_or_default();
        if csp.replace(' ', "").contains("frame-ancestors'none'") {
            problems.push("CSP has frame-ancestors 'none'".to_string());
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(map: &HeaderMap, name: &str) -> String {
        map.get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }

    #[test]
    fn strict_transport_security() {
        assert_eq!(
            get(&html_headers(), "strict-transport-security"),
            "max-age=31536000"
        );
    }

    #[test]
    fn x_content_type_options() {
        assert_eq!(get(&html_headers(), "x-content-type-options"), "nosniff");
    }

    #[test]
    fn referrer_policy() {
        assert_eq!(get(&html_headers(), "referrer-policy"), "same-origin");
    }

    #[test]
    fn cross_origin_headers_for_the_pwa_client() {
        let map = html_headers();
        assert_eq!(get(&map, "cross-origin-embedder-policy"), "require-corp");
        assert_eq!(get(&map, "cross-origin-resource-policy"), "cross-origin");
    }

    #[test]
    fn csp_allows_self_and_the_sdk_and_only_zoom_framing() {
        let csp = get(&html_headers(), "content-security-policy");
        let directive = |name: &str| {
            csp.split(';')
                .map(str::trim)
                .find(|d| d.split(' ').next() == Some(name))
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(directive("default-src"), "default-src 'none'");
        assert_eq!(
            directive("script-src"),
            "script-src 'self' https://appssdk.zoom.us"
        );
        assert_eq!(directive("connect-src"), "connect-src 'self'");
        assert_eq!(directive("style-src"), "style-src 'self'");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
        assert_eq!(
            directive("frame-ancestors"),
            "frame-ancestors 'self' https://*.zoom.us https://*.zoom.com"
        );
    }

    #[test]
    fn no_x_frame_options() {
        assert!(html_headers().get(X_FRAME_OPTIONS).is_none());
        let mut map = HeaderMap::new();
        map.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        apply(&mut map);
        assert!(map.get(X_FRAME_OPTIONS).is_none());
        assert!(check(&map).is_empty(), "{:?}", check(&map));
    }

    #[test]
    fn check_reports_each_problem() {
        assert_eq!(check(&HeaderMap::new()).len(), header_pairs().len());
        let mut map = html_headers();
        map.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        map.insert(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'"),
        );
        let problems = check(&map);
        assert_eq!(problems.len(), 3, "{problems:?}");
    }
}
