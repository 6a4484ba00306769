//! Cloud → device: routing by service, the 531/403/400 answers of client-spec §5.2, partner
//! rules (§5.3), and the `parodus` CRUD service (§6.1).

mod common;

use common::{decode, encode, metadata_entries, raw_keys, request, Act, Sim, DEVICE};
use wrp_nostd::{Message, MessageType, OwnedMessage};
use xmidt_client_core::{Config, Downstream, Dropped, TagOp};

fn online(config: Config<'static>) -> Sim {
    let mut sim = Sim::new(config, 5);
    sim.online();
    sim
}

fn no_token() -> Config<'static> {
    Config {
        token_server_url: "",
        ..common::config()
    }
}

/// The one frame the client sent in answer.
fn answer(sim: &mut Sim) -> Vec<u8> {
    let sent = Sim::sent(&sim.pump());
    assert_eq!(sent.len(), 1, "one answer");
    sent.into_iter().next().unwrap_or_default()
}

const METADATA: [(&str, &str); 12] = [
    ("hw-model", "TG1682"),
    ("hw-serial-number", "SER123456"),
    ("hw-manufacturer", "ARRIS"),
    ("hw-mac", "112233445566"),
    ("hw-last-reboot-reason", "unknown"),
    ("fw-name", "TG1682_DEV_test"),
    ("boot-time", "1700000000"),
    ("webpa-last-reconnect-reason", "webpa_process_starts"),
    ("webpa-protocol", "PARODUS-2.0-2.0.0-173-g9326f2c"),
    ("webpa-uuid", "1234567-345456546"),
    ("webpa-interface-used", "lo"),
    ("partner-id", "comcast,cox"),
];

fn assert_device_metadata(frame: &[u8]) {
    let expected: Vec<(String, String)> = METADATA
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(metadata_entries(frame), expected);
    let keys = raw_keys(frame);
    assert_eq!(keys.iter().filter(|k| *k == "metadata").count(), 1);
}

#[test]
fn unknown_service_gets_parodus_531() {
    let mut sim = online(no_token());
    let req = encode(&request(&format!("{DEVICE}/nosuchsvc"), "t-unreg"));
    assert_eq!(sim.frame(&req), Downstream::Answered { status: 531 });
    let frame = answer(&mut sim);
    let m = Message::decode(&frame).expect("WRP");
    assert_eq!(m.msg_type, MessageType::SimpleRequestResponse);
    assert_eq!(m.source, "mac:112233445566/nosuchsvc");
    assert_eq!(m.dest, "dns:talaria");
    assert_eq!(m.transaction_uuid, "t-unreg");
    assert_eq!(
        m.payload,
        br#"{"statusCode":531,"message":"Service Unavailable"}"#
    );
    assert_eq!(m.status, None, "parodus does not set status");
    assert_eq!(m.rdr, None);
    assert_eq!(m.content_type, "");
    assert!(m.partner_ids.is_empty());
    assert_device_metadata(&frame);
    assert_eq!(sim.client.stats().answered_531, 1);

    // CRUD types get it too, with the path copied and the same type.
    let crud = OwnedMessage::builder(MessageType::Retrieve)
        .source("dns:tr1d1um")
        .dest(format!("{DEVICE}/nosuchsvc"))
        .transaction_uuid("t-crud")
        .path("a/b")
        .build();
    let bytes = encode(&crud);
    assert_eq!(sim.frame(&bytes), Downstream::Answered { status: 531 });
    let m = decode(&answer(&mut sim));
    assert_eq!(m.msg_type, MessageType::Retrieve);
    assert_eq!(m.path, "a/b");
    assert_eq!(m.status, None);

    // Events to unknown services are dropped and counted.
    let event = OwnedMessage::builder(MessageType::SimpleEvent)
        .source("dns:x")
        .dest(format!("{DEVICE}/nosuchsvc"))
        .build();
    let bytes = encode(&event);
    assert_eq!(
        sim.frame(&bytes),
        Downstream::Dropped(Dropped::UnknownService)
    );
    assert!(sim.pump().is_empty());
    assert_eq!(sim.client.stats().events_dropped, 1);
}

#[test]
fn partner_mismatch_gets_parodus_403() {
    let mut sim = online(no_token());
    sim.client.register_service("config").expect("registered");
    let req = OwnedMessage {
        partner_ids: vec!["charter".into()],
        ..request(&format!("{DEVICE}/config"), "t-partner")
    };
    let bytes = encode(&req);
    assert_eq!(sim.frame(&bytes), Downstream::Answered { status: 403 });
    let frame = answer(&mut sim);
    let m = Message::decode(&frame).expect("WRP");
    assert_eq!(m.msg_type, MessageType::SimpleRequestResponse);
    assert_eq!(m.source, "mac:112233445566/config");
    assert_eq!(m.dest, "dns:talaria");
    assert_eq!(m.transaction_uuid, "t-partner");
    assert_eq!(
        m.payload,
        br#"{"statusCode":403,"message":"Invalid partner_id"}"#
    );
    assert_eq!(m.status, None);
    assert_eq!(m.content_type, "");
    assert_device_metadata(&frame);
    assert_eq!(sim.client.stats().answered_403, 1);

    // A match (any case), or no partner ids on the request: delivered.
    for partners in [vec!["x".to_string(), "COX".into()], vec![]] {
        let req = OwnedMessage {
            partner_ids: partners,
            ..request(&format!("{DEVICE}/config"), "t")
        };
        let bytes = encode(&req);
        assert!(matches!(
            sim.frame(&bytes),
            Downstream::Deliver {
                service: "config",
                ..
            }
        ));
    }
    // Events are delivered whatever their partner ids, and without any (parodus crashed).
    for partners in [vec!["charter".to_string()], vec![]] {
        let event = OwnedMessage::builder(MessageType::SimpleEvent)
            .source("dns:x")
            .dest(format!("{DEVICE}/config"))
            .build();
        let bytes = encode(&OwnedMessage {
            partner_ids: partners,
            ..event
        });
        assert!(matches!(
            sim.frame(&bytes),
            Downstream::Deliver {
                service: "config",
                ..
            }
        ));
    }
    // CRUD has no partner check.
    let crud = OwnedMessage::builder(MessageType::Retrieve)
        .source("dns:x")
        .dest(format!("{DEVICE}/config/a"))
        .transaction_uuid("t")
        .partner_id("charter")
        .build();
    let bytes = encode(&crud);
    assert!(matches!(sim.frame(&bytes), Downstream::Deliver { .. }));
    assert!(sim.pump().is_empty());
}

#[test]
fn a_device_without_partner_ids_filters_nothing() {
    let mut sim = online(Config {
        partner_ids: "",
        ..no_token()
    });
    sim.client.register_service("config").expect("registered");
    let req = OwnedMessage {
        partner_ids: vec!["charter".into()],
        ..request(&format!("{DEVICE}/config"), "t")
    };
    let bytes = encode(&req);
    assert!(matches!(sim.frame(&bytes), Downstream::Deliver { .. }));
}

#[test]
fn routing_by_the_second_segment_delivers_the_original_bytes() {
    let mut sim = online(no_token());
    sim.client.register_service("config").expect("registered");
    sim.client
        .register_service("abcdefghijklmnopqrstuvwxyz01234")
        .expect("31 bytes");
    for dest in [
        "mac:112233445566/config",
        "mac:112233445566/config/some/path",
        "MAC:11-22-33-44-55-66/config",
        "self:/config",
    ] {
        let bytes = encode(&request(dest, "t"));
        match sim.frame(&bytes) {
            Downstream::Deliver { service, message } => {
                assert_eq!(service, "config");
                assert_eq!(message, bytes.as_slice());
            }
            other => panic!("{dest}: {other:?}"),
        }
    }
    // parodus cuts the service to 31 bytes.
    let bytes = encode(&request(
        "mac:112233445566/abcdefghijklmnopqrstuvwxyz0123456789",
        "t",
    ));
    assert!(matches!(
        sim.frame(&bytes),
        Downstream::Deliver {
            service: "abcdefghijklmnopqrstuvwxyz01234",
            ..
        }
    ));
    // Another device's messages are not ours (parodus routed them anyway).
    let bytes = encode(&request("mac:665544332211/config", "t"));
    assert_eq!(
        sim.frame(&bytes),
        Downstream::Dropped(Dropped::NotForThisDevice)
    );
    assert_eq!(sim.client.stats().not_for_this_device, 1);
    // After unregistering, the service is unknown: 531.
    assert!(sim.client.unregister_service("config"));
    assert!(!sim.client.unregister_service("config"));
    let bytes = encode(&request("mac:112233445566/config", "t"));
    assert_eq!(sim.frame(&bytes), Downstream::Answered { status: 531 });
}

#[test]
fn types_the_cloud_may_not_send_and_garbage_are_dropped() {
    let mut sim = online(no_token());
    for t in [
        MessageType::Authorization,
        MessageType::ServiceRegistration,
        MessageType::ServiceAlive,
        MessageType::Unknown,
    ] {
        let m = OwnedMessage::builder(t)
            .dest(format!("{DEVICE}/x"))
            .status(200)
            .build();
        let bytes = encode(&m);
        assert_eq!(sim.frame(&bytes), Downstream::Dropped(Dropped::Ignored(t)));
    }
    assert!(matches!(
        sim.frame(b"\x81\xa8msg_type\x63"),
        Downstream::Dropped(Dropped::Undecodable(_))
    ));
    assert!(matches!(
        sim.frame(b"not msgpack"),
        Downstream::Dropped(Dropped::Undecodable(_))
    ));
    assert_eq!(sim.client.stats().undecodable, 2);
    assert!(sim.pump().is_empty());
}

fn retrieve(sim: &mut Sim, key: &str) -> (Downstream<'static>, OwnedMessage, Vec<u8>) {
    let m = OwnedMessage::builder(MessageType::Retrieve)
        .source("dns:tr1d1um/api")
        .dest(format!("{DEVICE}/parodus/{key}"))
        .transaction_uuid(format!("t-{key}"))
        .build();
    let bytes: &'static [u8] = Box::leak(encode(&m).into_boxed_slice());
    let outcome = sim.frame(bytes);
    let frame = answer(sim);
    let reply = decode(&frame);
    assert_eq!(reply.msg_type, MessageType::Retrieve);
    assert_eq!(reply.source, format!("{DEVICE}/parodus/{key}"));
    assert_eq!(reply.dest, "dns:tr1d1um/api");
    assert_eq!(reply.transaction_uuid, format!("t-{key}"));
    (outcome, reply, frame)
}

#[test]
fn crud_retrieve_device_keys() {
    let mut sim = online(Config {
        cloud_url: "http://petasos.example.com:6400",
        ..no_token()
    });
    sim.client.register_service("iot").expect("registered");
    let cases = [
        ("hw-model", r#"{"hw-model":"TG1682"}"#),
        ("hw-serial-number", r#"{"hw-serial-number":"SER123456"}"#),
        ("hw-manufacturer", r#"{"hw-manufacturer":"ARRIS"}"#),
        ("hw-mac", r#"{"hw-mac":"112233445566"}"#),
        (
            "hw-last-reboot-reason",
            r#"{"hw-last-reboot-reason":"unknown"}"#,
        ),
        ("fw-name", r#"{"fw-name":"TG1682_DEV_test"}"#),
        ("webpa-interface-used", r#"{"webpa-interface-used":"lo"}"#),
        (
            "webpa-interface-label",
            r#"{"webpa-interface-label":"wan"}"#,
        ),
        ("wan-ipv4-address", r#"{"wan-ipv4-address":"192.0.2.10"}"#),
        (
            "webpa-url",
            r#"{"webpa-url":"http://petasos.example.com:6400"}"#,
        ),
        (
            "webpa-protocol",
            r#"{"webpa-protocol":"PARODUS-2.0-2.0.0-173-g9326f2c"}"#,
        ),
        ("webpa-uuid", r#"{"webpa-uuid":"1234567-345456546"}"#),
        ("cloud-status", r#"{"cloud-status":"online"}"#),
        ("boot-time", r#"{"boot-time":1700000000}"#),
        ("webpa-ping-timeout", r#"{"webpa-ping-timeout":180}"#),
        ("webpa-backoff-max", r#"{"webpa-backoff-max":9}"#),
        ("service-status/iot", r#"{"service-status":"online"}"#),
        ("service-status/other", r#"{"service-status":"offline"}"#),
    ];
    for (key, payload) in cases {
        let (outcome, reply, frame) = retrieve(&mut sim, key);
        assert_device_metadata(&frame);
        assert_eq!(outcome, Downstream::Answered { status: 200 }, "{key}");
        assert_eq!(reply.status, Some(200), "{key}");
        assert_eq!(reply.rdr, Some(0), "{key}");
        assert_eq!(String::from_utf8_lossy(&reply.payload), payload, "{key}");
    }
    for key in [
        "no-such-key",
        "hw-model/extra",
        "service-status",
        "service-status/a/b",
    ] {
        let (outcome, reply, _) = retrieve(&mut sim, key);
        assert_eq!(outcome, Downstream::Answered { status: 400 }, "{key}");
        assert_eq!(reply.status, Some(400));
        assert!(reply.payload.is_empty(), "400 has no payload");
    }
}

#[test]
fn crud_empty_values_are_400_like_parodus() {
    let mut sim = online(Config {
        hw_model: "",
        wan_ipv4_address: "",
        interface_used: "",
        ..no_token()
    });
    // parodus tested fw-name's emptiness for webpa-interface-used; this tests the value itself.
    for key in ["hw-model", "wan-ipv4-address", "webpa-interface-used"] {
        let (outcome, reply, _) = retrieve(&mut sim, key);
        assert_eq!(outcome, Downstream::Answered { status: 400 }, "{key}");
        assert_eq!(reply.status, Some(400));
    }
}

#[test]
fn crud_requests_that_cannot_be_answered_properly() {
    let mut sim = online(no_token());
    // No transaction_uuid: parodus's generic 400 (the §5.2 shape, no status).
    let m = OwnedMessage::builder(MessageType::Retrieve)
        .source("dns:x")
        .dest(format!("{DEVICE}/parodus/hw-model"))
        .build();
    let bytes = encode(&m);
    assert_eq!(sim.frame(&bytes), Downstream::Answered { status: 400 });
    let reply = decode(&answer(&mut sim));
    assert_eq!(reply.status, None);
    assert_eq!(
        reply.payload,
        br#"{"statusCode":400,"message":"Invalid Request"}"#
    );
    // No source: nobody to answer.
    let m = OwnedMessage::builder(MessageType::Retrieve)
        .dest(format!("{DEVICE}/parodus/hw-model"))
        .transaction_uuid("t")
        .build();
    let bytes = encode(&m);
    assert_eq!(sim.frame(&bytes), Downstream::Dropped(Dropped::NoSource));
    // A plain request to the parodus service: a CRUD-shaped 400.
    let bytes = encode(&request(&format!("{DEVICE}/parodus/hw-model"), "t-req"));
    assert_eq!(sim.frame(&bytes), Downstream::Answered { status: 400 });
    let reply = decode(&answer(&mut sim));
    assert_eq!(
        (reply.msg_type, reply.status),
        (MessageType::SimpleRequestResponse, Some(400))
    );
    // An event to it is dropped like any event for an unknown service.
    let event = OwnedMessage::builder(MessageType::SimpleEvent)
        .source("dns:x")
        .dest(format!("{DEVICE}/parodus/hw-model"))
        .build();
    let bytes = encode(&event);
    assert_eq!(
        sim.frame(&bytes),
        Downstream::Dropped(Dropped::UnknownService)
    );
    // Writes to device keys are 400.
    for t in [
        MessageType::Create,
        MessageType::Update,
        MessageType::Delete,
    ] {
        let m = OwnedMessage::builder(t)
            .source("dns:x")
            .dest(format!("{DEVICE}/parodus/hw-model"))
            .transaction_uuid("t")
            .payload(b"{}".to_vec())
            .build();
        let bytes = encode(&m);
        assert_eq!(
            sim.frame(&bytes),
            Downstream::Answered { status: 400 },
            "{t:?}"
        );
        let reply = decode(&answer(&mut sim));
        assert_eq!((reply.msg_type, reply.status), (t, Some(400)));
    }
}

#[test]
fn tags_go_to_the_driver_and_its_answer_goes_back() {
    let mut sim = online(no_token());
    let create = OwnedMessage::builder(MessageType::Create)
        .source("dns:tr1d1um")
        .dest(format!("{DEVICE}/parodus/tag/test1"))
        .transaction_uuid("t-tag")
        .payload(br#"{"expires":3600}"#.to_vec())
        .build();
    let bytes = encode(&create);
    let conn = sim.conn.expect("online");
    let outcome = sim.client.handle_frame(sim.now, conn, &bytes).expect("ok");
    let Downstream::Tag(tag) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(tag.op, TagOp::Create);
    assert_eq!(tag.name, Some("test1"));
    assert_eq!(tag.payload, br#"{"expires":3600}"#);
    sim.client
        .answer_tag(&tag, 201, br#"{"test1":{"expires":3600}}"#)
        .expect("answered");
    let frame = answer(&mut sim);
    let reply = decode(&frame);
    assert_eq!(reply.msg_type, MessageType::Create);
    assert_eq!(reply.status, Some(201));
    assert_eq!(reply.rdr, Some(0));
    assert_eq!(reply.source, format!("{DEVICE}/parodus/tag/test1"));
    assert_eq!(reply.dest, "dns:tr1d1um");
    assert_eq!(reply.transaction_uuid, "t-tag");
    assert_eq!(reply.payload, br#"{"test1":{"expires":3600}}"#);
    assert_device_metadata(&frame);

    for (t, dest, op, name) in [
        (MessageType::Retrieve, "parodus/tags", TagOp::Retrieve, None),
        (
            MessageType::Retrieve,
            "parodus/tags/test1",
            TagOp::Retrieve,
            Some("test1"),
        ),
        (
            MessageType::Update,
            "parodus/tags/test1",
            TagOp::Update,
            Some("test1"),
        ),
        (
            MessageType::Delete,
            "parodus/tag/test1",
            TagOp::Delete,
            Some("test1"),
        ),
    ] {
        let m = OwnedMessage::builder(t)
            .source("dns:x")
            .dest(format!("{DEVICE}/{dest}"))
            .transaction_uuid("t")
            .build();
        let bytes = encode(&m);
        match sim.frame(&bytes) {
            Downstream::Tag(tag) => assert_eq!((tag.op, tag.name), (op, name), "{dest}"),
            other => panic!("{dest}: {other:?}"),
        }
    }
    // Create/update/delete need a name.
    let m = OwnedMessage::builder(MessageType::Create)
        .source("dns:x")
        .dest(format!("{DEVICE}/parodus/tag"))
        .transaction_uuid("t")
        .build();
    let bytes = encode(&m);
    assert_eq!(sim.frame(&bytes), Downstream::Answered { status: 400 });
    sim.pump();

    // An answer for a connection that is gone is refused.
    sim.client
        .handle_closed(sim.now, conn, Some(1001))
        .expect("ok");
    assert_eq!(
        sim.client.answer_tag(&tag, 201, b"{}"),
        Err(xmidt_client_core::Error::Offline)
    );
}

#[test]
fn answers_made_for_a_closed_connection_are_not_sent_on_the_next() {
    let mut sim = online(no_token());
    let conn = sim.conn.expect("online");
    let req = encode(&request(&format!("{DEVICE}/nosuch"), "t"));
    assert_eq!(sim.frame(&req), Downstream::Answered { status: 531 });
    // The connection drops before the driver took the answer.
    sim.client.handle_closed(sim.now, conn, None).expect("ok");
    let acts = sim.pump();
    assert!(acts.iter().all(|a| !matches!(a, Act::Send(_))), "{acts:?}");
    assert_eq!(sim.client.stats().stale_frames, 1);
}
