//! Client-app JWT verification, black-box: each algorithm with the right key and a wrong one, expiry, `alg: none`,
//! the HS/RS confusion, app naming, audience, anonymous and auto-registration; property tests for tampering.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chatbot::client_app::{
    generate_hs_credentials, Admission, ClientApp, ClientAppConfig, IdentitySource, JwtAlgorithm,
    TokenError, UserError,
};
use chatbot::sim::{AppClaim, TokenSigner};
use chatbot::Secret;
use common::fixture;
use proptest::prelude::*;
use serde_json::json;

const SECRET_A: &str = "k9Jx2vQ7tLwR4mZp8sBn3cYh6dFg1aEu0oIiKkLlMmNn";
const SECRET_B: &str = "a-completely-different-secret-of-enough-length!";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn hs_app(alg: JwtAlgorithm) -> ClientApp {
    ClientApp::new(&ClientAppConfig::hs("cs-app-1", alg, Secret::new(SECRET_A))).unwrap()
}

fn rs_app(alg: JwtAlgorithm) -> ClientApp {
    ClientApp::new(&ClientAppConfig::rs(
        "cs-app-1",
        alg,
        fixture("rsa_a_public.pem"),
    ))
    .unwrap()
}

fn hs_signer(alg: JwtAlgorithm, secret: &str) -> TokenSigner {
    TokenSigner::hs("cs-app-1", alg, &Secret::new(secret)).unwrap()
}

fn rs_signer(alg: JwtAlgorithm, key: &str) -> TokenSigner {
    TokenSigner::rs("cs-app-1", alg, &fixture(key)).unwrap()
}

/// A token assembled by hand: header and claims as given, signature as given.
fn raw_token(header: serde_json::Value, claims: serde_json::Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

fn hmac(alg: JwtAlgorithm, key: &[u8], message: &str) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    match alg {
        JwtAlgorithm::HS256 => {
            let mut m = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
            m.update(message.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
        _ => {
            let mut m = Hmac::<sha2::Sha512>::new_from_slice(key).unwrap();
            m.update(message.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
    }
}

#[test]
fn each_algorithm_accepts_the_right_key_and_refuses_a_wrong_one() {
    for alg in [JwtAlgorithm::HS256, JwtAlgorithm::HS512] {
        let app = hs_app(alg);
        let ok = app
            .verify(&hs_signer(alg, SECRET_A).sign(Some("alice@example.com")))
            .unwrap();
        assert_eq!(ok.app_id, "cs-app-1");
        assert_eq!(ok.subject.as_deref(), Some("alice@example.com"));
        assert!(!ok.anonymous);
        assert_eq!(
            app.verify(&hs_signer(alg, SECRET_B).sign(Some("alice"))),
            Err(TokenError::BadSignature),
            "{alg}"
        );
    }
    for alg in [JwtAlgorithm::RS256, JwtAlgorithm::RS512] {
        let app = rs_app(alg);
        let ok = app
            .verify(&rs_signer(alg, "rsa_a_private.pem").sign(Some("bob")))
            .unwrap();
        assert_eq!(ok.subject.as_deref(), Some("bob"));
        assert_eq!(
            app.verify(&rs_signer(alg, "rsa_b_private.pem").sign(Some("bob"))),
            Err(TokenError::BadSignature),
            "{alg}"
        );
    }
}

#[test]
fn the_algorithm_is_pinned_per_app() {
    // HS512 token on an HS256 app (same secret), RS512 token on an RS256 app (same key pair), and across families.
    let hs256 = hs_app(JwtAlgorithm::HS256);
    let err = hs256
        .verify(&hs_signer(JwtAlgorithm::HS512, SECRET_A).sign(Some("a")))
        .unwrap_err();
    assert!(
        matches!(err, TokenError::AlgorithmMismatch { expected: JwtAlgorithm::HS256, ref found } if found == "HS512")
    );
    let rs256 = rs_app(JwtAlgorithm::RS256);
    assert!(matches!(
        rs256.verify(&rs_signer(JwtAlgorithm::RS512, "rsa_a_private.pem").sign(Some("a"))),
        Err(TokenError::AlgorithmMismatch { .. })
    ));
    assert!(matches!(
        hs256.verify(&rs_signer(JwtAlgorithm::RS256, "rsa_a_private.pem").sign(Some("a"))),
        Err(TokenError::AlgorithmMismatch { .. })
    ));
}

#[test]
fn hs256_signed_with_the_rs_public_key_is_refused() {
    // The classic confusion: the attacker knows the public key and uses its PEM bytes as an HMAC secret.
    let public_pem = fixture("rsa_a_public.pem");
    let claims = json!({"appId": "cs-app-1", "sub": "mallory", "iat": now(), "exp": now() + 300});
    for (alg, name) in [
        (JwtAlgorithm::HS256, "HS256"),
        (JwtAlgorithm::HS512, "HS512"),
    ] {
        let header = json!({"alg": name, "typ": "JWT"});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = hmac(alg, public_pem.as_bytes(), &signing_input);
        let token = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig));
        for app in [rs_app(JwtAlgorithm::RS256), rs_app(JwtAlgorithm::RS512)] {
            assert!(
                matches!(
                    app.verify(&token),
                    Err(TokenError::AlgorithmMismatch { .. })
                ),
                "{name}"
            );
        }
    }
}

#[test]
fn alg_none_is_refused_in_any_spelling() {
    let claims = json!({"appId": "cs-app-1", "sub": "mallory", "iat": now(), "exp": now() + 300});
    for spelling in ["none", "None", "NONE", "nOnE"] {
        let token = raw_token(json!({"alg": spelling, "typ": "JWT"}), claims.clone(), b"");
        assert_eq!(
            hs_app(JwtAlgorithm::HS256).verify(&token),
            Err(TokenError::AlgorithmNone)
        );
        assert_eq!(
            rs_app(JwtAlgorithm::RS256).verify(&token),
            Err(TokenError::AlgorithmNone)
        );
        // Also without the trailing dot-part content, and with the dot missing.
        let stripped = token.trim_end_matches('.').to_owned();
        assert!(hs_app(JwtAlgorithm::HS256).verify(&stripped).is_err());
    }
}

#[test]
fn expiry_issue_time_and_leeway() {
    let app = hs_app(JwtAlgorithm::HS256);
    let s = hs_signer(JwtAlgorithm::HS256, SECRET_A);
    let t = now();
    let claims = |iat: u64, exp: Option<u64>| {
        let mut c = json!({"appId": "cs-app-1", "sub": "a", "iat": iat});
        if let Some(e) = exp {
            c["exp"] = json!(e);
        }
        c
    };
    assert_eq!(
        app.verify(&s.sign_claims(&claims(t - 600, Some(t - 120)))),
        Err(TokenError::Expired)
    );
    // Within the default 30 s leeway.
    assert!(app
        .verify(&s.sign_claims(&claims(t - 600, Some(t - 10))))
        .is_ok());
    assert_eq!(
        app.verify(&s.sign_claims(&claims(t, None))),
        Err(TokenError::MissingExpiry)
    );
    assert_eq!(
        app.verify(&s.sign_claims(&claims(t + 600, Some(t + 900)))),
        Err(TokenError::IssuedInFuture)
    );
    assert!(
        app.verify(&s.sign_claims(&claims(t + 10, Some(t + 300))))
            .is_ok(),
        "small skew tolerated"
    );
    // A string exp is a type error, not a missing claim (the jsonwebtoken type-confusion class).
    let c = json!({"appId": "cs-app-1", "sub": "a", "exp": (t + 300).to_string()});
    assert_eq!(
        app.verify(&s.sign_claims(&c)),
        Err(TokenError::WrongClaimType("exp"))
    );
    // nbf in the future.
    let c = json!({"appId": "cs-app-1", "exp": t + 900, "nbf": t + 600});
    assert_eq!(app.verify(&s.sign_claims(&c)), Err(TokenError::NotYetValid));
    // Kore's jti rule: at most one hour.
    let c = json!({"appId": "cs-app-1", "iat": t, "exp": t + 7200, "jti": "j1"});
    assert_eq!(
        app.verify(&s.sign_claims(&c)),
        Err(TokenError::LifetimeTooLong)
    );
    let c = json!({"appId": "cs-app-1", "iat": t, "exp": t + 3600, "jti": "j1"});
    assert_eq!(
        app.verify(&s.sign_claims(&c)).unwrap().jti.as_deref(),
        Some("j1")
    );
    // A verifier with no leeway refuses what the default accepts.
    let mut cfg = ClientAppConfig::hs("cs-app-1", JwtAlgorithm::HS256, Secret::new(SECRET_A));
    cfg.jwt_leeway_seconds = 0;
    let strict = ClientApp::new(&cfg).unwrap();
    assert_eq!(
        strict.verify(&s.sign_claims(&claims(t - 600, Some(t - 10)))),
        Err(TokenError::Expired)
    );
    // verify_at: the same token is fine before it expires and refused after.
    let tok = s.sign_claims(&claims(t, Some(t + 60)));
    assert!(app
        .verify_at(&tok, UNIX_EPOCH + Duration::from_secs(t + 30))
        .is_ok());
    assert_eq!(
        app.verify_at(&tok, UNIX_EPOCH + Duration::from_secs(t + 200)),
        Err(TokenError::Expired)
    );
}

#[test]
fn the_app_is_named_by_app_id_or_iss() {
    let app = hs_app(JwtAlgorithm::HS256);
    let by_iss = hs_signer(JwtAlgorithm::HS256, SECRET_A).with_app_claim(AppClaim::Iss);
    assert_eq!(
        app.verify(&by_iss.sign(Some("a"))).unwrap().app_id,
        "cs-app-1"
    );
    let s = hs_signer(JwtAlgorithm::HS256, SECRET_A);
    let t = now();
    assert_eq!(
        app.verify(&s.sign_claims(&json!({"sub": "a", "exp": t + 60}))),
        Err(TokenError::MissingAppId)
    );
    assert!(matches!(
        app.verify(&s.sign_claims(&json!({"appId": "cs-other", "exp": t + 60}))),
        Err(TokenError::AppMismatch { .. })
    ));
    // Both present: both must name this app.
    assert!(matches!(
        app.verify(&s.sign_claims(&json!({"appId": "cs-app-1", "iss": "cs-other", "exp": t + 60}))),
        Err(TokenError::AppMismatch { .. })
    ));
    assert!(app
        .verify(&s.sign_claims(&json!({"appId": "cs-app-1", "iss": "cs-app-1", "exp": t + 60})))
        .is_ok());
}

#[test]
fn audience_when_configured() {
    let mut cfg = ClientAppConfig::hs("cs-app-1", JwtAlgorithm::HS256, Secret::new(SECRET_A));
    cfg.jwt_audience = Some(vec!["https://idproxy.kore.ai/authorize".into()]);
    let app = ClientApp::new(&cfg).unwrap();
    let s = hs_signer(JwtAlgorithm::HS256, SECRET_A);
    let t = now();
    let with_aud = |aud: serde_json::Value| json!({"appId": "cs-app-1", "exp": t + 60, "aud": aud});
    assert!(app
        .verify(&s.sign_claims(&with_aud(json!("https://idproxy.kore.ai/authorize"))))
        .is_ok());
    assert!(app
        .verify(&s.sign_claims(&with_aud(json!(["x", "https://idproxy.kore.ai/authorize"]))))
        .is_ok());
    assert_eq!(
        app.verify(&s.sign_claims(&with_aud(json!("https://evil")))),
        Err(TokenError::AudienceMismatch)
    );
    assert_eq!(
        app.verify(&s.sign_claims(&json!({"appId": "cs-app-1", "exp": t + 60}))),
        Err(TokenError::AudienceMismatch)
    );
    // Without configured audiences any aud passes.
    assert!(hs_app(JwtAlgorithm::HS256)
        .verify(&s.sign_claims(&with_aud(json!("https://evil"))))
        .is_ok());
}

#[test]
fn malformed_tokens_have_clear_errors() {
    let app = hs_app(JwtAlgorithm::HS256);
    for t in ["", "abc", "a.b", "a.b.c.d", "!!.@@.##"] {
        assert!(
            matches!(app.verify(t), Err(TokenError::Malformed(_))),
            "{t:?}"
        );
    }
    let t = raw_token(json!({"typ": "JWT"}), json!({}), b"x");
    assert!(matches!(app.verify(&t), Err(TokenError::Malformed(_))));
    let t = raw_token(json!({"alg": "HS256", "crit": ["exp"]}), json!({}), b"x");
    assert_eq!(app.verify(&t), Err(TokenError::CriticalHeader));
    assert_eq!(TokenError::AlgorithmNone.kind(), "alg_none");
}

#[test]
fn anonymous_and_auto_register_on_and_off() {
    let t = now();
    let s = hs_signer(JwtAlgorithm::HS256, SECRET_A);
    let mut cfg = ClientAppConfig::hs("cs-app-1", JwtAlgorithm::HS256, Secret::new(SECRET_A));
    for (allow_anonymous, auto_register) in
        [(false, false), (true, false), (false, true), (true, true)]
    {
        cfg.allow_anonymous = allow_anonymous;
        cfg.auto_register = auto_register;
        let app = ClientApp::new(&cfg).unwrap();
        // No subject, no e-mail or phone: anonymous.
        let anon = app.verify(&s.sign(None)).unwrap();
        assert!(anon.anonymous);
        match app.identify(&anon, None, None, "sess-9") {
            Ok(id) => {
                assert!(allow_anonymous);
                assert_eq!(id.source, IdentitySource::Anonymous);
                assert_eq!(id.id, "anon:sess-9");
                assert_eq!(app.admit(&id, false), Ok(Admission::Anonymous));
                assert!(id.bot_user().anonymous);
            }
            Err(e) => {
                assert!(!allow_anonymous);
                assert_eq!(e, UserError::AnonymousNotAllowed);
            }
        }
        // Kore's isAnonymous with a random sub keeps the sub as the anonymous id.
        let kore_anon = app
            .verify(&s.sign_claims(
                &json!({"appId": "cs-app-1", "exp": t + 60, "sub": "r-123", "isAnonymous": true}),
            ))
            .unwrap();
        assert!(kore_anon.anonymous);
        if allow_anonymous {
            assert_eq!(
                app.identify(&kore_anon, None, None, "s").unwrap().id,
                "r-123"
            );
        }
        // No subject but the conversation variables carry an e-mail: identified by it.
        let by_mail = app
            .identify(&anon, Some("Carol@Example.com"), Some("+1555"), "s")
            .unwrap();
        assert_eq!(
            (by_mail.id.as_str(), by_mail.source),
            ("carol@example.com", IdentitySource::Email)
        );
        let by_phone = app.identify(&anon, None, Some("+15550100"), "s").unwrap();
        assert_eq!(by_phone.source, IdentitySource::Phone);
        // A subject wins.
        let known = app.verify(&s.sign(Some("dave"))).unwrap();
        let id = app
            .identify(&known, Some("other@example.com"), None, "s")
            .unwrap();
        assert_eq!(
            (id.id.as_str(), id.source),
            ("dave", IdentitySource::Subject)
        );
        assert_eq!(app.admit(&id, true), Ok(Admission::Known));
        match app.admit(&id, false) {
            Ok(a) => {
                assert!(auto_register);
                assert_eq!(a, Admission::Register);
            }
            Err(e) => {
                assert!(!auto_register);
                assert_eq!(e, UserError::UnknownUser);
                assert!(e.to_string().contains("auto_register = false"));
            }
        }
    }
}

#[test]
fn generated_credentials_sign_and_verify() {
    for alg in [JwtAlgorithm::HS256, JwtAlgorithm::HS512] {
        let creds = generate_hs_credentials(alg).unwrap();
        let app = ClientApp::new(&ClientAppConfig::hs(
            creds.client_id.clone(),
            alg,
            creds.client_secret.clone(),
        ))
        .unwrap();
        let signer = TokenSigner::hs(creds.client_id.clone(), alg, &creds.client_secret).unwrap();
        assert_eq!(
            app.verify(&signer.sign(Some("x"))).unwrap().app_id,
            creds.client_id
        );
    }
}

#[test]
fn debug_output_holds_no_key_material() {
    let cfg = ClientAppConfig::hs("cs-app-1", JwtAlgorithm::HS256, Secret::new(SECRET_A));
    let app = ClientApp::new(&cfg).unwrap();
    for text in [format!("{cfg:?}"), format!("{app:?}")] {
        assert!(!text.contains(SECRET_A), "{text}");
    }
}

fn flip(token: &str, index: usize, bit: u8) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let i = index % bytes.len();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    if bytes[i] == b'.' {
        return token.to_owned();
    }
    let pos = alphabet.iter().position(|c| *c == bytes[i]).unwrap_or(0);
    bytes[i] = alphabet[(pos + 1 + bit as usize % 63) % 64];
    String::from_utf8(bytes).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// Changing any one character of a valid HS token makes it fail. (The last character of each base64url part
    /// may carry only padding bits, so it is left alone.)
    #[test]
    fn tampered_hs_tokens_are_refused(index in 0usize..400, bit in 0u8..63, sub in "[a-z]{1,12}") {
        let app = hs_app(JwtAlgorithm::HS256);
        let token = hs_signer(JwtAlgorithm::HS256, SECRET_A).sign(Some(&sub));
        let bytes = token.as_bytes();
        let i = index % (bytes.len() - 1);
        prop_assume!(bytes[i] != b'.' && bytes[i + 1] != b'.');
        let tampered = flip(&token, i, bit);
        prop_assert_ne!(&tampered, &token);
        prop_assert!(app.verify(&tampered).is_err());
    }

    /// Any other secret fails.
    #[test]
    fn wrong_secrets_are_refused(secret in "[ -~]{32,64}") {
        prop_assume!(secret != SECRET_A);
        let app = hs_app(JwtAlgorithm::HS512);
        let token = hs_signer(JwtAlgorithm::HS512, &secret).sign(Some("a"));
        prop_assert_eq!(app.verify(&token), Err(TokenError::BadSignature));
    }

    /// Past the leeway every expiry fails; within it every one passes.
    #[test]
    fn expiry_boundary(age in 0u64..100_000) {
        let app = hs_app(JwtAlgorithm::HS256);
        let s = hs_signer(JwtAlgorithm::HS256, SECRET_A);
        let t = 1_900_000_000u64;
        let token = s.sign_claims(&json!({"appId": "cs-app-1", "iat": t - age - 10, "exp": t - age}));
        let r = app.verify_at(&token, UNIX_EPOCH + Duration::from_secs(t));
        if age > 30 { prop_assert_eq!(r, Err(TokenError::Expired)); } else { prop_assert!(r.is_ok()); }
    }

    /// A tampered RS signature fails.
    #[test]
    fn tampered_rs_signatures_are_refused(index in 0usize..340, bit in 0u8..63) {
        let app = rs_app(JwtAlgorithm::RS256);
        let token = rs_signer(JwtAlgorithm::RS256, "rsa_a_private.pem").sign(Some("a"));
        let sig_start = token.rfind('.').unwrap() + 1;
        let sig_len = token.len() - sig_start - 1; // keep the last char (padding bits)
        let tampered = flip(&token, sig_start + index % sig_len, bit);
        prop_assert_eq!(app.verify(&tampered), Err(TokenError::BadSignature));
    }
}
