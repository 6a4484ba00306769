//! Discovery configuration.

use std::time::Duration;

use serde::Deserialize;
use xmidt_ring::{Instance, RingOptions, DEFAULT_SCHEME, DEFAULT_VNODE_COUNT};

use crate::DiscoveryError;

/// Where talaria instances come from and how they are checked.
///
/// Deserialises from the service's YAML/JSON config; every field has a default, durations are
/// humantime strings (`"10s"`, `"500ms"`). At least one of `fixed` and `dns` must be non-empty.
///
/// ```yaml
/// dns: ["http://talaria:6200"]
/// dns_interval: 10s
/// default_scheme: http
/// health:
///   port: 6201
///   path: /health
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiscoveryConfig {
    /// Instance URLs that are always candidates (Go `service.fixed`), e.g.
    /// `http://talaria-0:6200`. A missing scheme becomes `default_scheme`.
    pub fixed: Vec<String>,
    /// URL templates whose host is resolved to all its A and AAAA records, each address giving
    /// one instance with the template's scheme and port: `http://talaria:6200` →
    /// `http://172.18.0.5:6200`, ... (Docker Compose replicas, Kubernetes headless services).
    pub dns: Vec<String>,
    /// How often the `dns` names are resolved again.
    #[serde(with = "humantime_serde")]
    pub dns_interval: Duration,
    /// Upper bound on one resolution; on failure or timeout the previous addresses are kept.
    #[serde(with = "humantime_serde")]
    pub dns_timeout: Duration,
    /// Scheme for instances written without one (Go `service.defaultScheme`).
    pub default_scheme: String,
    /// Virtual nodes per ring member (Go `service.vnodeCount`); must match the other services.
    pub vnode_count: u32,
    /// Health checking; absent means every discovered instance is in the ring.
    pub health: Option<HealthConfig>,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            fixed: Vec::new(),
            dns: Vec::new(),
            dns_interval: Duration::from_secs(10),
            dns_timeout: Duration::from_secs(5),
            default_scheme: DEFAULT_SCHEME.to_owned(),
            vnode_count: DEFAULT_VNODE_COUNT,
            health: None,
        }
    }
}

/// HTTP health checks of every discovered instance.
///
/// A new instance joins the ring after its first passing check. A member leaves after
/// `failure_threshold` consecutive failures and comes back at its next pass. A check passes on
/// any 2xx response; errors, timeouts, redirects and other statuses fail it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// Path requested on each instance; must start with `/`.
    pub path: String,
    /// Port of the health endpoint (talaria serves it on 6201); absent means the instance's own
    /// port. The host and scheme are the instance's.
    pub port: Option<u16>,
    /// Time between checks.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Upper bound on one check, connection included.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Consecutive failures that take a member out of the ring.
    pub failure_threshold: u32,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            path: "/health".to_owned(),
            port: None,
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
            failure_threshold: 3,
        }
    }
}

/// A DNS source: the name to resolve and the scheme and port every address gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DnsTarget {
    pub(crate) template: String,
    pub(crate) scheme: String,
    pub(crate) host: String,
    pub(crate) port: u16,
}

/// A config that passed validation, with its instances and templates parsed.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) ring: RingOptions,
    pub(crate) fixed: Vec<Instance>,
    pub(crate) dns: Vec<DnsTarget>,
    pub(crate) dns_interval: Duration,
    pub(crate) dns_timeout: Duration,
    pub(crate) health: Option<HealthConfig>,
}

impl DiscoveryConfig {
    /// Checks every field; [`Discovery::start`](crate::Discovery::start) calls this first.
    pub fn validate(&self) -> Result<(), DiscoveryError> {
        self.plan().map(|_| ())
    }

    pub(crate) fn plan(&self) -> Result<Plan, DiscoveryError> {
        let ring = RingOptions {
            vnode_count: self.vnode_count,
            default_scheme: self.default_scheme.clone(),
        };
        ring.validate()?;
        if self.fixed.is_empty() && self.dns.is_empty() {
            return Err(DiscoveryError::NoSources);
        }
        let fixed = self
            .fixed
            .iter()
            .map(|raw| Instance::parse(raw, &self.default_scheme))
            .collect::<Result<Vec<_>, _>>()
            .map_err(DiscoveryError::FixedInstance)?;
        let dns = self
            .dns
            .iter()
            .map(|template| self.dns_target(template))
            .collect::<Result<Vec<_>, _>>()?;
        in_range("dns_interval", self.dns_interval)?;
        in_range("dns_timeout", self.dns_timeout)?;
        if let Some(health) = &self.health {
            in_range("health.interval", health.interval)?;
            in_range("health.timeout", health.timeout)?;
            if health.failure_threshold == 0 {
                return Err(DiscoveryError::FailureThreshold);
            }
            if !health.path.starts_with('/') {
                return Err(DiscoveryError::HealthPath(health.path.clone()));
            }
        }
        Ok(Plan {
            ring,
            fixed,
            dns,
            dns_interval: self.dns_interval,
            dns_timeout: self.dns_timeout,
            health: self.health.clone(),
        })
    }

    fn dns_target(&self, template: &str) -> Result<DnsTarget, DiscoveryError> {
        let parsed =
            Instance::parse(template, &self.default_scheme).map_err(DiscoveryError::DnsTemplate)?;
        let port = parsed
            .port_or_default()
            .ok_or_else(|| DiscoveryError::DnsTemplatePort(template.to_owned()))?;
        Ok(DnsTarget {
            template: template.to_owned(),
            scheme: parsed.scheme().to_owned(),
            host: parsed.hostname().to_owned(),
            port,
        })
    }
}

/// Longest accepted interval or timeout: anything longer is a typo, and bounding it keeps timer
/// arithmetic far from overflow.
const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

fn in_range(field: &'static str, value: Duration) -> Result<(), DiscoveryError> {
    if value.is_zero() || value > MAX_DURATION {
        return Err(DiscoveryError::DurationOutOfRange(field));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use xmidt_ring::{InstanceError, RingError};

    fn parse(json: &str) -> DiscoveryConfig {
        match serde_json::from_str(json) {
            Ok(config) => config,
            Err(e) => panic!("{json}: {e}"),
        }
    }

    #[test]
    fn defaults_fill_missing_fields() {
        let config = parse(r#"{"fixed": ["talaria-0:6200"], "health": {}}"#);
        assert_eq!(config.dns_interval, Duration::from_secs(10));
        assert_eq!(config.default_scheme, "https");
        assert_eq!(config.vnode_count, 211);
        assert_eq!(config.health, Some(HealthConfig::default()));
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn durations_are_humantime() {
        let config = parse(
            r#"{"dns": ["http://talaria:6200"], "dns_interval": "1m 30s", "dns_timeout": "250ms",
                "health": {"port": 6201, "interval": "5s", "timeout": "1s", "failure_threshold": 2}}"#,
        );
        assert_eq!(config.dns_interval, Duration::from_secs(90));
        assert_eq!(config.dns_timeout, Duration::from_millis(250));
        let health = config.health.unwrap_or_default();
        assert_eq!(
            (health.port, health.interval),
            (Some(6201), Duration::from_secs(5))
        );
        assert!(serde_json::from_str::<DiscoveryConfig>(r#"{"dns_interval": "soon"}"#).is_err());
        assert!(serde_json::from_str::<DiscoveryConfig>(r#"{"fixd": []}"#).is_err());
    }

    #[test]
    fn dns_template_gets_default_port() {
        let config = DiscoveryConfig {
            dns: vec![
                "talaria".into(),
                "http://talaria".into(),
                "http://[::1]:6200".into(),
            ],
            ..DiscoveryConfig::default()
        };
        let plan = config.plan().map(|p| p.dns);
        let target = |scheme: &str, host: &str, port, template: &str| DnsTarget {
            template: template.into(),
            scheme: scheme.into(),
            host: host.into(),
            port,
        };
        assert_eq!(
            plan,
            Ok(vec![
                target("https", "talaria", 443, "talaria"),
                target("http", "talaria", 80, "http://talaria"),
                target("http", "::1", 6200, "http://[::1]:6200"),
            ])
        );
    }

    #[test]
    fn invalid_configs_are_rejected() {
        let base = DiscoveryConfig {
            fixed: vec!["http://talaria-0:6200".into()],
            ..DiscoveryConfig::default()
        };
        let check = |change: &dyn Fn(&mut DiscoveryConfig)| {
            let mut config = base.clone();
            change(&mut config);
            config.validate()
        };
        assert_eq!(check(&|c| c.fixed.clear()), Err(DiscoveryError::NoSources));
        assert_eq!(
            check(&|c| c.fixed.push("http://a b".into())),
            Err(DiscoveryError::FixedInstance(InstanceError::InvalidHost(
                "http://a b".into()
            )))
        );
        assert_eq!(
            check(&|c| c.vnode_count = 0),
            Err(DiscoveryError::Ring(RingError::InvalidVnodeCount(0)))
        );
        assert_eq!(
            check(&|c| c.dns.push("ws://talaria".into())),
            Err(DiscoveryError::DnsTemplatePort("ws://talaria".into()))
        );
        assert_eq!(
            check(&|c| c.dns.push("http://talaria:x".into())),
            Err(DiscoveryError::DnsTemplate(InstanceError::InvalidPort(
                "http://talaria:x".into()
            )))
        );
        assert_eq!(
            check(&|c| c.dns_interval = Duration::ZERO),
            Err(DiscoveryError::DurationOutOfRange("dns_interval"))
        );
        assert_eq!(
            check(&|c| c.dns_timeout = MAX_DURATION + Duration::from_nanos(1)),
            Err(DiscoveryError::DurationOutOfRange("dns_timeout"))
        );
        assert_eq!(check(&|c| c.dns_timeout = MAX_DURATION), Ok(()));
        let health = |change: &dyn Fn(&mut HealthConfig)| {
            check(&|c| {
                let mut h = HealthConfig::default();
                change(&mut h);
                c.health = Some(h);
            })
        };
        assert_eq!(
            health(&|h| h.timeout = Duration::ZERO),
            Err(DiscoveryError::DurationOutOfRange("health.timeout"))
        );
        assert_eq!(
            health(&|h| h.failure_threshold = 0),
            Err(DiscoveryError::FailureThreshold)
        );
        assert_eq!(
            health(&|h| h.path = "health".into()),
            Err(DiscoveryError::HealthPath("health".into()))
        );
    }
}
