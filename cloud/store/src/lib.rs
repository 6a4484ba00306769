//! Storage shared by the Xmidt cloud services: webhooks (caduceus) today, norns (mimisbrunnr)
//! next.
//!
//! The model is argus': named collections of JSON documents, each keyed by an id and carrying
//! an owner, partner ids and an expiry. Expired records are never returned and are purged
//! periodically ([`spawn_purger`]). The columns are what queries and access checks need; the
//! rest of a record is the service's own JSON document, so a new service or a new field needs
//! no migration here.
//!
//! [`SqlStore`] implements [`Store`] on two backends with the same code and queries:
//! - an embedded SQLite file under a data directory (the default; survives restarts);
//! - PostgreSQL when a database URL is configured, so several replicas share one set of
//!   records.
//!
//! Each backend has its own migrations, run when the store opens.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

mod sql;
#[cfg(feature = "testing")]
pub mod testing;

pub use sql::SqlStore;

/// One stored document.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Unique within its collection (caduceus: hex SHA-256 of the webhook URL).
    pub id: String,
    /// Who wrote it (a token's subject); empty when unknown.
    pub owner: String,
    /// The partners whose data the record concerns.
    pub partner_ids: Vec<String>,
    /// The service's document.
    pub data: serde_json::Value,
    /// From this instant on the record no longer exists for readers.
    pub expires_at: SystemTime,
}

/// What [`Store::put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// No live record had this id.
    Created,
    /// A live record was replaced.
    Updated,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the database did not answer within {0:?}")]
    Timeout(Duration),
    #[error("record {collection}/{id} is not readable: {reason}")]
    Corrupt {
        collection: String,
        id: String,
        reason: String,
    },
}

/// Where records live.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The embedded database is `<data_dir>/store.sqlite3` (created if missing).
    pub data_dir: PathBuf,
    /// A `postgres://` URL; when set, it is used instead of the embedded file.
    pub database_url: Option<String>,
    /// Connections kept to the database.
    pub max_connections: u32,
    /// The longest any one store operation may take, waiting for a connection included.
    pub timeout: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            data_dir: PathBuf::from("./xmidt-data"),
            database_url: None,
            max_connections: 8,
            timeout: Duration::from_secs(5),
        }
    }
}

/// Collections of expiring JSON records.
#[async_trait]
pub trait Store: Send + Sync {
    /// Creates or replaces a record.
    async fn put(&self, collection: &str, record: &Record) -> Result<Written, StoreError>;

    /// A live record.
    async fn get(&self, collection: &str, id: &str) -> Result<Option<Record>, StoreError>;

    /// The live records of a collection, by id; only `owner`'s when given.
    async fn list(&self, collection: &str, owner: Option<&str>) -> Result<Vec<Record>, StoreError>;

    /// Removes a live record; false when there was none.
    async fn delete(&self, collection: &str, id: &str) -> Result<bool, StoreError>;

    /// Deletes expired records in every collection; returns how many.
    async fn purge_expired(&self) -> Result<u64, StoreError>;
}

/// Opens the store `config` names: PostgreSQL when it has a URL, else the embedded file.
pub async fn open(config: &StoreConfig) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(SqlStore::open(config).await?))
}

/// Purges expired records every `interval` until `shutdown`. Failures are logged and retried at
/// the next tick: readers never see expired records anyway.
pub fn spawn_purger(
    store: Arc<dyn Store>,
    interval: Duration,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.cancelled() => return,
            }
            match store.purge_expired().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(purged = n, "expired records purged"),
                Err(e) => tracing::warn!(error = %e, "purging expired records failed"),
            }
        }
    })
}
