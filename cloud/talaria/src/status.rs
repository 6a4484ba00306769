//! The online and offline events talaria emits for each connection (cloud-spec §4.6).

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use serde_json::Value;
use wrp_nostd::{MessageType, OwnedMessage};

use crate::registry::{CloseReason, Device};
use crate::Talaria;
use xmidt_common::gotime::{format_duration as go_duration, rfc3339_nano};

fn base(t: &Talaria, device: &Device, state: &str, now: SystemTime) -> OwnedMessage {
    let info = &device.info;
    let mut m = OwnedMessage::new(MessageType::SimpleEvent);
    m.source = t.config.outbound.source.clone();
    m.dest = format!("event:device-status/{}/{state}", device.id);
    m.content_type = "application/json".into();
    m.partner_ids = vec![info.partner_id.clone().unwrap_or_else(|| "unknown".into())];
    m.session_id = device.session_id();
    // The Go talaria leaves this empty (talaria#174); consumers want to de-duplicate.
    m.transaction_uuid = uuid::Uuid::new_v4().to_string();
    for (meta, value) in info.convey.iter() {
        m.metadata.insert(meta.into(), value.into());
    }
    m.metadata.insert("/trust".into(), info.trust.to_string());
    if let Some(account) = info.claims.get("accountID").and_then(Value::as_str) {
        m.metadata.insert("/account-id".into(), account.into());
    }
    m.metadata
        .insert("/hw-deviceid".into(), device.id.to_string());
    if let Some(ctx) = &info.intermediate_context {
        m.metadata
            .insert("/intermediate-context".into(), ctx.clone());
    }
    m.metadata
        .insert("/compliance".into(), info.compliance.into());
    m.metadata
        .insert("/xmidt-timestamp".into(), rfc3339_nano(now));
    m
}

pub fn online(t: &Talaria, device: &Device) -> OwnedMessage {
    let now = SystemTime::now();
    let mut m = base(t, device, "online", now);
    m.payload = serde_json::json!({ "id": &*device.id, "ts": rfc3339_nano(now) })
        .to_string()
        .into_bytes();
    m
}

pub fn offline(t: &Talaria, device: &Device, reason: CloseReason) -> OwnedMessage {
    let now = SystemTime::now();
    let mut m = base(t, device, "offline", now);
    let s = &device.stats;
    m.payload = serde_json::json!({
        "id": &*device.id,
        "ts": rfc3339_nano(now),
        "bytes-sent": s.bytes_sent.load(Ordering::Relaxed),
        "messages-sent": s.messages_sent.load(Ordering::Relaxed),
        "bytes-received": s.bytes_received.load(Ordering::Relaxed),
        "messages-received": s.messages_received.load(Ordering::Relaxed),
        "connected-at": rfc3339_nano(device.connected_at),
        "up-time": go_duration(device.up_time()),
        "reason-for-closure": reason.as_str(),
    })
    .to_string()
    .into_bytes();
    m
}
