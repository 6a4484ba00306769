//! Mimisbrunnr: per-device event subscriptions ("norns"). A norn asks for one device's events,
//! for a while, at an HTTP receiver or an SQS queue. Events come from caduceus, at which
//! mimisbrunnr keeps a webhook registered, or in-process.
//!
//! - [`Mimisbrunnr`] is the service: [`Mimisbrunnr::accept_event`] takes an event (what
//!   `POST /events` does with its body); [`Mimisbrunnr::put_norn`], [`Mimisbrunnr::update_norn`],
//!   [`Mimisbrunnr::norns`], [`Mimisbrunnr::norn`] and [`Mimisbrunnr::delete_norn`] manage norns
//!   for a [`Caller`].
//! - [`Mimisbrunnr::router`] serves it over HTTP; [`run`] opens the store, binds the address and
//!   serves until shut down.

use std::io;
use std::sync::Arc;
use std::time::Duration;
use std::time::SystemTime;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio_util::sync::CancellationToken;
use wrp_nostd::{DecodeError, DeviceId, Locator, MessageType, OwnedMessage};
use xmidt_store::{Record, Store, StoreConfig, StoreError, Written};

mod api;
pub mod config;
mod delivery;
pub mod norn;
mod registration;
mod signature;
mod sqs;
mod table;

pub use config::Config;
pub use norn::{Invalid, Norn, NornRequest};

use delivery::{Live, Shared};
use norn::COLLECTION;
use table::Table;

/// Why an event was not taken.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The intake queue is full (429 over HTTP): try again later.
    #[error("the event queue is full")]
    Full,
    #[error("the body is not a WRP message: {0}")]
    Invalid(DecodeError),
    #[error("the WRP message is not an event (msg_type 4) but {0:?}")]
    NotAnEvent(MessageType),
}

/// Who is calling the norn API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// Owns the norns it makes: the authenticated subject, or `""` (one shared owner) when API
    /// authentication is off.
    pub owner: String,
    /// Recorded with its norns.
    pub partner_ids: Vec<String>,
}

impl Caller {
    /// The caller behind a request: its principal, or the shared owner when there is none.
    pub fn from_principal(principal: Option<&xmidt_auth::Principal>) -> Caller {
        principal
            .map(|p| Caller {
                owner: p.subject.clone(),
                partner_ids: p.partner_ids.clone(),
            })
            .unwrap_or_default()
    }
}

/// A norn that was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Saved {
    /// As `GET /norns/{id}` shows it.
    pub view: serde_json::Value,
    /// False when it replaced a live norn of the same id.
    pub created: bool,
}

/// Why a norn operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NornError {
    #[error("{0}")]
    Invalid(#[from] Invalid),
    #[error("no such norn")]
    NotFound,
    #[error("a norn for this device and destination belongs to another owner")]
    Conflict,
    #[error("no more than {0} norns can exist")]
    TooMany(usize),
    #[error("norn store: {0}")]
    Store(#[from] StoreError),
}

/// Why mimisbrunnr could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid mimisbrunnr configuration: {0}")]
    Config(String),
    #[error("norn store: {0}")]
    Store(#[from] StoreError),
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("API authentication: {0}")]
    Auth(#[from] xmidt_auth::ConfigError),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// An event on its way to its device's norns.
struct Routed {
    device: String,
    msg: OwnedMessage,
}

/// One mimisbrunnr: its norns, their workers, and the store behind them.
pub struct Mimisbrunnr {
    pub config: Config,
    store: Arc<dyn Store>,
    table: Arc<Table>,
    intake: mpsc::Sender<Routed>,
    /// Serialises this replica's read-check-write sequences on norns.
    writes: tokio::sync::Mutex<()>,
    auth: xmidt_auth::ApiAuth,
}

impl Mimisbrunnr {
    /// Opens the configured store (embedded file or PostgreSQL) and starts.
    pub async fn new(
        config: Config,
        shutdown: CancellationToken,
    ) -> Result<Arc<Mimisbrunnr>, StartError> {
        let store = xmidt_store::open(&StoreConfig {
            data_dir: config.data_dir.clone(),
            database_url: config.database_url.clone(),
            ..StoreConfig::default()
        })
        .await?;
        Mimisbrunnr::with_store(config, store, shutdown).await
    }

    /// Starts on `store`: loads its norns and keeps them in step with it (every
    /// `reload_interval`), purges expired ones, routes events, and keeps the caduceus
    /// registration (if configured), until `shutdown`.
    pub async fn with_store(
        config: Config,
        store: Arc<dyn Store>,
        shutdown: CancellationToken,
    ) -> Result<Arc<Mimisbrunnr>, StartError> {
        validate(&config)?;
        let registrar = config
            .caduceus
            .clone()
            .map(registration::Registrar::new)
            .transpose()
            .map_err(StartError::Config)?;
        let auth = xmidt_auth::ApiAuth::from_config(&config.api_auth)?;
        let d = &config.delivery;
        let client = reqwest::Client::builder()
            .timeout(d.request_timeout)
            .connect_timeout(d.connect_timeout)
            // A destination must not bounce deliveries (and their signatures) elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let shared = Arc::new(Shared {
            client,
            config: d.clone(),
            buffer_size: config.buffer_size,
        });
        let table = Arc::new(Table::new(shared, shutdown.clone()));
        let (intake, queue) = mpsc::channel(config.intake.queue_size);
        let mimisbrunnr = Arc::new(Mimisbrunnr {
            config,
            store: store.clone(),
            table: table.clone(),
            intake,
            writes: tokio::sync::Mutex::new(()),
            auth,
        });
        xmidt_common::reload::keep_loaded(
            &mimisbrunnr,
            "norns",
            mimisbrunnr.config.reload_interval,
            shutdown.clone(),
            |mimisbrunnr| async move { mimisbrunnr.reload().await },
        )
        .await?;
        tokio::spawn(route(table, queue, shutdown.clone()));
        xmidt_store::spawn_purger(store, mimisbrunnr.config.purge_interval, shutdown.clone());
        if let Some(registrar) = registrar {
            registrar.spawn(shutdown);
        }
        Ok(mimisbrunnr)
    }

    /// Re-reads every norn from the store; expired and deleted ones stop.
    async fn reload(&self) -> Result<(), StoreError> {
        let _writes = self.writes.lock().await;
        let records = self.store.list(COLLECTION, None).await?;
        self.table
            .sync(records.iter().filter_map(stored_norn).collect());
        Ok(())
    }

    /// Takes one event as msgpack, as `POST /events` does with its body. It is queued for
    /// routing to its device's norns, never waiting: a full queue refuses it.
    pub fn accept_event(&self, msgpack: &[u8]) -> Result<(), EventError> {
        let msg = OwnedMessage::decode(msgpack).map_err(|e| {
            metrics::counter!("xmidt_mimisbrunnr_invalid_event_count").increment(1);
            EventError::Invalid(e)
        })?;
        if msg.msg_type != MessageType::SimpleEvent {
            metrics::counter!("xmidt_mimisbrunnr_invalid_event_count").increment(1);
            return Err(EventError::NotAnEvent(msg.msg_type));
        }
        metrics::counter!("xmidt_mimisbrunnr_incoming_event_count").increment(1);
        let Some(device) = event_device(&msg) else {
            metrics::counter!("xmidt_mimisbrunnr_unroutable_event_count").increment(1);
            return Ok(());
        };
        match self.intake.try_send(Routed { device, msg }) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_) | TrySendError::Closed(_)) => {
                metrics::counter!("xmidt_mimisbrunnr_intake_full_count").increment(1);
                Err(EventError::Full)
            }
        }
    }

    /// `POST /norns`: creates a norn, or updates the caller's own norn for the same device and
    /// destination. Another owner's norn for them is a conflict.
    pub async fn put_norn(
        &self,
        request: NornRequest,
        caller: &Caller,
    ) -> Result<Saved, NornError> {
        let norn = request.validate(self.config.max_ttl)?;
        let _writes = self.writes.lock().await;
        match self.store.get(COLLECTION, &norn.id).await? {
            Some(existing) if existing.owner != caller.owner => return Err(NornError::Conflict),
            Some(_) => {}
            None if !self.table.contains(&norn.id) && self.table.len() >= self.config.max_norns => {
                return Err(NornError::TooMany(self.config.max_norns))
            }
            None => {}
        }
        self.save(norn, caller).await
    }

    /// `PUT /norns/{id}`: replaces the caller's norn `id`. Its device and destination stay.
    pub async fn update_norn(
        &self,
        id: &str,
        request: NornRequest,
        caller: &Caller,
    ) -> Result<Saved, NornError> {
        let norn = request.validate(self.config.max_ttl)?;
        let _writes = self.writes.lock().await;
        self.owned(id, caller).await?;
        if norn.id != id {
            return Err(Invalid::IdMismatch {
                path_id: id.into(),
                body_id: norn.id,
            }
            .into());
        }
        self.save(norn, caller).await
    }

    async fn save(&self, norn: Norn, caller: &Caller) -> Result<Saved, NornError> {
        let expires_at = SystemTime::now() + norn.request.lifetime();
        let record = Record {
            id: norn.id.clone(),
            owner: caller.owner.clone(),
            partner_ids: caller.partner_ids.clone(),
            data: serde_json::to_value(&norn.request).unwrap_or_default(),
            expires_at,
        };
        let written = self.store.put(COLLECTION, &record).await?;
        tracing::info!(
            id = norn.id,
            device = norn.device_id,
            ?written,
            "norn saved"
        );
        let view = norn.view(expires_at);
        self.table.upsert(Live { norn, expires_at });
        Ok(Saved {
            view,
            created: written == Written::Created,
        })
    }

    /// The caller's live norn `id`; `NotFound` for anyone else's.
    async fn owned(&self, id: &str, caller: &Caller) -> Result<Live, NornError> {
        self.store
            .get(COLLECTION, id)
            .await?
            .filter(|record| record.owner == caller.owner)
            .as_ref()
            .and_then(stored_norn)
            .ok_or(NornError::NotFound)
    }

    /// `GET /norns/{id}`.
    pub async fn norn(&self, id: &str, caller: &Caller) -> Result<serde_json::Value, NornError> {
        let live = self.owned(id, caller).await?;
        Ok(live.norn.view(live.expires_at))
    }

    /// `GET /norns`: the caller's live norns, secrets hidden.
    pub async fn norns(&self, caller: &Caller) -> Result<Vec<serde_json::Value>, NornError> {
        let records = self.store.list(COLLECTION, Some(&caller.owner)).await?;
        Ok(records
            .iter()
            .filter_map(stored_norn)
            .map(|live| live.norn.view(live.expires_at))
            .collect())
    }

    /// `DELETE /norns/{id}`: the norn stops at once; its buffered events are dropped.
    pub async fn delete_norn(&self, id: &str, caller: &Caller) -> Result<(), NornError> {
        let _writes = self.writes.lock().await;
        self.owned(id, caller).await?;
        self.store.delete(COLLECTION, id).await?;
        self.table.remove(id);
        tracing::info!(id, "norn deleted");
        Ok(())
    }

    /// The norn API (behind `api_auth`), `/events`, `/health`, `/metrics` and `/openapi.json`.
    pub fn router(self: &Arc<Self>) -> Router {
        let about = xmidt_common::openapi::About {
            title: "mimisbrunnr",
            version: env!("CARGO_PKG_VERSION"),
            description: "Norns: per-device event subscriptions, delivered over HTTP or to SQS.",
        };
        xmidt_common::openapi::finish(api::routes(self.clone(), &self.auth), about)
    }
}

/// A stored norn, or `None` (logged) when the record no longer reads as one.
fn stored_norn(record: &Record) -> Option<Live> {
    let norn = serde_json::from_value::<NornRequest>(record.data.clone())
        .map_err(|e| e.to_string())
        .and_then(|request| request.build().map_err(|e| e.to_string()))
        .and_then(|norn| {
            if norn.id == record.id {
                Ok(norn)
            } else {
                Err(format!("its contents make id {}", norn.id))
            }
        });
    match norn {
        Ok(norn) => Some(Live {
            norn,
            expires_at: record.expires_at,
        }),
        Err(e) => {
            tracing::warn!(
                id = record.id,
                error = e,
                "stored norn is unusable; ignored"
            );
            None
        }
    }
}

/// The canonical id of the device an event is about: for talaria's
/// `event:device-status/<id>/online|offline` the `<id>` in `dest` (their `source` is talaria);
/// otherwise the device `source` names.
fn event_device(msg: &OwnedMessage) -> Option<String> {
    if let Ok(dest) = Locator::parse(&msg.dest) {
        if dest.event_type() == Some("device-status") {
            let status = dest
                .ignored
                .rsplit_once('/')
                .filter(|(_, state)| matches!(*state, "online" | "offline"))
                .and_then(|(path, _)| path.rsplit('/').next())
                .and_then(|id| DeviceId::parse(id).ok());
            if let Some(id) = status {
                return Some(id.to_string());
            }
        }
    }
    DeviceId::parse(&msg.source).ok().map(|id| id.to_string())
}

/// Hands queued events to their device's norns until `shutdown`.
async fn route(table: Arc<Table>, mut queue: mpsc::Receiver<Routed>, shutdown: CancellationToken) {
    loop {
        let routed = tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            routed = queue.recv() => match routed {
                Some(routed) => routed,
                None => return,
            },
        };
        table.route(&routed.device, &routed.msg);
    }
}

fn validate(config: &Config) -> Result<(), StartError> {
    let problem = if config.buffer_size == 0 {
        "buffer_size must be at least 1"
    } else if config.intake.queue_size == 0 {
        "intake.queue_size must be at least 1"
    } else if config.max_ttl.as_secs() == 0 {
        "max_ttl must be at least 1s"
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
    let read_timeout = config.intake.read_timeout;
    let mimisbrunnr = Mimisbrunnr::new(config, shutdown.clone()).await?;
    Ok(serve(listener, mimisbrunnr.router(), read_timeout, shutdown).await?)
}

/// Serves `router` on `listener` until `shutdown` is cancelled, with a header read timeout
/// and peer addresses (see [`xmidt_common::serve`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    read_timeout: Duration,
    shutdown: CancellationToken,
) -> io::Result<()> {
    tracing::info!(address = %listener.local_addr()?, "mimisbrunnr listening");
    xmidt_common::serve(listener, router, read_timeout, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(source: &str, dest: &str) -> OwnedMessage {
        let mut m = OwnedMessage::new(MessageType::SimpleEvent);
        m.source = source.into();
        m.dest = dest.into();
        m
    }

    #[test]
    fn events_are_routed_by_canonical_device() {
        let cases = [
            (
                "dns:talaria",
                "event:device-status/mac:11-22-33-44-55-66/online",
                Some("mac:112233445566"),
            ),
            (
                "dns:talaria",
                "event:device-status/MAC:112233445566/offline",
                Some("mac:112233445566"),
            ),
            (
                "MAC:AABBCCDDEEFF/config",
                "event:iot/x",
                Some("mac:aabbccddeeff"),
            ),
            // Not a status event: the source names the device.
            (
                "mac:aabbccddeeff",
                "event:device-status/mac:112233445566/reboot",
                Some("mac:aabbccddeeff"),
            ),
            ("event:nothing", "event:iot", None),
        ];
        for (source, dest, expected) in cases {
            assert_eq!(
                event_device(&event(source, dest)).as_deref(),
                expected,
                "{source} {dest}"
            );
        }
    }
}
