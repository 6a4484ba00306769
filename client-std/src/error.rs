//! The crate's error: why a device could not start, or a request to it failed.

use std::fmt;
use std::io;

#[derive(Debug)]
pub enum Error {
    /// The configuration is refused (the core's validation, or a URL or file here).
    Config(String),
    /// A file or socket could not be used; `what` says which.
    Io { what: String, source: io::Error },
    /// A certificate, key or CA bundle could not be loaded.
    Tls(String),
    /// The core refused a request (a service name, a full table, ...).
    Core(xmidt_client_core::Error),
    /// The device has stopped.
    Stopped,
}

impl Error {
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(e) => write!(f, "configuration: {e}"),
            Error::Io { what, source } => write!(f, "{what}: {source}"),
            Error::Tls(e) => write!(f, "TLS: {e}"),
            Error::Core(e) => write!(f, "{e}"),
            Error::Stopped => f.write_str("the device has stopped"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Core(e) => Some(e),
            _ => None,
        }
    }
}

impl From<xmidt_client_core::Error> for Error {
    fn from(e: xmidt_client_core::Error) -> Self {
        Error::Core(e)
    }
}

impl From<xmidt_client_core::ConfigError> for Error {
    fn from(e: xmidt_client_core::ConfigError) -> Self {
        Error::Config(e.to_string())
    }
}
