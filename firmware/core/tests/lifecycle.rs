//! The connection lifecycle against a simulated cloud: token, redirect, 403, online, requests,
//! pings, ping miss, backoff (exact schedule), reconnect, closes, timeouts, shutdown.

mod common;

use std::time::Duration;

use common::{convey_reason, parodus_waits, request, Act, Answer, Seeded, Sim, TestClient, DEVICE};
use wrp_nostd::{MessageType, OwnedMessage};
use xmidt_client_core::{
    Attempt, Config, Downstream, Dropped, Instant, Random, Upstream, MAX_AUTH_REFRESHES,
    MAX_REDIRECTS,
};

fn registration(service: &str, url: &str) -> Vec<u8> {
    common::encode(
        &OwnedMessage::builder(MessageType::ServiceRegistration)
            .service_name(service)
            .url(url)
            .build(),
    )
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn connect_redirect_403_token_online_requests_pings_miss_backoff_reconnect() {
    let config = Config {
        backoff_max: 4,
        ..common::config()
    };
    let mut sim = Sim::new(config, 42);
    sim.talaria_script
        .extend([Answer::Forbidden, Answer::Accept]);
    let conn = sim.online();

    // token → petasos → 307 → talaria → 403 → new token → talaria (the redirect is kept) → 101.
    let acts: Vec<&Act> = sim.log.iter().map(|(_, a)| a).collect();
    assert!(matches!(acts[0], Act::FetchToken { .. }));
    let Act::Connect { url, .. } = acts[1] else {
        panic!("{acts:?}")
    };
    assert_eq!(url, "ws://petasos.example.com:6400/api/v2/device");
    let Act::Connect { url, .. } = acts[2] else {
        panic!("{acts:?}")
    };
    assert_eq!(
        url, "ws://talaria-1.example.com:6200/api/v2/device",
        "path reset to /api/v2/device"
    );
    assert!(matches!(acts[3], Act::FetchToken { .. }));
    let Act::Connect { url, conn: c, .. } = acts[4] else {
        panic!("{acts:?}")
    };
    assert_eq!(url, "ws://talaria-1.example.com:6200/api/v2/device");
    assert_eq!(*c, conn);
    assert_eq!(acts.len(), 5);
    assert_eq!(acts[1].header("Authorization"), Some("Bearer token-1"));
    assert_eq!(acts[2].header("Authorization"), Some("Bearer token-1"));
    assert_eq!(acts[4].header("Authorization"), Some("Bearer token-2"));
    assert_eq!(
        acts[1].header("X-WebPA-Convey"),
        acts[4].header("X-WebPA-Convey")
    );
    assert!(
        sim.log.iter().all(|(t, _)| *t == Instant::from_millis(0)),
        "no backoff on 307/403"
    );
    assert!(sim.client.is_online());
    let s = *sim.client.stats();
    assert_eq!(
        (
            s.connects,
            s.redirects,
            s.token_refreshes,
            s.connect_failures
        ),
        (1, 1, 1, 0)
    );

    // Requests: a registered service gets the original bytes; an unknown one gets 531.
    assert!(matches!(
        sim.local(&registration("config", "tcp://127.0.0.1:6668")),
        Upstream::Register { .. }
    ));
    let req = common::encode(&request(&format!("{DEVICE}/config/x"), "t1"));
    match sim.frame(&req) {
        Downstream::Deliver { service, message } => {
            assert_eq!(service, "config");
            assert!(
                std::ptr::eq(message, req.as_slice()),
                "the frame itself, not a copy"
            );
        }
        other => panic!("{other:?}"),
    }
    let req = common::encode(&request(&format!("{DEVICE}/nosuch"), "t2"));
    assert_eq!(sim.frame(&req), Downstream::Answered { status: 531 });
    let sent = Sim::sent(&sim.pump());
    assert_eq!(sent.len(), 1);
    assert_eq!(common::decode(&sent[0]).transaction_uuid, "t2");

    // Pings keep the connection: 510 s without a frame, never 180 s without a ping.
    for _ in 0..3 {
        sim.advance(secs(170));
        sim.client.handle_ping(sim.now, conn);
    }
    sim.advance(secs(179));
    assert!(sim.client.is_online());
    assert_eq!(sim.client.stats().ping_misses, 0);
    // An inbound frame counts too.
    let event = common::encode(
        &OwnedMessage::builder(MessageType::SimpleEvent)
            .source("dns:talaria")
            .dest(format!("{DEVICE}/config"))
            .build(),
    );
    assert!(matches!(sim.frame(&event), Downstream::Deliver { .. }));
    let seen = sim.now;

    // No ping for 180 s: close with parodus_stopping, reconnect at once with reason Ping_Miss.
    // talaria is down for 6 attempts: the waits follow parodus's formula with the same seed.
    sim.talaria_script.extend([Answer::Unavailable; 6]);
    sim.talaria_script.push_back(Answer::Accept);
    let log_before = sim.log.len();
    sim.advance(secs(180));
    // (Service-alive deliveries to `config` go on meanwhile; they are not the point here.)
    let after: Vec<(Instant, Act)> = sim.log[log_before..]
        .iter()
        .filter(|(_, a)| !matches!(a, Act::Deliver { .. }))
        .cloned()
        .collect();
    assert_eq!(after[0].0, seen + secs(180));
    assert_eq!(
        after[0].1,
        Act::Disconnect {
            conn,
            code: 1000,
            reason: "parodus_stopping".into()
        }
    );
    let Act::Connect { url, .. } = &after[1].1 else {
        panic!("{after:?}")
    };
    assert_eq!(
        after[1].0,
        seen + secs(180),
        "the first reconnect after a drop is immediate"
    );
    assert_eq!(
        url, "ws://talaria-1.example.com:6200/api/v2/device",
        "the redirect is kept"
    );
    assert_eq!(convey_reason(&after[1].1), "Ping_Miss");
    assert_eq!(
        after[1].1.header("Authorization"),
        Some("Bearer token-2"),
        "the token is kept"
    );
    assert_eq!(sim.client.stats().ping_misses, 1);

    // Run until online again and compare the attempt times with the formula.
    sim.advance(secs(200));
    assert!(sim.client.is_online());
    let talaria: Vec<Instant> = sim.log[log_before..]
        .iter()
        .filter(|(_, a)| matches!(a, Act::Connect { host, .. } if host.starts_with("talaria")))
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(talaria.len(), 7);
    // The client drew 4 numbers for each of its two token-request uuids before this.
    let mut rng = Seeded(42);
    for _ in 0..8 {
        rng.next_u32();
    }
    let waits = parodus_waits(&mut rng, 4, 6);
    assert_eq!(waits[0], secs(3));
    for (i, wait) in waits.iter().enumerate() {
        assert!(*wait >= secs(3) && *wait < secs(16), "{wait:?}");
        assert_eq!(talaria[i + 1], talaria[i] + *wait, "attempt {i}");
    }
    // After a failure the redirect is dropped: each retry starts at petasos again.
    let petasos_retries = sim.log[log_before..]
        .iter()
        .filter(|(_, a)| matches!(a, Act::Connect { host, .. } if host.starts_with("petasos")))
        .count();
    assert_eq!(petasos_retries, 6);
    // Every attempt of the cycle carried Ping_Miss; once online the reason resets.
    for (_, a) in &sim.log[log_before..] {
        if matches!(a, Act::Connect { .. }) {
            assert_eq!(convey_reason(a), "Ping_Miss");
        }
    }
    assert_eq!(sim.client.reconnect_reason(), "webpa_process_starts");

    // The backoff was reset by the successful connect: the next failure waits 3 s again.
    let conn = sim.conn.expect("online");
    sim.talaria_script
        .extend([Answer::Unavailable, Answer::Accept]);
    sim.client.handle_closed(sim.now, conn, None).expect("ok");
    let t0 = sim.now;
    sim.pump();
    assert_eq!(sim.client.poll_timeout(), Some(t0 + secs(3)));
    let last = sim.connects().last().cloned().expect("a connect");
    assert_eq!(convey_reason(&last.1), "SSL_Socket_Close");
}

#[test]
fn backoff_schedule_is_exact_with_a_seeded_random() {
    // No token: the backoff draws all the random numbers.
    let config = Config {
        token_server_url: "",
        backoff_max: 9,
        ..common::config()
    };
    let mut sim = Sim::new(config, 7);
    sim.petasos_redirects = false;
    sim.talaria_script.extend([Answer::Refused; 12]);
    let mut attempts = Vec::new();
    for _ in 0..13 {
        let at = sim.next_timeout();
        attempts.push(at);
    }
    assert!(sim.client.is_online());
    let waits = parodus_waits(&mut Seeded(7), 9, 12);
    assert_eq!(attempts[0], Instant::from_millis(0));
    for i in 0..12 {
        assert_eq!(attempts[i + 1], attempts[i] + waits[i], "wait {i}");
        assert!(waits[i] >= secs(3) && waits[i] < secs(512));
    }
    assert_eq!(waits[0], secs(3));
    assert_eq!(sim.client.stats().connect_failures, 12);
}

#[test]
fn redirect_chains_are_bounded_then_back_off() {
    let config = Config {
        token_server_url: "",
        ..common::config()
    };
    let mut sim = Sim::new(config, 1);
    sim.talaria = "http://petasos.example.com:6401/";
    sim.next_timeout();
    let connects = sim.connects();
    assert_eq!(connects.len(), 1 + MAX_REDIRECTS as usize);
    assert!(!sim.client.is_online());
    assert_eq!(
        sim.client.poll_timeout(),
        Some(Instant::from_millis(0) + secs(3))
    );
    assert_eq!(sim.client.stats().redirects, u32::from(MAX_REDIRECTS));
    assert_eq!(sim.client.stats().connect_failures, 1);
}

#[test]
fn token_refresh_loops_are_bounded_then_back_off() {
    let mut sim = Sim::new(common::config(), 1);
    sim.petasos_redirects = false;
    sim.talaria_script.extend([Answer::Forbidden; 10]);
    sim.next_timeout();
    assert_eq!(sim.tokens_issued, 1 + MAX_AUTH_REFRESHES as usize);
    assert_eq!(sim.connects().len(), 1 + MAX_AUTH_REFRESHES as usize);
    assert_eq!(
        sim.client.poll_timeout(),
        Some(Instant::from_millis(0) + secs(3))
    );
    // The next round starts with a token request, as no token is held after a 403.
    sim.next_timeout();
    assert!(matches!(
        sim.log[2 * (1 + MAX_AUTH_REFRESHES as usize)].1,
        Act::FetchToken { .. }
    ));
}

#[test]
fn all_redirect_codes_are_followed_and_bad_locations_fail() {
    for code in [301, 302, 303, 307, 308] {
        let config = Config {
            token_server_url: "",
            ..common::config()
        };
        let mut c = TestClient::new(&config, Seeded(1), Instant::from_millis(0)).expect("valid");
        c.handle_timeout(Instant::from_millis(0)).expect("ok");
        let acts = common::drain(&mut c);
        let Act::Connect { conn, .. } = acts[0] else {
            panic!()
        };
        let r = c.handle_handshake(
            Instant::from_millis(1),
            conn,
            code,
            Some("https://t2:8443/x/y"),
        );
        assert_eq!(r, Ok(Attempt::Redirected), "{code}");
        let acts = common::drain(&mut c);
        let [Act::Connect { url, .. }] = acts.as_slice() else {
            panic!("{acts:?}")
        };
        assert_eq!(url, "wss://t2:8443/api/v2/device");
    }
    for location in [None, Some("/relative"), Some("ftp://x"), Some("http://")] {
        let config = Config {
            token_server_url: "",
            ..common::config()
        };
        let mut c = TestClient::new(&config, Seeded(1), Instant::from_millis(0)).expect("valid");
        c.handle_timeout(Instant::from_millis(0)).expect("ok");
        let Act::Connect { conn, .. } = common::drain(&mut c)[0] else {
            panic!()
        };
        let r = c.handle_handshake(Instant::from_millis(0), conn, 307, location);
        assert_eq!(
            r,
            Ok(Attempt::Backoff {
                until: Instant::from_millis(3000)
            }),
            "{location:?}"
        );
    }
}

#[test]
fn a_handshake_that_never_answers_times_out_into_backoff() {
    let config = Config {
        token_server_url: "",
        connect_timeout_secs: 10,
        ..common::config()
    };
    let mut sim = Sim::new(config, 1);
    sim.petasos_redirects = false;
    sim.talaria_script.push_back(Answer::Silent);
    sim.next_timeout();
    let Act::Connect { conn, .. } = sim.log[0].1 else {
        panic!()
    };
    assert_eq!(
        sim.client.poll_timeout(),
        Some(Instant::from_millis(10_000))
    );
    sim.next_timeout();
    assert_eq!(
        sim.log[1].1,
        Act::Disconnect {
            conn,
            code: 1000,
            reason: "parodus_stopping".into()
        }
    );
    assert_eq!(
        sim.client.poll_timeout(),
        Some(Instant::from_millis(13_000))
    );
    // A late answer from the abandoned attempt is ignored.
    assert_eq!(
        sim.client.handle_handshake(sim.now, conn, 101, None),
        Ok(Attempt::Stale)
    );
    assert_eq!(
        sim.client.handle_connect_failed(sim.now, conn),
        Attempt::Stale
    );
    assert!(!sim.client.is_online());
    sim.next_timeout();
    assert!(sim.client.is_online());
}

#[test]
fn server_closes_set_the_reconnect_reason_and_reconnect_at_once() {
    for (code, reason) in [
        (None, "SSL_Socket_Close"),
        (Some(1006), "SSL_Socket_Close"),
        (Some(1001), "Unknown"),
    ] {
        let config = Config {
            token_server_url: "",
            ..common::config()
        };
        let mut sim = Sim::new(config, 3);
        let conn = sim.online();
        sim.advance(secs(5));
        sim.client.handle_closed(sim.now, conn, code).expect("ok");
        let acts = sim.pump();
        let Act::Connect { .. } = &acts[0] else {
            panic!("{acts:?}")
        };
        assert_eq!(convey_reason(&acts[0]), reason);
        assert!(sim.client.is_online());
        // Stale events from the old connection change nothing.
        let req = common::encode(&request(&format!("{DEVICE}/x"), "t"));
        assert_eq!(
            sim.client.handle_frame(sim.now, conn, &req),
            Ok(Downstream::Dropped(Dropped::StaleConnection))
        );
        sim.client.handle_closed(sim.now, conn, None).expect("ok");
        assert!(sim.client.is_online());
        assert!(sim.pump().is_empty());
    }
}

#[test]
fn token_failure_connects_without_a_token() {
    let mut sim = Sim::new(common::config(), 1);
    sim.token_failures = 1;
    sim.petasos_redirects = false;
    sim.online();
    let connects = sim.connects();
    assert_eq!(connects[0].1.header("Authorization"), None);
    // A driver that never answers the token request: the core goes on after TOKEN_TIMEOUT.
    let mut c =
        TestClient::new(&common::config(), Seeded(1), Instant::from_millis(0)).expect("valid");
    c.handle_timeout(Instant::from_millis(0)).expect("ok");
    assert!(matches!(
        common::drain(&mut c).as_slice(),
        [Act::FetchToken { .. }]
    ));
    let deadline = c.poll_timeout().expect("a deadline");
    assert_eq!(
        deadline,
        Instant::from_millis(0) + xmidt_client_core::TOKEN_TIMEOUT
    );
    c.handle_timeout(deadline).expect("ok");
    let acts = common::drain(&mut c);
    assert!(matches!(acts.as_slice(), [Act::Connect { .. }]));
    assert_eq!(acts[0].header("Authorization"), None);
    // Bad tokens are refused with typed errors.
    assert_eq!(
        c.handle_token(deadline, "a b"),
        Err(xmidt_client_core::Error::InvalidToken)
    );
    assert_eq!(
        c.handle_token(deadline, ""),
        Err(xmidt_client_core::Error::InvalidToken)
    );
    let long = "t".repeat(xmidt_client_core::MAX_TOKEN + 1);
    assert_eq!(
        c.handle_token(deadline, &long),
        Err(xmidt_client_core::Error::TokenTooLong)
    );
}

#[test]
fn a_403_without_a_token_server_backs_off() {
    let config = Config {
        token_server_url: "",
        ..common::config()
    };
    let mut sim = Sim::new(config, 1);
    sim.petasos_redirects = false;
    sim.talaria_script.push_back(Answer::Forbidden);
    sim.next_timeout();
    assert_eq!(sim.client.poll_timeout(), Some(Instant::from_millis(3000)));
    assert_eq!(sim.tokens_issued, 0);
}

#[test]
fn shutdown_closes_with_the_reason_and_never_reconnects() {
    let config = Config {
        token_server_url: "",
        ..common::config()
    };
    let mut sim = Sim::new(config, 1);
    let conn = sim.online();
    sim.client.shutdown("system_restarting").expect("ok");
    assert_eq!(
        sim.pump(),
        [Act::Disconnect {
            conn,
            code: 1000,
            reason: "system_restarting".into()
        }]
    );
    assert_eq!(sim.client.poll_timeout(), None);
    assert!(!sim.client.is_online());
    let too_long = "r".repeat(124);
    assert_eq!(
        sim.client.shutdown(&too_long),
        Err(xmidt_client_core::Error::CloseReasonTooLong)
    );

    // While a connect is queued but not yet taken, shutdown withdraws it.
    let mut c = TestClient::new(&config, Seeded(1), Instant::from_millis(0)).expect("valid");
    c.handle_timeout(Instant::from_millis(0)).expect("ok");
    c.shutdown("parodus_stopping").expect("ok");
    let acts = common::drain(&mut c);
    let [Act::Disconnect { reason, .. }] = acts.as_slice() else {
        panic!("{acts:?}")
    };
    assert_eq!(reason, "parodus_stopping");
}

#[test]
fn cloud_disconnect_answers_closes_and_stays_away_five_minutes() {
    let config = Config {
        token_server_url: "",
        ..common::config()
    };
    let mut sim = Sim::new(config, 1);
    let conn = sim.online();
    let update = OwnedMessage::builder(MessageType::Update)
        .source("dns:tr1d1um")
        .dest(format!("{DEVICE}/parodus/cloud-disconnect"))
        .transaction_uuid("cd-1")
        .payload(br#"{"disconnection-reason":"maintenance 42"}"#.to_vec())
        .build();
    let bytes = common::encode(&update);
    assert_eq!(sim.frame(&bytes), Downstream::Answered { status: 200 });
    let t0 = sim.now;
    let acts = sim.pump();
    assert_eq!(acts.len(), 2, "{acts:?}");
    let answer = common::decode(match &acts[0] {
        Act::Send(f) => f,
        other => panic!("{other:?}"),
    });
    assert_eq!(answer.msg_type, MessageType::Update);
    assert_eq!(answer.status, Some(200));
    assert!(answer.payload.is_empty());
    assert_eq!(
        acts[1],
        Act::Disconnect {
            conn,
            code: 1000,
            reason: "parodus_stopping".into()
        }
    );
    assert_eq!(sim.client.poll_timeout(), Some(t0 + secs(300)));
    sim.advance(secs(299));
    assert_eq!(sim.connects().len(), 2, "no reconnect during the pause");
    sim.advance(secs(1));
    let last = sim.connects().last().cloned().expect("reconnected");
    assert_eq!(last.0, t0 + secs(300));
    assert_eq!(convey_reason(&last.1), "maintenance 42");
    assert!(sim.client.is_online());

    // A reason that is not letters, digits and spaces is a 400 and changes nothing.
    let bad = OwnedMessage::builder(MessageType::Update)
        .source("dns:tr1d1um")
        .dest(format!("{DEVICE}/parodus/cloud-disconnect"))
        .transaction_uuid("cd-2")
        .payload(br#"{"disconnection-reason":"x;y"}"#.to_vec())
        .build();
    let bytes = common::encode(&bad);
    assert_eq!(sim.frame(&bytes), Downstream::Answered { status: 400 });
    assert!(sim.client.is_online());
}

#[test]
fn a_provisioned_token_goes_on_every_connect_without_a_token_server() {
    let config = Config {
        token_server_url: "",
        ..common::config()
    };
    let mut sim = Sim::new(config, 7);
    sim.client
        .handle_token(sim.now, "provisioned.jwt.token")
        .expect("a valid token");
    sim.talaria_script.extend([Answer::Forbidden]);
    sim.online();
    let connects = sim.connects();
    // petasos, talaria (403: no token server to ask, so a backoff), petasos, talaria (101).
    assert_eq!(connects.len(), 4, "{connects:?}");
    assert!(connects
        .iter()
        .all(|(_, a)| a.header("Authorization") == Some("Bearer provisioned.jwt.token")));
    assert!(
        !sim.log
            .iter()
            .any(|(_, a)| matches!(a, Act::FetchToken { .. })),
        "no token server is asked"
    );
    assert!(
        connects[2].0 > connects[1].0,
        "a 403 without a token server backs off"
    );
}
