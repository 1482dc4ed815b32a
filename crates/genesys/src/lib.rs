//! Genesys Cloud protocol library (reference: genesys-presence-sync.md).
//!
//! Everything here is Genesys's vocabulary: OAuth client credentials per region ([`Region`], [`GenesysClient`]),
//! users, conversations, the Notifications API (channels, subscriptions and the streaming WebSocket,
//! [`notifications`]), process-automation triggers, and what a user's part of a conversation amounts to
//! ([`models::Conversation::user_sessions`]). The bridge converts these into its own types.

pub mod client;
pub mod models;
pub mod notifications;

pub use client::{ClientConfig, GenesysClient, GenesysError};
pub use models::{Conversation, SessionState, User, UserSession};

/// Genesys Cloud regions (the SDKs' `PureCloudRegionHosts`, reference §3.4): `login.<domain>` issues tokens,
/// `api.<domain>` serves the API.
pub const REGIONS: &[(&str, &str)] = &[
    ("us_east_1", "mypurecloud.com"),
    ("us_east_2", "use2.us-gov-pure.cloud"),
    ("us_west_2", "usw2.pure.cloud"),
    ("ca_central_1", "cac1.pure.cloud"),
    ("sa_east_1", "sae1.pure.cloud"),
    ("eu_west_1", "mypurecloud.ie"),
    ("eu_west_2", "euw2.pure.cloud"),
    ("eu_central_1", "mypurecloud.de"),
    ("eu_central_2", "euc2.pure.cloud"),
    ("me_central_1", "mec1.pure.cloud"),
    ("ap_south_1", "aps1.pure.cloud"),
    ("ap_northeast_1", "mypurecloud.jp"),
    ("ap_northeast_2", "apne2.pure.cloud"),
    ("ap_northeast_3", "apne3.pure.cloud"),
    ("ap_southeast_2", "mypurecloud.com.au"),
];

/// A region: its AWS name (`eu_central_1`, `eu-central-1`) or its domain (`mypurecloud.de`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub domain: String,
}

impl Region {
    pub fn parse(name: &str) -> Option<Region> {
        let key = name.trim().to_ascii_lowercase().replace('-', "_");
        REGIONS
            .iter()
            .find(|(region, domain)| *region == key || *domain == key)
            .map(|(_, domain)| Region {
                domain: (*domain).to_string(),
            })
    }

    pub fn api_base(&self) -> String {
        format!("https://api.{}", self.domain)
    }

    pub fn login_base(&self) -> String {
        format!("https://login.{}", self.domain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_by_name_or_domain() {
        let de = Region::parse("eu-central-1").unwrap();
        assert_eq!(de.api_base(), "https://api.mypurecloud.de");
        assert_eq!(de.login_base(), "https://login.mypurecloud.de");
        assert_eq!(Region::parse("mypurecloud.de"), Some(de));
        assert_eq!(
            Region::parse("US_EAST_1").unwrap().domain,
            "mypurecloud.com"
        );
        assert!(Region::parse("mars_1").is_none());
    }
}
