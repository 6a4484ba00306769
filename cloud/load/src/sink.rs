//! The event receiver talaria posts to during a run (a caduceus stand-in): answers 202 and
//! counts online, offline and other events, so the summary can say what arrived.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use wrp_nostd::Message;

#[derive(Default)]
pub struct Received {
    pub online: AtomicU64,
    pub offline: AtomicU64,
    pub other: AtomicU64,
    /// Bodies that were not a msgpack WRP (answered 400).
    pub invalid: AtomicU64,
}

/// Binds `addr` (loopback only) and serves until `stop`.
pub async fn start(
    addr: SocketAddr,
    stop: CancellationToken,
) -> Result<(SocketAddr, Arc<Received>), String> {
    if !addr.ip().is_loopback() {
        return Err(format!("--event-sink {addr} is not a loopback address"));
    }
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("--event-sink {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let received = Arc::new(Received::default());
    let app = Router::new()
        .fallback(post(receive))
        .with_state(received.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
    });
    Ok((local, received))
}

async fn receive(State(received): State<Arc<Received>>, body: Bytes) -> StatusCode {
    let Ok(event) = Message::decode(&body) else {
        received.invalid.fetch_add(1, Ordering::Relaxed);
        return StatusCode::BAD_REQUEST;
    };
    let counter = if event.dest.ends_with("/online") {
        &received.online
    } else if event.dest.ends_with("/offline") {
        &received.offline
    } else {
        &received.other
    };
    counter.fetch_add(1, Ordering::Relaxed);
    StatusCode::ACCEPTED
}

#[cfg(test)]
mod tests {
    use super::*;
    use wrp_nostd::{MessageType, OwnedMessage};

    #[tokio::test]
    async fn events_are_counted_by_kind() {
        let stop = CancellationToken::new();
        let (addr, received) = start("127.0.0.1:0".parse().unwrap(), stop.clone())
            .await
            .unwrap();
        let client = reqwest::Client::new();
        for dest in [
            "event:device-status/mac:112233445566/online",
            "event:device-status/mac:112233445566/offline",
            "event:anything",
        ] {
            let event = OwnedMessage::builder(MessageType::SimpleEvent)
                .dest(dest)
                .build();
            let r = client
                .post(format!("http://{addr}/api/v4/notify"))
                .body(event.to_msgpack().unwrap())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
        }
        let r = client
            .post(format!("http://{addr}/x"))
            .body("nope")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        for c in [
            &received.online,
            &received.offline,
            &received.other,
            &received.invalid,
        ] {
            assert_eq!(c.load(Ordering::Relaxed), 1);
        }
        stop.cancel();
    }

    #[tokio::test]
    async fn only_loopback_is_served() {
        let stop = CancellationToken::new();
        assert!(start("0.0.0.0:0".parse().unwrap(), stop).await.is_err());
    }
}
