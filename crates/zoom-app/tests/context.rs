//! Property tests of the X-Zoom-App-Context path: whatever arrives, the answer is a typed error or a verified
//! context, never a panic; and nothing but an intact context under the right key, in time, is accepted.
//! This is also the fuzz stand-in until issue 23's `cargo fuzz` target calls `zoom_app::context::decode`.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use proptest::prelude::*;
use zoom_app::context::{
    self, seal, AppContext, ContextKey, DEFAULT_MAX_LEN, DEFAULT_SKEW_MS, ISSUER,
};
use zoom_app::{AppCredentials, ContextError, ContextVerifier, Environment};

const SECRET: &str = "test-secret-7f3a";
const CLIENT_ID: &str = "testClientId";
const NOW: i64 = 1_800_000_000_000;

fn verifier() -> ContextVerifier {
    ContextVerifier::new(&[AppCredentials {
        environment: Environment::Production,
        client_id: CLIENT_ID.into(),
        client_secret: SECRET.into(),
    }])
}

fn claims(uid: &str, exp: i64) -> AppContext {
    AppContext {
        typ: Some("panel".into()),
        uid: Some(uid.into()),
        aud: Some(CLIENT_ID.into()),
        iss: Some(ISSUER.into()),
        ts: Some(exp - 120_000),
        exp: Some(exp),
        ..Default::default()
    }
}

/// A valid context's raw bytes (before base64).
fn raw(uid: &str, exp: i64, iv: &[u8], aad: &[u8]) -> Vec<u8> {
    let json = serde_json::to_vec(&claims(uid, exp)).unwrap();
    seal(&json, &ContextKey::from_client_secret(SECRET), iv, aad).unwrap()
}

fn valid_parts() -> impl Strategy<Value = (String, Vec<u8>, Vec<u8>)> {
    (
        "[A-Za-z0-9_-]{1,40}",
        prop_oneof![
            prop::collection::vec(any::<u8>(), 12),
            prop::collection::vec(any::<u8>(), 16)
        ],
        prop::collection::vec(any::<u8>(), 0..64),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn intact_contexts_verify((uid, iv, aad) in valid_parts(), url_safe in any::<bool>()) {
        let bytes = raw(&uid, NOW + 60_000, &iv, &aad);
        let text = if url_safe { URL_SAFE_NO_PAD.encode(&bytes) } else { STANDARD.encode(&bytes) };
        let ok = verifier().verify(text.as_bytes(), NOW).unwrap();
        prop_assert_eq!(ok.user_id().unwrap(), uid.as_str());
        prop_assert_eq!(ok.environment, Environment::Production);
    }

    #[test]
    fn every_truncation_is_refused((uid, iv, aad) in valid_parts(), cut in any::<prop::sample::Index>()) {
        let bytes = raw(&uid, NOW + 60_000, &iv, &aad);
        let keep = cut.index(bytes.len()); // 0..len-1: always shorter than the whole
        let text = URL_SAFE_NO_PAD.encode(&bytes[..keep]);
        prop_assert!(verifier().verify(text.as_bytes(), NOW).is_err());
    }

    #[test]
    fn every_flipped_bit_is_refused((uid, iv, aad) in valid_parts(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut bytes = raw(&uid, NOW + 60_000, &iv, &aad);
        let i = at.index(bytes.len());
        bytes[i] ^= 1 << bit;
        let text = URL_SAFE_NO_PAD.encode(&bytes);
        prop_assert!(verifier().verify(text.as_bytes(), NOW).is_err());
    }

    #[test]
    fn every_changed_character_is_refused((uid, iv, aad) in valid_parts(), at in any::<prop::sample::Index>(), to in 0u8..64) {
        let bytes = raw(&uid, NOW + 60_000, &iv, &aad);
        let text = URL_SAFE_NO_PAD.encode(&bytes);
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut chars = text.into_bytes();
        let i = at.index(chars.len());
        let replacement = alphabet[usize::from(to)];
        prop_assume!(chars[i] != replacement);
        chars[i] = replacement;
        prop_assert!(verifier().verify(&chars, NOW).is_err());
    }

    #[test]
    fn a_wrong_key_is_refused((uid, iv, aad) in valid_parts(), other in "[ -~]{1,40}") {
        prop_assume!(other != SECRET);
        let json = serde_json::to_vec(&claims(&uid, NOW + 60_000)).unwrap();
        let bytes = seal(&json, &ContextKey::from_client_secret(&other), &iv, &aad).unwrap();
        prop_assert_eq!(
            verifier().verify(URL_SAFE_NO_PAD.encode(&bytes).as_bytes(), NOW).unwrap_err(),
            ContextError::Decrypt
        );
    }

    #[test]
    fn expired_contexts_are_refused((uid, iv, aad) in valid_parts(), late_by in 0i64..10_000_000) {
        let exp = NOW - DEFAULT_SKEW_MS - late_by;
        let text = URL_SAFE_NO_PAD.encode(raw(&uid, exp, &iv, &aad));
        let refused = matches!(verifier().verify(text.as_bytes(), NOW), Err(ContextError::Expired { .. }));
        prop_assert!(refused);
    }

    #[test]
    fn oversized_input_is_refused_before_decoding(extra in 1usize..4096, byte in any::<u8>()) {
        let input = vec![byte; DEFAULT_MAX_LEN + extra];
        let refused = matches!(verifier().verify(&input, NOW), Err(ContextError::TooLong { .. }) | Err(ContextError::Empty));
        prop_assert!(refused);
    }

    #[test]
    fn random_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = verifier().verify(&input, NOW);
        let _ = context::decode(&input, &ContextKey::from_client_secret(SECRET));
        let _ = context::unpack(&input);
    }

    #[test]
    fn random_base64_never_panics(input in prop::collection::vec(any::<u8>(), 0..600), url_safe in any::<bool>()) {
        let text = if url_safe { URL_SAFE_NO_PAD.encode(&input) } else { STANDARD.encode(&input) };
        let _ = verifier().verify(text.as_bytes(), NOW);
    }

    /// Well-formed layout around an arbitrary plaintext under the right key: claims errors, never a panic.
    #[test]
    fn arbitrary_plaintext_never_panics(plain in prop::collection::vec(any::<u8>(), 0..300)) {
        let bytes = seal(&plain, &ContextKey::from_client_secret(SECRET), &[3u8; 12], &[]).unwrap();
        let _ = verifier().verify(URL_SAFE_NO_PAD.encode(&bytes).as_bytes(), NOW);
    }
}

#[test]
fn lying_lengths_are_refused_not_trusted() {
    let bytes = raw("u", NOW + 60_000, &[1u8; 12], b"aad");
    // aadLength claims 65535 bytes.
    let mut lie = bytes.clone();
    lie[13] = 0xff;
    lie[14] = 0xff;
    assert!(matches!(
        context::unpack(&lie),
        Err(ContextError::Truncated { field: "aad", .. })
    ));
    // cipherTextLength claims i32::MAX.
    let mut lie = bytes.clone();
    let at = 1 + 12 + 2 + 3;
    lie[at..at + 4].copy_from_slice(&i32::MAX.to_le_bytes());
    assert!(matches!(
        context::unpack(&lie),
        Err(ContextError::Truncated {
            field: "cipherText",
            ..
        })
    ));
    // A longer tag (trailing garbage) is refused too.
    let mut long = bytes;
    long.push(0);
    assert_eq!(context::unpack(&long), Err(ContextError::TagLength(17)));
}
