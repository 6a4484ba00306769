//! The firmware client (the same `run` a board runs, TLS and WebSocket included) over tokio TCP,
//! against the real talaria and petasos on 127.0.0.1.

mod common;

use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use embassy_sync::channel::Channel;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use wrp_nostd::{MessageType, OwnedMessage};
use xmidt_auth::{DeviceAuthConfig, JwtConfig};
use xmidt_firmware::{Config, Event, Events, Message, Service};

fn retrieve(dest: String, id: &str) -> OwnedMessage {
    OwnedMessage::builder(MessageType::Retrieve)
        .source("dns:host-test")
        .dest(dest)
        .transaction_uuid(id)
        .build()
}

#[tokio::test]
async fn over_wss_through_petasos_it_answers_sends_events_and_reconnects() {
    let mut cloud = Cloud::start().await;
    let ca = cloud.pki.ca_der.clone();
    let url = format!("http://127.0.0.1:{}", cloud.petasos_addr.port());
    let config = Config {
        hw_model: "qemu-host",
        fw_name: "host-test",
        ..Config::new(&url, MAC, &ca)
    };
    let events: Events<4> = Channel::new();
    let mut service = ConfigService;
    let mut services: [&mut dyn Service; 1] = [&mut service];
    let mut connector = Tokio::new();
    let device = xmidt_firmware::run(
        &config,
        &mut connector,
        ChaCha20Rng::seed_from_u64(1),
        &mut services,
        events.dyn_receiver(),
    );

    let test = async {
        // petasos answered 307 to https://localhost:<talaria>, which the device followed.
        eventually("the device on talaria", || cloud.is_connected(DEVICE)).await;
        let online = cloud.event_ending("/online").await;
        assert_eq!(online.dest, format!("event:device-status/{DEVICE}/online"));

        // The core answers for the `parodus` service.
        let answer = cloud
            .ask(&retrieve(format!("{DEVICE}/parodus/hw-model"), "t-hw"))
            .await;
        assert_eq!(answer.status, Some(200));
        assert_eq!(answer.transaction_uuid, "t-hw");
        assert_eq!(answer.payload, br#"{"hw-model":"qemu-host"}"#);

        // A registered Rust service answers through its Reply.
        let mut request = retrieve(format!("{DEVICE}/config"), "t-config");
        request.msg_type = MessageType::SimpleRequestResponse;
        request.payload = b"ping".to_vec();
        let answer = cloud.ask(&request).await;
        assert_eq!(answer.status, Some(200));
        assert_eq!(answer.source, format!("{DEVICE}/config"));
        assert_eq!(answer.payload, b"config answers ping....");

        // An event from the application reaches talaria's event receiver, metadata merged.
        let event = Event::new(&Message {
            source: "mac:525400123456/demo",
            dest: "event:host-test/heartbeat",
            content_type: "application/json",
            payload: b"{\"n\":1}",
            ..Message::new(MessageType::SimpleEvent)
        })
        .unwrap();
        events.send(event).await;
        let got = cloud.event_ending("/heartbeat").await;
        assert_eq!(got.source, "mac:525400123456/demo");
        assert_eq!(got.payload, b"{\"n\":1}");
        assert_eq!(
            got.metadata.get("hw-model").map(String::as_str),
            Some("qemu-host")
        );

        // talaria goes away and comes back: the device finds it again through petasos.
        cloud.restart_talaria().await;
        eventually("the device back on the new talaria", || {
            cloud.is_connected(DEVICE)
        })
        .await;
        let answer = cloud
            .ask(&retrieve(format!("{DEVICE}/parodus/cloud-status"), "t-up"))
            .await;
        assert_eq!(answer.payload, br#"{"cloud-status":"online"}"#);
    };
    tokio::select! {
        r = device => panic!("the client stopped: {r:?}"),
        () = test => {}
    }
}

#[tokio::test]
async fn the_certificate_chain_and_the_host_name_are_verified() {
    let cloud = Cloud::start().await;
    let port = cloud.talaria_addr.port();
    let ca = cloud.pki.ca_der.clone();
    let stranger = Pki::new(&["localhost"]).ca_der;
    let by_name = format!("https://localhost:{port}");
    // The certificate names "localhost" only: 127.0.0.1 is another host.
    let by_address = format!("https://127.0.0.1:{port}");
    let good = Config::new(&by_name, [0x52, 0x54, 0, 0, 0, 0x0c], &ca);
    let wrong_ca = Config::new(&by_name, [0x52, 0x54, 0, 0, 0, 0x0b], &stranger);
    let wrong_host = Config::new(&by_address, [0x52, 0x54, 0, 0, 0, 0x0a], &ca);

    let mut connectors = [Tokio::new(), Tokio::new(), Tokio::new()];
    let counts: Vec<_> = connectors.iter().map(|c| c.connects.clone()).collect();
    let devices = run_clients([&good, &wrong_ca, &wrong_host], &mut connectors, 2);
    let test = async {
        eventually("the well configured device online", || {
            cloud.is_connected("mac:52540000000c")
        })
        .await;
        // Both others reach talaria's port twice (the first try and one after the backoff)
        // and are never let in.
        let deadline = tokio::time::Instant::now() + WAIT;
        while counts[1].load(Ordering::SeqCst) < 2 || counts[2].load(Ordering::SeqCst) < 2 {
            assert!(
                !cloud.is_connected("mac:52540000000b"),
                "a CA it was not given"
            );
            assert!(
                !cloud.is_connected("mac:52540000000a"),
                "a host name not in the certificate"
            );
            assert!(
                tokio::time::Instant::now() < deadline,
                "the refused devices did not try again"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(!cloud.is_connected("mac:52540000000b"));
        assert!(!cloud.is_connected("mac:52540000000a"));
        assert_eq!(
            counts[0].load(Ordering::SeqCst),
            1,
            "connected at the first try"
        );
    };
    tokio::select! {
        () = devices => {}
        () = test => {}
    }
}

/// An ES256 device key as themis would sign tokens with: talaria's device authentication with
/// its public half, and a token for `device_id` with a partner id.
fn device_key(dir: &std::path::Path, device_id: &str) -> (DeviceAuthConfig, String) {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let public = dir.join("current.pem");
    std::fs::write(&public, pair.public_key_pem()).unwrap();
    let mut jwt = JwtConfig {
        algorithms: vec![Algorithm::ES256],
        ..JwtConfig::default()
    };
    jwt.keys.pem_files.insert("current".into(), public);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "sub": "client:device", "device-id": device_id, "partner-id": "acme",
        "iat": now, "exp": now + 600,
    });
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("current".into());
    let key = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap();
    let token = encode(&header, &claims, &key).unwrap();
    let auth = DeviceAuthConfig {
        allow_missing: false,
        jwt: Some(jwt),
    };
    (auth, token)
}

#[tokio::test]
async fn a_provisioned_token_opens_a_talaria_that_requires_one() {
    let keys = tempfile::tempdir().unwrap();
    let (device_auth, token) = device_key(keys.path(), "mac:52540000000d");
    let mut cloud = Cloud::start_with(device_auth).await;
    let ca = cloud.pki.ca_der.clone();
    let url = format!("http://127.0.0.1:{}", cloud.petasos_addr.port());
    let with_token = Config {
        token: &token,
        ..Config::new(&url, [0x52, 0x54, 0, 0, 0, 0x0d], &ca)
    };
    let without = Config::new(&url, [0x52, 0x54, 0, 0, 0, 0x0e], &ca);
    let mut connectors = [Tokio::new(), Tokio::new()];
    let refused = connectors[1].connects.clone();
    let devices = run_clients([&with_token, &without], &mut connectors, 5);
    let test = async {
        eventually("the device with a token online", || {
            cloud.is_connected("mac:52540000000d")
        })
        .await;
        // The token's claims reached talaria: its partner id is on the online event.
        let online = cloud.event_ending("/online").await;
        assert_eq!(online.dest, "event:device-status/mac:52540000000d/online");
        assert_eq!(online.partner_ids, ["acme"]);
        // The device without one reaches petasos and talaria (2 connects) again and again,
        // and is never let in.
        eventually("the device without a token to try twice", || {
            refused.load(Ordering::SeqCst) >= 4
        })
        .await;
        assert!(!cloud.is_connected("mac:52540000000e"));
    };
    tokio::select! {
        () = devices => {}
        () = test => {}
    }
}
