//! API requests: a WRP request to a random device at a fixed rate, through talaria's
//! `/device/send` (or scytale), each answer checked and its latency recorded.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rand::Rng;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::sync::Semaphore;
use tokio::time::{sleep_until, Instant};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;
use wrp_nostd::{Message, MessageType};

use crate::args::{Arrivals, RunArgs};
use crate::device::device_id;
use crate::target::{client_tls, Endpoint};

/// A parodus-style GET of one parameter.
const REQUEST: &[u8] = br#"{"command":"GET","names":["Device.DeviceInfo.UpTime"]}"#;
/// Latencies are recorded in µs, up to a minute, to 3 significant digits.
const HIGHEST_MICROS: u64 = 60_000_000;

pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_MICROS, 3)
        .expect("constant bounds: low >= 1, high >= 2 * low, 3 significant digits")
}

/// What the requests did so far; `window` is emptied by whoever shows progress.
pub struct ApiStats {
    pub latency: Histogram<u64>,
    pub window: Histogram<u64>,
    pub sent: u64,
    pub ok: u64,
    /// 404: the chosen device was not connected.
    pub not_found: u64,
    pub timeouts: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Warm-up requests (latency not recorded) and how many of them did not get their answer.
    pub warmup_sent: u64,
    pub warmup_failed: u64,
}

impl Default for ApiStats {
    fn default() -> Self {
        ApiStats {
            latency: histogram(),
            window: histogram(),
            sent: 0,
            ok: 0,
            not_found: 0,
            timeouts: 0,
            errors: 0,
            first_error: None,
            warmup_sent: 0,
            warmup_failed: 0,
        }
    }
}

impl ApiStats {
    fn record(&mut self, outcome: Outcome, latency: Duration, phase: Phase) {
        if phase == Phase::Warmup {
            if !matches!(outcome, Outcome::Ok) {
                self.warmup_failed += 1;
            }
            return;
        }
        match outcome {
            Outcome::Ok => {
                let micros = u64::try_from(latency.as_micros())
                    .unwrap_or(HIGHEST_MICROS)
                    .clamp(1, HIGHEST_MICROS);
                self.ok += 1;
                // Within the histogram's bounds by the clamp above.
                let _ = self.latency.record(micros);
                let _ = self.window.record(micros);
            }
            Outcome::NotFound => self.not_found += 1,
            Outcome::Timeout => self.timeouts += 1,
            Outcome::Error(e) => {
                self.errors += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }
}

enum Outcome {
    Ok,
    NotFound,
    Timeout,
    Error(String),
}

pub type Shared = Arc<Mutex<ApiStats>>;

pub fn lock(stats: &Shared) -> std::sync::MutexGuard<'_, ApiStats> {
    stats.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sends requests at `--request-rate` for `--warmup`, then `--requests` of them (or fewer, when
/// `--duration` runs out), then waits for the last answers; returns the time from the first
/// measured request to the last one sent.
pub async fn run(args: &RunArgs, stats: Shared) -> Result<Duration, String> {
    // Requests, like devices, stay on this machine.
    let endpoint = Endpoint::parse(&args.api_url)?;
    let addr = endpoint.resolve().await?;
    let tls = if endpoint.tls {
        let ca = args
            .device
            .ca_cert
            .as_deref()
            .ok_or_else(|| format!("{} is TLS: give --ca-cert", args.api_url))?;
        let name = ServerName::try_from(endpoint.host.clone()).map_err(|e| e.to_string())?;
        Some((TlsConnector::from(client_tls(ca)?), name))
    } else {
        None
    };
    let api = Arc::new(Api {
        connections: Connections {
            addr,
            tls,
            idle: Mutex::new(Vec::new()),
        },
        host: endpoint.authority(),
        path: endpoint.path,
        authorization: args.api_authorization.clone(),
        timeout: args.request_timeout,
    });
    let mut sender = Sender {
        api,
        inflight: Arc::new(Semaphore::new(args.max_inflight as usize)),
        stats,
        first_mac: args.device.first_mac,
        devices: u64::from(args.device.devices),
        rate: args.request_rate,
        arrivals: args.arrivals,
        issued: 0,
    };
    if !args.warmup.is_zero() {
        sender.pace(u64::MAX, args.warmup, Phase::Warmup).await?;
    }
    let span = sender
        .pace(args.requests, args.duration, Phase::Measured)
        .await?;
    // Every request in flight ends within its timeout.
    let _ = tokio::time::timeout(
        args.request_timeout + Duration::from_secs(1),
        sender.inflight.acquire_many(args.max_inflight),
    )
    .await;
    Ok(span)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Connections to the API are opened (a TLS handshake each): latencies are not recorded.
    Warmup,
    Measured,
}

struct Sender {
    api: Arc<Api>,
    inflight: Arc<Semaphore>,
    stats: Shared,
    first_mac: u64,
    devices: u64,
    rate: f64,
    arrivals: Arrivals,
    /// Requests sent in all phases (their transaction ids).
    issued: u64,
}

impl Sender {
    /// Sends up to `count` requests at the rate, for at most `limit`; returns the time from the
    /// first request to the last one sent.
    async fn pace(
        &mut self,
        count: u64,
        limit: Duration,
        phase: Phase,
    ) -> Result<Duration, String> {
        let start = Instant::now();
        let deadline = start + limit;
        let mut last_sent = start;
        let mut departures = departures(
            start.into_std(),
            deadline.into_std(),
            count,
            self.rate,
            self.arrivals,
        );
        let mut sent = 0u64;
        while let Some(departure) = departures.recv().await {
            let permit = tokio::select! {
                p = self.inflight.clone().acquire_owned() => p.map_err(|e| e.to_string())?,
                () = sleep_until(deadline) => break,
            };
            let device = device_id(self.first_mac, rand::rng().random_range(0..self.devices));
            let transaction = format!("xmidt-load-{}", self.issued);
            let (api, shared) = (self.api.clone(), self.stats.clone());
            tokio::spawn(async move {
                // From the departure time, so the hand-over from the pacing thread counts too.
                let outcome = tokio::time::timeout(api.timeout, api.request(&device, &transaction))
                    .await
                    .unwrap_or(Outcome::Timeout);
                lock(&shared).record(outcome, departure.elapsed(), phase);
                drop(permit);
            });
            self.issued += 1;
            sent += 1;
            let mut stats = lock(&self.stats);
            match phase {
                Phase::Warmup => stats.warmup_sent = sent,
                Phase::Measured => stats.sent = sent,
            }
            drop(stats);
            last_sent = Instant::now();
        }
        Ok(last_sent - start)
    }
}

/// Departure times of `count` requests at `rate` per second from `start`, spaced as `arrivals`
/// says, none after `deadline`: each arrives on the channel when it is due. A thread sleeps to
/// each one because tokio's timer ticks in whole milliseconds: at 2,000/s it would send
/// requests in pairs, each queued behind its twin, which is not a steady rate (wrk2 paces
/// evenly too).
fn departures(
    start: std::time::Instant,
    deadline: std::time::Instant,
    count: u64,
    rate: f64,
    arrivals: Arrivals,
) -> mpsc::UnboundedReceiver<std::time::Instant> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let mut rng = rand::rng();
        for offset in offsets(arrivals, rate, move || rng.random()).take(count as usize) {
            let due = start + Duration::from_secs_f64(offset);
            if due >= deadline {
                break;
            }
            std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
            // The receiver is gone when the run stopped early.
            if tx.send(std::time::Instant::now()).is_err() {
                break;
            }
        }
    });
    rx
}

/// Seconds from the start to each departure; `uniform` draws from [0, 1).
fn offsets(
    arrivals: Arrivals,
    rate: f64,
    mut uniform: impl FnMut() -> f64,
) -> impl Iterator<Item = f64> {
    let mut next = 0.0f64;
    (0u64..).map(move |k| match arrivals {
        Arrivals::Even => k as f64 / rate,
        Arrivals::Poisson => {
            let this = next;
            // An exponential gap: 1 - u is in (0, 1], so its logarithm is finite.
            next -= (1.0 - uniform()).ln() / rate;
            this
        }
    })
}

/// Where the requests go, and the connections they use.
struct Api {
    connections: Connections,
    /// `Host` header and request target.
    host: String,
    path: String,
    authorization: Option<String>,
    timeout: Duration,
}

impl Api {
    async fn request(&self, device: &str, transaction: &str) -> Outcome {
        let message = Message {
            source: "dns:xmidt-load",
            dest: device,
            transaction_uuid: transaction,
            content_type: "application/json",
            payload: REQUEST,
            ..Message::new(MessageType::SimpleRequestResponse)
        };
        let body = match message.to_vec() {
            Ok(b) => b,
            Err(e) => return Outcome::Error(format!("encoding the request: {e}")),
        };
        let mut request = Request::post(&self.path)
            .header(HOST, &self.host)
            .header(CONTENT_TYPE, "application/msgpack")
            .header(ACCEPT, "application/msgpack");
        if let Some(auth) = &self.authorization {
            request = request.header(AUTHORIZATION, auth);
        }
        let request = match request.body(Full::new(Bytes::from(body))) {
            Ok(r) => r,
            Err(e) => return Outcome::Error(e.to_string()),
        };
        let mut connection = match self.connections.take().await {
            Ok(c) => c,
            Err(e) => return Outcome::Error(e),
        };
        let response = match connection.send_request(request).await {
            Ok(r) => r,
            Err(e) => return Outcome::Error(e.to_string()),
        };
        let status = response.status();
        let body = match response.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return Outcome::Error(e.to_string()),
        };
        self.connections.put(connection);
        match status {
            StatusCode::OK => match Message::decode(&body) {
                Ok(answer) if answer.transaction_uuid == transaction => Outcome::Ok,
                Ok(answer) => Outcome::Error(format!(
                    "answer for {:?} to request {transaction:?}",
                    answer.transaction_uuid
                )),
                Err(e) => Outcome::Error(format!("undecodable answer: {e}")),
            },
            StatusCode::NOT_FOUND => Outcome::NotFound,
            StatusCode::GATEWAY_TIMEOUT => Outcome::Timeout,
            other => Outcome::Error(format!(
                "HTTP {other}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )),
        }
    }
}

type Connection = SendRequest<Full<Bytes>>;

/// Keep-alive HTTP/1.1 connections to the API: a request takes an idle one or opens another.
/// hyper's connection API, without a general-purpose client's per-request work (URL parsing,
/// pool bookkeeping, redirect policy), which would otherwise count in every latency measured.
struct Connections {
    addr: SocketAddr,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    idle: Mutex<Vec<Connection>>,
}

impl Connections {
    async fn take(&self) -> Result<Connection, String> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        if let Some(mut connection) = idle {
            // One the server has closed is dropped, and another opened.
            if connection.ready().await.is_ok() {
                return Ok(connection);
            }
        }
        self.open().await
    }

    fn put(&self, connection: Connection) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(connection);
    }

    async fn open(&self) -> Result<Connection, String> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect {}: {e}", self.addr))?;
        tcp.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
        match &self.tls {
            None => handshake(tcp).await,
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| format!("TLS to {}: {e}", self.addr))?;
                handshake(tls).await
            }
        }
    }
}

async fn handshake<T>(io: T) -> Result<Connection, String>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (connection, driver) = http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    // Runs until either side closes the connection; its errors reach the requests on it.
    tokio::spawn(driver);
    Ok(connection)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn even_arrivals_are_one_over_the_rate_apart() {
        let even: Vec<f64> = offsets(Arrivals::Even, 2000.0, || unreachable!())
            .take(4)
            .collect();
        assert_eq!(even, [0.0, 0.0005, 0.001, 0.0015]);
    }

    #[test]
    fn poisson_arrivals_keep_the_rate_on_average() {
        let mut rng = StdRng::seed_from_u64(7);
        let poisson: Vec<f64> = offsets(Arrivals::Poisson, 2000.0, move || rng.random())
            .take(20_001)
            .collect();
        assert_eq!(poisson[0], 0.0);
        assert!(poisson.windows(2).all(|w| w[1] >= w[0]));
        let mean_gap = poisson[20_000] / 20_000.0;
        assert!((mean_gap - 0.0005).abs() < 0.000_02, "mean gap {mean_gap}");
        // Gaps are spread (exponential), not fixed: some are far below the mean.
        let short = poisson.windows(2).filter(|w| w[1] - w[0] < 0.0001).count();
        assert!(short > 2000, "{short} gaps under a fifth of the mean");
    }
}
