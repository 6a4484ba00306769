//! Which receiver URLs a registration may name (ancla/urlegit's checks): a permitted scheme; no
//! loopback, literal-IP, private or special-use hosts unless configured; and, optionally, a
//! host name that resolves, to permitted addresses only.
//!
//! Addresses are checked at registration. A name that later resolves elsewhere is not checked
//! again at delivery.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use reqwest::Url;

use crate::config::RegistrationConfig;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("not a URL: {0}")]
    Parse(String),
    #[error("scheme {0:?} is not allowed")]
    Scheme(String),
    #[error("the URL has no host")]
    NoHost,
    #[error("URLs must not carry credentials")]
    Credentials,
    #[error("loopback receivers are not allowed")]
    Loopback,
    #[error("IP addresses are not allowed as hosts")]
    IpLiteral,
    #[error("address {0} is private or special-use")]
    Restricted(IpAddr),
    #[error("special-use domain {0:?} is not allowed")]
    SpecialUseDomain(String),
    #[error("host {0:?} does not resolve")]
    Unresolvable(String),
}

/// Special-use domain names (IANA registry, as urlegit lists them): the name itself or any
/// name under it.
const SPECIAL_USE_SUFFIXES: &[&str] = &[
    "alt",
    "example",
    "invalid",
    "local",
    "localhost",
    "test",
    "onion",
    "home.arpa",
];

/// `example.com`, `example.net`, `example.org` and the like (urlegit's `example.*`).
const SPECIAL_USE_PREFIX: &str = "example.";

/// Checks `raw` against the registration policy; the parsed URL when it passes.
pub async fn check(raw: &str, policy: &RegistrationConfig) -> Result<Url, UrlError> {
    let url = Url::parse(raw).map_err(|e| UrlError::Parse(e.to_string()))?;
    if !policy
        .schemes
        .iter()
        .any(|s| s.eq_ignore_ascii_case(url.scheme()))
    {
        return Err(UrlError::Scheme(url.scheme().to_string()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Credentials);
    }
    let host = url.host_str().ok_or(UrlError::NoHost)?;
    match url.host() {
        Some(url::Host::Ipv4(ip)) => check_literal(IpAddr::V4(ip), policy)?,
        Some(url::Host::Ipv6(ip)) => check_literal(IpAddr::V6(ip), policy)?,
        Some(url::Host::Domain(_)) => check_name(host, &url, policy).await?,
        None => return Err(UrlError::NoHost),
    }
    Ok(url)
}

fn check_literal(ip: IpAddr, policy: &RegistrationConfig) -> Result<(), UrlError> {
    // A permitted loopback literal (127.0.0.1 under `xmidt up`) needs no other permission.
    if is_loopback(ip) {
        return if policy.allow_loopback {
            Ok(())
        } else {
            Err(UrlError::Loopback)
        };
    }
    if !policy.allow_ip_literals {
        return Err(UrlError::IpLiteral);
    }
    check_address(ip, policy)
}

async fn check_name(host: &str, url: &Url, policy: &RegistrationConfig) -> Result<(), UrlError> {
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        return if policy.allow_loopback {
            Ok(())
        } else {
            Err(UrlError::Loopback)
        };
    }
    if !policy.allow_special_use_domains && is_special_use(&name) {
        return Err(UrlError::SpecialUseDomain(name));
    }
    if !policy.resolve_hosts {
        return Ok(());
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let resolved = tokio::time::timeout(
        policy.resolve_timeout,
        tokio::net::lookup_host((name.clone(), port)),
    )
    .await;
    let addresses: Vec<IpAddr> = match resolved {
        Ok(Ok(addresses)) => addresses.map(|a| a.ip()).collect(),
        _ => Vec::new(),
    };
    if addresses.is_empty() {
        return Err(UrlError::Unresolvable(name));
    }
    for ip in addresses {
        if is_loopback(ip) {
            if !policy.allow_loopback {
                return Err(UrlError::Loopback);
            }
        } else {
            check_address(ip, policy)?;
        }
    }
    Ok(())
}

fn check_address(ip: IpAddr, policy: &RegistrationConfig) -> Result<(), UrlError> {
    if !policy.allow_private_networks && is_restricted(ip) {
        return Err(UrlError::Restricted(ip));
    }
    Ok(())
}

fn is_special_use(name: &str) -> bool {
    name.starts_with(SPECIAL_USE_PREFIX)
        || SPECIAL_USE_SUFFIXES.iter().any(|suffix| {
            name == *suffix
                || name
                    .strip_suffix(suffix)
                    .is_some_and(|head| head.ends_with('.'))
        })
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Private, shared, link-local, documentation, benchmarking, multicast, reserved and
/// unspecified addresses, and the IPv6 transition prefixes that can tunnel to them.
fn is_restricted(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_restricted_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_restricted_v4(v4),
            None => is_restricted_v6(v6),
        },
    }
}

fn is_restricted_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

fn is_restricted_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        || (s[0] == 0x2001 && s[1] < 0x200) // IETF protocol assignments, incl. Teredo
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || s[0] == 0x2002 // 6to4
        || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64, can reach private IPv4
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RegistrationConfig {
        RegistrationConfig {
            resolve_hosts: false,
            ..RegistrationConfig::default()
        }
    }

    #[test]
    fn address_classes() {
        for restricted in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.0.8",
            "198.18.0.1",
            "203.0.113.9",
            "fc00::1",
            "fe80::1",
            "2001:db8::1",
            "2002::1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(is_restricted(restricted.parse().unwrap()), "{restricted}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(!is_restricted(public.parse().unwrap()), "{public}");
        }
        for lo in ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(lo.parse().unwrap()), "{lo}");
        }
    }

    #[test]
    fn special_use_names() {
        for name in [
            "example",
            "x.example",
            "example.com",
            "a.test",
            "b.invalid",
            "printer.local",
            "foo.localhost",
            "x.onion",
            "nas.home.arpa",
        ] {
            assert!(is_special_use(name), "{name}");
        }
        for name in [
            "events.comcast.net",
            "mytest",
            "latest.io",
            "notexample.com",
        ] {
            assert!(!is_special_use(name), "{name}");
        }
    }

    #[tokio::test]
    async fn policy_decisions() {
        let p = policy();
        assert!(check("https://events.comcast.net/hook", &p).await.is_ok());
        assert_eq!(
            check("ftp://events.comcast.net/", &p).await,
            Err(UrlError::Scheme("ftp".into()))
        );
        assert_eq!(
            check("http://localhost:8080/", &p).await,
            Err(UrlError::Loopback)
        );
        assert_eq!(
            check("http://127.0.0.1/", &p).await,
            Err(UrlError::Loopback)
        );
        assert_eq!(check("http://[::1]/", &p).await, Err(UrlError::Loopback));
        assert_eq!(check("http://8.8.8.8/", &p).await, Err(UrlError::IpLiteral));
        assert!(matches!(
            check("https://u:p@events.comcast.net/", &p).await,
            Err(UrlError::Credentials)
        ));
        assert!(matches!(
            check("not a url", &p).await,
            Err(UrlError::Parse(_))
        ));

        let loopback = RegistrationConfig {
            allow_loopback: true,
            ..policy()
        };
        assert!(check("http://127.0.0.1:9000/", &loopback).await.is_ok());
        assert!(check("http://localhost:9000/", &loopback).await.is_ok());
        // Loopback permission does not open other literal addresses.
        assert_eq!(
            check("http://10.0.0.1/", &loopback).await,
            Err(UrlError::IpLiteral)
        );

        let literals = RegistrationConfig {
            allow_ip_literals: true,
            ..policy()
        };
        assert!(check("http://8.8.8.8/", &literals).await.is_ok());
        assert_eq!(
            check("http://10.0.0.1/", &literals).await,
            Err(UrlError::Restricted("10.0.0.1".parse().unwrap()))
        );
        let private = RegistrationConfig {
            allow_private_networks: true,
            ..literals
        };
        assert!(check("http://10.0.0.1/", &private).await.is_ok());
    }

    #[tokio::test]
    async fn resolution() {
        let p = RegistrationConfig {
            resolve_hosts: true,
            ..RegistrationConfig::default()
        };
        // "localhost" is refused by name before any lookup; a name under a special-use domain
        // by its suffix; an unresolvable one by the resolver (".invalid" never resolves, so
        // allow special-use names to reach the resolver).
        assert_eq!(
            check("http://localhost/", &p).await,
            Err(UrlError::Loopback)
        );
        let lookups = RegistrationConfig {
            allow_special_use_domains: true,
            ..p
        };
        assert_eq!(
            check("http://nothing.invalid/", &lookups).await,
            Err(UrlError::Unresolvable("nothing.invalid".into()))
        );
    }
}
