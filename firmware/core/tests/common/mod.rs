//! The test harness: a client driven by a scripted in-memory cloud (petasos, talaria, themis),
//! with a seeded random source and a manual clock, in the style of quinn-proto's tests.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::collections::VecDeque;
use std::time::Duration;

use wrp_nostd::{Message, MessageType, OwnedMessage};
use xmidt_client_core::{
    Action, Attempt, Client, Config, ConnId, Downstream, Instant, Random, Upstream,
};

/// xorshift32: the same seed gives the same numbers, in the core and in a test's own copy.
#[derive(Debug, Clone)]
pub struct Seeded(pub u32);

impl Random for Seeded {
    fn next_u32(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }
}

pub type TestClient = Client<'static, Seeded, 4, 4096, 4096, 8>;

pub const MAC: &str = "11:22:33:44:55:66";
pub const DEVICE: &str = "mac:112233445566";
pub const PETASOS: &str = "http://petasos.example.com:6400";

/// The §3.2 capture's command line, pointed at the simulated petasos.
pub fn config() -> Config<'static> {
    Config {
        hw_model: "TG1682",
        hw_serial_number: "SER123456",
        hw_manufacturer: "ARRIS",
        hw_last_reboot_reason: "unknown",
        fw_name: "TG1682_DEV_test",
        boot_time: 1_700_000_000,
        boot_time_retry_wait: 7,
        interface_used: "lo",
        interface_label: "wan",
        wan_ipv4_address: "192.0.2.10",
        partner_ids: "comcast,cox",
        protocol: "PARODUS-2.0-2.0.0-173-g9326f2c",
        token_server_url: "http://themis.example.com:6501/issue",
        ..Config::new(MAC, PETASOS)
    }
}

/// An action, owned, so a test can keep it after the client moves on.
#[derive(Debug, Clone, PartialEq)]
pub enum Act {
    FetchToken {
        url: String,
        headers: Vec<(String, String)>,
    },
    Connect {
        conn: ConnId,
        url: String,
        host: String,
        headers: Vec<(String, String)>,
    },
    Send(Vec<u8>),
    Deliver {
        service: String,
        message: Vec<u8>,
    },
    Disconnect {
        conn: ConnId,
        code: u16,
        reason: String,
    },
}

impl Act {
    pub fn header(&self, name: &str) -> Option<&str> {
        match self {
            Act::Connect { headers, .. } | Act::FetchToken { headers, .. } => headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str()),
            _ => None,
        }
    }
}

fn pairs<'a>(it: impl Iterator<Item = (&'static str, &'a str)>) -> Vec<(String, String)> {
    it.map(|(n, v)| (n.to_string(), v.to_string())).collect()
}

pub fn own(a: Action<'_>) -> Act {
    match a {
        Action::FetchToken(t) => Act::FetchToken {
            url: t.url.to_string(),
            headers: pairs(t.headers()),
        },
        Action::Connect(c) => Act::Connect {
            conn: c.conn,
            url: c.endpoint.url().to_string(),
            host: c.endpoint.host.to_string(),
            headers: pairs(c.headers.iter()),
        },
        Action::Send(f) => Act::Send(f.to_vec()),
        Action::Deliver { service, message } => Act::Deliver {
            service: service.to_string(),
            message: message.to_vec(),
        },
        Action::Disconnect { conn, code, reason } => Act::Disconnect {
            conn,
            code,
            reason: reason.to_string(),
        },
    }
}

pub fn drain(client: &mut TestClient) -> Vec<Act> {
    let mut out = Vec::new();
    while let Some(a) = client.poll_action() {
        out.push(own(a));
        assert!(out.len() < 1000, "poll_action never ends");
    }
    out
}

/// The reconnect reason a connect's convey carries.
pub fn convey_reason(connect: &Act) -> String {
    use base64::Engine;
    let convey = connect.header("X-WebPA-Convey").expect("a connect");
    let json = base64::engine::general_purpose::STANDARD
        .decode(convey)
        .expect("base64");
    let v: serde_json::Value = serde_json::from_slice(&json).expect("JSON");
    v["webpa-last-reconnect-reason"]
        .as_str()
        .expect("a reason")
        .to_string()
}

/// parodus's backoff waits (client-spec §3.8), computed here from the same random numbers.
pub fn parodus_waits(rng: &mut Seeded, backoff_max: u32, n: usize) -> Vec<Duration> {
    let (mut count, mut delay) = (1u32, 1u32);
    (0..n)
        .map(|_| {
            if count < backoff_max {
                count += 1;
                delay = 2 * delay + 1;
            }
            if delay <= 3 {
                return Duration::from_secs(3);
            }
            let secs = rng.next_u32() & delay;
            let secs = if secs < 3 { secs + 3 } else { secs };
            let nanos = rng.next_u32() >> 2;
            let nanos = if nanos >= 1_000_000_000 {
                nanos - 1_000_000_000
            } else {
                nanos
            };
            Duration::new(u64::from(secs), nanos)
        })
        .collect()
}

pub fn decode(frame: &[u8]) -> OwnedMessage {
    OwnedMessage::decode(frame).expect("the core writes valid WRP")
}

pub fn encode(m: &OwnedMessage) -> Vec<u8> {
    m.to_msgpack().expect("encodable")
}

/// The top-level keys of a msgpack map, in order, repeats included.
pub fn raw_keys(bytes: &[u8]) -> Vec<String> {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a map")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<String>, A::Error> {
            let mut keys = Vec::new();
            while let Some(k) = map.next_key::<String>()? {
                map.next_value::<IgnoredAny>()?;
                keys.push(k);
            }
            Ok(keys)
        }
    }
    let mut de = rmp_serde::Deserializer::new(bytes);
    (&mut de).deserialize_map(Keys).expect("a msgpack map")
}

/// Metadata entries as written, repeats included.
pub fn metadata_entries(bytes: &[u8]) -> Vec<(String, String)> {
    Message::decode(bytes)
        .expect("valid WRP")
        .metadata
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A request from the cloud to `dest`.
pub fn request(dest: &str, tuuid: &str) -> OwnedMessage {
    OwnedMessage::builder(MessageType::SimpleRequestResponse)
        .source("dns:talaria")
        .dest(dest)
        .transaction_uuid(tuuid)
        .payload(b"{}".to_vec())
        .build()
}

/// What the simulated cloud does with a connect attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// petasos: 307 to talaria.
    Redirect(u16),
    Forbidden,
    Unavailable,
    /// TCP refused (no HTTP answer).
    Refused,
    /// No answer at all.
    Silent,
    Accept,
}

/// Events the cloud has for the client, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Token(String),
    TokenFailed,
    Handshake(ConnId, u16, Option<String>),
    ConnectFailed(ConnId),
}

/// A scripted cloud: petasos redirects, themis issues tokens, talaria accepts or refuses as
/// the test says, and everything the device does is recorded.
pub struct Sim {
    pub client: TestClient,
    pub now: Instant,
    pub talaria: &'static str,
    /// Answers for the next connects to talaria, in order; `Accept` when empty.
    pub talaria_script: VecDeque<Answer>,
    /// Whether petasos redirects (else it answers like talaria).
    pub petasos_redirects: bool,
    pub token_failures: usize,
    pub tokens_issued: usize,
    /// Everything the client asked, with the time it asked.
    pub log: Vec<(Instant, Act)>,
    /// The current connection, when online.
    pub conn: Option<ConnId>,
    events: VecDeque<Event>,
}

impl Sim {
    pub fn new(config: Config<'static>, seed: u32) -> Self {
        let client =
            TestClient::new(&config, Seeded(seed), Instant::from_millis(0)).expect("valid");
        Sim {
            client,
            now: Instant::from_millis(0),
            talaria: "http://talaria-1.example.com:6200/api/v2/device",
            talaria_script: VecDeque::new(),
            petasos_redirects: true,
            token_failures: 0,
            tokens_issued: 0,
            log: Vec::new(),
            conn: None,
            events: VecDeque::new(),
        }
    }

    /// Drains the client's actions, letting the cloud answer them.
    pub fn pump(&mut self) -> Vec<Act> {
        let mut acted = Vec::new();
        loop {
            let acts = drain(&mut self.client);
            if acts.is_empty() && self.events.is_empty() {
                return acted;
            }
            for a in acts {
                self.cloud(&a);
                self.log.push((self.now, a.clone()));
                acted.push(a);
            }
            while let Some(e) = self.events.pop_front() {
                self.feed(e);
            }
        }
    }

    fn cloud(&mut self, a: &Act) {
        match a {
            Act::FetchToken { .. } => {
                if self.token_failures > 0 {
                    self.token_failures -= 1;
                    self.events.push_back(Event::TokenFailed);
                } else {
                    self.tokens_issued += 1;
                    self.events
                        .push_back(Event::Token(format!("token-{}", self.tokens_issued)));
                }
            }
            Act::Connect { conn, host, .. } => {
                let answer = if host.starts_with("petasos") && self.petasos_redirects {
                    Answer::Redirect(307)
                } else {
                    self.talaria_script.pop_front().unwrap_or(Answer::Accept)
                };
                self.events.extend(match answer {
                    Answer::Silent => None,
                    Answer::Redirect(code) => Some(Event::Handshake(
                        *conn,
                        code,
                        Some(self.talaria.to_string()),
                    )),
                    Answer::Forbidden => Some(Event::Handshake(*conn, 403, None)),
                    Answer::Unavailable => Some(Event::Handshake(*conn, 503, None)),
                    Answer::Refused => Some(Event::ConnectFailed(*conn)),
                    Answer::Accept => Some(Event::Handshake(*conn, 101, None)),
                });
            }
            Act::Disconnect { conn, .. } if Some(*conn) == self.conn => self.conn = None,
            _ => {}
        }
    }

    fn feed(&mut self, e: Event) {
        let now = self.now;
        match e {
            Event::Token(t) => self.client.handle_token(now, &t).expect("token accepted"),
            Event::TokenFailed => self.client.handle_token_failed(now).expect("ok"),
            Event::ConnectFailed(c) => {
                self.client.handle_connect_failed(now, c);
            }
            Event::Handshake(c, status, location) => {
                let r = self
                    .client
                    .handle_handshake(now, c, status, location.as_deref())
                    .expect("ok");
                if r == Attempt::Online {
                    self.conn = Some(c);
                }
            }
        }
    }

    /// Moves the clock to the client's next timeout and runs it; returns that time.
    pub fn next_timeout(&mut self) -> Instant {
        let at = self.client.poll_timeout().expect("a timeout is armed");
        assert!(at >= self.now, "timeouts never go back");
        self.now = at;
        self.client.handle_timeout(at).expect("timeout handled");
        self.pump();
        at
    }

    /// Advances the clock by `d`, running every timeout on the way.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(at) = self.client.poll_timeout().filter(|&at| at <= end) {
            self.now = self.now.max(at);
            self.client
                .handle_timeout(self.now)
                .expect("timeout handled");
            self.pump();
        }
        self.now = end;
    }

    /// Starts the client and runs until it is online.
    pub fn online(&mut self) -> ConnId {
        for _ in 0..100 {
            if let Some(c) = self.conn {
                return c;
            }
            self.next_timeout();
        }
        panic!("never came online");
    }

    /// A frame from the cloud on the current connection.
    pub fn frame<'a>(&mut self, bytes: &'a [u8]) -> Downstream<'a> {
        let conn = self.conn.expect("online");
        self.client
            .handle_frame(self.now, conn, bytes)
            .expect("handled")
    }

    pub fn local<'a>(&mut self, bytes: &'a [u8]) -> Upstream<'a> {
        self.client.handle_local(self.now, bytes).expect("handled")
    }

    pub fn connects(&self) -> Vec<(Instant, Act)> {
        self.log
            .iter()
            .filter(|(_, a)| matches!(a, Act::Connect { .. }))
            .cloned()
            .collect()
    }

    pub fn sent(acts: &[Act]) -> Vec<Vec<u8>> {
        acts.iter()
            .filter_map(|a| match a {
                Act::Send(f) => Some(f.clone()),
                _ => None,
            })
            .collect()
    }
}
