//! Property tests: generated messages of every type with every field survive msgpack (borrowed
//! and owned), JSON and the header form; arbitrary and mutated bytes never make decode panic.
//! Case counts keep the whole suite within seconds in a debug build.

mod common;

use common::{check_decode, encode_checked, Plain, PlainField};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use wrp_nostd::{Message, MessageType};

fn msg_type() -> impl Strategy<Value = i64> {
    prop::sample::select(MessageType::ALL.map(MessageType::as_i64).to_vec())
}

fn span_field(text: BoxedStrategy<String>) -> impl Strategy<Value = PlainField> {
    prop_oneof![
        text.prop_map(PlainField::Str),
        any::<i64>().prop_map(PlainField::Int)
    ]
}

/// Text strategies for the string fields, list items, metadata keys and values, and span fields,
/// and how many fields a span has.
struct Texts {
    scalar: BoxedStrategy<String>,
    item: BoxedStrategy<String>,
    key: BoxedStrategy<String>,
    value: BoxedStrategy<String>,
    span_len: std::ops::Range<usize>,
    span_field: BoxedStrategy<PlainField>,
}

/// Every field of every type, from the given text strategies.
fn plain_message(t: Texts) -> impl Strategy<Value = Plain> {
    let s = || t.scalar.clone();
    (
        (msg_type(), s(), s(), s(), s(), s()),
        (
            option::of(any::<i64>()),
            option::of(any::<i64>()),
            any::<i64>(),
        ),
        (
            vec(t.item.clone(), 0..4),
            vec((t.key.clone(), t.value.clone()), 0..4),
            vec(t.item.clone(), 0..4),
            vec(vec(t.span_field.clone(), t.span_len.clone()), 0..3),
        ),
        (
            s(),
            s(),
            s(),
            s(),
            s(),
            vec(any::<u8>(), 0..48),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (msg_type, source, dest, transaction_uuid, content_type, accept),
                (status, rdr, qos),
                (headers, mut metadata, partner_ids, spans),
                (path, service_name, url, session_id, msg_id, payload, include_spans),
            )| {
                // Plain keeps metadata sorted, as `Plain::of` reads it.
                metadata.sort();
                Plain {
                    msg_type,
                    source,
                    dest,
                    transaction_uuid,
                    content_type,
                    accept,
                    status,
                    rdr,
                    headers,
                    metadata,
                    path,
                    payload,
                    service_name,
                    url,
                    partner_ids,
                    session_id,
                    qos,
                    msg_id,
                    spans,
                    include_spans,
                }
            },
        )
}

/// Any text at all (short: generating long strings is what costs time in a debug build), and
/// spans of any length with integer or string fields.
fn any_message() -> impl Strategy<Value = Plain> {
    let text = || {
        vec(any::<char>(), 0..16)
            .prop_map(String::from_iter)
            .boxed()
    };
    plain_message(Texts {
        scalar: text(),
        item: text(),
        key: text(),
        value: text(),
        span_len: 0..4,
        span_field: span_field(text()).boxed(),
    })
}

/// What the header form can carry: no control characters, no surrounding white space, no commas
/// in list items, metadata or span fields, no '=' in metadata keys, non-empty list items and
/// spans of exactly 3 fields. Non-ASCII letters are fine (header obs-text).
#[cfg(feature = "http")]
fn header_safe_message() -> impl Strategy<Value = Plain> {
    const NO_COMMA: &str = r"[!-+\--~\u{a1}-\u{24f}\u{4e00}-\u{4e10}\u{1f600}-\u{1f610}]";
    const ANY: &str = r"[!-~\u{a1}-\u{24f}\u{4e00}-\u{4e10}\u{1f600}-\u{1f610}]";
    const NO_COMMA_OR_EQUALS: &str = r"[!-+\--<>-~\u{a1}-\u{24f}]";
    // One character, or text with inner spaces between two non-space characters.
    let word = |class: &str| format!("{class}(({class}| ){{0,10}}{class})?");
    let optional = |class: &str| format!("({})?", word(class));
    let regex = |re: String| proptest::string::string_regex(&re).expect("regex").boxed();
    plain_message(Texts {
        scalar: regex(optional(ANY)),
        item: regex(word(NO_COMMA)),
        key: regex(optional(NO_COMMA_OR_EQUALS)),
        value: regex(optional(NO_COMMA)),
        span_len: 3..4,
        span_field: span_field(regex(optional(NO_COMMA))).boxed(),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn borrowed_messages_round_trip_msgpack(p in any_message()) {
        // encode_checked checks the length contract, the short buffer and the decoded fields.
        let bytes = p.with_message(|m| encode_checked(&m));
        let back = Message::decode(&bytes).expect("decodes");
        prop_assert_eq!(Plain::of(&back), p);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in vec(any::<u8>(), 0..256)) {
        check_decode(&bytes);
    }

    /// Starts with a map header so the decoder gets past the first byte more often.
    #[test]
    fn decoding_arbitrary_maps_never_panics(
        header in 0x80u8..=0x8f,
        bytes in vec(any::<u8>(), 0..256),
    ) {
        check_decode(&[&[header][..], &bytes].concat());
    }
}

/// A corruption of valid bytes: overwritten bytes, then a truncation or an insertion.
#[derive(Debug, Clone)]
struct Mutation {
    writes: Vec<(prop::sample::Index, u8)>,
    cut: Option<prop::sample::Index>,
    insert: Option<(prop::sample::Index, Vec<u8>)>,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    (
        vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        option::of(any::<prop::sample::Index>()),
        option::of((any::<prop::sample::Index>(), vec(any::<u8>(), 1..8))),
    )
        .prop_map(|(writes, cut, insert)| Mutation {
            writes,
            cut,
            insert,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn decoding_mutated_messages_never_panics(p in any_message(), change in mutation()) {
        let mut bytes = p.with_message(|m| encode_checked(&m));
        for (at, byte) in &change.writes {
            let i = at.index(bytes.len());
            bytes[i] = *byte;
        }
        if let Some(cut) = change.cut {
            bytes.truncate(cut.index(bytes.len()));
        }
        if let Some((at, extra)) = &change.insert {
            let i = at.index(bytes.len() + 1);
            bytes.splice(i..i, extra.iter().copied());
        }
        check_decode(&bytes);
    }
}

#[cfg(feature = "alloc")]
proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn owned_messages_round_trip_msgpack(p in any_message()) {
        let owned = p.to_owned_message();
        let bytes = owned.to_msgpack().expect("encodes");
        prop_assert_eq!(&bytes, &encode_checked(&owned.as_message()));
        prop_assert_eq!(&wrp_nostd::OwnedMessage::decode(&bytes).expect("decodes"), &owned);
        prop_assert_eq!(wrp_nostd::OwnedMessage::from(&owned.as_message()), owned);
    }
}

#[cfg(feature = "json")]
proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn owned_messages_round_trip_json(p in any_message()) {
        let owned = p.to_owned_message();
        let json = owned.to_json();
        prop_assert_eq!(wrp_nostd::OwnedMessage::from_json(&json).expect("parses"), owned);
    }
}

#[cfg(feature = "http")]
proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn header_safe_messages_round_trip_the_header_form(mut p in header_safe_message()) {
        use wrp_nostd::http::{from_headers, to_header_map, DEFAULT_CONTENT_TYPE};
        // The header form has no msg_id.
        p.msg_id.clear();
        let (headers, mut want) = p.with_message(|m| {
            (to_header_map(&m).expect("header-safe"), wrp_nostd::OwnedMessage::from(&m))
        });
        if want.content_type.is_empty() && !want.payload.is_empty() {
            want.content_type = DEFAULT_CONTENT_TYPE.into();
        }
        prop_assert_eq!(from_headers(&headers, &p.payload).expect("reads back"), want);
    }
}
