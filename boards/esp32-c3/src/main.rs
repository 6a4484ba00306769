//! ESP32-C3 running the Xmidt device client.
//!
//! The chip's Wi-Fi (esp-radio) joins the build-time WIFI_SSID, embassy-net gets an address by
//! DHCP, then `xmidt-firmware` connects to the build-time XMIDT_URL, follows petasos's redirect
//! to talaria (wss verified against the build-time XMIDT_CA) and answers for the `parodus`
//! service, reconnecting by itself, until power-off. Logs are defmt frames on the USB-serial
//! port (`espflash flash --monitor --log-format defmt`).
//!
//! Unlike the other boards this firmware has a heap: Espressif's Wi-Fi driver allocates. The
//! Xmidt client itself still allocates nothing.
#![no_std]
#![no_main]

use defmt::{error, info, unwrap, warn};
use embassy_executor::Spawner;
use embassy_net::{Runner, Stack, StackResources};
use embassy_sync::channel::Channel;
use embassy_time::Timer;
use esp_hal::clock::CpuClock;
use esp_hal::rng::Trng;
use esp_hal::timer::timg::TimerGroup;
use esp_radio::wifi::sta::StationConfig;
use esp_radio::wifi::{self, AuthenticationMethodConfig, Interface, WifiController};
use static_cell::StaticCell;
use xmidt_firmware::{Config, Events};
use {esp_backtrace as _, esp_println as _};

esp_bootloader_esp_idf::esp_app_desc!();

/// Checked by build.rs.
const XMIDT_URL: &str = env!("XMIDT_URL");
/// The CA of the cloud's TLS certificates (DER), from the build-time XMIDT_CA; empty without it.
const CA: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ca.der"));
/// The device's JWT from the build-time XMIDT_TOKEN; empty without it.
const TOKEN: &str = env!("XMIDT_TOKEN");
const WIFI_SSID: &str = env!(
    "WIFI_SSID",
    "set WIFI_SSID (and WIFI_PASSWORD unless the network is open) at build time"
);
/// WPA2 passphrase; unset: an open network.
const WIFI_PASSWORD: Option<&str> = option_env!("WIFI_PASSWORD");

/// Where an application publishes events for the cloud (see `xmidt_firmware::Event`); this
/// board publishes none, so one slot is enough.
static EVENTS: Events<1> = Channel::new();

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, Interface>) -> ! {
    runner.run().await
}

/// Joins the network and joins again whenever the access point drops the station.
#[embassy_executor::task]
async fn wifi_task(mut controller: WifiController<'static>) {
    loop {
        match controller.connect_async().await {
            Ok(_) => {
                info!("joined {=str}", WIFI_SSID);
                if let Err(e) = controller.wait_for_disconnect_async().await {
                    warn!("Wi-Fi: {}", e);
                }
                warn!("left {=str}; joining again", WIFI_SSID);
            }
            Err(e) => {
                warn!("joining {=str} failed: {}; retrying in 5 s", WIFI_SSID, e);
                Timer::after_secs(5).await;
            }
        }
    }
}

#[esp_rtos::main]
async fn main(spawner: Spawner) {
    let p = esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::max()));
    // What the Wi-Fi driver allocates from (the size esp-radio's examples use).
    esp_alloc::heap_allocator!(size: 72 * 1024);
    let timg0 = TimerGroup::new(p.TIMG0);
    esp_rtos::start(timg0.timer0, p.FROM_CPU_INTR0);
    info!("esp32-c3 up; Xmidt client for {=str}", XMIDT_URL);

    let auth = match WIFI_PASSWORD {
        Some(password) => AuthenticationMethodConfig::Wpa2Personal(unwrap!(
            password.try_into(),
            "WIFI_PASSWORD is too long"
        )),
        None => AuthenticationMethodConfig::Open,
    };
    let station = StationConfig::default()
        .with_ssid(unwrap!(WIFI_SSID.try_into(), "WIFI_SSID is too long"))
        .with_authentication(auth);
    let mut controller = unwrap!(WifiController::new(p.WIFI, Default::default()));
    unwrap!(controller.set_config(&wifi::Config::Station(station)));
    let device = Interface::station();
    let mac = device.mac_address();
    info!("Wi-Fi MAC {=[u8]:02x}", mac);
    // With the radio on, its noise feeds the RNG: a true RNG from here on.
    let rng = unwrap!(Trng::try_new());

    // Sockets: DHCP, DNS and the cloud connection.
    static RESOURCES: StaticCell<StackResources<3>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(
        device,
        embassy_net::Config::dhcpv4(Default::default()),
        RESOURCES.init(StackResources::new()),
        u64::from(rng.random()) << 32 | u64::from(rng.random()),
    );
    spawner.spawn(unwrap!(wifi_task(controller)));
    spawner.spawn(unwrap!(net_task(runner)));

    stack.wait_config_up().await;
    if let Some(config) = stack.config_v4() {
        info!("DHCP lease {}", config.address);
    }
    spawner.spawn(unwrap!(xmidt_task(stack, mac, rng)));
}

#[embassy_executor::task]
async fn xmidt_task(stack: Stack<'static>, mac: [u8; 6], rng: Trng) {
    // "mac:" and 12 hex digits; the digits are the serial number (it must be alphanumeric).
    let id = xmidt_firmware::device_id(mac);
    let config = Config {
        fw_name: concat!("xmidt-esp32-c3-", env!("CARGO_PKG_VERSION")),
        hw_model: "ESP32-C3",
        hw_manufacturer: "Espressif",
        hw_serial_number: &id[4..],
        interface_used: "wlan0",
        token: TOKEN,
        ..Config::new(XMIDT_URL, mac, CA)
    };
    let Err(e) =
        xmidt_firmware::run_on_stack(stack, &config, rng, &mut [], EVENTS.dyn_receiver()).await;
    error!("xmidt client cannot start: {}", e);
}
