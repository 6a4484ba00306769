//! The Xmidt device client on microcontrollers: [`xmidt_client_core`] (parodus's behaviour,
//! sans-IO) driven over embassy-net TCP, TLS 1.3 (embedded-tls; the certificate chain and host
//! name are checked against a configured CA) and WebSocket, with the `wrp-nostd` codec.
//!
//! `#![no_std]` and no heap: every buffer is a fixed array inside [`run`]'s future, which an
//! embassy task stores statically.
//!
//! - **Services** are Rust handlers ([`Service`]): cloud messages for `mac:…/<name>` reach
//!   [`Service::handle`], which may answer through its [`Reply`].
//! - **Events** are published on a channel ([`Events`]); the client sends them when online.
//! - **Configuration** is one struct ([`Config`]): cloud URL, the MAC the device id comes
//!   from, the CA, the device's token, its descriptive fields.
//! - **Boards** give it their `embassy_net::Stack` ([`run_on_stack`]; or any [`Connector`] to
//!   [`run`]) and a CSPRNG, in a task. `boards/qemu-mps2-an386` is the reference.
//!
//! Logging is defmt.
#![no_std]

mod device;
mod net;
mod service;
mod ws;
mod x509;

pub use device::{run, StartError, INBOX, MAX_SERVICES};
pub use net::{run_on_stack, ConnectError, Connector, EmbassyNet, Socket, TCP_RX, TCP_TX};
pub use service::{Event, Events, Reply, Service, EVENT_CAPACITY, REPLY_CAPACITY};
pub use wrp_nostd::{Message, MessageType};

/// Everything the device client needs to know, in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config<'a> {
    /// Where to connect: `ws://`, `wss://` (or `http://`, `https://`) host and port; usually
    /// petasos, whose redirect to a talaria is followed.
    pub cloud_url: &'a str,
    /// The network interface's MAC address: the device id is `mac:` and its 12 hex digits.
    pub mac: [u8; 6],
    /// The CA certificate (DER) that signs the cloud's TLS certificates: ECDSA P-256. Empty:
    /// `wss` connections fail (there is nothing to verify against; verification is not
    /// optional).
    pub ca: &'a [u8],
    pub fw_name: &'a str,
    pub hw_model: &'a str,
    pub hw_manufacturer: &'a str,
    /// `[A-Za-z0-9]*`.
    pub hw_serial_number: &'a str,
    pub hw_last_reboot_reason: &'a str,
    pub interface_used: &'a str,
    /// A comma list; empty means no partner filtering.
    pub partner_ids: &'a str,
    /// The device's JWT, sent as `Authorization: Bearer` on every connect; empty: none. A
    /// talaria with device keys configured refuses devices without one. Provisioned with the
    /// firmware: there is no token server client on microcontrollers.
    pub token: &'a str,
    /// Unix seconds, if the board knows them.
    pub boot_time: u64,
    /// Seconds without any inbound frame before reconnecting (talaria pings every 45 s).
    pub ping_timeout_secs: u32,
    /// Backoff cap c: waits grow to at most 2^c - 1 seconds.
    pub backoff_max: u8,
    /// Seconds one connect (TCP, TLS and the upgrade together) may take.
    pub connect_timeout_secs: u32,
}

impl<'a> Config<'a> {
    /// The core's defaults (ping timeout 180 s, backoff-max 9, 10 s connect timeout) and empty
    /// descriptive fields.
    pub const fn new(cloud_url: &'a str, mac: [u8; 6], ca: &'a [u8]) -> Self {
        let d = xmidt_client_core::Config::new("", "");
        Config {
            cloud_url,
            mac,
            ca,
            fw_name: "",
            hw_model: "",
            hw_manufacturer: "",
            hw_serial_number: "",
            hw_last_reboot_reason: "",
            interface_used: "",
            partner_ids: "",
            token: "",
            boot_time: 0,
            ping_timeout_secs: d.ping_timeout_secs,
            backoff_max: d.backoff_max,
            connect_timeout_secs: d.connect_timeout_secs,
        }
    }

    /// The core's view, with `hw_mac` written out (`52:54:00:12:34:56`).
    fn core(&self, hw_mac: &'a str) -> xmidt_client_core::Config<'a> {
        xmidt_client_core::Config {
            hw_model: self.hw_model,
            hw_serial_number: self.hw_serial_number,
            hw_manufacturer: self.hw_manufacturer,
            hw_last_reboot_reason: self.hw_last_reboot_reason,
            fw_name: self.fw_name,
            boot_time: self.boot_time,
            interface_used: self.interface_used,
            partner_ids: self.partner_ids,
            ping_timeout_secs: self.ping_timeout_secs,
            backoff_max: self.backoff_max,
            connect_timeout_secs: self.connect_timeout_secs,
            // Handlers are called in-process; parodus's liveness messages are for IPC clients.
            service_alive_secs: 0,
            ..xmidt_client_core::Config::new(hw_mac, self.cloud_url)
        }
    }
}

/// This device's id for a MAC: `mac:` and 12 lower-case hex digits (`mac:525400123456`), e.g.
/// for the `source` of events.
pub fn device_id(mac: [u8; 6]) -> heapless::String<16> {
    use core::fmt::Write;
    let mut id = heapless::String::new();
    // 16 bytes: "mac:" and 12 digits.
    let _ = write!(id, "mac:");
    for b in mac {
        let _ = write!(id, "{b:02x}");
    }
    id
}

#[cfg(test)]
mod test_logger {
    //! defmt needs a global logger in host test binaries; these tests check behaviour, not logs.
    #[defmt::global_logger]
    struct Discard;

    unsafe impl defmt::Logger for Discard {
        fn acquire() {}
        unsafe fn flush() {}
        unsafe fn release() {}
        unsafe fn write(_bytes: &[u8]) {}
    }

    defmt::timestamp!("");

    #[defmt::panic_handler]
    fn panic() -> ! {
        panic!("defmt panic")
    }

    #[test]
    fn device_id_is_canonical() {
        assert_eq!(
            super::device_id([0x52, 0x54, 0, 0x12, 0x34, 0xab]).as_str(),
            "mac:5254001234ab"
        );
    }
}
