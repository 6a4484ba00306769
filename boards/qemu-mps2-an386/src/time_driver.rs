//! embassy-time on SysTick. The MPS2 boards have no embassy HAL, and SysTick is the one timer
//! every Cortex-M has: it interrupts at the tick rate (1 kHz) and the handler counts ticks and
//! fires due timers.

use core::cell::{Cell, RefCell};
use core::task::Waker;

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::exception;
use critical_section::Mutex;
use embassy_time_driver::{Driver, TICK_HZ};
use embassy_time_queue_utils::Queue;

/// SYSCLK of the AN386 FPGA image, which QEMU models (and feeds SysTick from).
const SYSCLK_HZ: u64 = 25_000_000;
const RELOAD: u32 = (SYSCLK_HZ / TICK_HZ - 1) as u32;
const _: () = assert!(
    SYSCLK_HZ.is_multiple_of(TICK_HZ) && RELOAD < 1 << 24,
    "SysTick cannot make this tick"
);

struct SysTickDriver {
    ticks: Mutex<Cell<u64>>,
    /// When the earliest queued timer is due (u64::MAX: none).
    next_due: Mutex<Cell<u64>>,
    queue: Mutex<RefCell<Queue>>,
}

embassy_time_driver::time_driver_impl!(static DRIVER: SysTickDriver = SysTickDriver {
    ticks: Mutex::new(Cell::new(0)),
    next_due: Mutex::new(Cell::new(u64::MAX)),
    queue: Mutex::new(RefCell::new(Queue::new())),
});

/// Starts the tick. Call once, before anything awaits a timer.
pub fn init(mut syst: SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(RELOAD);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

impl Driver for SysTickDriver {
    fn now(&self) -> u64 {
        critical_section::with(|cs| self.ticks.borrow(cs).get())
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        critical_section::with(|cs| {
            let mut queue = self.queue.borrow_ref_mut(cs);
            if queue.schedule_wake(at, waker) {
                let now = self.ticks.borrow(cs).get();
                self.next_due.borrow(cs).set(queue.next_expiration(now));
            }
        });
    }
}

#[exception]
fn SysTick() {
    critical_section::with(|cs| {
        let ticks = DRIVER.ticks.borrow(cs);
        let now = ticks.get() + 1;
        ticks.set(now);
        let next_due = DRIVER.next_due.borrow(cs);
        if now >= next_due.get() {
            next_due.set(DRIVER.queue.borrow_ref_mut(cs).next_expiration(now));
        }
    });
}
