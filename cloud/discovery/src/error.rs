//! Error type.

use xmidt_ring::{InstanceError, RingError};

/// Why discovery could not start (all are configuration problems found before any I/O, except
/// [`DiscoveryError::HttpClient`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// Neither `fixed` nor `dns` lists anything.
    #[error("no instance sources: set `fixed` or `dns`")]
    NoSources,
    /// `vnode_count` or `default_scheme` is invalid.
    #[error(transparent)]
    Ring(#[from] RingError),
    /// An entry of `fixed` is not an instance URL.
    #[error("fixed: {0}")]
    FixedInstance(InstanceError),
    /// An entry of `dns` is not a `scheme://host[:port]` template.
    #[error("dns: {0}")]
    DnsTemplate(InstanceError),
    /// An entry of `dns` has neither a port nor a scheme with a default port.
    #[error("dns: template {0:?} needs a port (only http and https have default ports)")]
    DnsTemplatePort(String),
    /// An interval or timeout is zero or longer than 24 hours.
    #[error("{0} must be greater than zero and at most 24h")]
    DurationOutOfRange(&'static str),
    /// `health.failure_threshold` is zero.
    #[error("health.failure_threshold must be at least 1")]
    FailureThreshold,
    /// `health.path` does not start with `/`.
    #[error("health.path must start with '/': {0:?}")]
    HealthPath(String),
    /// The HTTP client for health checks could not be built (TLS set-up).
    #[error("cannot build the health-check HTTP client: {0}")]
    HttpClient(String),
}
