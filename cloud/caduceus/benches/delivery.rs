//! Delivery throughput and latency, loopback only, bounded in events and time.
//!
//! One process: caduceus (embedded store, Prometheus recorder installed), one healthy webhook
//! receiver and one registered receiver that is down (connections refused). Events are
//! submitted at a fixed rate through the same path `/api/v4/notify` takes after reading the
//! body; each carries its submit time, and the receiver records enqueue-to-delivered latency.
//!
//! `cargo bench -p xmidt-caduceus --bench delivery` (environment: `RATE` events/s, default
//! 25000; `SECONDS` of load, default 8). Exits non-zero unless at least 20 000 deliveries/s
//! and a p99 of at most 50 ms are reached.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use wrp_nostd::{MessageType, OwnedMessage};
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

async fn receive(State(stats): State<Arc<Stats>>, body: Bytes) -> StatusCode {
    if let Ok(sent) = <[u8; 16]>::try_from(&body[..]) {
        let latency = now_nanos().saturating_sub(u128::from_le_bytes(sent)) / 1000;
        stats
            .latencies_us
            .lock()
            .unwrap()
            .push(u32::try_from(latency).unwrap_or(u32::MAX));
        stats.delivered.fetch_add(1, Ordering::Relaxed);
        *stats.last.lock().unwrap() = Some(Instant::now());
    }
    StatusCode::OK
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
    let rate = env("RATE", 25_000);
    let seconds = env("SECONDS", 8);
    let total = rate * seconds;

    let stats = Arc::new(Stats::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let healthy = format!("http://{}/events", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/events", post(receive))
        .with_state(stats.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
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

    let template = OwnedMessage::builder(MessageType::SimpleEvent)
        .source("mac:112233445566")
        .dest("event:device-status/mac:112233445566/online")
        .transaction_uuid("bench")
        .content_type("application/octet-stream")
        .partner_id("comcast")
        .build();
    println!(
        "caduceus delivery: {total} events at {rate}/s to a loopback receiver, another receiver down"
    );
    let submit = |n: u64| {
        for _ in 0..n {
            let mut msg = template.clone();
            msg.payload = now_nanos().to_le_bytes().to_vec();
            let bytes = msg.to_msgpack().unwrap();
            caduceus.submit_msgpack(bytes.into()).unwrap();
        }
    };
    // Warm-up, not measured: connections opened, the down receiver cut off, allocator and
    // metric registry warm. One second at a tenth of the rate.
    let warm_up = rate / 10;
    for _ in 0..100 {
        submit(warm_up / 100);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    wait_for(&stats, warm_up / 100 * 100, Duration::from_secs(10)).await;
    stats.reset();

    let started = Instant::now();
    let mut sent = 0u64;
    while sent < total {
        let due = ((started.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
        submit(due - sent);
        sent = due;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
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
