//! The QoS queue: events with qos >= 25 are kept until talaria's ack (cloud-spec §4.7), sent
//! again after the ack timeout and after a reconnect, displaced lowest-level-oldest-first, and
//! expired after 20/25/30 minutes.

mod common;

use std::time::Duration;

use common::{decode, encode, Act, Sim, DEVICE};
use wrp_nostd::{MessageType, OwnedMessage};
use xmidt_client_core::{Config, Downstream, Dropped, Error, Upstream};

fn no_token() -> Config<'static> {
    Config {
        token_server_url: "",
        qos_ack_timeout_secs: 30,
        ..common::config()
    }
}

fn qos_event(qos: i64, tag: &str) -> OwnedMessage {
    OwnedMessage::builder(MessageType::SimpleEvent)
        .source(format!("{DEVICE}/config"))
        .dest("event:device-status/x")
        .qos(qos)
        .payload(tag.as_bytes().to_vec())
        .build()
}

/// talaria's ack for a QoS event (cloud-spec §4.7).
fn ack(event: &OwnedMessage) -> Vec<u8> {
    encode(
        &OwnedMessage::builder(MessageType::SimpleEvent)
            .source("talaria-1")
            .dest(event.source.clone())
            .transaction_uuid(event.transaction_uuid.clone())
            .qos(event.qos)
            .rdr(0)
            .build(),
    )
}

fn sent(sim: &mut Sim) -> Vec<OwnedMessage> {
    Sim::sent(&sim.pump()).iter().map(|f| decode(f)).collect()
}

fn is_uuid_v4(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 36
        && s.split('-').map(str::len).eq([8, 4, 4, 4, 12])
        && b[14] == b'4'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b')
        && s.bytes()
            .all(|c| c == b'-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

#[test]
fn kept_until_acked_across_reconnects() {
    let mut sim = Sim::new(no_token(), 21);
    // Offline: queued, not dropped.
    let bytes = encode(&qos_event(25, "one"));
    assert_eq!(sim.local(&bytes), Upstream::Queued { displaced: 0 });
    assert_eq!(sim.client.queued(), 1);
    // Sent as soon as the client is online.
    sim.online();
    let frames: Vec<OwnedMessage> = sim
        .log
        .iter()
        .filter_map(|(_, a)| match a {
            Act::Send(f) => Some(decode(f)),
            _ => None,
        })
        .collect();
    assert_eq!(frames.len(), 1);
    let sent_event = frames[0].clone();
    assert!(
        is_uuid_v4(&sent_event.transaction_uuid),
        "{}",
        sent_event.transaction_uuid
    );
    assert_eq!(sent_event.qos, 25);
    assert_eq!(sent_event.payload, b"one");
    assert_eq!(sent_event.partner_ids, ["comcast", "cox"]);
    assert_eq!(sent_event.metadata.len(), 12);

    // No ack within 30 s: sent again, the same bytes.
    let conn = sim.conn.expect("online");
    sim.advance(Duration::from_secs(29));
    assert!(sent(&mut sim).is_empty());
    sim.advance(Duration::from_secs(1));
    let again: Vec<OwnedMessage> = sim
        .log
        .iter()
        .rev()
        .take(1)
        .filter_map(|(_, a)| match a {
            Act::Send(f) => Some(decode(f)),
            _ => None,
        })
        .collect();
    assert_eq!(again, std::slice::from_ref(&sent_event));
    assert_eq!(sim.client.stats().qos_retransmits, 1);

    // The connection drops: on the next one it goes out again at once.
    sim.client.handle_closed(sim.now, conn, None).expect("ok");
    let acts = sim.pump();
    let resent: Vec<OwnedMessage> = Sim::sent(&acts).iter().map(|f| decode(f)).collect();
    assert_eq!(resent, std::slice::from_ref(&sent_event));
    assert!(sim.conn.is_some_and(|c| c != conn));

    // talaria's ack removes it; nothing more is sent.
    let ack = ack(&sent_event);
    assert_eq!(sim.frame(&ack), Downstream::Acked);
    assert_eq!(sim.client.queued(), 0);
    assert_eq!(sim.client.stats().qos_acked, 1);
    sim.advance(Duration::from_secs(120));
    assert!(Sim::sent(&sim.pump()).is_empty());
    assert!(sim
        .log
        .iter()
        .rev()
        .take_while(|(t, _)| t.as_millis() > 60_000)
        .all(|(_, a)| !matches!(a, Act::Send(_))));
    // A second ack for it is an ordinary event (here for an unregistered service).
    assert_eq!(
        sim.frame(&ack),
        Downstream::Dropped(Dropped::UnknownService)
    );
}

#[test]
fn an_existing_transaction_uuid_is_kept_and_acks_need_rdr() {
    let mut sim = Sim::new(no_token(), 2);
    sim.online();
    let event = OwnedMessage {
        transaction_uuid: "mine-1".into(),
        ..qos_event(80, "x")
    };
    let bytes = encode(&event);
    assert_eq!(sim.local(&bytes), Upstream::Queued { displaced: 0 });
    let out = sent(&mut sim);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].transaction_uuid, "mine-1");
    // An event with the same uuid but no rdr is not an ack.
    let not_ack = encode(&OwnedMessage {
        rdr: None,
        ..decode(&ack(&out[0]))
    });
    assert_ne!(sim.frame(&not_ack), Downstream::Acked);
    assert_eq!(sim.client.queued(), 1);
    assert_eq!(sim.frame(&ack(&out[0])), Downstream::Acked);
    // Low-qos events are never queued; requests with qos are sent, not queued.
    let low = encode(&qos_event(24, "low"));
    assert_eq!(sim.local(&low), Upstream::Sent);
    let req = encode(&OwnedMessage {
        qos: 90,
        ..common::request("dns:x", "r")
    });
    assert_eq!(sim.local(&req), Upstream::Sent);
    assert_eq!(sim.client.queued(), 0);
}

#[test]
fn displacement_lowest_level_then_oldest() {
    let mut sim = Sim::new(no_token(), 3);
    // The test client holds 8 messages in 4096 bytes; these take about 400 each.
    for i in 0..8 {
        let level = if i < 4 { 30 } else { 60 };
        let bytes = encode(&qos_event(level, &format!("m{i}")));
        assert_eq!(sim.local(&bytes), Upstream::Queued { displaced: 0 });
    }
    // A new medium displaces the oldest medium.
    let bytes = encode(&qos_event(40, "m8"));
    assert_eq!(sim.local(&bytes), Upstream::Queued { displaced: 1 });
    // A critical displaces the oldest of the lowest level (medium) too.
    let bytes = encode(&qos_event(99, "m9"));
    assert_eq!(sim.local(&bytes), Upstream::Queued { displaced: 1 });
    assert_eq!(sim.client.stats().qos_dropped, 2);
    sim.online();
    let order: Vec<String> = sim
        .log
        .iter()
        .filter_map(|(_, a)| match a {
            Act::Send(f) => Some(String::from_utf8_lossy(&decode(f).payload).into_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(
        order,
        ["m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"],
        "oldest first, m0 and m1 gone"
    );

    // Full of high and critical: a new medium is refused, nothing displaced.
    let mut sim = Sim::new(no_token(), 3);
    for i in 0..8 {
        let bytes = encode(&qos_event(60, &format!("h{i}")));
        sim.local(&bytes);
    }
    let bytes = encode(&qos_event(30, "medium"));
    assert_eq!(sim.local(&bytes), Upstream::Dropped(Dropped::QueueFull));
    assert_eq!(sim.client.queued(), 8);
    assert_eq!(sim.client.stats().qos_dropped, 1);
}

#[test]
fn byte_limits_displace_several_or_refuse() {
    let mut sim = Sim::new(no_token(), 4);
    let small = |i: usize| encode(&qos_event(30, &format!("{i}{}", "x".repeat(499))));
    // Learn the queued size of one (what is queued is what is sent).
    let mut probe = Sim::new(no_token(), 4);
    probe.online();
    probe.local(&small(0));
    let size = Sim::sent(&probe.pump())[0].len();
    for i in 0..4 {
        assert_eq!(sim.local(&small(i)), Upstream::Queued { displaced: 0 });
    }
    // A big critical needs the room of two small ones: with its overhead it takes about
    // 4096 - 2 * size - 100 bytes, so 3 small ones and it do not fit, 2 do.
    let big_payload = 4096 - 2 * size - (size - 500) - 100;
    let big = encode(&qos_event(90, &"y".repeat(big_payload)));
    assert_eq!(sim.local(&big), Upstream::Queued { displaced: 2 });
    assert_eq!(sim.client.queued(), 3);
    // Larger than the whole queue: a typed error.
    let huge = encode(&qos_event(90, &"z".repeat(4096)));
    assert!(matches!(
        sim.client.handle_local(sim.now, &huge),
        Err(Error::MessageTooLarge { capacity: 4096, .. })
    ));
    assert_eq!(sim.client.queued(), 3);
    // What is left is intact: it decodes and is sent in order after coming online.
    sim.online();
    let payloads: Vec<usize> = sim
        .log
        .iter()
        .filter_map(|(_, a)| match a {
            Act::Send(f) => Some(decode(f).payload.len()),
            _ => None,
        })
        .collect();
    assert_eq!(payloads, [500, 500, big_payload]);
}

#[test]
fn queued_messages_expire_by_level() {
    let mut sim = Sim::new(
        Config {
            cloud_url: "http://unreachable.example.com",
            ..no_token()
        },
        5,
    );
    sim.petasos_redirects = false;
    sim.talaria_script.extend([common::Answer::Refused; 100]);
    for (qos, tag) in [(30, "medium"), (60, "high"), (90, "critical")] {
        let bytes = encode(&qos_event(qos, tag));
        sim.local(&bytes);
    }
    sim.advance(Duration::from_secs(20 * 60 - 1));
    assert_eq!(sim.client.queued(), 3);
    sim.advance(Duration::from_secs(1));
    assert_eq!(sim.client.queued(), 2);
    sim.advance(Duration::from_secs(5 * 60));
    assert_eq!(sim.client.queued(), 1);
    sim.advance(Duration::from_secs(5 * 60));
    assert_eq!(sim.client.queued(), 0);
    assert_eq!(sim.client.stats().qos_expired, 3);
}
