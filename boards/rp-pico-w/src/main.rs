//! Raspberry Pi Pico W running the Xmidt device client.
//!
//! The CYW43439 Wi-Fi chip (over PIO SPI) joins the build-time WIFI_SSID, embassy-net gets an
//! address by DHCP, then `xmidt-firmware` connects to the build-time XMIDT_URL, follows petasos's
//! redirect to talaria (wss verified against the build-time XMIDT_CA) and answers for the
//! `parodus` service, reconnecting by itself, until power-off. Logs are defmt over RTT
//! (`probe-rs run` through a debug probe).
#![no_std]
#![no_main]

use cyw43::JoinOptions;
use cyw43_pio::{PioSpi, DEFAULT_CLOCK_DIVIDER};
use defmt::{error, info, unwrap, warn};
use embassy_executor::Spawner;
use embassy_net::{Runner, Stack, StackResources};
use embassy_rp::clocks::RoscRng;
use embassy_rp::gpio::{Level, Output};
use embassy_rp::peripherals::{DMA_CH0, PIO0};
use embassy_rp::pio::{self, Pio};
use embassy_rp::{bind_interrupts, dma};
use embassy_sync::channel::Channel;
use embassy_time::Timer;
use static_cell::StaticCell;
use xmidt_firmware::{Config, Events};
use {defmt_rtt as _, panic_probe as _};

bind_interrupts!(struct Irqs {
    PIO0_IRQ_0 => pio::InterruptHandler<PIO0>;
    DMA_IRQ_0 => dma::InterruptHandler<DMA_CH0>;
});

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
/// WPA2/WPA3 passphrase; unset: an open network.
const WIFI_PASSWORD: Option<&str> = option_env!("WIFI_PASSWORD");

/// Where an application publishes events for the cloud (see `xmidt_firmware::Event`); this
/// board publishes none, so one slot is enough.
static EVENTS: Events<1> = Channel::new();

type Spi = PioSpi<'static, PIO0, 0>;

#[embassy_executor::task]
async fn wifi_task(runner: cyw43::Runner<'static, cyw43::SpiBus<Output<'static>, Spi>>) -> ! {
    runner.run().await
}

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, cyw43::NetDriver<'static>>) -> ! {
    runner.run().await
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let p = embassy_rp::init(Default::default());
    info!("rp-pico-w up; Xmidt client for {=str}", XMIDT_URL);

    let firmware = cyw43::aligned_bytes!(concat!(env!("OUT_DIR"), "/43439A0.bin"));
    let clm = cyw43::aligned_bytes!(concat!(env!("OUT_DIR"), "/43439A0_clm.bin"));
    let nvram = cyw43::aligned_bytes!(concat!(env!("OUT_DIR"), "/nvram_rp2040.bin"));
    if firmware.is_empty() || clm.is_empty() || nvram.is_empty() {
        defmt::panic!("no CYW43439 firmware in this image: build with CYW43_FIRMWARE_DIR set");
    }

    // The CYW43439's power (GPIO23) and SPI chip select (GPIO25); data GPIO24, clock GPIO29.
    let power = Output::new(p.PIN_23, Level::Low);
    let cs = Output::new(p.PIN_25, Level::High);
    let mut pio = Pio::new(p.PIO0, Irqs);
    let spi = PioSpi::new(
        &mut pio.common,
        pio.sm0,
        DEFAULT_CLOCK_DIVIDER,
        pio.irq0,
        cs,
        p.PIN_24,
        p.PIN_29,
        dma::Channel::new(p.DMA_CH0, Irqs),
    );
    static STATE: StaticCell<cyw43::State> = StaticCell::new();
    let (device, mut control, runner) =
        cyw43::new(STATE.init(cyw43::State::new()), power, spi, firmware, nvram).await;
    spawner.spawn(unwrap!(wifi_task(runner)));
    control.init(clm).await;
    let mac = control.address().await;
    info!("Wi-Fi MAC {=[u8]:02x}", mac);

    // The RP2040 has no TRNG: the ring oscillator's random bit is its entropy source.
    let mut rng = RoscRng;
    // Sockets: DHCP, DNS and the cloud connection.
    static RESOURCES: StaticCell<StackResources<3>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(
        device,
        embassy_net::Config::dhcpv4(Default::default()),
        RESOURCES.init(StackResources::new()),
        rng.next_u64(),
    );
    spawner.spawn(unwrap!(net_task(runner)));

    let options = match WIFI_PASSWORD {
        Some(password) => JoinOptions::new(password.as_bytes()),
        None => JoinOptions::new_open(),
    };
    while let Err(e) = control.join(WIFI_SSID, options.clone()).await {
        warn!("joining {=str} failed: {}; retrying in 5 s", WIFI_SSID, e);
        Timer::after_secs(5).await;
    }
    info!("joined {=str}; waiting for a DHCP lease", WIFI_SSID);
    stack.wait_config_up().await;
    if let Some(config) = stack.config_v4() {
        info!("DHCP lease {}", config.address);
    }
    spawner.spawn(unwrap!(xmidt_task(stack, mac, rng)));
}

#[embassy_executor::task]
async fn xmidt_task(stack: Stack<'static>, mac: [u8; 6], rng: RoscRng) {
    // "mac:" and 12 hex digits; the digits are the serial number (it must be alphanumeric).
    let id = xmidt_firmware::device_id(mac);
    let config = Config {
        fw_name: concat!("xmidt-rp-pico-w-", env!("CARGO_PKG_VERSION")),
        hw_model: "Pico W",
        hw_manufacturer: "Raspberry Pi",
        hw_serial_number: &id[4..],
        interface_used: "wlan0",
        token: TOKEN,
        ..Config::new(XMIDT_URL, mac, CA)
    };
    let Err(e) =
        xmidt_firmware::run_on_stack(stack, &config, rng, &mut [], EVENTS.dyn_receiver()).await;
    error!("xmidt client cannot start: {}", e);
}
