//! JWT validation with keys from files.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use xmidt_auth::{
    ApiAuth, ApiAuthConfig, AuthError, ConfigError, JwtConfig, KeysConfig, Principal,
    PrincipalKind, TokenError,
};

use crate::common::{api_claims, bearer, now, TempDir, API_EC, API_RSA, OTHER_RSA};

/// A JWT config reading each `(kid, pem)` from a file in `dir`.
fn pem_config(dir: &TempDir, keys: &[(&str, &str)]) -> JwtConfig {
    let pem_files: BTreeMap<_, _> = keys
        .iter()
        .map(|(kid, pem)| ((*kid).to_owned(), dir.write(&format!("{kid}.pem"), pem)))
        .collect();
    JwtConfig {
        keys: KeysConfig {
            pem_files,
            ..KeysConfig::default()
        },
        ..JwtConfig::default()
    }
}

fn api(jwt: JwtConfig) -> ApiAuth {
    ApiAuth::from_config(&ApiAuthConfig {
        jwt: Some(jwt),
        ..ApiAuthConfig::default()
    })
    .expect("valid config")
}

/// The standard validator: the API RSA key as an SPKI PEM, the API EC key as a certificate.
fn standard(dir: &TempDir) -> ApiAuth {
    api(pem_config(
        dir,
        &[
            (API_RSA.kid.as_str(), API_RSA.public_pem.as_str()),
            (API_EC.kid.as_str(), API_EC.cert_pem.as_str()),
        ],
    ))
}

async fn validate(auth: &ApiAuth, token: &str) -> Result<Principal, AuthError> {
    auth.authenticate(&bearer(token))
        .await
        .map(|p| p.expect("auth is on"))
}

fn token_error(result: Result<Principal, AuthError>) -> TokenError {
    match result {
        Err(AuthError::InvalidToken(e)) => e,
        other => panic!("expected an invalid token, got {other:?}"),
    }
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    if let Some(map) = claims.as_object_mut() {
        map.remove(key);
    }
    claims
}

#[tokio::test]
async fn rs256_with_public_key_pem() {
    let dir = TempDir::new();
    let auth = standard(&dir);
    let p = validate(&auth, &API_RSA.sign(&api_claims("client-a")))
        .await
        .unwrap();
    assert_eq!(p.kind, PrincipalKind::Jwt);
    assert_eq!(p.subject, "client-a");
    assert_eq!(p.partner_ids, ["comcast"]);
    assert_eq!(p.trust, Some(1000));
    assert_eq!(p.capabilities, ["x1:webpa:api:.*:all"]);
    assert_eq!(p.claims["iss"], "themis");
}

#[tokio::test]
async fn es256_with_certificate_pem() {
    let dir = TempDir::new();
    let auth = standard(&dir);
    let p = validate(&auth, &API_EC.sign(&api_claims("client-ec")))
        .await
        .unwrap();
    assert_eq!(p.subject, "client-ec");
}

#[tokio::test]
async fn rsa_certificate_and_jwks_file() {
    let dir = TempDir::new();
    let auth = api(pem_config(
        &dir,
        &[(API_RSA.kid.as_str(), API_RSA.cert_pem.as_str())],
    ));
    assert!(validate(&auth, &API_RSA.sign(&api_claims("a")))
        .await
        .is_ok());

    let jwks = json!({"keys": [API_RSA.jwk, API_EC.jwk]}).to_string();
    let auth = api(JwtConfig {
        keys: KeysConfig {
            jwks_files: vec![dir.write("keys.json", &jwks)],
            ..KeysConfig::default()
        },
        ..JwtConfig::default()
    });
    assert!(validate(&auth, &API_RSA.sign(&api_claims("a")))
        .await
        .is_ok());
    assert!(validate(&auth, &API_EC.sign(&api_claims("b")))
        .await
        .is_ok());
}

#[tokio::test]
async fn expired_and_leeway() {
    let dir = TempDir::new();
    let auth = standard(&dir);
    let expired = with(api_claims("a"), "exp", json!(now() - 60));
    assert_eq!(
        token_error(validate(&auth, &API_RSA.sign(&expired)).await),
        TokenError::Expired
    );
    // Within the default 5 s leeway.
    let just = with(api_claims("a"), "exp", json!(now() - 2));
    assert!(validate(&auth, &API_RSA.sign(&just)).await.is_ok());

    let strict = api(JwtConfig {
        leeway: Duration::ZERO,
        ..pem_config(&dir, &[(API_RSA.kid.as_str(), API_RSA.public_pem.as_str())])
    });
    assert_eq!(
        token_error(validate(&strict, &API_RSA.sign(&just)).await),
        TokenError::Expired
    );
}

#[tokio::test]
async fn not_yet_valid_and_issued_in_future() {
    let dir = TempDir::new();
    let auth = standard(&dir);
    let early = with(api_claims("a"), "nbf", json!(now() + 60));
    assert_eq!(
        token_error(validate(&auth, &API_RSA.sign(&early)).await),
        TokenError::NotYetValid
    );
    let future = with(api_claims("a"), "iat", json!(now() + 60));
    assert_eq!(
        token_error(validate(&auth, &API_RSA.sign(&future)).await),
        TokenError::IssuedInFuture
    );
}

#[tokio::test]
async fn wrong_key_and_tampering() {
    let dir = TempDir::new();
    let auth = standard(&dir);
    // Signed by another key under the trusted key's kid.
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(API_RSA.kid.clone());
    let forged = OTHER_RSA.sign_with(header, &api_claims("a"));
    assert_eq!(
        token_error(validate(&auth, &forged).await),
        TokenError::BadSignature
    );

    // A valid token whose payload was swapped.
    let good = API_RSA.sign(&api_claims("a"));
    let parts: Vec<&str> = good.split('.').collect();
    let payload = URL_SAFE_NO_PAD.encode(api_claims("admin").to_string());
    let tampered = format!("{}.{}.{}", parts[0], payload, parts[2]);
    assert_eq!(
        token_error(validate(&auth, &tampered).await),
        TokenError::BadSignature
    );
}

#[tokio::test]
async fn alg_none_refused() {
    let dir = TempDir::new();
    let auth = standard(&dir);
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": API_RSA.kid}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(api_claims("a").to_string());
    for token in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}"),
    ] {
        assert_eq!(
            token_error(validate(&auth, &token).await),
            TokenError::Malformed,
            "{token}"
        );
    }
}

#[tokio::test]
async fn hs256_key_confusion_refused() {
    let dir = TempDir::new();
    let auth = standard(&dir);
    // The classic attack: HMAC "signed" with the public key's PEM as the secret.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(API_RSA.kid.clone());
    let secret = EncodingKey::from_secret(API_RSA.public_pem.as_bytes());
    let token = encode(&header, &api_claims("a"), &secret).unwrap();
    assert_eq!(
        token_error(validate(&auth, &token).await),
        TokenError::AlgorithmNotAccepted("HS256".to_owned())
    );
    // And HMAC cannot be configured at all.
    let config = ApiAuthConfig {
        jwt: Some(JwtConfig {
            algorithms: vec![Algorithm::RS256, Algorithm::HS256],
            ..pem_config(&dir, &[(API_RSA.kid.as_str(), API_RSA.public_pem.as_str())])
        }),
        ..ApiAuthConfig::default()
    };
    assert!(matches!(
        ApiAuth::from_config(&config),
        Err(ConfigError::Algorithms(_))
    ));
}

#[tokio::test]
async fn algorithm_must_fit_the_key() {
    let dir = TempDir::new();
    let auth = standard(&dir);
    // ES256 under the RSA key's kid.
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(API_RSA.kid.clone());
    let token = API_EC.sign_with(header, &api_claims("a"));
    assert!(matches!(
        token_error(validate(&auth, &token).await),
        TokenError::AlgorithmKeyMismatch { .. }
    ));
    // An algorithm not in the configured list.
    let rs_only = api(JwtConfig {
        algorithms: vec![Algorithm::RS256],
        ..pem_config(&dir, &[(API_EC.kid.as_str(), API_EC.public_pem.as_str())])
    });
    assert_eq!(
        token_error(validate(&rs_only, &API_EC.sign(&api_claims("a"))).await),
        TokenError::AlgorithmNotAccepted("ES256".to_owned())
    );
}

#[tokio::test]
async fn kid_missing_unknown_and_default() {
    let dir = TempDir::new();
    let auth = standard(&dir);
    let no_kid = API_RSA.sign_with(Header::new(Algorithm::RS256), &api_claims("a"));
    assert_eq!(
        token_error(validate(&auth, &no_kid).await),
        TokenError::MissingKid
    );
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("nobody".to_owned());
    let unknown = API_RSA.sign_with(header, &api_claims("a"));
    assert_eq!(
        token_error(validate(&auth, &unknown).await),
        TokenError::UnknownKid("nobody".to_owned())
    );

    let talaria_style = api(JwtConfig {
        default_kid: Some("current".to_owned()),
        ..pem_config(&dir, &[("current", API_RSA.public_pem.as_str())])
    });
    assert!(validate(&talaria_style, &no_kid).await.is_ok());
}

#[tokio::test]
async fn issuer_and_audience() {
    let dir = TempDir::new();
    let base = || pem_config(&dir, &[(API_RSA.kid.as_str(), API_RSA.public_pem.as_str())]);
    let token = API_RSA.sign(&api_claims("a"));

    // Not configured: the token's `aud` is ignored.
    assert!(validate(&api(base()), &token).await.is_ok());

    let checked = api(JwtConfig {
        issuers: vec!["themis".into()],
        audiences: vec!["other".into(), "XMiDT".into()],
        ..base()
    });
    assert!(validate(&checked, &token).await.is_ok());
    let no_iss = API_RSA.sign(&without(api_claims("a"), "iss"));
    assert_eq!(
        token_error(validate(&checked, &no_iss).await),
        TokenError::MissingClaim("iss".to_owned())
    );

    let wrong_iss = api(JwtConfig {
        issuers: vec!["someone-else".into()],
        ..base()
    });
    assert_eq!(
        token_error(validate(&wrong_iss, &token).await),
        TokenError::Issuer
    );
    let wrong_aud = api(JwtConfig {
        audiences: vec!["devices".into()],
        ..base()
    });
    assert_eq!(
        token_error(validate(&wrong_aud, &token).await),
        TokenError::Audience
    );
}

#[tokio::test]
async fn exp_requirement() {
    let dir = TempDir::new();
    let base = || pem_config(&dir, &[(API_RSA.kid.as_str(), API_RSA.public_pem.as_str())]);
    let forever = API_RSA.sign(&without(api_claims("a"), "exp"));
    assert_eq!(
        token_error(validate(&api(base()), &forever).await),
        TokenError::MissingClaim("exp".to_owned())
    );
    let lax = api(JwtConfig {
        require_exp: false,
        ..base()
    });
    assert!(validate(&lax, &forever).await.is_ok());
}

#[tokio::test]
async fn subject_fallbacks() {
    let dir = TempDir::new();
    let auth = standard(&dir);
    let user = with(without(api_claims("a"), "sub"), "user", json!("alice"));
    assert_eq!(
        validate(&auth, &API_RSA.sign(&user)).await.unwrap().subject,
        "alice"
    );
    let username = with(without(api_claims("a"), "sub"), "username", json!("bob"));
    assert_eq!(
        validate(&auth, &API_RSA.sign(&username))
            .await
            .unwrap()
            .subject,
        "bob"
    );
    let nobody = with(api_claims("a"), "sub", json!(""));
    assert_eq!(
        token_error(validate(&auth, &API_RSA.sign(&nobody)).await),
        TokenError::NoSubject
    );
}

#[tokio::test]
async fn oversized_and_garbage_tokens() {
    let dir = TempDir::new();
    let auth = standard(&dir);
    let huge = with(api_claims("a"), "pad", json!("x".repeat(20_000)));
    assert_eq!(
        token_error(validate(&auth, &API_RSA.sign(&huge)).await),
        TokenError::TooLong
    );
    for garbage in ["abc", "a.b.c", "....", "eyJ.eyJ.sig"] {
        assert_eq!(
            token_error(validate(&auth, garbage).await),
            TokenError::Malformed,
            "{garbage}"
        );
    }
}

#[test]
fn key_file_problems_are_config_errors() {
    let dir = TempDir::new();
    let build = |jwt: JwtConfig| {
        ApiAuth::from_config(&ApiAuthConfig {
            jwt: Some(jwt),
            ..ApiAuthConfig::default()
        })
    };
    let private = pem_config(&dir, &[("k", API_RSA.private_pem.as_str())]);
    match build(private) {
        Err(ConfigError::KeyFormat { reason, .. }) => assert!(reason.contains("private key")),
        other => panic!("private key accepted: {other:?}"),
    }
    let missing = JwtConfig {
        keys: KeysConfig {
            pem_files: BTreeMap::from([("k".to_owned(), dir.0.join("absent.pem"))]),
            ..KeysConfig::default()
        },
        ..JwtConfig::default()
    };
    assert!(matches!(build(missing), Err(ConfigError::KeyFile { .. })));
    assert!(matches!(
        build(JwtConfig::default()),
        Err(ConfigError::Invalid {
            field: "jwt.keys",
            ..
        })
    ));
    let bad_jwks = JwtConfig {
        keys: KeysConfig {
            jwks_files: vec![
                dir.write("bad.json", r#"{"keys":[{"kty":"oct","kid":"h","k":"AA"}]}"#)
            ],
            ..KeysConfig::default()
        },
        ..JwtConfig::default()
    };
    assert!(matches!(
        build(bad_jwks),
        Err(ConfigError::KeyFormat { .. })
    ));
}
