//! The README's example, run as a test. The README cannot be a doctest without touching the
//! crate's source, so the lines live here and a second test checks that the README shows exactly
//! them.

use wrp_nostd::{validate, DeviceId, Message, MessageType, StrList};

#[test]
fn readme_example() {
    // README:begin
    // Building: every field borrows; nothing is allocated.
    let partners = ["comcast"];
    let request = Message {
        source: "dns:scytale.example.com",
        dest: "mac:11-22-33-44-55-66/config",
        transaction_uuid: "1234567890",
        content_type: "application/json",
        partner_ids: StrList::from_strs(&partners),
        payload: br#"{"command":"GET","names":["Something"]}"#,
        ..Message::new(MessageType::SimpleRequestResponse)
    };

    // Encoding into the caller's buffer (encoded_len says how big it must be).
    let mut buf = [0u8; 256];
    assert!(request.encoded_len().unwrap() <= buf.len());
    let len = request.encode(&mut buf).expect("the buffer is big enough");

    // Decoding: strings and the payload point into `buf`.
    let m = Message::decode(&buf[..len]).expect("a WRP message");
    assert_eq!(m, request);
    assert_eq!(m.partner_ids.iter().collect::<Vec<_>>(), ["comcast"]);
    assert_eq!(validate(&m), Ok(()));

    // Routing: the canonical device id of the destination.
    let device = DeviceId::parse(m.dest).expect("a device locator");
    assert_eq!(device.to_string(), "mac:112233445566");
    // README:end
}

#[test]
fn readme_shows_this_example() {
    let readme = include_str!("../README.md");
    let start = readme.find("```rust\n").expect("a rust block") + "```rust\n".len();
    let block = &readme[start..];
    let block = &block[..block.find("```").expect("closed block")];
    // The README block starts with the `use` line this file has at the top.
    let shown: Vec<&str> = block.lines().skip(2).collect();

    let this = include_str!("readme_example.rs");
    let lines: Vec<&str> = this.lines().collect();
    let marker = |m: &str| {
        lines
            .iter()
            .position(|l| l.trim() == m)
            .expect("marker line")
    };
    let body: Vec<&str> = lines[marker("// README:begin") + 1..marker("// README:end")]
        .iter()
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect();
    assert_eq!(
        block.lines().next(),
        Some("use wrp_nostd::{validate, DeviceId, Message, MessageType, StrList};")
    );
    assert_eq!(shown, body, "README.md and tests/readme_example.rs differ");
}
