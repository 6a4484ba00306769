//! Where to connect. Only the scheme, host and port of `--webpa-url` or of a redirect's
//! `Location` are used; the path is always `/api/v2/device` (client-spec §3.1).

use core::fmt;

/// The WebSocket path, whatever the URL or redirect said.
pub const DEVICE_PATH: &str = "/api/v2/device";

/// Longest DNS name.
pub const MAX_HOST_LEN: usize = 253;

/// A cloud endpoint: `ws://` (`secure == false`) or `wss://`, host and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint<'a> {
    pub secure: bool,
    /// A DNS name or an IP address; IPv6 without its brackets.
    pub host: &'a str,
    pub port: u16,
}

/// Why a URL is not a usable cloud endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlError {
    /// Not `http`, `https`, `ws` or `wss` followed by `://`.
    UnsupportedScheme,
    /// No host, or a host with characters a host cannot have.
    InvalidHost,
    /// Longer than 253 bytes (the longest DNS name).
    HostTooLong,
    /// Not a number in 1..=65535.
    InvalidPort,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UrlError::UnsupportedScheme => "the URL scheme must be http, https, ws or wss",
            UrlError::InvalidHost => "the URL has no valid host",
            UrlError::HostTooLong => "the URL host is longer than 253 bytes",
            UrlError::InvalidPort => "the URL port is not a number in 1..65535",
        })
    }
}

impl core::error::Error for UrlError {}

impl<'a> Endpoint<'a> {
    /// Parses an absolute URL. `http`/`ws` give `ws://` (default port 80), `https`/`wss` give
    /// `wss://` (default port 443). Anything after the authority is ignored.
    pub fn parse(url: &'a str) -> Result<Self, UrlError> {
        let (scheme, rest) = url.split_once("://").ok_or(UrlError::UnsupportedScheme)?;
        let secure = if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("ws") {
            false
        } else if scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("wss") {
            true
        } else {
            return Err(UrlError::UnsupportedScheme);
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or(UrlError::InvalidHost)?;
            if host.is_empty()
                || !host
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
            {
                return Err(UrlError::InvalidHost);
            }
            match after {
                "" => (host, None),
                _ => (
                    host,
                    Some(after.strip_prefix(':').ok_or(UrlError::InvalidHost)?),
                ),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        // A DNS name or IPv4 address (IPv6 was checked above): no user info, no spaces, nothing a
        // header could not carry.
        let host_ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
        let bracketed = authority.starts_with('[');
        if host.is_empty() || !(bracketed || host.bytes().all(host_ok)) {
            return Err(UrlError::InvalidHost);
        }
        if host.len() > MAX_HOST_LEN {
            return Err(UrlError::HostTooLong);
        }
        let port = match port {
            None => {
                if secure {
                    443
                } else {
                    80
                }
            }
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or(UrlError::InvalidPort)?,
            Some(_) => return Err(UrlError::InvalidPort),
        };
        Ok(Endpoint { secure, host, port })
    }

    /// The WebSocket URL: `ws[s]://host[:port]/api/v2/device`, the port left out when it is
    /// the scheme's default.
    pub fn url(&self) -> Url<'a> {
        Url(*self)
    }

    fn default_port(&self) -> bool {
        self.port == if self.secure { 443 } else { 80 }
    }
}

/// [`Endpoint::url`]: formats as the WebSocket URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Url<'a>(Endpoint<'a>);

impl fmt::Display for Url<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.0;
        f.write_str(if e.secure { "wss://" } else { "ws://" })?;
        if e.host.contains(':') {
            write!(f, "[{}]", e.host)?;
        } else {
            f.write_str(e.host)?;
        }
        if !e.default_port() {
            write!(f, ":{}", e.port)?;
        }
        f.write_str(DEVICE_PATH)
    }
}

/// An endpoint the core keeps after the text it came from is gone (a redirect's `Location`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OwnedEndpoint {
    secure: bool,
    host: heapless::String<MAX_HOST_LEN>,
    port: u16,
}

impl OwnedEndpoint {
    pub fn new(e: &Endpoint<'_>) -> Self {
        let mut host = heapless::String::new();
        // `Endpoint::parse` bounds the host to the capacity.
        let _ = host.push_str(e.host);
        OwnedEndpoint {
            secure: e.secure,
            host,
            port: e.port,
        }
    }

    pub fn as_endpoint(&self) -> Endpoint<'_> {
        Endpoint {
            secure: self.secure,
            host: &self.host,
            port: self.port,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    fn url_text(e: &Endpoint<'_>) -> heapless::String<300> {
        let mut s = heapless::String::new();
        write!(s, "{}", e.url()).expect("fits");
        s
    }

    #[test]
    fn scheme_host_port_only() {
        let e = Endpoint::parse("http://127.0.0.1:18080/some/path?q#f").expect("valid");
        assert_eq!(
            e,
            Endpoint {
                secure: false,
                host: "127.0.0.1",
                port: 18080
            }
        );
        assert_eq!(url_text(&e), "ws://127.0.0.1:18080/api/v2/device");
        let e = Endpoint::parse("HTTPS://talaria.example.com").expect("valid");
        assert_eq!(
            e,
            Endpoint {
                secure: true,
                host: "talaria.example.com",
                port: 443
            }
        );
        assert_eq!(url_text(&e), "wss://talaria.example.com/api/v2/device");
        let e = Endpoint::parse("wss://[2001:db8::1]:8443/x").expect("valid");
        assert_eq!(
            e,
            Endpoint {
                secure: true,
                host: "2001:db8::1",
                port: 8443
            }
        );
        assert_eq!(url_text(&e), "wss://[2001:db8::1]:8443/api/v2/device");
        assert_eq!(Endpoint::parse("ws://[::1]").map(|e| e.port), Ok(80));
    }

    #[test]
    fn rejects() {
        for (url, err) in [
            ("talaria:6200", UrlError::UnsupportedScheme),
            ("/api/v2/device", UrlError::UnsupportedScheme),
            ("ftp://host", UrlError::UnsupportedScheme),
            ("http://", UrlError::InvalidHost),
            ("http://:80", UrlError::InvalidHost),
            ("http://user@host", UrlError::InvalidHost),
            ("http://ho st", UrlError::InvalidHost),
            ("http://[::1", UrlError::InvalidHost),
            ("http://[zz]:1", UrlError::InvalidHost),
            ("http://[::1]x", UrlError::InvalidHost),
            ("http://::1", UrlError::InvalidHost),
            ("http://host:", UrlError::InvalidPort),
            ("http://host:0", UrlError::InvalidPort),
            ("http://host:65536", UrlError::InvalidPort),
            ("http://host:+80", UrlError::InvalidPort),
        ] {
            assert_eq!(Endpoint::parse(url), Err(err), "{url}");
        }
        let mut long: heapless::String<300> = heapless::String::new();
        long.push_str("http://").expect("fits");
        for _ in 0..=MAX_HOST_LEN {
            long.push('a').expect("fits");
        }
        assert_eq!(Endpoint::parse(&long), Err(UrlError::HostTooLong));
    }

    #[test]
    fn owned_round_trip() {
        let e = Endpoint::parse("https://petasos:6400").expect("valid");
        assert_eq!(OwnedEndpoint::new(&e).as_endpoint(), e);
    }
}
