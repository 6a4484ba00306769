//! A small run of the real `xmidt-load` binary against a talaria in this process: every device
//! connects, every request is answered by its device, events reach the event receiver and QoS
//! acks reach the devices.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use wrp_nostd::Message;
use xmidt_talaria::{Config, Talaria};

const DEVICES: u64 = 500;
const REQUESTS: u64 = 300;
/// The whole run takes a few seconds; this bounds it on a busy machine.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// Counts talaria's events: online ones, and those the simulated devices sent.
#[derive(Default)]
struct Received {
    online: AtomicU64,
    device_events: AtomicU64,
}

async fn event_receiver(received: Arc<Received>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = Router::new().route(
        "/api/v4/notify",
        post(move |body: Bytes| {
            let received = received.clone();
            async move {
                let Ok(event) = Message::decode(&body) else {
                    return StatusCode::BAD_REQUEST;
                };
                if event.dest.ends_with("/online") {
                    received.online.fetch_add(1, Ordering::Relaxed);
                } else if event.dest.starts_with("event:xmidt-load/") {
                    received.device_events.fetch_add(1, Ordering::Relaxed);
                }
                StatusCode::ACCEPTED
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/api/v4/notify")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_connect_and_every_request_is_answered() {
    let received = Arc::new(Received::default());
    let mut config = Config::default();
    config.outbound.event_endpoints.insert(
        "default".into(),
        vec![event_receiver(received.clone()).await],
    );
    // Room for every online event at once.
    config.outbound.queue_size = 2000;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let talaria = Talaria::new(config, shutdown.clone()).expect("valid config");
    tokio::spawn(xmidt_talaria::serve(
        talaria.clone(),
        listener,
        None,
        shutdown,
    ));

    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_xmidt-load"))
        .args([
            &format!("--devices={DEVICES}"),
            "--workers=2",
            "--connect-rate=1000",
            "--source-ips=8",
            &format!("--device-url=ws://{addr}/api/v3/device"),
            &format!("--api-url=http://{addr}/api/v3/device/send"),
            &format!("--requests={REQUESTS}"),
            "--request-rate=300",
            "--arrivals=poisson",
            "--warmup=500ms",
            "--duration=10s",
            "--connect-timeout=20s",
            "--settle=0s",
            "--event-rate=100",
            "--event-qos=50",
            &format!("--talaria-pid={}", std::process::id()),
            "--json",
        ])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(RUN_LIMIT, run)
        .await
        .expect("the run ends by itself")
        .expect("xmidt-load runs");
    assert!(
        output.status.success(),
        "xmidt-load failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("a JSON summary");

    assert_eq!(summary["held"], DEVICES, "{summary:#}");
    assert_eq!(summary["connect_failures"], 0);
    assert_eq!(summary["dropped"], 0);
    assert_eq!(summary["requests_sent"], REQUESTS);
    assert_eq!(summary["requests_ok"], REQUESTS, "{summary:#}");
    let warmup = summary["warmup_requests"]
        .as_u64()
        .expect("warmup_requests");
    assert!(warmup > 0);
    assert_eq!(summary["warmup_failed"], 0);
    assert_eq!(summary["answered_by_devices"], REQUESTS + warmup);
    assert!(summary["latency_ms"]["p50"].as_f64().expect("p50") > 0.0);
    assert!(summary["talaria_rss_per_connection"].as_u64().is_some());
    let events = summary["events_sent"].as_u64().expect("events_sent");
    assert!(events > 0, "{summary:#}");
    assert!(summary["acks_received"].as_u64().expect("acks") > 0);

    // Events travel on through talaria's outbound queue, and closes through its read pumps;
    // give the last ones a moment.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while (received.online.load(Ordering::Relaxed) < DEVICES
        || received.device_events.load(Ordering::Relaxed) < events
        || !talaria.registry.is_empty())
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(received.online.load(Ordering::Relaxed), DEVICES);
    assert_eq!(received.device_events.load(Ordering::Relaxed), events);
    assert_eq!(talaria.registry.len(), 0, "every device closed at the end");
}
