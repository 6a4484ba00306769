//! Typed errors and drop reasons. None of them allocate; each says what went wrong in one line.

use core::fmt;

use wrp_nostd::{DecodeError, EncodeError, MessageType};

use crate::url::UrlError;

/// Why a [`crate::Config`] is refused by [`crate::Client::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// `hw_mac` is not 12 hex digits once `:` separators are removed.
    InvalidMac,
    /// `hw_serial_number` has characters other than `[A-Za-z0-9]` (parodus's rule).
    InvalidSerialNumber,
    /// A text field is longer than the limit the wire or parodus gives it.
    FieldTooLong(&'static str),
    /// A text field holds a control character (it would break a header or the CRUD JSON).
    ControlCharacter(&'static str),
    /// `cloud_url` is not an `http(s)://host[:port]` URL.
    InvalidCloudUrl(UrlError),
    /// `protocol` is empty.
    EmptyProtocol,
    /// A timeout that must be at least one second is zero.
    ZeroTimeout(&'static str),
    /// `backoff_max` is over 31 (the wait would not fit 32 bits of seconds).
    BackoffMaxTooLarge,
    /// More partner ids than [`crate::MAX_PARTNERS`].
    TooManyPartners,
    /// More convey extras than [`crate::MAX_CONVEY_EXTRAS`], or an extra with an empty key.
    InvalidConveyExtras,
    /// A convey extra repeats a key the convey already has.
    DuplicateConveyKey,
    /// The User-Agent would be longer than [`crate::MAX_USER_AGENT`].
    UserAgentTooLong,
    /// The base64 convey would be longer than [`crate::MAX_CONVEY`] (parodus's buffer).
    ConveyTooLong,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::InvalidMac => f.write_str("hw-mac must be 12 hex digits (':' allowed)"),
            ConfigError::InvalidSerialNumber => {
                f.write_str("hw-serial-number must be letters and digits only")
            }
            ConfigError::FieldTooLong(field) => write!(f, "{field} is too long"),
            ConfigError::ControlCharacter(field) => write!(f, "{field} has a control character"),
            ConfigError::InvalidCloudUrl(e) => write!(f, "webpa-url: {e}"),
            ConfigError::EmptyProtocol => f.write_str("the protocol string is empty"),
            ConfigError::ZeroTimeout(field) => write!(f, "{field} must be at least 1 second"),
            ConfigError::BackoffMaxTooLarge => f.write_str("webpa-backoff-max must be 0..31"),
            ConfigError::TooManyPartners => f.write_str("too many partner ids"),
            ConfigError::InvalidConveyExtras => {
                f.write_str("too many convey extras, or one with an empty key")
            }
            ConfigError::DuplicateConveyKey => {
                f.write_str("a convey extra repeats a standard convey key")
            }
            ConfigError::UserAgentTooLong => f.write_str("the User-Agent header is too long"),
            ConfigError::ConveyTooLong => {
                f.write_str("the X-WebPA-Convey header would exceed 1024 bytes")
            }
        }
    }
}

/// A request the core could not carry out. The client's state is unchanged unless said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The message would not fit the buffer meant for it even when that buffer is empty.
    MessageTooLarge { len: usize, capacity: usize },
    /// Generated output does not fit beside output the driver has not drained yet: drain
    /// [`crate::Client::poll_action`] after every input.
    OutboxFull,
    /// The pending-action list is full (same cause as `OutboxFull`).
    TooManyPendingActions,
    /// Every service slot is taken.
    ServiceTableFull,
    /// A service name must be 1..=31 bytes without `/`, and not `parodus`.
    InvalidServiceName,
    /// A service URL must be 1..=99 bytes.
    InvalidServiceUrl,
    /// A token longer than [`crate::MAX_TOKEN`].
    TokenTooLong,
    /// A token with characters an HTTP header cannot carry (only visible ASCII is allowed).
    InvalidToken,
    /// The answer is for the cloud, and the connection it came on is gone.
    Offline,
    /// The answer is for a local service that is no longer registered.
    UnknownService,
    /// A close reason longer than a close frame carries (123 bytes).
    CloseReasonTooLong,
    /// A message carries more metadata entries than [`crate::MAX_METADATA_ENTRIES`].
    TooManyMetadataEntries,
    /// The reconnect reason made the convey too long (cannot happen with a validated config).
    ConveyTooLong,
    /// msgpack cannot express the message (a field over 4 GiB).
    Encode(EncodeError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MessageTooLarge { len, capacity } => {
                write!(
                    f,
                    "a {len}-byte message does not fit a {capacity}-byte buffer"
                )
            }
            Error::OutboxFull => f.write_str("the outbox is full: drain poll_action"),
            Error::TooManyPendingActions => {
                f.write_str("too many pending actions: drain poll_action")
            }
            Error::ServiceTableFull => f.write_str("the service table is full"),
            Error::InvalidServiceName => {
                f.write_str("a service name is 1..31 bytes without '/', not parodus")
            }
            Error::InvalidServiceUrl => f.write_str("a service url is 1..99 bytes"),
            Error::TokenTooLong => f.write_str("the token is too long"),
            Error::InvalidToken => f.write_str("the token has characters a header cannot carry"),
            Error::Offline => f.write_str("the cloud connection the answer was for is gone"),
            Error::UnknownService => f.write_str("the service the answer is for is not registered"),
            Error::CloseReasonTooLong => f.write_str("a close reason is at most 123 bytes"),
            Error::TooManyMetadataEntries => f.write_str("too many metadata entries"),
            Error::ConveyTooLong => f.write_str("the X-WebPA-Convey header would be too long"),
            Error::Encode(e) => write!(f, "cannot encode: {e}"),
        }
    }
}

/// Why an input message was dropped: the protocol says so, nothing is wrong with the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// Not a WRP message.
    Undecodable(DecodeError),
    /// From a connection that is no longer the current one.
    StaleConnection,
    /// `dest` names another device (parodus does not check; see the README).
    NotForThisDevice,
    /// An event for a service nobody registered (parodus drops these silently too), or a local
    /// delivery for a service that is not registered.
    UnknownService,
    /// A message type this direction ignores (2, 9, 10, 11 from the cloud; 2, 10, 11 locally).
    Ignored(MessageType),
    /// A request for the `parodus` service without a `source` cannot be answered.
    NoSource,
    /// Upstream while offline, below the QoS that is kept (parodus drops these silently).
    Offline,
    /// A QoS message ranked below everything already queued, with the queue full.
    QueueFull,
}

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dropped::Undecodable(e) => write!(f, "not a WRP message: {e}"),
            Dropped::StaleConnection => f.write_str("from a closed connection"),
            Dropped::NotForThisDevice => f.write_str("dest is another device"),
            Dropped::UnknownService => f.write_str("no such service is registered"),
            Dropped::Ignored(t) => write!(f, "{t} messages are ignored here"),
            Dropped::NoSource => f.write_str("a request without source cannot be answered"),
            Dropped::Offline => f.write_str("offline"),
            Dropped::QueueFull => f.write_str("the QoS queue is full of more important messages"),
        }
    }
}

impl core::error::Error for ConfigError {}
impl core::error::Error for Error {}
impl core::error::Error for Dropped {}
