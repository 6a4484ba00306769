//! Discovery of talaria instances, published as an [`xmidt_ring::Ring`].
//!
//! Sources are a fixed list of instance URLs and DNS names whose every A/AAAA record becomes an
//! instance (re-resolved on an interval). Optional HTTP health checks keep failing instances out
//! of the ring. The current ring is always available from a
//! [`tokio::sync::watch::Receiver`]; a new ring is built only when membership changes, and
//! every change is logged with `tracing`.
//!
//! ```no_run
//! # async fn example() -> Result<(), xmidt_discovery::DiscoveryError> {
//! use xmidt_discovery::{Discovery, DiscoveryConfig};
//!
//! let config = DiscoveryConfig {
//!     dns: vec!["http://talaria:6200".to_owned()],
//!     ..DiscoveryConfig::default()
//! };
//! let discovery = Discovery::start(config).await?;
//! let ring = discovery.ring();
//! if let Ok(talaria) = ring.owner(b"mac:112233445566") {
//!     println!("redirect to {talaria}");
//! }
//! # Ok(())
//! # }
//! ```

mod config;
mod error;

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{self, Instant, Interval, MissedTickBehavior};
use tracing::{debug, error, info, warn};
use xmidt_ring::{Instance, Ring, RingOptions};

pub use config::{DiscoveryConfig, HealthConfig};
pub use error::DiscoveryError;

use config::DnsTarget;

/// A running discovery task and the ring it maintains.
///
/// Dropping the handle stops the task; receivers obtained from [`Discovery::subscribe`] keep
/// the last ring.
#[derive(Debug)]
pub struct Discovery {
    rx: watch::Receiver<Arc<Ring>>,
    task: JoinHandle<()>,
}

impl Discovery {
    /// Validates `config`, discovers and checks the instances once, then keeps doing so in a
    /// background task. Must be called within a tokio runtime.
    ///
    /// The first ring is ready when this returns (possibly empty, if nothing resolved or passed
    /// its health check). Start-up takes at most one `dns_timeout` plus one `health.timeout`.
    pub async fn start(config: DiscoveryConfig) -> Result<Discovery, DiscoveryError> {
        let plan = config.plan()?;
        let health = match plan.health {
            Some(config) => Some(Health::new(config)?),
            None => None,
        };
        let mut state = State {
            resolved: vec![BTreeSet::new(); plan.dns.len()],
            ring_options: plan.ring,
            fixed: plan.fixed.into_iter().collect(),
            dns: plan.dns,
            dns_timeout: plan.dns_timeout,
            health,
            members: BTreeSet::new(),
        };
        state.resolve().await;
        state.check(state.discovered()).await;
        let members = state.members();
        let ring = Ring::new(&members, &state.ring_options)?;
        info!(members = ?as_strs(&members), "talaria ring ready");
        state.members = members;

        let (tx, rx) = watch::channel(Arc::new(ring));
        let task = tokio::spawn(run(state, tx, plan.dns_interval));
        Ok(Discovery { rx, task })
    }

    /// A receiver that always holds the current ring and is notified when it changes.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Ring>> {
        self.rx.clone()
    }

    /// The current ring.
    pub fn ring(&self) -> Arc<Ring> {
        Arc::clone(&self.rx.borrow())
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Everything the background task knows.
struct State {
    ring_options: RingOptions,
    fixed: BTreeSet<Instance>,
    dns: Vec<DnsTarget>,
    dns_timeout: Duration,
    /// Last successful resolution of each `dns` target, same order.
    resolved: Vec<BTreeSet<Instance>>,
    health: Option<Health>,
    /// Members of the published ring.
    members: BTreeSet<Instance>,
}

struct Health {
    config: HealthConfig,
    client: reqwest::Client,
    /// One entry per discovered instance that has been checked at least once.
    status: HashMap<Instance, Status>,
}

#[derive(Debug, Default)]
struct Status {
    consecutive_failures: u32,
    in_ring: bool,
}

impl Health {
    fn new(config: HealthConfig) -> Result<Health, DiscoveryError> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            // A redirect is not a pass, and health traffic stays inside the cluster.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|e| DiscoveryError::HttpClient(e.to_string()))?;
        Ok(Health {
            config,
            client,
            status: HashMap::new(),
        })
    }
}

async fn run(mut state: State, tx: watch::Sender<Arc<Ring>>, dns_interval: Duration) {
    let mut dns_tick = ticker(dns_interval);
    let health_interval = state.health.as_ref().map(|h| h.config.interval);
    // Without health checks the branch is disabled; the period is then irrelevant.
    let mut health_tick = ticker(health_interval.unwrap_or(dns_interval));
    loop {
        tokio::select! {
            () = tx.closed() => return,
            _ = dns_tick.tick(), if !state.dns.is_empty() => {
                state.resolve().await;
                // Newcomers are checked at once rather than at the next health tick.
                let unchecked = state.unchecked();
                state.check(unchecked).await;
            }
            _ = health_tick.tick(), if health_interval.is_some() => {
                state.check(state.discovered()).await;
            }
        }
        state.forget_undiscovered();
        state.publish(&tx);
    }
}

fn ticker(period: Duration) -> Interval {
    let mut interval = time::interval_at(Instant::now() + period, period);
    // After a slow round, wait a full period rather than bursting to catch up.
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    interval
}

impl State {
    /// Fixed instances and every resolved address.
    fn discovered(&self) -> BTreeSet<Instance> {
        let mut all = self.fixed.clone();
        for resolved in &self.resolved {
            all.extend(resolved.iter().cloned());
        }
        all
    }

    /// Discovered instances that have never been health-checked.
    fn unchecked(&self) -> BTreeSet<Instance> {
        match &self.health {
            Some(health) => self
                .discovered()
                .into_iter()
                .filter(|i| !health.status.contains_key(i))
                .collect(),
            None => BTreeSet::new(),
        }
    }

    /// What the ring should hold now.
    fn members(&self) -> BTreeSet<Instance> {
        let discovered = self.discovered();
        match &self.health {
            None => discovered,
            Some(health) => discovered
                .into_iter()
                .filter(|i| health.status.get(i).is_some_and(|s| s.in_ring))
                .collect(),
        }
    }

    /// Resolves every DNS target concurrently; a failed target keeps its previous addresses.
    async fn resolve(&mut self) {
        let mut lookups = JoinSet::new();
        for (index, target) in self.dns.iter().enumerate() {
            let target = target.clone();
            let timeout = self.dns_timeout;
            lookups.spawn(async move { (index, resolve(&target, timeout).await) });
        }
        while let Some(joined) = lookups.join_next().await {
            match joined {
                Ok((index, Ok(instances))) => {
                    if instances != self.resolved[index] {
                        debug!(name = %self.dns[index].template, addresses = ?as_strs(&instances), "DNS answer changed");
                    }
                    self.resolved[index] = instances;
                }
                Ok((index, Err(reason))) => {
                    warn!(name = %self.dns[index].template, %reason, "DNS resolution failed; keeping the previous addresses");
                }
                Err(e) => error!(error = %e, "DNS lookup task failed"),
            }
        }
    }

    /// Health-checks `instances` concurrently and updates their status.
    async fn check(&mut self, instances: BTreeSet<Instance>) {
        let Some(health) = &mut self.health else {
            return;
        };
        let mut probes = JoinSet::new();
        for instance in instances {
            let client = health.client.clone();
            let url = health_url(&instance, &health.config);
            probes.spawn(async move {
                let outcome = probe(&client, url).await;
                (instance, outcome)
            });
        }
        let threshold = health.config.failure_threshold;
        while let Some(joined) = probes.join_next().await {
            let (instance, outcome) = match joined {
                Ok(result) => result,
                Err(e) => {
                    error!(error = %e, "health check task failed");
                    continue;
                }
            };
            let status = health.status.entry(instance.clone()).or_default();
            match outcome {
                Ok(()) => {
                    status.consecutive_failures = 0;
                    if !status.in_ring {
                        status.in_ring = true;
                        info!(%instance, "health check passed; instance joins the ring");
                    }
                }
                Err(reason) => {
                    status.consecutive_failures = status.consecutive_failures.saturating_add(1);
                    let failures = status.consecutive_failures;
                    if status.in_ring && failures >= threshold {
                        status.in_ring = false;
                        warn!(%instance, failures, %reason, "health checks failed; instance leaves the ring");
                    } else {
                        debug!(%instance, failures, %reason, "health check failed");
                    }
                }
            }
        }
    }

    /// Drops the health history of instances no longer discovered, so a returning instance
    /// must pass a check again.
    fn forget_undiscovered(&mut self) {
        let discovered = self.discovered();
        if let Some(health) = &mut self.health {
            health
                .status
                .retain(|instance, _| discovered.contains(instance));
        }
    }

    /// Builds and sends a new ring if membership changed.
    fn publish(&mut self, tx: &watch::Sender<Arc<Ring>>) {
        let members = self.members();
        if members == self.members {
            return;
        }
        let ring = match Ring::new(&members, &self.ring_options) {
            Ok(ring) => ring,
            Err(e) => {
                error!(error = %e, "cannot build the talaria ring; keeping the previous one");
                return;
            }
        };
        let added: BTreeSet<Instance> = members.difference(&self.members).cloned().collect();
        let removed: BTreeSet<Instance> = self.members.difference(&members).cloned().collect();
        info!(
            added = ?as_strs(&added),
            removed = ?as_strs(&removed),
            members = ring.len(),
            "talaria ring membership changed"
        );
        if ring.len() < members.len() {
            warn!("instances sharing a hostname count as one ring member (Go-compatible)");
        }
        tx.send_replace(Arc::new(ring));
        self.members = members;
    }
}

/// Resolves one DNS target to one instance per address.
async fn resolve(target: &DnsTarget, timeout: Duration) -> Result<BTreeSet<Instance>, String> {
    let lookup = tokio::net::lookup_host((target.host.as_str(), target.port));
    let addresses = time::timeout(timeout, lookup)
        .await
        .map_err(|_| format!("timed out after {timeout:?}"))?
        .map_err(|e| e.to_string())?;
    let instances: BTreeSet<Instance> = addresses
        .filter_map(|address| {
            let raw = match address.ip() {
                IpAddr::V4(ip) => format!("{}://{ip}:{}", target.scheme, target.port),
                IpAddr::V6(ip) => format!("{}://[{ip}]:{}", target.scheme, target.port),
            };
            // An IP literal with an already validated scheme always parses.
            Instance::parse(&raw, &target.scheme).ok()
        })
        .collect();
    if instances.is_empty() {
        return Err("no addresses".to_owned());
    }
    Ok(instances)
}

/// The health URL: the instance's scheme and host, the configured or the instance's port.
fn health_url(instance: &Instance, config: &HealthConfig) -> Option<String> {
    let port = config.port.or(instance.port_or_default())?;
    let host = instance.hostname();
    let path = &config.path;
    Some(if host.contains(':') {
        format!("{}://[{host}]:{port}{path}", instance.scheme())
    } else {
        format!("{}://{host}:{port}{path}", instance.scheme())
    })
}

async fn probe(client: &reqwest::Client, url: Option<String>) -> Result<(), String> {
    let url =
        url.ok_or("no port to check: the scheme has no default port and health.port is unset")?;
    let response = client.get(&url).send().await.map_err(|e| e.to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("{url} answered {}", response.status()))
    }
}

fn as_strs(instances: &BTreeSet<Instance>) -> Vec<&str> {
    instances.iter().map(Instance::as_str).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(raw: &str) -> Instance {
        match Instance::parse(raw, "https") {
            Ok(i) => i,
            Err(e) => panic!("{raw}: {e}"),
        }
    }

    #[test]
    fn health_url_uses_instance_host_and_configured_port() {
        let config = HealthConfig::default();
        let with_port = HealthConfig {
            port: Some(6201),
            path: "/health?deep=1".to_owned(),
            ..HealthConfig::default()
        };
        let url = |raw: &str, config: &HealthConfig| health_url(&instance(raw), config);
        assert_eq!(
            url("http://talaria-0:6200", &config).as_deref(),
            Some("http://talaria-0:6200/health")
        );
        assert_eq!(
            url("https://talaria-0", &config).as_deref(),
            Some("https://talaria-0:443/health")
        );
        assert_eq!(
            url("http://talaria-0:6200", &with_port).as_deref(),
            Some("http://talaria-0:6201/health?deep=1")
        );
        assert_eq!(
            url("http://[::1]:6200", &config).as_deref(),
            Some("http://[::1]:6200/health")
        );
        assert_eq!(url("ws://talaria-0", &config), None);
        assert_eq!(
            url("ws://talaria-0", &with_port).as_deref(),
            Some("ws://talaria-0:6201/health?deep=1")
        );
    }

    #[tokio::test]
    async fn resolve_ip_literals() {
        let target = |host: &str| DnsTarget {
            template: host.to_owned(),
            scheme: "http".to_owned(),
            host: host.to_owned(),
            port: 80,
        };
        let timeout = Duration::from_secs(5);
        let v4 = resolve(&target("127.0.0.9"), timeout).await;
        assert_eq!(v4, Ok(BTreeSet::from([instance("http://127.0.0.9")])));
        let v6 = resolve(&target("::1"), timeout).await;
        assert_eq!(v6, Ok(BTreeSet::from([instance("http://[::1]")])));
    }
}
