//! Caduceus, the Xmidt event fan-out: talaria posts device events here; webhooks registered
//! here receive the ones they match.
//!
//! - [`Caduceus`] is the service: [`Caduceus::submit`] and [`Caduceus::submit_msgpack`] take an
//!   event in-process (what `/api/v4/notify` does after reading the body);
//!   [`Caduceus::register`], [`Caduceus::webhooks`] and [`Caduceus::delete`] manage webhooks.
//! - [`Caduceus::router`] serves it over HTTP; [`Caduceus::router_with_guard`] lets the caller
//!   wrap the API routes (intake and webhooks) in authentication, leaving `/health` and
//!   `/metrics` open.
//! - [`run`] opens the store, binds the address and serves until shut down.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::HeaderValue;
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;
use wrp_nostd::{DecodeError, MessageType, OwnedMessage};
use xmidt_common::openapi::About;
use xmidt_store::{Record, Store, StoreConfig, StoreError, Written};

mod api;
mod caller;
pub mod config;
mod event;
mod gotime;
mod registry;
mod sender;
mod signature;
mod urlcheck;
mod webhook;

pub use caller::Caller;
pub use config::Config;
pub use urlcheck::UrlError;
pub use webhook::{webhook_id, Invalid, Matcher, RegistrationV1, Target};

use event::Event;
use registry::Registry;
use sender::{Dropped, Shared};
use webhook::{Spec, COLLECTION};

/// Why an event was refused (400 over HTTP).
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("Empty payload.")]
    Empty,
    #[error("Invalid payload format.")]
    Decode(DecodeError),
    #[error("Strings must be UTF-8.")]
    NotUtf8,
    #[error("Invalid MessageType.")]
    NotAnEvent(MessageType),
}

/// What became of an accepted event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// Webhooks that matched it (each queued it or counted it as dropped).
    pub matched: usize,
}

/// A registration that was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// Hex SHA-256 of the URL.
    pub id: String,
    pub until: SystemTime,
    /// False when it renewed or replaced a live registration of the same URL.
    pub created: bool,
}

/// Why a webhook operation failed.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("{0}")]
    Invalid(#[from] Invalid),
    #[error("no more than {0} webhooks can be registered")]
    TooMany(usize),
    #[error("no such webhook")]
    NotFound,
    #[error("webhook store: {0}")]
    Store(#[from] StoreError),
}

/// Why caduceus could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid caduceus configuration: {0}")]
    Config(String),
    #[error("webhook store: {0}")]
    Store(#[from] StoreError),
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// One caduceus: its webhooks, their senders, and the store behind them.
pub struct Caduceus {
    pub config: Config,
    store: Arc<dyn Store>,
    registry: Registry,
}

impl Caduceus {
    /// Opens the configured store (embedded file or PostgreSQL) and starts.
    pub async fn new(
        config: Config,
        shutdown: CancellationToken,
    ) -> Result<Arc<Caduceus>, StartError> {
        validate(&config)?;
        let store = xmidt_store::open(&StoreConfig {
            data_dir: config.data_dir.clone(),
            database_url: config.database_url.clone(),
            ..StoreConfig::default()
        })
        .await?;
        Caduceus::with_store(config, store, shutdown).await
    }

    /// Starts on `store`: loads its webhooks, then keeps them in step with it (every
    /// `reload_interval`) and purges expired ones, until `shutdown`.
    pub async fn with_store(
        config: Config,
        store: Arc<dyn Store>,
        shutdown: CancellationToken,
    ) -> Result<Arc<Caduceus>, StartError> {
        validate(&config)?;
        let shared = Arc::new(Shared::new(config.delivery.clone(), shutdown.clone())?);
        let caduceus = Arc::new(Caduceus {
            registry: Registry::new(shared, config.registration.clone()),
            store: store.clone(),
            config,
        });
        xmidt_common::reload::keep_loaded(
            &caduceus,
            "webhooks",
            caduceus.config.reload_interval,
            shutdown.clone(),
            |caduceus| async move { caduceus.reload().await },
        )
        .await?;
        xmidt_store::spawn_purger(store, caduceus.config.purge_interval, shutdown);
        Ok(caduceus)
    }

    /// Re-reads every webhook from the store.
    async fn reload(&self) -> Result<(), StoreError> {
        let _writes = self.registry.writes.lock().await;
        let records = self.store.list(COLLECTION, None).await?;
        self.registry.sync(records);
        Ok(())
    }

    /// Takes an event as msgpack, as `/api/v4/notify` does once it has the body.
    pub fn submit_msgpack(&self, bytes: Bytes) -> Result<Accepted, IntakeError> {
        if bytes.is_empty() {
            metrics::counter!("xmidt_caduceus_empty_request_body_count").increment(1);
            return Err(IntakeError::Empty);
        }
        let msg = OwnedMessage::decode(&bytes).map_err(|e| {
            metrics::counter!("xmidt_caduceus_drops_due_to_invalid_payload").increment(1);
            match e {
                DecodeError::InvalidUtf8 { .. } => IntakeError::NotUtf8,
                e => IntakeError::Decode(e),
            }
        })?;
        self.accept(msg, Some(bytes))
    }

    /// Takes a decoded event (from talaria in the same process).
    pub fn submit(&self, msg: OwnedMessage) -> Result<Accepted, IntakeError> {
        self.accept(msg, None)
    }

    /// Checks and completes the event, then offers it to every webhook. `original` is the
    /// msgpack it came as; it is delivered as is unless caduceus had to fill something in.
    fn accept(
        &self,
        mut msg: OwnedMessage,
        original: Option<Bytes>,
    ) -> Result<Accepted, IntakeError> {
        if msg.msg_type != MessageType::SimpleEvent {
            metrics::counter!("xmidt_caduceus_drops_due_to_invalid_payload").increment(1);
            return Err(IntakeError::NotAnEvent(msg.msg_type));
        }
        let fixed = match (msg.content_type.is_empty(), msg.transaction_uuid.is_empty()) {
            (false, false) => None,
            (true, false) => Some("empty_content_type"),
            (false, true) => Some("empty_uuid"),
            (true, true) => Some("empty_uuid_and_content_type"),
        };
        if msg.content_type.is_empty() {
            msg.content_type = "application/json".into();
        }
        if msg.transaction_uuid.is_empty() {
            msg.transaction_uuid = uuid::Uuid::new_v4().to_string();
        }
        let msgpack = match (fixed, original) {
            (None, Some(original)) => original,
            (fixed, _) => {
                if let Some(reason) = fixed {
                    metrics::counter!("xmidt_caduceus_modified_wrp_count", "reason" => reason)
                        .increment(1);
                }
                // Encoding a decoded or well-formed message cannot fail short of 4 GiB fields,
                // which the size limits exclude.
                Bytes::from(msg.to_msgpack().unwrap_or_default())
            }
        };
        let event = Arc::new(Event::new(msg, msgpack));
        let delivery = &self.config.delivery;
        let partners = if delivery.disable_partner_ids {
            None
        } else if event.msg.partner_ids.is_empty() {
            Some(delivery.custom_partner_ids.as_slice())
        } else {
            Some(event.msg.partner_ids.as_slice())
        };
        let matched = self.registry.dispatch(&event, partners);
        metrics::counter!("xmidt_caduceus_incoming_event_count").increment(1);
        Ok(Accepted { matched })
    }

    /// Registers (or renews) a webhook for `caller`, after validating it.
    pub async fn register(
        &self,
        mut registration: RegistrationV1,
        caller: &Caller,
        from: Option<SocketAddr>,
    ) -> Result<Registered, WebhookError> {
        let policy = &self.config.registration;
        if caller.partner_ids.is_empty() && !self.config.delivery.disable_partner_ids {
            return Err(Invalid::NoPartners.into());
        }
        registration
            .validate(policy, SystemTime::now(), from)
            .await?;
        let id = registration.id();
        let record = Record {
            id: id.clone(),
            owner: caller.owner.clone(),
            partner_ids: caller.partner_ids.clone(),
            expires_at: registration.until.unwrap_or_else(SystemTime::now),
            data: serde_json::to_value(&registration).unwrap_or_default(),
        };
        let spec = Spec::build(registration, record.clone(), policy)?;
        let _writes = self.registry.writes.lock().await;
        if !self.registry.contains(&id) && self.registry.len() >= policy.max_webhooks {
            return Err(WebhookError::TooMany(policy.max_webhooks));
        }
        let written = self.store.put(COLLECTION, &record).await?;
        tracing::info!(
            id,
            url = spec.registration.config.url,
            ?written,
            "webhook registered"
        );
        self.registry.upsert(spec);
        Ok(Registered {
            id,
            until: record.expires_at,
            created: written == Written::Created,
        })
    }

    /// The live webhooks `caller` may see, secrets hidden, as `GET /hooks` shows them.
    pub async fn webhooks(&self, caller: &Caller) -> Result<Vec<serde_json::Value>, WebhookError> {
        let records = self.store.list(COLLECTION, None).await?;
        Ok(records
            .iter()
            .filter(|r| self.visible(r, caller))
            .map(Spec::public_view)
            .collect())
    }

    /// Deletes a webhook `caller` may see; its queued events are dropped (and counted).
    pub async fn delete(&self, id: &str, caller: &Caller) -> Result<(), WebhookError> {
        let _writes = self.registry.writes.lock().await;
        match self.store.get(COLLECTION, id).await? {
            Some(record) if self.visible(&record, caller) => {
                self.store.delete(COLLECTION, id).await?;
                self.registry.remove(id, Dropped::Stopped);
                tracing::info!(id, "webhook deleted");
                Ok(())
            }
            _ => Err(WebhookError::NotFound),
        }
    }

    /// A caller sees a webhook when they share a partner (or hold `*`), or when partner ids
    /// are not used at all.
    fn visible(&self, record: &Record, caller: &Caller) -> bool {
        self.config.delivery.disable_partner_ids
            || caller.partner_ids.iter().any(|p| p == "*")
            || record
                .partner_ids
                .iter()
                .any(|p| caller.partner_ids.contains(p))
    }

    /// Intake, webhooks, `/health`, `/metrics` and `/openapi.json`, without authentication.
    pub fn router(self: &Arc<Self>) -> Router {
        self.router_with_guard(|api| api)
    }

    /// As [`Caduceus::router`], with `guard` applied to the API routes (intake and webhooks)
    /// only: this is where authentication goes, e.g. `|api| api.layer(auth.layer())`.
    pub fn router_with_guard(self: &Arc<Self>, guard: impl FnOnce(Router) -> Router) -> Router {
        let server = HeaderValue::from_str(&self.config.server)
            .unwrap_or(HeaderValue::from_static("caduceus"));
        let (api, doc) = api::routes(self.clone()).split_for_parts();
        let mut guarded = OpenApiRouter::from(guard(api));
        *guarded.get_openapi_mut() = doc;
        let about = About {
            title: "caduceus",
            version: env!("CARGO_PKG_VERSION"),
            description: "Webhooks: registration, and delivery of the events talaria sends.",
        };
        xmidt_common::openapi::finish(guarded, about).layer(axum::middleware::map_response(
            move |mut r: Response| {
                let server = server.clone();
                async move {
                    let h = r.headers_mut();
                    h.insert("x-caduceus-server", server);
                    h.insert(
                        "x-caduceus-build",
                        HeaderValue::from_static(env!("CARGO_PKG_VERSION")),
                    );
                    r
                }
            },
        ))
    }
}

fn validate(config: &Config) -> Result<(), StartError> {
    let d = &config.delivery;
    let problem = if d.queue_size == 0 {
        "delivery.queue_size must be at least 1"
    } else if d.workers == 0 {
        "delivery.workers must be at least 1"
    } else if d.cut_off_period.is_zero() {
        "delivery.cut_off_period must be more than 0"
    } else if d.max_queue_bytes < config.intake.max_event_size {
        "delivery.max_queue_bytes must hold at least one event of intake.max_event_size"
    } else if config.reload_interval.is_zero() || config.purge_interval.is_zero() {
        "reload_interval and purge_interval must be more than 0"
    } else {
        return Ok(());
    };
    Err(StartError::Config(problem.into()))
}

/// Opens the store, binds `config.address` and serves until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), StartError> {
    let listener = TcpListener::bind(config.address).await?;
    let auth = xmidt_auth::ApiAuth::from_config(&config.api_auth)
        .map_err(|e| StartError::Config(format!("api_auth: {e}")))?;
    let caduceus = Caduceus::new(config, shutdown.clone()).await?;
    let router = caduceus.router_with_guard(|api| api.layer(auth.layer()));
    let read_timeout = caduceus.config.intake.read_timeout;
    Ok(serve(listener, router, read_timeout, shutdown).await?)
}

/// Serves `router` on `listener` until `shutdown` is cancelled, with a header read timeout
/// and peer addresses (see [`xmidt_common::serve`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    read_timeout: Duration,
    shutdown: CancellationToken,
) -> io::Result<()> {
    tracing::info!(address = %listener.local_addr()?, "caduceus listening");
    xmidt_common::serve(listener, router, read_timeout, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_are_refused_at_start() {
        assert!(validate(&Config::default()).is_ok());
        let broken: [fn(&mut Config); 5] = [
            |c| c.delivery.queue_size = 0,
            |c| c.delivery.workers = 0,
            |c| c.delivery.cut_off_period = Duration::ZERO,
            |c| c.delivery.max_queue_bytes = c.intake.max_event_size - 1,
            |c| c.reload_interval = Duration::ZERO,
        ];
        for breaks in broken {
            let mut config = Config::default();
            breaks(&mut config);
            assert!(matches!(validate(&config), Err(StartError::Config(_))));
        }
    }
}
