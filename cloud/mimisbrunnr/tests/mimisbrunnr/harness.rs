//! What the tests share: a running mimisbrunnr, HTTP receivers that record what they get,
//! events and norns.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, KeyInit, Mac};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use wrp_nostd::{MessageType, OwnedMessage};
use xmidt_mimisbrunnr::{Config, Mimisbrunnr};
use xmidt_store::Store;

/// A mimisbrunnr serving on a loopback port; stopped when dropped.
pub struct Service {
    pub url: String,
    pub mimisbrunnr: Arc<Mimisbrunnr>,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Settings that keep tests quick: short reloads and purges, small limits.
pub fn config() -> Config {
    Config {
        reload_interval: Duration::from_millis(200),
        purge_interval: Duration::from_millis(200),
        max_norn_body: 4096,
        intake: xmidt_mimisbrunnr::config::IntakeConfig {
            max_event_size: 64 * 1024,
            ..Default::default()
        },
        delivery: xmidt_mimisbrunnr::config::DeliveryConfig {
            request_timeout: Duration::from_secs(5),
            retry_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(100),
            ..Default::default()
        },
        ..Config::default()
    }
}

/// Starts mimisbrunnr with `make(own base URL)` on an embedded store of its own.
pub async fn start(make: impl FnOnce(&str) -> Config) -> Service {
    start_with(make, None).await
}

/// As [`start`], on `store` when given.
pub async fn start_with(
    make: impl FnOnce(&str) -> Config,
    store: Option<Arc<dyn Store>>,
) -> Service {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let mut config = make(&url);
    config.data_dir = dir.path().to_path_buf();
    let shutdown = CancellationToken::new();
    let mimisbrunnr = match store {
        Some(store) => Mimisbrunnr::with_store(config, store, shutdown.clone()).await,
        None => Mimisbrunnr::new(config, shutdown.clone()).await,
    }
    .unwrap();
    let router = mimisbrunnr.router();
    tokio::spawn(xmidt_mimisbrunnr::serve(
        listener,
        router,
        std::time::Duration::from_secs(10),
        shutdown.clone(),
    ));
    Service {
        url,
        mimisbrunnr,
        shutdown,
        _dir: dir,
    }
}

/// One request a receiver got.
#[derive(Debug)]
pub struct Captured {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Captured {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Default)]
struct Behaviour {
    /// Answered in turn; 200 once empty.
    statuses: VecDeque<u16>,
    delay: Duration,
}

/// An HTTP server that records every request, answering as told.
pub struct Receiver {
    pub url: String,
    got: tokio::sync::Mutex<mpsc::UnboundedReceiver<Captured>>,
    behaviour: Arc<Mutex<Behaviour>>,
}

type ReceiverState = (mpsc::UnboundedSender<Captured>, Arc<Mutex<Behaviour>>);

async fn record(
    State((tx, behaviour)): State<ReceiverState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let _ = tx.send(Captured {
        path: uri.path().to_owned(),
        headers,
        body,
    });
    let (status, delay) = {
        let mut b = behaviour.lock().unwrap();
        (b.statuses.pop_front().unwrap_or(200), b.delay)
    };
    tokio::time::sleep(delay).await;
    StatusCode::from_u16(status).unwrap()
}

impl Receiver {
    pub async fn start() -> Receiver {
        let (tx, rx) = mpsc::unbounded_channel();
        let behaviour = Arc::new(Mutex::new(Behaviour::default()));
        let app = axum::Router::new()
            .fallback(record)
            .with_state((tx, behaviour.clone()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver {
            url,
            got: tokio::sync::Mutex::new(rx),
            behaviour,
        }
    }

    /// Answers the next requests with these statuses.
    pub fn respond(&self, statuses: &[u16]) {
        self.behaviour.lock().unwrap().statuses = statuses.iter().copied().collect();
    }

    /// Holds every answer this long.
    pub fn delay(&self, delay: Duration) {
        self.behaviour.lock().unwrap().delay = delay;
    }

    /// The next request; fails the test after 5 s.
    pub async fn next(&self) -> Captured {
        tokio::time::timeout(Duration::from_secs(5), self.got.lock().await.recv())
            .await
            .unwrap_or_else(|_| panic!("{}: nothing arrived within 5 s", self.url))
            .unwrap()
    }

    /// Fails the test if anything arrives within `wait`.
    pub async fn nothing_within(&self, wait: Duration) {
        if let Ok(Some(got)) = tokio::time::timeout(wait, self.got.lock().await.recv()).await {
            panic!(
                "{}: unexpected request: {}",
                self.url,
                String::from_utf8_lossy(&got.body)
            );
        }
    }
}

/// An event from `source` to `dest`, as msgpack.
pub fn event(source: &str, dest: &str, id: &str) -> (OwnedMessage, Vec<u8>) {
    let msg = OwnedMessage::builder(MessageType::SimpleEvent)
        .source(source)
        .dest(dest)
        .transaction_uuid(id)
        .content_type("application/json")
        .partner_id("comcast")
        .payload(br#"{"hello":"world"}"#.to_vec())
        .build();
    let bytes = msg.to_msgpack().unwrap();
    (msg, bytes)
}

/// Posts an event's msgpack to mimisbrunnr's `/events`.
pub async fn post_event(service: &Service, msgpack: Vec<u8>) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/events", service.url))
        .header("content-type", "application/msgpack")
        .body(msgpack)
        .send()
        .await
        .unwrap()
}

/// An HTTP norn body in the Go shape.
pub fn http_norn(device: &str, url: &str, secret: &str, ttl: i64) -> serde_json::Value {
    serde_json::json!({
        "DeviceID": device,
        "TTL": ttl,
        "Destination": {"HttpConfig": {"URL": url, "Secret": secret}}
    })
}

/// `POST /norns` as `user` (none: unauthenticated); the status and the JSON answer.
pub async fn create(
    service: &Service,
    user: Option<&str>,
    norn: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let request = reqwest::Client::new()
        .post(format!("{}/norns", service.url))
        .json(norn);
    send(request, user).await
}

/// Sends `request` as `user` (password `pw`); the status and the JSON answer.
pub async fn send(
    request: reqwest::RequestBuilder,
    user: Option<&str>,
) -> (u16, serde_json::Value) {
    let request = match user {
        Some(user) => request.basic_auth(user, Some("pw")),
        None => request,
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    )
}

/// `sha1=<hex HMAC-SHA1>`, computed here independently of the service.
pub fn hmac_sha1(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha1={}", hex::encode(mac.finalize().into_bytes()))
}
