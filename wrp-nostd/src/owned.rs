//! An owned WRP message (feature `alloc`), its builder, and its wrp-go JSON form (feature `json`).

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::message::{Message, MessageType, Metadata, Spans, StrList};
use crate::{DecodeError, EncodeError};

/// A WRP message that owns its fields: for queues, for building replies, and for the JSON and
/// header forms. Same fields and omit-empty rules as [`Message`]; spans follow wrp-go v3
/// (`[][]string`), so wrp-c's integer span times become decimal strings.
///
/// With feature `json` it (de)serialises as wrp-go's JSON: the same keys, `payload` as standard
/// base64, `msg_type` as a number, absent fields left out (`qos` always written), unknown keys
/// and `null` values ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "json", derive(serde::Serialize, serde::Deserialize))]
pub struct OwnedMessage {
    pub msg_type: MessageType,
    #[cfg_attr(
        feature = "json",
        serde(
            default,
            deserialize_with = "json::nullable",
            skip_serializing_if = "String::is_empty"
        )
    )]
    pub source: String,
    #[cfg_attr(
        feature = "json",
        serde(
            default,
            deserialize_with = "json::nullable",
            skip_serializing_if = "String::is_empty"
        )
    )]
    pub dest: String,
    #[cfg_attr(
        feature = "json",
        serde(
            default,
            deserialize_with = "json::nullable",
            skip_serializing_if = "String::is_empty"
        )
    )]
    pub transaction_uuid: String,
    #[cfg_attr(
        feature = "json",
        serde(
            default,
            deserialize_with = "json::nullable",
            skip_serializing_if = "String::is_empty"
        )
    )]
    pub content_type: String,
    #[cfg_attr(
        feature = "json",
        serde(
            default,
            deserialize_with = "json::nullable",
            skip_serializing_if = "String::is_empty"
        )
    )]
    pub accept: String,
    #[cfg_attr(
        feature = "json",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub status: Option<i64>,
    #[cfg_attr(
        feature = "json",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub rdr: Option<i64>,
    #[cfg_attr(
        feature = "json",
        serde(
            default,
            deserialize_with = "json::nullable",
            skip_serializing_if = "Vec::is_empty"
        )
    )]
    pub headers: Vec<String>,
    #[cfg_attr(
        feature = "json",
        serde(
            default,
            deserialize_with = "json::nullable",
            skip_serializing_if = "BTreeMap::is_empty"
        )
    )]
    pub metadata: BTreeMap<String, String>,
    #[cfg_attr(
        feature = "json",
        serde(
            default,
            deserialize_with = "json::nullable",
            skip_serializing_if = "String::is_empty"
        )
    )]
    pub path: String,
    #[cfg_attr(
        feature = "json",
        serde(
            default,
            with = "json::base64_payload",
            skip_serializing_if = "Vec::is_empty"
        )
    )]
    pub payload: Vec<u8>,
    #[cfg_attr(
        feature = "json",
        serde(
            default,
            deserialize_with = "json::nullable",
            skip_serializing_if = "String::is_empty"
        )
    )]
    pub service_name: String,
    #[cfg_attr(
        feature = "json",
        serde(
            default,
            deserialize_with = "json::nullable",
            skip_serializing_if = "String::is_empty"
        )
    )]
    pub url: String,
    #[cfg_attr(
        feature = "json",
        serde(
            default,
            deserialize_with = "json::nullable",
            skip_serializing_if = "Vec::is_empty"
        )
    )]
    pub partner_ids: Vec<String>,
    #[cfg_attr(
        feature = "json",
        serde(
            default,
            deserialize_with = "json::nullable",
            skip_serializing_if = "String::is_empty"
        )
    )]
    pub session_id: String,
    #[cfg_attr(feature = "json", serde(default, deserialize_with = "json::nullable"))]
    pub qos: i64,
    #[cfg_attr(
        feature = "json",
        serde(
            default,
            deserialize_with = "json::nullable",
            skip_serializing_if = "String::is_empty"
        )
    )]
    pub msg_id: String,
    #[cfg_attr(
        feature = "json",
        serde(
            default,
            deserialize_with = "json::nullable",
            skip_serializing_if = "Vec::is_empty"
        )
    )]
    pub spans: Vec<Vec<String>>,
    #[cfg_attr(
        feature = "json",
        serde(
            default,
            deserialize_with = "json::nullable",
            skip_serializing_if = "core::ops::Not::not"
        )
    )]
    pub include_spans: bool,
}

impl OwnedMessage {
    /// A message of `msg_type` with every other field absent.
    pub fn new(msg_type: MessageType) -> Self {
        OwnedMessage {
            msg_type,
            source: String::new(),
            dest: String::new(),
            transaction_uuid: String::new(),
            content_type: String::new(),
            accept: String::new(),
            status: None,
            rdr: None,
            headers: Vec::new(),
            metadata: BTreeMap::new(),
            path: String::new(),
            payload: Vec::new(),
            service_name: String::new(),
            url: String::new(),
            partner_ids: Vec::new(),
            session_id: String::new(),
            qos: 0,
            msg_id: String::new(),
            spans: Vec::new(),
            include_spans: false,
        }
    }

    /// Starts building a message of `msg_type`.
    pub fn builder(msg_type: MessageType) -> MessageBuilder {
        MessageBuilder(Self::new(msg_type))
    }

    /// Decodes msgpack into an owned message (see [`Message::decode`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Message::decode(bytes).map(|m| Self::from(&m))
    }

    /// A borrowed view, for encoding or for code written against [`Message`].
    pub fn as_message(&self) -> Message<'_> {
        Message {
            msg_type: self.msg_type,
            source: &self.source,
            dest: &self.dest,
            transaction_uuid: &self.transaction_uuid,
            content_type: &self.content_type,
            accept: &self.accept,
            status: self.status,
            rdr: self.rdr,
            headers: StrList::from_strings(&self.headers),
            metadata: Metadata::from_map(&self.metadata),
            path: &self.path,
            payload: &self.payload,
            service_name: &self.service_name,
            url: &self.url,
            partner_ids: StrList::from_strings(&self.partner_ids),
            session_id: &self.session_id,
            qos: self.qos,
            msg_id: &self.msg_id,
            spans: Spans::from_strings(&self.spans),
            include_spans: self.include_spans,
        }
    }

    /// Encodes as msgpack.
    pub fn to_msgpack(&self) -> Result<Vec<u8>, EncodeError> {
        self.as_message().to_vec()
    }

    /// Parses wrp-go's JSON form.
    #[cfg(feature = "json")]
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// Writes wrp-go's JSON form.
    #[cfg(feature = "json")]
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain strings, numbers and maps with string keys cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

impl From<&Message<'_>> for OwnedMessage {
    fn from(m: &Message<'_>) -> Self {
        OwnedMessage {
            msg_type: m.msg_type,
            source: m.source.into(),
            dest: m.dest.into(),
            transaction_uuid: m.transaction_uuid.into(),
            content_type: m.content_type.into(),
            accept: m.accept.into(),
            status: m.status,
            rdr: m.rdr,
            headers: m.headers.iter().map(String::from).collect(),
            metadata: m
                .metadata
                .iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            path: m.path.into(),
            payload: m.payload.into(),
            service_name: m.service_name.into(),
            url: m.url.into(),
            partner_ids: m.partner_ids.iter().map(String::from).collect(),
            session_id: m.session_id.into(),
            qos: m.qos,
            msg_id: m.msg_id.into(),
            spans: m
                .spans
                .iter()
                .map(|span| span.fields().map(|f| f.to_string()).collect())
                .collect(),
            include_spans: m.include_spans,
        }
    }
}

/// Builds an [`OwnedMessage`] field by field.
#[derive(Debug, Clone)]
pub struct MessageBuilder(OwnedMessage);

macro_rules! string_setters {
    ($($field:ident),*) => {$(
        #[doc = concat!("Sets `", stringify!($field), "`.")]
        pub fn $field(mut self, value: impl Into<String>) -> Self {
            self.0.$field = value.into();
            self
        }
    )*};
}

impl MessageBuilder {
    string_setters!(
        source,
        dest,
        transaction_uuid,
        content_type,
        accept,
        path,
        service_name,
        url,
        session_id,
        msg_id
    );

    pub fn status(mut self, status: i64) -> Self {
        self.0.status = Some(status);
        self
    }

    pub fn rdr(mut self, rdr: i64) -> Self {
        self.0.rdr = Some(rdr);
        self
    }

    pub fn qos(mut self, qos: i64) -> Self {
        self.0.qos = qos;
        self
    }

    pub fn payload(mut self, payload: impl Into<Vec<u8>>) -> Self {
        self.0.payload = payload.into();
        self
    }

    /// Appends a header.
    pub fn header(mut self, header: impl Into<String>) -> Self {
        self.0.headers.push(header.into());
        self
    }

    /// Appends a partner id.
    pub fn partner_id(mut self, id: impl Into<String>) -> Self {
        self.0.partner_ids.push(id.into());
        self
    }

    /// Sets one metadata entry.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.metadata.insert(key.into(), value.into());
        self
    }

    pub fn build(self) -> OwnedMessage {
        self.0
    }
}

#[cfg(feature = "json")]
mod json {
    use alloc::string::String;
    use alloc::vec::Vec;

    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::message::MessageType;

    /// Go decodes `null` as the zero value; so do we.
    pub fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
        d: D,
    ) -> Result<T, D::Error> {
        Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
    }

    /// Go's `[]byte` in JSON: standard base64; padding optional on input.
    pub mod base64_payload {
        use super::*;

        const ENGINE: GeneralPurpose = GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
        );

        pub fn serialize<S: Serializer>(payload: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(&ENGINE.encode(payload))
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
            let text: String = super::nullable(d)?;
            ENGINE
                .decode(text.as_bytes())
                .map_err(|e| serde::de::Error::custom(alloc::format!("payload is not base64: {e}")))
        }
    }

    impl serde::Serialize for MessageType {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_i64(self.as_i64())
        }
    }

    impl<'de> Deserialize<'de> for MessageType {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let n = i64::deserialize(d)?;
            MessageType::from_i64(n)
                .ok_or_else(|| serde::de::Error::custom(alloc::format!("unknown msg_type {n}")))
        }
    }
}
