//! ST NUCLEO-F767ZI running the Xmidt device client.
//!
//! The STM32F767ZI's Ethernet MAC with the board's LAN8742A PHY (RMII), embassy-net with DHCP
//! and DNS, then `xmidt-firmware`: it connects to the build-time XMIDT_URL, follows petasos's
//! redirect to talaria (wss verified against the build-time XMIDT_CA) and answers for the
//! `parodus` service, reconnecting by itself, until power-off. TLS keys come from the chip's
//! TRNG. Logs are defmt over RTT (`probe-rs run`).
#![no_std]
#![no_main]

use defmt::{error, info, unwrap};
use embassy_executor::Spawner;
use embassy_net::{Runner, Stack, StackResources};
use embassy_stm32::eth::{self, Ethernet, GenericPhy, PacketQueue, Sma};
use embassy_stm32::peripherals::{ETH, ETH_SMA, RNG};
use embassy_stm32::rng::{self, Rng};
use embassy_stm32::time::Hertz;
use embassy_stm32::{bind_interrupts, uid};
use embassy_sync::channel::Channel;
use static_cell::StaticCell;
use xmidt_firmware::{Config, Events};
use {defmt_rtt as _, panic_probe as _};

bind_interrupts!(struct Irqs {
    ETH => eth::InterruptHandler;
    RNG => rng::InterruptHandler<RNG>;
});

type Device = Ethernet<'static, ETH, GenericPhy<Sma<'static, ETH_SMA>>>;

/// Checked by build.rs.
const XMIDT_URL: &str = env!("XMIDT_URL");
/// The CA of the cloud's TLS certificates (DER), from the build-time XMIDT_CA; empty without it.
const CA: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ca.der"));
/// The device's JWT from the build-time XMIDT_TOKEN; empty without it.
const TOKEN: &str = env!("XMIDT_TOKEN");

/// Where an application publishes events for the cloud (see `xmidt_firmware::Event`); this
/// board publishes none, so one slot is enough.
static EVENTS: Events<1> = Channel::new();

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, Device>) -> ! {
    runner.run().await
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let p = embassy_stm32::init(clocks());
    info!("nucleo-f767zi up; Xmidt client for {=str}", XMIDT_URL);

    let mut rng = Rng::new(p.RNG, Irqs);
    let mac = mac_address(uid::uid());
    info!("MAC {=[u8]:02x} (device id from the chip's unique id)", mac);

    static PACKETS: StaticCell<PacketQueue<4, 4>> = StaticCell::new();
    // RMII pins of the NUCLEO-144 board: REF_CLK PA1, CRS_DV PA7, RXD0/1 PC4/PC5, TXD0 PG13,
    // TXD1 PB13, TX_EN PG11; the PHY's MDIO PA2, MDC PC1.
    let device = Ethernet::new(
        PACKETS.init(PacketQueue::new()),
        p.ETH,
        Irqs,
        p.PA1,
        p.PA7,
        p.PC4,
        p.PC5,
        p.PG13,
        p.PB13,
        p.PG11,
        mac,
        p.ETH_SMA,
        p.PA2,
        p.PC1,
    );

    // Sockets: DHCP, DNS and the cloud connection.
    static RESOURCES: StaticCell<StackResources<3>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(
        device,
        embassy_net::Config::dhcpv4(Default::default()),
        RESOURCES.init(StackResources::new()),
        rng.next_u64(),
    );
    spawner.spawn(unwrap!(net_task(runner)));

    info!("waiting for the link and a DHCP lease");
    stack.wait_config_up().await;
    if let Some(config) = stack.config_v4() {
        info!("DHCP lease {}", config.address);
    }
    spawner.spawn(unwrap!(xmidt_task(stack, mac, rng)));
}

/// HSE is the ST-LINK's 8 MHz clock output (bypass mode); SYSCLK 216 MHz from the PLL, whose Q
/// output (48 MHz) clocks the RNG.
fn clocks() -> embassy_stm32::Config {
    use embassy_stm32::rcc::*;
    let mut config = embassy_stm32::Config::default();
    config.rcc.hse = Some(Hse {
        freq: Hertz(8_000_000),
        mode: HseMode::Bypass,
    });
    config.rcc.pll_src = PllSource::HSE;
    config.rcc.pll = Some(Pll {
        prediv: PllPreDiv::DIV4,
        mul: PllMul::MUL216,
        divp: Some(PllPDiv::DIV2),
        divq: Some(PllQDiv::DIV9),
        divr: None,
    });
    config.rcc.ahb_pre = AHBPrescaler::DIV1;
    config.rcc.apb1_pre = APBPrescaler::DIV4;
    config.rcc.apb2_pre = APBPrescaler::DIV2;
    config.rcc.sys = Sysclk::PLL1_P;
    config
}

/// The board has no factory MAC (embassy's examples use a fixed one). A locally administered
/// unicast address with the chip's 96-bit unique id folded into its other 40 bits keeps each
/// board's device id stable and unlikely to collide with another's.
fn mac_address(uid: [u8; 12]) -> [u8; 6] {
    let mut mac = [0x02, 0, 0, 0, 0, 0];
    for (i, b) in uid.into_iter().enumerate() {
        mac[1 + i % 5] ^= b;
    }
    mac
}

#[embassy_executor::task]
async fn xmidt_task(stack: Stack<'static>, mac: [u8; 6], rng: Rng<'static, RNG>) {
    let config = Config {
        fw_name: concat!("xmidt-nucleo-f767zi-", env!("CARGO_PKG_VERSION")),
        hw_model: "NUCLEO-F767ZI",
        hw_manufacturer: "STMicroelectronics",
        // 24 hex digits: alphanumeric, as the serial number must be.
        hw_serial_number: uid::uid_hex(),
        interface_used: "eth0",
        token: TOKEN,
        ..Config::new(XMIDT_URL, mac, CA)
    };
    let Err(e) =
        xmidt_firmware::run_on_stack(stack, &config, rng, &mut [], EVENTS.dyn_receiver()).await;
    error!("xmidt client cannot start: {}", e);
}
