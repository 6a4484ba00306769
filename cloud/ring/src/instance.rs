//! Instance URLs and their normalisation.

use std::fmt;
use std::net::Ipv6Addr;

use crate::InstanceError;

/// A normalised instance URL, e.g. `http://talaria-0:6200`, and its ring key (the hostname).
///
/// Built by [`Instance::parse`], which reproduces webpa-common's `service.NormalizeInstance`
/// followed by the accessor's `url.Parse(..).Hostname()`:
///
/// - surrounding whitespace is trimmed;
/// - a missing scheme becomes the default scheme, and the scheme is lower-cased;
/// - the port is dropped when it is the scheme's default (`http` 80, `https` 443) or 0, and
///   leading zeros are removed (`:06200` → `:6200`);
/// - the hostname keeps its case (`Talaria-0` and `talaria-0` are different members, as in Go).
///
/// Accepted inputs are `[scheme://]host[:port]` where host is `[A-Za-z0-9._~-]+` or a
/// bracketed IPv6 address. Everything accepted here is normalised exactly as Go does it.
/// Go rejects IPv6 addresses (its pattern forbids `:` in the host); they are accepted here, with
/// the address written in canonical form, so that DNS discovery of AAAA records works. Go
/// tolerates some exotic forms that are refused here (a path or user info after the host, ports
/// above 65535); such instances are unusable as redirect targets anyway.
///
/// Ordering is the byte order of the normalised URL, which is the order Go adds members in.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Instance {
    // Field order matters for the derived Ord: the URL decides, the rest follows from it.
    url: String,
    scheme_len: usize,
    host_start: usize,
    host_end: usize,
    port: Option<u16>,
}

impl Instance {
    /// Normalises `raw`, using `default_scheme` when it has no `scheme://` prefix.
    pub fn parse(raw: &str, default_scheme: &str) -> Result<Instance, InstanceError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(InstanceError::Blank);
        }
        // Go's pattern `^((.+)://)?([^:]+)(:([0-9]+))?$` can only match with the scheme ending
        // at the last "://": anything after an earlier one contains ':' followed by '/'.
        let (scheme, authority) = match trimmed.rfind("://") {
            Some(at) => (&trimmed[..at], &trimmed[at + 3..]),
            None => (default_scheme, trimmed),
        };
        if !is_valid_scheme(scheme) {
            return Err(InstanceError::InvalidScheme(trimmed.to_owned()));
        }
        let scheme = scheme.to_ascii_lowercase();

        let (host, port_text) = split_authority(authority)
            .ok_or_else(|| InstanceError::InvalidHost(trimmed.to_owned()))?;
        let port = match port_text {
            None => None,
            Some(text) => Some(
                parse_port(text).ok_or_else(|| InstanceError::InvalidPort(trimmed.to_owned()))?,
            ),
        };
        let port = port.filter(|&p| p != 0 && Some(p) != default_port(&scheme));

        let bracketed = host.contains(':');
        let mut url = String::with_capacity(scheme.len() + host.len() + 10);
        url.push_str(&scheme);
        url.push_str("://");
        if bracketed {
            url.push('[');
        }
        let host_start = url.len();
        url.push_str(&host);
        let host_end = url.len();
        if bracketed {
            url.push(']');
        }
        if let Some(p) = port {
            url.push(':');
            url.push_str(&p.to_string());
        }
        Ok(Instance {
            url,
            scheme_len: scheme.len(),
            host_start,
            host_end,
            port,
        })
    }

    /// The normalised URL, e.g. `https://talaria-a.example.com` or `http://[::1]:6200`.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The lower-cased scheme, e.g. `http`.
    pub fn scheme(&self) -> &str {
        &self.url[..self.scheme_len]
    }

    /// The ring key: the host without scheme, port or IPv6 brackets, e.g. `talaria-0` or `::1`.
    pub fn hostname(&self) -> &str {
        &self.url[self.host_start..self.host_end]
    }

    /// The explicit port, `None` when it was absent or the scheme's default.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The port connections go to: the explicit one, else the scheme's default (80 for `http`,
    /// 443 for `https`); `None` for other schemes written without a port.
    pub fn port_or_default(&self) -> Option<u16> {
        self.port.or_else(|| default_port(self.scheme()))
    }
}

impl fmt::Display for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

impl AsRef<str> for Instance {
    fn as_ref(&self) -> &str {
        &self.url
    }
}

/// The port a scheme implies when none is written (the only two Go's FormatInstance knows).
fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// What Go's `url.Parse` accepts as a scheme (anything else makes the Go accessor panic).
pub(crate) fn is_valid_scheme(scheme: &str) -> bool {
    let mut bytes = scheme.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// Splits `host[:port]` or `[v6][:port]`; the host comes back without brackets, IPv6 in
/// canonical form.
fn split_authority(authority: &str) -> Option<(String, Option<&str>)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let addr: Ipv6Addr = inside.parse().ok()?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        return Some((addr.to_string(), port));
    }
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let valid = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    valid.then(|| (host.to_owned(), port))
}

/// Decimal digits only (Go's `[0-9]+`), leading zeros allowed, at most 65535.
fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(raw: &str) -> Result<(String, String), InstanceError> {
        Instance::parse(raw, "https").map(|i| (i.as_str().to_owned(), i.hostname().to_owned()))
    }

    fn ok(url: &str, host: &str) -> Result<(String, String), InstanceError> {
        Ok((url.to_owned(), host.to_owned()))
    }

    #[test]
    fn normalises_like_webpa_common() {
        assert_eq!(
            norm("http://talaria-0:6200"),
            ok("http://talaria-0:6200", "talaria-0")
        );
        assert_eq!(
            norm("talaria-0:6200"),
            ok("https://talaria-0:6200", "talaria-0")
        );
        assert_eq!(norm("talaria-0"), ok("https://talaria-0", "talaria-0"));
        assert_eq!(
            norm("http://talaria-0:80"),
            ok("http://talaria-0", "talaria-0")
        );
        assert_eq!(
            norm("https://talaria-0:443"),
            ok("https://talaria-0", "talaria-0")
        );
        // Default ports only count for their own scheme.
        assert_eq!(
            norm("http://talaria-0:443"),
            ok("http://talaria-0:443", "talaria-0")
        );
        assert_eq!(
            norm("talaria-0:80"),
            ok("https://talaria-0:80", "talaria-0")
        );
        // Go formats the port as an integer and ignores port 0.
        assert_eq!(norm("http://h:06200"), ok("http://h:6200", "h"));
        assert_eq!(norm("http://h:0"), ok("http://h", "h"));
        assert_eq!(
            norm("HTTP://Talaria-E:80"),
            ok("http://Talaria-E", "Talaria-E")
        );
        assert_eq!(
            norm(" \t10.0.0.7:6200\n"),
            ok("https://10.0.0.7:6200", "10.0.0.7")
        );
        assert_eq!(
            norm("grpc+h2c://svc_1.local~x:9"),
            ok("grpc+h2c://svc_1.local~x:9", "svc_1.local~x")
        );
    }

    #[test]
    fn default_scheme_is_used_only_when_missing() {
        let inst = Instance::parse("talaria-0:80", "HTTP");
        assert_eq!(inst.as_ref().map(Instance::as_str), Ok("http://talaria-0"));
        let inst = Instance::parse("https://talaria-0:80", "http");
        assert_eq!(
            inst.as_ref().map(Instance::as_str),
            Ok("https://talaria-0:80")
        );
        assert_eq!(
            inst.map(|i| (i.scheme().to_owned(), i.port())),
            Ok(("https".to_owned(), Some(80)))
        );
    }

    #[test]
    fn port_or_default_follows_the_scheme() {
        let port =
            |raw: &str| Instance::parse(raw, "https").map(|i| (i.port(), i.port_or_default()));
        assert_eq!(port("http://h"), Ok((None, Some(80))));
        assert_eq!(port("h:443"), Ok((None, Some(443))));
        assert_eq!(port("http://h:6200"), Ok((Some(6200), Some(6200))));
        assert_eq!(port("ws://h"), Ok((None, None)));
        assert_eq!(port("ws://h:80"), Ok((Some(80), Some(80))));
    }

    #[test]
    fn ipv6_is_bracketed_and_canonical() {
        assert_eq!(norm("http://[::1]:6200"), ok("http://[::1]:6200", "::1"));
        assert_eq!(norm("[0:0:0:0:0:0:0:1]"), ok("https://[::1]", "::1"));
        assert_eq!(
            norm("http://[FE80::A]:80"),
            ok("http://[fe80::a]", "fe80::a")
        );
    }

    #[test]
    fn rejects_what_go_rejects_or_cannot_use() {
        let blank = Err(InstanceError::Blank);
        assert_eq!(norm(""), blank);
        assert_eq!(norm(" \t "), blank);
        let scheme = |s: &str| Err(InstanceError::InvalidScheme(s.to_owned()));
        assert_eq!(norm("://host"), scheme("://host"));
        assert_eq!(norm("1http://host"), scheme("1http://host"));
        assert_eq!(norm("ht tp://host"), scheme("ht tp://host"));
        assert_eq!(
            Instance::parse("host", "").map(|_| ()),
            scheme("host").map(|_| ())
        );
        let host = |s: &str| Err(InstanceError::InvalidHost(s.to_owned()));
        assert_eq!(norm("http://"), host("http://"));
        assert_eq!(norm("http://:6200"), host("http://:6200"));
        assert_eq!(
            norm("http://talaria-0:6200/"),
            Err(InstanceError::InvalidPort("http://talaria-0:6200/".into()))
        );
        assert_eq!(norm("http://talaria-0/api"), host("http://talaria-0/api"));
        assert_eq!(norm("http://user@talaria-0"), host("http://user@talaria-0"));
        assert_eq!(norm("http://a://b"), scheme("http://a://b"));
        assert_eq!(norm("::1"), host("::1"));
        assert_eq!(norm("http://[::1"), host("http://[::1"));
        assert_eq!(norm("http://[127.0.0.1]"), host("http://[127.0.0.1]"));
        assert_eq!(
            norm("http://[fe80::1%25eth0]"),
            host("http://[fe80::1%25eth0]")
        );
        assert_eq!(norm("http://[::1]x"), host("http://[::1]x"));
        let port = |s: &str| Err(InstanceError::InvalidPort(s.to_owned()));
        assert_eq!(norm("http://h:"), port("http://h:"));
        assert_eq!(norm("http://h:65536"), port("http://h:65536"));
        assert_eq!(norm("http://h:+80"), port("http://h:+80"));
        assert_eq!(norm("http://h:1:2"), port("http://h:1:2"));
        assert_eq!(norm("http://[::1]:"), port("http://[::1]:"));
    }
}
