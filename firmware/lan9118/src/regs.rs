//! The chip's register map and the only code that touches hardware.
//!
//! Offsets and bits follow the LAN9118 datasheet (SMSC, rev. 1.5) as implemented by QEMU's
//! `hw/net/lan9118.c`. Everything volatile lives here, so the rest of the crate is safe code
//! written against the [`Bus`] trait (and tested against a model of the chip).

use core::ptr;

// System control and status registers (byte offsets in the 256-byte window).
pub(crate) const RX_DATA_FIFO: usize = 0x00;
pub(crate) const TX_DATA_FIFO: usize = 0x20;
pub(crate) const RX_STATUS_FIFO: usize = 0x40;
pub(crate) const ID_REV: usize = 0x50;
pub(crate) const IRQ_CFG: usize = 0x54;
pub(crate) const INT_STS: usize = 0x58;
pub(crate) const INT_EN: usize = 0x5c;
pub(crate) const BYTE_TEST: usize = 0x64;
pub(crate) const FIFO_INT: usize = 0x68;
pub(crate) const RX_CFG: usize = 0x6c;
pub(crate) const TX_CFG: usize = 0x70;
pub(crate) const HW_CFG: usize = 0x74;
pub(crate) const RX_FIFO_INF: usize = 0x7c;
pub(crate) const TX_FIFO_INF: usize = 0x80;
pub(crate) const PMT_CTRL: usize = 0x84;
pub(crate) const FREE_RUN: usize = 0x9c;
pub(crate) const MAC_CSR_CMD: usize = 0xa4;
pub(crate) const MAC_CSR_DATA: usize = 0xa8;

/// BYTE_TEST always reads this; anything else means a wrong base address or bus width.
pub(crate) const BYTE_TEST_MAGIC: u32 = 0x8765_4321;

pub(crate) const IRQ_CFG_IRQ_EN: u32 = 1 << 8;
pub(crate) const IRQ_CFG_IRQ_POL: u32 = 1 << 4; // active high
pub(crate) const IRQ_CFG_IRQ_TYPE: u32 = 1 << 0; // push-pull

// INT_STS / INT_EN bits.
pub(crate) const INT_PHY: u32 = 1 << 18;
pub(crate) const INT_TDFA: u32 = 1 << 9;
pub(crate) const INT_RSFL: u32 = 1 << 3;

pub(crate) const HW_CFG_SRST: u32 = 1 << 0;
pub(crate) const PMT_CTRL_READY: u32 = 1 << 0;
pub(crate) const TX_CFG_TXSAO: u32 = 1 << 1;
pub(crate) const TX_CFG_TX_ON: u32 = 1 << 2;

pub(crate) const MAC_CSR_BUSY: u32 = 1 << 31;
pub(crate) const MAC_CSR_READ: u32 = 1 << 30;

// MAC registers, reached indirectly through MAC_CSR_CMD / MAC_CSR_DATA.
pub(crate) const MAC_CR: u32 = 1;
pub(crate) const MAC_ADDRH: u32 = 2;
pub(crate) const MAC_ADDRL: u32 = 3;
pub(crate) const MAC_MII_ACC: u32 = 6;
pub(crate) const MAC_MII_DATA: u32 = 7;

pub(crate) const MAC_CR_TXEN: u32 = 1 << 3;
pub(crate) const MAC_CR_RXEN: u32 = 1 << 2;

pub(crate) const MII_ACC_BUSY: u32 = 1 << 0;
pub(crate) const MII_ACC_WRITE: u32 = 1 << 1;
/// The internal PHY always answers at MII address 1.
pub(crate) const PHY_ADDR: u32 = 1;

// PHY registers (IEEE 802.3 clause 22 plus SMSC's vendor ones).
pub(crate) const PHY_BMSR: u32 = 1;
pub(crate) const PHY_INT_SRC: u32 = 29;
pub(crate) const PHY_INT_MASK: u32 = 30;
pub(crate) const BMSR_LINK_UP: u32 = 1 << 2;
pub(crate) const PHY_INT_LINK_DOWN: u32 = 1 << 4;
pub(crate) const PHY_INT_AUTONEG_DONE: u32 = 1 << 6;

// TX command words (TX_DATA_FIFO).
pub(crate) const TX_CMD_A_FIRST_SEG: u32 = 1 << 13;
pub(crate) const TX_CMD_A_LAST_SEG: u32 = 1 << 12;

// RX status word (RX_STATUS_FIFO).
pub(crate) const RX_STS_ERROR: u32 = 1 << 15;

/// Field accessors for the FIFO information registers.
pub(crate) fn rx_status_used(rx_fifo_inf: u32) -> u32 {
    (rx_fifo_inf >> 16) & 0xff
}
pub(crate) fn tx_data_free(tx_fifo_inf: u32) -> u32 {
    tx_fifo_inf & 0xffff
}
pub(crate) fn rx_status_len(status: u32) -> usize {
    ((status >> 16) & 0x3fff) as usize
}

/// How the driver reaches one chip: its 32-bit register window and its interrupt line.
///
/// [`Mmio`] is the real implementation. Offsets are the byte offsets above; reads and writes of
/// the FIFO ports have side effects, so an implementation must perform every call exactly once
/// and in order.
pub trait Bus {
    /// Reads the 32-bit register at byte `offset`.
    fn read(&self, offset: usize) -> u32;
    /// Writes the 32-bit register at byte `offset`.
    fn write(&self, offset: usize, value: u32);
    /// Lets the chip's interrupt line reach the CPU again.
    fn unmask_irq(&self);
    /// Stops the chip's interrupt line from reaching the CPU. Called from the interrupt handler.
    fn mask_irq(&self);
}

/// A LAN9118 mapped into the address space of a Cortex-M, its IRQ line wired to an NVIC input
/// (as on QEMU's mps2 boards: base `0x4020_0000`, IRQ 13).
#[derive(Clone, Copy, Debug)]
pub struct Mmio {
    base: usize,
    irq: u16,
}

/// NVIC Interrupt Set-Enable and Clear-Enable registers (ARMv7-M architecture, fixed addresses).
const NVIC_ISER: usize = 0xe000_e100;
const NVIC_ICER: usize = 0xe000_e180;

impl Mmio {
    /// # Safety
    ///
    /// `base` must be the start of a LAN9118's 256-byte register window, mapped as device memory,
    /// and `irq` its external interrupt number on this core's NVIC. The caller must not let other
    /// code access that window or that NVIC bit except through copies of this value.
    pub const unsafe fn new(base: usize, irq: u16) -> Self {
        Self { base, irq }
    }

    fn nvic_bit(&self, bank: usize) -> (*mut u32, u32) {
        let irq = usize::from(self.irq);
        let reg = (bank + 4 * (irq / 32)) as *mut u32;
        (reg, 1 << (irq % 32))
    }
}

impl Bus for Mmio {
    fn read(&self, offset: usize) -> u32 {
        debug_assert!(offset < 0x100 && offset.is_multiple_of(4));
        // SAFETY: `new`'s contract makes `base..base + 0x100` a LAN9118 register window that only
        // this driver uses; `offset` is one of this module's aligned constants inside it. Volatile
        // because every read is a device access (FIFO reads pop data) that must not be elided.
        unsafe { ptr::read_volatile((self.base + offset) as *const u32) }
    }

    fn write(&self, offset: usize, value: u32) {
        debug_assert!(offset < 0x100 && offset.is_multiple_of(4));
        // SAFETY: as in `read`: an aligned register inside the window `new`'s caller vouched for.
        unsafe { ptr::write_volatile((self.base + offset) as *mut u32, value) }
    }

    fn unmask_irq(&self) {
        let (reg, bit) = self.nvic_bit(NVIC_ISER);
        // SAFETY: ISER is an architectural, always-mapped NVIC register; writing a 1 changes only
        // this IRQ's enable bit (write-one-to-set), and `new`'s caller gave this IRQ to the driver.
        unsafe { ptr::write_volatile(reg, bit) }
    }

    fn mask_irq(&self) {
        let (reg, bit) = self.nvic_bit(NVIC_ICER);
        // SAFETY: as in `unmask_irq`; ICER is write-one-to-clear. The NVIC sits on the
        // strongly-ordered private peripheral bus, so the write completes before the handler
        // returns and the still-asserted line cannot re-enter it.
        unsafe { ptr::write_volatile(reg, bit) }
    }
}
