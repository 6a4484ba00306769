//! The device side: the websocket handshake, and the read and write pumps of each connection.

use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::OriginalUri;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use futures_util::future::Either;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value};
use tokio::sync::oneshot;
use tokio::time::{timeout, Instant};
use wrp_nostd::{DeviceId, Locator, Message, MessageType, Metadata, OwnedMessage, StrList};

use crate::config::{RingMode, SourceCheck};
use crate::error::json_error;
use crate::registry::{CloseReason, ConveyMetadata, Device, DeviceInfo, Envelope};
use crate::{status, Talaria};
use xmidt_common::gotime::rfc3339_nano;
use xmidt_common::ErrorBody;

/// Convey keys a complete device sends (cloud-spec §4.3); missing ones mark it non-compliant.
const CONVEY_REQUIRED: [&str; 4] = ["hw-model", "hw-manufacturer", "fw-name", "boot-time"];
/// The metadata key of the time talaria received a device's message.
const XMIDT_TIMESTAMP: &str = "/xmidt-timestamp";
/// The largest `X-Webpa-Convey` header decoded.
const MAX_CONVEY: usize = 8 * 1024;
/// Websocket buffers are capped here whatever the configuration says: tungstenite allocates the
/// read buffer up front and requires the write buffer to stay below its (unlimited) maximum.
const MAX_BUFFER: usize = 16 * 1024 * 1024;

/// A device connects: checks in the Go order (gate, device name, credentials), then upgrades
/// to a websocket that carries msgpack WRP messages both ways.
#[utoipa::path(get, path = "/device", tag = "devices",
    security((), ("basic" = []), ("bearer" = [])),
    params(
        ("X-Webpa-Device-Name" = String, Header, description = "The device, e.g. `mac:112233445566`; a token's `device-id` claim overrides it"),
        ("Upgrade" = String, Header, description = "`websocket`"),
        ("X-Webpa-Convey" = Option<String>, Header, description = "Base64 JSON the device reports about itself"),
    ),
    responses(
        (status = 101, description = "Upgraded to a websocket"),
        (status = 307, description = "The ring gives the device to another talaria (ring check in redirect mode)",
            headers(("Location" = String, description = "That talaria's URL + this path"))),
        (status = 400, description = "Missing or invalid device name, or not a websocket upgrade", body = ErrorBody),
        (status = 401, description = "Device credentials missing or invalid (when device authentication is configured)", body = ErrorBody),
        (status = 403, description = "The token's device-id claim is not a device id", body = ErrorBody),
        (status = 410, description = "The ring gives the device to another talaria (ring check in refuse mode)", body = ErrorBody),
        (status = 426, description = "Not a websocket upgrade (wrong Upgrade or Connection header)"),
        (status = 503, description = "The gate is closed (empty body), the device limit is reached, or a signing key is unavailable", body = ErrorBody),
    ))]
pub async fn connect(
    State(t): State<Arc<Talaria>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if !t.gate.is_open() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let name = match headers.get("x-webpa-device-name").map(|v| v.to_str()) {
        None => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "failed to extract device ID: missing device name header",
            )
        }
        Some(v) => v.unwrap_or_default(),
    };
    let mut id = match DeviceId::parse(name) {
        Ok(id) => id.to_string(),
        Err(e) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                &format!("failed to extract device ID: invalid device name: {e}"),
            )
        }
    };
    let mut info = device_info(&headers);
    match t.device_auth.validate(&headers).await {
        Ok(None) => {}
        Ok(Some(principal)) => {
            // A device-id claim names the device, whatever the header says (as in Go).
            if let Some(claimed) = principal.claims.get("device-id").and_then(|v| v.as_str()) {
                match DeviceId::parse(claimed) {
                    Ok(claimed) => id = claimed.to_string(),
                    Err(_) => {
                        return json_error(
                            StatusCode::FORBIDDEN,
                            "the token's device-id claim is not a device id",
                        )
                    }
                }
            }
            info.partner_id = principal.partner_ids.first().cloned();
            info.trust = principal.trust.unwrap_or(0);
            info.claims = principal.claims;
        }
        Err(e) => {
            metrics::counter!("xmidt_talaria_rejected_connections", "reason" => "auth")
                .increment(1);
            return e.into_response();
        }
    }
    if let Some(check) = t.ring.get() {
        if let Some(owner) = check.elsewhere(&id) {
            let outcome = match check.mode {
                RingMode::Accept => "accepted",
                RingMode::Redirect => "redirected",
                RingMode::Refuse => "refused",
            };
            metrics::counter!("xmidt_talaria_ring_check", "outcome" => outcome).increment(1);
            match check.mode {
                RingMode::Accept => {}
                RingMode::Redirect => {
                    let path = uri.path_and_query().map_or("/", |p| p.as_str());
                    let location = format!("{owner}{}", path.trim_end_matches('/'));
                    return (
                        StatusCode::TEMPORARY_REDIRECT,
                        [(header::LOCATION, location)],
                    )
                        .into_response();
                }
                RingMode::Refuse => {
                    return json_error(StatusCode::GONE, "this device belongs to another talaria");
                }
            }
        }
    }
    let max = t.config.device.max_devices;
    if max > 0 && t.registry.len() >= max && t.registry.get(&id).is_none() {
        metrics::counter!("xmidt_talaria_device_limit_reached_count").increment(1);
        return json_error(StatusCode::SERVICE_UNAVAILABLE, "device limit reached");
    }
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(rejection) => return rejection.into_response(),
    };
    let cfg = &t.config.device;
    upgrade
        .max_message_size(cfg.max_message_size)
        .max_frame_size(cfg.max_message_size)
        .read_buffer_size(cfg.read_buffer_size.min(MAX_BUFFER))
        .write_buffer_size(cfg.write_buffer_size.min(MAX_BUFFER))
        .on_upgrade(move |socket| session(t, id, info, socket))
}

/// Reads what the handshake headers say about the device.
fn device_info(headers: &HeaderMap) -> DeviceInfo {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (convey, compliance) = match text("x-webpa-convey") {
        None => (ConveyMetadata::default(), "missing-convey"),
        Some(raw) => match decode_convey(&raw) {
            None => (ConveyMetadata::default(), "invalid-convey"),
            Some(c) => {
                let full = CONVEY_REQUIRED.iter().all(|k| c.contains_key(*k));
                let compliance = if full {
                    "full"
                } else {
                    "convey-missing-fields"
                };
                (ConveyMetadata::from_convey(&c), compliance)
            }
        },
    };
    DeviceInfo {
        convey,
        compliance,
        intermediate_context: text("x-intermediate-context"),
        ..DeviceInfo::default()
    }
}

/// `X-Webpa-Convey`: standard base64 of a JSON object.
fn decode_convey(raw: &str) -> Option<Map<String, Value>> {
    if raw.len() > MAX_CONVEY {
        return None;
    }
    let json = base64::engine::general_purpose::STANDARD
        .decode(raw.trim())
        .ok()?;
    match serde_json::from_slice(&json).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// One device connection: registered (or refused) at once, then served until its offline
/// event. Not an `async fn`: one would keep a slot for the moved-out websocket for the whole
/// connection, and this future lives as long as the device stays connected.
fn session(
    t: Arc<Talaria>,
    id: String,
    info: DeviceInfo,
    socket: WebSocket,
) -> Either<impl Future<Output = ()>, impl Future<Output = ()>> {
    let device = Device::new(&id, info, t.config.device.queue_size);
    let device = match t.registry.add(device) {
        Ok(d) => d,
        Err(_) => {
            metrics::counter!("xmidt_talaria_device_limit_reached_count").increment(1);
            return Either::Left(refuse(socket));
        }
    };
    tracing::info!(
        device = &*device.id,
        session = %device.session_id(),
        "device connected"
    );
    metrics::counter!("xmidt_talaria_connect_count").increment(1);
    let (sink, stream) = socket.split();
    Either::Right(serve(t, device, sink, stream))
}

async fn refuse(mut socket: WebSocket) {
    let _ = socket
        .send(close_frame(CloseReason::DeviceLimitReached))
        .await;
}

async fn serve(
    t: Arc<Talaria>,
    device: Arc<Device>,
    sink: SplitSink<WebSocket, WsMessage>,
    stream: SplitStream<WebSocket>,
) {
    // Before the pumps, so that no event of the device goes out ahead of it. Event waits are
    // boxed here and below: a connection's future lives as long as the device stays, and
    // should not carry room for a wait that only a full outbound queue makes.
    Box::pin(t.dispatch_event(status::online(&t, &device), None)).await;
    tokio::join!(
        write_pump(&t, &device, sink),
        read_pump(&t, &device, stream)
    );

    t.registry.remove(&device);
    let reason = device.close_reason().unwrap_or(CloseReason::ReadError);
    tracing::info!(
        device = &*device.id,
        reason = reason.as_str(),
        "device disconnected"
    );
    metrics::counter!("xmidt_talaria_disconnect_count", "reason" => reason.as_str()).increment(1);
    Box::pin(t.dispatch_event(status::offline(&t, &device, reason), None)).await;
}

fn close_frame(reason: CloseReason) -> WsMessage {
    WsMessage::Close(Some(CloseFrame {
        // 1000 normal closure; the reason text says which.
        code: 1000,
        reason: reason.as_str().into(),
    }))
}

async fn write_pump(t: &Talaria, device: &Arc<Device>, mut sink: SplitSink<WebSocket, WsMessage>) {
    let cfg = &t.config.device;
    let mut ping = tokio::time::interval_at(Instant::now() + cfg.ping_period, cfg.ping_period);
    loop {
        tokio::select! {
            biased;
            () = device.closed().cancelled() => break,
            envelope = device.next_frame() => {
                let Some(envelope) = envelope else { break };
                let len = envelope.frame.len();
                let sent = timeout(cfg.write_timeout, sink.send(WsMessage::Binary(envelope.frame.into()))).await;
                let ok = matches!(sent, Ok(Ok(())));
                if let Some(written) = envelope.written {
                    let _ = written.send(ok);
                }
                if !ok {
                    device.close(CloseReason::WriteError);
                    break;
                }
                device.stats.sent(len);
            }
            _ = ping.tick() => {
                let ping = WsMessage::Ping(Bytes::copy_from_slice(device.id.as_bytes()));
                if !matches!(timeout(cfg.write_timeout, sink.send(ping)).await, Ok(Ok(()))) {
                    device.close(CloseReason::WriteError);
                    break;
                }
                // Pings count as messages sent but add no bytes, as in the Go talaria.
                device.stats.sent(0);
                metrics::counter!("xmidt_talaria_ping_count").increment(1);
            }
        }
    }
    let reason = device.close_reason().unwrap_or(CloseReason::ReadError);
    if reason != CloseReason::ClosedByDevice && reason != CloseReason::WriteError {
        let _ = timeout(cfg.write_timeout, sink.send(close_frame(reason))).await;
    }
    // Whatever is still queued will never be written: tell its senders now.
    for envelope in device.close_queue() {
        if let Some(written) = envelope.written {
            let _ = written.send(false);
        }
    }
}

async fn read_pump(t: &Talaria, device: &Arc<Device>, mut stream: SplitStream<WebSocket>) {
    let idle = t.config.device.idle_period;
    loop {
        let next = tokio::select! {
            () = device.closed().cancelled() => return,
            next = timeout(idle, stream.next()) => next,
        };
        let reason = match next {
            Err(_) => CloseReason::IdleTimeout,
            Ok(None) | Ok(Some(Ok(WsMessage::Close(_)))) => CloseReason::ClosedByDevice,
            Ok(Some(Err(e))) => {
                tracing::debug!(device = &*device.id, error = %e, "read error");
                CloseReason::ReadError
            }
            Ok(Some(Ok(frame))) => {
                match frame {
                    WsMessage::Binary(bytes) => {
                        device.stats.received(bytes.len());
                        Box::pin(handle_frame(t, device, &bytes)).await;
                    }
                    WsMessage::Pong(_) => {
                        metrics::counter!("xmidt_talaria_pong_count").increment(1)
                    }
                    // The websocket layer answers pings itself.
                    WsMessage::Ping(_) => {}
                    WsMessage::Text(text) => {
                        device.stats.received(text.len());
                        tracing::warn!(
                            device = &*device.id,
                            "text frame ignored: WRP frames are binary"
                        );
                        metrics::counter!("xmidt_talaria_inbound_wrp_messages", "outcome" => "rejected", "reason" => "text_frame").increment(1);
                    }
                    WsMessage::Close(_) => {}
                }
                continue;
            }
        };
        device.close(reason);
        return;
    }
}

/// Outcome label of the source check (talaria's `wrp_source_check` reasons).
fn source_check(device: &Device, source: &str) -> &'static str {
    if source.is_empty() {
        return "empty";
    }
    match Locator::parse(source).ok().and_then(|l| l.device_id()) {
        None => "parse_error",
        Some(id) if id.to_string() == *device.id => "id_match",
        Some(_) => "id_mismatch",
    }
}

/// One WRP frame from a device: checked, enriched, then an answer, an event, or both an event
/// and a QoS ack (once the event's deliveries have ended, or it could not be queued).
async fn handle_frame(t: &Talaria, device: &Arc<Device>, bytes: &[u8]) {
    let message = match Message::decode(bytes) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(device = &*device.id, error = %e, "undecodable WRP frame skipped");
            metrics::counter!("xmidt_talaria_inbound_wrp_messages", "outcome" => "rejected", "reason" => "decode_error").increment(1);
            return;
        }
    };
    let check = source_check(device, message.source);
    let enforce = t.config.device.source_check == SourceCheck::Enforce;
    let accepted = check == "id_match" || !enforce;
    metrics::counter!("xmidt_talaria_wrp_source_check", "outcome" => if accepted { "accepted" } else { "rejected" }, "reason" => check).increment(1);
    if !accepted {
        tracing::warn!(
            device = &*device.id,
            source = message.source,
            "message with a foreign source dropped"
        );
        return;
    }

    // Enrichment (cloud-spec §4.5): default content type, a timestamp, the token's partner.
    let now = rfc3339_nano(SystemTime::now());
    let partner = device.info.partner_id.as_deref().unwrap_or("unknown");
    let content_type = match message.content_type {
        "" => "application/octet-stream",
        given => given,
    };

    if message.is_transaction() {
        // Answers are the hot path of /device/send: enriched and encoded in place, without an
        // owned copy of the message.
        let mut metadata: Vec<(&str, &str)> = message
            .metadata
            .iter()
            .filter(|(key, _)| *key != XMIDT_TIMESTAMP)
            .collect();
        metadata.push((XMIDT_TIMESTAMP, &now));
        let partners = [partner];
        let answer = Message {
            content_type,
            metadata: Metadata::from_pairs(&metadata),
            partner_ids: StrList::from_strs(&partners),
            ..message
        };
        let Ok(frame) = answer.to_vec() else { return };
        if device.answer(message.transaction_uuid, frame) {
            metrics::counter!("xmidt_talaria_request_response_count").increment(1);
        } else {
            // Nobody waits for it (timed out, or the device started the transaction itself).
            tracing::debug!(
                device = &*device.id,
                transaction = message.transaction_uuid,
                "transaction broken"
            );
            metrics::counter!("xmidt_talaria_inbound_wrp_messages", "outcome" => "dropped", "reason" => "transaction_broken").increment(1);
        }
        return;
    }

    let mut m = OwnedMessage::from(&message);
    m.content_type = content_type.into();
    m.metadata.insert(XMIDT_TIMESTAMP.into(), now);
    m.partner_ids = vec![partner.into()];
    if m.msg_type == MessageType::SimpleEvent {
        m.session_id = device.session_id();
    }

    let needs_ack = m.msg_type == MessageType::SimpleEvent
        && message.qos_level().is_some_and(|q| q.needs_ack());
    if !needs_ack {
        t.dispatch_event(m, None).await;
        return;
    }
    // Acked only once caduceus has the event (or it was given up): an ack sent while the event
    // still waits in this process would be a lie if the process died, and the device would
    // never send it again. Reading goes on meanwhile: answers must not wait for caduceus.
    let ack = ack_for(t, device, &m);
    let (ended, delivered) = oneshot::channel();
    t.dispatch_event(m, Some(ended)).await;
    let device = device.clone();
    tokio::spawn(async move {
        // Resolves (with an error: nothing is ever sent) when the last delivery ends.
        let _ = delivered.await;
        send_ack(&device, &ack);
    });
}

/// The QoS ack of an event (cloud-spec §4.7).
fn ack_for(t: &Talaria, device: &Device, event: &OwnedMessage) -> OwnedMessage {
    let mut ack = OwnedMessage::new(MessageType::SimpleEvent);
    ack.source = t.config.outbound.source.clone();
    ack.dest = event.source.clone();
    ack.transaction_uuid = event.transaction_uuid.clone();
    ack.partner_ids = event.partner_ids.clone();
    ack.headers = event.headers.clone();
    ack.metadata = event.metadata.clone();
    ack.session_id = device.session_id();
    ack.qos = event.qos;
    ack.rdr = Some(0);
    ack
}

/// Sent whether or not the event could be forwarded.
fn send_ack(device: &Device, ack: &OwnedMessage) {
    let outcome = match ack.to_msgpack() {
        Ok(frame) => device
            .enqueue(Envelope {
                frame,
                written: None,
            })
            .is_ok(),
        Err(_) => false,
    };
    let name = if outcome {
        "xmidt_talaria_outbound_ack_success"
    } else {
        "xmidt_talaria_outbound_ack_failure"
    };
    metrics::counter!(name).increment(1);
}
