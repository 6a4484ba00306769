//! Typed errors: decoding, encoding, locators and validation. Each carries enough to say what went
//! wrong in one line (`Display`), and none of them allocate.

use core::fmt;

/// The kinds of MessagePack value, as named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Nil,
    Bool,
    Int,
    Float,
    Str,
    Bin,
    Array,
    Map,
    Ext,
}

impl fmt::Display for ValueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueKind::Nil => "nil",
            ValueKind::Bool => "boolean",
            ValueKind::Int => "integer",
            ValueKind::Float => "float",
            ValueKind::Str => "string",
            ValueKind::Bin => "binary",
            ValueKind::Array => "array",
            ValueKind::Map => "map",
            ValueKind::Ext => "extension",
        })
    }
}

/// Why bytes are not a WRP message. `at` is the byte offset where the problem was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended in the middle of a value.
    Truncated { at: usize },
    /// A string, binary, array or map announces more than the input holds.
    LengthPastEnd { at: usize },
    /// The byte 0xc1, which MessagePack never uses.
    InvalidMarker { at: usize },
    /// A field holds another kind of value than WRP defines for it.
    WrongType { at: usize, expected: ValueKind },
    /// A string is not valid UTF-8.
    InvalidUtf8 { at: usize },
    /// An integer does not fit a signed 64-bit value.
    IntegerOverflow { at: usize },
    /// Values nest deeper than the decoder follows.
    TooDeep { at: usize },
    /// The top-level value is not a map.
    NotAMap,
    /// The map has no `msg_type` (or it is nil).
    MissingMessageType,
    /// `msg_type` is not one of the WRP message types 2..=11.
    UnknownMessageType(i64),
    /// Bytes follow the message.
    TrailingBytes { at: usize },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated { at } => {
                write!(f, "input ends in the middle of a value at byte {at}")
            }
            DecodeError::LengthPastEnd { at } => {
                write!(
                    f,
                    "the value at byte {at} announces a length past the end of the input"
                )
            }
            DecodeError::InvalidMarker { at } => {
                write!(f, "invalid msgpack marker 0xc1 at byte {at}")
            }
            DecodeError::WrongType { at, expected } => {
                write!(f, "expected {expected} at byte {at}")
            }
            DecodeError::InvalidUtf8 { at } => {
                write!(f, "the string at byte {at} is not valid UTF-8")
            }
            DecodeError::IntegerOverflow { at } => {
                write!(
                    f,
                    "the integer at byte {at} does not fit a signed 64-bit value"
                )
            }
            DecodeError::TooDeep { at } => write!(f, "values nest too deeply at byte {at}"),
            DecodeError::NotAMap => f.write_str("a WRP message is a msgpack map"),
            DecodeError::MissingMessageType => f.write_str("the message has no msg_type"),
            DecodeError::UnknownMessageType(t) => write!(f, "unknown msg_type {t}"),
            DecodeError::TrailingBytes { at } => {
                write!(f, "unexpected bytes after the message at byte {at}")
            }
        }
    }
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The caller's buffer is shorter than `Message::encoded_len`.
    BufferTooSmall,
    /// A string, payload or list is longer than msgpack can express (4 GiB).
    TooLong,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EncodeError::BufferTooSmall => "the output buffer is too small for the message",
            EncodeError::TooLong => "a field is longer than msgpack allows",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DecodeError {}
#[cfg(feature = "std")]
impl std::error::Error for EncodeError {}
