//! Per-type field rules (wrp-go v5's standard validator), kept apart from decoding so that a
//! router can pass on what it does not need to understand.

use core::fmt;

use crate::locator::{Locator, LocatorError};
use crate::message::{Message, MessageType};

/// Why a message breaks the rules for its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationError {
    /// A field the type needs is absent.
    Missing(&'static str),
    /// A field the type does not allow is present.
    NotAllowed(&'static str),
    /// `source` or `dest` is not a locator.
    BadLocator(&'static str, LocatorError),
    /// `qos` is outside 0..=99.
    QosOutOfRange(i64),
    /// `service_name` contains a `/`.
    SlashInServiceName,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValidationError::Missing(field) => {
                write!(f, "{field} is required for this message type")
            }
            ValidationError::NotAllowed(field) => {
                write!(f, "{field} is not allowed for this message type")
            }
            ValidationError::BadLocator(field, e) => {
                write!(f, "{field} is not a valid locator: {e}")
            }
            ValidationError::QosOutOfRange(q) => write!(f, "qos {q} is outside 0..99"),
            ValidationError::SlashInServiceName => f.write_str("service_name must not contain '/'"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ValidationError {}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Rule {
    Required,
    Optional,
    Absent,
}

/// The rule for `field` in messages of type `t` (the table in cloud-spec §2.3).
fn rule(t: MessageType, field: &str) -> Rule {
    match field {
        "service_name" | "url" if t == MessageType::ServiceRegistration => Rule::Required,
        "service_name" | "url" => Rule::Absent,
        "status" if t == MessageType::Authorization => Rule::Required,
        _ if !t.is_routable() => Rule::Absent,
        "source" | "dest" => Rule::Required,
        "transaction_uuid" if t.requires_transaction() => Rule::Required,
        "accept" | "status" if t == MessageType::SimpleEvent => Rule::Absent,
        "path" if !is_crud(t) => Rule::Absent,
        _ => Rule::Optional,
    }
}

fn is_crud(t: MessageType) -> bool {
    t.requires_transaction() && t != MessageType::SimpleRequestResponse
}

/// Checks `m` against the rules for its type. Strings are already UTF-8 (`&str`).
pub fn validate(m: &Message<'_>) -> Result<(), ValidationError> {
    let present: [(&'static str, bool); 16] = [
        ("source", !m.source.is_empty()),
        ("dest", !m.dest.is_empty()),
        ("transaction_uuid", !m.transaction_uuid.is_empty()),
        ("content_type", !m.content_type.is_empty()),
        ("accept", !m.accept.is_empty()),
        ("status", m.status.is_some()),
        ("rdr", m.rdr.is_some()),
        ("headers", !m.headers.is_empty()),
        ("metadata", !m.metadata.is_empty()),
        ("path", !m.path.is_empty()),
        ("payload", !m.payload.is_empty()),
        ("service_name", !m.service_name.is_empty()),
        ("url", !m.url.is_empty()),
        ("partner_ids", !m.partner_ids.is_empty()),
        ("session_id", !m.session_id.is_empty()),
        ("qos", m.qos != 0),
    ];
    for (field, is_present) in present {
        match (rule(m.msg_type, field), is_present) {
            (Rule::Required, false) => return Err(ValidationError::Missing(field)),
            (Rule::Absent, true) => return Err(ValidationError::NotAllowed(field)),
            _ => {}
        }
    }
    if !(0..=99).contains(&m.qos) {
        return Err(ValidationError::QosOutOfRange(m.qos));
    }
    for (field, value) in [("source", m.source), ("dest", m.dest)] {
        if !value.is_empty() {
            Locator::parse(value).map_err(|e| ValidationError::BadLocator(field, e))?;
        }
    }
    if m.service_name.contains('/') {
        return Err(ValidationError::SlashInServiceName);
    }
    Ok(())
}
