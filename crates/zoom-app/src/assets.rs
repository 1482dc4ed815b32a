//! The agent panel, embedded in the binary: served by the bridge under `/zoomapp/` (the Home URL is
//! `/zoomapp/`, which serves `index.html`). No build step: plain HTML, CSS and ES modules.
//!
//! `sdk.js` is the one seam between the panel and the Zoom Apps SDK: it re-exports the vendored
//! `@zoom/appssdk` ES module; the browser test serves its SDK double (`assets/test/zoomsdk-double.js`) under
//! that name instead.

/// One file of the panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    /// Path below `/zoomapp/` (`""` is the Home URL).
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

impl Asset {
    /// HTML responses must carry the OWASP headers ([`crate::owasp`]).
    pub fn is_html(&self) -> bool {
        self.content_type.starts_with("text/html")
    }
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Path of the vendored SDK below `/zoomapp/`.
pub const VENDORED_SDK_PATH: &str = "vendor/appssdk-0.16.41.es.js";

/// Every file the bridge serves for the panel.
pub const ASSETS: &[Asset] = &[
    Asset {
        path: "",
        content_type: HTML,
        body: include_bytes!("../assets/index.html"),
    },
    Asset {
        path: "index.html",
        content_type: HTML,
        body: include_bytes!("../assets/index.html"),
    },
    Asset {
        path: "panel.js",
        content_type: JS,
        body: include_bytes!("../assets/panel.js"),
    },
    Asset {
        path: "panel.css",
        content_type: CSS,
        body: include_bytes!("../assets/panel.css"),
    },
    Asset {
        path: "sdk.js",
        content_type: JS,
        body: include_bytes!("../assets/sdk.js"),
    },
    Asset {
        path: VENDORED_SDK_PATH,
        content_type: JS,
        body: include_bytes!("../assets/vendor/appssdk-0.16.41.es.js"),
    },
];

/// The asset at `path` (below `/zoomapp/`, without a leading slash), if any.
pub fn get(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn home_url_and_files() {
        assert!(get("").unwrap().is_html());
        assert!(get("panel.js")
            .unwrap()
            .content_type
            .starts_with("text/javascript"));
        assert!(get("../Cargo.toml").is_none());
        assert!(
            get("test/zoomsdk-double.js").is_none(),
            "the double is not served in production"
        );
    }

    #[test]
    fn vendored_sdk_is_the_recorded_one() {
        let sdk = get(VENDORED_SDK_PATH).unwrap();
        let digest = hex_string(&Sha256::digest(sdk.body));
        let record = include_str!("../assets/VENDORED.md");
        assert!(
            record.contains(&digest),
            "VENDORED.md does not record sha256 {digest}"
        );
        assert!(record.contains(crate::sdk::SDK_VERSION));
        assert!(std::str::from_utf8(sdk.body)
            .unwrap()
            .starts_with("/* Zoom Apps SDK v0.16.41"));
    }

    #[test]
    fn the_seam_points_at_the_vendored_sdk() {
        let shim = std::str::from_utf8(get("sdk.js").unwrap().body).unwrap();
        assert!(shim.contains(&format!("./{VENDORED_SDK_PATH}")));
    }

    fn hex_string(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
