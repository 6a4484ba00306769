//! The HTTP header form of WRP (feature `http`), as wrp-go v3's `wrphttp` reads and writes it:
//! fields in `X-Xmidt-*` headers, `dest` in `X-Webpa-Device-Name`, `content_type` in
//! `Content-Type` and the payload as the body. The deprecated `X-Midt-*` names are read too.
//!
//! One addition: `qos`, which wrp-go has no header for, is written as `X-Xmidt-Qos` when it is not
//! 0 and read back, so the form loses nothing. Go services ignore the extra header.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::message::{Message, MessageType};
use crate::owned::OwnedMessage;

/// Header names, in the order they are written.
pub mod names {
    pub const MESSAGE_TYPE: &str = "X-Xmidt-Message-Type";
    pub const TRANSACTION_UUID: &str = "X-Xmidt-Transaction-Uuid";
    pub const STATUS: &str = "X-Xmidt-Status";
    pub const RDR: &str = "X-Xmidt-Request-Delivery-Response";
    pub const INCLUDE_SPANS: &str = "X-Xmidt-Include-Spans";
    pub const SPAN: &str = "X-Xmidt-Span";
    pub const PATH: &str = "X-Xmidt-Path";
    pub const SOURCE: &str = "X-Xmidt-Source";
    pub const DEVICE_NAME: &str = "X-Webpa-Device-Name";
    pub const ACCEPT: &str = "X-Xmidt-Accept";
    pub const METADATA: &str = "X-Xmidt-Metadata";
    pub const PARTNER_ID: &str = "X-Xmidt-Partner-Id";
    pub const SESSION_ID: &str = "X-Xmidt-Session-Id";
    pub const HEADERS: &str = "X-Xmidt-Headers";
    pub const SERVICE_NAME: &str = "X-Xmidt-Service-Name";
    pub const URL: &str = "X-Xmidt-Url";
    pub const QOS: &str = "X-Xmidt-Qos";
    pub const CONTENT_TYPE: &str = "Content-Type";
}

/// The content type given to a non-empty body that has none.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// Why headers are not a WRP message, or a message cannot be written as headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// No `X-Xmidt-Message-Type` (or `X-Midt-Msg-Type`).
    MissingMessageType,
    /// A message type that is neither a number 3..=11 nor a known name.
    InvalidMessageType(String),
    /// A header that must hold a number, a boolean or a span does not.
    InvalidValue { header: &'static str, value: String },
    /// A metadata entry without `=`.
    InvalidMetadata(String),
    /// A value with bytes an HTTP header cannot carry (control characters, or not UTF-8).
    BadHeaderText { header: &'static str },
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::MissingMessageType => write!(f, "missing {} header", names::MESSAGE_TYPE),
            HttpError::InvalidMessageType(v) => write!(f, "invalid {} {v:?}", names::MESSAGE_TYPE),
            HttpError::InvalidValue { header, value } => write!(f, "invalid {header} {value:?}"),
            HttpError::InvalidMetadata(v) => write!(
                f,
                "invalid {} entry {v:?}: expected key=value",
                names::METADATA
            ),
            HttpError::BadHeaderText { header } => {
                write!(f, "{header} holds characters a header cannot carry")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for HttpError {}

/// The headers for `m`, as (canonical name, value) pairs in a stable order. The body is
/// `m.payload`. `Content-Type` defaults to `application/octet-stream` for a non-empty payload.
pub fn to_header_pairs(m: &Message<'_>) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mut one = |name, value: &str| {
        if !value.is_empty() {
            out.push((name, value.to_string()));
        }
    };
    one(names::MESSAGE_TYPE, m.msg_type.friendly_name());
    one(names::TRANSACTION_UUID, m.transaction_uuid);
    one(
        names::STATUS,
        &m.status.map(|s| s.to_string()).unwrap_or_default(),
    );
    one(
        names::RDR,
        &m.rdr.map(|s| s.to_string()).unwrap_or_default(),
    );
    one(
        names::INCLUDE_SPANS,
        if m.include_spans { "true" } else { "" },
    );
    one(names::PATH, m.path);
    one(names::SOURCE, m.source);
    one(names::DEVICE_NAME, m.dest);
    one(names::ACCEPT, m.accept);
    one(names::SESSION_ID, m.session_id);
    one(names::SERVICE_NAME, m.service_name);
    one(names::URL, m.url);
    one(
        names::QOS,
        &if m.qos != 0 {
            m.qos.to_string()
        } else {
            String::new()
        },
    );
    let content_type = match (m.content_type, m.payload.is_empty()) {
        ("", false) => DEFAULT_CONTENT_TYPE,
        (ct, _) => ct,
    };
    one(names::CONTENT_TYPE, content_type);
    for span in m.spans.iter() {
        let fields: Vec<String> = span.fields().map(|f| f.to_string()).collect();
        out.push((names::SPAN, fields.join(",")));
    }
    for (k, v) in m.metadata.iter() {
        out.push((names::METADATA, alloc::format!("{k}={v}")));
    }
    for id in m.partner_ids.iter() {
        out.push((names::PARTNER_ID, id.to_string()));
    }
    for h in m.headers.iter() {
        out.push((names::HEADERS, h.to_string()));
    }
    out
}

/// The headers for `m` as an [`http::HeaderMap`] (the body is `m.payload`).
pub fn to_header_map(m: &Message<'_>) -> Result<HeaderMap, HttpError> {
    let mut map = HeaderMap::new();
    for (name, value) in to_header_pairs(m) {
        let value = HeaderValue::from_bytes(value.as_bytes())
            .map_err(|_| HttpError::BadHeaderText { header: name })?;
        map.append(HeaderName::from_static(lower(name)), value);
    }
    Ok(map)
}

/// `HeaderName::from_static` wants lower case; the names above are constants, so this is a
/// lookup, not an allocation.
fn lower(name: &'static str) -> &'static str {
    const LOWER: [(&str, &str); 18] = [
        (names::MESSAGE_TYPE, "x-xmidt-message-type"),
        (names::TRANSACTION_UUID, "x-xmidt-transaction-uuid"),
        (names::STATUS, "x-xmidt-status"),
        (names::RDR, "x-xmidt-request-delivery-response"),
        (names::INCLUDE_SPANS, "x-xmidt-include-spans"),
        (names::SPAN, "x-xmidt-span"),
        (names::PATH, "x-xmidt-path"),
        (names::SOURCE, "x-xmidt-source"),
        (names::DEVICE_NAME, "x-webpa-device-name"),
        (names::ACCEPT, "x-xmidt-accept"),
        (names::METADATA, "x-xmidt-metadata"),
        (names::PARTNER_ID, "x-xmidt-partner-id"),
        (names::SESSION_ID, "x-xmidt-session-id"),
        (names::HEADERS, "x-xmidt-headers"),
        (names::SERVICE_NAME, "x-xmidt-service-name"),
        (names::URL, "x-xmidt-url"),
        (names::QOS, "x-xmidt-qos"),
        (names::CONTENT_TYPE, "content-type"),
    ];
    LOWER
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("x-xmidt-unknown", |(_, l)| l)
}

/// Reads a message from headers and a body, as wrp-go's `wrphttp` does: the current name first,
/// then the deprecated `X-Midt-*` alias. List headers may repeat and may hold comma-separated
/// items; metadata items are `key=value`; spans are exactly three comma-separated fields.
pub fn from_headers(headers: &HeaderMap, body: &[u8]) -> Result<OwnedMessage, HttpError> {
    let h = Headers(headers);
    let msg_type = match h.one(names::MESSAGE_TYPE, "x-midt-msg-type")? {
        None => return Err(HttpError::MissingMessageType),
        Some(v) => MessageType::parse(v.trim())
            .ok_or_else(|| HttpError::InvalidMessageType(v.to_string()))?,
    };
    let mut m = OwnedMessage::new(msg_type);
    let text = |name, old| {
        h.one(name, old)
            .map(|v| v.map(|v| v.trim().to_string()).unwrap_or_default())
    };
    m.transaction_uuid = text(names::TRANSACTION_UUID, "x-midt-transaction-uuid")?;
    m.path = text(names::PATH, "x-midt-path")?;
    m.source = text(names::SOURCE, "x-midt-source")?;
    m.dest = text(names::DEVICE_NAME, "")?;
    m.accept = text(names::ACCEPT, "x-midt-accept")?;
    m.session_id = text(names::SESSION_ID, "x-midt-session-id")?;
    m.service_name = text(names::SERVICE_NAME, "x-midt-service-name")?;
    m.url = text(names::URL, "x-midt-url")?;
    m.content_type = text(names::CONTENT_TYPE, "")?;
    m.status = h.parsed(names::STATUS, "x-midt-status")?;
    m.rdr = h.parsed(names::RDR, "x-midt-request-delivery-response")?;
    m.qos = h.parsed(names::QOS, "")?.unwrap_or(0);
    m.include_spans = h
        .parsed(names::INCLUDE_SPANS, "x-midt-include-spans")?
        .unwrap_or(false);
    m.partner_ids = h.items(names::PARTNER_ID, "x-midt-partner-id")?;
    m.headers = h.items(names::HEADERS, "x-midt-headers")?;
    for item in h.items(names::METADATA, "x-midt-metadata")? {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| HttpError::InvalidMetadata(item.clone()))?;
        m.metadata
            .insert(k.trim().to_string(), v.trim().to_string());
    }
    for value in h.all(names::SPAN, "x-midt-spans")? {
        let fields: Vec<String> = value.split(',').map(|f| f.trim().to_string()).collect();
        if fields.len() != 3 {
            return Err(HttpError::InvalidValue {
                header: names::SPAN,
                value: value.to_string(),
            });
        }
        m.spans.push(fields);
    }
    m.payload = body.to_vec();
    if m.content_type.is_empty() && !m.payload.is_empty() {
        m.content_type = DEFAULT_CONTENT_TYPE.to_string();
    }
    Ok(m)
}

struct Headers<'h>(&'h HeaderMap);

impl<'h> Headers<'h> {
    /// Every value of `name`, or of its deprecated alias when `name` has none.
    fn all(&self, name: &'static str, old: &str) -> Result<Vec<&'h str>, HttpError> {
        let mut values = self.0.get_all(lower(name)).iter().peekable();
        let values: Vec<&HeaderValue> = if values.peek().is_some() || old.is_empty() {
            values.collect()
        } else {
            self.0.get_all(old).iter().collect()
        };
        values
            .into_iter()
            .map(|v| {
                core::str::from_utf8(v.as_bytes())
                    .map_err(|_| HttpError::BadHeaderText { header: name })
            })
            .collect()
    }

    fn one(&self, name: &'static str, old: &str) -> Result<Option<&'h str>, HttpError> {
        Ok(self.all(name, old)?.into_iter().next())
    }

    fn parsed<T: core::str::FromStr>(
        &self,
        name: &'static str,
        old: &str,
    ) -> Result<Option<T>, HttpError> {
        self.one(name, old)?
            .map(|v| {
                v.trim().parse().map_err(|_| HttpError::InvalidValue {
                    header: name,
                    value: v.to_string(),
                })
            })
            .transpose()
    }

    /// Comma-separated items across every value, trimmed, empty ones dropped.
    fn items(&self, name: &'static str, old: &str) -> Result<Vec<String>, HttpError> {
        Ok(self
            .all(name, old)?
            .into_iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect())
    }
}
