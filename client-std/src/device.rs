//! The device: a thread with its own single-threaded tokio runtime runs the core's state
//! machine (the driver loop below) and every socket around it. The thread has a large stack
//! because the core keeps its buffers inline, and one runtime thread keeps an idle gateway
//! process small.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use xmidt_client_core::{
    Action, Attempt, Client, ConnId, Downstream, Stats, TagRequest, Upstream, AUTH_OK,
    MAX_CLOSE_REASON,
};

use crate::cloud::{Connection, Net, Target};
use crate::config::{Config, MAX_MESSAGE};
use crate::error::Error;
use crate::health::{unix_now, Health};
use crate::ipc::pull::{self, Bound};
use crate::ipc::push::Push;
use crate::ipc::Endpoint;
use crate::services::{self, LocalService, ServiceSink, Sinks};
use crate::tags::TagStore;
use crate::tls;
use crate::token::{self, FetchError, TokenClient};

/// The core's capacities on a gateway: 32 services; an outbox for the largest message plus
/// the metadata and partner ids merged into it; a 512 KiB, 64-message QoS queue.
type Core<'c> = Client<'c, fn() -> u32, 32, { MAX_MESSAGE + 8192 }, { 512 * 1024 }, 64>;

/// The driver thread's stack: the core lives on it while it is built.
const STACK: usize = 16 * 1024 * 1024;
/// Events waiting for the driver; senders wait when it is full.
const INBOX: usize = 256;
/// How long the sockets get to say goodbye at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// A refresh that failed without a `Retry-After` is tried again after this.
const REFRESH_RETRY: Duration = Duration::from_secs(60);
/// parodus's close reason when it stops for any reason but a signal with its own.
const PARODUS_STOPPING: &str = "parodus_stopping";

fn random() -> u32 {
    rand::random()
}

/// What the device's tasks tell the driver.
pub(crate) enum Event {
    /// The HTTP answer to an upgrade (101 included).
    Handshake {
        conn: ConnId,
        status: u16,
        location: Option<String>,
    },
    ConnectFailed {
        conn: ConnId,
        error: String,
    },
    Frame {
        conn: ConnId,
        bytes: Bytes,
    },
    Ping(ConnId),
    /// The socket ended: the server's close code, or `None` without a close frame.
    Closed {
        conn: ConnId,
        code: Option<u16>,
    },
    /// A message from a local service (IPC or in-process).
    Local(Vec<u8>),
    /// An in-process service.
    Register {
        name: String,
        sink: Box<dyn ServiceSink>,
        done: oneshot::Sender<Result<(), Error>>,
    },
    /// An IPC service could not be reached.
    ServiceGone {
        service: String,
        id: u64,
    },
    Token {
        refresh: bool,
        result: Result<String, FetchError>,
    },
}

/// What the device reports as it runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Status {
    /// Connected to the cloud.
    pub online: bool,
    /// The core's counters.
    pub stats: Stats,
    /// QoS messages waiting for the cloud's ack.
    pub qos_queued: usize,
}

/// A running device client. It runs until the `shutdown` token given to [`Device::spawn`] is
/// cancelled or [`Device::shutdown`] is called; [`Device::join`] waits for the end.
pub struct Device {
    inbox: mpsc::Sender<Event>,
    status: watch::Receiver<Status>,
    stop: CancellationToken,
    reason: Arc<Mutex<Option<String>>>,
    ipc_addr: Option<SocketAddr>,
    service_queue: usize,
    device_id: String,
    done: oneshot::Receiver<Result<(), Error>>,
}

impl Device {
    /// Validates `config`, binds the IPC socket, and starts the device on its own thread.
    /// Cancelling `shutdown` stops it (close reason `parodus_stopping`).
    pub fn spawn(config: Config, shutdown: CancellationToken) -> Result<Device, Error> {
        // The small capacities make this cheap; the real client is built on the device thread.
        let device_id = Client::<'_, fn() -> u32, 1, 16, 16, 1>::new(
            &config.core(),
            random,
            xmidt_client_core::Instant::from_millis(0),
        )?
        .device_id()
        .to_string();
        let bound = match &config.local_url {
            Some(url) => {
                let endpoint = Endpoint::parse(url).map_err(Error::Config)?;
                Some(Bound::bind(&endpoint).map_err(|e| Error::io(format!("binding {url}"), e))?)
            }
            None => None,
        };
        let ipc_addr = bound.as_ref().and_then(Bound::local_addr);
        let mtls = config
            .mtls_client_cert_path
            .clone()
            .zip(config.mtls_client_key_path.clone());
        let interface = Some(config.interface_used.clone()).filter(|i| !i.is_empty());
        let net = Arc::new(Net::new(
            config.ip_family,
            interface,
            config.ssl_cert_path.clone(),
            mtls,
        ));
        if is_secure(&config.webpa_url) {
            // A bad CA bundle or client certificate is reported now, not at each connect.
            net.tls()?;
        }
        let token_tls = token_tls(&config)?;

        let (inbox, events) = mpsc::channel(INBOX);
        let (status_tx, status) = watch::channel(Status::default());
        let (done_tx, done) = oneshot::channel();
        let reason = Arc::new(Mutex::new(None));
        let service_queue = config.service_queue;
        let parts = Parts {
            config,
            bound,
            net,
            token_tls,
            inbox: inbox.clone(),
            events,
            status: status_tx,
            stop: shutdown.clone(),
            reason: reason.clone(),
        };
        std::thread::Builder::new()
            .name("parodus".into())
            .stack_size(STACK)
            .spawn(move || {
                let result = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => {
                        let r = rt.block_on(parts.run());
                        // A DNS lookup in the blocking pool must not hold up the exit.
                        rt.shutdown_timeout(Duration::from_millis(500));
                        r
                    }
                    Err(e) => Err(Error::io("starting the runtime", e)),
                };
                let _ = done_tx.send(result);
            })
            .map_err(|e| Error::io("starting the device thread", e))?;
        Ok(Device {
            inbox,
            status,
            stop: shutdown,
            reason,
            ipc_addr,
            service_queue,
            device_id,
            done,
        })
    }

    /// This device's id, `mac:<12 hex digits>`.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// The address of the IPC socket, when it is TCP (useful with port 0).
    pub fn ipc_addr(&self) -> Option<SocketAddr> {
        self.ipc_addr
    }

    /// Online state and counters, updated as they change.
    pub fn status(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// Registers an in-process service: it gets the cloud's messages whose `dest` names it,
    /// exactly as an IPC service would.
    pub async fn register(&self, name: &str) -> Result<LocalService, Error> {
        let (service, sink) = LocalService::new(name, self.service_queue, self.inbox.clone());
        self.register_sink(name, sink).await?;
        Ok(service)
    }

    /// Registers any sink as the service `name` (its upstream messages go through
    /// [`Device::send`]).
    pub async fn register_sink(&self, name: &str, sink: Box<dyn ServiceSink>) -> Result<(), Error> {
        let (done, result) = oneshot::channel();
        let register = Event::Register {
            name: name.to_string(),
            sink,
            done,
        };
        self.inbox
            .send(register)
            .await
            .map_err(|_| Error::Stopped)?;
        result.await.map_err(|_| Error::Stopped)?
    }

    /// Sends a WRP message (msgpack) as a local service would: an event, a request or a
    /// response for the cloud, or CRUD for this device.
    pub async fn send(&self, wrp: Vec<u8>) -> Result<(), Error> {
        services::send_local(&self.inbox, wrp).await
    }

    /// Stops the device, closing the cloud connection with `reason`.
    pub fn shutdown(&self, reason: &str) {
        if let Ok(mut r) = self.reason.lock() {
            *r = Some(reason.to_string());
        }
        self.stop.cancel();
    }

    /// Waits until the device has stopped.
    pub async fn join(self) -> Result<(), Error> {
        self.done.await.unwrap_or(Err(Error::Stopped))
    }
}

fn is_secure(url: &str) -> bool {
    let scheme = url.split("://").next().unwrap_or_default();
    scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("wss")
}

/// The token client's TLS: the CA bundle, and the client certificate for mTLS.
fn token_tls(config: &Config) -> Result<Option<rustls::ClientConfig>, Error> {
    if !is_secure(&config.token_server_url) {
        return Ok(None);
    }
    let identity = match &config.client_cert_path {
        // parodus hands curl one PEM file holding the certificate and its key.
        Some(path) => match tls::identity(path, path) {
            Ok(identity) => Some(identity),
            Err(e) => {
                tracing::warn!(error = %e, "no client certificate for the token server");
                None
            }
        },
        None => None,
    };
    let roots = tls::roots(config.ssl_cert_path.as_deref())?;
    tls::client_config(roots, identity).map(Some)
}

/// Everything the device thread takes over.
struct Parts {
    config: Config,
    bound: Option<Bound>,
    net: Arc<Net>,
    token_tls: Option<rustls::ClientConfig>,
    inbox: mpsc::Sender<Event>,
    events: mpsc::Receiver<Event>,
    status: watch::Sender<Status>,
    stop: CancellationToken,
    reason: Arc<Mutex<Option<String>>>,
}

impl Parts {
    async fn run(self) -> Result<(), Error> {
        let Parts {
            config,
            bound,
            net,
            token_tls,
            inbox,
            mut events,
            status,
            stop,
            reason,
        } = self;
        if let Some(bound) = bound {
            tokio::spawn(pull::serve(
                bound,
                inbox.clone(),
                config.max_ipc_connections,
            ));
        }
        let token = match config.token_server_url.is_empty() {
            true => None,
            false => Some(Arc::new(TokenClient::new(token_tls)?)),
        };
        let core = config.core();
        let epoch = Instant::now();
        let client = Box::new(Core::new(
            &core,
            random as fn() -> u32,
            xmidt_client_core::Instant::from_millis(0),
        )?);
        let mut driver = Driver {
            client,
            epoch,
            io: Io {
                config: &config,
                net,
                inbox,
                conns: HashMap::new(),
                online_conn: None,
                closing: Vec::new(),
                sinks: Sinks::default(),
                tags: TagStore::new(config.crud_config_file.clone()),
                token,
                token_task: None,
                token_request: None,
                refresh_at: None,
            },
            health: Health::new(
                config.connection_health_file.clone(),
                config.notify_ready_file.clone(),
            ),
            status,
            online: false,
        };
        driver.run(&mut events, &stop).await;
        // From here on, requests to the device fail (`Error::Stopped`), before its status ends.
        drop(events);
        let reason = reason
            .lock()
            .ok()
            .and_then(|mut r| r.take())
            .unwrap_or_else(|| PARODUS_STOPPING.to_string());
        driver.shutdown(&reason).await;
        Ok(())
    }
}

struct Driver<'c> {
    client: Box<Core<'c>>,
    /// The core's time 0.
    epoch: Instant,
    io: Io<'c>,
    health: Health,
    status: watch::Sender<Status>,
    online: bool,
}

/// The driver's sockets, services and token fetches: everything but the core, so that the
/// core's actions (which borrow it) can be carried out here.
struct Io<'c> {
    config: &'c Config,
    net: Arc<Net>,
    inbox: mpsc::Sender<Event>,
    conns: HashMap<ConnId, Connection>,
    /// The connection `Action::Send` writes to.
    online_conn: Option<ConnId>,
    /// Connections saying goodbye.
    closing: Vec<JoinHandle<()>>,
    sinks: Sinks,
    tags: TagStore,
    token: Option<Arc<TokenClient>>,
    token_task: Option<JoinHandle<()>>,
    /// The last token request the core made, for refreshes.
    token_request: Option<(String, Vec<(String, String)>)>,
    refresh_at: Option<Instant>,
}

/// Resolves at `deadline`, never without one.
async fn at(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

impl Driver<'_> {
    fn now(&self) -> xmidt_client_core::Instant {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        xmidt_client_core::Instant::from_millis(ms)
    }

    fn instant(&self, t: xmidt_client_core::Instant) -> Instant {
        // A deadline past what the clock can hold is as good as never.
        let far = Duration::from_secs(100 * 365 * 24 * 3600);
        self.epoch + Duration::from_millis(t.as_millis()).min(far)
    }

    async fn run(&mut self, events: &mut mpsc::Receiver<Event>, stop: &CancellationToken) {
        self.health.offline();
        loop {
            self.drain();
            self.observe();
            let timer = self.client.poll_timeout().map(|t| self.instant(t));
            tokio::select! {
                () = stop.cancelled() => return,
                Some(event) = events.recv() => self.on_event(event),
                () = at(timer) => {
                    let now = self.now();
                    report(self.client.handle_timeout(now));
                }
                () = at(self.io.refresh_at) => {
                    self.io.refresh_at = None;
                    let reason = self.client.reconnect_reason().to_string();
                    self.io.refresh_token(&reason);
                }
                () = at(self.health.deadline()) => self.health.rewrite(),
            }
        }
    }

    /// Carries out everything the core has decided.
    fn drain(&mut self) {
        while let Some(action) = self.client.poll_action() {
            if let Some(gone) = self.io.act(action) {
                self.service_gone(&gone);
            }
        }
    }

    fn service_gone(&mut self, service: &str) {
        tracing::warn!(service, "service removed");
        self.io.sinks.remove(service, None);
        self.client.unregister_service(service);
    }

    /// Follows the online state into the files and the status.
    fn observe(&mut self) {
        let online = self.client.is_online();
        if online != self.online {
            self.online = online;
            if online {
                self.health.online();
            } else {
                self.health.offline();
            }
        }
        let now = Status {
            online,
            stats: *self.client.stats(),
            qos_queued: self.client.queued(),
        };
        self.status
            .send_if_modified(|s| std::mem::replace(s, now) != now);
    }

    fn on_event(&mut self, event: Event) {
        let now = self.now();
        match event {
            Event::Handshake {
                conn,
                status,
                location,
            } => {
                let outcome = self
                    .client
                    .handle_handshake(now, conn, status, location.as_deref());
                match outcome {
                    Ok(Attempt::Online) => {
                        tracing::info!("connected to the cloud");
                        self.io.online_conn = Some(conn);
                    }
                    Ok(Attempt::Stale) => {
                        // The core gave up on it; an open socket is closed.
                        if let Some(c) = self.io.conns.remove(&conn) {
                            self.io.closing.push(c.close(1000, PARODUS_STOPPING));
                        }
                    }
                    Ok(Attempt::Redirected) => {
                        tracing::info!(status, location = location.as_deref(), "redirected");
                    }
                    Ok(Attempt::RefreshingToken) => {
                        tracing::info!(status, "token refused; fetching a new one");
                    }
                    Ok(Attempt::Backoff { until }) => {
                        let wait = until.saturating_duration_since(now);
                        tracing::info!(status, ?wait, "connect refused; backing off");
                    }
                    Err(e) => tracing::warn!(error = %e, "handshake"),
                }
                if status != 101 {
                    self.io.conns.remove(&conn);
                }
            }
            Event::ConnectFailed { conn, error } => {
                self.io.conns.remove(&conn);
                if let Attempt::Backoff { until } = self.client.handle_connect_failed(now, conn) {
                    let wait = until.saturating_duration_since(now);
                    tracing::info!(error, ?wait, "connect failed; backing off");
                }
            }
            Event::Frame { conn, bytes } => match self.client.handle_frame(now, conn, &bytes) {
                Ok(Downstream::Deliver { service, message }) => {
                    if self.io.sinks.deliver(service, message).is_err() {
                        self.service_gone(service);
                    }
                }
                Ok(Downstream::Tag(tag)) => self.answer_tag(&tag),
                Ok(Downstream::Dropped(why)) => tracing::debug!(%why, "cloud message dropped"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cloud message"),
            },
            Event::Ping(conn) => self.client.handle_ping(now, conn),
            Event::Closed { conn, code } => {
                self.io.conns.remove(&conn);
                if self.io.online_conn == Some(conn) {
                    self.io.online_conn = None;
                    tracing::info!(?code, "cloud connection closed");
                }
                report(self.client.handle_closed(now, conn, code));
            }
            Event::Local(bytes) => match self.client.handle_local(now, &bytes) {
                Ok(Upstream::Register { service, url }) => self.register_ipc(service, url),
                Ok(Upstream::Deliver { service, message }) => {
                    if self.io.sinks.deliver(service, message).is_err() {
                        self.service_gone(service);
                    }
                }
                Ok(Upstream::Tag(tag)) => self.answer_tag(&tag),
                Ok(Upstream::Dropped(why)) => tracing::debug!(%why, "local message dropped"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "local message refused"),
            },
            Event::Register { name, sink, done } => {
                let result = self.client.register_service(&name).map_err(Error::from);
                if result.is_ok() {
                    self.io.sinks.insert(&name, sink);
                    tracing::info!(service = name, "in-process service registered");
                }
                let _ = done.send(result);
            }
            Event::ServiceGone { service, id } => {
                if self.io.sinks.remove(&service, Some(id)) {
                    self.client.unregister_service(&service);
                }
            }
            Event::Token { refresh, result } => self.on_token(now, refresh, result),
        }
    }

    fn register_ipc(&mut self, service: &str, url: &str) {
        let endpoint = match Endpoint::parse(url) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(service, error = e, "registration with an unusable url");
                self.client.unregister_service(service);
                return;
            }
        };
        let push = Push {
            service: service.to_string(),
            id: self.io.sinks.next_id(),
            endpoint,
            send_timeout: self.io.config.service_send_timeout,
            queue: self.io.config.service_queue,
        };
        let mut sink = push.spawn(self.io.inbox.clone());
        // The registration is answered on the new connection, as parodus does; a fresh queue
        // always has room.
        let _ = sink.deliver(&AUTH_OK);
        self.io.sinks.insert(service, Box::new(sink));
        tracing::info!(service, url, "service registered");
    }

    fn answer_tag(&mut self, tag: &TagRequest<'_>) {
        let (status, payload) = self.io.tags.handle(tag.op, tag.name, tag.payload);
        report(self.client.answer_tag(tag, status, &payload));
    }

    fn on_token(
        &mut self,
        now: xmidt_client_core::Instant,
        refresh: bool,
        result: Result<String, FetchError>,
    ) {
        self.io.token_task = None;
        let accepted = match result {
            Ok(token) => match self.client.handle_token(now, &token) {
                Ok(()) => {
                    self.io.refresh_at = token::refresh_after(&token, unix_now())
                        .map(|after| Instant::now() + after);
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the token server's answer is not a usable token");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "token fetch failed");
                match e {
                    FetchError::Status(_, retry_after) => retry_after,
                    FetchError::Failed(_) => None,
                }
            }
        };
        if refresh {
            // The current token stays in use; try again later.
            self.io.refresh_at = Some(Instant::now() + accepted.unwrap_or(REFRESH_RETRY));
        } else {
            // parodus connects without a token then.
            report(self.client.handle_token_failed(now));
        }
    }

    async fn shutdown(&mut self, reason: &str) {
        let mut end = reason.len().min(MAX_CLOSE_REASON);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        report(self.client.shutdown(&reason[..end]));
        self.drain();
        let closing = std::mem::take(&mut self.io.closing);
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, futures_util::future::join_all(closing)).await;
        tracing::info!(reason, "stopped");
    }
}

impl Io<'_> {
    /// Carries out one action; returns a service that turned out to be gone.
    fn act(&mut self, action: Action<'_>) -> Option<String> {
        match action {
            Action::FetchToken(request) => {
                let headers = request
                    .headers()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                self.token_request = Some((request.url.to_string(), headers));
                self.fetch_token(false);
            }
            Action::Connect(c) => {
                let target = Target {
                    conn: c.conn,
                    url: c.endpoint.url().to_string(),
                    host: c.endpoint.host.to_string(),
                    port: c.endpoint.port,
                    secure: c.endpoint.secure,
                    headers: c.headers.iter().map(|(k, v)| (k, v.to_string())).collect(),
                };
                tracing::info!(url = target.url, "connecting");
                let conn = Connection::spawn(target, self.net.clone(), self.inbox.clone());
                self.conns.insert(c.conn, conn);
            }
            Action::Send(frame) => {
                let sent = self
                    .online_conn
                    .and_then(|c| self.conns.get(&c))
                    .is_some_and(|c| c.send(frame.to_vec()));
                if !sent {
                    tracing::warn!(
                        len = frame.len(),
                        "cloud connection backed up; frame dropped"
                    );
                }
            }
            Action::Deliver { service, message } => {
                if self.sinks.deliver(service, message).is_err() {
                    return Some(service.to_string());
                }
            }
            Action::Disconnect { conn, code, reason } => {
                if self.online_conn == Some(conn) {
                    self.online_conn = None;
                }
                if let Some(c) = self.conns.remove(&conn) {
                    self.closing.retain(|t| !t.is_finished());
                    self.closing.push(c.close(code, reason));
                }
            }
        }
        None
    }

    /// Fetches a token with the last request's headers (a fresh uuid and the current reconnect
    /// reason for a refresh) and reports it as `Event::Token`.
    fn fetch_token(&mut self, refresh: bool) {
        let (Some(client), Some((url, headers))) = (self.token.clone(), self.token_request.clone())
        else {
            return;
        };
        if let Some(task) = self.token_task.take() {
            task.abort();
        }
        let inbox = self.inbox.clone();
        self.token_task = Some(tokio::spawn(async move {
            let result = client.fetch(&url, &headers).await;
            let _ = inbox.send(Event::Token { refresh, result }).await;
        }));
    }

    fn refresh_token(&mut self, reconnect_reason: &str) {
        if self.token_task.is_some() {
            // A fetch the core asked for is under way; its token resets the schedule.
            return;
        }
        if let Some((_, headers)) = &mut self.token_request {
            for (name, value) in headers.iter_mut() {
                match name.as_str() {
                    "X-Midt-Uuid" => {
                        *value = xmidt_client_core::Uuid::new_v4(&mut random)
                            .as_str()
                            .to_string();
                    }
                    "X-Midt-Last-Reconnect-Reason" => *value = reconnect_reason.to_string(),
                    _ => {}
                }
            }
        }
        tracing::info!("refreshing the token before it expires");
        self.fetch_token(true);
    }
}

/// The core's errors are logged: none of them stops the device.
fn report(result: Result<(), xmidt_client_core::Error>) {
    if let Err(e) = result {
        tracing::warn!(error = %e, "client core");
    }
}
