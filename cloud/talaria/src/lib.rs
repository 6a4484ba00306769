//! Talaria, the Xmidt device gateway: devices hold websockets here; the API sends them WRP
//! messages and gets their answers; their events go on to caduceus.
//!
//! [`Talaria::router`] is the device + API router; [`control::router`] the operator API;
//! [`run`] serves both until shut down.

use std::io;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderValue;
use axum::response::Response;
use axum::serve::ListenerExt;
use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;
use wrp_nostd::OwnedMessage;
use xmidt_common::openapi::About;

pub mod api;
pub mod config;
pub mod control;
mod device;
mod error;
pub mod outbound;
pub mod registry;
mod ring_check;
mod status;
mod tls;

pub use config::Config;

/// One talaria: its devices, event sender, gate and drain.
pub struct Talaria {
    pub config: Config,
    pub registry: Arc<registry::Registry>,
    ring: OnceLock<Arc<ring_check::RingCheck>>,
    shutdown: CancellationToken,
    api_auth: xmidt_auth::ApiAuth,
    device_auth: xmidt_auth::DeviceTokenValidator,
    pub outbound: Arc<outbound::Outbound>,
    pub gate: control::Gate,
    pub drain: control::Drain,
    devices_cache: tokio::sync::Mutex<Option<(Instant, Bytes)>>,
}

impl Talaria {
    /// Builds a talaria and starts its event workers, which stop with `shutdown`. Must run
    /// inside a tokio runtime.
    pub fn new(
        config: Config,
        shutdown: CancellationToken,
    ) -> Result<Arc<Talaria>, xmidt_auth::ConfigError> {
        let api_auth = xmidt_auth::ApiAuth::from_config(&config.api_auth)?;
        let device_auth = xmidt_auth::DeviceTokenValidator::from_config(&config.device_auth)?;
        let outbound = outbound::Outbound::start(config.outbound.clone(), shutdown.clone());
        Ok(Arc::new(Talaria {
            api_auth,
            device_auth,
            registry: Arc::new(registry::Registry::new(config.device.max_devices)),
            ring: OnceLock::new(),
            shutdown,
            outbound,
            gate: control::Gate::new(true),
            drain: control::Drain::default(),
            devices_cache: tokio::sync::Mutex::new(None),
            config,
        }))
    }

    /// Starts checking devices against the ring (`config.ring`), and moving them after changes.
    pub async fn follow_ring(self: &Arc<Self>, config: &config::RingCheckConfig) -> io::Result<()> {
        let check = Arc::new(
            ring_check::RingCheck::start(config)
                .await
                .map_err(io::Error::other)?,
        );
        if config.rehash {
            check.rehash(self.registry.clone(), self.shutdown.clone());
        }
        self.ring
            .set(check)
            .map_err(|_| io::Error::other("the ring check is already running"))
    }

    /// Devices (`/api/{v2,v3}/device`), the API, `/health`, `/metrics` and `/openapi.json`.
    pub fn router(self: &Arc<Self>) -> Router {
        let api = OpenApiRouter::new()
            .routes(routes!(api::send).layer(DefaultBodyLimit::max(self.config.api.max_body)))
            .routes(routes!(api::devices))
            .routes(routes!(api::stat))
            .layer(self.api_auth.layer());
        // The connect route checks device tokens itself, never API credentials.
        let versioned = OpenApiRouter::new()
            .routes(routes!(device::connect))
            .merge(api);
        let documented = OpenApiRouter::new()
            .nest("/api/v2", versioned.clone())
            .nest("/api/v3", versioned);
        let about = About {
            title: "talaria",
            version: env!("CARGO_PKG_VERSION"),
            description: "Device websockets, and the API that sends devices WRP messages.",
        };
        let server = HeaderValue::from_str(&self.config.server)
            .unwrap_or(HeaderValue::from_static("talaria"));
        xmidt_common::openapi::finish(documented, about)
            .with_state(self.clone())
            .layer(axum::middleware::map_response(move |mut r: Response| {
                let server = server.clone();
                async move {
                    let h = r.headers_mut();
                    h.insert("x-talaria-server", server);
                    h.insert(
                        "x-talaria-build",
                        HeaderValue::from_static(env!("CARGO_PKG_VERSION")),
                    );
                    r
                }
            }))
    }

    /// Sends a message on the event path (caduceus, or a `dns:` receiver); waits only while
    /// the outbound queue is full. `ended` is dropped once the deliveries have ended.
    async fn dispatch_event(&self, m: OwnedMessage, ended: Option<oneshot::Sender<()>>) {
        match m.to_msgpack() {
            Ok(frame) => {
                // Counted and logged inside when it cannot be queued.
                let _ = self.outbound.dispatch(&m.dest, frame.into(), ended).await;
            }
            Err(e) => tracing::warn!(error = %e, "event not encodable"),
        }
    }

    /// Closes every connection (on shutdown).
    pub fn disconnect_all(&self, reason: registry::CloseReason) {
        for device in self.registry.all() {
            device.close(reason);
        }
    }
}

/// Binds talaria's configured addresses and serves until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> io::Result<()> {
    let primary = TcpListener::bind(config.address).await?;
    let control = match config.control_address {
        Some(address) => Some(TcpListener::bind(address).await?),
        None => None,
    };
    let ring = config.ring.clone();
    let talaria = Talaria::new(config, shutdown.clone())
        .map_err(|e| io::Error::other(format!("auth configuration: {e}")))?;
    if let Some(ring) = ring {
        talaria.follow_ring(&ring).await?;
    }
    serve(talaria, primary, control, shutdown).await
}

/// Serves `talaria` on bound listeners until `shutdown` is cancelled; every device is then
/// disconnected (and gets its offline event).
pub async fn serve(
    talaria: Arc<Talaria>,
    primary: TcpListener,
    control: Option<TcpListener>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let config = &talaria.config;
    tracing::info!(address = %primary.local_addr()?, tls = config.tls.is_some(), "talaria listening");
    if let Some(control) = control {
        tracing::info!(address = %control.local_addr()?, "talaria control API listening");
        let router = control::router(talaria.clone());
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let served = axum::serve(control, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "control API stopped");
            }
        });
    }
    let router = talaria.router();
    let closer = talaria.clone();
    let stop = async move {
        shutdown.cancelled().await;
        closer.disconnect_all(registry::CloseReason::Shutdown);
    };
    match &config.tls {
        Some(tls) => {
            let listener =
                tls::TlsListener::new(primary, tls::server_config(&tls.cert, &tls.key)?)?;
            axum::serve(listener, router)
                .with_graceful_shutdown(stop)
                .await
        }
        None => {
            let primary = primary.tap_io(|tcp| no_delay(tcp));
            axum::serve(primary, router)
                .with_graceful_shutdown(stop)
                .await
        }
    }
}

/// Frames and answers are small and latency-bound: never hold them back for Nagle (Go sets
/// TCP_NODELAY on every connection too).
fn no_delay(tcp: &TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "TCP_NODELAY not set");
    }
}
