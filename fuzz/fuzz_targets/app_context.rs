//! `X-Zoom-App-Context` (and what `getAppContext()` posts): never a panic, whatever the bytes. Two kinds of input,
//! chosen by the first byte:
//! - even: the rest is the header as received, run through the whole untrusted path (size cap, base64 or
//!   base64url, the layout's lengths, AES-256-GCM, the claims' JSON, `iss`/`aud`/`exp`) with one and two configured
//!   credential sets; a bare `unpack` of the decoded bytes must account for every byte when it succeeds;
//! - odd: the rest is a plaintext sealed with a test secret into Zoom's layout (so the fuzzer reaches the claims
//!   parser and the checks behind the tag), optionally with one byte flipped at a position the input chooses: a
//!   flipped context never verifies, an intact one verifies exactly when its claims say it should.
#![no_main]

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use zoom_app::context::{decode, decode_base64, seal, unpack, ContextError, ContextKey, ISSUER};
use zoom_app::{AppCredentials, ContextVerifier, Environment};

const SECRET: &str = "fuzz-client-secret";
const CLIENT_ID: &str = "fuzzClientId";
const NOW_MS: i64 = 1_795_251_600_000;

fn verifier() -> ContextVerifier {
    ContextVerifier::new(&[
        AppCredentials {
            environment: Environment::Development,
            client_id: "otherClientId".into(),
            client_secret: "another-secret".into(),
        },
        AppCredentials {
            environment: Environment::Production,
            client_id: CLIENT_ID.into(),
            client_secret: SECRET.into(),
        },
    ])
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let key = ContextKey::from_client_secret(SECRET);
    if mode % 2 == 0 {
        let _ = decode(rest, &key);
        let _ = verifier().verify(rest, NOW_MS);
        if let Ok(raw) = decode_base64(rest) {
            if let Ok(e) = unpack(&raw) {
                let parts = 1 + e.iv.len() + 2 + e.aad.len() + 4 + e.ciphertext.len() + e.tag.len();
                assert_eq!(parts, raw.len(), "unpack must account for every byte");
            }
        }
        return;
    }
    // Odd: [flip position: 2 bytes][plaintext...]
    if rest.len() < 2 {
        return;
    }
    let (flip, plaintext) = rest.split_at(2);
    let flip = usize::from(u16::from_le_bytes([flip[0], flip[1]]));
    let Ok(mut sealed) = seal(plaintext, &key, &[7u8; 12], b"") else {
        return;
    };
    let flipped = flip < sealed.len() && mode & 2 == 2;
    if flipped {
        sealed[flip] ^= 0x01;
    }
    let text = if mode & 4 == 4 {
        STANDARD.encode(&sealed)
    } else {
        URL_SAFE_NO_PAD.encode(&sealed)
    };
    let result = verifier().verify(text.as_bytes(), NOW_MS);
    if flipped {
        // Any changed byte changes a length, the IV, the cipher text or the tag: never accepted.
        assert!(result.is_err(), "a flipped context verified: {result:?}");
        return;
    }
    if text.len() > zoom_app::context::DEFAULT_MAX_LEN {
        assert!(
            matches!(result, Err(ContextError::TooLong { .. })),
            "{result:?}"
        );
        return;
    }
    // Intact: it decrypts, so what decides is the claims.
    match &result {
        Ok(verified) => {
            assert!(
                serde_json::from_slice::<serde_json::Value>(plaintext).is_ok_and(|v| v.is_object())
            );
            let c = &verified.context;
            assert_eq!(c.iss.as_deref(), Some(ISSUER));
            assert_eq!(c.aud.as_deref(), Some(CLIENT_ID));
            assert_eq!(verified.client_id, CLIENT_ID);
            assert!(c.exp.is_some_and(|exp| exp.saturating_add(10_000) > NOW_MS));
        }
        Err(ContextError::Decrypt) => panic!("an intact context must decrypt"),
        Err(_) => {}
    }
});
