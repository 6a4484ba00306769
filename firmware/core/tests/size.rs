//! The client's RAM cost: it is one struct, so `size_of` is all of it (no heap). These budgets
//! catch a field that grows by accident; the README quotes the numbers.

use std::mem::size_of;

use xmidt_client_core::Client;

/// A hardware RNG handle is a word or two; this stands in for one.
struct Rng(#[allow(dead_code)] u32);

impl xmidt_client_core::Random for Rng {
    fn next_u32(&mut self) -> u32 {
        4
    }
}

/// A microcontroller: 4 services, 2 KiB outbox, 4 KiB / 8 messages of QoS queue.
type Firmware<'c> = Client<'c, Rng, 4, 2048, 4096, 8>;
/// The defaults (a gateway would raise OUTBOX to its largest message).
type Default<'c> = Client<'c, Rng>;

#[test]
fn ram_cost_stays_within_budget() {
    let firmware = size_of::<Firmware<'static>>();
    let default = size_of::<Default<'static>>();
    println!("Client<Rng, 4, 2048, 4096, 8>: {firmware} bytes");
    println!("Client<Rng> (8, 4096, 8192, 16): {default} bytes");
    // Fixed part: 1024 convey + 2055 token + 256 User-Agent + 253 redirect host + 123 close
    // reason + config and state (about 5.5 KB here, 5.1 KB on thumbv7em); then the buffers the
    // const generics choose.
    let buffers = 2048 + 4096;
    assert!(
        firmware > buffers + 3700,
        "the fixed part is accounted for: {firmware}"
    );
    assert!(firmware < buffers + 6000, "{firmware}");
    assert!(
        default - firmware >= (4096 - 2048) + (8192 - 4096),
        "the generics size the buffers"
    );
}
