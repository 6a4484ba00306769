//! The driver against a model of the chip that follows QEMU's `hw/net/lan9118.c` semantics for
//! the registers the driver uses.

extern crate std;

use std::boxed::Box;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Wake, Waker};
use std::vec::Vec;

use embassy_net_driver::{Driver, HardwareAddress, LinkState, RxToken as _, TxToken as _};

use super::*;

const QEMU_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

struct State {
    byte_test: u32,
    mac: [u8; 6],
    irq_cfg: u32,
    int_sts: u32,
    int_en: u32,
    fifo_int: u32,
    rx_cfg: u32,
    tx_cfg: u32,
    mac_cr: u32,
    mac_csr_data: u32,
    mii_data: u32,
    link_up: bool,
    phy_int_src: u32,
    phy_int_mask: u32,
    rx_status: VecDeque<u32>,
    rx_data: VecDeque<u32>,
    tx_words: Vec<u32>,
    tx_frames: Vec<Vec<u8>>,
    tx_free: u32,
    irq_unmasked: bool,
}

struct Model(RefCell<State>);

impl Model {
    fn new(mac: [u8; 6]) -> Self {
        Model(RefCell::new(State {
            byte_test: BYTE_TEST_MAGIC,
            mac,
            irq_cfg: 0,
            int_sts: 0,
            int_en: 0,
            fifo_int: 0x4800_0000,
            rx_cfg: 0,
            tx_cfg: 0,
            mac_cr: 1 << 18, // QEMU's reset value: promiscuous
            mac_csr_data: 0,
            mii_data: 0,
            link_up: true,
            phy_int_src: 0,
            phy_int_mask: 0,
            rx_status: VecDeque::new(),
            rx_data: VecDeque::new(),
            tx_words: Vec::new(),
            tx_frames: Vec::new(),
            tx_free: 4608,
            irq_unmasked: false,
        }))
    }

    /// Queues a frame (FCS appended, as the chip stores it) with extra status bits.
    fn deliver_with(&self, frame: &[u8], status_bits: u32, claimed_len: Option<usize>) {
        let mut s = self.0.borrow_mut();
        let mut bytes = frame.to_vec();
        bytes.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        let len = claimed_len.unwrap_or(bytes.len());
        bytes.resize(len.div_ceil(4) * 4, 0);
        for word in bytes.chunks(4) {
            s.rx_data
                .push_back(u32::from_le_bytes(word.try_into().unwrap()));
        }
        s.rx_status.push_back((len as u32) << 16 | status_bits);
        if s.rx_status.len() as u32 > (s.fifo_int & 0xff) {
            s.int_sts |= INT_RSFL;
        }
    }

    fn deliver(&self, frame: &[u8]) {
        self.deliver_with(frame, 0, None);
    }

    fn set_link(&self, up: bool) {
        let mut s = self.0.borrow_mut();
        s.link_up = up;
        s.phy_int_src |= if up {
            PHY_INT_AUTONEG_DONE
        } else {
            PHY_INT_LINK_DOWN
        };
    }

    fn int_sts(s: &State) -> u32 {
        let phy = if s.phy_int_src & s.phy_int_mask != 0 {
            INT_PHY
        } else {
            0
        };
        s.int_sts | phy
    }

    /// Whether the chip drives its (active-high, push-pull) line.
    fn line_asserted(&self) -> bool {
        let s = self.0.borrow();
        let en = IRQ_CFG_IRQ_EN | IRQ_CFG_IRQ_POL | IRQ_CFG_IRQ_TYPE;
        s.irq_cfg == en && Self::int_sts(&s) & s.int_en != 0
    }

    fn mac_reg_read(s: &mut State, reg: u32) -> u32 {
        match reg {
            MAC_CR => s.mac_cr,
            MAC_ADDRL => u32::from_le_bytes([s.mac[0], s.mac[1], s.mac[2], s.mac[3]]),
            MAC_ADDRH => u32::from(s.mac[4]) | u32::from(s.mac[5]) << 8,
            MAC_MII_ACC => 0,
            MAC_MII_DATA => s.mii_data,
            _ => panic!("unmodelled MAC read {reg}"),
        }
    }

    fn mac_reg_write(s: &mut State, reg: u32, value: u32) {
        match reg {
            MAC_CR => s.mac_cr = value,
            MAC_MII_DATA => s.mii_data = value & 0xffff,
            MAC_MII_ACC => {
                assert_eq!(value >> 11 & 0x1f, PHY_ADDR);
                let phy_reg = value >> 6 & 0x1f;
                if value & MII_ACC_WRITE != 0 {
                    match phy_reg {
                        PHY_INT_MASK => s.phy_int_mask = s.mii_data & 0xff,
                        _ => panic!("unmodelled PHY write {phy_reg}"),
                    }
                } else {
                    s.mii_data = match phy_reg {
                        PHY_BMSR => 0x7809 | if s.link_up { 0x24 } else { 0 },
                        PHY_INT_SRC => core::mem::take(&mut s.phy_int_src),
                        PHY_INT_MASK => s.phy_int_mask,
                        _ => panic!("unmodelled PHY read {phy_reg}"),
                    };
                }
            }
            _ => panic!("unmodelled MAC write {reg}"),
        }
    }

    /// Reassembles single-segment frames from the TX data FIFO words.
    fn tx_push(s: &mut State, word: u32) {
        s.tx_words.push(word);
        let cmd_a = s.tx_words[0];
        assert_eq!(
            cmd_a & (TX_CMD_A_FIRST_SEG | TX_CMD_A_LAST_SEG),
            TX_CMD_A_FIRST_SEG | TX_CMD_A_LAST_SEG
        );
        let len = (cmd_a & 0x7ff) as usize;
        if s.tx_words.len() == 2 + len.div_ceil(4) {
            assert_eq!(s.tx_words[1] & 0x7ff, len as u32, "command B length");
            let mut frame: Vec<u8> = s.tx_words[2..]
                .iter()
                .flat_map(|w| w.to_le_bytes())
                .collect();
            frame.truncate(len);
            s.tx_frames.push(frame);
            s.tx_words.clear();
        }
    }
}

impl Bus for Model {
    fn read(&self, offset: usize) -> u32 {
        let mut s = self.0.borrow_mut();
        match offset {
            RX_DATA_FIFO => s.rx_data.pop_front().expect("RX data FIFO underflow"),
            RX_STATUS_FIFO => s.rx_status.pop_front().expect("RX status FIFO underflow"),
            ID_REV => 0x0118_0001,
            IRQ_CFG => s.irq_cfg,
            INT_STS => Self::int_sts(&s),
            INT_EN => s.int_en,
            BYTE_TEST => s.byte_test,
            HW_CFG => 0x0005_0004,
            PMT_CTRL => PMT_CTRL_READY,
            RX_FIFO_INF => (s.rx_status.len() as u32) << 16 | (s.rx_data.len() as u32) << 2,
            TX_FIFO_INF => s.tx_free,
            FREE_RUN => 12345,
            MAC_CSR_CMD => 0,
            MAC_CSR_DATA => s.mac_csr_data,
            _ => panic!("unmodelled read {offset:#x}"),
        }
    }

    fn write(&self, offset: usize, value: u32) {
        let mut s = self.0.borrow_mut();
        match offset {
            TX_DATA_FIFO => Self::tx_push(&mut s, value),
            IRQ_CFG => s.irq_cfg = value,
            INT_STS => s.int_sts &= !value,
            INT_EN => s.int_en = value,
            FIFO_INT => s.fifo_int = value,
            RX_CFG => s.rx_cfg = value,
            TX_CFG => s.tx_cfg = value,
            HW_CFG => assert_eq!(value, HW_CFG_SRST),
            MAC_CSR_DATA => s.mac_csr_data = value,
            MAC_CSR_CMD => {
                assert_ne!(value & MAC_CSR_BUSY, 0);
                let reg = value & 0xff;
                if value & MAC_CSR_READ != 0 {
                    s.mac_csr_data = Self::mac_reg_read(&mut s, reg);
                } else {
                    let data = s.mac_csr_data;
                    Self::mac_reg_write(&mut s, reg, data);
                }
            }
            _ => panic!("unmodelled write {offset:#x}"),
        }
    }

    fn unmask_irq(&self) {
        self.0.borrow_mut().irq_unmasked = true;
    }

    fn mask_irq(&self) {
        self.0.borrow_mut().irq_unmasked = false;
    }
}

struct CountingWake(AtomicUsize);

impl Wake for CountingWake {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn waker() -> (Waker, Arc<CountingWake>) {
    let count = Arc::new(CountingWake(AtomicUsize::new(0)));
    (Waker::from(count.clone()), count)
}

fn shared(model: Model) -> &'static Shared<Model> {
    Box::leak(Box::new(Shared::new(model)))
}

fn up(mac: [u8; 6]) -> (&'static Shared<Model>, Lan9118<Model>) {
    let shared = shared(Model::new(mac));
    let nic = Lan9118::new(shared).expect("init");
    (shared, nic)
}

fn frame(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + 3) as u8).collect()
}

fn receive_one(nic: &mut Lan9118<Model>, cx: &mut Context<'_>) -> Option<Vec<u8>> {
    let (rx, _tx) = nic.receive(cx)?;
    Some(rx.consume(|bytes| bytes.to_vec()))
}

#[test]
fn init_reads_mac_and_configures_the_chip() {
    let (shared, nic) = up(QEMU_MAC);
    assert_eq!(nic.mac_address(), QEMU_MAC);
    assert_eq!(nic.hardware_address(), HardwareAddress::Ethernet(QEMU_MAC));
    assert_eq!(nic.id_rev() >> 16, 0x0118);
    assert_eq!(nic.capabilities().max_transmission_unit, MTU);
    assert_eq!(nic.free_running_counter(), 12345);
    let s = shared.bus.0.borrow();
    assert_eq!(
        s.mac_cr,
        MAC_CR_TXEN | MAC_CR_RXEN,
        "promiscuous mode left on"
    );
    assert_eq!(s.tx_cfg & TX_CFG_TX_ON, TX_CFG_TX_ON);
    assert_eq!(
        s.irq_cfg,
        IRQ_CFG_IRQ_EN | IRQ_CFG_IRQ_POL | IRQ_CFG_IRQ_TYPE
    );
    assert_eq!(s.int_en, INT_RSFL | INT_PHY);
    assert_eq!(
        s.fifo_int >> 24,
        24,
        "TDFA level must cover one maximum frame"
    );
    assert_eq!(s.phy_int_mask, PHY_INT_LINK_DOWN | PHY_INT_AUTONEG_DONE);
    assert!(!s.irq_unmasked, "line unmasked before the stack polls");
}

#[test]
fn init_rejects_a_window_without_the_chip() {
    let model = Model::new(QEMU_MAC);
    model.0.borrow_mut().byte_test = 0x4321_8765;
    assert_eq!(
        Lan9118::new(shared(model)).err(),
        Some(Error::NotFound {
            byte_test: 0x4321_8765
        })
    );
}

#[test]
fn init_rejects_blank_or_multicast_mac() {
    for mac in [[0; 6], [0xff; 6], [0x01, 0, 0x5e, 0, 0, 1]] {
        assert_eq!(
            Lan9118::new(shared(Model::new(mac))).err(),
            Some(Error::NoMacAddress)
        );
    }
}

#[test]
fn receives_frames_of_every_word_tail() {
    let (shared, mut nic) = up(QEMU_MAC);
    let (waker, _) = waker();
    let mut cx = Context::from_waker(&waker);
    for len in [60, 61, 62, 63, 64, MTU] {
        shared.bus.deliver(&frame(len));
        assert_eq!(
            receive_one(&mut nic, &mut cx),
            Some(frame(len)),
            "len {len}"
        );
    }
    assert_eq!(receive_one(&mut nic, &mut cx), None);
    let s = shared.bus.0.borrow();
    assert!(s.rx_data.is_empty() && s.rx_status.is_empty());
}

#[test]
fn drops_errored_runt_and_oversized_frames() {
    let (shared, mut nic) = up(QEMU_MAC);
    let (waker, _) = waker();
    let mut cx = Context::from_waker(&waker);
    shared.bus.deliver_with(&frame(100), RX_STS_ERROR, None);
    shared.bus.deliver_with(&frame(10), 0, None);
    shared.bus.deliver_with(&frame(1600), 0, None);
    // A status claiming the 14-bit maximum, with that many data words behind it.
    shared.bus.deliver_with(&frame(20), 0, Some(0x3fff));
    shared.bus.deliver(&frame(70));
    assert_eq!(receive_one(&mut nic, &mut cx), Some(frame(70)));
    assert_eq!(receive_one(&mut nic, &mut cx), None);
    assert!(
        shared.bus.0.borrow().rx_data.is_empty(),
        "dropped frames left words behind"
    );
}

#[test]
fn a_frame_whose_token_was_dropped_is_offered_again() {
    let (shared, mut nic) = up(QEMU_MAC);
    let (waker, _) = waker();
    let mut cx = Context::from_waker(&waker);
    shared.bus.deliver(&frame(80));
    // Tokens taken but never consumed.
    let _ = nic.receive(&mut cx).expect("frame");
    assert_eq!(receive_one(&mut nic, &mut cx), Some(frame(80)));
    assert_eq!(receive_one(&mut nic, &mut cx), None);
}

#[test]
fn transmit_writes_one_segment_per_frame() {
    let (shared, mut nic) = up(QEMU_MAC);
    let (waker, _) = waker();
    let mut cx = Context::from_waker(&waker);
    for len in [42, 61, MTU] {
        let tx = nic.transmit(&mut cx).expect("TX space");
        let written = tx.consume(len, |buf| {
            buf.copy_from_slice(&frame(len));
            buf.len()
        });
        assert_eq!(written, len);
    }
    let s = shared.bus.0.borrow();
    assert_eq!(s.tx_frames, [frame(42), frame(61), frame(MTU)]);
}

#[test]
fn waits_for_tx_space_with_tdfa() {
    let (shared, mut nic) = up(QEMU_MAC);
    let (waker, _) = waker();
    let mut cx = Context::from_waker(&waker);
    shared.bus.0.borrow_mut().tx_free = TX_SLOT - 4;
    assert!(nic.transmit(&mut cx).is_none());
    shared.bus.deliver(&frame(60));
    assert!(
        nic.receive(&mut cx).is_none(),
        "RX must wait for TX space too"
    );
    {
        let s = shared.bus.0.borrow();
        assert_eq!(s.int_en, INT_RSFL | INT_PHY | INT_TDFA);
        assert!(s.irq_unmasked);
    }
    shared.bus.0.borrow_mut().tx_free = 4608;
    assert!(nic.transmit(&mut cx).is_some());
    assert_eq!(shared.bus.0.borrow().int_en, INT_RSFL | INT_PHY);
    assert_eq!(receive_one(&mut nic, &mut cx), Some(frame(60)));
}

#[test]
fn link_state_follows_phy_interrupts() {
    let (shared, mut nic) = up(QEMU_MAC);
    let (waker, _) = waker();
    let mut cx = Context::from_waker(&waker);
    assert!(nic.link_state(&mut cx) == LinkState::Up);
    shared.bus.set_link(false);
    assert!(shared.bus.line_asserted(), "PHY interrupt not enabled");
    assert!(nic.link_state(&mut cx) == LinkState::Down);
    assert!(
        !shared.bus.line_asserted(),
        "PHY interrupt not acknowledged"
    );
    shared.bus.set_link(true);
    assert!(nic.link_state(&mut cx) == LinkState::Up);
}

#[test]
fn interrupt_masks_the_line_and_wakes_the_stack() {
    let (shared, mut nic) = up(QEMU_MAC);
    let (waker, wakes) = waker();
    let mut cx = Context::from_waker(&waker);
    assert!(nic.receive(&mut cx).is_none());
    assert!(shared.bus.0.borrow().irq_unmasked);
    assert!(!shared.bus.line_asserted());

    // A frame arriving after the driver looked must raise the line again.
    shared.bus.deliver(&frame(60));
    assert!(shared.bus.line_asserted());
    shared.on_interrupt();
    assert!(!shared.bus.0.borrow().irq_unmasked);
    assert_eq!(wakes.0.load(Ordering::SeqCst), 1);

    assert_eq!(receive_one(&mut nic, &mut cx), Some(frame(60)));
    assert!(nic.receive(&mut cx).is_none());
    assert!(!shared.bus.line_asserted(), "RSFL not acknowledged");
    assert!(shared.bus.0.borrow().irq_unmasked);
}
