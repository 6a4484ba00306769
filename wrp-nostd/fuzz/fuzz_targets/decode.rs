//! Decodes arbitrary bytes. Decoding must never panic; a message that decodes must re-encode to
//! bytes that decode to the same message, encode identically again, and survive the owned form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wrp_nostd::{Message, OwnedMessage};

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Message::decode(data) else {
        return;
    };
    // Walk every lazy list: the decoder promised they cannot fail.
    let lens = (
        m.headers.iter().count(),
        m.partner_ids.iter().count(),
        m.metadata.iter().count(),
        m.spans.iter().map(|s| s.fields().count()).sum::<usize>(),
    );
    assert_eq!(
        (lens.0, lens.1, lens.2),
        (m.headers.len(), m.partner_ids.len(), m.metadata.len())
    );
    let len = m.encoded_len().expect("a decoded message measures");
    let mut buf = vec![0u8; len];
    assert_eq!(m.encode(&mut buf), Ok(len));
    let again = Message::decode(&buf).expect("our encoding decodes");
    assert_eq!(again, m);
    assert_eq!(again.to_vec().expect("encodes"), buf);
    let owned = OwnedMessage::from(&m);
    assert_eq!(
        OwnedMessage::decode(&owned.to_msgpack().expect("encodes")),
        Ok(owned)
    );
});
