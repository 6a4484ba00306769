//! The device's configuration: parodus's command line (client-spec §2) as a struct, plus the
//! knobs parodus hard-codes (timeouts, limits), which tests and embedders may change.

use std::path::PathBuf;
use std::time::Duration;

/// The largest WRP message accepted from the cloud or a local service (talaria's default
/// `max_message_size`, xmidt-agent's `max_message_bytes`). Also sizes the core's outbox.
pub const MAX_MESSAGE: usize = 256 * 1024;

/// Which address families a connect attempt may use (`--force-ipv4` / `--force-ipv6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IpFamily {
    /// IPv6 first, then IPv4 (parodus's order for https).
    #[default]
    Any,
    V4,
    V6,
}

/// Everything a [`crate::Device`] needs. [`Config::new`] fills in parodus's defaults, with a
/// 180 s ping timeout (parodus's 0 reconnected on every loop).
#[derive(Debug, Clone)]
pub struct Config {
    /// `--hw-mac`: 12 hex digits, `:` allowed. The device id is `mac:` + the digits.
    pub hw_mac: String,
    pub hw_model: String,
    pub hw_serial_number: String,
    pub hw_manufacturer: String,
    pub hw_last_reboot_reason: String,
    pub fw_name: String,
    /// Unix seconds.
    pub boot_time: u64,
    /// `--boot-time-retry-wait`, seconds; in convey and the token request when > 0.
    pub boot_time_retry_wait: u32,
    /// `--webpa-url`: `http(s)://host[:port]`; the path is ignored.
    pub webpa_url: String,
    /// Seconds without a ping or frame from the server before reconnecting (`Ping_Miss`).
    pub ping_timeout_secs: u32,
    /// The backoff exponent cap: waits grow to at most 2^c - 1 s.
    pub backoff_max: u8,
    /// `--webpa-interface-used`: sent in convey, metadata and the token request, and the
    /// cloud socket is bound to it (`SO_BINDTODEVICE`) when the process may.
    pub interface_used: String,
    pub interface_label: String,
    pub wan_ipv4_address: String,
    /// `--partner-id`: comma list; empty means no partner filtering.
    pub partner_ids: String,
    /// `--parodus-local-url`: where the libparodus IPC (nanomsg PULL) listens; `None` runs
    /// without IPC (in-process services only).
    pub local_url: Option<String>,
    /// `--ssl-cert-path`: the CA bundle for the cloud and the token server; the system's roots
    /// when `None`.
    pub ssl_cert_path: Option<PathBuf>,
    pub ip_family: IpFamily,
    /// `--token-server-url`: themis `/issue`; empty means no token.
    pub token_server_url: String,
    /// `--client-cert-path`: PEM with the client certificate and its key, for the token
    /// server (mTLS).
    pub client_cert_path: Option<PathBuf>,
    /// `--mtls-client-cert-path` / `--mtls-client-key-path`: client certificate for the cloud
    /// WebSocket.
    pub mtls_client_cert_path: Option<PathBuf>,
    pub mtls_client_key_path: Option<PathBuf>,
    /// `--crud-config-file`: where CRUD tags are kept (JSON); without it tag requests get 500.
    pub crud_config_file: Option<PathBuf>,
    /// `--connection-health-file`: `{START=<t0>,<now>}` while connecting, `{STOP=<now>}` once
    /// online.
    pub connection_health_file: Option<PathBuf>,
    /// Created when the cloud connection comes back, removed when it drops (parodus's
    /// `/tmp/webpanotifyready`).
    pub notify_ready_file: Option<PathBuf>,
    /// `webpa-protocol` in convey, metadata and the User-Agent.
    pub protocol: String,
    /// DNS, TCP, TLS and the upgrade together (parodus: 10 s).
    pub connect_timeout_secs: u32,
    /// Service-alive messages to registered services (parodus: 30 s); 0 turns them off.
    pub service_alive_secs: u32,
    /// How long a delivery to an IPC service may take, connecting included, before the service
    /// counts as dead (parodus's PUSH send timeout: 2 s).
    pub service_send_timeout: Duration,
    /// Seconds to wait for talaria's ack of a QoS event before sending it again.
    pub qos_ack_timeout_secs: u32,
    /// Messages waiting for one service; a service that lets its queue fill is dead.
    pub service_queue: usize,
    /// IPC connections accepted at once (every libparodus client holds one).
    pub max_ipc_connections: usize,
}

impl Config {
    /// parodus's defaults for everything but the two required values.
    pub fn new(hw_mac: impl Into<String>, webpa_url: impl Into<String>) -> Self {
        let core = xmidt_client_core::Config::new("", "");
        Config {
            hw_mac: hw_mac.into(),
            hw_model: String::new(),
            hw_serial_number: String::new(),
            hw_manufacturer: String::new(),
            hw_last_reboot_reason: String::new(),
            fw_name: String::new(),
            boot_time: 0,
            boot_time_retry_wait: 0,
            webpa_url: webpa_url.into(),
            ping_timeout_secs: core.ping_timeout_secs,
            backoff_max: core.backoff_max,
            interface_used: String::new(),
            interface_label: String::new(),
            wan_ipv4_address: String::new(),
            partner_ids: String::new(),
            local_url: Some(DEFAULT_LOCAL_URL.to_string()),
            ssl_cert_path: None,
            ip_family: IpFamily::Any,
            token_server_url: String::new(),
            client_cert_path: None,
            mtls_client_cert_path: None,
            mtls_client_key_path: None,
            crud_config_file: None,
            connection_health_file: None,
            notify_ready_file: None,
            protocol: xmidt_client_core::DEFAULT_PROTOCOL.to_string(),
            connect_timeout_secs: core.connect_timeout_secs,
            service_alive_secs: core.service_alive_secs,
            service_send_timeout: Duration::from_secs(2),
            qos_ack_timeout_secs: core.qos_ack_timeout_secs,
            service_queue: 64,
            max_ipc_connections: 64,
        }
    }

    /// The core's view, borrowing the strings.
    pub(crate) fn core(&self) -> xmidt_client_core::Config<'_> {
        xmidt_client_core::Config {
            hw_model: &self.hw_model,
            hw_serial_number: &self.hw_serial_number,
            hw_manufacturer: &self.hw_manufacturer,
            hw_last_reboot_reason: &self.hw_last_reboot_reason,
            fw_name: &self.fw_name,
            boot_time: self.boot_time,
            boot_time_retry_wait: self.boot_time_retry_wait,
            interface_used: &self.interface_used,
            interface_label: &self.interface_label,
            wan_ipv4_address: &self.wan_ipv4_address,
            partner_ids: &self.partner_ids,
            token_server_url: &self.token_server_url,
            protocol: &self.protocol,
            convey_extras: &[],
            ping_timeout_secs: self.ping_timeout_secs,
            backoff_max: self.backoff_max,
            connect_timeout_secs: self.connect_timeout_secs,
            qos_ack_timeout_secs: self.qos_ack_timeout_secs,
            service_alive_secs: self.service_alive_secs,
            ..xmidt_client_core::Config::new(&self.hw_mac, &self.webpa_url)
        }
    }
}

/// libparodus's default `parodus_url`.
pub const DEFAULT_LOCAL_URL: &str = "tcp://127.0.0.1:6666";
