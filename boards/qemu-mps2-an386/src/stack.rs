//! The stack's high-water mark. cortex-m-rt (`paint-stack`) fills the whole stack region with
//! 0xCCCCCCCC before `main`; the lowest word that no longer holds it is as deep as the stack has
//! ever been.

use core::ptr::{addr_of, read_volatile};

use cortex_m_rt::STACK_PAINT_VALUE;

extern "C" {
    /// The bottom of the stack region (the end of .bss), from cortex-m-rt's linker script.
    static _stack_end: u32;
    /// The top of the stack (the initial stack pointer).
    static _stack_start: u32;
}

/// The most stack ever used, in bytes.
pub fn peak() -> usize {
    // Only the symbols' addresses are taken, never their (nonexistent) values.
    let (bottom, top) = (
        addr_of!(_stack_end) as usize,
        addr_of!(_stack_start) as usize,
    );
    let mut at = bottom;
    // SAFETY: [bottom, top) is RAM reserved for the stack, word-aligned (cortex-m-rt asserts it);
    // reading it races with nothing that matters: only words below the stack pointer are read
    // as paint, and those are not in use.
    while at < top && unsafe { read_volatile(at as *const u32) } == STACK_PAINT_VALUE {
        at += 4;
    }
    top - at
}
