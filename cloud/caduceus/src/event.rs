//! An accepted event, with what every webhook needs from it computed once: the event type and
//! path, the device it is about, its encodings and its delivery headers.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;
use wrp_nostd::http::names;
use wrp_nostd::{DeviceId, OwnedMessage, Scheme};

pub(crate) struct Event {
    pub msg: OwnedMessage,
    /// The whole WRP as msgpack: the bytes received when caduceus changed nothing.
    pub msgpack: Bytes,
    json: OnceLock<Bytes>,
    pub payload: Bytes,
    /// `dest` without `event:`, e.g. `device-status/mac:112233445566/online`.
    pub event_path: String,
    /// The event path up to the first `/`, e.g. `device-status`.
    pub event_type: String,
    /// The canonical id of the device the event is about, when there is one.
    pub device_id: Option<String>,
    /// The Standard Webhooks message id (`webhook-id`): the same for every webhook and retry.
    pub id: String,
    /// The WRP and `X-Webpa-*` headers of every delivery.
    pub headers: HeaderMap,
}

const WEBPA_EVENT: HeaderName = HeaderName::from_static("x-webpa-event");
const WEBPA_TRANSACTION_ID: HeaderName = HeaderName::from_static("x-webpa-transaction-id");
const WEBPA_DEVICE_ID: HeaderName = HeaderName::from_static("x-webpa-device-id");
const WEBPA_DEVICE_NAME: HeaderName = HeaderName::from_static("x-webpa-device-name");
const WEBPA_SOURCE: HeaderName = HeaderName::from_static("x-webpa-source");
const WEBPA_DESTINATION: HeaderName = HeaderName::from_static("x-webpa-destination");

impl Event {
    pub fn new(msg: OwnedMessage, msgpack: Bytes) -> Event {
        let event_path = strip_scheme(&msg.dest, "event")
            .unwrap_or(&msg.dest)
            .to_string();
        let event_type = event_path.split('/').next().unwrap_or_default().to_string();
        let device_id = device_id(&msg.source, &event_path);
        let id = message_id(&msg.transaction_uuid);
        let headers = headers(&msg, &event_path, device_id.as_deref());
        Event {
            payload: Bytes::copy_from_slice(&msg.payload),
            msgpack,
            json: OnceLock::new(),
            event_path,
            event_type,
            device_id,
            id,
            headers,
            msg,
        }
    }

    /// The whole WRP as JSON, encoded on first use.
    pub fn json(&self) -> Bytes {
        self.json
            .get_or_init(|| Bytes::from(self.msg.to_json()))
            .clone()
    }

    /// What the event costs in a queue.
    pub fn size(&self) -> usize {
        self.msgpack.len() + self.payload.len()
    }
}

/// `s` without a leading `scheme:` (matched case-insensitively).
fn strip_scheme<'a>(s: &'a str, scheme: &str) -> Option<&'a str> {
    let (head, rest) = s.split_once(':')?;
    head.trim().eq_ignore_ascii_case(scheme).then_some(rest)
}

/// The device an event is about: its `source` when that names a device; else the device named
/// right after the event type (talaria's `event:device-status/<id>/online` comes from
/// `dns:talaria`); else a `dns:` source.
fn device_id(source: &str, event_path: &str) -> Option<String> {
    let from_source = DeviceId::parse(source).ok();
    if let Some(id) = from_source.filter(|id| id.scheme() != Scheme::Dns) {
        return Some(id.to_string());
    }
    let in_path = event_path.split('/').nth(1).unwrap_or_default();
    DeviceId::parse(in_path)
        .ok()
        .or(from_source)
        .map(|id| id.to_string())
}

/// The transaction uuid when it can be a header value (talaria's retries of one event then
/// carry the same id, so receivers can drop duplicates); else a fresh one.
fn message_id(transaction_uuid: &str) -> String {
    let usable = !transaction_uuid.is_empty()
        && transaction_uuid.len() <= 128
        && transaction_uuid.bytes().all(|b| b.is_ascii_graphic());
    if usable {
        format!("msg_{transaction_uuid}")
    } else {
        format!("msg_{}", uuid::Uuid::new_v4().simple())
    }
}

/// wrp-nostd's header names as `HeaderName`s, made once rather than per event (they are
/// mixed-case text, which `HeaderName` would lower-case into a new allocation every time).
fn header_name(name: &'static str) -> Option<HeaderName> {
    static NAMES: OnceLock<HashMap<&'static str, HeaderName>> = OnceLock::new();
    let known = NAMES.get_or_init(|| {
        [
            names::MESSAGE_TYPE,
            names::TRANSACTION_UUID,
            names::STATUS,
            names::RDR,
            names::INCLUDE_SPANS,
            names::SPAN,
            names::PATH,
            names::SOURCE,
            names::ACCEPT,
            names::METADATA,
            names::PARTNER_ID,
            names::SESSION_ID,
            names::HEADERS,
            names::SERVICE_NAME,
            names::URL,
            names::QOS,
        ]
        .into_iter()
        .filter_map(|n| Some((n, HeaderName::from_bytes(n.as_bytes()).ok()?)))
        .collect()
    });
    match known.get(name) {
        Some(name) => Some(name.clone()),
        None => HeaderName::from_bytes(name.as_bytes()).ok(),
    }
}

/// The WRP header form (X-Xmidt-*) plus Go caduceus' X-Webpa-* headers. `X-Webpa-Device-Name`
/// is the canonical device id, not `dest`, as in Go. Values a header cannot carry (control
/// characters) are left out.
fn headers(msg: &OwnedMessage, event_path: &str, device_id: Option<&str>) -> HeaderMap {
    let mut map = HeaderMap::new();
    let mut add = |name: HeaderName, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            map.append(name, value);
        }
    };
    for (name, value) in wrp_nostd::http::to_header_pairs(&msg.as_message()) {
        // Content-Type depends on the webhook's body; the device name is replaced below.
        if name == names::CONTENT_TYPE || name == names::DEVICE_NAME {
            continue;
        }
        if let Some(name) = header_name(name) {
            add(name, &value);
        }
    }
    add(WEBPA_EVENT, event_path);
    add(WEBPA_TRANSACTION_ID, &msg.transaction_uuid);
    if let Some(id) = device_id {
        add(WEBPA_DEVICE_ID, id);
        add(WEBPA_DEVICE_NAME, id);
    }
    add(WEBPA_SOURCE, &msg.source);
    add(WEBPA_DESTINATION, &msg.dest);
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_ids() {
        let id = |source: &str, path: &str| device_id(source, path);
        assert_eq!(
            id("MAC:11-22-33-44-55-66/config", "iot"),
            Some("mac:112233445566".into())
        );
        assert_eq!(
            id("dns:talaria", "device-status/mac:112233445566/online"),
            Some("mac:112233445566".into())
        );
        assert_eq!(
            id("serial:ABC/x", "device-status/mac:112233445566/online"),
            Some("serial:ABC".into())
        );
        assert_eq!(id("dns:gateway", "iot"), Some("dns:gateway".into()));
        assert_eq!(id("nonsense", "iot"), None);
    }

    #[test]
    fn event_paths_and_headers() {
        let msg = OwnedMessage::builder(wrp_nostd::MessageType::SimpleEvent)
            .source("dns:talaria")
            .dest("event:device-status/mac:112233445566/online")
            .transaction_uuid("t-1")
            .metadata("/k", "v\nbad")
            .build();
        let e = Event::new(msg, Bytes::new());
        assert_eq!(e.event_type, "device-status");
        assert_eq!(e.event_path, "device-status/mac:112233445566/online");
        assert_eq!(e.id, "msg_t-1");
        assert_eq!(e.headers["x-webpa-device-name"], "mac:112233445566");
        assert_eq!(
            e.headers["x-webpa-event"],
            "device-status/mac:112233445566/online"
        );
        assert_eq!(e.headers["x-xmidt-message-type"], "SimpleEvent");
        // The metadata value with a newline cannot be a header; the rest still is.
        assert!(e.headers.get("x-xmidt-metadata").is_none());
        assert!(e.headers.get("content-type").is_none());
    }

    #[test]
    fn message_ids_are_header_safe() {
        assert_eq!(message_id("abc"), "msg_abc");
        let fresh = message_id("has space");
        assert!(fresh.starts_with("msg_") && fresh.len() == 36, "{fresh}");
        assert_ne!(message_id(""), message_id(""));
    }
}
