//! QEMU's mps2-an386 (Cortex-M4F, LAN9118) running the Xmidt device client.
//!
//! embassy-net on the LAN9118 with DHCP from QEMU's user-mode network, then `xmidt-firmware`:
//! it connects to the build-time XMIDT_URL (default `ws://10.0.2.2:6400`, petasos on the host),
//! follows the redirect to talaria (wss with the build-time XMIDT_CA), answers `config` requests
//! with a demo service and publishes a heartbeat event every 10 s, until QEMU is killed.
//!
//! Logging is defmt, carried by `defmt-semihosting`: defmt-rtt has no reader under QEMU, while
//! semihosting writes land on QEMU's stdout (as binary defmt frames that `defmt-print -e <elf>`
//! decodes).
#![no_std]
#![no_main]

mod executor;
mod stack;
mod time_driver;

use core::fmt::Write as _;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m_rt::{exception, ExceptionFrame};
use defmt::{error, info, warn, Display2Format};
use defmt_semihosting as _;
use embassy_executor::Spawner;
use embassy_net::{Runner, Stack, StackResources};
use embassy_net_lan9118::{Lan9118, Mmio, Shared};
use embassy_sync::channel::Channel;
use embassy_time::{with_timeout, Duration, Instant, Ticker, Timer};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use static_cell::StaticCell;
use xmidt_firmware::{Config, Event, Events, Message, MessageType, Reply, Service};

/// The LAN9118's register window and NVIC input on mps2-an386 (QEMU `hw/arm/mps2.c`).
const LAN9118_BASE: usize = 0x4020_0000;
const LAN9118_IRQ: u16 = 13;

/// Checked by build.rs (an IPv4 host: the board has no DNS client).
const XMIDT_URL: &str = env!("XMIDT_URL");
/// The CA of the cloud's TLS certificates (DER), from the build-time XMIDT_CA; empty without it.
const CA: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ca.der"));
/// The device's JWT from the build-time XMIDT_TOKEN; empty without it.
const TOKEN: &str = env!("XMIDT_TOKEN");

const DHCP_TIMEOUT: Duration = Duration::from_secs(20);
const HEARTBEAT: Duration = Duration::from_secs(10);

// SAFETY: QEMU's mps2-an386 maps its LAN9118 at LAN9118_BASE on LAN9118_IRQ; this static is the
// only code that uses either.
static NIC: Shared<Mmio> = Shared::new(unsafe { Mmio::new(LAN9118_BASE, LAN9118_IRQ) });

/// What the application publishes; the client takes it from here.
static EVENTS: Events<4> = Channel::new();
/// Heartbeats published so far, for the demo service's answer.
static HEARTBEATS: AtomicU32 = AtomicU32::new(0);

/// Without a PAC, cortex-m-rt sends every device interrupt here; the LAN9118's is the only one
/// this board enables.
#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    if irqn == LAN9118_IRQ as i16 {
        NIC.on_interrupt();
    } else {
        error!("unexpected interrupt {=i16}", irqn);
        semihosting::process::exit(1);
    }
}

/// A fault or panic ends QEMU with a failing status, so neither a person nor CI waits on a
/// board that can no longer run.
#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    error!("HardFault at pc={=u32:#010x}", frame.pc());
    semihosting::process::exit(1)
}

/// Without `panic-details` the location and message are not logged: using them keeps every
/// panic site's message and location in flash (about 36 KB here).
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    #[cfg(feature = "panic-details")]
    error!("panic: {}", Display2Format(info));
    #[cfg(not(feature = "panic-details"))]
    {
        let _ = info;
        error!("panic (build with --features panic-details for where)");
    }
    semihosting::process::exit(1)
}

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, Lan9118<Mmio>>) -> ! {
    runner.run().await
}

#[embassy_executor::main(entry = "cortex_m_rt::entry", executor = "crate::executor::Executor")]
async fn main(spawner: Spawner) {
    let Some(core) = cortex_m::Peripherals::take() else {
        fail("core peripherals already taken");
    };
    time_driver::init(core.SYST);
    info!("qemu-mps2-an386 up; Xmidt client for {=str}", XMIDT_URL);

    let nic = match Lan9118::new(&NIC) {
        Ok(nic) => nic,
        Err(e) => fail_with("LAN9118", e),
    };
    let mac = nic.mac_address();
    info!(
        "lan9118 id_rev={=u32:#010x} mac={=u8:02x}:{=u8:02x}:{=u8:02x}:{=u8:02x}:{=u8:02x}:{=u8:02x}",
        nic.id_rev(),
        mac[0],
        mac[1],
        mac[2],
        mac[3],
        mac[4],
        mac[5]
    );
    let mut entropy = Entropy::default();
    entropy.sample(nic.free_running_counter());

    // TCP sequence numbers and DHCP ids only; the TLS keys come from the CSPRNG below.
    let seed = u64::from(nic.free_running_counter()) << 32
        | u64::from(cortex_m::peripheral::SYST::get_current());
    // Sockets: DHCP and the cloud connection.
    static RESOURCES: StaticCell<StackResources<2>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(
        nic,
        embassy_net::Config::dhcpv4(Default::default()),
        RESOURCES.init(StackResources::new()),
        seed,
    );
    match net_task(runner) {
        Ok(task) => spawner.spawn(task),
        Err(_) => fail("network task already running"),
    }

    let started = Instant::now();
    if with_timeout(DHCP_TIMEOUT, stack.wait_config_up())
        .await
        .is_err()
    {
        fail("no DHCP lease");
    }
    if let Some(config) = stack.config_v4() {
        info!(
            "DHCP lease {} in {=u64} ms",
            config.address,
            started.elapsed().as_millis()
        );
    }
    // More timing samples: interrupt and host scheduling jitter around short sleeps.
    for _ in 0..8 {
        Timer::after_micros(700).await;
        entropy.sample(Instant::now().as_ticks() as u32);
    }

    match heartbeat_task(mac) {
        Ok(task) => spawner.spawn(task),
        Err(_) => fail("heartbeat task already running"),
    }
    match xmidt_task(stack, mac, entropy.rng()) {
        Ok(task) => spawner.spawn(task),
        Err(_) => fail("xmidt task already running"),
    }
}

/// The seed of the TLS and client CSPRNG. This board has no entropy source: the samples are
/// cycle counts (the LAN9118's free-running 25 MHz counter, SysTick) taken at moments that
/// depend on QEMU's and the host's timing. That is weak, guessable entropy, good enough for an
/// emulator on loopback and nothing else; real boards seed from their TRNG.
#[derive(Default)]
struct Entropy {
    seed: [u8; 32],
    n: usize,
}

impl Entropy {
    /// Mixes in `extra` and SysTick's current count (25 MHz, so cycle-level timing).
    fn sample(&mut self, extra: u32) {
        let word = extra ^ cortex_m::peripheral::SYST::get_current().rotate_left(16);
        for (i, b) in word.to_le_bytes().into_iter().enumerate() {
            self.seed[(self.n * 4 + i) % 32] ^= b;
        }
        self.n += 1;
    }

    fn rng(&self) -> ChaCha20Rng {
        ChaCha20Rng::from_seed(self.seed)
    }
}

#[embassy_executor::task]
async fn xmidt_task(stack: Stack<'static>, mac: [u8; 6], rng: ChaCha20Rng) {
    let serial = serial(mac);
    let config = Config {
        fw_name: concat!("xmidt-qemu-mps2-an386-", env!("CARGO_PKG_VERSION")),
        hw_model: "mps2-an386",
        hw_manufacturer: "QEMU",
        hw_serial_number: &serial,
        hw_last_reboot_reason: "power-on",
        interface_used: "eth0",
        token: TOKEN,
        ..Config::new(XMIDT_URL, mac, CA)
    };
    let mut demo = ConfigService;
    let mut services: [&mut dyn Service; 1] = [&mut demo];
    let Err(e) =
        xmidt_firmware::run_on_stack(stack, &config, rng, &mut services, EVENTS.dyn_receiver())
            .await;
    error!("xmidt client cannot start: {}", e);
    semihosting::process::exit(1);
}

/// The MAC's 12 hex digits: the serial number (it must be alphanumeric).
fn serial(mac: [u8; 6]) -> heapless::String<12> {
    let mut s = heapless::String::new();
    for b in mac {
        // 12 digits fill the capacity exactly.
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Publishes a heartbeat event every 10 s (QoS 25: kept until talaria acknowledges it, so the
/// first one, sent before the device is online, is not lost).
#[embassy_executor::task]
async fn heartbeat_task(mac: [u8; 6]) {
    let id = xmidt_firmware::device_id(mac);
    let mut source = heapless::String::<32>::new();
    let mut dest = heapless::String::<64>::new();
    // Both fit: the id is 16 bytes.
    let _ = write!(source, "{id}/heartbeat");
    let _ = write!(dest, "event:device-heartbeat/{id}");
    let mut ticker = Ticker::every(HEARTBEAT);
    loop {
        let n = HEARTBEATS.fetch_add(1, Ordering::Relaxed) + 1;
        let peak = stack::peak();
        info!("heartbeat {=u32}; stack peak {=usize} B", n, peak);
        let payload = status_json(n, peak);
        let event = Event::new(&Message {
            source: &source,
            dest: &dest,
            content_type: "application/json",
            payload: payload.as_bytes(),
            qos: 25,
            ..Message::new(MessageType::SimpleEvent)
        });
        match event {
            Ok(event) => {
                if EVENTS.try_send(event).is_err() {
                    warn!("heartbeat {=u32} dropped: the event channel is full", n);
                }
            }
            Err(e) => warn!("heartbeat: {}", defmt::Display2Format(&e)),
        }
        ticker.next().await;
    }
}

/// `{"heartbeats":N,"uptime-ms":N,"stack-peak":N}`.
fn status_json(heartbeats: u32, stack_peak: usize) -> heapless::String<96> {
    let mut s = heapless::String::new();
    // At most 3 × 20 digits plus 45 bytes of text.
    let _ = write!(
        s,
        "{{\"heartbeats\":{heartbeats},\"uptime-ms\":{},\"stack-peak\":{stack_peak}}}",
        Instant::now().as_millis()
    );
    s
}

/// The demo service: `mac:525400123456/config` answers requests and RETRIEVEs with the board's
/// status.
struct ConfigService;

impl Service for ConfigService {
    fn name(&self) -> &str {
        "config"
    }

    fn handle(&mut self, message: &Message<'_>, reply: &mut Reply<'_>) {
        let status = match message.msg_type {
            MessageType::SimpleRequestResponse | MessageType::Retrieve => 200,
            // Nothing here can be written.
            MessageType::Create | MessageType::Update | MessageType::Delete => 405,
            // Events need no answer.
            _ => return,
        };
        let body = status_json(HEARTBEATS.load(Ordering::Relaxed), stack::peak());
        let payload = if status == 200 { body.as_bytes() } else { &[] };
        if let Err(e) = reply.answer(message, status, "application/json", payload) {
            warn!("config answer: {}", defmt::Display2Format(&e));
        }
    }
}

fn fail(reason: &str) -> ! {
    error!("fatal: {=str}", reason);
    semihosting::process::exit(1)
}

fn fail_with(what: &str, e: impl core::fmt::Display) -> ! {
    error!("fatal: {=str}: {}", what, Display2Format(&e));
    semihosting::process::exit(1)
}
