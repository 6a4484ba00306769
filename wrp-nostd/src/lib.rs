//! WRP (Web Routing Protocol) messages for Xmidt, without an allocator.
//!
//! - [`Message::decode`] reads msgpack into a [`Message`] that borrows every string and the
//!   payload from the input; lists are read lazily. Nothing is copied.
//! - [`Message::encode`] writes msgpack into a caller's buffer; [`Message::encoded_len`] says
//!   how big it must be.
//! - [`Locator`] and [`DeviceId`] parse `scheme:authority/service/ignored` and canonicalise
//!   device ids exactly as talaria does; [`validate()`] applies wrp-go v5's per-type rules.
//!
//! Features: `alloc` (an owned [`OwnedMessage`] and its builder), `std`, `json` (wrp-go's JSON
//! form), `http` (the `X-Xmidt-*` header form). The default build needs no allocator.
#![no_std]
// One audited `unsafe` (msgpack::utf8); everything else is safe code.
#![deny(unsafe_code)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod decode;
mod encode;
mod error;
mod locator;
mod message;
mod msgpack;
mod validate;

pub use error::{DecodeError, EncodeError, ValueKind};
pub use locator::{DeviceId, Locator, LocatorError, Scheme};
pub use message::{
    Message, MessageType, Metadata, MetadataIter, QosLevel, Span, SpanField, SpanFields, Spans,
    SpansIter, StrIter, StrList,
};
pub use validate::{validate, ValidationError};

#[cfg(feature = "alloc")]
mod owned;
#[cfg(feature = "alloc")]
pub use owned::{MessageBuilder, OwnedMessage};

#[cfg(feature = "http")]
pub mod http;
