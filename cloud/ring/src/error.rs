//! Error types.

use crate::MAX_VNODE_COUNT;

/// Why an instance string could not be normalised.
///
/// Each variant carries the (whitespace-trimmed) instance string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InstanceError {
    /// The instance was empty or only whitespace.
    #[error("blank instances are not allowed")]
    Blank,
    /// The scheme (given, or the default one) is not `[A-Za-z][A-Za-z0-9+.-]*`.
    #[error("invalid scheme in instance {0:?}")]
    InvalidScheme(String),
    /// The host is empty, has characters outside `[A-Za-z0-9._~-]`, or is a malformed
    /// bracketed IPv6 address; paths, queries and user info are not accepted either.
    #[error("invalid host in instance {0:?}")]
    InvalidHost(String),
    /// The text after the host's `:` is not a decimal number in `0..=65535`.
    #[error("invalid port in instance {0:?}")]
    InvalidPort(String),
}

/// Errors from building or querying a [`Ring`](crate::Ring).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RingError {
    /// The ring has no members, so no key has an owner.
    #[error("there are no instances available")]
    NoInstances,
    /// [`RingOptions::vnode_count`](crate::RingOptions::vnode_count) is 0 or too large.
    #[error("vnode count {0} is outside 1..={MAX_VNODE_COUNT}")]
    InvalidVnodeCount(u32),
    /// [`RingOptions::default_scheme`](crate::RingOptions::default_scheme) is not a valid
    /// URL scheme.
    #[error("invalid default scheme {0:?}")]
    InvalidDefaultScheme(String),
    /// One of the instances could not be normalised.
    #[error(transparent)]
    InvalidInstance(#[from] InstanceError),
}
