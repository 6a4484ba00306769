//! Test harness: devices on loopback, a bare WebSocket server whose every answer a test picks,
//! a fake themis, WRP helpers.
#![allow(dead_code)] // each test binary uses a different part

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use client_std::{Config, Device, Status};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderMap, StatusCode};
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use wrp_nostd::{MessageType, OwnedMessage};

/// Every wait in these tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(15);
pub const MAC: &str = "11:22:33:44:55:66";
pub const DEVICE: &str = "mac:112233445566";

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

/// A device config for tests: IPC on a free port, short timers, no files.
pub fn config(url: &str) -> Config {
    init_tracing();
    Config {
        hw_model: "TG1682".into(),
        hw_serial_number: "SER123456".into(),
        hw_manufacturer: "ARRIS".into(),
        fw_name: "TG1682_DEV_test".into(),
        hw_last_reboot_reason: "unknown".into(),
        boot_time: 1_700_000_000,
        partner_ids: "comcast,cox".into(),
        local_url: Some("tcp://127.0.0.1:0".into()),
        ping_timeout_secs: 5,
        backoff_max: 0,
        service_alive_secs: 1,
        service_send_timeout: Duration::from_millis(500),
        ..Config::new(MAC, url)
    }
}

pub fn spawn(config: Config) -> (Device, CancellationToken) {
    let stop = CancellationToken::new();
    let device = Device::spawn(config, stop.clone()).expect("device starts");
    (device, stop)
}

/// Waits until the device's status satisfies `check`.
pub async fn status_until(device: &Device, what: &str, check: impl Fn(&Status) -> bool) -> Status {
    let mut rx = device.status();
    let s = tokio::time::timeout(WAIT, rx.wait_for(|s| check(s)))
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .expect("device running");
    *s
}

pub fn request(dest: &str, tuuid: &str) -> OwnedMessage {
    OwnedMessage::builder(MessageType::SimpleRequestResponse)
        .source("dns:scytale")
        .dest(dest)
        .transaction_uuid(tuuid)
        .payload(b"{\"command\":\"GET\"}".to_vec())
        .build()
}

pub fn encode(m: &OwnedMessage) -> Vec<u8> {
    m.to_msgpack().expect("encodes")
}

pub fn decode(b: &[u8]) -> OwnedMessage {
    OwnedMessage::decode(b).expect("a WRP message")
}

pub fn metadata<'m>(m: &'m OwnedMessage, key: &str) -> Option<&'m str> {
    m.metadata
        .iter()
        .find(|(k, _)| k.as_str() == key)
        .map(|(_, v)| v.as_str())
}

/// The JSON inside an `X-WebPA-Convey` header.
pub fn convey(headers: &HeaderMap) -> serde_json::Value {
    let raw = headers
        .get("x-webpa-convey")
        .expect("convey header")
        .to_str()
        .unwrap();
    let json = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .expect("base64");
    serde_json::from_slice(&json).expect("JSON")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ----- a bare WebSocket server ---------------------------------------------------------------

/// How the bare server answers the n-th upgrade (0-based).
#[derive(Clone, Debug)]
pub enum Reply {
    Accept,
    /// Refuse with this status and `Location`.
    Refuse(u16, Option<String>),
}

/// One upgrade request as the server saw it.
#[derive(Debug)]
pub struct Upgrade {
    pub path: String,
    pub headers: HeaderMap,
    /// The socket, when the upgrade was accepted.
    pub ws: Option<WebSocketStream<TcpStream>>,
}

pub struct Bare {
    pub addr: SocketAddr,
    pub upgrades: mpsc::UnboundedReceiver<Upgrade>,
    pub count: Arc<AtomicUsize>,
}

impl Bare {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next upgrade request.
    pub async fn next(&mut self) -> Upgrade {
        tokio::time::timeout(WAIT, self.upgrades.recv())
            .await
            .expect("an upgrade in time")
            .expect("server running")
    }

    /// The next accepted connection.
    pub async fn accepted(&mut self) -> (HeaderMap, WebSocketStream<TcpStream>) {
        loop {
            let u = self.next().await;
            if let Some(ws) = u.ws {
                return (u.headers, ws);
            }
        }
    }
}

/// A WebSocket server on `listener` answering the n-th upgrade with `reply(n)`.
pub fn bare_on(
    listener: TcpListener,
    reply: impl Fn(usize) -> Reply + Send + Sync + 'static,
) -> Bare {
    let addr = listener.local_addr().unwrap();
    let (tx, upgrades) = mpsc::unbounded_channel();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    let reply = Arc::new(reply);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let answer = reply(n);
            let tx = tx.clone();
            tokio::spawn(async move {
                let seen = Arc::new(Mutex::new(None));
                let seen2 = seen.clone();
                // The callback's type is tungstenite's.
                #[allow(clippy::result_large_err)]
                let callback =
                    move |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
                        *seen2.lock().unwrap() =
                            Some((req.uri().path().to_string(), req.headers().clone()));
                        match answer {
                            Reply::Accept => Ok(resp),
                            Reply::Refuse(status, location) => {
                                let mut r = ErrorResponse::new(None);
                                *r.status_mut() = StatusCode::from_u16(status).unwrap();
                                if let Some(l) = location {
                                    r.headers_mut().insert("location", l.parse().unwrap());
                                }
                                Err(r)
                            }
                        }
                    };
                let ws = tokio_tungstenite::accept_hdr_async(tcp, callback)
                    .await
                    .ok();
                let seen = seen.lock().unwrap().take();
                if let Some((path, headers)) = seen {
                    let _ = tx.send(Upgrade { path, headers, ws });
                }
            });
        }
    });
    Bare {
        addr,
        upgrades,
        count,
    }
}

pub async fn bare(reply: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Bare {
    bare_on(TcpListener::bind("127.0.0.1:0").await.unwrap(), reply)
}

/// The next WRP message from the device (pings and pongs skipped).
pub async fn next_wrp(ws: &mut WebSocketStream<TcpStream>) -> OwnedMessage {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("socket open")
            .expect("frame ok");
        match frame {
            Ws::Binary(b) => return decode(&b),
            Ws::Ping(_) | Ws::Pong(_) => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

pub async fn send_wrp(ws: &mut WebSocketStream<TcpStream>, m: &OwnedMessage) {
    ws.send(Ws::Binary(encode(m).into())).await.expect("send");
}

// ----- a fake themis -------------------------------------------------------------------------

/// A token issuer on loopback: `GET /issue` answers `tok-<n>`, or what `answer(n)` says.
pub struct Themis {
    pub url: String,
    /// The headers of every request, in order.
    pub requests: Arc<Mutex<Vec<HeaderMap>>>,
}

pub async fn themis(answer: impl Fn(usize) -> (u16, String) + Send + Sync + 'static) -> Themis {
    use axum::http::HeaderMap as AxumHeaders;
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    let answer = Arc::new(answer);
    let app = axum::Router::new().route(
        "/issue",
        axum::routing::get(move |headers: AxumHeaders| {
            let seen = seen.clone();
            let answer = answer.clone();
            async move {
                let n = {
                    let mut all = seen.lock().unwrap();
                    all.push(headers);
                    all.len() - 1
                };
                let (status, body) = answer(n);
                (axum::http::StatusCode::from_u16(status).unwrap(), body)
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/issue", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Themis { url, requests }
}
