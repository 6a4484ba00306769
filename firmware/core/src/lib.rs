//! The Xmidt device client's protocol core: parodus's behaviour as a sans-IO state machine.
//!
//! `#![no_std]`, no allocator, no I/O, no clock, no randomness of its own. Two thin drivers run
//! it: `client-std` (tokio + tungstenite + the libparodus nanomsg IPC, a drop-in parodus) and the
//! embassy firmware (embassy-net + embedded-tls + edge-ws). The README lists what follows parodus
//! and every deliberate divergence.
//!
//! # The driver contract
//!
//! One [`Client`] per device. The driver owns the sockets, the clock and the random numbers; the
//! client owns every decision.
//!
//! - **Events in** (`handle_*`), each with the driver's monotonic time: the HTTP answer to the
//!   WebSocket upgrade ([`Client::handle_handshake`], with its `Location`), a failed connect, a
//!   token or its failure, a reassembled data frame ([`Client::handle_frame`]), a ping, the
//!   socket closing, a message from a local service ([`Client::handle_local`]), and
//!   [`Client::handle_timeout`] when the time asked for has come. Connection events quote the
//!   [`ConnId`] of the [`Action::Connect`] they answer; news from older connections is ignored.
//! - **Actions out**: drain [`Client::poll_action`] until `None` after every event. Each
//!   [`Action`] borrows the client until the next call: fetch a token, connect, send a frame,
//!   deliver to a local service, disconnect. What the core merely routes is not copied: a frame
//!   for a local service comes back from `handle_frame` as [`Downstream::Deliver`] pointing into
//!   the driver's own buffer.
//! - **Timers**: one. After draining, sleep until [`Client::poll_timeout`] or the next event,
//!   whichever is first, then call [`Client::handle_timeout`] if it was the timer.
//! - **Randomness**: the [`Random`] given to [`Client::new`] (any `FnMut() -> u32`); the core
//!   calls it for backoff waits and uuids only.
//! - **The WebSocket layer** (tungstenite, edge-ws) answers pings with pongs, echoes a server's
//!   close frame, reassembles fragments and masks what it sends; the core only hears of pings
//!   (for the ping timeout) and of closes.
//!
//! # A driver loop
//!
//! The transport here is a stand-in that accepts the WebSocket and sends one request; in
//! `client-std` it is tokio + tungstenite, in the firmware embassy-net + edge-ws, and the loop
//! has the same shape.
//!
//! ```
//! use std::collections::VecDeque;
//! use wrp_nostd::{Message, MessageType};
//! use xmidt_client_core::{Action, Client, Config, ConnId, Downstream, Instant};
//!
//! /// What the driver's sockets and timer report.
//! enum Event {
//!     Timer,
//!     Handshake(ConnId, u16),
//!     Frame(ConnId, Vec<u8>),
//! }
//!
//! /// A stand-in for the sockets: the cloud accepts and sends one request for `config`.
//! #[derive(Default)]
//! struct Io {
//!     now_ms: u64,
//!     events: VecDeque<Event>,
//!     sent: Vec<Vec<u8>>,
//!     delivered: Vec<(String, Vec<u8>)>,
//! }
//!
//! impl Io {
//!     fn act(&mut self, action: Action<'_>) {
//!         match action {
//!             Action::Connect(c) => {
//!                 // Open `c.endpoint.url()` sending `c.headers.iter()`; report the answer later.
//!                 assert_eq!(c.endpoint.url().to_string(), "wss://petasos.example.com/api/v2/device");
//!                 self.events.push_back(Event::Handshake(c.conn, 101));
//!                 let request = Message {
//!                     source: "dns:scytale",
//!                     dest: "mac:112233445566/config",
//!                     transaction_uuid: "t-1",
//!                     ..Message::new(MessageType::SimpleRequestResponse)
//!                 };
//!                 let mut frame = vec![0; request.encoded_len().unwrap()];
//!                 request.encode(&mut frame).unwrap();
//!                 self.events.push_back(Event::Frame(c.conn, frame));
//!             }
//!             // One binary frame on the open WebSocket.
//!             Action::Send(frame) => self.sent.push(frame.to_vec()),
//!             // Over the service's PUSH socket, or to its handler.
//!             Action::Deliver { service, message } => self.deliver(service, message),
//!             // Close frame (code, reason), then drop the socket.
//!             Action::Disconnect { .. } => {}
//!             // GET request.url with request.headers(), client certificate; report the body.
//!             Action::FetchToken(_request) => {}
//!         }
//!     }
//!
//!     fn deliver(&mut self, service: &str, message: &[u8]) {
//!         self.delivered.push((service.to_string(), message.to_vec()));
//!     }
//!
//!     /// Waits for the next socket event or until `deadline`.
//!     fn wait(&mut self, deadline: Option<Instant>) -> Event {
//!         self.events.pop_front().unwrap_or_else(|| {
//!             self.now_ms = deadline.map_or(self.now_ms, |d| d.as_millis());
//!             Event::Timer
//!         })
//!     }
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let config = Config {
//!         hw_model: "TG1682",
//!         ..Config::new("11:22:33:44:55:66", "https://petasos.example.com")
//!     };
//!     let mut state = 0x2545_f491u32;
//!     let random = move || {
//!         state ^= state << 13;
//!         state ^= state >> 17;
//!         state ^= state << 5;
//!         state
//!     };
//!     let mut client: Client<'_, _> = Client::new(&config, random, Instant::from_millis(0))?;
//!     client.register_service("config")?;
//!     let mut io = Io::default();
//!
//!     for _ in 0..4 {
//!         // a real driver: `loop`
//!         while let Some(action) = client.poll_action() {
//!             io.act(action);
//!         }
//!         let event = io.wait(client.poll_timeout());
//!         let now = Instant::from_millis(io.now_ms);
//!         match event {
//!             Event::Timer => client.handle_timeout(now)?,
//!             Event::Handshake(conn, status) => {
//!                 client.handle_handshake(now, conn, status, None)?;
//!             }
//!             Event::Frame(conn, bytes) => match client.handle_frame(now, conn, &bytes)? {
//!                 Downstream::Deliver { service, message } => io.deliver(service, message),
//!                 // No tag storage in this driver.
//!                 Downstream::Tag(tag) => client.answer_tag(&tag, 500, b"")?,
//!                 // Answered (an Action::Send is queued), acknowledged, or dropped.
//!                 _ => {}
//!             },
//!         }
//!     }
//!     assert!(client.is_online());
//!     assert_eq!(io.delivered.len(), 1);
//!     assert_eq!(io.delivered[0].0, "config");
//!     Ok(())
//! }
//! ```
#![no_std]
#![forbid(unsafe_code)]

mod backoff;
mod base64;
mod client;
mod config;
mod crud;
mod error;
mod handshake;
mod json;
mod outbox;
mod qos;
mod random;
mod reason;
mod routing;
mod services;
mod time;
mod url;
mod wire;

pub use client::{
    Action, Attempt, Client, ConnId, Downstream, Stats, Upstream, AUTH_OK, CLOUD_DISCONNECT_PAUSE,
    MAX_AUTH_REFRESHES, MAX_CLOSE_REASON, MAX_REDIRECTS, MAX_TOKEN, SERVICE_ALIVE, TOKEN_TIMEOUT,
};
pub use config::{
    Config, DEFAULT_PROTOCOL, MAX_CONVEY_EXTRAS, MAX_FIELD, MAX_PARTNERS, MAX_PROTOCOL, MAX_URL,
};
pub use crud::{TagOp, TagRequest};
pub use error::{ConfigError, Dropped, Error};
pub use handshake::{Connect, Headers, TokenRequest, DEVICE_PROTOCOLS, MAX_CONVEY, MAX_USER_AGENT};
pub use random::{Random, Uuid};
pub use reason::MAX_DISCONNECT_REASON;
pub use services::{MAX_SERVICE_NAME, MAX_SERVICE_URL};
pub use time::Instant;
pub use url::{Endpoint, Url, UrlError, DEVICE_PATH};
pub use wire::MAX_METADATA_ENTRIES;
