//! Host and port out of an Xmidt URL, without allocating.
//!
//! Only IPv4 literals are accepted: the board has no DNS yet.

use core::fmt;
use core::net::Ipv4Addr;

/// Where the board connects when XMIDT_URL is not set at build time: petasos's port on the
/// host, as QEMU's user-mode network shows it to the guest.
pub const DEFAULT_URL: &str = "ws://10.0.2.2:6400";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub ip: Ipv4Addr,
    pub port: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlError {
    Scheme,
    Host,
    Port,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UrlError::Scheme => "scheme must be ws:// or wss://",
            UrlError::Host => "host must be an IPv4 address (the board has no DNS yet)",
            UrlError::Port => "port must be 1-65535",
        })
    }
}

impl Target {
    /// `ws://10.0.2.2:6400/api/v2/device` → 10.0.2.2, 6400. Without a port: 80 (ws), 443 (wss).
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let (rest, default_port) = if let Some(rest) = url.strip_prefix("ws://") {
            (rest, 80)
        } else if let Some(rest) = url.strip_prefix("wss://") {
            (rest, 443)
        } else {
            return Err(UrlError::Scheme);
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, port.parse().map_err(|_| UrlError::Port)?),
            None => (authority, default_port),
        };
        if port == 0 {
            return Err(UrlError::Port);
        }
        let ip = host.parse().map_err(|_| UrlError::Host)?;
        Ok(Target { ip, port })
    }
}
