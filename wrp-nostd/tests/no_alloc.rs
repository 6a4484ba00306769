//! Proves the no-allocator claim on the host: a counting global allocator (this file is its own
//! test binary, so it counts nothing else) sees no allocation while messages are decoded, every
//! lazy list is iterated, and messages are measured, encoded, validated and their locators parsed.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

use common::{load_vectors, wrp_map};
use wrp_nostd::{validate, DeviceId, Locator, Message};

struct Counting;

thread_local! {
    // Per thread, so the test harness's own threads do not disturb the count; const-initialised,
    // so reading it never allocates.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // try_with: the allocator also runs while a thread's locals are torn down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: forwards every call to the system allocator unchanged; it only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns how many allocations it made on this thread.
fn allocations_in(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn the_counter_counts() {
    assert!(allocations_in(|| drop(black_box(vec![1u8; 16]))) >= 1);
    let mut v: Vec<u8> = Vec::with_capacity(1);
    assert!(allocations_in(|| v.extend_from_slice(&[0; 64])) >= 1);
}

/// Everything a no-alloc caller does with a received message.
fn use_message(bytes: &[u8], out: &mut [u8]) {
    let m = match Message::decode(bytes) {
        Ok(m) => m,
        Err(e) => {
            black_box(e);
            return;
        }
    };
    for h in m.headers.iter().chain(m.partner_ids.iter()) {
        black_box(h);
    }
    for (k, v) in m.metadata.iter() {
        black_box((k, v, m.metadata.get(k)));
    }
    for span in m.spans.iter() {
        for f in span.fields() {
            black_box(f);
        }
    }
    // PartialEq walks every list too.
    black_box(m == black_box(m));
    let _ = black_box(validate(&m));
    for locator in [m.source, m.dest] {
        let _ = black_box(Locator::parse(locator));
        let _ = black_box(DeviceId::parse(locator).map(|id| id.canonical_len()));
    }
    let len = m.encoded_len().expect("measures");
    assert_eq!(m.encode(&mut out[..len]), Ok(len));
    // The short-buffer error is allocation-free too.
    assert!(m.encode(&mut out[..len - 1]).is_err());
}

#[test]
fn decoding_iterating_and_encoding_allocate_nothing() {
    // Everything the test itself needs is allocated before counting.
    let mut inputs: Vec<Vec<u8>> = load_vectors().into_iter().map(|v| v.bytes).collect();
    inputs.push(wrp_map(
        4,
        &[
            ("source", b"\xb0mac:112233445566"),
            ("dest", b"\xa9event:x/y"),
        ],
    ));
    let truncated: Vec<Vec<u8>> = inputs
        .iter()
        .flat_map(|b| (0..b.len()).map(move |n| b[..n].to_vec()))
        .collect();
    let mut out = vec![0u8; 4096];
    let n = allocations_in(|| {
        for bytes in inputs.iter().chain(&truncated) {
            use_message(bytes, &mut out);
        }
    });
    assert_eq!(n, 0, "allocations while decoding and encoding");
}
