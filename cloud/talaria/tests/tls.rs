//! wss: talaria terminates TLS and accepts exactly the handshake embedded-tls devices make
//! (TLS 1.3, secp256r1 key exchange, AES-128-GCM, an ECDSA P-256 certificate).

mod common;

use std::sync::Arc;

use common::*;
use tokio_rustls::rustls::crypto::aws_lc_rs::{cipher_suite, default_provider, kx_group};
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::{version, ClientConfig, RootCertStore};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::Connector;
use wrp_nostd::{MessageType, OwnedMessage};

#[tokio::test]
async fn embedded_tls_parameters_are_accepted() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("P-256 cert");
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();

    let mut t = start(|c| {
        c.tls = Some(xmidt_talaria::config::TlsConfig {
            cert: cert_path.clone(),
            key: key_path.clone(),
        })
    })
    .await;

    // A client limited to what embedded-tls offers.
    let provider = CryptoProvider {
        cipher_suites: vec![cipher_suite::TLS13_AES_128_GCM_SHA256],
        kx_groups: vec![kx_group::SECP256R1],
        ..default_provider()
    };
    let mut roots = RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let client = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();

    let mut request = format!("wss://localhost:{}/api/v2/device", t.addr.port())
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("X-Webpa-Device-Name", "mac:112233445566".parse().unwrap());
    let tcp = tokio::net::TcpStream::connect(t.addr).await.unwrap();
    let (mut ws, _) = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::client_async_tls_with_config(
            request,
            tcp,
            None,
            Some(Connector::Rustls(Arc::new(client))),
        ),
    )
    .await
    .unwrap()
    .expect("wss handshake");
    event_ending(&mut t.events, "/online").await;
    let event = OwnedMessage::builder(MessageType::SimpleEvent)
        .source("mac:112233445566")
        .dest("event:over-tls")
        .build();
    send_wrp(&mut ws, &event).await;
    assert_eq!(
        event_ending(&mut t.events, "over-tls").await.dest,
        "event:over-tls"
    );

    // Plain HTTP on the TLS port gets nowhere.
    let plain = reqwest::get(format!("http://127.0.0.1:{}/health", t.addr.port())).await;
    assert!(plain.is_err());
}
