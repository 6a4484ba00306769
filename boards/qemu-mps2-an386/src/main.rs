//! QEMU's mps2-an386 (Cortex-M4F, LAN9118) as a board: embassy-net on the LAN9118 with DHCP
//! from QEMU's user-mode network, then the board's job.
//!
//! Until the Xmidt client crate exists, the job is a TCP echo round trip to the host and port of
//! the build-time XMIDT_URL (default `ws://10.0.2.2:6400`, i.e. the host's 127.0.0.1:6400).
//!
//! Logging is defmt, the project's choice, carried by `defmt-semihosting`: defmt-rtt has no
//! reader under QEMU, while semihosting writes land on QEMU's stdout (as binary defmt frames that
//! `defmt-print -e <elf>` decodes). cortex-m-semihosting's `hprintln!` would be readable without
//! a decoder, but then crates that log with defmt (the coming client) would have no logger here.
#![no_std]
#![no_main]

mod executor;
mod time_driver;
mod url;

use core::fmt::Write as _;

use cortex_m_rt::{exception, ExceptionFrame};
use defmt::{error, info, warn, Display2Format};
use defmt_semihosting as _;
use embassy_executor::Spawner;
use embassy_net::tcp::{ConnectError, TcpSocket};
use embassy_net::{Runner, Stack, StackResources};
use embassy_net_lan9118::{Lan9118, Mmio, Shared};
use embassy_time::{with_timeout, Duration, Instant};
use embedded_io_async::Write as _;
use static_cell::StaticCell;
use url::Target;

/// The LAN9118's register window and NVIC input on mps2-an386 (QEMU `hw/arm/mps2.c`).
const LAN9118_BASE: usize = 0x4020_0000;
const LAN9118_IRQ: u16 = 13;

const XMIDT_URL: &str = match option_env!("XMIDT_URL") {
    Some(url) => url,
    None => url::DEFAULT_URL,
};

/// Bounds on the network so a broken run fails instead of hanging.
const DHCP_TIMEOUT: Duration = Duration::from_secs(20);
const ECHO_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between echo rounds when not in smoke-test mode.
#[cfg(not(feature = "smoke-test"))]
const ECHO_PERIOD: Duration = Duration::from_secs(10);
const LINE_CAPACITY: usize = 96;

// SAFETY: QEMU's mps2-an386 maps its LAN9118 at LAN9118_BASE on LAN9118_IRQ; this static is the
// only code that uses either.
static NIC: Shared<Mmio> = Shared::new(unsafe { Mmio::new(LAN9118_BASE, LAN9118_IRQ) });

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

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    error!("panic: {}", Display2Format(info));
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
    info!("qemu-mps2-an386 up; job: TCP echo to {=str}", XMIDT_URL);

    let target = match Target::parse(XMIDT_URL) {
        Ok(target) => target,
        Err(e) => fail_with("XMIDT_URL", e),
    };
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

    // The board has no RNG. The seed only varies TCP sequence numbers and DHCP transaction IDs,
    // so the NIC's free-running counter (boot timing) is enough; it is no key material.
    let seed = u64::from(nic.free_running_counter()) << 32
        | u64::from(cortex_m::peripheral::SYST::get_current());
    // Sockets: DHCP, the job's TCP connection, one spare.
    static RESOURCES: StaticCell<StackResources<3>> = StaticCell::new();
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

    // Smoke-test mode: one round, and QEMU's exit status tells the result.
    #[cfg(feature = "smoke-test")]
    semihosting::process::exit(if echo_and_report(stack, target, mac).await {
        0
    } else {
        1
    });
    #[cfg(not(feature = "smoke-test"))]
    loop {
        echo_and_report(stack, target, mac).await;
        embassy_time::Timer::after(ECHO_PERIOD).await;
    }
}

/// One bounded echo round, logged; whether it succeeded.
async fn echo_and_report(stack: Stack<'static>, target: Target, mac: [u8; 6]) -> bool {
    let result = match with_timeout(ECHO_TIMEOUT, echo_round_trip(stack, target, mac)).await {
        Ok(result) => result,
        Err(_) => Err(EchoError::Timeout),
    };
    match result {
        Ok(elapsed) => {
            info!(
                "echo OK: {}:{=u16} answered in {=u64} ms",
                target.ip,
                target.port,
                elapsed.as_millis()
            );
            true
        }
        Err(e) => {
            warn!("echo failed: {}", e);
            false
        }
    }
}

#[derive(defmt::Format)]
enum EchoError {
    Connect(ConnectError),
    Io(embassy_net::tcp::Error),
    /// The peer closed before the whole line came back.
    Closed,
    /// The peer sent back something other than the line.
    Mismatch,
    /// No newline within LINE_CAPACITY bytes.
    TooLong,
    Timeout,
}

/// Connects, writes one line, reads until the first newline and checks it is the same line.
async fn echo_round_trip(
    stack: Stack<'static>,
    target: Target,
    mac: [u8; 6],
) -> Result<Duration, EchoError> {
    let mut rx_buffer = [0; 512];
    let mut tx_buffer = [0; 512];
    let mut socket = TcpSocket::new(stack, &mut rx_buffer, &mut tx_buffer);
    let started = Instant::now();
    socket
        .connect((target.ip, target.port))
        .await
        .map_err(EchoError::Connect)?;

    let mut line = heapless::String::<LINE_CAPACITY>::new();
    // Xmidt's device id form; the capacity holds the longest possible line, so writes cannot fail.
    let _ = write!(line, "hello from qemu-mps2-an386 mac:");
    for byte in mac {
        let _ = write!(line, "{byte:02x}");
    }
    let _ = writeln!(line, " at {} ms", started.as_millis());
    socket
        .write_all(line.as_bytes())
        .await
        .map_err(EchoError::Io)?;

    let mut echo = [0; LINE_CAPACITY];
    let mut filled = 0;
    let end = loop {
        let Some(free) = echo.get_mut(filled..).filter(|free| !free.is_empty()) else {
            return Err(EchoError::TooLong);
        };
        let n = socket.read(free).await.map_err(EchoError::Io)?;
        if n == 0 {
            return Err(EchoError::Closed);
        }
        let newline = free[..n].iter().position(|&b| b == b'\n');
        filled += n;
        if let Some(at) = newline {
            break filled - n + at + 1;
        }
    };
    let elapsed = started.elapsed();
    if echo[..end] != *line.as_bytes() {
        return Err(EchoError::Mismatch);
    }
    // Say goodbye properly so the peer sees a FIN, not a vanished connection.
    socket.close();
    let _ = with_timeout(Duration::from_secs(1), socket.flush()).await;
    Ok(elapsed)
}

fn fail(reason: &str) -> ! {
    error!("fatal: {=str}", reason);
    semihosting::process::exit(1)
}

fn fail_with(what: &str, e: impl core::fmt::Display) -> ! {
    error!("fatal: {=str}: {}", what, Display2Format(&e));
    semihosting::process::exit(1)
}
