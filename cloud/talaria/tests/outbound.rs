//! The event path: routing by dest, retries with backoff, and counted drops.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use xmidt_talaria::config::OutboundConfig;
use xmidt_talaria::outbound::{DropReason, Outbound};

/// A receiver that fails `failures` times with `code`, then accepts; returns its URL and a count
/// of the requests it saw.
async fn flaky_receiver(failures: usize, code: StatusCode) -> (String, Arc<AtomicUsize>) {
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let app = Router::new().route(
        "/notify",
        post(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < failures {
                    code
                } else {
                    StatusCode::ACCEPTED
                }
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/notify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn config(url: &str) -> OutboundConfig {
    OutboundConfig {
        event_endpoints: [("default".to_string(), vec![url.to_string()])].into(),
        retries: 3,
        retry_backoff: Duration::from_millis(5),
        workers: 2,
        ..OutboundConfig::default()
    }
}

async fn wait_for(seen: &AtomicUsize, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while seen.load(Ordering::SeqCst) < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected {n} requests, saw {}",
            seen.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn server_errors_are_retried_until_accepted() {
    let (url, seen) = flaky_receiver(2, StatusCode::SERVICE_UNAVAILABLE).await;
    let out = Outbound::start(config(&url), CancellationToken::new());
    out.dispatch("event:x", vec![0x80].into(), None)
        .await
        .unwrap();
    wait_for(&seen, 3).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        seen.load(Ordering::SeqCst),
        3,
        "no more tries after the 202"
    );
}

#[tokio::test]
async fn client_errors_are_not_retried_and_retries_are_bounded() {
    let (url, seen) = flaky_receiver(100, StatusCode::BAD_REQUEST).await;
    let out = Outbound::start(config(&url), CancellationToken::new());
    out.dispatch("event:x", vec![0x80].into(), None)
        .await
        .unwrap();
    wait_for(&seen, 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(seen.load(Ordering::SeqCst), 1);

    let (url, seen) = flaky_receiver(100, StatusCode::INTERNAL_SERVER_ERROR).await;
    let out = Outbound::start(config(&url), CancellationToken::new());
    out.dispatch("event:x", vec![0x80].into(), None)
        .await
        .unwrap();
    wait_for(&seen, 4).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(seen.load(Ordering::SeqCst), 4, "one try plus three retries");
}

#[tokio::test]
async fn routing_follows_event_types_and_dns_rules() {
    let mut c = config("http://127.0.0.1:1/default");
    c.event_endpoints.insert(
        "device-status".into(),
        vec!["http://127.0.0.1:1/status".into()],
    );
    c.allowed_schemes = vec!["https".into(), "http".into()];
    let out = Outbound::start(c, CancellationToken::new());
    assert_eq!(
        out.route("event:device-status/mac:1/online").unwrap(),
        ["http://127.0.0.1:1/status"]
    );
    assert_eq!(
        out.route("event:other").unwrap(),
        ["http://127.0.0.1:1/default"]
    );
    assert_eq!(
        out.route("dns:example.com/hook/x").unwrap(),
        ["https://example.com/hook/x"]
    );
    assert_eq!(
        out.route("dns:http://example.com/a").unwrap(),
        ["http://example.com/a"]
    );
    assert_eq!(
        out.route("dns:ftp://example.com").unwrap_err(),
        DropReason::SchemeNotAllowed
    );
    assert_eq!(
        out.route("mac:112233445566").unwrap_err(),
        DropReason::Unroutable
    );
    assert_eq!(out.route("garbage").unwrap_err(), DropReason::Unroutable);

    let mut c = config("http://127.0.0.1:1/x");
    c.event_endpoints.clear();
    let out = Outbound::start(c, CancellationToken::new());
    assert_eq!(out.route("event:x").unwrap_err(), DropReason::NoEndpoint);
}

#[tokio::test]
async fn a_full_queue_refuses_events_instead_of_growing() {
    // A receiver that accepts connections and never answers holds the only worker.
    let hang = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/notify", hang.local_addr().unwrap());
    let (accepted_tx, mut accepted) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hang.accept().await {
            held.push(socket);
            let _ = accepted_tx.send(());
        }
    });
    let mut c = config(&url);
    c.queue_size = 2;
    c.workers = 1;
    // Full means dropped at once, as in Go.
    c.queue_wait = Duration::ZERO;
    let out = Outbound::start(c, CancellationToken::new());
    out.dispatch("event:x", vec![0x80].into(), None)
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), accepted.recv())
        .await
        .unwrap();
    assert!(out
        .dispatch("event:x", vec![0x80].into(), None)
        .await
        .is_ok());
    assert!(out
        .dispatch("event:x", vec![0x80].into(), None)
        .await
        .is_ok());
    assert_eq!(
        out.dispatch("event:x", vec![0x80].into(), None)
            .await
            .unwrap_err(),
        DropReason::QueueFull
    );
}

#[tokio::test]
async fn an_event_waits_for_room_in_a_full_queue_then_goes_out() {
    // A receiver that answers only when let go, holding the only worker meanwhile.
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let seen = Arc::new(AtomicUsize::new(0));
    let app = Router::new().route(
        "/notify",
        post({
            let (release, seen) = (release.clone(), seen.clone());
            move || {
                let (release, seen) = (release.clone(), seen.clone());
                async move {
                    seen.fetch_add(1, Ordering::SeqCst);
                    if let Ok(permit) = release.acquire().await {
                        permit.forget();
                    }
                    StatusCode::ACCEPTED
                }
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/notify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut c = config(&url);
    c.queue_size = 1;
    c.workers = 1;
    c.queue_wait = Duration::from_secs(10);
    let out = Outbound::start(c, CancellationToken::new());
    out.dispatch("event:x", vec![0x80].into(), None)
        .await
        .unwrap();
    wait_for(&seen, 1).await;
    out.dispatch("event:x", vec![0x80].into(), None)
        .await
        .unwrap();
    let third = tokio::spawn({
        let out = out.clone();
        async move { out.dispatch("event:x", vec![0x80].into(), None).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!third.is_finished(), "the third event waits for room");
    release.add_permits(3);
    let queued = tokio::time::timeout(Duration::from_secs(10), third)
        .await
        .expect("queued once the worker took the second")
        .unwrap();
    assert_eq!(queued, Ok(()));
    wait_for(&seen, 3).await;
}
