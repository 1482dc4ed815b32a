//! Signed, expiring links to archived files: `{base}/media/{kind}/{item_id}?expires={unix}&signature={mac}`,
//! the MAC being HMAC-SHA256 over the path and the expiry. Anyone holding a link can fetch that one file until
//! it expires; changing any part of it (another file, a later expiry) invalidates the signature.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::Sha256;

use crate::core::MediaKind;

#[derive(Clone)]
pub struct LinkSigner {
    key: Vec<u8>,
    /// Signs durable links; derived from `key`, so the two kinds of link can never stand for each other.
    permalink_key: Vec<u8>,
    base: String,
    ttl: Duration,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkSigner")
            .field("base", &self.base)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link has expired")]
    Expired,
    #[error("the link's signature is not valid")]
    BadSignature,
}

impl LinkSigner {
    pub fn new(key: &[u8], base: &str, ttl: Duration) -> Self {
        let mut derive = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        derive.update(b"zcc-bridge durable media links v1");
        Self {
            permalink_key: derive.finalize().into_bytes().to_vec(),
            key: key.to_vec(),
            base: base.trim_end_matches('/').to_string(),
            ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The path a link points at (ids are percent-encoded).
    pub fn path(kind: MediaKind, item_id: &str) -> String {
        format!("/media/{}/{}", kind.as_str(), encode(item_id))
    }

    fn mac(&self, kind: MediaKind, item_id: &str, expires: i64) -> Hmac<Sha256> {
        // `new_from_slice` accepts keys of any length for HMAC.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(kind.as_str().as_bytes());
        mac.update(b"\n");
        mac.update(item_id.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// A link valid for `ttl` from `now` (unix seconds); returns it and its expiry (unix seconds).
    pub fn link(&self, kind: MediaKind, item_id: &str, now: i64) -> (String, i64) {
        let expires = now + self.ttl.as_secs() as i64;
        (self.link_expiring(kind, item_id, expires), expires)
    }

    pub fn link_expiring(&self, kind: MediaKind, item_id: &str, expires: i64) -> String {
        let signature =
            URL_SAFE_NO_PAD.encode(self.mac(kind, item_id, expires).finalize().into_bytes());
        format!(
            "{}{}?expires={expires}&signature={signature}",
            self.base,
            Self::path(kind, item_id)
        )
    }

    /// Checks a link's expiry and signature (in constant time).
    pub fn verify(
        &self,
        kind: MediaKind,
        item_id: &str,
        expires: i64,
        signature: &str,
        now: i64,
    ) -> Result<(), LinkError> {
        let given = URL_SAFE_NO_PAD
            .decode(signature.as_bytes())
            .map_err(|_| LinkError::BadSignature)?;
        self.mac(kind, item_id, expires)
            .verify_slice(&given)
            .map_err(|_| LinkError::BadSignature)?;
        if now >= expires {
            return Err(LinkError::Expired);
        }
        Ok(())
    }
}

impl LinkSigner {
    /// The path of a file's durable link.
    pub fn permalink_path(kind: MediaKind, item_id: &str, token: &str) -> String {
        format!("{}/permalink/{token}", Self::path(kind, item_id))
    }

    /// A file's durable link token: 128 bits of HMAC over the file and its link generation. Unguessable; the
    /// same for as long as the generation stays; revoked by bumping the generation.
    pub fn permalink_token(&self, kind: MediaKind, item_id: &str, generation: i64) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.permalink_key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(kind.as_str().as_bytes());
        mac.update(b"\n");
        mac.update(item_id.as_bytes());
        mac.update(b"\n");
        mac.update(generation.to_string().as_bytes());
        URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..16])
    }

    /// A file's durable link (`{base}/media/{kind}/{item_id}/permalink/{token}`): it does not expire; it answers
    /// with a redirect to a fresh short-lived link.
    pub fn permalink(&self, kind: MediaKind, item_id: &str, generation: i64) -> String {
        let token = self.permalink_token(kind, item_id, generation);
        format!(
            "{}{}",
            self.base,
            Self::permalink_path(kind, item_id, &token)
        )
    }

    /// Checks a durable link's token against the file's current generation (in constant time).
    pub fn verify_permalink(
        &self,
        kind: MediaKind,
        item_id: &str,
        generation: i64,
        token: &str,
    ) -> Result<(), LinkError> {
        let expected = self.permalink_token(kind, item_id, generation);
        if bool::from(subtle::ConstantTimeEq::ct_eq(
            expected.as_bytes(),
            token.as_bytes(),
        )) {
            Ok(())
        } else {
            Err(LinkError::BadSignature)
        }
    }
}

/// What stays unencoded in an id used as a path segment: RFC 3986's unreserved characters only.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes everything but unreserved characters.
fn encode(value: &str) -> String {
    utf8_percent_encode(value, PATH_SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn signer() -> LinkSigner {
        LinkSigner::new(
            b"0123456789abcdef0123456789abcdef",
            "https://bridge.example.com/",
            Duration::from_secs(600),
        )
    }

    fn parts(link: &str) -> (i64, String) {
        let query = link.split_once('?').unwrap().1;
        let mut expires = 0;
        let mut signature = String::new();
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap();
            match k {
                "expires" => expires = v.parse().unwrap(),
                "signature" => signature = v.to_string(),
                _ => {}
            }
        }
        (expires, signature)
    }

    #[test]
    fn ids_are_one_path_segment() {
        assert_eq!(
            LinkSigner::path(MediaKind::Recording, "a/b c%é~"),
            "/media/recording/a%2Fb%20c%25%C3%A9~"
        );
    }

    #[test]
    fn a_link_verifies_until_it_expires() {
        let s = signer();
        let (link, expires) = s.link(MediaKind::Recording, "R1", 1_000);
        assert!(link
            .starts_with("https://bridge.example.com/media/recording/R1?expires=1600&signature="));
        let (e, sig) = parts(&link);
        assert_eq!(e, expires);
        assert_eq!(s.verify(MediaKind::Recording, "R1", e, &sig, 1_599), Ok(()));
        assert_eq!(
            s.verify(MediaKind::Recording, "R1", e, &sig, 1_600),
            Err(LinkError::Expired)
        );
    }

    #[test]
    fn a_durable_link_is_stable_until_revoked_and_distinct_from_expiring_links() {
        let s = signer();
        let link = s.permalink(MediaKind::Recording, "R1", 0);
        assert_eq!(link, s.permalink(MediaKind::Recording, "R1", 0));
        let token = link.rsplit('/').next().unwrap();
        assert_eq!(token.len(), 22);
        assert!(link.starts_with("https://bridge.example.com/media/recording/R1/permalink/"));
        assert_eq!(
            s.verify_permalink(MediaKind::Recording, "R1", 0, token),
            Ok(())
        );
        // Revoked (the generation moved), another file, another kind, another key: refused.
        for (kind, id, generation) in [
            (MediaKind::Recording, "R1", 1),
            (MediaKind::Recording, "R2", 0),
            (MediaKind::Voicemail, "R1", 0),
        ] {
            assert_eq!(
                s.verify_permalink(kind, id, generation, token),
                Err(LinkError::BadSignature)
            );
        }
        let other = LinkSigner::new(
            b"another key, also long enough!!",
            "http://x",
            Duration::from_secs(60),
        );
        assert_eq!(
            other.verify_permalink(MediaKind::Recording, "R1", 0, token),
            Err(LinkError::BadSignature)
        );
        // An expiring link's signature is no durable token, nor the other way round.
        let (expiring, _) = s.link(MediaKind::Recording, "R1", 0);
        let (_, signature) = parts(&expiring);
        assert_eq!(
            s.verify_permalink(MediaKind::Recording, "R1", 0, &signature),
            Err(LinkError::BadSignature)
        );
    }

    proptest! {
        /// Any change to the file, the expiry or the signature is refused.
        #[test]
        fn tampering_is_refused(id in "[A-Za-z0-9_-]{1,24}", other in "[A-Za-z0-9_-]{1,24}", bump in 1i64..1_000_000, flip in 0usize..43) {
            let s = signer();
            let (link, _) = s.link(MediaKind::Voicemail, &id, 0);
            let (expires, sig) = parts(&link);
            if other != id {
                prop_assert_eq!(s.verify(MediaKind::Voicemail, &other, expires, &sig, 1), Err(LinkError::BadSignature));
            }
            prop_assert_eq!(s.verify(MediaKind::Recording, &id, expires, &sig, 1), Err(LinkError::BadSignature));
            prop_assert_eq!(s.verify(MediaKind::Voicemail, &id, expires + bump, &sig, 1), Err(LinkError::BadSignature));
            let mut bytes = sig.clone().into_bytes();
            let i = flip % bytes.len();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            prop_assert_eq!(s.verify(MediaKind::Voicemail, &id, expires, &tampered, 1), Err(LinkError::BadSignature));
            // Another key does not verify it either.
            let other_key = LinkSigner::new(b"another key, also long enough!!", "http://x", Duration::from_secs(600));
            prop_assert_eq!(other_key.verify(MediaKind::Voicemail, &id, expires, &sig, 1), Err(LinkError::BadSignature));
        }
    }
}
