//! The firmware's own code over tokio sockets, against a real cloud on loopback: talaria
//! (wss, rcgen P-256 certificates), petasos, and an event receiver standing in for caduceus.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use embassy_sync::channel::Channel;
use embedded_io_adapters::tokio_1::FromTokio;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use wrp_nostd::{MessageType, OwnedMessage};
use xmidt_auth::DeviceAuthConfig;
use xmidt_discovery::DiscoveryConfig;
use xmidt_firmware::{Config, ConnectError, Connector, Events, Message, Reply, Service, Socket};
use xmidt_talaria::Talaria;

/// Every wait is bounded by this.
pub const WAIT: Duration = Duration::from_secs(20);

// defmt needs a global logger in every binary that links the firmware; the tests check
// behaviour, not logs.
#[defmt::global_logger]
struct Discard;

unsafe impl defmt::Logger for Discard {
    fn acquire() {}
    unsafe fn flush() {}
    unsafe fn release() {}
    unsafe fn write(_bytes: &[u8]) {}
}

defmt::timestamp!("");

#[defmt::panic_handler]
fn defmt_panic() -> ! {
    panic!("defmt panic")
}

/// TCP from tokio: the only part that differs from a board (which uses `EmbassyNet`).
pub struct Tokio {
    /// Connections made, for tests that need to see the device trying.
    pub connects: Arc<AtomicUsize>,
}

impl Tokio {
    pub fn new() -> Self {
        Tokio {
            connects: Arc::new(AtomicUsize::new(0)),
        }
    }
}

pub struct TokioSocket(TcpStream);

impl Connector for Tokio {
    type Socket<'a> = TokioSocket;

    async fn connect(&mut self, host: &str, port: u16) -> Result<TokioSocket, ConnectError> {
        let stream = TcpStream::connect((host, port))
            .await
            .map_err(|_| ConnectError::Tcp)?;
        self.connects.fetch_add(1, Ordering::SeqCst);
        Ok(TokioSocket(stream))
    }
}

impl Socket for TokioSocket {
    type Error = std::io::Error;
    type Reader<'s> = FromTokio<ReadHalf<'s>>;
    type Writer<'s> = FromTokio<WriteHalf<'s>>;

    fn split(&mut self) -> (Self::Reader<'_>, Self::Writer<'_>) {
        let (r, w) = self.0.split();
        (FromTokio::new(r), FromTokio::new(w))
    }

    async fn close(&mut self) {
        let _ = self.0.shutdown().await;
    }
}

/// A P-256 CA and a talaria certificate it signed for `names` (DNS names only).
pub struct Pki {
    pub ca_der: Vec<u8>,
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl Pki {
    pub fn new(names: &[&str]) -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = names
            .iter()
            .map(|n| rcgen::SanType::DnsName((*n).try_into().unwrap()))
            .collect();
        let cert = params.signed_by(&key, &ca).unwrap();
        Pki {
            ca_der: ca.der().to_vec(),
            ca_pem: ca.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// talaria with TLS, its event receiver and petasos in front of it.
pub struct Cloud {
    pub pki: Pki,
    _dir: tempfile::TempDir,
    pub talaria: Arc<Talaria>,
    pub talaria_addr: SocketAddr,
    talaria_stop: CancellationToken,
    pub petasos_addr: SocketAddr,
    pub events: mpsc::UnboundedReceiver<OwnedMessage>,
    receiver: SocketAddr,
    /// How talaria authenticates devices (kept for restarts).
    device_auth: DeviceAuthConfig,
    stop: CancellationToken,
    pub api: reqwest::Client,
}

impl Drop for Cloud {
    fn drop(&mut self) {
        self.talaria_stop.cancel();
        self.stop.cancel();
    }
}

impl Cloud {
    pub async fn start() -> Cloud {
        Cloud::start_with(DeviceAuthConfig::default()).await
    }

    /// The cloud, with talaria authenticating devices as `device_auth` says.
    pub async fn start_with(device_auth: DeviceAuthConfig) -> Cloud {
        let pki = Pki::new(&["localhost"]);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cert.pem"), &pki.cert_pem).unwrap();
        std::fs::write(dir.path().join("key.pem"), &pki.key_pem).unwrap();
        let stop = CancellationToken::new();

        let (tx, events) = mpsc::unbounded_channel();
        let receiver = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver_addr = receiver.local_addr().unwrap();
        let app = Router::new().route(
            "/events",
            post(move |body: Bytes| {
                let tx = tx.clone();
                async move {
                    match OwnedMessage::decode(&body) {
                        Ok(m) => {
                            let _ = tx.send(m);
                            StatusCode::ACCEPTED
                        }
                        Err(_) => StatusCode::BAD_REQUEST,
                    }
                }
            }),
        );
        let s = stop.clone();
        tokio::spawn(async move {
            axum::serve(receiver, app)
                .with_graceful_shutdown(s.cancelled_owned())
                .await
        });

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let talaria_addr = listener.local_addr().unwrap();
        let (talaria, talaria_stop) =
            serve_talaria(listener, dir.path(), receiver_addr, &device_auth);
        let mut cloud = Cloud {
            talaria,
            talaria_addr,
            talaria_stop,
            petasos_addr: talaria_addr,
            events,
            receiver: receiver_addr,
            device_auth,
            stop,
            api: reqwest::Client::builder()
                .add_root_certificate(
                    reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap(),
                )
                .build()
                .unwrap(),
            pki,
            _dir: dir,
        };

        let petasos = TcpListener::bind("127.0.0.1:0").await.unwrap();
        cloud.petasos_addr = petasos.local_addr().unwrap();
        let ring = xmidt_discovery::Discovery::start(DiscoveryConfig {
            fixed: vec![format!("https://localhost:{}", talaria_addr.port())],
            default_scheme: "https".into(),
            ..DiscoveryConfig::default()
        })
        .await
        .unwrap();
        tokio::spawn(xmidt_petasos::serve(
            Arc::new(ring),
            petasos,
            cloud.stop.clone(),
        ));
        cloud
    }

    /// Stops talaria (its devices are disconnected) and starts a new one on the same port.
    pub async fn restart_talaria(&mut self) {
        self.talaria_stop.cancel();
        let deadline = tokio::time::Instant::now() + WAIT;
        let listener = loop {
            match TcpListener::bind(self.talaria_addr).await {
                Ok(l) => break l,
                Err(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("rebinding talaria's port: {e}"),
            }
        };
        (self.talaria, self.talaria_stop) =
            serve_talaria(listener, self._dir.path(), self.receiver, &self.device_auth);
    }

    pub fn is_connected(&self, id: &str) -> bool {
        self.talaria.registry.get(id).is_some()
    }

    /// Sends `message` to its device through talaria's API; the device's answer.
    pub async fn ask(&self, message: &OwnedMessage) -> OwnedMessage {
        let url = format!(
            "https://localhost:{}/api/v3/device/send",
            self.talaria_addr.port()
        );
        let response = self
            .api
            .post(url)
            .header("Content-Type", "application/msgpack")
            .body(message.to_msgpack().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "talaria's answer");
        OwnedMessage::decode(&response.bytes().await.unwrap()).unwrap()
    }

    /// The next event whose dest ends with `suffix`.
    pub async fn event_ending(&mut self, suffix: &str) -> OwnedMessage {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let m = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("no event ending with {suffix}"))
                .expect("receiver running");
            if m.dest.ends_with(suffix) {
                return m;
            }
        }
    }
}

/// A talaria serving wss with the certificate in `dir`, sending every event to `receiver`.
fn serve_talaria(
    listener: TcpListener,
    dir: &std::path::Path,
    receiver: SocketAddr,
    device_auth: &DeviceAuthConfig,
) -> (Arc<Talaria>, CancellationToken) {
    let mut config = xmidt_talaria::Config::default();
    config.device_auth = device_auth.clone();
    config.tls = Some(xmidt_talaria::config::TlsConfig {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    });
    config.outbound.event_endpoints.clear();
    config
        .outbound
        .event_endpoints
        .insert("default".into(), vec![format!("http://{receiver}/events")]);
    config.api.request_timeout = Duration::from_secs(10);
    let stop = CancellationToken::new();
    let talaria = Talaria::new(config, stop.clone()).unwrap();
    tokio::spawn(xmidt_talaria::serve(
        talaria.clone(),
        listener,
        None,
        stop.clone(),
    ));
    (talaria, stop)
}

/// Runs one firmware client per config, each on its connector (seeded `seed`, `seed + 1`, …),
/// with no services and no events. A client returns only when it cannot start, which fails the
/// test: this never returns otherwise.
pub async fn run_clients<const N: usize>(
    configs: [&Config<'_>; N],
    connectors: &mut [Tokio; N],
    seed: u64,
) {
    let channels: [Events<1>; N] = core::array::from_fn(|_| Channel::new());
    let mut each = configs
        .into_iter()
        .zip(connectors.iter_mut())
        .zip(&channels);
    let clients: [_; N] = core::array::from_fn(|i| {
        // from_fn calls this N times, and the zip has N items.
        let ((config, connector), events) = each.next().expect("one per config");
        // Boxed: a client's future holds its TLS buffers (over 20 KiB), too much to move
        // around on a test thread's stack N at a time.
        Box::pin(xmidt_firmware::run(
            config,
            connector,
            ChaCha20Rng::seed_from_u64(seed + i as u64),
            &mut [],
            events.dyn_receiver(),
        ))
    });
    let stopped = embassy_futures::join::join_array(clients).await;
    panic!("a client stopped: {stopped:?}");
}

/// Waits until `check` holds.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The demo service: answers requests and RETRIEVEs on `config` with what it was asked.
pub struct ConfigService;

impl Service for ConfigService {
    fn name(&self) -> &str {
        "config"
    }

    fn handle(&mut self, message: &Message<'_>, reply: &mut Reply<'_>) {
        if matches!(
            message.msg_type,
            MessageType::SimpleRequestResponse | MessageType::Retrieve
        ) {
            let mut body = *b"config answers ........";
            let n = message.payload.len().min(8);
            body[15..15 + n].copy_from_slice(&message.payload[..n]);
            reply
                .answer(message, 200, "text/plain", &body)
                .expect("fits");
        }
    }
}

pub const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
pub const DEVICE: &str = "mac:525400123456";
