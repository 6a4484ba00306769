//! Property tests: arbitrary and mutated bytes as cloud frames or local messages, and arbitrary
//! sequences of driver events, never make the core panic, loop, or lose track of time.

mod common;

use proptest::collection::vec;
use proptest::prelude::*;

use common::{encode, Seeded, TestClient, DEVICE};
use wrp_nostd::{MessageType, OwnedMessage};
use xmidt_client_core::{Action, Config, ConnId, Downstream, Instant, Upstream};

fn config() -> Config<'static> {
    Config {
        qos_ack_timeout_secs: 5,
        service_alive_secs: 7,
        ..common::config()
    }
}

/// Valid messages of every kind the core treats differently, to mutate.
fn seeds() -> Vec<Vec<u8>> {
    let b = OwnedMessage::builder;
    let mut event = b(MessageType::SimpleEvent)
        .source(format!("{DEVICE}/config"))
        .dest(format!("{DEVICE}/config"))
        .qos(60)
        .partner_id("charter")
        .build();
    event.metadata.insert("k".into(), "v".into());
    [
        common::request(&format!("{DEVICE}/config/x"), "t1"),
        common::request(&format!("{DEVICE}/nosuch"), "t2"),
        event,
        b(MessageType::Retrieve)
            .source("iot")
            .dest(format!("{DEVICE}/parodus/hw-model"))
            .transaction_uuid("c")
            .build(),
        b(MessageType::Update)
            .source("dns:x")
            .dest(format!("{DEVICE}/parodus/cloud-disconnect"))
            .transaction_uuid("d")
            .payload(br#"{"disconnection-reason":"x"}"#.to_vec())
            .build(),
        b(MessageType::Create)
            .source("dns:x")
            .dest(format!("{DEVICE}/parodus/tag/a"))
            .transaction_uuid("e")
            .build(),
        b(MessageType::ServiceRegistration)
            .service_name("config")
            .url("tcp://127.0.0.1:6668")
            .build(),
        b(MessageType::SimpleEvent)
            .source("t")
            .dest(format!("{DEVICE}/config"))
            .transaction_uuid("q")
            .rdr(0)
            .build(),
    ]
    .iter()
    .map(encode)
    .collect()
}

#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
}

fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let edit = prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
    ];
    (0..seeds().len(), vec(edit, 1..6)).prop_map(|(i, edits)| {
        let mut bytes = seeds()[i].clone();
        for e in edits {
            let n = bytes.len().max(1);
            match e {
                Edit::Flip(at, b) => {
                    if let Some(x) = bytes.get_mut(at % n) {
                        *x ^= b | 1;
                    }
                }
                Edit::Truncate(at) => bytes.truncate(at % n),
                Edit::Insert(at, b) => bytes.insert(at % (bytes.len() + 1), b),
            }
        }
        bytes
    })
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![vec(any::<u8>(), 0..300), mutated()]
}

/// A client online on connection `conn`, with `config` registered.
fn online() -> (TestClient, ConnId) {
    let cfg = Config {
        token_server_url: "",
        ..config()
    };
    let mut c = TestClient::new(&cfg, Seeded(1), Instant::from_millis(0)).expect("valid");
    c.handle_timeout(Instant::from_millis(0)).expect("ok");
    let conn = match c.poll_action() {
        Some(Action::Connect(connect)) => connect.conn,
        other => panic!("{other:?}"),
    };
    c.handle_handshake(Instant::from_millis(1), conn, 101, None)
        .expect("ok");
    c.register_service("config").expect("ok");
    (c, conn)
}

fn drain(c: &mut TestClient) -> usize {
    let mut n = 0;
    while c.poll_action().is_some() {
        n += 1;
        assert!(n < 1000, "poll_action never ends");
    }
    n
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn any_frame_is_handled(frames in vec(bytes(), 1..8)) {
        let (mut c, conn) = online();
        for (i, f) in frames.iter().enumerate() {
            let now = Instant::from_millis(10 + i as u64);
            let r = c.handle_frame(now, conn, f);
            if let Ok(Downstream::Deliver { message, .. }) = r {
                prop_assert_eq!(message, f.as_slice());
            }
            drain(&mut c);
        }
    }

    #[test]
    fn any_local_message_is_handled(messages in vec(bytes(), 1..8), online_first in any::<bool>()) {
        let (mut c, _) = online();
        if !online_first {
            c.shutdown("x").expect("ok");
        }
        for (i, m) in messages.iter().enumerate() {
            let r = c.handle_local(Instant::from_millis(10 + i as u64), m);
            if let Ok(Upstream::Deliver { message, .. }) = r {
                prop_assert_eq!(message, m.as_slice());
            }
            drain(&mut c);
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Advance(u32),
    Timeout,
    Token(bool),
    Handshake {
        stale: bool,
        status: u16,
        location: Option<String>,
    },
    ConnectFailed {
        stale: bool,
    },
    Frame {
        stale: bool,
        bytes: Vec<u8>,
    },
    Ping {
        stale: bool,
    },
    Closed {
        stale: bool,
        code: Option<u16>,
    },
    Local(Vec<u8>),
    Register(String),
    Unregister(String),
    Shutdown(String),
}

fn op() -> impl Strategy<Value = Op> {
    let status = prop::sample::select(vec![
        101u16, 200, 301, 302, 303, 307, 308, 400, 403, 500, 503,
    ]);
    let location = prop::option::of(prop_oneof![
        Just("http://talaria:6200/x".to_string()),
        Just("https://[::1]:443".to_string()),
        "\\PC{0,40}",
    ]);
    prop_oneof![
        (0u32..400_000).prop_map(Op::Advance),
        Just(Op::Timeout),
        any::<bool>().prop_map(Op::Token),
        (any::<bool>(), status, location).prop_map(|(stale, status, location)| Op::Handshake {
            stale,
            status,
            location
        }),
        any::<bool>().prop_map(|stale| Op::ConnectFailed { stale }),
        (any::<bool>(), bytes()).prop_map(|(stale, bytes)| Op::Frame { stale, bytes }),
        any::<bool>().prop_map(|stale| Op::Ping { stale }),
        (
            any::<bool>(),
            prop::option::of(prop::sample::select(vec![1000u16, 1001, 1006]))
        )
            .prop_map(|(stale, code)| Op::Closed { stale, code }),
        bytes().prop_map(Op::Local),
        "[a-z/]{0,33}".prop_map(Op::Register),
        "[a-z]{0,3}".prop_map(Op::Unregister),
        "\\PC{0,130}".prop_map(Op::Shutdown),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn any_event_sequence_keeps_the_client_sound(ops in vec(op(), 1..60), seed in 1u32..) {
        let mut c = TestClient::new(&config(), Seeded(seed), Instant::from_millis(0)).expect("valid");
        let mut now = Instant::from_millis(0);
        let mut conn: Option<ConnId> = None;
        let mut stale: Option<ConnId> = None;
        for op in ops {
            // Take what the client asks for, remembering the latest attempt.
            while let Some(a) = c.poll_action() {
                if let Action::Connect(connect) = a {
                    stale = conn.or(stale);
                    conn = Some(connect.conn);
                }
            }
            let pick = |s: bool| if s { stale.or(conn) } else { conn };
            match op {
                Op::Advance(ms) => now = Instant::from_millis(now.as_millis() + u64::from(ms)),
                Op::Timeout => {
                    if let Some(at) = c.poll_timeout() {
                        now = now.max(at);
                        c.handle_timeout(now).expect("timeouts never fail with a valid config");
                        drain(&mut c);
                        if let Some(next) = c.poll_timeout() {
                            prop_assert!(next > now, "a timeout at {next:?} right after {now:?}");
                        }
                    }
                }
                Op::Token(true) => { let _ = c.handle_token(now, "tok"); }
                Op::Token(false) => { let _ = c.handle_token_failed(now); }
                Op::Handshake { stale, status, location } => {
                    if let Some(id) = pick(stale) {
                        let _ = c.handle_handshake(now, id, status, location.as_deref());
                    }
                }
                Op::ConnectFailed { stale } => {
                    if let Some(id) = pick(stale) {
                        c.handle_connect_failed(now, id);
                    }
                }
                Op::Frame { stale, bytes } => {
                    if let Some(id) = pick(stale) {
                        let _ = c.handle_frame(now, id, &bytes);
                    }
                }
                Op::Ping { stale } => {
                    if let Some(id) = pick(stale) {
                        c.handle_ping(now, id);
                    }
                }
                Op::Closed { stale, code } => {
                    if let Some(id) = pick(stale) {
                        let _ = c.handle_closed(now, id, code);
                    }
                }
                Op::Local(bytes) => { let _ = c.handle_local(now, &bytes); }
                Op::Register(name) => { let _ = c.register_service(&name); }
                Op::Unregister(name) => { c.unregister_service(&name); }
                Op::Shutdown(reason) => { let _ = c.shutdown(&reason); }
            }
            drain(&mut c);
        }
    }
}
