//! Scytale's API credentials, capabilities and WRP partner check, with a real talaria and device
//! behind it so that what reaches the device is checked too.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_util::sync::CancellationToken;
use wrp_nostd::{MessageType, OwnedMessage};
use xmidt_auth::{CapabilityConfig, CheckMode, JwtConfig};
use xmidt_scytale::{Config, Scytale, Targets};

const ID: &str = "mac:112233445566";

struct Setup {
    scytale: String,
    encoding: EncodingKey,
    /// What the device received, in order.
    received: tokio::sync::mpsc::UnboundedReceiver<OwnedMessage>,
    _dir: tempfile::TempDir,
    _stop: CancellationToken,
}

async fn setup(wrp_check: CheckMode) -> Setup {
    let stop = CancellationToken::new();
    // Talaria with one device that records and answers everything.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let talaria_url = format!("http://{}", listener.local_addr().unwrap());
    let mut tc = xmidt_talaria::Config::default();
    tc.outbound.event_endpoints.clear();
    let talaria = xmidt_talaria::Talaria::new(tc, stop.clone()).unwrap();
    tokio::spawn(xmidt_talaria::serve(talaria, listener, None, stop.clone()));
    let mut request = format!("{}/api/v2/device", talaria_url.replace("http", "ws"))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("X-Webpa-Device-Name", ID.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let (tx, received) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(frame)) = ws.next().await {
            if let Ws::Binary(b) = frame {
                let m = OwnedMessage::decode(&b).unwrap();
                let mut answer = m.clone();
                std::mem::swap(&mut answer.source, &mut answer.dest);
                let _ = tx.send(m);
                let _ = ws
                    .send(Ws::Binary(answer.to_msgpack().unwrap().into()))
                    .await;
            }
        }
    });

    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let encoding = EncodingKey::from_rsa_pem(pair.serialize_pem().as_bytes()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("api.pem");
    std::fs::write(&pem, pair.public_key_pem()).unwrap();
    let mut config = Config::default();
    config.auth.basic = vec!["ops:secret".into()];
    let mut jwt = JwtConfig {
        algorithms: vec![Algorithm::RS256],
        ..JwtConfig::default()
    };
    jwt.keys.pem_files.insert("api".into(), pem);
    config.auth.jwt = Some(jwt);
    config.auth.capabilities = Some(CapabilityConfig {
        prefixes: vec!["x1:xmidt:api:".into()],
        ..CapabilityConfig::default()
    });
    config.wrp_check = Some(wrp_check);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scytale = format!("http://{}", listener.local_addr().unwrap());
    let s = Scytale::new(config, Targets::Fixed(vec![talaria_url])).unwrap();
    tokio::spawn(xmidt_scytale::serve(s, listener, stop.clone()));
    Setup {
        scytale,
        encoding,
        received,
        _dir: dir,
        _stop: stop,
    }
}

fn token(s: &Setup, partners: &[&str], capabilities: &[&str]) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "sub": "app", "exp": now + 600,
        "allowedResources": { "allowedPartners": partners },
        "capabilities": capabilities,
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("api".into());
    encode(&header, &claims, &s.encoding).unwrap()
}

fn request(partners: &[&str], uuid: &str) -> Vec<u8> {
    let mut b = OwnedMessage::builder(MessageType::SimpleRequestResponse)
        .source("dns:app")
        .dest(format!("{ID}/config"))
        .transaction_uuid(uuid);
    for p in partners {
        b = b.partner_id(*p);
    }
    b.build().to_msgpack().unwrap()
}

async fn send(s: &Setup, auth: Option<&str>, body: Vec<u8>) -> reqwest::Response {
    let mut r = reqwest::Client::new()
        .post(format!("{}/api/v3/device", s.scytale))
        .header("Content-Type", "application/msgpack")
        .body(body);
    if let Some(auth) = auth {
        r = r.header("Authorization", auth);
    }
    r.send().await.unwrap()
}

const ALL: &str = "x1:xmidt:api:.*:all";

#[tokio::test]
async fn enforce_refuses_foreign_partners_and_needs_a_jwt() {
    let mut s = setup(CheckMode::Enforce).await;
    assert_eq!(
        send(&s, None, request(&["comcast"], "a")).await.status(),
        401
    );

    let bearer = format!("Bearer {}", token(&s, &["comcast"], &[ALL]));
    let ok = send(&s, Some(&bearer), request(&["comcast"], "b")).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(s.received.recv().await.unwrap().partner_ids, ["comcast"]);

    let foreign = send(&s, Some(&bearer), request(&["cox"], "c")).await;
    assert_eq!(foreign.status(), 403);
    let empty = send(&s, Some(&bearer), request(&[], "d")).await;
    assert_eq!(empty.status(), 400);
    let wildcard = format!("Bearer {}", token(&s, &["*"], &[ALL]));
    assert_eq!(
        send(&s, Some(&wildcard), request(&["anyone"], "e"))
            .await
            .status(),
        200
    );

    // Basic users pass authentication, but the partner check needs a JWT (scytale: 500).
    let basic = reqwest::Client::new()
        .post(format!("{}/api/v3/device", s.scytale))
        .basic_auth("ops", Some("secret"))
        .header("Content-Type", "application/msgpack")
        .body(request(&["comcast"], "f"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 500);
}

#[tokio::test]
async fn monitor_corrects_partners_instead_of_refusing() {
    let mut s = setup(CheckMode::Monitor).await;
    let bearer = format!("Bearer {}", token(&s, &["comcast"], &[ALL]));
    let r = send(&s, Some(&bearer), request(&["cox"], "m")).await;
    assert_eq!(r.status(), 200);
    let got = tokio::time::timeout(Duration::from_secs(10), s.received.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        got.partner_ids,
        ["comcast"],
        "the caller's partners replace the message's"
    );
}

#[tokio::test]
async fn capabilities_limit_what_a_token_may_call() {
    let s = setup(CheckMode::Monitor).await;
    let stat_only = format!(
        "Bearer {}",
        token(&s, &["comcast"], &["x1:xmidt:api:device/.*/stat:get"])
    );
    let stat = reqwest::Client::new()
        .get(format!("{}/api/v3/device/{ID}/stat", s.scytale))
        .header("Authorization", &stat_only)
        .send()
        .await
        .unwrap();
    assert_eq!(stat.status(), 200);
    let body: serde_json::Value = stat.json().await.unwrap();
    assert_eq!(body["id"], ID);
    assert_eq!(
        send(&s, Some(&stat_only), request(&["comcast"], "x"))
            .await
            .status(),
        403
    );
}
