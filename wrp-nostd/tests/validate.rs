//! `validate()` against the table in cloud-spec §2.3: for every message type and every row, a
//! message that keeps the rule passes and one that breaks it fails with the field named.

use wrp_nostd::{validate, LocatorError, Message, MessageType, Metadata, StrList, ValidationError};

#[derive(Clone, Copy, PartialEq, Debug)]
enum Rule {
    Required,
    Optional,
    Absent,
}
use Rule::{Absent as A, Optional as O, Required as R};

/// §2.3, written out again here (not derived from the crate) so the test checks the code against
/// the spec. Columns: 2 Auth, 3 SRR, 4 Event, 5-8 CRUD, 9 SvcReg, 10/11.
const TABLE: [(&str, [Rule; 6]); 16] = [
    ("source", [A, R, R, R, A, A]),
    ("dest", [A, R, R, R, A, A]),
    ("transaction_uuid", [A, R, O, R, A, A]),
    ("content_type", [A, O, O, O, A, A]),
    ("headers", [A, O, O, O, A, A]),
    ("metadata", [A, O, O, O, A, A]),
    ("payload", [A, O, O, O, A, A]),
    ("partner_ids", [A, O, O, O, A, A]),
    ("session_id", [A, O, O, O, A, A]),
    ("qos", [A, O, O, O, A, A]),
    ("rdr", [A, O, O, O, A, A]),
    ("accept", [A, O, A, O, A, A]),
    ("status", [R, O, A, O, A, A]),
    ("path", [A, A, A, O, A, A]),
    ("service_name", [A, A, A, A, R, A]),
    ("url", [A, A, A, A, R, A]),
];

fn column(t: MessageType) -> usize {
    match t.as_i64() {
        2 => 0,
        3 => 1,
        4 => 2,
        5..=8 => 3,
        9 => 4,
        _ => 5,
    }
}

fn rule(t: MessageType, field: &str) -> Rule {
    let (_, rules) = TABLE
        .iter()
        .find(|(f, _)| *f == field)
        .unwrap_or_else(|| panic!("no row {field}"));
    rules[column(t)]
}

const HEADERS: [&str; 1] = ["traceparent: 00-1"];
const PARTNERS: [&str; 1] = ["comcast"];
const METADATA: [(&str, &str); 1] = [("/hw-model", "x")];

/// Sets `field` to a valid value, or clears it.
fn set(m: &mut Message<'static>, field: &str, present: bool) {
    let s = |v: &'static str| if present { v } else { "" };
    match field {
        "source" => m.source = s("dns:talaria.example.com"),
        "dest" => m.dest = s("mac:112233445566/config"),
        "transaction_uuid" => m.transaction_uuid = s("t-1"),
        "content_type" => m.content_type = s("application/json"),
        "accept" => m.accept = s("application/json"),
        "status" => m.status = present.then_some(200),
        "rdr" => m.rdr = present.then_some(0),
        "headers" => m.headers = StrList::from_strs(if present { &HEADERS } else { &[] }),
        "metadata" => m.metadata = Metadata::from_pairs(if present { &METADATA } else { &[] }),
        "path" => m.path = s("/config"),
        "payload" => m.payload = if present { b"{}" } else { b"" },
        "service_name" => m.service_name = s("config"),
        "url" => m.url = s("http://svc.example.com"),
        "partner_ids" => m.partner_ids = StrList::from_strs(if present { &PARTNERS } else { &[] }),
        "session_id" => m.session_id = s("s-1"),
        "qos" => m.qos = if present { 50 } else { 0 },
        other => panic!("no field {other}"),
    }
}

/// The smallest valid message of type `t`: its required fields and nothing else.
fn minimal(t: MessageType) -> Message<'static> {
    let mut m = Message::new(t);
    for (field, _) in TABLE {
        set(&mut m, field, rule(t, field) == R);
    }
    m
}

#[test]
fn every_type_accepts_its_minimal_and_its_fullest_message() {
    for t in MessageType::ALL {
        let mut m = minimal(t);
        assert_eq!(validate(&m), Ok(()), "{t}: minimal");
        for (field, _) in TABLE {
            if rule(t, field) != A {
                set(&mut m, field, true);
            }
        }
        assert_eq!(validate(&m), Ok(()), "{t}: every allowed field");
    }
}

#[test]
fn every_row_for_every_type() {
    for t in MessageType::ALL {
        for (field, _) in TABLE {
            let mut m = minimal(t);
            match rule(t, field) {
                R => {
                    set(&mut m, field, false);
                    assert_eq!(
                        validate(&m),
                        Err(ValidationError::Missing(field)),
                        "{t}: {field} missing"
                    );
                }
                O => {
                    set(&mut m, field, true);
                    assert_eq!(validate(&m), Ok(()), "{t}: {field} present");
                    set(&mut m, field, false);
                    assert_eq!(validate(&m), Ok(()), "{t}: {field} absent");
                }
                A => {
                    set(&mut m, field, true);
                    assert_eq!(
                        validate(&m),
                        Err(ValidationError::NotAllowed(field)),
                        "{t}: {field} present"
                    );
                }
            }
        }
    }
}

#[test]
fn qos_must_be_within_0_to_99() {
    for t in MessageType::ALL.into_iter().filter(|t| t.is_routable()) {
        for (qos, ok) in [(0, true), (1, true), (99, true), (100, false), (-1, false)] {
            let m = Message { qos, ..minimal(t) };
            let want = if ok {
                Ok(())
            } else {
                Err(ValidationError::QosOutOfRange(qos))
            };
            assert_eq!(validate(&m), want, "{t}: qos {qos}");
        }
    }
}

#[test]
fn source_and_dest_must_be_locators() {
    for t in MessageType::ALL.into_iter().filter(|t| t.is_routable()) {
        let cases = [
            ("source", "not-a-locator", LocatorError::UnknownScheme),
            ("source", "dns:", LocatorError::EmptyAuthority),
            ("dest", "mac:1122334455", LocatorError::InvalidMac),
            ("dest", "self:device", LocatorError::SelfWithAuthority),
        ];
        for (field, value, err) in cases {
            let mut m = minimal(t);
            if field == "source" {
                m.source = value;
            } else {
                m.dest = value;
            }
            assert_eq!(
                validate(&m),
                Err(ValidationError::BadLocator(field, err)),
                "{t}: {field} = {value}"
            );
        }
        // Any scheme's locator is fine, including event: and self:.
        let m = Message {
            source: "self:/parodus",
            dest: "event:device-status/mac:112233445566/online",
            ..minimal(t)
        };
        assert_eq!(validate(&m), Ok(()), "{t}");
    }
}

#[test]
fn service_name_must_not_contain_a_slash() {
    let m = Message {
        service_name: "config/x",
        ..minimal(MessageType::ServiceRegistration)
    };
    assert_eq!(validate(&m), Err(ValidationError::SlashInServiceName));
}

#[test]
fn validation_errors_name_the_field() {
    for (err, needle) in [
        (ValidationError::Missing("source"), "source"),
        (ValidationError::NotAllowed("path"), "path"),
        (
            ValidationError::BadLocator("dest", LocatorError::InvalidMac),
            "dest",
        ),
        (ValidationError::QosOutOfRange(100), "100"),
        (ValidationError::SlashInServiceName, "service_name"),
    ] {
        assert!(err.to_string().contains(needle), "{err:?}");
    }
}
