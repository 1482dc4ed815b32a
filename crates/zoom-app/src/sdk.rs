//! The Zoom Apps SDK APIs and events the agent panel uses, and the app manifest for Marketplace.
//!
//! Names, minimum client versions and running contexts are from `@zoom/appssdk` v0.16.41 `dist/sdk.d.ts`
//! (the version vendored in `assets/vendor/`; reference §1.2 read v0.16.32, whose Contact Center shapes are the
//! same). Every name here must be in the panel's `zoomSdk.config({capabilities})` call (a test compares this list
//! with `assets/panel.js`) and in the Marketplace app's "Zoom App SDK" list (the manifest below).
//! The manifest follows the shape of Zoom's ZCC quickstart manifest (zoom/zcc-javascript-quickstart
//! `app-manifest/zcc-app-manifest.json`, used with `PUT /marketplace/apps/{appId}/manifest`).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use url::Url;

/// The vendored SDK's version (npm `@zoom/appssdk`, pinned).
pub const SDK_VERSION: &str = "0.16.41";
/// The running context of an app opened in the Contact Center agent desktop.
pub const CONTACT_CENTER_CONTEXT: &str = "inContactCenter";

/// An SDK method or an event registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Api,
    Event,
}

/// One SDK capability the panel uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capability {
    pub name: &'static str,
    pub kind: Kind,
    /// `@zoomDesktopClientVersion` in the typings.
    pub min_desktop_client: &'static str,
    pub purpose: &'static str,
}

const fn cap(
    name: &'static str,
    kind: Kind,
    min_desktop_client: &'static str,
    purpose: &'static str,
) -> Capability {
    Capability {
        name,
        kind,
        min_desktop_client,
        purpose,
    }
}

/// What the panel asks for in `config({capabilities})`, in that order.
pub const PANEL_CAPABILITIES: &[Capability] = &[
    cap(
        "getRunningContext",
        Kind::Api,
        "5.6.7",
        "confirm the app runs in Contact Center (inContactCenter)",
    ),
    cap(
        "getAppContext",
        Kind::Api,
        "5.11.3",
        "the encrypted app context, posted to the backend where no X-Zoom-App-Context header came (PWA client)",
    ),
    cap(
        "getEngagementContext",
        Kind::Api,
        "6.0.0",
        "the engagement on screen when the panel starts",
    ),
    cap(
        "getEngagementStatus",
        Kind::Api,
        "6.0.0",
        "state, channel and consumers of an engagement",
    ),
    cap(
        "onEngagementContextChange",
        Kind::Event,
        "6.0.0",
        "the agent switched to another engagement",
    ),
    cap(
        "onEngagementStatusChange",
        Kind::Event,
        "6.0.0",
        "an engagement's status changed (diff only); state end finalizes its workspace",
    ),
    cap(
        "authorize",
        Kind::Api,
        "5.10.0",
        "in-client OAuth with PKCE",
    ),
    cap(
        "onAuthorized",
        Kind::Event,
        "5.9.0",
        "the in-client OAuth code",
    ),
];

/// The names, for `config({capabilities})` and the manifest.
pub fn capability_names() -> Vec<&'static str> {
    PANEL_CAPABILITIES.iter().map(|c| c.name).collect()
}

/// `EngagementStatus.state` per the typings; anything else the client sends is kept as `Other`
/// (one Zoom sample expects `start`/`hold`/`resume`, ❓ whether the client emits them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EngagementState {
    Active,
    Inactive,
    WrapUp,
    End,
    #[serde(untagged)]
    Other(String),
}

/// The app's URLs in one environment.
#[derive(Debug, Clone)]
pub struct EnvironmentUrls {
    /// `https://<host>/zoomapp/`.
    pub home_url: Url,
    /// The web install flow's callback, `zoom_app.redirect_url` (`https://<host>/zoomapp/oauth/callback`).
    pub redirect_url: Url,
}

/// Inputs of the manifest.
#[derive(Debug, Clone)]
pub struct ManifestOptions {
    pub display_name: String,
    pub development: Option<EnvironmentUrls>,
    pub production: Option<EnvironmentUrls>,
    pub in_client_oauth: bool,
    /// Let the app run in the PWA (web) agent client too.
    pub pwa_client: bool,
    /// OAuth scopes (❓ the minimum for `users/me` and the deeplink; see `DEFAULT_SCOPES`).
    pub scopes: Vec<String>,
    /// More domains for the allow list (e.g. where media links point).
    pub extra_domains: Vec<String>,
}

/// `zoomapp:inmeeting` is what Zoom's Zoom Apps samples request for the deeplink API; `user:read:user` is the
/// granular scope of `GET /users/me`. ❓ Neither is confirmed as the minimum for a Contact Center app.
pub const DEFAULT_SCOPES: &[&str] = &["zoomapp:inmeeting", "user:read:user"];

impl ManifestOptions {
    pub fn new(display_name: impl Into<String>) -> Self {
        Self {
            display_name: display_name.into(),
            development: None,
            production: None,
            in_client_oauth: true,
            pwa_client: true,
            scopes: DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect(),
            extra_domains: Vec::new(),
        }
    }
}

/// Why no manifest could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("neither a development nor a production Home URL is configured")]
    NoEnvironment,
    #[error("{0} must be an https URL (Zoom does not load http or localhost)")]
    NotHttps(&'static str),
    #[error("the Home URL must end in /zoomapp/ (the route zcc-bridge serves the panel at)")]
    HomePath,
}

fn check(urls: &EnvironmentUrls) -> Result<(), ManifestError> {
    if urls.home_url.scheme() != "https" {
        return Err(ManifestError::NotHttps("the Home URL"));
    }
    if urls.redirect_url.scheme() != "https" {
        return Err(ManifestError::NotHttps("the redirect URL"));
    }
    if !urls.home_url.path().ends_with("/zoomapp/") {
        return Err(ManifestError::HomePath);
    }
    Ok(())
}

/// The app manifest to paste into Marketplace (or `PUT /marketplace/apps/{appId}/manifest`).
pub fn manifest(options: &ManifestOptions) -> Result<Value, ManifestError> {
    let envs: Vec<&EnvironmentUrls> = [&options.development, &options.production]
        .into_iter()
        .flatten()
        .collect();
    if envs.is_empty() {
        return Err(ManifestError::NoEnvironment);
    }
    for e in &envs {
        check(e)?;
    }
    let url_or_empty = |e: &Option<EnvironmentUrls>, f: fn(&EnvironmentUrls) -> &Url| {
        e.as_ref().map(|e| f(e).to_string()).unwrap_or_default()
    };
    // Redirect URLs, and for in-client OAuth the page that calls `authorize` (the Home URL).
    let mut oauth_allow_list: Vec<String> = Vec::new();
    let mut domains: Vec<String> = vec!["appssdk.zoom.us".to_string()];
    for e in &envs {
        oauth_allow_list.push(e.redirect_url.to_string());
        if options.in_client_oauth {
            oauth_allow_list.push(e.home_url.to_string());
        }
        for u in [&e.home_url, &e.redirect_url] {
            if let Some(host) = u.host_str() {
                domains.push(host.to_string());
            }
        }
    }
    domains.extend(options.extra_domains.iter().cloned());
    oauth_allow_list.dedup();
    let mut seen = std::collections::HashSet::new();
    domains.retain(|d| seen.insert(d.clone()));
    Ok(json!({
        "manifest": {
            "display_information": { "display_name": options.display_name },
            "oauth_information": {
                "usage": "USER_OPERATION",
                "development_redirect_uri": url_or_empty(&options.development, |e| &e.redirect_url),
                "production_redirect_uri": url_or_empty(&options.production, |e| &e.redirect_url),
                "oauth_allow_list": oauth_allow_list,
                "strict_mode": true,
                "subdomain_strict_mode": true,
                "scopes": options.scopes.iter().map(|s| json!({"scope": s, "optional": false})).collect::<Vec<_>>(),
            },
            "features": {
                "products": ["ZOOM_CONTACT_CENTER"],
                "development_home_uri": url_or_empty(&options.development, |e| &e.home_url),
                "production_home_uri": url_or_empty(&options.production, |e| &e.home_url),
                "domain_allow_list": domains.iter().map(|d| json!({"domain": d, "explanation": ""})).collect::<Vec<_>>(),
                "in_client_feature": {
                    "zoom_app_api": { "enable": true, "zoom_app_apis": capability_names() },
                    "guest_mode": { "enable": false, "enable_test_guest_mode": false },
                    "in_client_oauth": { "enable": options.in_client_oauth },
                    "collaborate_mode": {
                        "enable": false, "enable_screen_sharing": false, "enable_play_together": false,
                        "enable_start_immediately": false, "enable_join_immediately": false
                    }
                },
                "zoom_client_support": {
                    "mobile": { "enable": false },
                    "zoom_room": {
                        "enable": false, "enable_personal_zoom_room": false, "enable_shared_zoom_room": false,
                        "enable_digital_signage": false, "enable_zoom_rooms_controller": false
                    },
                    "pwa_client": { "enable": options.pwa_client }
                },
                "embed": {
                    "meeting_sdk": { "enable": false, "enable_device": false, "devices": [] },
                    "contact_center_sdk": { "enable": true },
                    "phone_sdk": { "enable": false }
                },
                "team_chat_subscription": { "enable": false, "enable_support_channel": false, "shortcuts": [] },
                "event_subscription": { "enable": false, "events": [] }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(host: &str) -> EnvironmentUrls {
        EnvironmentUrls {
            home_url: Url::parse(&format!("https://{host}/zoomapp/")).unwrap(),
            redirect_url: Url::parse(&format!("https://{host}/zoomapp/oauth/callback")).unwrap(),
        }
    }

    #[test]
    fn the_panel_configures_exactly_these_capabilities() {
        let js = include_str!("../assets/panel.js");
        let start = js
            .find("const CAPABILITIES = [")
            .expect("panel.js declares CAPABILITIES");
        let end = start + js[start..].find("];").expect("end of CAPABILITIES");
        let listed: Vec<&str> = js[start..end].split('"').skip(1).step_by(2).collect();
        assert_eq!(listed, capability_names());
    }

    #[test]
    fn the_double_implements_every_capability() {
        let js = include_str!("../assets/test/zoomsdk-double.js");
        for name in capability_names() {
            assert!(
                js.contains(&format!("{name}(")),
                "zoomsdk-double.js lacks {name}"
            );
        }
    }

    #[test]
    fn contact_center_apis_are_in_the_manifest() {
        let mut o = ManifestOptions::new("zcc-bridge");
        o.development = Some(urls("dev.example.com"));
        o.production = Some(urls("zcc.example.com"));
        let m = manifest(&o).unwrap();
        let f = &m["manifest"]["features"];
        assert_eq!(f["products"], json!(["ZOOM_CONTACT_CENTER"]));
        assert_eq!(f["embed"]["contact_center_sdk"]["enable"], json!(true));
        assert_eq!(
            f["development_home_uri"],
            "https://dev.example.com/zoomapp/"
        );
        assert_eq!(f["production_home_uri"], "https://zcc.example.com/zoomapp/");
        let apis = f["in_client_feature"]["zoom_app_api"]["zoom_app_apis"]
            .as_array()
            .unwrap();
        for name in [
            "getEngagementContext",
            "getEngagementStatus",
            "onEngagementContextChange",
            "onEngagementStatusChange",
        ] {
            assert!(apis.contains(&json!(name)), "{name}");
        }
        let domains: Vec<&str> = f["domain_allow_list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["domain"].as_str().unwrap())
            .collect();
        assert_eq!(
            domains,
            ["appssdk.zoom.us", "dev.example.com", "zcc.example.com"]
        );
        let oauth = &m["manifest"]["oauth_information"];
        assert_eq!(oauth["usage"], "USER_OPERATION");
        assert_eq!(oauth["strict_mode"], json!(true));
        assert_eq!(
            oauth["production_redirect_uri"],
            "https://zcc.example.com/zoomapp/oauth/callback"
        );
        assert!(oauth["oauth_allow_list"]
            .as_array()
            .unwrap()
            .contains(&json!("https://zcc.example.com/zoomapp/")));
    }

    #[test]
    fn manifest_refuses_what_zoom_would() {
        let mut o = ManifestOptions::new("x");
        assert_eq!(manifest(&o), Err(ManifestError::NoEnvironment));
        let mut bad = urls("h.example");
        bad.home_url = Url::parse("http://h.example/zoomapp/").unwrap();
        o.production = Some(bad);
        assert!(matches!(manifest(&o), Err(ManifestError::NotHttps(_))));
        let mut bad = urls("h.example");
        bad.home_url = Url::parse("https://h.example/").unwrap();
        o.production = Some(bad);
        assert_eq!(manifest(&o), Err(ManifestError::HomePath));
    }

    #[test]
    fn unknown_states_are_kept() {
        let s: EngagementState = serde_json::from_str("\"wrap-up\"").unwrap();
        assert_eq!(s, EngagementState::WrapUp);
        let s: EngagementState = serde_json::from_str("\"hold\"").unwrap();
        assert_eq!(s, EngagementState::Other("hold".into()));
    }
}
