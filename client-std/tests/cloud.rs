//! Against our cloud: a real talaria behind a real petasos, on loopback. Requests through the
//! talaria API reach an in-process service and come back with the device metadata; CRUD is
//! answered by the device; events reach the event receiver; QoS events wait while offline and
//! are acked; wss and the token's mTLS work with the configured CA.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use wrp_nostd::{MessageType, OwnedMessage};
use xmidt_discovery::{Discovery, DiscoveryConfig};
use xmidt_talaria::Talaria;

struct Cloud {
    talaria: Arc<Talaria>,
    addr: SocketAddr,
    petasos: SocketAddr,
    events: mpsc::UnboundedReceiver<OwnedMessage>,
    _stop: tokio_util::sync::DropGuard,
}

/// An event receiver, a talaria that pings every 200 ms, and a petasos in front of it.
async fn cloud(tune: impl FnOnce(&mut xmidt_talaria::Config)) -> Cloud {
    let stop = CancellationToken::new();
    let (tx, events) = mpsc::unbounded_channel();
    let receiver = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver_addr = receiver.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/api/v4/notify",
        axum::routing::post(move |body: Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(decode(&body));
                axum::http::StatusCode::ACCEPTED
            }
        }),
    );
    tokio::spawn(async move { axum::serve(receiver, app).await });

    let mut config = xmidt_talaria::Config::default();
    config.outbound.event_endpoints.insert(
        "default".into(),
        vec![format!("http://{receiver_addr}/api/v4/notify")],
    );
    config.device.ping_period = Duration::from_millis(200);
    config.device.idle_period = Duration::from_secs(2);
    config.api.request_timeout = Duration::from_secs(5);
    tune(&mut config);
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let talaria = Talaria::new(config, stop.clone()).unwrap();
    tokio::spawn(xmidt_talaria::serve(
        talaria.clone(),
        listener,
        None,
        stop.clone(),
    ));

    let ring = Discovery::start(DiscoveryConfig {
        fixed: vec![format!("{scheme}://127.0.0.1:{}", addr.port())],
        default_scheme: scheme.into(),
        ..DiscoveryConfig::default()
    })
    .await
    .unwrap();
    let petasos_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let petasos = petasos_listener.local_addr().unwrap();
    tokio::spawn(xmidt_petasos::serve(
        Arc::new(ring),
        petasos_listener,
        stop.clone(),
    ));
    Cloud {
        talaria,
        addr,
        petasos,
        events,
        _stop: stop.drop_guard(),
    }
}

/// Sends `m` through talaria's API and returns the device's answer.
async fn ask(talaria: SocketAddr, m: OwnedMessage) -> OwnedMessage {
    let r = reqwest::Client::new()
        .post(format!("http://{talaria}/api/v3/device/send"))
        .header("Content-Type", "application/msgpack")
        .header("Accept", "application/msgpack")
        .body(encode(&m))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{m:?}");
    decode(&r.bytes().await.unwrap())
}

async fn event_to(events: &mut mpsc::UnboundedReceiver<OwnedMessage>, dest: &str) -> OwnedMessage {
    loop {
        let m = tokio::time::timeout(WAIT, events.recv())
            .await
            .expect("an event in time")
            .unwrap();
        if m.dest == dest {
            return m;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_crud_and_events_through_petasos_and_talaria() {
    let mut cloud = cloud(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&format!("http://{}", cloud.petasos));
    cfg.ping_timeout_secs = 1;
    cfg.crud_config_file = Some(dir.path().join("parodus_cfg.json"));
    let (device, _stop) = spawn(cfg);
    let mut service = device.register("config").await.unwrap();
    status_until(&device, "online", |s| s.online).await;
    let online = event_to(
        &mut cloud.events,
        &format!("event:device-status/{DEVICE}/online"),
    )
    .await;
    assert_eq!(online.source, "dns:talaria");
    assert!(cloud.talaria.registry.get(DEVICE).is_some());

    // A request to the service, answered by it.
    let asking = tokio::spawn(ask(
        cloud.addr,
        request(&format!("{DEVICE}/config/x"), "t-1"),
    ));
    let got = decode(
        &tokio::time::timeout(WAIT, service.recv())
            .await
            .unwrap()
            .unwrap(),
    );
    assert_eq!(
        (got.dest.as_str(), got.transaction_uuid.as_str()),
        ("mac:112233445566/config/x", "t-1")
    );
    let answer = OwnedMessage::builder(MessageType::SimpleRequestResponse)
        .source(got.dest.clone())
        .dest(got.source.clone())
        .transaction_uuid("t-1")
        .payload(b"answered".to_vec())
        .metadata("own", "kept")
        .build();
    service.send(encode(&answer)).await.unwrap();
    let answer = asking.await.unwrap();
    assert_eq!(answer.payload, b"answered");
    assert_eq!(
        metadata(&answer, "own"),
        Some("kept"),
        "merged, not replaced"
    );
    assert_eq!(metadata(&answer, "hw-model"), Some("TG1682"));
    assert_eq!(metadata(&answer, "hw-mac"), Some("112233445566"));
    assert_eq!(
        metadata(&answer, "webpa-last-reconnect-reason"),
        Some("webpa_process_starts")
    );

    // No such service: parodus's 531.
    let answer = ask(cloud.addr, request(&format!("{DEVICE}/nosuch"), "t-2")).await;
    assert_eq!(
        answer.payload,
        br#"{"statusCode":531,"message":"Service Unavailable"}"#
    );
    assert_eq!(answer.source, format!("{DEVICE}/nosuch"));

    // The device's own CRUD service, and tags kept in the file.
    let crud = |t: MessageType, path: &str, tuuid: &str, payload: &[u8]| {
        OwnedMessage::builder(t)
            .source("dns:scytale")
            .dest(format!("{DEVICE}/parodus/{path}"))
            .transaction_uuid(tuuid)
            .payload(payload.to_vec())
            .build()
    };
    let answer = ask(
        cloud.addr,
        crud(MessageType::Retrieve, "hw-model", "t-3", b""),
    )
    .await;
    assert_eq!(
        (answer.status, answer.payload.as_slice()),
        (Some(200), &br#"{"hw-model":"TG1682"}"#[..])
    );
    let answer = ask(
        cloud.addr,
        crud(MessageType::Retrieve, "service-status/config", "t-4", b""),
    )
    .await;
    assert_eq!(answer.payload, br#"{"service-status":"online"}"#);
    let tag = br#"{"expires":1700000000}"#;
    let answer = ask(cloud.addr, crud(MessageType::Create, "tag/t1", "t-5", tag)).await;
    assert_eq!(
        (answer.status, answer.payload.as_slice()),
        (Some(201), &br#"{"t1":{"expires":1700000000}}"#[..])
    );
    let answer = ask(cloud.addr, crud(MessageType::Retrieve, "tags", "t-6", b"")).await;
    assert_eq!(answer.payload, br#"{"t1":{"expires":1700000000}}"#);
    let stored = std::fs::read_to_string(dir.path().join("parodus_cfg.json")).unwrap();
    assert_eq!(stored, r#"{"tags":{"t1":{"expires":1700000000}}}"#);

    // An event from the service reaches the event receiver (talaria sets its partner ids).
    let event = OwnedMessage::builder(MessageType::SimpleEvent)
        .source(format!("{DEVICE}/config"))
        .dest("event:config-changed")
        .payload(b"{}".to_vec())
        .build();
    service.send(encode(&event)).await.unwrap();
    let event = event_to(&mut cloud.events, "event:config-changed").await;
    assert_eq!(metadata(&event, "fw-name"), Some("TG1682_DEV_test"));

    // talaria's 200 ms pings kept the 1 s ping timeout from firing all along.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let s = *device.status().borrow();
    assert_eq!(
        (s.online, s.stats.connects, s.stats.ping_misses),
        (true, 1, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos_events_wait_while_offline_and_are_acked() {
    let mut cloud = cloud(|_| {}).await;
    cloud.talaria.gate.set(false);
    let (device, _stop) = spawn(config(&format!("http://{}", cloud.addr)));
    status_until(&device, "a refused connect", |s| {
        s.stats.connect_failures >= 1
    })
    .await;

    let event = |qos: i64, dest: &str| {
        OwnedMessage::builder(MessageType::SimpleEvent)
            .source(DEVICE)
            .dest(dest)
            .qos(qos)
            .build()
    };
    device.send(encode(&event(50, "event:kept"))).await.unwrap();
    device.send(encode(&event(0, "event:lost"))).await.unwrap();
    status_until(&device, "one queued, one dropped", |s| {
        s.qos_queued == 1 && s.stats.offline_drops == 1
    })
    .await;

    cloud.talaria.gate.set(true);
    let kept = event_to(&mut cloud.events, "event:kept").await;
    assert_eq!(kept.qos, 50);
    assert!(
        !kept.transaction_uuid.is_empty(),
        "a QoS event gets a transaction_uuid"
    );
    let s = status_until(&device, "the ack", |s| s.stats.qos_acked == 1).await;
    assert_eq!(s.qos_queued, 0);
}

/// A CA, and a certificate for `localhost` and a client certificate it signed, as PEM.
struct Pki {
    ca: String,
    server: (String, String),
    client: String,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let server = leaf("localhost");
    let (cert, key) = leaf("device");
    Pki {
        ca: ca.pem(),
        server,
        client: format!("{cert}{key}"),
    }
}

/// A themis over TLS that requires a client certificate from `ca`: it answers one GET with
/// `token` and reports whether the client presented a certificate.
async fn mtls_themis(pki: &Pki, token: &'static str) -> (String, mpsc::UnboundedReceiver<bool>) {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca.as_bytes()).unwrap())
        .unwrap();
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider.clone())
            .build()
            .unwrap();
    let chain = vec![CertificateDer::from_pem_slice(pki.server.0.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(pki.server.1.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://localhost:{}/issue",
        listener.local_addr().unwrap().port()
    );
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                continue;
            };
            let client_cert = tls
                .get_ref()
                .1
                .peer_certificates()
                .is_some_and(|c| !c.is_empty());
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                match tls.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = tx.send(client_cert);
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{token}",
                token.len()
            );
            let _ = tls.write_all(response.as_bytes()).await;
            let _ = tls.shutdown().await;
        }
    });
    (url, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_and_token_mtls_with_the_given_ca() {
    let keys = pki();
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let ca = path("ca.pem", &keys.ca);
    let cert = path("server.pem", &keys.server.0);
    let key = path("server.key", &keys.server.1);
    let client = path("client.pem", &keys.client);
    let cloud = cloud(|c| {
        c.tls = Some(xmidt_talaria::config::TlsConfig { cert, key });
    })
    .await;
    let (token_url, mut presented) = mtls_themis(&keys, "tls-token").await;

    let mut cfg = config(&format!("https://localhost:{}", cloud.addr.port()));
    cfg.ssl_cert_path = Some(ca);
    cfg.client_cert_path = Some(client);
    cfg.token_server_url = token_url;
    let (device, _stop) = spawn(cfg);
    status_until(&device, "online over wss", |s| s.online).await;
    let mut events = cloud.events;
    event_to(&mut events, &format!("event:device-status/{DEVICE}/online")).await;
    assert_eq!(
        presented.recv().await,
        Some(true),
        "the token request carried the client certificate"
    );

    // Another CA does not vouch for talaria: no connection.
    let mut other = config(&format!("https://localhost:{}", cloud.addr.port()));
    other.hw_mac = "66:55:44:33:22:11".into();
    other.ssl_cert_path = Some(path("other-ca.pem", &pki().ca));
    let (other, _stop2) = spawn(other);
    let s = status_until(&other, "a TLS failure", |s| s.stats.connect_failures >= 1).await;
    assert!(!s.online);
}
