//! Every way the decoder refuses input, with the typed error (and where it points).

mod common;

use common::{cat, encode_checked, fixstr, sized, valid_vectors, wrp_map};
use wrp_nostd::{
    DecodeError, Message, MessageType, Metadata, SpanField, Spans, StrList, ValueKind,
};

/// Decodes a message whose last field holds `raw`, returning the error and where `raw` starts.
fn decode_last_field(key: &str, raw: &[u8]) -> (DecodeError, usize) {
    let bytes = wrp_map(4, &[("source", &fixstr("dns:a")), (key, raw)]);
    let err = Message::decode(&bytes).expect_err("must not decode");
    (err, bytes.len() - raw.len())
}

/// A message with every field set, lists and spans included.
fn full_message_bytes() -> Vec<u8> {
    let headers = ["h1", "h2"];
    let ids = ["p"];
    let pairs = [("k", "v"), ("k2", "")];
    let span: &[SpanField<'_>] = &[
        SpanField::Str("hop"),
        SpanField::Int(1_700_000_000_000),
        SpanField::Int(-5),
    ];
    let spans = [span, span];
    encode_checked(&Message {
        source: "dns:a",
        dest: "mac:112233445566/svc",
        transaction_uuid: "t-1",
        content_type: "application/json",
        accept: "application/json",
        status: Some(200),
        rdr: Some(0),
        headers: StrList::from_strs(&headers),
        metadata: Metadata::from_pairs(&pairs),
        path: "/p",
        payload: &[0, 1, 2, 0xff],
        service_name: "svc",
        url: "http://x",
        partner_ids: StrList::from_strs(&ids),
        session_id: "sid",
        qos: 75,
        msg_id: "m-1",
        spans: Spans::from_slices(&spans),
        include_spans: true,
        ..Message::new(MessageType::Update)
    })
}

#[test]
fn every_truncation_of_a_valid_message_is_an_error() {
    let mut inputs: Vec<(String, Vec<u8>)> = valid_vectors()
        .into_iter()
        .map(|v| (v.name, v.bytes))
        .collect();
    inputs.push(("full message".into(), full_message_bytes()));
    for (name, bytes) in inputs {
        for n in 0..bytes.len() {
            let prefix = &bytes[..n];
            for result in [
                Message::decode(prefix).map(|_| ()),
                Message::decode_prefix(prefix).map(|_| ()),
            ] {
                match result {
                    Err(DecodeError::Truncated { at } | DecodeError::LengthPastEnd { at }) => {
                        assert!(at <= n, "{name}[..{n}]: error at {at}")
                    }
                    other => panic!("{name}[..{n}]: expected a truncation error, got {other:?}"),
                }
            }
        }
    }
}

#[test]
fn wrong_types_name_the_expected_kind_and_where() {
    use ValueKind::*;
    let float = cat(&[&[0xca], &1.0f32.to_be_bytes()]);
    // (key, value, the kind the decoder wanted, offset of the offending marker in the value)
    let cases: Vec<(&str, Vec<u8>, ValueKind, usize)> = vec![
        ("source", vec![0x01], Str, 0),
        ("dest", vec![0xc3], Str, 0),
        ("transaction_uuid", vec![0x90], Str, 0),
        ("msg_id", sized(0xc4, 1, 1, b"x"), Str, 0),
        ("status", fixstr("1"), Int, 0),
        ("rdr", vec![0xc3], Int, 0),
        ("qos", float.clone(), Int, 0),
        ("msg_type", fixstr("4"), Int, 0),
        ("msg_type", float, Int, 0),
        (
            "headers",
            cat(&[&[0x81], &fixstr("a"), &fixstr("b")]),
            Array,
            0,
        ),
        ("headers", vec![0x92, 0xa1, b'a', 0x01], Str, 3),
        ("partner_ids", fixstr("p"), Array, 0),
        ("metadata", vec![0x91, 0xa1, b'a'], Map, 0),
        ("metadata", vec![0x81, 0x01, 0xa1, b'v'], Str, 1),
        ("metadata", vec![0x81, 0xa1, b'k', 0x01], Str, 3),
        ("payload", vec![0x01], Bin, 0),
        ("payload", vec![0x90], Bin, 0),
        ("include_spans", vec![0x01], Bool, 0),
        ("include_spans", fixstr("true"), Bool, 0),
        ("spans", fixstr("s"), Array, 0),
        ("spans", vec![0x91, 0xa1, b'x'], Array, 1),
        ("spans", vec![0x91, 0x91, 0xc3], Str, 2),
        ("spans", vec![0x91, 0x91, 0xc0], Str, 2),
    ];
    for (key, raw, expected, offset) in cases {
        let (err, start) = decode_last_field(key, &raw);
        assert_eq!(
            err,
            DecodeError::WrongType {
                at: start + offset,
                expected
            },
            "{key} = {raw:02x?}"
        );
    }
}

#[test]
fn invalid_utf8_is_refused_in_every_string_field_and_key() {
    let bad_strings: [&[u8]; 4] = [
        &[0xa1, 0xff],
        &[0xa2, 0xc3, 0x28],
        // An overlong NUL and a UTF-16 surrogate.
        &[0xa2, 0xc0, 0x80],
        &[0xa3, 0xed, 0xa0, 0x80],
    ];
    for bad in bad_strings {
        // (key, value, offset of the bad string in the value)
        let cases: [(&str, Vec<u8>, usize); 7] = [
            ("source", bad.to_vec(), 0),
            ("session_id", bad.to_vec(), 0),
            ("headers", cat(&[&[0x92, 0xa1, b'a'], bad]), 3),
            ("partner_ids", cat(&[&[0x91], bad]), 1),
            ("metadata", cat(&[&[0x81], bad, &[0xa0]]), 1),
            ("metadata", cat(&[&[0x81, 0xa1, b'k'], bad]), 3),
            ("spans", cat(&[&[0x91, 0x93], bad, &[0x01, 0x02]]), 2),
        ];
        for (key, raw, offset) in cases {
            let (err, start) = decode_last_field(key, &raw);
            assert_eq!(
                err,
                DecodeError::InvalidUtf8 { at: start + offset },
                "{key} = {raw:02x?}"
            );
        }
        // A key is a string too.
        let bytes = cat(&[&[0x82], &fixstr("msg_type"), &[4], bad, &[0x01]]);
        assert_eq!(
            Message::decode(&bytes),
            Err(DecodeError::InvalidUtf8 { at: 11 })
        );
    }
}

#[test]
fn lengths_past_the_end_are_refused() {
    let cases: [(&str, Vec<u8>); 9] = [
        ("source", vec![0xa5, b'a']),
        ("source", sized(0xd9, 1, 200, b"abc")),
        ("source", sized(0xda, 2, 0xffff, b"abc")),
        ("source", sized(0xdb, 4, 0xffff_ffff, b"abc")),
        ("payload", sized(0xc6, 4, 0xffff_ffff, b"abc")),
        ("headers", sized(0xdd, 4, 0xffff_ffff, &[0xa0])),
        ("metadata", sized(0xde, 2, 0xffff, &[0xa0, 0xa0])),
        (
            "spans",
            sized(0xdc, 2, 1, &sized(0xdd, 4, 0xffff_ffff, &[0x01])),
        ),
        ("x-unknown", sized(0xc9, 4, 0xffff_ffff, &[0x01, 0x00])),
    ];
    for (key, raw) in cases {
        let (err, start) = decode_last_field(key, &raw);
        match err {
            DecodeError::LengthPastEnd { at } => {
                assert!(
                    at >= start,
                    "{key} = {raw:02x?}: error at {at} before {start}"
                )
            }
            other => panic!("{key} = {raw:02x?}: expected LengthPastEnd, got {other:?}"),
        }
    }
    // The message's own map header.
    let bytes = cat(&[&sized(0xdf, 4, 0xffff_ffff, &[]), &fixstr("msg_type"), &[4]]);
    assert_eq!(
        Message::decode(&bytes),
        Err(DecodeError::LengthPastEnd { at: 0 })
    );
}

/// An unknown key holding `depth` nested single-element containers around an integer.
fn nested(depth: usize, container: &[u8]) -> Vec<u8> {
    let mut value = container.repeat(depth);
    value.push(0x01);
    value
}

#[test]
fn nesting_deeper_than_16_levels_is_too_deep() {
    // 16 levels: 15 containers and the integer inside them.
    for container in [&[0x91][..], &[0x81, 0xa1, b'k'][..]] {
        let ok = wrp_map(4, &[("x", &nested(15, container))]);
        assert!(Message::decode(&ok).is_ok(), "15 x {container:02x?}");
        let deep = wrp_map(4, &[("x", &nested(16, container))]);
        assert!(
            matches!(Message::decode(&deep), Err(DecodeError::TooDeep { .. })),
            "16 x {container:02x?}"
        );
    }
    // As a non-string key, and far deeper than any stack could follow by recursion.
    for value in [nested(16, &[0x91]), nested(100_000, &[0x91])] {
        let bytes = cat(&[&[0x82], &fixstr("msg_type"), &[4], &value, &[0x01]]);
        assert!(matches!(
            Message::decode(&bytes),
            Err(DecodeError::TooDeep { .. })
        ));
    }
}

#[test]
fn anything_but_a_map_is_not_a_message() {
    let not_maps: [Vec<u8>; 7] = [
        fixstr("invalid"),
        vec![0x91, 0x01],
        vec![0x01],
        vec![0xc0],
        vec![0xc3],
        sized(0xc4, 1, 1, &[0x80]),
        cat(&[&[0xcb], &1.0f64.to_be_bytes()]),
    ];
    for bytes in not_maps {
        assert_eq!(
            Message::decode(&bytes),
            Err(DecodeError::NotAMap),
            "{bytes:02x?}"
        );
    }
    assert_eq!(Message::decode(&[]), Err(DecodeError::Truncated { at: 0 }));
    assert_eq!(
        Message::decode(&[0xc1]),
        Err(DecodeError::InvalidMarker { at: 0 })
    );
}

#[test]
fn msg_type_must_be_present_and_a_wrp_type() {
    let missing = [
        vec![0x80],
        cat(&[&[0x81], &fixstr("source"), &fixstr("dns:a")]),
        cat(&[&[0x81], &fixstr("msg_type"), &[0xc0]]),
        // A later nil clears an earlier msg_type.
        cat(&[
            &[0x82],
            &fixstr("msg_type"),
            &[4],
            &fixstr("msg_type"),
            &[0xc0],
        ]),
    ];
    for bytes in missing {
        assert_eq!(
            Message::decode(&bytes),
            Err(DecodeError::MissingMessageType),
            "{bytes:02x?}"
        );
    }
    let unknown: [(&[u8], i64); 7] = [
        (&[0x00], 0),
        (&[0x01], 1),
        (&[0x0c], 12),
        (&[0xcc, 99], 99),
        (&[0xff], -1),
        (&[0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0], i64::MIN),
        (
            &[0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            i64::MAX,
        ),
    ];
    for (raw, n) in unknown {
        let bytes = cat(&[&[0x81], &fixstr("msg_type"), raw]);
        assert_eq!(
            Message::decode(&bytes),
            Err(DecodeError::UnknownMessageType(n))
        );
    }
    for t in 2..=11u8 {
        let bytes = wrp_map(t, &[]);
        let m = Message::decode(&bytes).expect("types 2..=11 decode");
        assert_eq!(m.msg_type.as_i64(), i64::from(t));
    }
}

#[test]
fn integers_past_i64_max_overflow() {
    let big: &[u8] = &[0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0];
    for key in ["status", "rdr", "qos"] {
        let (err, start) = decode_last_field(key, big);
        assert_eq!(err, DecodeError::IntegerOverflow { at: start }, "{key}");
    }
    let (err, start) = decode_last_field("spans", &cat(&[&[0x91, 0x93, 0xa0], big, &[0x00]]));
    assert_eq!(err, DecodeError::IntegerOverflow { at: start + 3 });
    let bytes = cat(&[&[0x81], &fixstr("msg_type"), big]);
    assert_eq!(
        Message::decode(&bytes),
        Err(DecodeError::IntegerOverflow { at: 10 })
    );
}

#[test]
fn the_unused_marker_0xc1_is_refused() {
    // In a value the decoder skips, and as a key.
    let (err, start) = decode_last_field("x-unknown", &[0xc1]);
    assert_eq!(err, DecodeError::InvalidMarker { at: start });
    let bytes = cat(&[&[0x82], &fixstr("msg_type"), &[4], &[0xc1, 0x01]]);
    assert_eq!(
        Message::decode(&bytes),
        Err(DecodeError::InvalidMarker { at: 11 })
    );
    // Where a string is wanted, it is just the wrong type.
    let (err, start) = decode_last_field("source", &[0xc1]);
    assert_eq!(
        err,
        DecodeError::WrongType {
            at: start,
            expected: ValueKind::Str
        }
    );
}

#[test]
fn trailing_bytes_are_refused_by_decode_but_not_decode_prefix() {
    for v in valid_vectors() {
        let m = Message::decode(&v.bytes).expect("valid");
        for tail in [&[0xc0][..], &[0x00], &v.bytes] {
            let input = cat(&[&v.bytes, tail]);
            assert_eq!(
                Message::decode(&input),
                Err(DecodeError::TrailingBytes { at: v.bytes.len() }),
                "{}",
                v.name
            );
            let (prefix, used) = Message::decode_prefix(&input).expect("the prefix decodes");
            assert_eq!((prefix, used), (m, v.bytes.len()), "{}", v.name);
        }
    }
}

#[test]
fn errors_say_what_and_where() {
    let cases = [
        (DecodeError::Truncated { at: 7 }, "7"),
        (DecodeError::LengthPastEnd { at: 8 }, "8"),
        (DecodeError::InvalidMarker { at: 9 }, "0xc1"),
        (
            DecodeError::WrongType {
                at: 10,
                expected: ValueKind::Map,
            },
            "expected map at byte 10",
        ),
        (DecodeError::InvalidUtf8 { at: 11 }, "UTF-8"),
        (DecodeError::IntegerOverflow { at: 12 }, "12"),
        (DecodeError::TooDeep { at: 13 }, "13"),
        (DecodeError::NotAMap, "map"),
        (DecodeError::MissingMessageType, "msg_type"),
        (DecodeError::UnknownMessageType(99), "99"),
        (DecodeError::TrailingBytes { at: 14 }, "14"),
    ];
    for (err, needle) in cases {
        let text = err.to_string();
        assert!(text.contains(needle), "{err:?} displays as {text:?}");
    }
}
