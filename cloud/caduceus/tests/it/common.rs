//! Test fixtures over real sockets on 127.0.0.1: caduceus instances, scripted webhook
//! receivers, receivers that never answer, and helpers to register and post events.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use wrp_nostd::{MessageType, OwnedMessage};
use xmidt_caduceus::{Caduceus, Config};

pub const PARTNERS: &str = "x-xmidt-partner-ids";

/// A caduceus on a free port, stopped when dropped.
pub struct Instance {
    pub caduceus: Arc<Caduceus>,
    pub base: String,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    /// Keeps the embedded database's directory alive.
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A configuration for tests: loopback receivers allowed, no DNS, short timers.
pub fn config() -> Config {
    let mut c = Config {
        address: SocketAddr::from(([127, 0, 0, 1], 0)),
        reload_interval: Duration::from_millis(200),
        purge_interval: Duration::from_millis(200),
        ..Config::default()
    };
    c.registration.allow_loopback = true;
    c.registration.resolve_hosts = false;
    c.delivery.retry_backoff = Duration::from_millis(20);
    c.delivery.max_backoff = Duration::from_millis(100);
    c.delivery.request_timeout = Duration::from_secs(2);
    c.delivery.cut_off_period = Duration::from_millis(600);
    c
}

/// Starts caduceus with `config`, on a fresh embedded store unless it names a directory or a
/// database of its own (`data_dir` other than the default).
pub async fn start(mut config: Config) -> Instance {
    let dir = if config.data_dir == Config::default().data_dir && config.database_url.is_none() {
        let dir = tempfile::tempdir().unwrap();
        config.data_dir = dir.path().to_path_buf();
        Some(dir)
    } else {
        None
    };
    let listener = TcpListener::bind(config.address).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let caduceus = Caduceus::new(config, shutdown.clone()).await.unwrap();
    let router = caduceus.router();
    let read_timeout = caduceus.config.intake.read_timeout;
    tokio::spawn(xmidt_caduceus::serve(
        listener,
        router,
        read_timeout,
        shutdown.clone(),
    ));
    Instance {
        caduceus,
        base,
        http: reqwest::Client::new(),
        shutdown,
        _dir: dir,
    }
}

impl Instance {
    /// Stops serving and delivering (as on SIGTERM).
    pub fn stop(self) {}

    /// `POST /hook` as partner `comcast`.
    pub async fn register(&self, body: &Value) -> (StatusCode, Value) {
        self.register_as(body, Some("comcast")).await
    }

    pub async fn register_as(&self, body: &Value, partners: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.http.post(format!("{}/hook", self.base)).json(body);
        if let Some(p) = partners {
            request = request.header(PARTNERS, p);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `GET /hooks` as partner `partners`.
    pub async fn hooks(&self, partners: &str) -> Vec<Value> {
        let response = self
            .http
            .get(format!("{}/hooks", self.base))
            .header(PARTNERS, partners)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// `POST /api/v4/notify` with `msg` as msgpack.
    pub async fn notify(&self, msg: &OwnedMessage) -> StatusCode {
        self.http
            .post(format!("{}/api/v4/notify", self.base))
            .header("content-type", "application/msgpack")
            .body(msg.to_msgpack().unwrap())
            .send()
            .await
            .unwrap()
            .status()
    }

    pub async fn metrics(&self) -> String {
        let response = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap();
        response.text().await.unwrap()
    }
}

/// A registration of `url` for every event, for 5 minutes.
pub fn hook(url: &str) -> Value {
    json!({"config": {"url": url}, "events": [".*"], "duration": "5m"})
}

/// A device event as talaria forwards it.
pub fn event(dest: &str, source: &str) -> OwnedMessage {
    OwnedMessage::builder(MessageType::SimpleEvent)
        .source(source)
        .dest(dest)
        .transaction_uuid(uuid::Uuid::new_v4().to_string())
        .content_type("application/json")
        .partner_id("comcast")
        .payload(br#"{"id":"mac:112233445566","ts":"2026-01-01T00:00:00Z"}"#.to_vec())
        .build()
}

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

/// How a receiver answers one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Reply {
        self.headers.push((name, value.to_string()));
        self
    }

    pub fn delay(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

#[derive(Default)]
struct ReceiverState {
    received: Mutex<Vec<Received>>,
    arrived: Notify,
    script: Mutex<VecDeque<Reply>>,
    otherwise: Mutex<Option<Reply>>,
}

/// A webhook receiver on 127.0.0.1: records every request and answers from its script, then
/// with its default (200).
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    state: Arc<ReceiverState>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let state = Arc::new(ReceiverState::default());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/events", listener.local_addr().unwrap());
        let app = Router::new().fallback(receive).with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, state }
    }

    /// The next answers, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.script.lock().unwrap().extend(replies);
    }

    /// The answer once the script is spent.
    pub fn otherwise(&self, reply: Reply) {
        *self.state.otherwise.lock().unwrap() = Some(reply);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Waits until `n` requests arrived; panics after `limit`.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Received> {
        let deadline = Instant::now() + limit;
        loop {
            let arrived = self.state.arrived.notified();
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{}: {} of {n} requests within {limit:?}",
                self.url,
                got.len()
            );
            let _ = tokio::time::timeout(left, arrived).await;
        }
    }

    /// Asserts that no more than `n` requests arrive within `window`.
    pub async fn expect_no_more_than(&self, n: usize, window: Duration) {
        tokio::time::sleep(window).await;
        assert_eq!(self.received().len(), n, "{}", self.url);
    }
}

async fn receive(State(state): State<Arc<ReceiverState>>, request: Request) -> Response {
    let headers = request.headers().clone();
    let body = axum::body::to_bytes(request.into_body(), 16 << 20)
        .await
        .unwrap_or_default();
    state.received.lock().unwrap().push(Received {
        headers,
        body,
        at: Instant::now(),
    });
    state.arrived.notify_waiters();
    let reply = state
        .script
        .lock()
        .unwrap()
        .pop_front()
        .or_else(|| state.otherwise.lock().unwrap().clone())
        .unwrap_or(Reply::status(200));
    tokio::time::sleep(reply.delay).await;
    let mut response = StatusCode::from_u16(reply.status).unwrap().into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

/// A receiver that accepts connections and never answers: the worst kind of dead.
pub async fn black_hole() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    url
}

/// A URL where nothing listens: connections are refused.
pub async fn refused() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    drop(listener);
    url
}

/// The value of the first sample of `name` whose labels contain every `labels` entry.
pub fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let (labels_text, value) = match rest.strip_prefix('{') {
            Some(rest) => rest.split_once("} ")?,
            None => ("", rest.strip_prefix(' ')?),
        };
        labels
            .iter()
            .all(|(k, v)| labels_text.contains(&format!("{k}=\"{v}\"")))
            .then(|| value.trim().parse().ok())?
    })
}
