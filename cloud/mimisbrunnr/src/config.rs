//! Mimisbrunnr's configuration: one serde shape, every field defaulted and documented.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Everything `xmidt mimisbrunnr` reads from its config file (section `mimisbrunnr`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The norn API, event intake (`/events`), `/health` and `/metrics`.
    pub address: SocketAddr,
    /// Norns are kept in `<data_dir>/store.sqlite3` unless `database_url` is set.
    pub data_dir: PathBuf,
    /// A `postgres://` URL: replicas configured with the same database share their norns.
    pub database_url: Option<String>,
    /// How often norns are re-read from the store, which is how one replica learns of norns
    /// made, changed or deleted at another.
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
    /// How often expired norns are deleted from the store.
    #[serde(with = "humantime_serde")]
    pub purge_interval: Duration,
    /// The longest `TTL` a norn may ask for.
    #[serde(with = "humantime_serde")]
    pub max_ttl: Duration,
    /// Norns kept at once; new ones beyond are refused (403).
    pub max_norns: usize,
    /// The largest norn body (413 above).
    pub max_norn_body: usize,
    /// Events buffered per norn; when full, further events for it are dropped and its
    /// `FailureURL` is told.
    pub buffer_size: usize,
    /// Credentials for `/norns`. The caller's subject owns the norns it makes; with no
    /// credentials configured the API is open and every caller is one shared owner.
    pub api_auth: xmidt_auth::ApiAuthConfig,
    pub intake: IntakeConfig,
    pub delivery: DeliveryConfig,
    /// Keep a webhook registered at caduceus that sends every event here. Absent: events
    /// arrive only as posted to `/events` or handed over in-process.
    pub caduceus: Option<RegistrationConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            address: SocketAddr::from(([0, 0, 0, 0], 6800)),
            data_dir: PathBuf::from("./xmidt-data"),
            database_url: None,
            reload_interval: Duration::from_secs(5),
            purge_interval: Duration::from_secs(60),
            max_ttl: Duration::from_secs(24 * 3600),
            max_norns: 10_000,
            max_norn_body: 64 * 1024,
            buffer_size: 100,
            api_auth: xmidt_auth::ApiAuthConfig::default(),
            intake: IntakeConfig::default(),
            delivery: DeliveryConfig::default(),
            caduceus: None,
        }
    }
}

/// `POST /events`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntakeConfig {
    /// The largest event accepted (413 above).
    pub max_event_size: usize,
    /// Reading a request body that takes longer fails with 408.
    #[serde(with = "humantime_serde")]
    pub read_timeout: Duration,
    /// Events accepted but not yet handed to their norns; when full, intake answers 429.
    pub queue_size: usize,
}

impl Default for IntakeConfig {
    fn default() -> Self {
        IntakeConfig {
            max_event_size: 1024 * 1024,
            read_timeout: Duration::from_secs(30),
            queue_size: 10_000,
        }
    }
}

/// How events reach norns' destinations.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// One attempt, connecting included.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Attempts after the first, on connection errors, timeouts, 408, 429 and 5xx.
    pub max_retries: u32,
    /// The first retry waits up to this long (full jitter); each later one up to twice as long.
    #[serde(with = "humantime_serde")]
    pub retry_backoff: Duration,
    /// The cap on one backoff wait.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// At most one overflow notice per norn to its `FailureURL` in this period.
    #[serde(with = "humantime_serde")]
    pub failure_notice_interval: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            max_retries: 3,
            retry_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            failure_notice_interval: Duration::from_secs(10),
        }
    }
}

/// The webhook mimisbrunnr keeps registered at caduceus.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationConfig {
    /// Caduceus' registration endpoint, e.g. `http://caduceus:6000/hook`.
    pub url: String,
    /// Where caduceus reaches this mimisbrunnr's intake, e.g. `http://mimisbrunnr:6800/events`.
    pub events_url: String,
    /// Event type patterns to subscribe to (caduceus anchors them).
    #[serde(default = "RegistrationConfig::default_events")]
    pub events: Vec<String>,
    /// How often the registration is renewed.
    #[serde(
        default = "RegistrationConfig::default_interval",
        with = "humantime_serde"
    )]
    pub interval: Duration,
    /// How long each registration lasts; longer than `interval`, so renewals overlap.
    #[serde(
        default = "RegistrationConfig::default_duration",
        with = "humantime_serde"
    )]
    pub duration: Duration,
    /// Given to caduceus, which signs every delivery with it; `/events` then refuses posts
    /// without a valid `X-Webpa-Signature` (403).
    #[serde(default)]
    pub secret: Option<String>,
    /// Basic credentials for caduceus, `user:pass` or its base64.
    #[serde(default)]
    pub basic: Option<String>,
    /// A bearer token for caduceus (instead of `basic`).
    #[serde(default)]
    pub bearer: Option<String>,
    /// Sent as `X-Xmidt-Partner-Ids`; caduceus delivers events of these partners (`*`: all).
    #[serde(default = "RegistrationConfig::default_partner_ids")]
    pub partner_ids: Vec<String>,
    /// One registration request.
    #[serde(
        default = "RegistrationConfig::default_timeout",
        with = "humantime_serde"
    )]
    pub timeout: Duration,
}

impl RegistrationConfig {
    fn default_events() -> Vec<String> {
        vec![".*".into()]
    }

    fn default_interval() -> Duration {
        Duration::from_secs(30)
    }

    fn default_duration() -> Duration {
        Duration::from_secs(300)
    }

    fn default_partner_ids() -> Vec<String> {
        vec!["*".into()]
    }

    fn default_timeout() -> Duration {
        Duration::from_secs(10)
    }
}
