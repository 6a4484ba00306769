//! What the decoder accepts (every msgpack width, nil as absent, unknown and non-string keys) and
//! which widths the encoder picks. Inputs are built by hand so each test shows its bytes.

mod common;

use common::{cat, encode_checked, fixstr, sized, wrp_map, Plain};
use wrp_nostd::{Message, MessageType, Metadata, StrList};

fn decode(bytes: &[u8]) -> Message<'_> {
    Message::decode(bytes).unwrap_or_else(|e| panic!("{e} decoding {bytes:02x?}"))
}

/// Every integer encoding, minimal or not, with the value it holds.
const INTS: [(&[u8], i64); 18] = [
    (&[0x00], 0),
    (&[0x7f], 127),
    (&[0xe0], -32),
    (&[0xff], -1),
    (&[0xcc, 0xff], 255),
    (&[0xcc, 0x05], 5),
    (&[0xcd, 0xff, 0xff], 65535),
    (&[0xcd, 0x00, 0x05], 5),
    (&[0xce, 0xff, 0xff, 0xff, 0xff], u32::MAX as i64),
    (
        &[0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        i64::MAX,
    ),
    (&[0xcf, 0, 0, 0, 0, 0, 0, 0, 0x05], 5),
    (&[0xd0, 0x80], -128),
    (&[0xd0, 0x05], 5),
    (&[0xd1, 0x80, 0x00], -32768),
    (&[0xd2, 0x80, 0x00, 0x00, 0x00], i32::MIN as i64),
    (&[0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0], i64::MIN),
    (&[0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe], -2),
    (&[0xd1, 0x00, 0x7f], 127),
];

#[test]
fn every_integer_width_is_accepted_for_status_rdr_and_qos() {
    for (raw, want) in INTS {
        let bytes = wrp_map(2, &[("status", raw), ("rdr", raw), ("qos", raw)]);
        let m = decode(&bytes);
        assert_eq!((m.status, m.rdr, m.qos), (Some(want), Some(want), want));
    }
}

#[test]
fn every_integer_width_is_accepted_for_msg_type() {
    let three: [&[u8]; 9] = [
        &[0x03],
        &[0xcc, 0x03],
        &[0xcd, 0x00, 0x03],
        &[0xce, 0, 0, 0, 0x03],
        &[0xcf, 0, 0, 0, 0, 0, 0, 0, 0x03],
        &[0xd0, 0x03],
        &[0xd1, 0x00, 0x03],
        &[0xd2, 0, 0, 0, 0x03],
        &[0xd3, 0, 0, 0, 0, 0, 0, 0, 0x03],
    ];
    for raw in three {
        let bytes = cat(&[&[0x81], &fixstr("msg_type"), raw]);
        assert_eq!(decode(&bytes).msg_type, MessageType::SimpleRequestResponse);
    }
}

/// `s` as every string form its length fits: fixstr, str8, str16 and str32 (the wide forms
/// also for a short string).
fn str_forms(s: &str) -> Vec<Vec<u8>> {
    let b = s.as_bytes();
    let mut forms = vec![sized(0xdb, 4, b.len(), b)];
    if b.len() <= 0xffff {
        forms.push(sized(0xda, 2, b.len(), b));
    }
    if b.len() <= 0xff {
        forms.push(sized(0xd9, 1, b.len(), b));
    }
    if b.len() < 32 {
        forms.push(fixstr(s));
    }
    forms
}

#[test]
fn every_string_width_is_accepted_for_values_and_keys() {
    let long = "x".repeat(70_000);
    for value in ["dns:a", "é", "", &"y".repeat(200), &"z".repeat(1000), &long] {
        for raw in str_forms(value) {
            let bytes = wrp_map(4, &[("source", &raw), ("session_id", &raw)]);
            let m = decode(&bytes);
            assert_eq!((m.source, m.session_id), (value, value));
        }
    }
    for key in str_forms("dest") {
        let bytes = cat(&[&[0x82], &fixstr("msg_type"), &[4], &key, &fixstr("dns:b")]);
        assert_eq!(decode(&bytes).dest, "dns:b");
    }
}

#[test]
fn payload_is_accepted_as_every_binary_and_string_width() {
    // A payload is bytes: as a string it needs not be UTF-8.
    let data: &[u8] = &[0x31, 0xff, 0x00, 0xc1];
    let forms = [
        sized(0xc4, 1, data.len(), data),
        sized(0xc5, 2, data.len(), data),
        sized(0xc6, 4, data.len(), data),
        cat(&[&[0xa0 | data.len() as u8], data]),
        sized(0xd9, 1, data.len(), data),
        sized(0xda, 2, data.len(), data),
        sized(0xdb, 4, data.len(), data),
    ];
    for raw in forms {
        assert_eq!(decode(&wrp_map(4, &[("payload", &raw)])).payload, data);
    }
    let big = vec![0xab; 70_000];
    assert_eq!(
        decode(&wrp_map(
            4,
            &[("payload", &sized(0xc6, 4, big.len(), &big))]
        ))
        .payload,
        &big[..]
    );
}

#[test]
fn map16_and_map32_are_accepted_for_the_message_and_metadata() {
    let body = cat(&[
        &fixstr("msg_type"),
        &[4],
        &fixstr("source"),
        &fixstr("dns:a"),
    ]);
    for header in [sized(0xde, 2, 2, &[]), sized(0xdf, 4, 2, &[])] {
        let bytes = cat(&[&header, &body]);
        let m = decode(&bytes);
        assert_eq!((m.msg_type, m.source), (MessageType::SimpleEvent, "dns:a"));
        let pairs = cat(&[&fixstr("k1"), &fixstr("v1"), &fixstr("k2"), &fixstr("v2")]);
        let metadata = cat(&[&header, &pairs]);
        let bytes = wrp_map(4, &[("metadata", &metadata)]);
        let m = decode(&bytes);
        assert_eq!(m.metadata.len(), 2);
        assert_eq!(
            m.metadata.iter().collect::<Vec<_>>(),
            [("k1", "v1"), ("k2", "v2")]
        );
    }
}

#[test]
fn array16_and_array32_are_accepted_for_lists_and_spans() {
    let items = cat(&[&fixstr("a"), &fixstr("b")]);
    for header in [sized(0xdc, 2, 2, &[]), sized(0xdd, 4, 2, &[])] {
        let list = cat(&[&header, &items]);
        let bytes = wrp_map(4, &[("headers", &list), ("partner_ids", &list)]);
        let m = decode(&bytes);
        assert_eq!(m.headers.iter().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(m.partner_ids.iter().collect::<Vec<_>>(), ["a", "b"]);
        // spans: the outer and the inner arrays in the wide form.
        let span = cat(&[
            &sized(header[0], header.len() - 1, 3, &[]),
            &items,
            &[0xcd, 1, 0],
        ]);
        let spans = cat(&[&header, &span, &span]);
        let bytes = wrp_map(3, &[("spans", &spans)]);
        let m = decode(&bytes);
        assert_eq!(m.spans.len(), 2);
        for span in m.spans.iter() {
            assert_eq!(format!("{span:?}"), r#"[Str("a"), Str("b"), Int(256)]"#);
        }
    }
}

#[test]
fn nil_means_absent_for_every_field() {
    let fields = [
        "source",
        "dest",
        "transaction_uuid",
        "content_type",
        "accept",
        "status",
        "rdr",
        "headers",
        "metadata",
        "path",
        "payload",
        "service_name",
        "url",
        "partner_ids",
        "session_id",
        "qos",
        "msg_id",
        "spans",
        "include_spans",
    ];
    let nil: &[u8] = &[0xc0];
    let pairs: Vec<(&str, &[u8])> = fields.iter().map(|f| (*f, nil)).collect();
    // 19 pairs + msg_type do not fit a fixmap: write a map16 header.
    let fixmap = wrp_map(4, &pairs);
    let bytes = cat(&[&sized(0xde, 2, pairs.len() + 1, &[]), &fixmap[1..]]);
    let m = decode(&bytes);
    assert_eq!(
        Plain::of(&m),
        Plain::of(&Message::new(MessageType::SimpleEvent))
    );
    assert_eq!(m, Message::new(MessageType::SimpleEvent));
}

#[test]
fn nil_metadata_values_read_as_empty_strings() {
    let metadata = cat(&[&[0x82], &fixstr("a"), &[0xc0], &fixstr("b"), &fixstr("x")]);
    let bytes = wrp_map(4, &[("metadata", &metadata)]);
    let m = decode(&bytes);
    assert_eq!(
        m.metadata.iter().collect::<Vec<_>>(),
        [("a", ""), ("b", "x")]
    );
    assert_eq!(m.metadata.get("a"), Some(""));
    assert_eq!(m.metadata.get("c"), None);
}

#[test]
fn unknown_keys_are_skipped_whatever_they_hold() {
    let nested_map = cat(&[
        &[0x82],
        &fixstr("a"),
        &[0x93, 0x01, 0xcb],
        &2.5f64.to_be_bytes(),
        &[0x81],
        &fixstr("x"),
        &[0xc0],
        &fixstr("b"),
        &[0xd4, 0x01, 0x02],
    ]);
    let deep = cat(&[&[0x91; 14], &[0x81, 0xa1, b'k', 0x90]]);
    let unknown: Vec<Vec<u8>> = vec![
        nested_map,
        deep,
        vec![0xd4, 0x01, 0xaa],
        vec![0xd5, 0x01, 0xaa, 0xbb],
        cat(&[&[0xd6, 0x01], &[0; 4]]),
        cat(&[&[0xd7, 0xff], &[0; 8]]),
        cat(&[&[0xd8, 0x01], &[0; 16]]),
        sized(0xc7, 1, 3, &[0x05, 1, 2, 3]),
        sized(0xc8, 2, 3, &[0x05, 1, 2, 3]),
        sized(0xc9, 4, 3, &[0x05, 1, 2, 3]),
        cat(&[&[0xca], &1.5f32.to_be_bytes()]),
        cat(&[&[0xcb], &(-0.25f64).to_be_bytes()]),
        vec![0xc2],
        vec![0xc3],
        vec![0xc0],
        sized(0xc4, 1, 2, &[1, 2]),
        sized(0xdb, 4, 2, b"hi"),
        // Out of i64 range: still a well-formed value to skip.
        vec![0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        vec![0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0],
        vec![0x80],
        vec![0x90],
        sized(0xdc, 2, 1, &[0x07]),
        sized(0xdf, 4, 1, &[0xa1, b'k', 0x07]),
    ];
    let known = [
        ("source", fixstr("dns:a")),
        ("dest", fixstr("mac:112233445566")),
    ];
    for value in &unknown {
        // The unknown key before, between and after the known ones.
        for at in 0..=known.len() {
            let mut pairs: Vec<(&str, &[u8])> =
                known.iter().map(|(k, v)| (*k, v.as_slice())).collect();
            pairs.insert(at, ("x-unknown", value));
            let bytes = wrp_map(4, &pairs);
            let m = decode(&bytes);
            assert_eq!(
                (m.source, m.dest),
                ("dns:a", "mac:112233445566"),
                "{value:02x?}"
            );
        }
    }
}

#[test]
fn non_string_keys_are_skipped() {
    let keys: [Vec<u8>; 9] = [
        vec![0x01],
        vec![0xff],
        vec![0xc0],
        vec![0xc3],
        // bin "source": a binary key is not the string key `source`.
        sized(0xc4, 1, 6, b"source"),
        vec![0x92, 0x01, 0x02],
        cat(&[&[0x81], &fixstr("source"), &fixstr("x")]),
        cat(&[&[0xca], &1.0f32.to_be_bytes()]),
        vec![0xd4, 0x00, 0x00],
    ];
    for key in keys {
        let bytes = cat(&[
            &[0x83],
            &fixstr("msg_type"),
            &[4],
            &key,
            &fixstr("mac:000000000000"),
            &fixstr("source"),
            &fixstr("dns:ok"),
        ]);
        let m = decode(&bytes);
        assert_eq!(m.source, "dns:ok", "key {key:02x?}");
        assert_eq!(Plain::of(&m).dest, "");
    }
}

#[test]
fn a_repeated_key_keeps_its_last_value() {
    let bytes = wrp_map(
        4,
        &[("source", &fixstr("dns:a")), ("source", &fixstr("dns:b"))],
    );
    let m = decode(&bytes);
    assert_eq!(m.source, "dns:b");
    let bytes = cat(&[
        &[0x82],
        &fixstr("msg_type"),
        &[4],
        &fixstr("msg_type"),
        &[3],
    ]);
    assert_eq!(decode(&bytes).msg_type, MessageType::SimpleRequestResponse);
}

// ---------------------------------------------------------------------------------------------
// The encoder's choice of width.

/// The bytes that follow `key` (written as a fixstr) in `bytes`.
fn after_key<'b>(bytes: &'b [u8], key: &str) -> &'b [u8] {
    let needle = fixstr(key);
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
        .unwrap_or_else(|| panic!("no key {key}"));
    &bytes[at + needle.len()..]
}

#[test]
fn integers_are_written_in_the_narrowest_width() {
    let cases: [(i64, u8); 20] = [
        (0, 0x00),
        (127, 0x7f),
        (128, 0xcc),
        (255, 0xcc),
        (256, 0xcd),
        (65535, 0xcd),
        (65536, 0xce),
        (u32::MAX as i64, 0xce),
        (u32::MAX as i64 + 1, 0xcf),
        (i64::MAX, 0xcf),
        (-1, 0xff),
        (-32, 0xe0),
        (-33, 0xd0),
        (-128, 0xd0),
        (-129, 0xd1),
        (-32768, 0xd1),
        (-32769, 0xd2),
        (i32::MIN as i64, 0xd2),
        (i32::MIN as i64 - 1, 0xd3),
        (i64::MIN, 0xd3),
    ];
    for (value, marker) in cases {
        let mut m = Message::new(MessageType::Authorization);
        m.status = Some(value);
        let bytes = encode_checked(&m);
        assert_eq!(after_key(&bytes, "status")[0], marker, "status {value}");
    }
}

#[test]
fn strings_and_binary_are_written_in_the_narrowest_width() {
    let cases: [(usize, u8, u8); 8] = [
        (1, 0xa1, 0xc4),
        (31, 0xbf, 0xc4),
        (32, 0xd9, 0xc4),
        (255, 0xd9, 0xc4),
        (256, 0xda, 0xc5),
        (65535, 0xda, 0xc5),
        (65536, 0xdb, 0xc6),
        (70_000, 0xdb, 0xc6),
    ];
    for (len, str_marker, bin_marker) in cases {
        let text = "s".repeat(len);
        let data = vec![7u8; len];
        let mut m = Message::new(MessageType::SimpleEvent);
        m.session_id = &text;
        m.payload = &data;
        let bytes = encode_checked(&m);
        assert_eq!(after_key(&bytes, "session_id")[0], str_marker, "str {len}");
        assert_eq!(after_key(&bytes, "payload")[0], bin_marker, "bin {len}");
    }
}

#[test]
fn arrays_and_maps_are_written_in_the_narrowest_width() {
    for (len, array_marker, map_marker) in [
        (1, 0x91, 0x81),
        (15, 0x9f, 0x8f),
        (16, 0xdc, 0xde),
        (65535, 0xdc, 0xde),
        (65536, 0xdd, 0xdf),
    ] {
        let items = vec!["h"; len];
        let pairs = vec![("k", "v"); len];
        let mut m = Message::new(MessageType::SimpleEvent);
        m.headers = StrList::from_strs(&items);
        m.metadata = Metadata::from_pairs(&pairs);
        // Not encode_checked: Metadata's PartialEq is quadratic in the entry count.
        let mut buf = vec![0; m.encoded_len().expect("len")];
        m.encode(&mut buf).expect("encodes");
        assert_eq!(after_key(&buf, "headers")[0], array_marker, "array {len}");
        assert_eq!(after_key(&buf, "metadata")[0], map_marker, "map {len}");
        let back = decode(&buf);
        assert_eq!((back.headers.len(), back.metadata.len()), (len, len));
        assert!(back.headers.iter().all(|h| h == "h"));
        assert!(back.metadata.iter().all(|kv| kv == ("k", "v")));
    }
}

#[test]
fn a_message_with_more_than_15_fields_gets_a_map16_header() {
    let headers = ["h"];
    let pairs = [("k", "v")];
    let m = Message {
        source: "dns:a",
        dest: "dns:b",
        transaction_uuid: "t",
        content_type: "c",
        accept: "a",
        status: Some(1),
        rdr: Some(0),
        headers: StrList::from_strs(&headers),
        metadata: Metadata::from_pairs(&pairs),
        path: "/p",
        payload: b"x",
        service_name: "s",
        url: "u",
        partner_ids: StrList::from_strs(&headers),
        session_id: "sid",
        qos: 10,
        msg_id: "m",
        include_spans: true,
        ..Message::new(MessageType::Create)
    };
    let bytes = encode_checked(&m);
    // 19 fields: msg_type, qos and the 17 set above.
    assert_eq!(&bytes[..3], &[0xde, 0x00, 19]);
    // Only msg_type and qos: a fixmap of 2.
    assert_eq!(
        encode_checked(&Message::new(MessageType::ServiceAlive))[0],
        0x82
    );
}
