//! Caduceus' configuration: one serde shape, every field defaulted and documented.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Everything `xmidt caduceus` reads from its config file (section `caduceus`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Event intake, the webhook API, `/health` and `/metrics`.
    pub address: SocketAddr,
    /// Sent in the `X-Caduceus-Server` response header.
    pub server: String,
    /// Webhooks are kept in `<data_dir>/store.sqlite3` unless `database_url` is set.
    pub data_dir: PathBuf,
    /// A `postgres://` URL: replicas configured with the same database share their webhooks.
    pub database_url: Option<String>,
    /// How often the webhook list is re-read from the store, which is how one replica learns
    /// of registrations and deletions made at another.
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
    /// How often expired registrations are deleted from the store.
    #[serde(with = "humantime_serde")]
    pub purge_interval: Duration,
    pub intake: IntakeConfig,
    pub registration: RegistrationConfig,
    pub delivery: DeliveryConfig,
    /// Who may post events and manage webhooks (Basic, JWT, capabilities). With no credentials
    /// configured the API is open. A caller's partner ids then come from its token
    /// (`allowedResources.allowedPartners`), else from `X-Xmidt-Partner-Ids` as ancla reads them.
    pub api_auth: xmidt_auth::ApiAuthConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            address: SocketAddr::from(([0, 0, 0, 0], 6000)),
            server: hostname::get()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "caduceus".into()),
            data_dir: PathBuf::from("./xmidt-data"),
            database_url: None,
            reload_interval: Duration::from_secs(5),
            purge_interval: Duration::from_secs(60),
            intake: IntakeConfig::default(),
            registration: RegistrationConfig::default(),
            delivery: DeliveryConfig::default(),
            api_auth: xmidt_auth::ApiAuthConfig::default(),
        }
    }
}

/// `POST /api/v4/notify` (and v3).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntakeConfig {
    /// The largest event accepted (413 above). Bounds the memory one event can pin in the
    /// queues (caduceus#225).
    pub max_event_size: usize,
    /// A request's headers, and then its body, must each arrive within this time: a slow
    /// body is answered 408, slow headers close the connection. Applies to every route.
    #[serde(with = "humantime_serde")]
    pub read_timeout: Duration,
}

impl Default for IntakeConfig {
    fn default() -> Self {
        IntakeConfig {
            max_event_size: 1024 * 1024,
            read_timeout: Duration::from_secs(30),
        }
    }
}

/// `POST /hook`: what a registration may ask for.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrationConfig {
    /// The largest registration body (413 above).
    pub max_body: usize,
    /// The longest a registration may last (`duration`, or `until` from now).
    #[serde(with = "humantime_serde")]
    pub max_duration: Duration,
    /// Slack allowed on `until` beyond `max_duration`, for clock skew.
    #[serde(with = "humantime_serde")]
    pub until_jitter: Duration,
    /// Registrations kept at once; new ones beyond are refused (403).
    pub max_webhooks: usize,
    /// Regular expressions per list (`events`, `matcher.device_id`).
    pub max_patterns: usize,
    /// Characters per regular expression.
    pub max_pattern_len: usize,
    /// `alt_urls` per registration.
    pub max_alt_urls: usize,
    /// URL schemes receivers may use.
    pub schemes: Vec<String>,
    /// Admit receivers on loopback (`localhost`, 127.0.0.0/8, ::1), by name or literal IP.
    /// `xmidt up` sets it; keep it off where callers are not trusted.
    pub allow_loopback: bool,
    /// Admit literal IP addresses as receiver hosts (other than loopback).
    pub allow_ip_literals: bool,
    /// Admit private and special-use addresses (RFC 1918, link-local, unique-local, CGNAT,
    /// documentation, multicast, ...), whether literal or resolved.
    pub allow_private_networks: bool,
    /// Admit special-use domain names (`*.example`, `*.test`, `*.invalid`, `*.local`, ...).
    pub allow_special_use_domains: bool,
    /// Resolve receiver host names at registration, refusing names that do not resolve or
    /// that resolve to refused addresses.
    pub resolve_hosts: bool,
    #[serde(with = "humantime_serde")]
    pub resolve_timeout: Duration,
    /// Partner ids given to registrations whose caller presents none (e.g. `["*"]` on a
    /// single-tenant setup).
    pub default_partner_ids: Vec<String>,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        RegistrationConfig {
            max_body: 64 * 1024,
            max_duration: Duration::from_secs(24 * 3600),
            until_jitter: Duration::from_secs(10),
            max_webhooks: 1000,
            max_patterns: 32,
            max_pattern_len: 1024,
            max_alt_urls: 16,
            schemes: vec!["https".into(), "http".into()],
            allow_loopback: false,
            allow_ip_literals: false,
            allow_private_networks: false,
            allow_special_use_domains: false,
            resolve_hosts: true,
            resolve_timeout: Duration::from_secs(2),
            default_partner_ids: Vec::new(),
        }
    }
}

/// How events reach webhooks. Every webhook has its own queue and workers.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Events queued per webhook; overflowing it cuts the webhook off.
    pub queue_size: usize,
    /// Bytes of events queued per webhook; overflowing it cuts the webhook off.
    pub max_queue_bytes: usize,
    /// Concurrent deliveries per webhook.
    pub workers: usize,
    /// One attempt, connecting included.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// From enqueue to the last attempt; an event not delivered by then is given up.
    #[serde(with = "humantime_serde")]
    pub max_delivery_time: Duration,
    /// Attempts after the first, on connection errors, timeouts, 408, 429 and 5xx.
    pub max_retries: u32,
    /// The first retry waits up to this long (full jitter); each later one up to twice as long.
    #[serde(with = "humantime_serde")]
    pub retry_backoff: Duration,
    /// The cap on one backoff wait.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// The longest `Retry-After` honoured; a receiver asking for more is given up on.
    #[serde(with = "humantime_serde")]
    pub max_retry_after: Duration,
    /// How long a webhook that overflowed its queue or spent an event's retries gets no
    /// events (each counted); its `failure_url` is told when this starts.
    #[serde(with = "humantime_serde")]
    pub cut_off_period: Duration,
    /// Deliver every event regardless of partner ids.
    pub disable_partner_ids: bool,
    /// Partner ids assumed for events that carry none.
    pub custom_partner_ids: Vec<String>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            queue_size: 10_000,
            max_queue_bytes: 64 * 1024 * 1024,
            workers: 100,
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            max_delivery_time: Duration::from_secs(60),
            max_retries: 3,
            retry_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
            cut_off_period: Duration::from_secs(10),
            disable_partner_ids: false,
            custom_partner_ids: Vec::new(),
        }
    }
}
