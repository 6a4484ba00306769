//! End to end: `xmidt up` started as a process and driven only through its public interfaces.
//! A device connects through petasos's redirect; a webhook gets the online event, signed; a
//! request through scytale reaches the device and its answer comes back; a qos-50 device event
//! is acked and delivered; a norn gets that device's events only; the offline event arrives on
//! disconnect; unknown devices, bad bodies and missing credentials are refused.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener as StdListener};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as Ws};
use wrp_nostd::{MessageType, OwnedMessage};

const ID: &str = "mac:112233445566";
const WAIT: Duration = Duration::from_secs(20);
const USER: &str = "e2e";
const PASS: &str = "secret-pass";

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Up {
    child: Child,
    _dir: tempfile::TempDir,
    petasos: SocketAddr,
    scytale: SocketAddr,
    caduceus: SocketAddr,
    mimisbrunnr: SocketAddr,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// Starts `xmidt up` (with `extra` arguments) on free ports and waits for its banner.
fn start_up(extra: &[&str]) -> Up {
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<u16> = (0..6).map(|_| free_port()).collect();
    let config = format!(
        "caduceus:\n  address: 0.0.0.0:{}\ntalaria:\n  address: 0.0.0.0:{}\n  control_address: 0.0.0.0:{}\n\
         scytale:\n  address: 0.0.0.0:{}\npetasos:\n  address: 0.0.0.0:{}\nmimisbrunnr:\n  address: 0.0.0.0:{}\n\
         \x20 caduceus:\n    url: unused\n    events_url: unused\n    interval: 1s\n",
        ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]
    );
    let path = dir.path().join("xmidt.yaml");
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_xmidt"))
        .args(["up", "--bind", "127.0.0.1"])
        .args(extra)
        .arg("--config")
        .arg(&path)
        .arg("--data")
        .arg(dir.path().join("data"))
        .env("XMIDT_BASIC_AUTH", format!("{USER}:{PASS}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("xmidt is up") => break,
            Ok(_) => continue,
            Err(_) => panic!("xmidt up did not come up"),
        }
    }
    let at = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
    Up {
        child,
        _dir: dir,
        caduceus: at(ports[0]),
        scytale: at(ports[3]),
        petasos: at(ports[4]),
        mimisbrunnr: at(ports[5]),
    }
}

/// One request a receiver got.
struct Received {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

/// What the receiver got. Each step takes the first delivery it waits for and keeps the others
/// for later steps: caduceus delivers to the webhook and (through mimisbrunnr) to the norn in
/// parallel, so their order varies.
struct Deliveries {
    rx: mpsc::UnboundedReceiver<Received>,
    kept: Vec<Received>,
}

impl Deliveries {
    async fn next(&mut self, what: &str, wanted: impl Fn(&Received) -> bool) -> Received {
        if let Some(i) = self.kept.iter().position(&wanted) {
            return self.kept.remove(i);
        }
        loop {
            let r = tokio::time::timeout(WAIT, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("{what} in time"))
                .unwrap();
            if wanted(&r) {
                return r;
            }
            self.kept.push(r);
        }
    }

    /// The next webhook delivery (msgpack WRP) whose dest ends with `suffix`.
    async fn hook(&mut self, suffix: &str) -> (OwnedMessage, Received) {
        let wanted = |r: &Received| {
            r.path == "hook"
                && OwnedMessage::decode(&r.body)
                    .expect("whole WRP as msgpack")
                    .dest
                    .ends_with(suffix)
        };
        let r = self
            .next(&format!("webhook delivery of {suffix}"), wanted)
            .await;
        (OwnedMessage::decode(&r.body).unwrap(), r)
    }

    /// Everything received so far and not taken.
    fn rest(&mut self) -> Vec<Received> {
        while let Ok(r) = self.rx.try_recv() {
            self.kept.push(r);
        }
        std::mem::take(&mut self.kept)
    }
}

/// An HTTP receiver for webhooks and norns; every POST is recorded, answered 200.
async fn receiver() -> (String, Deliveries) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new()
        .route(
            "/{path}",
            post(
                |State(tx): State<mpsc::UnboundedSender<Received>>,
                 Path(path): Path<String>,
                 headers: HeaderMap,
                 body: Bytes| async move {
                    let _ = tx.send(Received {
                        path,
                        headers,
                        body,
                    });
                    StatusCode::OK
                },
            ),
        )
        .with_state(tx);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (
        base,
        Deliveries {
            rx,
            kept: Vec::new(),
        },
    )
}

fn hmac_sha1_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The next WRP message the device's websocket receives (pings and other frames skipped).
async fn next_wrp<S>(ws: &mut S) -> OwnedMessage
where
    S: futures_util::Stream<Item = Result<Ws, WsError>> + Unpin,
{
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            Ws::Binary(b) => return OwnedMessage::decode(&b).unwrap(),
            _ => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_cloud_in_one_process() {
    let up = tokio::task::spawn_blocking(|| start_up(&[])).await.unwrap();
    let (receiver, mut deliveries) = receiver().await;
    let client = reqwest::Client::new();

    // Missing and wrong credentials.
    let hook = serde_json::json!({
        "config": { "url": format!("{receiver}/hook"), "content_type": "application/msgpack", "secret": "s3cret" },
        "events": [".*"],
        "duration": "10m",
    });
    let r = client
        .post(format!("http://{}/hook", up.caduceus))
        .json(&hook)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client
        .post(format!("http://{}/hook", up.caduceus))
        .basic_auth(USER, Some("nope"))
        .json(&hook)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client
        .post(format!("http://{}/hook", up.caduceus))
        .basic_auth(USER, Some(PASS))
        .json(&hook)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    // Norns for this device and for another.
    for (device, path) in [(ID, "norn"), ("mac:aabbccddeeff", "other-norn")] {
        let norn = serde_json::json!({
            "DeviceID": device, "TTL": 600,
            "Destination": { "HttpConfig": { "URL": format!("{receiver}/{path}"), "Secret": "n0rn" } },
        });
        let r = client
            .post(format!("http://{}/norns", up.mimisbrunnr))
            .basic_auth(USER, Some(PASS))
            .json(&norn)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }

    // The device connects through petasos and follows the redirect.
    let mut request = format!("ws://{}/api/v2/device", up.petasos)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("X-WebPA-Device-Name", ID.parse().unwrap());
    let location = match tokio_tungstenite::connect_async(request).await {
        Err(WsError::Http(r)) if r.status() == 307 => {
            r.headers()["location"].to_str().unwrap().to_string()
        }
        other => panic!("expected petasos's redirect, got {other:?}"),
    };
    let mut request = location
        .replacen("http://", "ws://", 1)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("X-WebPA-Device-Name", ID.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();

    // The online event reaches the webhook, signed.
    let (online, delivery) = deliveries.hook("/online").await;
    assert_eq!(online.dest, format!("event:device-status/{ID}/online"));
    let signature = delivery.headers["x-webpa-signature"].to_str().unwrap();
    assert_eq!(
        signature,
        format!("sha1={}", hmac_sha1_hex("s3cret", &delivery.body))
    );

    // A request through scytale reaches the device; its answer comes back.
    let request = OwnedMessage::builder(MessageType::SimpleRequestResponse)
        .source("dns:e2e")
        .dest(format!("{ID}/config"))
        .transaction_uuid("e2e-1")
        .payload(b"ping".to_vec())
        .build();
    let asking = {
        let client = client.clone();
        let url = format!("http://{}/api/v3/device", up.scytale);
        let body = request.to_msgpack().unwrap();
        tokio::spawn(async move {
            client
                .post(url)
                .basic_auth(USER, Some(PASS))
                .header("Content-Type", "application/msgpack")
                .body(body)
                .send()
                .await
                .unwrap()
        })
    };
    let got = next_wrp(&mut ws).await;
    assert_eq!(got.transaction_uuid, "e2e-1");
    let mut answer = got.clone();
    std::mem::swap(&mut answer.source, &mut answer.dest);
    answer.payload = b"pong".to_vec();
    ws.send(Ws::Binary(answer.to_msgpack().unwrap().into()))
        .await
        .unwrap();
    let r = asking.await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        OwnedMessage::decode(&r.bytes().await.unwrap())
            .unwrap()
            .payload,
        b"pong"
    );

    // A qos-50 event: acked to the device, delivered to the webhook and to the device's norn.
    let event = OwnedMessage::builder(MessageType::SimpleEvent)
        .source(format!("{ID}/telemetry"))
        .dest("event:telemetry/e2e")
        .transaction_uuid("ev-50")
        .qos(50)
        .content_type("application/json")
        .payload(br#"{"t":1}"#.to_vec())
        .build();
    ws.send(Ws::Binary(event.to_msgpack().unwrap().into()))
        .await
        .unwrap();
    let ack = next_wrp(&mut ws).await;
    assert_eq!(
        (ack.msg_type, ack.transaction_uuid.as_str(), ack.rdr),
        (MessageType::SimpleEvent, "ev-50", Some(0))
    );
    let (delivered, _) = deliveries.hook("telemetry/e2e").await;
    assert_eq!(delivered.payload, br#"{"t":1}"#);
    let norn = deliveries
        .next("norn delivery", |r| {
            r.path == "norn"
                && OwnedMessage::from_json(&r.body).expect("JSON WRP").dest == "event:telemetry/e2e"
        })
        .await;
    let codex = norn.headers["x-codex-signature"].to_str().unwrap();
    assert_eq!(codex, format!("sha1={}", hmac_sha1_hex("n0rn", &norn.body)));

    // Unknown devices and bad bodies.
    let unknown = OwnedMessage {
        dest: "mac:0000000000ff/config".into(),
        transaction_uuid: "e2e-2".into(),
        ..request.clone()
    };
    let r = client
        .post(format!("http://{}/api/v3/device", up.scytale))
        .basic_auth(USER, Some(PASS))
        .header("Content-Type", "application/msgpack")
        .body(unknown.to_msgpack().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = client
        .post(format!("http://{}/api/v3/device", up.scytale))
        .basic_auth(USER, Some(PASS))
        .header("Content-Type", "application/msgpack")
        .body(vec![0x81, 0xc1])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = client
        .post(format!("http://{}/api/v3/device", up.scytale))
        .header("Content-Type", "application/msgpack")
        .body(request.to_msgpack().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // The offline event on disconnect.
    ws.close(None).await.unwrap();
    let (offline, _) = deliveries.hook("/offline").await;
    assert_eq!(offline.dest, format!("event:device-status/{ID}/offline"));

    // Nothing ever reached the other device's norn.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for r in deliveries.rest() {
        assert_ne!(
            r.path, "other-norn",
            "another device's norn got this device's event"
        );
    }

    // Ctrl-C (SIGTERM) stops everything cleanly.
    let mut up = up;
    let pid = up.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Some(status) = up.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "xmidt up stops on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_device_answers_and_reports() {
    let up = tokio::task::spawn_blocking(|| start_up(&["--demo"]))
        .await
        .unwrap();
    let (receiver, mut deliveries) = receiver().await;
    let client = reqwest::Client::new();
    let hook = serde_json::json!({
        "config": { "url": format!("{receiver}/hook"), "content_type": "application/msgpack" },
        "events": ["demo-telemetry"],
        "duration": "10m",
    });
    let r = client
        .post(format!("http://{}/hook", up.caduceus))
        .basic_auth(USER, Some(PASS))
        .json(&hook)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The demo device answers through scytale once it is connected.
    let request = OwnedMessage::builder(MessageType::SimpleRequestResponse)
        .source("dns:e2e")
        .dest(format!("{ID}/config"))
        .payload(br#"{"names":["x"]}"#.to_vec())
        .build();
    let deadline = tokio::time::Instant::now() + WAIT;
    let answer = loop {
        let mut r = request.clone();
        r.transaction_uuid = format!("demo-{}", deadline.elapsed().as_nanos());
        let response = client
            .post(format!("http://{}/api/v3/device", up.scytale))
            .basic_auth(USER, Some(PASS))
            .header("Content-Type", "application/msgpack")
            .body(r.to_msgpack().unwrap())
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            break OwnedMessage::decode(&response.bytes().await.unwrap()).unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the demo device connects"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(answer.status, Some(200));
    let payload: serde_json::Value = serde_json::from_slice(&answer.payload).unwrap();
    assert_eq!(payload["asked"], r#"{"names":["x"]}"#);

    // Its periodic event reaches the webhook, with the device metadata merged in.
    let (event, _) = deliveries.hook("demo-telemetry").await;
    assert_eq!(event.source, format!("{ID}/config"));
    assert_eq!(
        event.metadata.get("hw-model").map(String::as_str),
        Some("xmidt-demo")
    );
}
