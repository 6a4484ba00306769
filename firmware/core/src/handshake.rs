//! What the driver needs to open the WebSocket (client-spec §3.1-3.2) and to fetch a token from
//! themis (§3.4.1): the endpoint and the header values, written by the core without an allocator.

use core::fmt::{self, Write};

use crate::base64;
use crate::client::ConnId;
use crate::config::{Config, Identity};
use crate::error::{ConfigError, Error};
use crate::json;
use crate::url::Endpoint;

/// `X-WebPA-Device-Protocols`, a constant.
pub const DEVICE_PROTOCOLS: &str = "wrp-0.11,getset-0.1";
/// parodus keeps the base64 convey in a 1024-byte buffer; longer is refused, never truncated.
pub const MAX_CONVEY: usize = 1024;
/// The longest User-Agent the core writes.
pub const MAX_USER_AGENT: usize = 256;

/// The convey keys, in the order parodus writes them.
pub(crate) const CONVEY_KEYS: [&str; 12] = [
    "hw-model",
    "hw-serial-number",
    "hw-manufacturer",
    "fw-name",
    "boot-time",
    "webpa-protocol",
    "webpa-interface-used",
    "hw-last-reboot-reason",
    "webpa-last-reconnect-reason",
    "boot-time-retry-wait",
    "webpa-interface-label",
    "wan-ipv4-address",
];

/// `<protocol> (<fw-name>; <hw-model>/<hw-manufacturer>;)`, `unknown` for empty values.
pub(crate) fn user_agent(
    cfg: &Config<'_>,
) -> Result<heapless::String<MAX_USER_AGENT>, ConfigError> {
    fn or_unknown(s: &str) -> &str {
        if s.is_empty() {
            "unknown"
        } else {
            s
        }
    }
    let mut ua = heapless::String::new();
    write!(
        ua,
        "{} ({}; {}/{};)",
        or_unknown(cfg.protocol),
        or_unknown(cfg.fw_name),
        or_unknown(cfg.hw_model),
        or_unknown(cfg.hw_manufacturer)
    )
    .map_err(|_| ConfigError::UserAgentTooLong)?;
    Ok(ua)
}

/// Writes JSON object members, leaving out empty strings as parodus does.
struct Object<'w, W: Write> {
    w: &'w mut W,
    first: bool,
}

impl<W: Write> Object<'_, W> {
    fn key(&mut self, key: &str) -> fmt::Result {
        self.w.write_char(if self.first { '{' } else { ',' })?;
        self.first = false;
        json::write_str(self.w, key)?;
        self.w.write_char(':')
    }

    fn str(&mut self, key: &str, value: &str) -> fmt::Result {
        if value.is_empty() {
            return Ok(());
        }
        self.key(key)?;
        json::write_str(self.w, value)
    }

    fn num(&mut self, key: &str, value: u64) -> fmt::Result {
        self.key(key)?;
        write!(self.w, "{value}")
    }

    fn end(self) -> fmt::Result {
        self.w.write_str(if self.first { "{}" } else { "}" })
    }
}

/// The convey JSON (§3.2): the keys in parodus's order; `boot-time` and the reconnect reason
/// always, `boot-time-retry-wait` only when > 0, other fields only when not empty; then the
/// configured extras.
fn convey_json(id: &Identity<'_>, reason: &str, w: &mut impl Write) -> fmt::Result {
    let c = &id.cfg;
    let mut o = Object { w, first: true };
    o.str("hw-model", c.hw_model)?;
    o.str("hw-serial-number", c.hw_serial_number)?;
    o.str("hw-manufacturer", c.hw_manufacturer)?;
    o.str("fw-name", c.fw_name)?;
    o.num("boot-time", c.boot_time)?;
    o.str("webpa-protocol", c.protocol)?;
    o.str("webpa-interface-used", c.interface_used)?;
    o.str("hw-last-reboot-reason", c.hw_last_reboot_reason)?;
    o.key("webpa-last-reconnect-reason")?;
    json::write_str(o.w, reason)?;
    if c.boot_time_retry_wait > 0 {
        o.num("boot-time-retry-wait", u64::from(c.boot_time_retry_wait))?;
    }
    o.str("webpa-interface-label", c.interface_label)?;
    o.str("wan-ipv4-address", c.wan_ipv4_address)?;
    for (key, value) in c.convey_extras {
        o.str(key, value)?;
    }
    o.end()
}

struct Counter(usize);

impl Write for Counter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

/// The length of the base64 convey for `reason`.
pub(crate) fn convey_len(id: &Identity<'_>, reason: &str) -> usize {
    let mut n = Counter(0);
    // Counting never fails.
    let _ = convey_json(id, reason, &mut n);
    n.0.div_ceil(3) * 4
}

/// Writes the base64 convey into `out`, returning its length.
pub(crate) fn write_convey(
    id: &Identity<'_>,
    reason: &str,
    out: &mut [u8],
) -> Result<usize, Error> {
    let mut enc = base64::Encoder::new(out);
    convey_json(id, reason, &mut enc).map_err(|_| Error::ConveyTooLong)?;
    enc.finish().map_err(|_| Error::ConveyTooLong)
}

/// "Open the WebSocket": `GET /api/v2/device` on `endpoint` with `headers`, no subprotocol, no
/// compression. Report the outcome with [`crate::Client::handle_handshake`] or
/// [`crate::Client::handle_connect_failed`], quoting `conn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connect<'a> {
    pub conn: ConnId,
    pub endpoint: Endpoint<'a>,
    pub headers: Headers<'a>,
}

/// The handshake's own headers, in parodus's order. The WebSocket layer adds `Host`, `Upgrade`,
/// `Connection`, `Sec-WebSocket-Key` and `Sec-WebSocket-Version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headers<'a> {
    pub(crate) authorization: Option<&'a str>,
    pub(crate) device_name: &'a str,
    pub(crate) user_agent: &'a str,
    pub(crate) convey: &'a str,
}

impl<'a> Headers<'a> {
    /// `(name, value)` pairs: `Authorization` (only with a token), `X-WebPA-Device-Name`,
    /// `X-WebPA-Device-Protocols`, `User-Agent`, `X-WebPA-Convey`.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &'a str)> {
        [
            ("Authorization", self.authorization),
            ("X-WebPA-Device-Name", Some(self.device_name)),
            ("X-WebPA-Device-Protocols", Some(DEVICE_PROTOCOLS)),
            ("User-Agent", Some(self.user_agent)),
            ("X-WebPA-Convey", Some(self.convey)),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?)))
    }

    /// The value of the header `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

/// "Fetch a token": HTTP GET `url` with the client certificate (mTLS) and `headers`; a 200's
/// body is the token. Report with [`crate::Client::handle_token`] or
/// [`crate::Client::handle_token_failed`].
#[derive(Debug, Clone, Copy)]
pub struct TokenRequest<'a> {
    pub url: &'a str,
    id: &'a Identity<'a>,
    uuid: &'a str,
    reason: &'a str,
}

impl<'a> TokenRequest<'a> {
    pub(crate) fn new(id: &'a Identity<'a>, uuid: &'a str, reason: &'a str) -> Self {
        TokenRequest {
            url: id.cfg.token_server_url,
            id,
            uuid,
            reason,
        }
    }

    /// The X-Midt-* headers in parodus's order (the uuid is a fresh v4 per request).
    pub fn headers(&self) -> impl Iterator<Item = (&'static str, &'a str)> {
        let id = self.id;
        let c = &id.cfg;
        [
            ("X-Midt-Mac-Address", id.mac.as_str()),
            ("X-Midt-Serial-Number", c.hw_serial_number),
            ("X-Midt-Uuid", self.uuid),
            ("X-Midt-Partner-Id", c.partner_ids),
            ("X-Midt-Hardware-Model", c.hw_model),
            ("X-Midt-Hardware-Manufacturer", c.hw_manufacturer),
            ("X-Midt-Firmware-Name", c.fw_name),
            ("X-Midt-Protocol", c.protocol),
            ("X-Midt-Interface-Used", c.interface_used),
            ("X-Midt-Last-Reboot-Reason", c.hw_last_reboot_reason),
            ("X-Midt-Last-Reconnect-Reason", self.reason),
            ("X-Midt-Boot-Retry-Wait", id.boot_time_retry_wait.as_str()),
        ]
        .into_iter()
    }
}

/// Two requests are equal when they send the same URL and headers.
impl PartialEq for TokenRequest<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.url == other.url && self.headers().eq(other.headers())
    }
}
