//! The device's configuration (parodus's command line, client-spec §2) and what the core derives
//! from it once, at [`crate::Client::new`].

use core::fmt::Write;

use wrp_nostd::DeviceId;

use crate::error::ConfigError;
use crate::handshake;
use crate::reason::MAX_DISCONNECT_REASON;
use crate::url::Endpoint;

/// The longest text field (parodus's limit for `--hw-last-reboot-reason`, applied to all).
pub const MAX_FIELD: usize = 127;
/// The longest `cloud_url` or `token_server_url`.
pub const MAX_URL: usize = 256;
/// The longest protocol string.
pub const MAX_PROTOCOL: usize = 64;
/// How many partner ids `partner_ids` may list.
pub const MAX_PARTNERS: usize = 8;
/// How many extra convey fields `convey_extras` may add.
pub const MAX_CONVEY_EXTRAS: usize = 8;

/// Ours names itself in parodus's style; the cloud reads the `PARODUS-2.0-` prefix.
pub const DEFAULT_PROTOCOL: &str = concat!("PARODUS-2.0-xmidt-rs-", env!("CARGO_PKG_VERSION"));

/// Everything the client needs to know about the device and its cloud. Text borrows from the
/// driver (its command line, its flash); [`Config::new`] fills in parodus's defaults, with the
/// ping timeout fixed at 180 s instead of parodus's 0 (client-spec §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config<'c> {
    /// `--hw-mac`: the device id is `mac:` + this without its `:`s. Must be 12 hex digits.
    pub hw_mac: &'c str,
    pub hw_model: &'c str,
    /// `[A-Za-z0-9]*`.
    pub hw_serial_number: &'c str,
    pub hw_manufacturer: &'c str,
    pub hw_last_reboot_reason: &'c str,
    pub fw_name: &'c str,
    /// Unix seconds.
    pub boot_time: u64,
    /// Seconds; sent in convey only when > 0.
    pub boot_time_retry_wait: u32,
    pub interface_used: &'c str,
    pub interface_label: &'c str,
    pub wan_ipv4_address: &'c str,
    /// `--partner-id`: a comma list; empty means no partner filtering.
    pub partner_ids: &'c str,
    /// `--webpa-url`: `http(s)://host[:port]` (the path is ignored).
    pub cloud_url: &'c str,
    /// The themis `/issue` URL; empty means no token is fetched.
    pub token_server_url: &'c str,
    /// `webpa-protocol` in convey, metadata and the User-Agent.
    pub protocol: &'c str,
    /// Extra string fields appended to the convey JSON, in order (empty values left out).
    pub convey_extras: &'c [(&'c str, &'c str)],
    /// Seconds without any inbound frame or ping before reconnecting (`Ping_Miss`).
    pub ping_timeout_secs: u32,
    /// Backoff exponent cap c: waits grow to at most 2^c - 1 s (parodus `--webpa-backoff-max`).
    pub backoff_max: u8,
    /// Seconds a connect attempt (TCP, TLS, upgrade) may take before it counts as failed.
    pub connect_timeout_secs: u32,
    /// Seconds to wait for a QoS ack before sending the message again.
    pub qos_ack_timeout_secs: u32,
    /// Seconds between service-alive messages to registered services; 0 turns them off
    /// (firmware handlers do not need them).
    pub service_alive_secs: u32,
}

impl<'c> Config<'c> {
    /// parodus's defaults, except the 180 s ping timeout.
    pub const fn new(hw_mac: &'c str, cloud_url: &'c str) -> Self {
        Config {
            hw_mac,
            hw_model: "",
            hw_serial_number: "",
            hw_manufacturer: "",
            hw_last_reboot_reason: "",
            fw_name: "",
            boot_time: 0,
            boot_time_retry_wait: 0,
            interface_used: "",
            interface_label: "",
            wan_ipv4_address: "",
            partner_ids: "",
            cloud_url,
            token_server_url: "",
            protocol: DEFAULT_PROTOCOL,
            convey_extras: &[],
            ping_timeout_secs: 180,
            backoff_max: 9,
            connect_timeout_secs: 10,
            qos_ack_timeout_secs: 30,
            service_alive_secs: 30,
        }
    }
}

/// A validated config and the values derived from it.
#[derive(Debug, Clone)]
pub(crate) struct Identity<'c> {
    pub cfg: Config<'c>,
    /// `hw_mac` without `:` (parodus's `hw-mac` value).
    pub mac: heapless::String<12>,
    /// `mac:<mac>`: the X-WebPA-Device-Name and this device's id.
    pub device_name: heapless::String<16>,
    pub boot_time: heapless::String<20>,
    pub boot_time_retry_wait: heapless::String<10>,
    pub partners: heapless::Vec<&'c str, MAX_PARTNERS>,
    pub endpoint: Endpoint<'c>,
    pub user_agent: heapless::String<{ handshake::MAX_USER_AGENT }>,
}

impl<'c> Identity<'c> {
    pub fn new(cfg: &Config<'c>) -> Result<Self, ConfigError> {
        let texts: [(&'static str, &str, usize); 13] = [
            ("hw-mac", cfg.hw_mac, MAX_FIELD),
            ("hw-model", cfg.hw_model, MAX_FIELD),
            ("hw-serial-number", cfg.hw_serial_number, MAX_FIELD),
            ("hw-manufacturer", cfg.hw_manufacturer, MAX_FIELD),
            (
                "hw-last-reboot-reason",
                cfg.hw_last_reboot_reason,
                MAX_FIELD,
            ),
            ("fw-name", cfg.fw_name, MAX_FIELD),
            ("webpa-interface-used", cfg.interface_used, MAX_FIELD),
            ("webpa-interface-label", cfg.interface_label, MAX_FIELD),
            ("wan-ipv4-address", cfg.wan_ipv4_address, MAX_FIELD),
            ("partner-id", cfg.partner_ids, MAX_FIELD),
            ("webpa-url", cfg.cloud_url, MAX_URL),
            ("token-server-url", cfg.token_server_url, MAX_URL),
            ("webpa-protocol", cfg.protocol, MAX_PROTOCOL),
        ];
        for (field, value, max) in texts {
            check_text(field, value, max)?;
        }
        if cfg.convey_extras.len() > MAX_CONVEY_EXTRAS {
            return Err(ConfigError::InvalidConveyExtras);
        }
        for (i, &(key, value)) in cfg.convey_extras.iter().enumerate() {
            check_text("convey-extras", key, MAX_FIELD)?;
            check_text("convey-extras", value, MAX_FIELD)?;
            if key.is_empty() {
                return Err(ConfigError::InvalidConveyExtras);
            }
            let repeated = cfg.convey_extras[..i].iter().any(|(k, _)| *k == key);
            if repeated || handshake::CONVEY_KEYS.contains(&key) {
                return Err(ConfigError::DuplicateConveyKey);
            }
        }

        let mut mac = heapless::String::new();
        for c in cfg.hw_mac.chars().filter(|&c| c != ':') {
            mac.push(c).map_err(|_| ConfigError::InvalidMac)?;
        }
        if mac.len() != 12 || !mac.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ConfigError::InvalidMac);
        }
        let mut device_name = heapless::String::new();
        write!(device_name, "mac:{mac}").map_err(|_| ConfigError::InvalidMac)?;
        // Hex digits always make a valid mac id; checked anyway rather than assumed.
        DeviceId::parse(&device_name).map_err(|_| ConfigError::InvalidMac)?;

        if !cfg
            .hw_serial_number
            .bytes()
            .all(|b| b.is_ascii_alphanumeric())
        {
            return Err(ConfigError::InvalidSerialNumber);
        }
        let endpoint = Endpoint::parse(cfg.cloud_url).map_err(ConfigError::InvalidCloudUrl)?;
        if cfg.protocol.is_empty() {
            return Err(ConfigError::EmptyProtocol);
        }
        for (field, secs) in [
            ("webpa-ping-timeout", cfg.ping_timeout_secs),
            ("connect-timeout", cfg.connect_timeout_secs),
            ("qos-ack-timeout", cfg.qos_ack_timeout_secs),
        ] {
            if secs == 0 {
                return Err(ConfigError::ZeroTimeout(field));
            }
        }
        if cfg.backoff_max > 31 {
            return Err(ConfigError::BackoffMaxTooLarge);
        }
        let mut partners = heapless::Vec::new();
        // Split as strtok does: empty items are skipped.
        for p in cfg.partner_ids.split(',').filter(|p| !p.is_empty()) {
            partners.push(p).map_err(|_| ConfigError::TooManyPartners)?;
        }
        let mut boot_time = heapless::String::new();
        let mut boot_time_retry_wait = heapless::String::new();
        // u64 and u32 in decimal always fit 20 and 10 bytes.
        let _ = write!(boot_time, "{}", cfg.boot_time);
        let _ = write!(boot_time_retry_wait, "{}", cfg.boot_time_retry_wait);

        let id = Identity {
            cfg: *cfg,
            mac,
            device_name,
            boot_time,
            boot_time_retry_wait,
            partners,
            endpoint,
            user_agent: handshake::user_agent(cfg)?,
        };
        // The longest reconnect reason must still fit, so that no later connect can fail.
        let longest = [b'x'; MAX_DISCONNECT_REASON];
        let longest = core::str::from_utf8(&longest).unwrap_or_default();
        if handshake::convey_len(&id, longest) > handshake::MAX_CONVEY {
            return Err(ConfigError::ConveyTooLong);
        }
        Ok(id)
    }

    /// The 12 metadata entries parodus adds to every upstream message (client-spec §5.5), with
    /// the reconnect reason of the current connection.
    pub fn metadata<'s>(&'s self, reconnect_reason: &'s str) -> [(&'s str, &'s str); 12] {
        let c = &self.cfg;
        [
            ("hw-model", c.hw_model),
            ("hw-serial-number", c.hw_serial_number),
            ("hw-manufacturer", c.hw_manufacturer),
            ("hw-mac", &self.mac),
            ("hw-last-reboot-reason", c.hw_last_reboot_reason),
            ("fw-name", c.fw_name),
            ("boot-time", &self.boot_time),
            ("webpa-last-reconnect-reason", reconnect_reason),
            ("webpa-protocol", c.protocol),
            ("webpa-uuid", WEBPA_UUID),
            ("webpa-interface-used", c.interface_used),
            ("partner-id", c.partner_ids),
        ]
    }
}

/// parodus's constant `webpa-uuid`.
pub(crate) const WEBPA_UUID: &str = "1234567-345456546";

fn check_text(field: &'static str, value: &str, max: usize) -> Result<(), ConfigError> {
    if value.len() > max {
        return Err(ConfigError::FieldTooLong(field));
    }
    if value.chars().any(char::is_control) {
        return Err(ConfigError::ControlCharacter(field));
    }
    Ok(())
}
