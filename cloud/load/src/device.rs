//! One simulated device: connects, answers every request with a WRP response, sends events on
//! its own timer, lets tungstenite answer talaria's pings, and closes when the run stops.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_util::sync::CancellationToken;
use wrp_nostd::{Message, MessageType};

use crate::report::Counters;
use crate::target::{self, Socket, Target};

/// A handshake (TCP, TLS, websocket, redirects) that takes longer than this has failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a device waits for its close handshake when the run stops.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Connect errors printed per worker; the rest are only counted.
const ERRORS_SHOWN: u32 = 5;
/// What a device answers to any request (a parodus-style GET result).
const ANSWER: &[u8] = br#"{"statusCode":200,"message":"Success"}"#;
const EVENT: &[u8] = br#"{"source":"xmidt-load"}"#;

/// What all devices of one worker share.
pub struct Fleet {
    pub target: Target,
    pub counters: Counters,
    pub first_mac: u64,
    pub source_ips: u32,
    pub convey: Option<HeaderValue>,
    /// Each device sends an event this often (with a random first delay), if at all.
    pub event_every: Option<Duration>,
    pub event_qos: u8,
    pub stop: CancellationToken,
    errors_shown: AtomicU32,
}

impl Fleet {
    pub fn new(
        target: Target,
        first_mac: u64,
        source_ips: u32,
        convey: Option<HeaderValue>,
        event_every: Option<Duration>,
        event_qos: u8,
        stop: CancellationToken,
    ) -> Fleet {
        Fleet {
            target,
            counters: Counters::default(),
            first_mac,
            source_ips,
            convey,
            event_every,
            event_qos,
            stop,
            errors_shown: AtomicU32::new(0),
        }
    }

    fn failed(&self, id: &str, error: &str) {
        self.counters.failed.fetch_add(1, Ordering::Relaxed);
        if self.errors_shown.fetch_add(1, Ordering::Relaxed) < ERRORS_SHOWN {
            crate::worker::say(&format!("error {id}: {error}"));
        }
    }
}

/// The canonical id of device `n`.
pub fn device_id(first_mac: u64, n: u64) -> String {
    format!("mac:{:012x}", first_mac.saturating_add(n))
}

/// The source address of device `n`: 127.1.0.1 and on, round robin over `count` addresses.
pub fn source_ip(n: u64, count: u32) -> Option<IpAddr> {
    if count == 0 {
        return None;
    }
    let offset = u32::try_from(n % u64::from(count)).unwrap_or(0);
    Some(IpAddr::V4(Ipv4Addr::from(
        u32::from(Ipv4Addr::new(127, 1, 0, 1)) + offset,
    )))
}

/// Device `n`, from its connect to its close. `permit` bounds the handshakes in progress.
pub async fn run(fleet: Arc<Fleet>, n: u64, permit: OwnedSemaphorePermit) {
    let id = device_id(fleet.first_mac, n);
    let Ok(header) = HeaderValue::from_str(&id) else {
        return;
    };
    let source = source_ip(n, fleet.source_ips);
    let connected = tokio::select! {
        () = fleet.stop.cancelled() => return,
        c = timeout(CONNECT_TIMEOUT, target::connect(&fleet.target, &header, fleet.convey.as_ref(), source)) => c,
    };
    drop(permit);
    let ws = match connected {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => return fleet.failed(&id, &e),
        Err(_) => return fleet.failed(&id, "handshake timed out"),
    };
    fleet.counters.connected();
    let stopped = session(&fleet, &id, ws).await;
    fleet.counters.connected.fetch_sub(1, Ordering::Relaxed);
    if !stopped {
        fleet.counters.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// Serves the connection; true when it ended because the run stopped.
async fn session(fleet: &Fleet, id: &str, mut ws: Socket) -> bool {
    let mut next_event = fleet.event_every.map(|every| {
        // A random phase, so that devices connected together do not send together.
        Instant::now() + every.mul_f64(rand::rng().random::<f64>())
    });
    let mut events = 0u64;
    loop {
        let event_due = async {
            match next_event {
                Some(at) => sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = fleet.stop.cancelled() => {
                let _ = timeout(CLOSE_TIMEOUT, ws.close(None)).await;
                return true;
            }
            frame = ws.next() => {
                let reply = match frame {
                    Some(Ok(Ws::Binary(bytes))) => handle(fleet, id, &bytes),
                    // Pings are answered inside tungstenite; text frames are not WRP.
                    Some(Ok(Ws::Ping(_) | Ws::Pong(_) | Ws::Text(_) | Ws::Frame(_))) => None,
                    Some(Ok(Ws::Close(_)) | Err(_)) | None => return false,
                };
                if let Some(reply) = reply {
                    if ws.send(Ws::Binary(reply.into())).await.is_err() {
                        return false;
                    }
                    fleet.counters.answered.fetch_add(1, Ordering::Relaxed);
                }
            }
            () = event_due => {
                events += 1;
                if let Some(frame) = event(fleet, id, events) {
                    if ws.send(Ws::Binary(frame.into())).await.is_err() {
                        return false;
                    }
                    fleet.counters.events.fetch_add(1, Ordering::Relaxed);
                }
                next_event = next_event.zip(fleet.event_every).map(|(at, every)| at + every);
            }
        }
    }
}

/// A frame from talaria: the answer to send back for a request, nothing for anything else.
fn handle(fleet: &Fleet, id: &str, frame: &[u8]) -> Option<Vec<u8>> {
    let request = Message::decode(frame).ok()?;
    if !request.is_transaction() {
        if request.msg_type == MessageType::SimpleEvent {
            fleet.counters.acks.fetch_add(1, Ordering::Relaxed);
        }
        return None;
    }
    let answer = Message {
        source: id,
        dest: request.source,
        transaction_uuid: request.transaction_uuid,
        content_type: "application/json",
        status: Some(200),
        payload: ANSWER,
        ..Message::new(request.msg_type)
    };
    answer.to_vec().ok()
}

fn event(fleet: &Fleet, id: &str, n: u64) -> Option<Vec<u8>> {
    let transaction = format!("{id}-{n}");
    let event = Message {
        source: id,
        dest: "event:xmidt-load/event",
        transaction_uuid: &transaction,
        content_type: "application/json",
        qos: i64::from(fleet.event_qos),
        payload: EVENT,
        ..Message::new(MessageType::SimpleEvent)
    };
    event.to_vec().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_sources_spread_as_documented() {
        assert_eq!(device_id(0x0200_0000_0000, 255), "mac:0200000000ff");
        assert_eq!(source_ip(0, 64), Some("127.1.0.1".parse().unwrap()));
        assert_eq!(source_ip(300, 64), Some("127.1.0.45".parse().unwrap()));
        assert_eq!(source_ip(300, 0), None);
    }

    #[test]
    fn requests_get_their_answer_and_events_none() {
        let fleet = Fleet::new(
            Target {
                endpoint: crate::target::Endpoint::parse("ws://127.0.0.1:1/").unwrap(),
                addr: "127.0.0.1:1".parse().unwrap(),
                tls: None,
            },
            0,
            0,
            None,
            None,
            0,
            CancellationToken::new(),
        );
        let request = Message {
            source: "dns:api",
            dest: "mac:000000000001",
            transaction_uuid: "t-1",
            ..Message::new(MessageType::SimpleRequestResponse)
        }
        .to_vec()
        .unwrap();
        let reply = handle(&fleet, "mac:000000000001", &request).unwrap();
        let reply = Message::decode(&reply).unwrap();
        assert_eq!(reply.transaction_uuid, "t-1");
        assert_eq!(reply.dest, "dns:api");
        assert_eq!(reply.source, "mac:000000000001");
        assert_eq!(reply.msg_type, MessageType::SimpleRequestResponse);
        let ack = Message {
            source: "dns:talaria",
            ..Message::new(MessageType::SimpleEvent)
        }
        .to_vec()
        .unwrap();
        assert!(handle(&fleet, "mac:000000000001", &ack).is_none());
        assert_eq!(fleet.counters.acks.load(Ordering::Relaxed), 1);
    }
}
