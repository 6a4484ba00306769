//! The wrp-c conformance vectors (shared/vectors/wrp-c): decoding, re-encoding, and the owned,
//! JSON and header forms of every valid message.

mod common;

use common::{encode_checked, load_vectors, valid_vectors, Plain, EXPECTED_VECTORS};
use wrp_nostd::Message;

#[test]
fn vectors_folder_holds_every_vector() {
    let vectors = load_vectors();
    assert!(vectors.len() >= EXPECTED_VECTORS.len());
    assert!(vectors.iter().any(|v| v.valid));
    assert!(vectors.iter().any(|v| !v.valid));
}

#[test]
fn valid_vectors_decode_to_expected_fields() {
    for v in valid_vectors() {
        let expect = v.expect.as_ref().expect("valid vectors have expect");
        let m =
            Message::decode(&v.bytes).unwrap_or_else(|e| panic!("{}: decode failed: {e}", v.name));
        assert_eq!(Plain::of(&m), Plain::from_expect(expect), "{}", v.name);
        // decode_prefix agrees and says the whole input was used.
        let (prefix, used) = Message::decode_prefix(&v.bytes).expect("decode_prefix");
        assert_eq!(used, v.bytes.len(), "{}", v.name);
        assert_eq!(prefix, m, "{}", v.name);
    }
}

#[test]
fn invalid_vectors_fail_to_decode() {
    let invalid: Vec<_> = load_vectors().into_iter().filter(|v| !v.valid).collect();
    assert_eq!(invalid.len(), 4);
    for v in invalid {
        assert!(
            Message::decode(&v.bytes).is_err(),
            "{} decoded but is invalid",
            v.name
        );
        assert!(Message::decode_prefix(&v.bytes).is_err(), "{}", v.name);
        #[cfg(feature = "alloc")]
        assert!(
            wrp_nostd::OwnedMessage::decode(&v.bytes).is_err(),
            "{}",
            v.name
        );
    }
}

#[test]
fn valid_vectors_reencode_to_an_equal_message() {
    let mut with_wrp_c_reencoding = 0;
    for v in valid_vectors() {
        let m = Message::decode(&v.bytes).expect("decodes");
        let ours = encode_checked(&m);
        let expected = Plain::from_expect(v.expect.as_ref().expect("expect"));
        let again = Message::decode(&ours).expect("our bytes decode");
        assert_eq!(Plain::of(&again), expected, "{}: our re-encoding", v.name);
        // Encoding is deterministic: the same message gives the same bytes.
        assert_eq!(encode_checked(&again), ours, "{}", v.name);
        if let Some(reencoded) = &v.reencoded {
            with_wrp_c_reencoding += 1;
            let theirs = Message::decode(reencoded)
                .unwrap_or_else(|e| panic!("{}: wrp-c's re-encoding: {e}", v.name));
            assert_eq!(
                Plain::of(&theirs),
                expected,
                "{}: wrp-c's re-encoding",
                v.name
            );
            assert_eq!(theirs, m, "{}", v.name);
        }
    }
    // test_03, test_11 and test_12 carry wrp-c's re-encoded bytes.
    assert_eq!(with_wrp_c_reencoding, 3);
}

#[cfg(feature = "alloc")]
#[test]
fn owned_message_round_trips_msgpack() {
    use wrp_nostd::OwnedMessage;
    for v in valid_vectors() {
        let expected = Plain::from_expect(v.expect.as_ref().expect("expect")).to_owned_message();
        let owned = OwnedMessage::decode(&v.bytes).expect("decodes");
        assert_eq!(owned, expected, "{}", v.name);
        let m = Message::decode(&v.bytes).expect("decodes");
        assert_eq!(OwnedMessage::from(&m), owned, "{}", v.name);
        let bytes = owned.to_msgpack().expect("encodes");
        assert_eq!(bytes, encode_checked(&owned.as_message()), "{}", v.name);
        assert_eq!(
            OwnedMessage::decode(&bytes).expect("decodes"),
            owned,
            "{}",
            v.name
        );
    }
}

#[cfg(feature = "json")]
#[test]
fn owned_message_round_trips_json() {
    use wrp_nostd::OwnedMessage;
    for v in valid_vectors() {
        let expect = v.expect.as_ref().expect("expect");
        let owned = OwnedMessage::decode(&v.bytes).expect("decodes");
        let json = owned.to_json();
        assert_eq!(
            OwnedMessage::from_json(&json).expect("our JSON parses"),
            owned,
            "{}",
            v.name
        );
        // The JSON form has the vector's own keys and values (payload as base64), plus qos,
        // which is always written; spans are strings in the owned form.
        let mut want = serde_json::Value::Object(expect.clone());
        want["qos"] = 0.into();
        if let Some(spans) = want.get_mut("spans").and_then(|s| s.as_array_mut()) {
            for span in spans {
                for field in span.as_array_mut().expect("a span is an array") {
                    if field.is_number() {
                        *field = field.to_string().into();
                    }
                }
            }
        }
        let got: serde_json::Value = serde_json::from_slice(&json).expect("JSON");
        assert_eq!(got, want, "{}", v.name);
    }
}

#[cfg(feature = "http")]
#[test]
fn owned_message_round_trips_headers() {
    use wrp_nostd::http::{from_headers, to_header_map, DEFAULT_CONTENT_TYPE};
    use wrp_nostd::OwnedMessage;
    for v in valid_vectors() {
        let m = Message::decode(&v.bytes).expect("decodes");
        let headers = to_header_map(&m).expect("header-safe text");
        let back = from_headers(&headers, m.payload).expect("reads back");
        // The header form has no msg_id, and gives a non-empty body a content type.
        let mut want = OwnedMessage::from(&m);
        want.msg_id.clear();
        if want.content_type.is_empty() && !want.payload.is_empty() {
            want.content_type = DEFAULT_CONTENT_TYPE.into();
        }
        assert_eq!(back, want, "{}", v.name);
    }
}
