//! Local services → cloud (client-spec §5.3-5.5, §7.2-7.3): registration, service-alive,
//! partner processing of events with every field kept, metadata merged into one map of any
//! width, local loopback and the local `parodus` service, offline drops.

mod common;

use std::time::Duration;

use common::{decode, encode, metadata_entries, raw_keys, Act, Sim, DEVICE};
use wrp_nostd::{Message, MessageType, OwnedMessage};
use xmidt_client_core::{Config, Dropped, Error, Upstream, AUTH_OK, SERVICE_ALIVE};

fn no_token() -> Config<'static> {
    Config {
        token_server_url: "",
        ..common::config()
    }
}

fn online(config: Config<'static>) -> Sim {
    let mut sim = Sim::new(config, 11);
    sim.online();
    sim
}

fn registration(service: &str, url: &str) -> Vec<u8> {
    encode(
        &OwnedMessage::builder(MessageType::ServiceRegistration)
            .service_name(service)
            .url(url)
            .build(),
    )
}

fn event() -> OwnedMessage {
    OwnedMessage::builder(MessageType::SimpleEvent)
        .source(format!("{DEVICE}/config"))
        .dest("event:device-status/x")
        .content_type("application/json")
        .payload(b"{}".to_vec())
        .build()
}

fn sent_one(sim: &mut Sim) -> Vec<u8> {
    let sent = Sim::sent(&sim.pump());
    assert_eq!(sent.len(), 1);
    sent.into_iter().next().unwrap_or_default()
}

#[test]
fn auth_and_alive_bytes_are_parodus_bytes() {
    // client-spec §7.2: `82 a8 "msg_type" 02 a6 "status" cc c8`.
    let mut expected = vec![0x82, 0xa8];
    expected.extend_from_slice(b"msg_type");
    expected.extend_from_slice(&[0x02, 0xa6]);
    expected.extend_from_slice(b"status");
    expected.extend_from_slice(&[0xcc, 0xc8]);
    assert_eq!(AUTH_OK.to_vec(), expected);
    let m = Message::decode(&AUTH_OK).expect("WRP");
    assert_eq!(
        (m.msg_type, m.status),
        (MessageType::Authorization, Some(200))
    );
    let m = Message::decode(&SERVICE_ALIVE).expect("WRP");
    assert_eq!(m.msg_type, MessageType::ServiceAlive);
    assert_eq!(raw_keys(&SERVICE_ALIVE), ["msg_type"]);
}

#[test]
fn registration_and_service_alive() {
    let mut sim = Sim::new(no_token(), 1);
    // Services may register before the first cloud connection (parodus made them wait).
    let reg = registration("config", "tcp://127.0.0.1:6668");
    assert_eq!(
        sim.local(&reg),
        Upstream::Register {
            service: "config",
            url: "tcp://127.0.0.1:6668"
        }
    );
    // Again, with a new url: fine, and still one entry.
    let reg = registration("config", "tcp://127.0.0.1:6669");
    assert!(matches!(
        sim.local(&reg),
        Upstream::Register {
            url: "tcp://127.0.0.1:6669",
            ..
        }
    ));
    let reg = registration("iot", "tcp://127.0.0.1:6670");
    assert!(matches!(sim.local(&reg), Upstream::Register { .. }));
    sim.online();
    // Every 30 s each service gets {msg_type: 10}.
    let start = sim.log.len();
    sim.advance(Duration::from_secs(61));
    let alive: Vec<(u64, String)> = sim.log[start..]
        .iter()
        .filter_map(|(t, a)| match a {
            Act::Deliver { service, message } if message == &SERVICE_ALIVE => {
                Some((t.as_millis(), service.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        alive,
        [
            (30_000, "config".into()),
            (30_000, "iot".into()),
            (60_000, "config".into()),
            (60_000, "iot".into())
        ]
    );
    // A dead service is removed by the driver; the others keep getting alive messages.
    assert!(sim.client.unregister_service("config"));
    let start = sim.log.len();
    sim.advance(Duration::from_secs(30));
    let services: Vec<&str> = sim.log[start..]
        .iter()
        .filter_map(|(_, a)| match a {
            Act::Deliver { service, .. } => Some(service.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(services, ["iot"]);
    // With none left, the timer stops.
    assert!(sim.client.unregister_service("iot"));
    sim.advance(Duration::from_secs(30));
    // Only the ping deadline is left (online at 0 s, no frame since).
    assert_eq!(
        sim.client.poll_timeout().map(|t| t.as_millis()),
        Some(180_000)
    );
}

#[test]
fn registration_limits() {
    let mut sim = Sim::new(no_token(), 1);
    let long_name = "n".repeat(32);
    let long_url = format!("tcp://{}", "h".repeat(94));
    for (name, url, err) in [
        ("", "tcp://x", Error::InvalidServiceName),
        (long_name.as_str(), "tcp://x", Error::InvalidServiceName),
        ("a/b", "tcp://x", Error::InvalidServiceName),
        ("parodus", "tcp://x", Error::InvalidServiceName),
        ("ok", "", Error::InvalidServiceUrl),
        ("ok", long_url.as_str(), Error::InvalidServiceUrl),
    ] {
        let reg = registration(name, url);
        assert_eq!(
            sim.client.handle_local(sim.now, &reg),
            Err(err),
            "{name} {url}"
        );
    }
    // The table holds 4 (the test client's capacity).
    for name in ["a", "b", "c", "d"] {
        sim.client.register_service(name).expect("room");
    }
    let reg = registration("e", "tcp://x");
    assert_eq!(
        sim.client.handle_local(sim.now, &reg),
        Err(Error::ServiceTableFull)
    );
    sim.client
        .register_service("a")
        .expect("known names always fit");
}

#[test]
fn ignored_types_and_garbage() {
    let mut sim = online(no_token());
    for t in [
        MessageType::ServiceAlive,
        MessageType::Authorization,
        MessageType::Unknown,
    ] {
        let bytes = encode(&OwnedMessage::builder(t).status(200).build());
        assert_eq!(sim.local(&bytes), Upstream::Dropped(Dropped::Ignored(t)));
    }
    assert!(matches!(
        sim.local(b"\xc1"),
        Upstream::Dropped(Dropped::Undecodable(_))
    ));
    assert!(sim.pump().is_empty());
}

#[test]
fn event_partner_ids_follow_parodus_and_no_field_is_lost() {
    let mut sim = online(no_token());
    let full = OwnedMessage {
        transaction_uuid: "e-1".into(),
        session_id: "s-1".into(),
        rdr: Some(0),
        qos: 10,
        headers: vec!["h: 1".into()],
        ..event()
    };
    for (partners, expected) in [
        (vec![], vec!["comcast", "cox"]),
        (vec!["Comcast".to_string()], vec![]),
        (
            vec!["charter".to_string()],
            vec!["charter", "comcast", "cox"],
        ),
    ] {
        let bytes = encode(&OwnedMessage {
            partner_ids: partners.clone(),
            ..full.clone()
        });
        assert_eq!(sim.local(&bytes), Upstream::Sent);
        let frame = sent_one(&mut sim);
        let m = decode(&frame);
        assert_eq!(m.partner_ids, expected, "{partners:?}");
        // parodus dropped these four when it re-encoded an event.
        assert_eq!(m.transaction_uuid, "e-1");
        assert_eq!(m.session_id, "s-1");
        assert_eq!(m.rdr, Some(0));
        assert_eq!(m.qos, 10);
        assert_eq!(
            (m.source.as_str(), m.dest.as_str()),
            (full.source.as_str(), full.dest.as_str())
        );
        assert_eq!(m.headers, full.headers);
        assert_eq!(m.payload, full.payload);
        assert_eq!(m.content_type, full.content_type);
        let keys = raw_keys(&frame);
        assert_eq!(
            keys.iter().filter(|k| *k == "partner_ids").count(),
            usize::from(!expected.is_empty())
        );
    }
    // Without a device list, partner ids are untouched.
    let mut sim = online(Config {
        partner_ids: "",
        ..no_token()
    });
    let bytes = encode(&OwnedMessage {
        partner_ids: vec!["charter".into()],
        ..event()
    });
    sim.local(&bytes);
    assert_eq!(decode(&sent_one(&mut sim)).partner_ids, ["charter"]);
}

#[test]
fn metadata_is_merged_into_one_map() {
    let mut sim = online(no_token());
    let mut m = event();
    m.metadata.insert("app".into(), "1".into());
    m.metadata.insert("hw-model".into(), "spoofed".into());
    let bytes = encode(&m);
    sim.local(&bytes);
    let frame = sent_one(&mut sim);
    let keys = raw_keys(&frame);
    assert_eq!(
        keys.iter().filter(|k| *k == "metadata").count(),
        1,
        "{keys:?}"
    );
    let entries = metadata_entries(&frame);
    assert_eq!(entries.len(), 13);
    assert_eq!(entries[0], ("app".to_string(), "1".to_string()));
    // The device's own keys win over a service's.
    let model: Vec<&str> = entries
        .iter()
        .filter(|(k, _)| k == "hw-model")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(model, ["TG1682"]);
}

/// A msgpack map, written by hand, so keys may repeat and widths be chosen.
fn raw_map(entries: &[(&str, Raw)]) -> Vec<u8> {
    let mut out = Vec::new();
    let n = entries.len();
    if n < 16 {
        out.push(0x80 | n as u8);
    } else {
        out.push(0xde);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    }
    for (k, v) in entries {
        raw_str(&mut out, k);
        match v {
            Raw::Int(i) => out.push(*i),
            Raw::Str(s) => raw_str(&mut out, s),
            Raw::Map(m) => out.extend_from_slice(m),
        }
    }
    out
}

enum Raw {
    Int(u8),
    Str(&'static str),
    Map(Vec<u8>),
}

fn raw_str(out: &mut Vec<u8>, s: &str) {
    assert!(s.len() < 32);
    out.push(0xa0 | s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

#[test]
fn metadata_merge_handles_wide_maps_and_repeated_keys() {
    let mut sim = online(no_token());
    // 20 metadata entries (a map16) with a repeated key; the message itself has 16 fields, so its
    // header is a map16 too, and the merged one must stay one.
    let keys: Vec<String> = (0..19).map(|i| format!("k{i}")).collect();
    let mut meta: Vec<(&str, Raw)> = keys.iter().map(|k| (k.as_str(), Raw::Str("v"))).collect();
    meta.push(("k3", Raw::Str("last")));
    let meta = raw_map(&meta);
    let message = raw_map(&[
        ("msg_type", Raw::Int(4)),
        ("source", Raw::Str("mac:112233445566/config")),
        ("dest", Raw::Str("event:x")),
        ("transaction_uuid", Raw::Str("t")),
        ("content_type", Raw::Str("text/plain")),
        ("accept", Raw::Str("a")),
        ("rdr", Raw::Int(1)),
        ("path", Raw::Str("p")),
        ("session_id", Raw::Str("s")),
        ("qos", Raw::Int(3)),
        ("msg_id", Raw::Str("m")),
        ("url", Raw::Str("u")),
        ("service_name", Raw::Str("n")),
        ("status", Raw::Int(5)),
        ("payload", Raw::Str("x")),
        ("metadata", Raw::Map(meta)),
    ]);
    assert_eq!(message[0], 0xde, "a map16 message");
    assert_eq!(sim.local(&message), Upstream::Sent);
    let frame = sent_one(&mut sim);
    let keys_out = raw_keys(&frame);
    assert_eq!(
        keys_out.iter().filter(|k| *k == "metadata").count(),
        1,
        "{keys_out:?}"
    );
    assert_eq!(keys_out.iter().filter(|k| *k == "partner_ids").count(), 1);
    let entries = metadata_entries(&frame);
    // 19 distinct own keys + 12 device keys, the repeated key once with its last value.
    assert_eq!(entries.len(), 31);
    let k3: Vec<&str> = entries
        .iter()
        .filter(|(k, _)| k == "k3")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(k3, ["last"]);
    let m = decode(&frame);
    assert_eq!(
        (m.session_id.as_str(), m.msg_id.as_str(), m.accept.as_str()),
        ("s", "m", "a")
    );

    // Past the merge bound: refused with a typed error, nothing sent.
    let many: Vec<String> = (0..=xmidt_client_core::MAX_METADATA_ENTRIES)
        .map(|i| format!("m{i}"))
        .collect();
    let mut m = event();
    for k in &many {
        m.metadata.insert(k.clone(), String::new());
    }
    let bytes = encode(&m);
    assert_eq!(
        sim.client.handle_local(sim.now, &bytes),
        Err(Error::TooManyMetadataEntries)
    );
    assert!(sim.pump().is_empty());
}

#[test]
fn requests_and_crud_go_where_parodus_sends_them() {
    let mut sim = online(no_token());
    sim.client.register_service("config").expect("ok");
    sim.client.register_service("iot").expect("ok");
    let crud = |t, dest: &str| {
        encode(
            &OwnedMessage::builder(t)
                .source(format!("{DEVICE}/iot"))
                .dest(dest)
                .transaction_uuid("c-1")
                .build(),
        )
    };
    // A request goes to the cloud even when it is for this device.
    let req = encode(&common::request(&format!("{DEVICE}/config"), "r-1"));
    assert_eq!(sim.local(&req), Upstream::Sent);
    let m = decode(&sent_one(&mut sim));
    assert_eq!(
        (m.msg_type, m.transaction_uuid.as_str()),
        (MessageType::SimpleRequestResponse, "r-1")
    );
    // RETRIEVE, UPDATE, DELETE for a service here: delivered, unchanged.
    for t in [
        MessageType::Retrieve,
        MessageType::Update,
        MessageType::Delete,
    ] {
        let bytes = crud(t, &format!("{DEVICE}/config/x"));
        match sim.local(&bytes) {
            Upstream::Deliver { service, message } => {
                assert_eq!(service, "config");
                assert_eq!(message, bytes.as_slice());
            }
            other => panic!("{t:?}: {other:?}"),
        }
        let bytes = crud(t, &format!("{DEVICE}/nobody/x"));
        assert_eq!(
            sim.local(&bytes),
            Upstream::Dropped(Dropped::UnknownService)
        );
    }
    // CREATE for a service here, and anything for elsewhere: the cloud.
    for (t, dest) in [
        (MessageType::Create, format!("{DEVICE}/config")),
        (MessageType::Retrieve, "mac:665544332211/config".to_string()),
        (MessageType::Update, "dns:elsewhere/x".to_string()),
    ] {
        let bytes = crud(t, &dest);
        assert_eq!(sim.local(&bytes), Upstream::Sent, "{t:?} {dest}");
        assert_eq!(decode(&sent_one(&mut sim)).dest, dest);
    }
    // RETRIEVE for parodus: answered locally, to the requester, without metadata.
    let bytes = crud(
        MessageType::Retrieve,
        &format!("{DEVICE}/parodus/cloud-status"),
    );
    assert_eq!(sim.local(&bytes), Upstream::Answered { status: 200 });
    let acts = sim.pump();
    let [Act::Deliver { service, message }] = acts.as_slice() else {
        panic!("{acts:?}")
    };
    assert_eq!(service, "iot");
    let m = decode(message);
    assert_eq!(m.payload, br#"{"cloud-status":"online"}"#);
    assert_eq!(m.dest, format!("{DEVICE}/iot"));
    assert_eq!(m.status, Some(200));
    assert!(m.metadata.is_empty());
    // ... from an unregistered requester: nobody to answer.
    let bytes = encode(
        &OwnedMessage::builder(MessageType::Retrieve)
            .source("stranger")
            .dest(format!("{DEVICE}/parodus/hw-model"))
            .transaction_uuid("x")
            .build(),
    );
    assert_eq!(
        sim.local(&bytes),
        Upstream::Dropped(Dropped::UnknownService)
    );
}

#[test]
fn a_local_tag_request_is_answered_locally() {
    let mut sim = online(no_token());
    sim.client.register_service("iot").expect("ok");
    let bytes = encode(
        &OwnedMessage::builder(MessageType::Retrieve)
            .source("iot")
            .dest(format!("{DEVICE}/parodus/tags"))
            .transaction_uuid("x")
            .build(),
    );
    let Upstream::Tag(tag) = sim.client.handle_local(sim.now, &bytes).expect("ok") else {
        panic!()
    };
    sim.client
        .answer_tag(&tag, 200, br#"{"tags":{}}"#)
        .expect("ok");
    let acts = sim.pump();
    let [Act::Deliver { service, message }] = acts.as_slice() else {
        panic!("{acts:?}")
    };
    assert_eq!(service, "iot");
    assert_eq!(decode(message).payload, br#"{"tags":{}}"#);
    assert!(sim.client.unregister_service("iot"));
    assert_eq!(
        sim.client.answer_tag(&tag, 200, b""),
        Err(Error::UnknownService)
    );
}

#[test]
fn offline_messages_are_dropped_with_an_outcome() {
    let mut sim = Sim::new(no_token(), 1);
    let req = encode(&common::request("dns:x", "r"));
    assert_eq!(sim.local(&req), Upstream::Dropped(Dropped::Offline));
    let low = encode(&OwnedMessage { qos: 24, ..event() });
    assert_eq!(sim.local(&low), Upstream::Dropped(Dropped::Offline));
    assert_eq!(sim.client.stats().offline_drops, 2);
    // The local service still answers offline: cloud-status is offline.
    sim.client.register_service("iot").expect("ok");
    let bytes = encode(
        &OwnedMessage::builder(MessageType::Retrieve)
            .source("iot")
            .dest(format!("{DEVICE}/parodus/cloud-status"))
            .transaction_uuid("x")
            .build(),
    );
    assert_eq!(sim.local(&bytes), Upstream::Answered { status: 200 });
    let acts = common::drain(&mut sim.client);
    let [Act::Deliver { message, .. }] = acts.as_slice() else {
        panic!("{acts:?}")
    };
    assert_eq!(decode(message).payload, br#"{"cloud-status":"offline"}"#);
}

#[test]
fn metadata_carries_the_reason_of_the_current_connection() {
    let mut sim = online(no_token());
    let conn = sim.conn.expect("online");
    sim.client
        .handle_closed(sim.now, conn, Some(1001))
        .expect("ok");
    sim.pump();
    assert!(sim.client.is_online());
    let bytes = encode(&event());
    sim.local(&bytes);
    let entries = metadata_entries(&sent_one(&mut sim));
    let reason: Vec<&str> = entries
        .iter()
        .filter(|(k, _)| k == "webpa-last-reconnect-reason")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        reason,
        ["Unknown"],
        "parodus always said webpa_process_starts here"
    );
}

#[test]
fn a_message_too_large_for_the_outbox_is_an_error() {
    let mut sim = online(no_token());
    let big = encode(&OwnedMessage {
        payload: vec![b'x'; 4096],
        ..event()
    });
    assert!(matches!(
        sim.client.handle_local(sim.now, &big),
        Err(Error::MessageTooLarge { capacity: 4096, .. })
    ));
    // An undrained outbox: the driver must drain after every input.
    let fill = encode(&OwnedMessage {
        payload: vec![b'x'; 2500],
        ..event()
    });
    assert_eq!(sim.local(&fill), Upstream::Sent);
    assert_eq!(
        sim.client.handle_local(sim.now, &fill),
        Err(Error::OutboxFull)
    );
    assert_eq!(Sim::sent(&sim.pump()).len(), 1);
    assert_eq!(sim.local(&fill), Upstream::Sent);
}

#[test]
fn re_encoding_drops_unknown_keys_and_writes_qos() {
    let mut sim = online(no_token());
    let message = raw_map(&[
        ("msg_type", Raw::Int(3)),
        ("source", Raw::Str("mac:112233445566/config")),
        ("dest", Raw::Str("dns:x")),
        ("transaction_uuid", Raw::Str("t")),
        ("x-custom", Raw::Str("gone")),
    ]);
    assert_eq!(sim.local(&message), Upstream::Sent);
    let keys = raw_keys(&sent_one(&mut sim));
    assert_eq!(
        keys,
        [
            "msg_type",
            "source",
            "dest",
            "transaction_uuid",
            "qos",
            "metadata"
        ]
    );
}

#[test]
fn a_local_service_may_ask_for_a_cloud_disconnect() {
    let mut sim = online(no_token());
    let conn = sim.conn.expect("online");
    sim.client.register_service("iot").expect("ok");
    let bytes = encode(
        &OwnedMessage::builder(MessageType::Update)
            .source(format!("{DEVICE}/iot"))
            .dest(format!("{DEVICE}/parodus/cloud-disconnect"))
            .transaction_uuid("x")
            .payload(br#"{"disconnection-reason":"local"}"#.to_vec())
            .build(),
    );
    assert_eq!(sim.local(&bytes), Upstream::Answered { status: 200 });
    let acts = sim.pump();
    let [Act::Deliver { service, message }, Act::Disconnect { conn: c, .. }] = acts.as_slice()
    else {
        panic!("{acts:?}")
    };
    assert_eq!((service.as_str(), *c), ("iot", conn));
    assert_eq!(decode(message).status, Some(200));
    assert!(!sim.client.is_online());
    assert_eq!(sim.client.reconnect_reason(), "local");
}

#[test]
fn service_alive_can_be_turned_off() {
    let mut sim = online(Config {
        service_alive_secs: 0,
        ..no_token()
    });
    sim.client.register_service("config").expect("ok");
    sim.advance(Duration::from_secs(170));
    assert!(sim
        .log
        .iter()
        .all(|(_, a)| !matches!(a, Act::Deliver { .. })));
}
