//! Delivery throughput and latency, loopback only, bounded in events and time.
//!
//! One process: caduceus (embedded store, Prometheus recorder installed), one healthy webhook
//! receiver and one registered receiver that is down (connections refused). Events are
//! submitted at a fixed rate through the same path `/api/v4/notify` takes after reading the
//! body; each carries its submit time, and the receiver records enqueue-to-delivered latency.
//!
//! `cargo bench -p xmidt-caduceus --bench delivery` (environment: `RATE` events/s, default
//! 22000; `SECONDS` of load, default 8; `WORKERS` per webhook, default 100). Exits non-zero
//! unless every event is delivered, at least 20 000 deliveries/s, with a p99 of at most 50 ms.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use wrp_nostd::{MessageType, OwnedMessage};

// As in the xmidt binary (see its main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use xmidt_caduceus::{Caduceus, Caller, Config, RegistrationV1};

const MIN_RATE: f64 = 20_000.0;
const MAX_P99: Duration = Duration::from_millis(50);

#[derive(Default)]
struct Stats {
    delivered: AtomicU64,
    latencies_us: Mutex<Vec<u32>>,
    last: Mutex<Option<Instant>>,
}

impl Stats {
    fn reset(&self) {
        self.delivered.store(0, Ordering::Relaxed);
        self.latencies_us.lock().unwrap().clear();
        *self.last.lock().unwrap() = None;
    }
}

/// Waits until `n` deliveries arrived, or `limit` passed.
async fn wait_for(stats: &Stats, n: u64, limit: Duration) {
    let deadline = Instant::now() + limit;
    while stats.delivered.load(Ordering::Relaxed) < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

/// Records one delivery: its latency from the submit time in the payload.
fn record(stats: &Stats, body: &[u8]) {
    if let Ok(sent) = <[u8; 16]>::try_from(body) {
        let latency = now_nanos().saturating_sub(u128::from_le_bytes(sent)) / 1000;
        stats
            .latencies_us
            .lock()
            .unwrap()
            .push(u32::try_from(latency).unwrap_or(u32::MAX));
        stats.delivered.fetch_add(1, Ordering::Relaxed);
        *stats.last.lock().unwrap() = Some(Instant::now());
    }
}

/// A plain HTTP/1.1 receiver (hyper, no routing): answers every POST with an empty 200, so
/// the shared CPU goes to caduceus rather than to the receiver.
async fn receiver(listener: TcpListener, stats: Arc<Stats>) {
    while let Ok((stream, _)) = listener.accept().await {
        let stats = stats.clone();
        let service = service_fn(move |request: Request<Incoming>| {
            let stats = stats.clone();
            async move {
                let body = request.into_body().collect().await?.to_bytes();
                record(&stats, &body);
                Ok::<_, hyper::Error>(Response::new(Empty::<Bytes>::new()))
            }
        });
        tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
    }
}

/// Submits `rate` events a second for `duration`, paced by the clock; returns how many.
async fn paced(submit: &impl Fn(u64), rate: u64, duration: Duration) -> u64 {
    let total = (rate as f64 * duration.as_secs_f64()) as u64;
    let started = Instant::now();
    let mut sent = 0;
    while sent < total {
        let due = ((started.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
        submit(due - sent);
        sent = due;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    total
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn registration(url: &str) -> RegistrationV1 {
    serde_json::from_value(serde_json::json!({
        "config": {"url": url},
        "events": ["device-status"],
        "duration": "1h",
    }))
    .expect("a valid registration")
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let rate = env("RATE", 22_000);
    let seconds = env("SECONDS", 8);
    let total = rate * seconds;

    let stats = Arc::new(Stats::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let healthy = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(receiver(listener, stats.clone()));
    let down = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}/events", l.local_addr().unwrap())
    };

    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        address: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    config.registration.allow_loopback = true;
    config.registration.resolve_hosts = false;
    config.delivery.workers = env("WORKERS", config.delivery.workers as u64) as usize;
    // The down receiver is cut off after its first spent retries; a short period makes it come
    // back, fail and be cut off again several times during the run.
    config.delivery.cut_off_period = Duration::from_secs(2);
    let shutdown = CancellationToken::new();
    let caduceus = Caduceus::new(config, shutdown.clone()).await.unwrap();
    // Serving the router installs the Prometheus recorder, so metrics cost what they cost in
    // production, and lets the run end with caduceus' own account of it.
    let api = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_url = format!("http://{}/metrics", api.local_addr().unwrap());
    let read_timeout = caduceus.config.intake.read_timeout;
    tokio::spawn(xmidt_caduceus::serve(
        api,
        caduceus.router(),
        read_timeout,
        shutdown.clone(),
    ));
    let caller = Caller {
        owner: String::new(),
        partner_ids: vec!["*".into()],
    };
    for url in [&healthy, &down] {
        caduceus
            .register(registration(url), &caller, None)
            .await
            .unwrap();
    }

    // The event as talaria would post it, encoded once; each submission copies it and writes
    // its submit time into the 16-byte payload, so the load generator costs little of the
    // shared CPU.
    let template = OwnedMessage::builder(MessageType::SimpleEvent)
        .source("mac:112233445566")
        .dest("event:device-status/mac:112233445566/online")
        .transaction_uuid("bench")
        .content_type("application/octet-stream")
        .partner_id("comcast")
        .payload([0u8; 16].to_vec())
        .build()
        .to_msgpack()
        .unwrap();
    let mut marker = [0u8; 18];
    marker[..2].copy_from_slice(&[0xc4, 16]); // msgpack bin8 of 16 bytes
    let payload_at = 2 + template
        .windows(18)
        .position(|w| w == marker)
        .expect("the payload in the encoded event");
    println!(
        "caduceus delivery: {total} events at {rate}/s to a loopback receiver, another receiver down"
    );
    let submit = |n: u64| {
        for _ in 0..n {
            let mut event = template.clone();
            event[payload_at..payload_at + 16].copy_from_slice(&now_nanos().to_le_bytes());
            caduceus.submit_msgpack(event.into()).unwrap();
        }
    };
    // Warm-up, not measured: a ramp to the full rate opens the connections the rate needs, has
    // the down receiver cut off once, and warms the allocator and the metric registry.
    let mut warmed = 0;
    for step in [rate / 4, rate / 2, rate] {
        warmed += paced(&submit, step, Duration::from_secs(1)).await;
    }
    wait_for(&stats, warmed, Duration::from_secs(10)).await;
    stats.reset();

    let started = Instant::now();
    paced(&submit, rate, Duration::from_secs(seconds)).await;
    let submitted = started.elapsed();
    wait_for(&stats, total, Duration::from_secs(10)).await;
    let metrics = reqwest::get(&metrics_url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    shutdown.cancel();
    for line in metrics.lines().filter(|l| {
        l.starts_with("xmidt_caduceus_delivery_count")
            || l.starts_with("xmidt_caduceus_slow_consumer")
            || l.starts_with("xmidt_caduceus_delivery_retry_count")
    }) {
        println!("  {line}");
    }

    let delivered = stats.delivered.load(Ordering::Relaxed);
    let last = stats.last.lock().unwrap().unwrap_or_else(Instant::now);
    let elapsed = last.duration_since(started).as_secs_f64();
    let throughput = delivered as f64 / elapsed;
    let mut latencies = std::mem::take(&mut *stats.latencies_us.lock().unwrap());
    latencies.sort_unstable();
    let at = |q: f64| {
        let i = ((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1));
        Duration::from_micros(latencies.get(i).copied().unwrap_or(u32::MAX).into())
    };
    let (p50, p99, max) = (at(0.50), at(0.99), at(1.0));
    println!("submitted in {submitted:.2?}; delivered {delivered}/{total} in {elapsed:.2}s");
    println!("throughput: {throughput:.0} deliveries/s");
    println!("enqueue-to-delivered: p50 {p50:.2?}, p99 {p99:.2?}, max {max:.2?}");
    let ok = delivered == total && throughput >= MIN_RATE && p99 <= MAX_P99;
    println!(
        "{}: need all delivered, >= {MIN_RATE} deliveries/s, p99 <= {MAX_P99:?}",
        if ok { "PASS" } else { "FAIL" }
    );
    if ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
