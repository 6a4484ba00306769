//! The driver loop: runs `xmidt-client-core` over a [`Connector`], with TLS, WebSocket framing
//! and the application's services.
//!
//! Offline, one loop drains the core's actions and sleeps until its timer or an event. Online,
//! two futures share the device: a reader that only waits for the server's bytes (so a read is
//! never cancelled half-way) and a writer that sends what the core asks, handles the timer,
//! events and pongs.

use core::convert::Infallible;

use embassy_futures::select::{select, select3, Either, Either3};
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::channel::DynamicReceiver;
use embassy_sync::mutex::Mutex;
use embassy_sync::signal::Signal;
use embassy_time::{with_deadline, with_timeout, Duration, Timer};
use embedded_io_async::{Read, Write};
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use wrp_nostd::Message;
use xmidt_client_core::{
    Action, Client, ConfigError, ConnId, Downstream, Error, Instant, Random, Upstream,
};

use crate::net::{Connector, Duplex, Link, LinkReader, LinkWriter, Provider, Socket};
use crate::service::{Event, Reply, Service, REPLY_CAPACITY};
use crate::ws::{self, Inbox, Incoming, Key};
use crate::Config;

/// Services the device can register.
pub const MAX_SERVICES: usize = 4;
/// Bytes for messages the core writes (an answer or event plus ~400 bytes of metadata).
const OUTBOX: usize = 2048;
/// The QoS queue: bytes and messages.
const QUEUE_BYTES: usize = 2048;
const QUEUE_MSGS: usize = 8;
/// The receive buffer: the upgrade answer, then WebSocket frames. The largest message from the
/// cloud is this less a frame header (4 bytes); larger ones close the connection with 1009.
pub const INBOX: usize = 4096;
/// TLS record buffers. A server may send records of 16 KiB plus overhead (embedded-tls's
/// advice); what the device sends is split into records that fit the write buffer.
const TLS_READ: usize = 16_640;
const TLS_WRITE: usize = 2048;
/// How long one frame may take to leave before the connection counts as dead.
const WRITE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the TLS close_notify may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Local services answering each other: how many answers in a row are passed on.
const MAX_LOCAL_HOPS: usize = 4;
/// The longest host name (DNS); the core's URL parser enforces it.
const MAX_HOST: usize = 253;

type CoreClient<'c, Rnd> = Client<'c, Rnd, MAX_SERVICES, OUTBOX, QUEUE_BYTES, QUEUE_MSGS>;

/// Why [`run`] could not start.
#[derive(Debug)]
pub enum StartError {
    /// The configuration is invalid (the core's validation).
    Config(ConfigError),
    /// A service could not be registered (its name, or too many services).
    Service(Error),
    /// The configured token is too long or not printable ASCII.
    Token(Error),
}

impl defmt::Format for StartError {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self {
            StartError::Config(e) => defmt::write!(f, "config: {}", defmt::Display2Format(e)),
            StartError::Service(e) => defmt::write!(f, "service: {}", defmt::Display2Format(e)),
            StartError::Token(e) => defmt::write!(f, "token: {}", defmt::Display2Format(e)),
        }
    }
}

fn now() -> Instant {
    Instant::from_millis(embassy_time::Instant::now().as_millis())
}

fn at(i: Instant) -> embassy_time::Instant {
    embassy_time::Instant::from_millis(i.as_millis())
}

/// Sleeps until the core's deadline, or forever without one.
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => Timer::at(at(d)).await,
        None => core::future::pending().await,
    }
}

/// Runs the device client for good: connects (following petasos's redirect), answers the
/// cloud, runs `services`, sends `events`, reconnects with parodus's backoff.
///
/// `rng` keys TLS and masks frames, and seeds the core's own generator (backoff jitter, uuids):
/// give it the board's TRNG, or a CSPRNG seeded from real entropy. Returns only when it cannot
/// start.
pub async fn run<C: Connector, R: RngCore + CryptoRng>(
    config: &Config<'_>,
    connector: &mut C,
    mut rng: R,
    services: &mut [&mut dyn Service],
    events: DynamicReceiver<'_, Event>,
) -> Result<Infallible, StartError> {
    let mac = mac_text(config.mac);
    let core_config = config.core(&mac);
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    let mut core_rng = ChaCha20Rng::from_seed(seed);
    let client: CoreClient<'_, _> = Client::new(&core_config, move || core_rng.next_u32(), now())
        .map_err(StartError::Config)?;
    let mut dev = Device {
        client,
        services,
        replies: [[0; REPLY_CAPACITY]; 2],
        pong: None,
    };
    // On `dev`, which the future keeps anyway: a borrowed local client would be kept too
    // (9 KiB more of every board's RAM).
    if !config.token.is_empty() {
        dev.client
            .handle_token(now(), config.token)
            .map_err(StartError::Token)?;
    }
    for service in dev.services.iter() {
        dev.client
            .register_service(service.name())
            .map_err(StartError::Service)?;
    }
    defmt::info!(
        "xmidt: {=str} starting, cloud {=str}",
        dev.client.device_id(),
        config.cloud_url
    );

    let mut inbox = [0u8; INBOX];
    let mut tls_read = [0u8; TLS_READ];
    let mut tls_write = [0u8; TLS_WRITE];
    loop {
        if let Some(target) = dev.drain_offline(&mut inbox, &mut rng) {
            let mut attempt = Attempt {
                dev: &mut dev,
                target: &target,
                inbox: &mut inbox,
                rng: &mut rng,
                events: &events,
                deadline: embassy_time::Instant::now()
                    + Duration::from_secs(u64::from(config.connect_timeout_secs)),
            };
            attempt
                .connect(connector, (&mut tls_read, &mut tls_write), config.ca)
                .await;
            continue;
        }
        match select(until(dev.client.poll_timeout()), events.receive()).await {
            Either::First(()) => {
                if let Err(e) = dev.client.handle_timeout(now()) {
                    defmt::warn!("xmidt: timer: {}", defmt::Display2Format(&e));
                }
            }
            Either::Second(event) => dev.upstream(event.as_bytes()),
        }
    }
}

/// `52:54:00:12:34:56`, the core's `hw_mac`.
fn mac_text(mac: [u8; 6]) -> heapless::String<17> {
    use core::fmt::Write;
    let mut s = heapless::String::new();
    for (i, b) in mac.iter().enumerate() {
        // 17 bytes: six pairs and five colons.
        let _ = write!(s, "{}{b:02x}", if i > 0 { ":" } else { "" });
    }
    s
}

/// Where the core asked to connect, with the upgrade request already written.
struct Target {
    conn: ConnId,
    secure: bool,
    host: heapless::String<MAX_HOST>,
    port: u16,
    key: Key,
    request_len: usize,
}

/// How a connection ended.
enum End {
    /// The server sent a close frame (its code, if any).
    Closed(Option<u16>),
    /// EOF, an I/O error or a write that did not finish in time.
    Lost,
    /// The server broke RFC 6455: close with this code.
    Violation(u16),
    /// The core closed it (a close frame was sent); nothing to report.
    Disconnected,
}

struct Device<'c, 's, 'r, Rnd: Random> {
    client: CoreClient<'c, Rnd>,
    services: &'s mut [&'r mut dyn Service],
    /// Answers of services; two, so an answer delivered to another local service can be
    /// answered in turn.
    replies: [[u8; REPLY_CAPACITY]; 2],
    /// A ping's payload, to echo.
    pong: Option<heapless::Vec<u8, { ws::MAX_CONTROL_PAYLOAD }>>,
}

/// Runs the service called `service` on `message`; the length of its answer in `out`.
fn call(services: &mut [&mut dyn Service], service: &str, message: &[u8], out: &mut [u8]) -> usize {
    let Some(handler) = services.iter_mut().find(|s| s.name() == service) else {
        defmt::warn!("xmidt: no service {=str}", service);
        return 0;
    };
    let Ok(message) = Message::decode(message) else {
        defmt::warn!("xmidt: undecodable message for {=str}", service);
        return 0;
    };
    let mut reply = Reply::new(out);
    handler.handle(&message, &mut reply);
    reply.len()
}

/// What became of an upstream message: a delivery to a local service is returned; the rest is
/// logged, and tag requests are answered (no tag storage here).
fn settle<'m, Rnd: Random>(
    client: &mut CoreClient<'_, Rnd>,
    outcome: Result<Upstream<'m>, Error>,
) -> Option<(&'m str, &'m [u8])> {
    match outcome {
        Ok(Upstream::Deliver { service, message }) => return Some((service, message)),
        Ok(Upstream::Sent) => {}
        Ok(Upstream::Queued { displaced }) => {
            defmt::debug!("xmidt: queued for QoS ({=usize} displaced)", displaced);
        }
        Ok(Upstream::Answered { status }) => {
            defmt::debug!("xmidt: answered locally {=u16}", status)
        }
        Ok(Upstream::Tag(tag)) => {
            if let Err(e) = client.answer_tag(&tag, 500, b"") {
                defmt::warn!("xmidt: tag answer: {}", defmt::Display2Format(&e));
            }
        }
        Ok(Upstream::Dropped(why)) => {
            defmt::info!("xmidt: upstream dropped: {}", defmt::Display2Format(&why));
        }
        Ok(Upstream::Register { service, .. }) => {
            defmt::warn!("xmidt: ignored a registration message for {=str}", service);
        }
        Err(e) => defmt::warn!("xmidt: upstream: {}", defmt::Display2Format(&e)),
    }
    None
}

impl<Rnd: Random> Device<'_, '_, '_, Rnd> {
    /// A message from the application (an event): to the core, then wherever it goes.
    fn upstream(&mut self, bytes: &[u8]) {
        let outcome = self.client.handle_local(now(), bytes);
        if let Some((service, message)) = settle(&mut self.client, outcome) {
            let n = call(self.services, service, message, &mut self.replies[0]);
            self.forward(0, n);
        }
    }

    /// Passes on the answer in `replies[slot]` (`len` bytes, none when 0), and answers to it
    /// from other local services, alternating between the two reply buffers.
    fn forward(&mut self, mut slot: usize, mut len: usize) {
        for _ in 0..MAX_LOCAL_HOPS {
            if len == 0 {
                return;
            }
            let [a, b] = &mut self.replies;
            let (from, to) = if slot == 0 { (&*a, b) } else { (&*b, a) };
            let outcome = self.client.handle_local(now(), &from[..len]);
            let Some((service, message)) = settle(&mut self.client, outcome) else {
                return;
            };
            len = call(self.services, service, message, to);
            slot ^= 1;
        }
        defmt::warn!("xmidt: local services kept answering each other; dropped");
    }

    /// A message from the cloud.
    fn frame(&mut self, conn: ConnId, bytes: &[u8]) {
        match self.client.handle_frame(now(), conn, bytes) {
            Ok(Downstream::Deliver { service, message }) => {
                let n = call(self.services, service, message, &mut self.replies[0]);
                self.forward(0, n);
            }
            Ok(Downstream::Tag(tag)) => {
                if let Err(e) = self.client.answer_tag(&tag, 500, b"") {
                    defmt::warn!("xmidt: tag answer: {}", defmt::Display2Format(&e));
                }
            }
            Ok(Downstream::Answered { status }) => defmt::debug!("xmidt: answered {=u16}", status),
            Ok(Downstream::Acked) => defmt::debug!("xmidt: QoS ack"),
            Ok(Downstream::Dropped(why)) => {
                defmt::info!("xmidt: dropped from cloud: {}", defmt::Display2Format(&why));
            }
            Err(e) => defmt::warn!("xmidt: frame: {}", defmt::Display2Format(&e)),
        }
    }

    /// Drains the core's actions while offline; the connect it asks for, if any.
    fn drain_offline<R: RngCore>(&mut self, inbox: &mut [u8], rng: &mut R) -> Option<Target> {
        while let Some(action) = self.client.poll_action() {
            match action {
                Action::Connect(c) => {
                    let mut key = [0u8; 16];
                    rng.fill_bytes(&mut key);
                    let key = Key::new(key);
                    let e = c.endpoint;
                    let mut host = heapless::String::new();
                    // The core bounds hosts to this capacity.
                    let _ = host.push_str(e.host);
                    match ws::write_request(inbox, e.host, e.port, e.secure, &key, c.headers.iter())
                    {
                        Ok(request_len) => {
                            defmt::info!(
                                "xmidt: connecting to {}",
                                defmt::Display2Format(&e.url())
                            );
                            return Some(Target {
                                conn: c.conn,
                                secure: e.secure,
                                host,
                                port: e.port,
                                key,
                                request_len,
                            });
                        }
                        Err(_) => {
                            defmt::error!(
                                "xmidt: upgrade request larger than {=usize} bytes",
                                INBOX
                            );
                            let conn = c.conn;
                            self.client.handle_connect_failed(now(), conn);
                        }
                    }
                }
                Action::Deliver { service, message } => {
                    let n = call(self.services, service, message, &mut self.replies[0]);
                    self.forward(0, n);
                }
                // Frames and closes for a connection that is gone.
                Action::Send(_) | Action::Disconnect { .. } => {}
                // No token server is configured in firmware: connect without one.
                Action::FetchToken(_) => {
                    if let Err(e) = self.client.handle_token_failed(now()) {
                        defmt::warn!("xmidt: {}", defmt::Display2Format(&e));
                    }
                }
            }
        }
        None
    }
}

/// One connect attempt and, if it upgrades, the session on it.
struct Attempt<'a, 'c, 's, 'r, 'e, Rnd: Random, R> {
    dev: &'a mut Device<'c, 's, 'r, Rnd>,
    target: &'a Target,
    inbox: &'a mut [u8],
    rng: &'a mut R,
    events: &'a DynamicReceiver<'e, Event>,
    /// The end of the attempt: TCP, TLS and the upgrade together.
    deadline: embassy_time::Instant,
}

impl<Rnd: Random, R: RngCore + CryptoRng> Attempt<'_, '_, '_, '_, '_, Rnd, R> {
    fn failed(&mut self, what: &str) {
        let outcome = self
            .dev
            .client
            .handle_connect_failed(now(), self.target.conn);
        defmt::warn!("xmidt: connect failed: {=str}", what);
        log_attempt(outcome);
    }

    async fn connect<C: Connector>(
        &mut self,
        connector: &mut C,
        tls_buffers: (&mut [u8], &mut [u8]),
        ca: &[u8],
    ) {
        let target = self.target;
        let host = target.host.as_str();
        let connected = with_deadline(self.deadline, connector.connect(host, target.port)).await;
        let mut socket = match connected {
            Ok(Ok(socket)) => socket,
            Ok(Err(e)) => {
                defmt::warn!("xmidt: {}", e);
                return self.failed("TCP");
            }
            Err(_) => return self.failed("TCP timeout"),
        };
        {
            let (r, w) = socket.split();
            let (r, w) = (Mutex::new(r), Mutex::new(w));
            let duplex = Duplex::new(&r, &w);
            let link = if !target.secure {
                Ok(Link::Plain(duplex))
            } else if ca.is_empty() {
                Err("wss needs a CA certificate in the config")
            } else {
                let provider = Provider::new(&mut *self.rng, ca, host);
                let handshake = Link::tls(duplex, tls_buffers, provider, host);
                match with_deadline(self.deadline, handshake).await {
                    Ok(Ok(link)) => Ok(link),
                    Ok(Err(e)) => {
                        defmt::warn!("xmidt: TLS: {}", e);
                        Err("TLS")
                    }
                    Err(_) => Err("TLS timeout"),
                }
            };
            match link {
                Ok(mut link) => {
                    self.upgrade(&mut link).await;
                    let _ = with_timeout(CLOSE_TIMEOUT, link.close()).await;
                }
                Err(what) => self.failed(what),
            }
        }
        socket.close().await;
    }

    /// Sends the upgrade request, reads the answer, tells the core; online, runs the session.
    async fn upgrade<Rd, Wr>(&mut self, link: &mut Link<'_, '_, Rd, Wr>)
    where
        Rd: Read,
        Wr: Write<Error = Rd::Error>,
    {
        let (mut reader, mut writer) = link.split();
        let request = &self.inbox[..self.target.request_len];
        let sent = with_deadline(self.deadline, async {
            writer.write_all(request).await?;
            writer.flush().await
        })
        .await;
        if !matches!(sent, Ok(Ok(()))) {
            return self.failed("sending the upgrade request");
        }
        let mut filled = 0;
        let head = loop {
            let full = filled == self.inbox.len();
            match ws::parse_response(&self.inbox[..filled], &self.target.key, full) {
                Ok(Some(parsed)) => break parsed,
                Ok(None) => {}
                Err(e) => {
                    defmt::warn!("xmidt: upgrade answer: {}", e);
                    return self.failed("upgrade");
                }
            }
            match with_deadline(self.deadline, reader.read(&mut self.inbox[filled..])).await {
                Ok(Ok(n)) if n > 0 => filled += n,
                _ => return self.failed("reading the upgrade answer"),
            }
        };
        let conn = self.target.conn;
        defmt::info!("xmidt: upgrade answer {=u16}", head.status);
        let location = head.location(self.inbox);
        match self
            .dev
            .client
            .handle_handshake(now(), conn, head.status, location)
        {
            Ok(xmidt_client_core::Attempt::Online) => {}
            Ok(outcome) => return log_attempt(outcome),
            Err(e) => return defmt::warn!("xmidt: handshake: {}", defmt::Display2Format(&e)),
        }
        defmt::info!("xmidt: online as {=str}", self.dev.client.device_id());
        let mut inbox = Inbox::new(&mut *self.inbox);
        inbox.keep(head.len, filled);
        let end = {
            let shared = Mutex::<NoopRawMutex, _>::new(&mut *self.dev);
            let wake = Signal::<NoopRawMutex, ()>::new();
            let reading = read_loop(&shared, &mut reader, &mut inbox, conn, &wake);
            let writing = write_loop(
                &shared,
                &mut writer,
                conn,
                &wake,
                self.events,
                &mut *self.rng,
            );
            match select(reading, writing).await {
                Either::First(end) | Either::Second(end) => end,
            }
        };
        let reported = match end {
            End::Closed(code) => {
                // Echo the server's close (RFC 6455 §5.5.1; nopoll did not).
                let mut payload = [0u8; ws::MAX_CONTROL_PAYLOAD];
                let n = code.map_or(0, |c| ws::close_payload(c, "", &mut payload));
                let _ = send(&mut writer, ws::OP_CLOSE, &payload[..n], &mut *self.rng).await;
                defmt::info!("xmidt: closed by the server ({})", code);
                Some(code)
            }
            End::Violation(code) => {
                let mut payload = [0u8; ws::MAX_CONTROL_PAYLOAD];
                let n = ws::close_payload(code, "", &mut payload);
                let _ = send(&mut writer, ws::OP_CLOSE, &payload[..n], &mut *self.rng).await;
                defmt::warn!("xmidt: protocol violation, closed with {=u16}", code);
                Some(Some(code))
            }
            End::Lost => {
                defmt::info!("xmidt: connection lost");
                Some(None)
            }
            End::Disconnected => None,
        };
        if let Some(code) = reported {
            if let Err(e) = self.dev.client.handle_closed(now(), conn, code) {
                defmt::warn!("xmidt: {}", defmt::Display2Format(&e));
            }
        }
    }
}

/// What the core decided about a connect attempt that did not go online.
fn log_attempt(outcome: xmidt_client_core::Attempt) {
    use xmidt_client_core::Attempt;
    match outcome {
        Attempt::Backoff { until } => {
            let wait = until.saturating_duration_since(now()).as_millis() as u64;
            defmt::info!("xmidt: next attempt in {=u64} ms", wait);
        }
        Attempt::Redirected => defmt::debug!("xmidt: following the redirect"),
        Attempt::RefreshingToken => defmt::debug!("xmidt: fetching a new token"),
        Attempt::Online | Attempt::Stale => {}
    }
}

type Shared<'a, 'c, 's, 'r, Rnd> = Mutex<NoopRawMutex, &'a mut Device<'c, 's, 'r, Rnd>>;

/// Reads frames until the connection ends; hands each to the core.
async fn read_loop<Rnd: Random, Rd: Read, Wr: Write<Error = Rd::Error>>(
    shared: &Shared<'_, '_, '_, '_, Rnd>,
    reader: &mut LinkReader<'_, '_, Rd, Wr>,
    inbox: &mut Inbox<'_>,
    conn: ConnId,
    wake: &Signal<NoopRawMutex, ()>,
) -> End {
    loop {
        loop {
            let item = match inbox.next() {
                Ok(Some(item)) => item,
                Ok(None) => break,
                Err(v) => return End::Violation(v.0),
            };
            let mut dev = shared.lock().await;
            match item {
                Incoming::Message(bytes) => dev.frame(conn, bytes),
                Incoming::Ping(payload) => {
                    dev.client.handle_ping(now(), conn);
                    dev.pong = heapless::Vec::from_slice(payload).ok();
                }
                // Any inbound frame is activity for the ping timeout.
                Incoming::Pong => dev.client.handle_ping(now(), conn),
                Incoming::Close(code) => return End::Closed(code),
            }
            wake.signal(());
        }
        match reader.read(inbox.space()).await {
            Ok(n) if n > 0 => inbox.commit(n),
            _ => return End::Lost,
        }
    }
}

/// Sends what the core asks for, and pongs; runs the core's timer and takes events.
async fn write_loop<Rnd: Random, Rd: Read, Wr: Write<Error = Rd::Error>, R: RngCore>(
    shared: &Shared<'_, '_, '_, '_, Rnd>,
    writer: &mut LinkWriter<'_, '_, Rd, Wr>,
    conn: ConnId,
    wake: &Signal<NoopRawMutex, ()>,
    events: &DynamicReceiver<'_, Event>,
    rng: &mut R,
) -> End {
    loop {
        let deadline = {
            let mut dev = shared.lock().await;
            if let Some(pong) = dev.pong.take() {
                if send(writer, ws::OP_PONG, &pong, rng).await.is_err() {
                    return End::Lost;
                }
            }
            if let Some(end) = drain_online(&mut dev, writer, conn, rng).await {
                return end;
            }
            dev.client.poll_timeout()
        };
        match select3(until(deadline), events.receive(), wake.wait()).await {
            Either3::First(()) => {
                if let Err(e) = shared.lock().await.client.handle_timeout(now()) {
                    defmt::warn!("xmidt: timer: {}", defmt::Display2Format(&e));
                }
            }
            Either3::Second(event) => shared.lock().await.upstream(event.as_bytes()),
            Either3::Third(()) => {}
        }
    }
}

/// Carries out the core's actions on the open connection `conn`.
async fn drain_online<Rnd: Random, W: Write, R: RngCore>(
    dev: &mut Device<'_, '_, '_, Rnd>,
    writer: &mut W,
    conn: ConnId,
    rng: &mut R,
) -> Option<End> {
    loop {
        match dev.client.poll_action()? {
            Action::Send(frame) => {
                if send(writer, ws::OP_BINARY, frame, rng).await.is_err() {
                    return Some(End::Lost);
                }
            }
            Action::Deliver { service, message } => {
                let n = call(dev.services, service, message, &mut dev.replies[0]);
                dev.forward(0, n);
            }
            Action::Disconnect {
                conn: c,
                code,
                reason,
            } if c == conn => {
                let mut payload = [0u8; ws::MAX_CONTROL_PAYLOAD];
                let n = ws::close_payload(code, reason, &mut payload);
                defmt::info!("xmidt: closing ({=u16} {=str})", code, reason);
                let _ = send(writer, ws::OP_CLOSE, &payload[..n], rng).await;
                return Some(End::Disconnected);
            }
            // An older connection's close: already gone.
            Action::Disconnect { .. } => {}
            // The core closes the current connection before it starts another, so this ends
            // the session; the attempt cannot be served from here, so it counts as failed.
            Action::Connect(c) => {
                let next = c.conn;
                dev.client.handle_connect_failed(now(), next);
                return Some(End::Disconnected);
            }
            Action::FetchToken(_) => {
                if let Err(e) = dev.client.handle_token_failed(now()) {
                    defmt::warn!("xmidt: {}", defmt::Display2Format(&e));
                }
            }
        }
    }
}

/// One masked frame, bounded in time.
async fn send<W: Write, R: RngCore>(
    w: &mut W,
    opcode: u8,
    payload: &[u8],
    rng: &mut R,
) -> Result<(), ()> {
    let mask = rng.next_u32().to_ne_bytes();
    match with_timeout(WRITE_TIMEOUT, ws::send(w, opcode, payload, mask)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn mac_text_is_the_cores_hw_mac() {
        assert_eq!(
            super::mac_text([0x52, 0x54, 0, 0x12, 0x34, 0x56]).as_str(),
            "52:54:00:12:34:56"
        );
    }
}
