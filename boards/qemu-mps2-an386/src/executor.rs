//! embassy's thread-mode executor, sleeping on WFI instead of WFE.
//!
//! QEMU (7.2, TCG) implements WFE as a no-op, so embassy's cortex-m executor (poll, then `wfe`)
//! would keep a host core at 100 % for as long as the board runs. WFI does halt the emulated CPU
//! until an interrupt; the SysTick and LAN9118 interrupts are what wake tasks here anyway.

use core::sync::atomic::{AtomicBool, Ordering};

use embassy_executor::{raw, Spawner};

/// Set when a task was woken; checked before sleeping.
static WOKEN: AtomicBool = AtomicBool::new(false);

/// Called by embassy whenever a task is woken, from thread mode or from an interrupt handler.
/// An interrupt-side wake also ends WFI; a thread-side one is caught by the check in `run`.
#[unsafe(export_name = "__pender")]
fn pender(_context: *mut ()) {
    WOKEN.store(true, Ordering::Release);
}

pub struct Executor {
    inner: raw::Executor,
}

impl Executor {
    pub fn new() -> Self {
        Self {
            inner: raw::Executor::new(core::ptr::null_mut()),
        }
    }

    pub fn run(&'static mut self, init: impl FnOnce(Spawner)) -> ! {
        init(self.inner.spawner());
        loop {
            // SAFETY: `poll` is only ever called here, so never reentrantly; the pender only
            // sets a flag.
            unsafe { self.inner.poll() };
            // With interrupts masked, a wake that lands between the check and WFI still ends
            // WFI (a pending interrupt wakes the core regardless of PRIMASK) and is taken below.
            cortex_m::interrupt::disable();
            if !WOKEN.swap(false, Ordering::AcqRel) {
                cortex_m::asm::wfi();
            }
            // SAFETY: re-enables what this loop disabled just above; no critical section spans it.
            unsafe { cortex_m::interrupt::enable() };
        }
    }
}
