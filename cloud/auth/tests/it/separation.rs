//! Device tokens and API tokens never cross (talaria#568), and the device validator's rules.

use std::collections::BTreeMap;

use http::{HeaderMap, HeaderValue};
use serde_json::json;
use xmidt_auth::{
    ApiAuth, ApiAuthConfig, AuthError, DeviceAuthConfig, DeviceTokenValidator, JwtConfig,
    KeysConfig, PrincipalKind, TokenError,
};

use crate::common::{api_claims, bearer, device_claims, TempDir, TestKey, API_RSA, DEVICE_RSA};

fn keys(dir: &TempDir, key: &TestKey) -> KeysConfig {
    KeysConfig {
        pem_files: BTreeMap::from([(
            key.kid.clone(),
            dir.write(&format!("{}.pem", key.kid), &key.public_pem),
        )]),
        ..KeysConfig::default()
    }
}

fn api_auth(jwt: JwtConfig) -> ApiAuth {
    ApiAuth::from_config(&ApiAuthConfig {
        jwt: Some(jwt),
        ..ApiAuthConfig::default()
    })
    .unwrap()
}

fn device_validator(jwt: Option<JwtConfig>, allow_missing: bool) -> DeviceTokenValidator {
    DeviceTokenValidator::from_config(&DeviceAuthConfig { allow_missing, jwt }).unwrap()
}

#[tokio::test]
async fn separate_keys_keep_tokens_apart() {
    let dir = TempDir::new();
    let api = api_auth(JwtConfig {
        keys: keys(&dir, &API_RSA),
        ..JwtConfig::default()
    });
    let device = device_validator(
        Some(JwtConfig {
            keys: keys(&dir, &DEVICE_RSA),
            ..JwtConfig::default()
        }),
        false,
    );
    let device_token = DEVICE_RSA.sign(&device_claims("mac:112233445566"));
    let api_token = API_RSA.sign(&api_claims("client"));

    // Each validator takes its own kind ...
    let p = device
        .validate(&bearer(&device_token))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.kind, PrincipalKind::DeviceJwt);
    assert_eq!(p.subject, "mac:112233445566");
    assert_eq!(p.partner_ids, ["comcast"]);
    assert_eq!(p.trust, Some(1000));
    let p = api
        .authenticate(&bearer(&api_token))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.kind, PrincipalKind::Jwt);

    // ... and refuses the other.
    let err = api.authenticate(&bearer(&device_token)).await.unwrap_err();
    assert!(
        matches!(err, AuthError::InvalidToken(TokenError::UnknownKid(_))),
        "{err:?}"
    );
    let err = device.validate(&bearer(&api_token)).await.unwrap_err();
    assert!(
        matches!(err, AuthError::InvalidToken(TokenError::UnknownKid(_))),
        "{err:?}"
    );
}

#[tokio::test]
async fn one_issuer_key_separated_by_audience() {
    // One themis key signs both kinds; the audiences tell them apart.
    let dir = TempDir::new();
    let api = api_auth(JwtConfig {
        audiences: vec!["api".into()],
        keys: keys(&dir, &API_RSA),
        ..JwtConfig::default()
    });
    let device = device_validator(
        Some(JwtConfig {
            audiences: vec!["devices".into()],
            keys: keys(&dir, &API_RSA),
            ..JwtConfig::default()
        }),
        false,
    );
    let mut d = device_claims("mac:112233445566");
    d["aud"] = json!("devices");
    let mut a = api_claims("client");
    a["aud"] = json!(["api"]);
    let (device_token, api_token) = (API_RSA.sign(&d), API_RSA.sign(&a));

    assert!(device.validate(&bearer(&device_token)).await.is_ok());
    assert!(api.authenticate(&bearer(&api_token)).await.is_ok());
    let err = api.authenticate(&bearer(&device_token)).await.unwrap_err();
    assert!(matches!(err, AuthError::InvalidToken(TokenError::Audience)));
    let err = device.validate(&bearer(&api_token)).await.unwrap_err();
    assert!(matches!(err, AuthError::InvalidToken(TokenError::Audience)));
}

#[tokio::test]
async fn device_validator_rules() {
    let dir = TempDir::new();
    let jwt = || {
        Some(JwtConfig {
            keys: keys(&dir, &DEVICE_RSA),
            ..JwtConfig::default()
        })
    };
    let strict = device_validator(jwt(), false);
    let open = device_validator(jwt(), true);
    let none = HeaderMap::new();

    assert!(matches!(
        strict.validate(&none).await,
        Err(AuthError::MissingCredentials)
    ));
    assert!(matches!(open.validate(&none).await, Ok(None)));

    // A header that is present must be valid, allow_missing or not.
    let mut expired = device_claims("mac:112233445566");
    expired["exp"] = json!(1);
    let err = open
        .validate(&bearer(&DEVICE_RSA.sign(&expired)))
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::InvalidToken(TokenError::Expired)));

    let mut basic = HeaderMap::new();
    basic.insert(
        "authorization",
        HeaderValue::from_static("Basic dXNlcjpwYXNz"),
    );
    assert!(matches!(
        open.validate(&basic).await,
        Err(AuthError::SchemeNotAccepted("Basic"))
    ));

    // Device tokens must name the device in `sub`; `user` is an API-token fallback only.
    let mut no_sub = device_claims("mac:112233445566");
    no_sub.as_object_mut().map(|m| m.remove("sub"));
    no_sub["user"] = json!("someone");
    let err = strict
        .validate(&bearer(&DEVICE_RSA.sign(&no_sub)))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        AuthError::InvalidToken(TokenError::NoSubject)
    ));
}

#[tokio::test]
async fn no_device_jwt_configured_means_unauthenticated_devices() {
    let validator = device_validator(None, false);
    assert!(matches!(
        validator.validate(&HeaderMap::new()).await,
        Ok(None)
    ));
    assert!(matches!(
        validator.validate(&bearer("whatever")).await,
        Ok(None)
    ));
}
