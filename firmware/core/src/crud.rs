//! The in-process `parodus` service (client-spec §6): CRUD on `<device>/parodus/<key>`.
//!
//! Device keys, `cloud-status`, `service-status/<svc>` and `cloud-disconnect` are answered here.
//! Tags (`tag`/`tags`) need storage, which is the driver's: they come back to it as a
//! [`TagRequest`], answered with [`crate::Client::answer_tag`].

use core::fmt::Write;

use wrp_nostd::{Message, MessageType};

use crate::client::ConnId;
use crate::config::{Identity, WEBPA_UUID};
use crate::json::{self, SliceWriter};
use crate::reason::ReconnectReason;
use crate::routing::segments;

/// Room for the longest answer: `{"webpa-url":"<256 bytes, each escaped>"}`.
pub(crate) const MAX_PAYLOAD: usize = 640;

/// What a tag request asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagOp {
    /// `CREATE …/parodus/tag/<name>`; parodus answers 201 with `{"<name>":{…}}`, 409 if it
    /// exists, 400 on a bad payload, 500 on a storage error.
    Create,
    /// `RETRIEVE …/parodus/tags` (all, `name` is `None`) or `…/parodus/tags/<name>`.
    Retrieve,
    Update,
    Delete,
}

/// Where a request came from, so its answer goes back the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Cloud(ConnId),
    Local,
}

/// A tag CRUD request for the driver's storage (parodus keeps tags in `--crud-config-file`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagRequest<'a> {
    pub op: TagOp,
    /// The tag: the segment after `tag`/`tags`.
    pub name: Option<&'a str>,
    /// The tag's JSON for create and update.
    pub payload: &'a [u8],
    pub msg_type: MessageType,
    pub source: &'a str,
    pub dest: &'a str,
    pub transaction_uuid: &'a str,
    pub(crate) origin: Origin,
}

impl<'a> TagRequest<'a> {
    /// The fields an answer needs, as a message.
    pub(crate) fn request(&self) -> Message<'a> {
        Message {
            source: self.source,
            dest: self.dest,
            transaction_uuid: self.transaction_uuid,
            ..Message::new(self.msg_type)
        }
    }
}

/// The local service's decision.
pub(crate) enum Crud<'a> {
    /// A CRUD answer: `status` set, `rdr` 0, the JSON payload written to the caller's buffer
    /// (may be empty).
    Reply {
        status: u16,
    },
    /// The request lacks a transaction_uuid: parodus's generic 400 (§5.2 shape).
    Invalid,
    Tag(TagRequest<'a>),
    /// Answer 200, then close and stay away for 5 minutes with this reason.
    CloudDisconnect(ReconnectReason),
}

fn reply(status: u16) -> Crud<'static> {
    Crud::Reply { status }
}

/// Writes a JSON answer into `payload`; an answer too long for it is a 500, not a truncation.
fn json_reply(
    payload: &mut Payload,
    write: impl FnOnce(&mut SliceWriter<'_>) -> core::fmt::Result,
) -> Crud<'static> {
    let mut w = SliceWriter {
        buf: &mut payload.buf,
        len: 0,
    };
    match write(&mut w) {
        Ok(()) => {
            payload.len = w.len;
            reply(200)
        }
        Err(_) => reply(500),
    }
}

/// Room for a CRUD answer's JSON.
pub(crate) struct Payload {
    buf: [u8; MAX_PAYLOAD],
    len: usize,
}

impl Payload {
    pub fn new() -> Self {
        Payload {
            buf: [0; MAX_PAYLOAD],
            len: 0,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Handles a request whose dest service is `parodus`.
pub(crate) fn handle<'a>(
    m: &Message<'a>,
    origin: Origin,
    payload: &mut Payload,
    id: &Identity<'_>,
    cloud_online: bool,
    service_online: impl Fn(&str) -> bool,
) -> Crud<'a> {
    if m.transaction_uuid.is_empty() {
        return Crud::Invalid;
    }
    let mut seg = segments(m.dest).skip(2);
    let (key, sub, extra) = (seg.next(), seg.next(), seg.next());
    let tag = |op| {
        Crud::Tag(TagRequest {
            op,
            name: sub,
            payload: m.payload,
            msg_type: m.msg_type,
            source: m.source,
            dest: m.dest,
            transaction_uuid: m.transaction_uuid,
            origin,
        })
    };
    let is_tag = matches!(key, Some("tag" | "tags"));
    match m.msg_type {
        MessageType::Retrieve if is_tag && extra.is_none() => tag(TagOp::Retrieve),
        MessageType::Create if is_tag && sub.is_some() && extra.is_none() => tag(TagOp::Create),
        MessageType::Update if is_tag && sub.is_some() && extra.is_none() => tag(TagOp::Update),
        MessageType::Delete if is_tag && sub.is_some() && extra.is_none() => tag(TagOp::Delete),
        MessageType::Retrieve => match (key, sub, extra) {
            (Some("service-status"), Some(svc), None) => {
                let status = if service_online(svc) {
                    "online"
                } else {
                    "offline"
                };
                json_reply(payload, |w| {
                    json::write_object_str(w, "service-status", status)
                })
            }
            (Some(key), None, None) => retrieve(key, id, cloud_online, payload),
            _ => reply(400),
        },
        MessageType::Update if key == Some("cloud-disconnect") && sub.is_none() => {
            match json::flat_str_field(m.payload, "disconnection-reason")
                .ok()
                .flatten()
                .and_then(ReconnectReason::cloud_disconnect)
            {
                Some(reason) => Crud::CloudDisconnect(reason),
                None => reply(400),
            }
        }
        _ => reply(400),
    }
}

/// A device key (§6.1): 200 with `{"<key>":<value>}`; unknown keys and empty values give 400,
/// as in parodus.
fn retrieve(
    key: &str,
    id: &Identity<'_>,
    cloud_online: bool,
    payload: &mut Payload,
) -> Crud<'static> {
    let c = &id.cfg;
    let text = match key {
        "hw-model" => c.hw_model,
        "hw-serial-number" => c.hw_serial_number,
        "hw-manufacturer" => c.hw_manufacturer,
        "hw-mac" => &id.mac,
        "hw-last-reboot-reason" => c.hw_last_reboot_reason,
        "fw-name" => c.fw_name,
        "webpa-interface-used" => c.interface_used,
        "webpa-interface-label" => c.interface_label,
        "wan-ipv4-address" => c.wan_ipv4_address,
        "webpa-url" => c.cloud_url,
        "webpa-protocol" => c.protocol,
        "webpa-uuid" => WEBPA_UUID,
        "cloud-status" if cloud_online => "online",
        "cloud-status" => "offline",
        _ => {
            let number = match key {
                "boot-time" => c.boot_time,
                "webpa-ping-timeout" => u64::from(c.ping_timeout_secs),
                "webpa-backoff-max" => u64::from(c.backoff_max),
                _ => return reply(400),
            };
            return json_reply(payload, |w| json::write_object_num(w, key, number));
        }
    };
    if text.is_empty() {
        return reply(400);
    }
    json_reply(payload, |w| json::write_object_str(w, key, text))
}

/// The answer to `request`: the same type, source and dest swapped, transaction_uuid copied.
/// CRUD answers set `status` and `rdr` 0 (§6); the dispatcher's error answers (531, 403, 400)
/// set neither, copy `path`, and carry the code in a JSON payload (§5.2).
pub(crate) fn answer<'m>(
    request: &Message<'m>,
    status: Option<u16>,
    payload: &'m [u8],
) -> Message<'m> {
    Message {
        source: request.dest,
        dest: request.source,
        transaction_uuid: request.transaction_uuid,
        status: status.map(i64::from),
        rdr: status.map(|_| 0),
        path: if status.is_none() { request.path } else { "" },
        payload,
        ..Message::new(request.msg_type)
    }
}

/// The §5.2 payload: `{"statusCode":<code>,"message":"<text>"}`.
pub(crate) fn error_payload(code: u16) -> heapless::String<64> {
    let message = match code {
        403 => "Invalid partner_id",
        531 => "Service Unavailable",
        _ => "Invalid Request",
    };
    let mut s = heapless::String::new();
    // The longest is 49 bytes.
    let _ = write!(s, "{{\"statusCode\":{code},\"message\":\"{message}\"}}");
    s
}
