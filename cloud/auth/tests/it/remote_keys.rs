//! Keys from a JWKS URL and a themis-style key URL, served by a real local server.

use std::time::Duration;

use http::StatusCode;
use jsonwebtoken::{Algorithm, Header};
use serde_json::json;
use tokio::time::{sleep, Instant};
use xmidt_auth::{
    ApiAuth, ApiAuthConfig, AuthError, ConfigError, JwtConfig, KeyFetchError, KeysConfig,
    Principal, TokenError,
};

use crate::common::{api_claims, bearer, closed_port, KeyServer, API_EC, API_RSA, OTHER_RSA};

fn api(keys: KeysConfig) -> ApiAuth {
    ApiAuth::from_config(&ApiAuthConfig {
        jwt: Some(JwtConfig {
            keys,
            ..JwtConfig::default()
        }),
        ..ApiAuthConfig::default()
    })
    .expect("valid config")
}

fn jwks_keys(url: String) -> KeysConfig {
    KeysConfig {
        jwks_url: Some(url),
        ..KeysConfig::default()
    }
}

async fn validate(auth: &ApiAuth, token: &str) -> Result<Principal, AuthError> {
    auth.authenticate(&bearer(token))
        .await
        .map(|p| p.expect("auth is on"))
}

/// Waits (bounded) until `f` holds; the refresher runs in the background.
async fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        sleep(Duration::from_millis(20)).await;
    }
}

fn signed_as(kid: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    API_RSA.sign_with(header, &api_claims("a"))
}

#[tokio::test]
async fn unknown_kid_refetches_jwks() {
    let server = KeyServer::start(json!({"keys": [API_RSA.jwk]})).await;
    let auth = api(KeysConfig {
        min_refetch_interval: Duration::ZERO,
        ..jwks_keys(server.url("/jwks.json"))
    });
    assert!(validate(&auth, &API_RSA.sign(&api_claims("a")))
        .await
        .is_ok());

    // The issuer rotates in a new key; the first token naming it causes a refetch.
    let before = server.jwks_hits();
    server.set_jwks(json!({"keys": [API_RSA.jwk, API_EC.jwk]}));
    assert!(validate(&auth, &API_EC.sign(&api_claims("b")))
        .await
        .is_ok());
    assert!(server.jwks_hits() > before);
}

#[tokio::test]
async fn refetch_is_rate_limited() {
    let server = KeyServer::start(json!({"keys": [API_RSA.jwk]})).await;
    let auth = api(KeysConfig {
        min_refetch_interval: Duration::from_secs(3600),
        ..jwks_keys(server.url("/jwks.json"))
    });
    eventually("the first JWKS fetch", || server.jwks_hits() >= 1).await;

    // The first unknown kid may fetch once ...
    assert_eq!(
        validate(&auth, &signed_as("ghost-1"))
            .await
            .unwrap_err()
            .to_string(),
        "invalid token: unknown key id \"ghost-1\""
    );
    let after_first = server.jwks_hits();
    // ... then made-up kids are refused without touching the server.
    for i in 2..20 {
        let err = validate(&auth, &signed_as(&format!("ghost-{i}")))
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            AuthError::InvalidToken(TokenError::UnknownKid(_))
        ));
    }
    assert_eq!(server.jwks_hits(), after_first);
    // Known keys keep working.
    assert!(validate(&auth, &API_RSA.sign(&api_claims("a")))
        .await
        .is_ok());
}

#[tokio::test]
async fn refreshed_on_interval_and_removed_keys_drop_out() {
    let server = KeyServer::start(json!({"keys": [API_RSA.jwk]})).await;
    let auth = api(KeysConfig {
        refresh_interval: Duration::from_millis(50),
        min_refetch_interval: Duration::from_secs(3600),
        ..jwks_keys(server.url("/jwks.json"))
    });
    eventually("three periodic fetches", || server.jwks_hits() >= 3).await;
    assert!(validate(&auth, &API_RSA.sign(&api_claims("a")))
        .await
        .is_ok());

    // The issuer revokes the key; after the next refresh it is no longer accepted.
    server.set_jwks(json!({"keys": [OTHER_RSA.jwk]}));
    let seen = server.jwks_hits();
    eventually("a refresh after the revocation", || {
        server.jwks_hits() >= seen + 2
    })
    .await;
    let err = validate(&auth, &API_RSA.sign(&api_claims("a")))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        AuthError::InvalidToken(TokenError::UnknownKid(_))
    ));
    assert!(validate(&auth, &OTHER_RSA.sign(&api_claims("a")))
        .await
        .is_ok());
}

#[tokio::test]
async fn jwks_server_down_is_a_clear_503() {
    let addr = closed_port().await;
    let url = format!("http://{addr}/jwks.json");
    let auth = api(KeysConfig {
        fetch_timeout: Duration::from_secs(2),
        ..jwks_keys(url.clone())
    });
    let err = validate(&auth, &API_RSA.sign(&api_claims("a")))
        .await
        .unwrap_err();
    assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        matches!(&err, AuthError::KeyUnavailable(KeyFetchError::Request { url: u, .. }) if *u == url),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with("signing key unavailable: GET http://127.0.0.1:")
            && text.contains("tcp connect error"),
        "{text}"
    );
}

#[tokio::test]
async fn jwks_http_error_status() {
    let server = KeyServer::start(json!({})).await;
    let auth = api(jwks_keys(server.url("/missing")));
    let err = validate(&auth, &API_RSA.sign(&api_claims("a")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, AuthError::KeyUnavailable(KeyFetchError::Status { status, .. }) if status == StatusCode::NOT_FOUND),
        "{err:?}"
    );
}

#[tokio::test]
async fn oversized_response_refused() {
    let server = KeyServer::start(json!({})).await;
    let auth = api(jwks_keys(server.url("/big")));
    let err = validate(&auth, &API_RSA.sign(&api_claims("a")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, AuthError::KeyUnavailable(KeyFetchError::TooLarge { limit, .. }) if limit == 1 << 20),
        "{err:?}"
    );
}

#[tokio::test]
async fn slow_server_times_out() {
    let server = KeyServer::start(json!({})).await;
    let auth = api(KeysConfig {
        fetch_timeout: Duration::from_millis(300),
        ..jwks_keys(server.url("/slow"))
    });
    let started = Instant::now();
    let err = validate(&auth, &API_RSA.sign(&api_claims("a")))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AuthError::KeyUnavailable(KeyFetchError::Request { .. })
        ),
        "{err:?}"
    );
    // Generous bound: the background fetch may hold the gate for one timeout first.
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn not_a_jwks_document() {
    let server = KeyServer::start(json!({"hello": "world"})).await;
    let auth = api(jwks_keys(server.url("/jwks.json")));
    let err = validate(&auth, &API_RSA.sign(&api_claims("a")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, AuthError::KeyUnavailable(KeyFetchError::Parse { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn themis_key_url_serves_pem() {
    let server = KeyServer::start(json!({})).await;
    server.add_pem("docker", &API_RSA.public_pem);
    let auth = api(KeysConfig {
        key_url_template: Some(server.url("/keys/{keyID}")),
        min_refetch_interval: Duration::ZERO,
        ..KeysConfig::default()
    });
    let token = signed_as("docker");
    assert!(validate(&auth, &token).await.is_ok());
    assert!(validate(&auth, &token).await.is_ok());
    assert_eq!(server.key_hits(), 1, "a fetched key is kept");

    // 404 from the key server: an unknown key, not an outage.
    let err = validate(&auth, &signed_as("nope")).await.unwrap_err();
    assert!(
        matches!(err, AuthError::InvalidToken(TokenError::UnknownKid(_))),
        "{err:?}"
    );
    assert_eq!(server.key_hits(), 2);

    // A kid that would change the URL's shape is never fetched.
    for kid in ["../admin", "a/b", "x?y=1"] {
        let err = validate(&auth, &signed_as(kid)).await.unwrap_err();
        assert!(matches!(
            err,
            AuthError::InvalidToken(TokenError::UnknownKid(_))
        ));
    }
    assert_eq!(server.key_hits(), 2);
}

#[test]
fn url_checks_and_jwks_url_needs_runtime() {
    let build = |keys: KeysConfig| {
        ApiAuth::from_config(&ApiAuthConfig {
            jwt: Some(JwtConfig {
                keys,
                ..JwtConfig::default()
            }),
            ..ApiAuthConfig::default()
        })
    };
    assert!(matches!(
        build(KeysConfig {
            key_url_template: Some("http://themis:6500/keys/current".into()),
            ..KeysConfig::default()
        }),
        Err(ConfigError::Invalid { .. })
    ));
    for url in [
        "not a url",
        "ftp://keys.example.com/jwks.json",
        "file:///etc/jwks.json",
    ] {
        assert!(
            matches!(
                build(jwks_keys(url.into())),
                Err(ConfigError::Invalid { .. })
            ),
            "{url}"
        );
    }
    // Outside any tokio runtime.
    assert!(matches!(
        build(jwks_keys("http://127.0.0.1:1/jwks.json".into())),
        Err(ConfigError::NoRuntime)
    ));
}
