//! Talaria's configuration: one serde shape, every field defaulted and documented.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Everything `xmidt talaria` reads from its config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Devices and the API (`/api/v2|v3/...`), plus `/health`.
    pub address: SocketAddr,
    /// The operator control API (gate, drain). Keep it off public networks.
    pub control_address: Option<SocketAddr>,
    /// Terminate TLS here (wss/https) with this certificate chain and key (PEM).
    pub tls: Option<TlsConfig>,
    /// Sent in `X-Talaria-*` response headers, as the Go talaria does.
    pub server: String,
    pub device: DeviceConfig,
    pub outbound: OutboundConfig,
    pub api: ApiConfig,
    /// Credentials for the API routes (`/device/send`, `/devices`, `/device/{id}/stat`).
    pub api_auth: xmidt_auth::ApiAuthConfig,
    /// Device tokens on the connect route; kept apart from `api_auth` so a device token is never
    /// accepted on the API (talaria#568).
    pub device_auth: xmidt_auth::DeviceAuthConfig,
    /// Make devices connect to the talaria that owns them on the consistent-hash ring.
    pub ring: Option<RingCheckConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            address: SocketAddr::from(([0, 0, 0, 0], 6200)),
            control_address: Some(SocketAddr::from(([127, 0, 0, 1], 6203))),
            tls: None,
            server: hostname::get()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "talaria".into()),
            device: DeviceConfig::default(),
            outbound: OutboundConfig::default(),
            api: ApiConfig::default(),
            api_auth: xmidt_auth::ApiAuthConfig::default(),
            device_auth: xmidt_auth::DeviceAuthConfig::default(),
            ring: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, SEC1 or RSA).
    pub key: PathBuf,
}

/// How talaria treats a device's `source` that names another device (talaria#149).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceCheck {
    /// Count it and pass the message on.
    Monitor,
    /// Drop the message.
    Enforce,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceConfig {
    /// Talaria pings each device this often.
    #[serde(with = "humantime_serde")]
    pub ping_period: Duration,
    /// A device that sends nothing (no frame, no pong) for this long is dropped. Unlike the Go
    /// talaria, any inbound frame extends it, not only pongs (talaria#245).
    #[serde(with = "humantime_serde")]
    pub idle_period: Duration,
    /// A write (message or ping) that does not finish in this time closes the connection.
    #[serde(with = "humantime_serde")]
    pub write_timeout: Duration,
    /// Messages queued for one device; when full, the API answers 503.
    pub queue_size: usize,
    /// The most devices at once (0 = no limit).
    pub max_devices: usize,
    /// The largest websocket message accepted from a device.
    pub max_message_size: usize,
    /// Each connection's websocket read buffer, in bytes: what an idle connection keeps. Larger
    /// frames are still read whole (into room reserved for them); tungstenite's default of
    /// 128 KiB would cost 2.3 GB for 18,000 devices.
    pub read_buffer_size: usize,
    /// Outgoing bytes gathered before writing to the socket. Every message talaria sends is
    /// flushed at once, so this only matters to frames written together; 0 writes each at once.
    pub write_buffer_size: usize,
    pub source_check: SourceCheck,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        DeviceConfig {
            ping_period: Duration::from_secs(45),
            idle_period: Duration::from_secs(135),
            write_timeout: Duration::from_secs(60),
            queue_size: 100,
            max_devices: 0,
            max_message_size: 256 * 1024,
            read_buffer_size: 1024,
            write_buffer_size: 0,
            source_check: SourceCheck::Monitor,
        }
    }
}

/// Where device events go.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundConfig {
    /// Event type (the part after `event:`) → receiver URLs; `default` catches the rest.
    pub event_endpoints: BTreeMap<String, Vec<String>>,
    /// Scheme added to `dns:` destinations that have none.
    pub default_scheme: String,
    /// Schemes `dns:` destinations may use.
    pub allowed_schemes: Vec<String>,
    /// Events waiting for a worker. 10,000 (Go: 1,000) holds the online events of a reconnect
    /// storm: 1,000 lasted a sixth of a second at 6,000 connects/s (BENCHMARKS.md, "talaria at
    /// scale").
    pub queue_size: usize,
    /// How long an event waits for room in a full queue before it is dropped and counted (Go:
    /// dropped at once; 0s does the same). Meanwhile a device's own events hold back reading
    /// its next frames, and an online or offline event holds only its connection's task.
    #[serde(with = "humantime_serde")]
    pub queue_wait: Duration,
    pub workers: usize,
    /// From enqueue to the last try.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Tries after the first, on connection errors, 408, 429 and 5xx.
    pub retries: u32,
    /// The first retry waits this long; each next one twice as long (with jitter).
    #[serde(with = "humantime_serde")]
    pub retry_backoff: Duration,
    /// `Authorization` header sent with events, e.g. `Basic dXNlcjpwYXNz`.
    pub authorization: Option<String>,
    /// `source` of the events talaria makes (online/offline) and of QoS acks.
    pub source: String,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            event_endpoints: BTreeMap::from([(
                "default".to_string(),
                vec!["http://127.0.0.1:6000/api/v4/notify".to_string()],
            )]),
            default_scheme: "https".into(),
            allowed_schemes: vec!["https".into()],
            queue_size: 10_000,
            queue_wait: Duration::from_secs(10),
            workers: 50,
            request_timeout: Duration::from_secs(30),
            retries: 3,
            retry_backoff: Duration::from_millis(100),
            authorization: None,
            source: "dns:talaria".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// How long `/device/send` waits for the device's answer (504 after).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// The largest request body (413 above).
    pub max_body: usize,
    /// How long the rendered `/devices` list is reused.
    #[serde(with = "humantime_serde")]
    pub devices_cache: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            request_timeout: Duration::from_secs(120),
            max_body: 1024 * 1024,
            devices_cache: Duration::from_secs(10),
        }
    }
}

/// What talaria does with a device that the ring gives to another talaria.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RingMode {
    /// Let it connect; count it (`xmidt_talaria_ring_check{outcome="other_owner"}`).
    Accept,
    /// 307 to the owner, as petasos would have answered.
    Redirect,
    /// 410 Gone (the Go talaria's intended, never wired, hash filter).
    Refuse,
}

/// The ring check (cloud-spec §4.12). The ring must be the one petasos uses: same instances,
/// same vnode count.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RingCheckConfig {
    /// This talaria's instance URL as discovery lists it (e.g. `http://talaria-0:6200`).
    pub self_url: String,
    pub discovery: xmidt_discovery::DiscoveryConfig,
    #[serde(default = "RingCheckConfig::default_mode")]
    pub mode: RingMode,
    /// After a ring change, disconnect devices that now belong elsewhere, so they reconnect
    /// through petasos to their new owner.
    #[serde(default = "RingCheckConfig::default_rehash")]
    pub rehash: bool,
}

impl RingCheckConfig {
    fn default_mode() -> RingMode {
        RingMode::Redirect
    }

    fn default_rehash() -> bool {
        true
    }
}
