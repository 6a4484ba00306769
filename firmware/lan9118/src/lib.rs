//! An [`embassy-net`](https://docs.rs/embassy-net) driver for the SMSC (Microchip) LAN9118
//! Ethernet controller, written for the chip as QEMU emulates it on the Arm MPS2 boards
//! (`qemu-system-arm -M mps2-an386 -nic user,model=lan9118`: base `0x4020_0000`, IRQ 13).
//!
//! No LAN9118 driver exists on crates.io (`lan9118`, `lan9118-smoltcp`, `smsc911x`, `smsc9118`,
//! `smsc9220` and `embassy-net-lan9118` all come back "could not find"), so this project writes
//! its own. It is `no_std`, allocates nothing and implements `embassy-net-driver` 0.2.
//!
//! # Use
//!
//! ```no_run
//! use embassy_net_lan9118::{Lan9118, Mmio, Shared};
//!
//! // SAFETY: mps2-an386 maps its LAN9118 at 0x4020_0000 on IRQ 13, and nothing else uses it.
//! static NIC: Shared<Mmio> = Shared::new(unsafe { Mmio::new(0x4020_0000, 13) });
//!
//! // Call from the handler of IRQ 13 (with cortex-m-rt and no PAC: `DefaultHandler`).
//! fn on_irq13() {
//!     NIC.on_interrupt();
//! }
//!
//! let device = Lan9118::new(&NIC)?; // then hand `device` to `embassy_net::new`
//! # Ok::<(), embassy_net_lan9118::Error>(())
//! ```
//!
//! # Design
//!
//! * **Interrupt-driven.** The chip's line is level-triggered and stays asserted while an enabled
//!   status bit is set. The interrupt handler ([`Shared::on_interrupt`]) therefore only masks the
//!   line at the NVIC and wakes embassy-net; it never touches the chip, so chip registers are
//!   only ever accessed from the network task and need no locking. Whenever a driver method has
//!   nothing to hand out, it registers the waker and unmasks the line again. Enabled sources:
//!   RX status FIFO level (a frame arrived), PHY (link changed) and, only while a frame does not
//!   fit, TX data FIFO available.
//! * **Copying FIFOs.** The LAN9118 has no DMA on this bus: `receive` pulls one whole frame into
//!   a 1514-byte buffer, `TxToken::consume` pushes one frame as a single segment. Errored,
//!   runt or oversized frames are drained and dropped, never handed to the stack.
//! * **No unsafe** outside `regs`, which holds the register map and the volatile accesses behind
//!   the [`Bus`] trait. The rest is safe code, unit-tested against a model of the chip.
//!
//! # Limits
//!
//! * Tested on QEMU 7.2 only. Real silicon additionally wants the datasheet's read-after-write
//!   delays on some registers and, after reset, a PHY auto-negotiation wait; neither is done.
//! * QEMU implements only the RX status level interrupt of the FIFO-level family, but it also
//!   transmits each frame synchronously, so the TX-space wait never happens there.
//! * 32-bit bus mode only; perfect MAC filtering plus broadcast (no multicast), which suffices
//!   for IPv4 with DHCP.
#![no_std]

mod regs;
#[cfg(test)]
mod tests;

use core::fmt;
use core::task::Context;

use embassy_net_driver::{Capabilities, HardwareAddress, LinkState};
use embassy_sync::waitqueue::AtomicWaker;
use regs::*;

pub use regs::{Bus, Mmio};

/// Largest frame handed to or taken from the stack: an Ethernet frame without its FCS.
pub const MTU: usize = 1514;

const FCS_LEN: usize = 4;
const ETH_HEADER_LEN: usize = 14;
/// TX FIFO bytes one maximum frame needs: its data words plus the two command words.
const TX_SLOT: u32 = (MTU.div_ceil(4) * 4 + 8) as u32;
/// Interrupt sources that stay enabled for the driver's whole life.
const INT_ALWAYS: u32 = INT_RSFL | INT_PHY;
/// Polls of a busy flag before giving up. QEMU completes these handshakes at once; silicon
/// within microseconds, far below this bound.
const SPIN_LIMIT: u32 = 100_000;

/// Why the chip could not be brought up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// BYTE_TEST did not read `0x87654321`: no LAN9118 at this address, or a 16-bit bus.
    NotFound {
        /// What BYTE_TEST read instead.
        byte_test: u32,
    },
    /// The soft reset did not complete.
    ResetTimeout,
    /// A MAC or PHY register access stayed busy.
    CsrTimeout,
    /// The chip holds no usable unicast MAC address (no EEPROM, or it is blank).
    NoMacAddress,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound { byte_test } => {
                write!(f, "no LAN9118 found (BYTE_TEST read {byte_test:#010x})")
            }
            Error::ResetTimeout => f.write_str("LAN9118 soft reset timed out"),
            Error::CsrTimeout => f.write_str("LAN9118 MAC/PHY register access timed out"),
            Error::NoMacAddress => f.write_str("LAN9118 has no valid MAC address"),
        }
    }
}

/// The part of the driver the interrupt handler needs; lives in a `static`.
pub struct Shared<B> {
    bus: B,
    waker: AtomicWaker,
}

impl<B: Bus> Shared<B> {
    /// Wraps the chip's bus. Nothing is touched until [`Lan9118::new`].
    pub const fn new(bus: B) -> Self {
        Self {
            bus,
            waker: AtomicWaker::new(),
        }
    }

    /// Call from the chip's interrupt handler. Masks the (level-triggered) line until the driver
    /// has looked at the chip, and wakes the network task to do so.
    pub fn on_interrupt(&self) {
        self.bus.mask_irq();
        self.waker.wake();
    }
}

/// The embassy-net device. Hand it to `embassy_net::new`.
pub struct Lan9118<B: 'static> {
    shared: &'static Shared<B>,
    mac: [u8; 6],
    id_rev: u32,
    link_up: bool,
    tx_waiting: bool,
    /// Length of a frame already pulled into `rx_buf` whose token was not consumed yet.
    rx_held: Option<usize>,
    rx_buf: [u8; MTU],
    tx_buf: [u8; MTU],
}

impl<B: Bus> Lan9118<B> {
    /// Resets and configures the chip, reads its MAC address and PHY link state.
    ///
    /// The interrupt line is first unmasked when embassy-net polls the device.
    pub fn new(shared: &'static Shared<B>) -> Result<Self, Error> {
        let bus = &shared.bus;
        // The datasheet's power-up check: BYTE_TEST reads correctly once the chip is ready.
        spin_until(|| bus.read(BYTE_TEST) == BYTE_TEST_MAGIC).map_err(|()| Error::NotFound {
            byte_test: bus.read(BYTE_TEST),
        })?;
        bus.write(HW_CFG, HW_CFG_SRST);
        spin_until(|| {
            bus.read(HW_CFG) & HW_CFG_SRST == 0 && bus.read(PMT_CTRL) & PMT_CTRL_READY != 0
        })
        .map_err(|()| Error::ResetTimeout)?;
        let id_rev = bus.read(ID_REV);

        let low = mac_read(bus, MAC_ADDRL)?.to_le_bytes();
        let high = mac_read(bus, MAC_ADDRH)?.to_le_bytes();
        let mac = [low[0], low[1], low[2], low[3], high[0], high[1]];
        if mac == [0; 6] || mac[0] & 1 != 0 {
            return Err(Error::NoMacAddress);
        }

        // Active-high push-pull: any other setting reads as an asserted line on QEMU's NVIC input.
        bus.write(IRQ_CFG, IRQ_CFG_IRQ_EN | IRQ_CFG_IRQ_POL | IRQ_CFG_IRQ_TYPE);
        // RSFL as soon as one RX status is queued (level 0); TDFA once a maximum frame fits
        // (the TX level counts 64-byte units).
        bus.write(FIFO_INT, TX_SLOT.div_ceil(64) << 24);
        // Frames start at the first data word with no end padding, so the RX word count is
        // simply the status length rounded up.
        bus.write(RX_CFG, 0);
        // TX status words are not read (TXSAO lets that FIFO overrun instead of stalling TX).
        bus.write(TX_CFG, TX_CFG_TX_ON | TX_CFG_TXSAO);
        // Replaces the reset default (promiscuous) with own-address + broadcast filtering.
        mac_write(bus, MAC_CR, MAC_CR_TXEN | MAC_CR_RXEN)?;

        phy_write(bus, PHY_INT_MASK, PHY_INT_LINK_DOWN | PHY_INT_AUTONEG_DONE)?;
        let link_up = read_link(bus)?;
        bus.write(INT_STS, u32::MAX);
        bus.write(INT_EN, INT_ALWAYS);

        Ok(Self {
            shared,
            mac,
            id_rev,
            link_up,
            tx_waiting: false,
            rx_held: None,
            rx_buf: [0; MTU],
            tx_buf: [0; MTU],
        })
    }

    /// The station address read from the chip (QEMU's default: 52:54:00:12:34:56).
    pub fn mac_address(&self) -> [u8; 6] {
        self.mac
    }

    /// The ID_REV register: chip ID in the high half (`0x0118`), revision in the low half.
    pub fn id_rev(&self) -> u32 {
        self.id_rev
    }

    /// The chip's 25 MHz free-running counter. Boards without a hardware RNG can mix it into a
    /// network stack seed; it is timing, not entropy, so never key material.
    pub fn free_running_counter(&self) -> u32 {
        self.shared.bus.read(FREE_RUN)
    }

    /// Registers the waker and lets the interrupt line through again.
    fn arm(&self, cx: &Context<'_>) {
        self.shared.waker.register(cx.waker());
        self.shared.bus.unmask_irq();
    }

    /// Whether a maximum-size frame fits in the TX data FIFO; if not, asks for TDFA.
    fn tx_ready(&mut self) -> bool {
        let bus = &self.shared.bus;
        if tx_data_free(bus.read(TX_FIFO_INF)) >= TX_SLOT {
            if self.tx_waiting {
                self.tx_waiting = false;
                bus.write(INT_EN, INT_ALWAYS);
            }
            return true;
        }
        bus.write(INT_STS, INT_TDFA);
        if !self.tx_waiting {
            self.tx_waiting = true;
            bus.write(INT_EN, INT_ALWAYS | INT_TDFA);
        }
        // Space may have freed up before TDFA was enabled; look once more.
        tx_data_free(bus.read(TX_FIFO_INF)) >= TX_SLOT
    }

    /// Pulls the next good frame out of the RX FIFOs into `rx_buf`, dropping bad ones.
    fn pull_frame(&mut self) -> Option<usize> {
        let bus = &self.shared.bus;
        // Acknowledge before looking, so a frame that lands after the look raises RSFL anew.
        bus.write(INT_STS, INT_RSFL);
        let queued = rx_status_used(bus.read(RX_FIFO_INF));
        for _ in 0..queued {
            let status = bus.read(RX_STATUS_FIFO);
            let len = rx_status_len(status);
            let words = len.div_ceil(4);
            let frame_len = len.saturating_sub(FCS_LEN);
            let good = status & RX_STS_ERROR == 0 && (ETH_HEADER_LEN..=MTU).contains(&frame_len);
            // The words must leave the FIFO either way. Reading (rather than RX_DP_CTRL's
            // fast-forward) is what QEMU handles correctly; the trailing FCS is discarded.
            let mut chunks = self.rx_buf[..if good { frame_len } else { 0 }].chunks_mut(4);
            for _ in 0..words {
                let word = bus.read(RX_DATA_FIFO).to_le_bytes();
                if let Some(chunk) = chunks.next() {
                    chunk.copy_from_slice(&word[..chunk.len()]);
                }
            }
            if good {
                return Some(frame_len);
            }
        }
        None
    }
}

impl<B: Bus> embassy_net_driver::Driver for Lan9118<B> {
    type RxToken<'a>
        = RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a, B>
    where
        Self: 'a;

    fn receive(&mut self, cx: &mut Context<'_>) -> Option<(RxToken<'_>, TxToken<'_, B>)> {
        // The stack may answer right away with the TX token, so both must be available.
        if !self.tx_ready() {
            self.arm(cx);
            return None;
        }
        if self.rx_held.is_none() {
            self.rx_held = self.pull_frame();
        }
        let Some(len) = self.rx_held else {
            self.arm(cx);
            return None;
        };
        let rx = RxToken {
            frame: &mut self.rx_buf[..len],
            held: &mut self.rx_held,
        };
        let tx = TxToken {
            bus: &self.shared.bus,
            buf: &mut self.tx_buf,
        };
        Some((rx, tx))
    }

    fn transmit(&mut self, cx: &mut Context<'_>) -> Option<TxToken<'_, B>> {
        if !self.tx_ready() {
            self.arm(cx);
            return None;
        }
        Some(TxToken {
            bus: &self.shared.bus,
            buf: &mut self.tx_buf,
        })
    }

    fn link_state(&mut self, cx: &mut Context<'_>) -> LinkState {
        let bus = &self.shared.bus;
        if bus.read(INT_STS) & INT_PHY != 0 {
            // A failed MII access keeps the last known state; the still-pending PHY interrupt
            // brings us back here.
            if let Ok(up) = read_link(bus) {
                self.link_up = up;
            }
        }
        self.arm(cx);
        if self.link_up {
            LinkState::Up
        } else {
            LinkState::Down
        }
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.max_transmission_unit = MTU;
        caps
    }

    fn hardware_address(&self) -> HardwareAddress {
        HardwareAddress::Ethernet(self.mac)
    }
}

/// A received frame, already copied out of the chip.
pub struct RxToken<'a> {
    frame: &'a mut [u8],
    held: &'a mut Option<usize>,
}

impl embassy_net_driver::RxToken for RxToken<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        *self.held = None;
        f(self.frame)
    }
}

/// Room for one frame in the TX FIFO.
pub struct TxToken<'a, B> {
    bus: &'a B,
    buf: &'a mut [u8; MTU],
}

impl<B: Bus> embassy_net_driver::TxToken for TxToken<'_, B> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        // embassy-net never asks for more than the MTU advertised in `capabilities`.
        let frame = &mut self.buf[..len];
        let result = f(frame);
        // One segment: command A (first + last, buffer size), command B (frame length, tag 0).
        self.bus.write(
            TX_DATA_FIFO,
            TX_CMD_A_FIRST_SEG | TX_CMD_A_LAST_SEG | len as u32,
        );
        self.bus.write(TX_DATA_FIFO, len as u32);
        for chunk in frame.chunks(4) {
            let mut word = [0; 4];
            word[..chunk.len()].copy_from_slice(chunk);
            self.bus.write(TX_DATA_FIFO, u32::from_le_bytes(word));
        }
        result
    }
}

fn spin_until(mut done: impl FnMut() -> bool) -> Result<(), ()> {
    for _ in 0..SPIN_LIMIT {
        if done() {
            return Ok(());
        }
    }
    Err(())
}

fn mac_csr_idle<B: Bus>(bus: &B) -> Result<(), Error> {
    spin_until(|| bus.read(MAC_CSR_CMD) & MAC_CSR_BUSY == 0).map_err(|()| Error::CsrTimeout)
}

fn mac_read<B: Bus>(bus: &B, reg: u32) -> Result<u32, Error> {
    mac_csr_idle(bus)?;
    bus.write(MAC_CSR_CMD, MAC_CSR_BUSY | MAC_CSR_READ | reg);
    mac_csr_idle(bus)?;
    Ok(bus.read(MAC_CSR_DATA))
}

fn mac_write<B: Bus>(bus: &B, reg: u32, value: u32) -> Result<(), Error> {
    mac_csr_idle(bus)?;
    bus.write(MAC_CSR_DATA, value);
    bus.write(MAC_CSR_CMD, MAC_CSR_BUSY | reg);
    mac_csr_idle(bus)
}

fn mii_idle<B: Bus>(bus: &B) -> Result<(), Error> {
    for _ in 0..SPIN_LIMIT {
        if mac_read(bus, MAC_MII_ACC)? & MII_ACC_BUSY == 0 {
            return Ok(());
        }
    }
    Err(Error::CsrTimeout)
}

fn mii_access<B: Bus>(bus: &B, reg: u32, write: bool) -> Result<(), Error> {
    mii_idle(bus)?;
    let dir = if write { MII_ACC_WRITE } else { 0 };
    mac_write(
        bus,
        MAC_MII_ACC,
        PHY_ADDR << 11 | reg << 6 | dir | MII_ACC_BUSY,
    )?;
    mii_idle(bus)
}

fn phy_read<B: Bus>(bus: &B, reg: u32) -> Result<u32, Error> {
    mii_access(bus, reg, false)?;
    Ok(mac_read(bus, MAC_MII_DATA)? & 0xffff)
}

fn phy_write<B: Bus>(bus: &B, reg: u32, value: u32) -> Result<(), Error> {
    mac_write(bus, MAC_MII_DATA, value)?;
    mii_access(bus, reg, true)
}

/// Acknowledges the PHY's interrupt sources and reads the link bit.
fn read_link<B: Bus>(bus: &B) -> Result<bool, Error> {
    phy_read(bus, PHY_INT_SRC)?;
    // The link bit latches low until read (IEEE 802.3 22.2.4.2.13): the second read is current.
    phy_read(bus, PHY_BMSR)?;
    Ok(phy_read(bus, PHY_BMSR)? & BMSR_LINK_UP != 0)
}
