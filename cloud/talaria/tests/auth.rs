//! Credentials: device tokens on the connect route, API credentials on the API, never mixed.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use rcgen::KeyPair;
use reqwest::StatusCode;
use xmidt_auth::{DeviceAuthConfig, JwtConfig};

const ID: &str = "mac:112233445566";

struct DeviceKey {
    encoding: EncodingKey,
    _dir: tempfile::TempDir,
    pem_path: std::path::PathBuf,
}

/// An ES256 key as themis would sign device tokens with, its public half in a PEM file.
fn device_key() -> DeviceKey {
    let pair = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let encoding = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pem_path = dir.path().join("current.pem");
    std::fs::write(&pem_path, pair.public_key_pem()).unwrap();
    DeviceKey {
        encoding,
        _dir: dir,
        pem_path,
    }
}

fn token(key: &DeviceKey, claims: serde_json::Value) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut claims = claims;
    claims["exp"] = (now + 600).into();
    claims["iat"] = now.into();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("current".into());
    encode(&header, &claims, &key.encoding).unwrap()
}

fn device_auth(key: &DeviceKey) -> DeviceAuthConfig {
    let mut jwt = JwtConfig {
        algorithms: vec![Algorithm::ES256],
        ..JwtConfig::default()
    };
    jwt.keys
        .pem_files
        .insert("current".into(), key.pem_path.clone());
    DeviceAuthConfig {
        allow_missing: false,
        jwt: Some(jwt),
    }
}

fn status(e: tokio_tungstenite::tungstenite::Error) -> u16 {
    match e {
        tokio_tungstenite::tungstenite::Error::Http(r) => r.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

#[tokio::test]
async fn device_tokens_are_checked_and_their_claims_used() {
    let key = device_key();
    let mut t = start(|c| {
        c.device_auth = device_auth(&key);
        c.api_auth.basic = vec!["user:pass".into()];
    })
    .await;

    let missing = connect(t.addr, &[("X-Webpa-Device-Name", ID)])
        .await
        .unwrap_err();
    assert_eq!(status(missing), 401);
    let forged = format!(
        "Bearer {}",
        token(&device_key(), serde_json::json!({"sub": "x"}))
    );
    let bad = connect(
        t.addr,
        &[("X-Webpa-Device-Name", ID), ("Authorization", &forged)],
    )
    .await;
    assert_eq!(status(bad.unwrap_err()), 401);

    let good = format!(
        "Bearer {}",
        token(
            &key,
            serde_json::json!({"sub": "device", "partner-id": "comcast", "trust": 1000, "device-id": "mac:aa-bb-cc-dd-ee-ff"})
        )
    );
    let _ws = connect(
        t.addr,
        &[("X-Webpa-Device-Name", ID), ("Authorization", &good)],
    )
    .await
    .unwrap();
    // The device-id claim wins over the header.
    let online = event_ending(&mut t.events, "/online").await;
    assert_eq!(online.dest, "event:device-status/mac:aabbccddeeff/online");
    assert_eq!(online.partner_ids, ["comcast"]);
    assert_eq!(online.metadata["/trust"], "1000");
    assert!(t.talaria.registry.get("mac:aabbccddeeff").is_some());

    // That device token opens nothing on the API.
    let r = reqwest::Client::new()
        .get(format!("http://{}/api/v2/devices", t.addr))
        .header("Authorization", &good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn devices_without_tokens_connect_when_allowed() {
    let key = device_key();
    let t = start(|c| {
        c.device_auth = device_auth(&key);
        c.device_auth.allow_missing = true;
    })
    .await;
    let _ws = device(t.addr, ID).await;
    // A token that is present must still be valid.
    let forged = format!(
        "Bearer {}",
        token(&device_key(), serde_json::json!({"sub": "x"}))
    );
    let bad = connect(
        t.addr,
        &[
            ("X-Webpa-Device-Name", "mac:aabbccddeeff"),
            ("Authorization", &forged),
        ],
    )
    .await;
    assert_eq!(status(bad.unwrap_err()), 401);
}

#[tokio::test]
async fn api_routes_need_basic_credentials_when_configured() {
    let t = start(|c| c.api_auth.basic = vec!["user:pass".into()]).await;
    let client = reqwest::Client::new();
    let url = format!("http://{}/api/v2/devices", t.addr);
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let r = client
        .get(&url)
        .basic_auth("user", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client
        .get(&url)
        .basic_auth("user", Some("pass"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let send = client
        .post(format!("http://{}/api/v3/device/send", t.addr))
        .header("Content-Type", "application/msgpack")
        .body(vec![0x80])
        .send()
        .await
        .unwrap();
    assert_eq!(send.status(), 401);
    // Devices are not asked for API credentials.
    let _ws = device(t.addr, ID).await;
    assert_eq!(
        client
            .get(format!("http://{}/health", t.addr))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}
