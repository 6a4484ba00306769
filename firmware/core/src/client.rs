//! The client state machine: its types, the connection lifecycle, timers and actions. Message
//! routing is in `messages`.

mod messages;

use core::time::Duration;

use crate::backoff::Backoff;
use crate::config::{Config, Identity};
use crate::crud::TagRequest;
use crate::error::{ConfigError, Dropped, Error};
use crate::handshake::{self, Connect, Headers, TokenRequest, MAX_CONVEY};
use crate::outbox::{CloseReason, Outbox, Pending};
use crate::qos::QosQueue;
use crate::random::{Random, Uuid};
use crate::reason::ReconnectReason;
use crate::services::Services;
use crate::time::{secs, Instant};
use crate::url::{Endpoint, OwnedEndpoint};

/// The longest token accepted (themis JWTs are well under 1 KiB; parodus allows 4095).
pub const MAX_TOKEN: usize = 2048;
/// Redirects followed in a row before the attempt counts as failed (parodus: unbounded).
pub const MAX_REDIRECTS: u8 = 5;
/// 403 answers met with a token refresh in a row before backing off (parodus: unbounded).
pub const MAX_AUTH_REFRESHES: u8 = 3;
/// How long the driver has to answer a token request (parodus: three tries of 25 s).
pub const TOKEN_TIMEOUT: Duration = Duration::from_secs(90);
/// The pause after a cloud-disconnect request (§6.3).
pub const CLOUD_DISCONNECT_PAUSE: Duration = Duration::from_secs(300);
/// The longest close reason a WebSocket close frame carries.
pub const MAX_CLOSE_REASON: usize = 123;

/// `{msg_type: 2, status: 200}`, exactly the 20 bytes parodus sends a service that registers.
pub const AUTH_OK: [u8; 20] = *b"\x82\xa8msg_type\x02\xa6status\xcc\xc8";
/// `{msg_type: 10}`, the service-alive message (§7.3).
pub const SERVICE_ALIVE: [u8; 11] = *b"\x81\xa8msg_type\x0a";

const AUTH_PREFIX: &str = "Bearer ";

/// One connection attempt and, if it succeeds, that connection. Events quote it so that news
/// from a connection the core has given up on is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(u32);

/// What the core asks the driver to do, drained with [`Client::poll_action`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action<'a> {
    /// Fetch a token from themis, then call [`Client::handle_token`] or
    /// [`Client::handle_token_failed`].
    FetchToken(TokenRequest<'a>),
    /// Open the WebSocket; report with [`Client::handle_handshake`] (any HTTP answer) or
    /// [`Client::handle_connect_failed`] (DNS, TCP, TLS errors).
    Connect(Connect<'a>),
    /// Send one binary frame on the current connection.
    Send(&'a [u8]),
    /// Give a message to a local service (over its PUSH socket, or to its handler).
    Deliver { service: &'a str, message: &'a [u8] },
    /// Close `conn` (a close frame with `code` and `reason` if it is open) and drop the socket.
    /// Do not report its closing: the core has already moved on.
    Disconnect {
        conn: ConnId,
        code: u16,
        reason: &'a str,
    },
}

/// What came of a connect attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// 101: online.
    Online,
    /// A redirect to follow: a new [`Action::Connect`] is queued.
    Redirected,
    /// 403: a new token is being fetched ([`Action::FetchToken`] is queued).
    RefreshingToken,
    /// A failure: the next attempt is at `until`.
    Backoff { until: Instant },
    /// Not about the current attempt; ignored.
    Stale,
}

/// What became of a frame from the cloud.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Downstream<'a> {
    /// Give `message` (the frame, unchanged) to the local service `service`.
    Deliver {
        service: &'a str,
        message: &'a [u8],
    },
    /// The core answered (531, 403, 400 or a `parodus` CRUD answer): an [`Action::Send`] is
    /// queued.
    Answered {
        status: u16,
    },
    /// A tag request: the driver owns tag storage; answer with [`Client::answer_tag`].
    Tag(TagRequest<'a>),
    /// The cloud acknowledged a queued QoS message, which is now removed.
    Acked,
    Dropped(Dropped),
}

/// What became of a message from a local service.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Upstream<'a> {
    /// A registration: connect a PUSH socket to `url` and send [`AUTH_OK`] on it.
    Register {
        service: &'a str,
        url: &'a str,
    },
    /// Give `message` (unchanged) to the local service `service` (a RETRIEVE/UPDATE/DELETE for
    /// this device).
    Deliver {
        service: &'a str,
        message: &'a [u8],
    },
    /// Queued for the cloud as an [`Action::Send`].
    Sent,
    /// Kept in the QoS queue until the cloud acknowledges it; `displaced` queued messages were
    /// dropped to make room.
    Queued {
        displaced: usize,
    },
    /// Answered by the `parodus` service: an [`Action::Deliver`] to the requester is queued.
    Answered {
        status: u16,
    },
    /// A tag request for the driver's storage; answer with [`Client::answer_tag`].
    Tag(TagRequest<'a>),
    Dropped(Dropped),
}

/// Counters, for logs and metrics. They saturate rather than wrap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub connects: u32,
    pub connect_failures: u32,
    pub redirects: u32,
    pub token_refreshes: u32,
    pub ping_misses: u32,
    pub frames_received: u32,
    pub undecodable: u32,
    /// Downstream events for services nobody registered.
    pub events_dropped: u32,
    pub answered_531: u32,
    pub answered_403: u32,
    pub not_for_this_device: u32,
    /// Upstream messages dropped while offline.
    pub offline_drops: u32,
    /// Frames made for a connection that ended before the driver took them.
    pub stale_frames: u32,
    pub qos_acked: u32,
    pub qos_retransmits: u32,
    /// QoS messages displaced by more important ones, or refused for lack of room.
    pub qos_dropped: u32,
    pub qos_expired: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the driver's token before connecting.
    FetchingToken {
        deadline: Instant,
    },
    /// A connect attempt is under way.
    Connecting {
        conn: ConnId,
        deadline: Instant,
    },
    Online {
        conn: ConnId,
        last_seen: Instant,
    },
    /// Backing off, or pausing after a cloud-disconnect.
    Waiting {
        until: Instant,
    },
    /// Shut down: nothing more happens.
    Stopped,
}

/// The device client. Feed it events (`handle_*`), then drain [`Client::poll_action`] and wait
/// until [`Client::poll_timeout`]. See the crate docs for the driver loop.
///
/// Capacities: `SERVICES` registered services; `OUTBOX` bytes for messages waiting for the
/// driver (one upstream message plus its metadata when the driver drains after every input);
/// `QUEUE_BYTES`/`QUEUE_MSGS` for the QoS queue.
pub struct Client<
    'c,
    R,
    const SERVICES: usize = 8,
    const OUTBOX: usize = 4096,
    const QUEUE_BYTES: usize = 8192,
    const QUEUE_MSGS: usize = 16,
> {
    id: Identity<'c>,
    rng: R,
    now: Instant,
    state: State,
    next_conn: u32,
    backoff: Backoff,
    redirects: u8,
    auth_refreshes: u8,
    /// Where the last redirect pointed; dropped after the next failure (parodus).
    redirect: Option<OwnedEndpoint>,
    /// `Bearer <token>`.
    authorization: Option<heapless::String<{ MAX_TOKEN + AUTH_PREFIX.len() }>>,
    token_uuid: Uuid,
    /// For the next handshake's convey.
    reason: ReconnectReason,
    /// The reason the current connection was made, for its metadata (parodus always sent
    /// `webpa_process_starts` there).
    connection_reason: ReconnectReason,
    convey: [u8; MAX_CONVEY],
    convey_len: usize,
    shutdown_reason: heapless::String<MAX_CLOSE_REASON>,
    services: Services<SERVICES>,
    next_alive: Option<Instant>,
    alive_cursor: Option<usize>,
    outbox: Outbox<OUTBOX>,
    qos: QosQueue<QUEUE_BYTES, QUEUE_MSGS>,
    stats: Stats,
}

impl<
        'c,
        R: Random,
        const SERVICES: usize,
        const OUTBOX: usize,
        const QUEUE_BYTES: usize,
        const QUEUE_MSGS: usize,
    > Client<'c, R, SERVICES, OUTBOX, QUEUE_BYTES, QUEUE_MSGS>
{
    /// Validates `config`. Nothing happens until the first [`Client::handle_timeout`], which
    /// [`Client::poll_timeout`] asks for at `now`.
    pub fn new(config: &Config<'c>, rng: R, now: Instant) -> Result<Self, ConfigError> {
        let id = Identity::new(config)?;
        Ok(Client {
            backoff: Backoff::new(config.backoff_max),
            id,
            rng,
            now,
            state: State::Waiting { until: now },
            next_conn: 0,
            redirects: 0,
            auth_refreshes: 0,
            redirect: None,
            authorization: None,
            // Replaced before every token request.
            token_uuid: Uuid::new_v4(&mut || 0),
            reason: ReconnectReason::ProcessStarts,
            connection_reason: ReconnectReason::ProcessStarts,
            convey: [0; MAX_CONVEY],
            convey_len: 0,
            shutdown_reason: heapless::String::new(),
            services: Services::new(),
            next_alive: None,
            alive_cursor: None,
            outbox: Outbox::new(),
            qos: QosQueue::new(),
            stats: Stats::default(),
        })
    }

    // ----- what the driver asks ------------------------------------------------------------

    /// The next thing to do, if any. Drain it to `None` after every input: each action borrows
    /// the client until the next call.
    pub fn poll_action(&mut self) -> Option<Action<'_>> {
        while let Some(p) = self.outbox.pop() {
            match p {
                Pending::FetchToken if matches!(self.state, State::FetchingToken { .. }) => {
                    return Some(Action::FetchToken(TokenRequest::new(
                        &self.id,
                        self.token_uuid.as_str(),
                        self.reason.as_str(),
                    )));
                }
                Pending::Connect(conn) if self.attempt() == Some(conn) => {
                    return Some(Action::Connect(self.connect_action(conn)));
                }
                Pending::FetchToken | Pending::Connect(_) => {}
                Pending::Disconnect { conn, code, reason } => {
                    let reason = match reason {
                        CloseReason::ParodusStopping => "parodus_stopping",
                        CloseReason::Shutdown => self.shutdown_reason.as_str(),
                    };
                    return Some(Action::Disconnect { conn, code, reason });
                }
                Pending::Send { start, len, .. } => {
                    return Some(Action::Send(self.outbox.bytes(start, len)));
                }
                Pending::Deliver {
                    start,
                    name_len,
                    len,
                } => {
                    let (name, message) =
                        self.outbox.bytes(start, name_len + len).split_at(name_len);
                    // The name was copied from a `&str`.
                    let service = core::str::from_utf8(name).unwrap_or_default();
                    return Some(Action::Deliver { service, message });
                }
            }
        }
        if let Some(conn) = self.online() {
            let ack_timeout = secs(self.id.cfg.qos_ack_timeout_secs);
            if let Some((frame, resend)) = self.qos.next_to_send(conn, self.now, ack_timeout) {
                if resend {
                    self.stats.qos_retransmits = self.stats.qos_retransmits.saturating_add(1);
                }
                return Some(Action::Send(frame));
            }
        }
        if let Some(i) = self.alive_cursor {
            match self.services.get(i) {
                Some(service) => {
                    self.alive_cursor = Some(i + 1);
                    return Some(Action::Deliver {
                        service,
                        message: &SERVICE_ALIVE,
                    });
                }
                None => self.alive_cursor = None,
            }
        }
        None
    }

    /// When to call [`Client::handle_timeout`] next, if nothing else happens first.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Stopped {
            return None;
        }
        let state = match self.state {
            State::FetchingToken { deadline } | State::Connecting { deadline, .. } => {
                Some(deadline)
            }
            State::Online { last_seen, .. } => {
                Some(last_seen + secs(self.id.cfg.ping_timeout_secs))
            }
            State::Waiting { until } => Some(until),
            State::Stopped => None,
        };
        let resend = self.online().and_then(|conn| {
            self.qos
                .next_resend(conn, secs(self.id.cfg.qos_ack_timeout_secs))
        });
        [state, resend, self.qos.next_expiry(), self.next_alive]
            .into_iter()
            .flatten()
            .min()
    }

    // ----- events ---------------------------------------------------------------------------

    /// Time has passed: runs whatever is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        self.tick(now);
        let expired = self.qos.expire(now);
        self.stats.qos_expired = self.stats.qos_expired.saturating_add(expired as u32);
        if self.next_alive.is_some_and(|at| at <= now) {
            let every = self.id.cfg.service_alive_secs;
            self.next_alive = (!self.services.is_empty()).then(|| now + secs(every));
            self.alive_cursor = Some(0);
        }
        match self.state {
            State::FetchingToken { deadline } if deadline <= now => self.connect(now),
            State::Connecting { conn, deadline } if deadline <= now => {
                self.outbox.push(Pending::Disconnect {
                    conn,
                    code: 1000,
                    reason: CloseReason::ParodusStopping,
                })?;
                self.fail(now);
                Ok(())
            }
            State::Online { conn, last_seen }
                if last_seen + secs(self.id.cfg.ping_timeout_secs) <= now =>
            {
                self.stats.ping_misses = self.stats.ping_misses.saturating_add(1);
                self.outbox.push(Pending::Disconnect {
                    conn,
                    code: 1000,
                    reason: CloseReason::ParodusStopping,
                })?;
                self.reason = ReconnectReason::PingMiss;
                self.new_cycle(now)
            }
            State::Waiting { until } if until <= now => self.attempt_now(now),
            _ => Ok(()),
        }
    }

    /// A token arrived (the body of themis's 200). Kept for every later connect until a 403.
    pub fn handle_token(&mut self, now: Instant, token: &str) -> Result<(), Error> {
        self.tick(now);
        if token.len() > MAX_TOKEN {
            return Err(Error::TokenTooLong);
        }
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::InvalidToken);
        }
        let mut auth = heapless::String::new();
        // The capacity is the prefix plus MAX_TOKEN.
        let _ = auth.push_str(AUTH_PREFIX);
        let _ = auth.push_str(token);
        self.authorization = Some(auth);
        if matches!(self.state, State::FetchingToken { .. }) {
            self.connect(now)?;
        }
        Ok(())
    }

    /// The token could not be fetched: connect without one, as parodus does.
    pub fn handle_token_failed(&mut self, now: Instant) -> Result<(), Error> {
        self.tick(now);
        if matches!(self.state, State::FetchingToken { .. }) {
            self.connect(now)?;
        }
        Ok(())
    }

    /// The attempt `conn` failed before any HTTP answer (DNS, TCP, TLS).
    pub fn handle_connect_failed(&mut self, now: Instant, conn: ConnId) -> Attempt {
        self.tick(now);
        if self.attempt() != Some(conn) {
            return Attempt::Stale;
        }
        Attempt::Backoff {
            until: self.fail(now),
        }
    }

    /// The HTTP answer to the upgrade request of `conn`, with its `Location` header if any.
    pub fn handle_handshake(
        &mut self,
        now: Instant,
        conn: ConnId,
        status: u16,
        location: Option<&str>,
    ) -> Result<Attempt, Error> {
        self.tick(now);
        if self.attempt() != Some(conn) {
            return Ok(Attempt::Stale);
        }
        match status {
            101 => {
                self.state = State::Online {
                    conn,
                    last_seen: now,
                };
                self.backoff.reset();
                self.redirects = 0;
                self.auth_refreshes = 0;
                self.connection_reason =
                    core::mem::replace(&mut self.reason, ReconnectReason::ProcessStarts);
                self.stats.connects = self.stats.connects.saturating_add(1);
                Ok(Attempt::Online)
            }
            301 | 302 | 303 | 307 | 308 => {
                let target = location.and_then(|l| Endpoint::parse(l).ok());
                match target {
                    Some(target) if self.redirects < MAX_REDIRECTS => {
                        self.redirects += 1;
                        self.stats.redirects = self.stats.redirects.saturating_add(1);
                        self.redirect = Some(OwnedEndpoint::new(&target));
                        self.connect(now)?;
                        Ok(Attempt::Redirected)
                    }
                    _ => Ok(Attempt::Backoff {
                        until: self.fail(now),
                    }),
                }
            }
            403 if self.uses_token() => {
                // The token was refused: the next attempt fetches a new one, at once while
                // under the limit, else after the backoff.
                self.authorization = None;
                if self.auth_refreshes >= MAX_AUTH_REFRESHES {
                    return Ok(Attempt::Backoff {
                        until: self.fail(now),
                    });
                }
                self.auth_refreshes += 1;
                self.stats.token_refreshes = self.stats.token_refreshes.saturating_add(1);
                self.attempt_now(now)?;
                Ok(Attempt::RefreshingToken)
            }
            _ => Ok(Attempt::Backoff {
                until: self.fail(now),
            }),
        }
    }

    /// A ping arrived on `conn` (the driver's WebSocket layer answers it).
    pub fn handle_ping(&mut self, now: Instant, conn: ConnId) {
        self.tick(now);
        self.seen(conn, now);
    }

    /// `conn` closed: by the server (`code` from its close frame) or without a close frame
    /// (`None`, or 1006). Reconnects at once, as parodus does.
    pub fn handle_closed(
        &mut self,
        now: Instant,
        conn: ConnId,
        code: Option<u16>,
    ) -> Result<(), Error> {
        self.tick(now);
        if self.online() == Some(conn) {
            // Frames made for it can no longer be sent (parodus loses them too).
            let before = self.outbox.len();
            self.outbox
                .retain(|p| !matches!(p, Pending::Send { conn: c, .. } if *c == conn));
            self.stats.stale_frames = self
                .stats
                .stale_frames
                .saturating_add((before - self.outbox.len()) as u32);
            self.reason = match code {
                None | Some(1006) => ReconnectReason::SocketClosed,
                Some(_) => ReconnectReason::Unknown,
            };
            return self.new_cycle(now);
        }
        if self.attempt() == Some(conn) {
            self.fail(now);
        }
        Ok(())
    }

    /// Registers a local service by name (firmware handlers; [`Client::handle_local`] does it
    /// for IPC registrations). Registering a known name again is fine.
    pub fn register_service(&mut self, name: &str) -> Result<(), Error> {
        self.services.register(name)?;
        let every = self.id.cfg.service_alive_secs;
        if every > 0 && self.next_alive.is_none() {
            self.next_alive = Some(self.now + secs(every));
        }
        Ok(())
    }

    /// Removes a service (a failed delivery, or its handler is gone). Whether it was known.
    pub fn unregister_service(&mut self, name: &str) -> bool {
        self.services.unregister(name)
    }

    /// Closes for good with code 1000 and `reason` (e.g. `system_restarting`), no reconnect.
    pub fn shutdown(&mut self, reason: &str) -> Result<(), Error> {
        if reason.len() > MAX_CLOSE_REASON {
            return Err(Error::CloseReasonTooLong);
        }
        self.shutdown_reason.clear();
        // Checked against the capacity above.
        let _ = self.shutdown_reason.push_str(reason);
        self.outbox
            .retain(|p| !matches!(p, Pending::Connect(_) | Pending::FetchToken));
        if let Some(conn) = self.online().or(self.attempt()) {
            self.outbox.push(Pending::Disconnect {
                conn,
                code: 1000,
                reason: CloseReason::Shutdown,
            })?;
        }
        self.state = State::Stopped;
        Ok(())
    }

    // ----- what the driver may look at -------------------------------------------------------

    pub fn is_online(&self) -> bool {
        self.online().is_some()
    }

    /// The reason the next handshake will give (also the token request's).
    pub fn reconnect_reason(&self) -> &str {
        self.reason.as_str()
    }

    /// This device's id, `mac:<12 hex digits>` as configured.
    pub fn device_id(&self) -> &str {
        &self.id.device_name
    }

    /// Messages waiting in the QoS queue for the cloud's ack.
    pub fn queued(&self) -> usize {
        self.qos.len()
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    // ----- internals -------------------------------------------------------------------------

    fn tick(&mut self, now: Instant) {
        // A clock that steps back is treated as standing still.
        self.now = self.now.max(now);
    }

    fn online(&self) -> Option<ConnId> {
        match self.state {
            State::Online { conn, .. } => Some(conn),
            _ => None,
        }
    }

    fn attempt(&self) -> Option<ConnId> {
        match self.state {
            State::Connecting { conn, .. } => Some(conn),
            _ => None,
        }
    }

    /// Records inbound activity on `conn`; whether it is the current connection.
    fn seen(&mut self, conn: ConnId, now: Instant) -> bool {
        match &mut self.state {
            State::Online { conn: c, last_seen } if *c == conn => {
                *last_seen = now;
                true
            }
            _ => false,
        }
    }

    fn uses_token(&self) -> bool {
        !self.id.cfg.token_server_url.is_empty()
    }

    /// Starts the next attempt: a token first if one is needed.
    fn attempt_now(&mut self, now: Instant) -> Result<(), Error> {
        if self.uses_token() && self.authorization.is_none() {
            self.token_uuid = Uuid::new_v4(&mut self.rng);
            self.outbox.push(Pending::FetchToken)?;
            self.state = State::FetchingToken {
                deadline: now + TOKEN_TIMEOUT,
            };
            return Ok(());
        }
        self.connect(now)
    }

    /// A new connect cycle after a connection ended: at once, backoff reset.
    fn new_cycle(&mut self, now: Instant) -> Result<(), Error> {
        self.backoff.reset();
        self.attempt_now(now)
    }

    fn connect(&mut self, now: Instant) -> Result<(), Error> {
        let conn = ConnId(self.next_conn);
        self.next_conn = self.next_conn.wrapping_add(1);
        match handshake::write_convey(&self.id, self.reason.as_str(), &mut self.convey) {
            Ok(len) => self.convey_len = len,
            Err(e) => {
                self.fail(now);
                return Err(e);
            }
        }
        self.outbox.push(Pending::Connect(conn))?;
        self.state = State::Connecting {
            conn,
            deadline: now + secs(self.id.cfg.connect_timeout_secs),
        };
        Ok(())
    }

    /// A failed attempt: back off. Returns when the next attempt starts.
    fn fail(&mut self, now: Instant) -> Instant {
        self.stats.connect_failures = self.stats.connect_failures.saturating_add(1);
        self.redirect = None;
        self.redirects = 0;
        self.auth_refreshes = 0;
        let until = now + self.backoff.next_wait(&mut self.rng);
        self.state = State::Waiting { until };
        until
    }

    fn cloud_disconnect(&mut self, now: Instant, reason: ReconnectReason) -> Result<(), Error> {
        if let Some(conn) = self.online().or(self.attempt()) {
            self.outbox.push(Pending::Disconnect {
                conn,
                code: 1000,
                reason: CloseReason::ParodusStopping,
            })?;
        }
        self.outbox
            .retain(|p| !matches!(p, Pending::Connect(_) | Pending::FetchToken));
        self.reason = reason;
        self.backoff.reset();
        self.state = State::Waiting {
            until: now + CLOUD_DISCONNECT_PAUSE,
        };
        Ok(())
    }

    fn connect_action(&self, conn: ConnId) -> Connect<'_> {
        let endpoint = match &self.redirect {
            Some(r) => r.as_endpoint(),
            None => self.id.endpoint,
        };
        let convey = self.convey.get(..self.convey_len).unwrap_or_default();
        Connect {
            conn,
            endpoint,
            headers: Headers {
                authorization: self.authorization.as_deref(),
                device_name: &self.id.device_name,
                user_agent: &self.id.user_agent,
                // base64 is ASCII.
                convey: core::str::from_utf8(convey).unwrap_or_default(),
            },
        }
    }
}
