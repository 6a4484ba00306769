//! [`SqlStore`]: the [`Store`] on SQLite or PostgreSQL through sqlx's `Any` driver. Both
//! backends accept the same SQL (`$n` parameters, `ON CONFLICT ... DO UPDATE`), so only the
//! migrations differ.

use std::future::Future;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Executor, Row, SqlSafeStr};

use crate::{Record, Store, StoreConfig, StoreError, Written};

/// The embedded database's file name inside the data directory.
const SQLITE_FILE: &str = "store.sqlite3";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn migrator(self) -> Migrator {
        let (description, sql) = match self {
            Backend::Sqlite => (
                "records",
                include_str!("../migrations/sqlite/0001_records.sql"),
            ),
            Backend::Postgres => (
                "records",
                include_str!("../migrations/postgres/0001_records.sql"),
            ),
        };
        Migrator::with_migrations(vec![Migration::new(
            1,
            description.into(),
            MigrationType::Simple,
            sql.into_sql_str(),
            false,
        )])
    }
}

/// A [`Store`] in an embedded SQLite file or in PostgreSQL.
pub struct SqlStore {
    pool: AnyPool,
    timeout: Duration,
}

impl SqlStore {
    /// Connects (creating the SQLite file and directory if needed) and runs the migrations.
    pub async fn open(config: &StoreConfig) -> Result<SqlStore, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = match &config.database_url {
            Some(url) => (Backend::Postgres, url.clone()),
            None => {
                std::fs::create_dir_all(&config.data_dir).map_err(|source| {
                    StoreError::DataDir {
                        path: config.data_dir.clone(),
                        source,
                    }
                })?;
                let file = config.data_dir.join(SQLITE_FILE);
                (Backend::Sqlite, sqlite_url(&file))
            }
        };
        let mut options = AnyPoolOptions::new()
            .max_connections(config.max_connections.max(1))
            .acquire_timeout(config.timeout);
        if backend == Backend::Sqlite {
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    // The busy timeout makes writers queue instead of failing when the file is
                    // locked; it comes first, since switching to WAL takes that lock too (when
                    // another service holds the file, the switch failed with "database is
                    // locked" and so did the connection). WAL lets readers run while one
                    // connection writes.
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    Ok(())
                })
            });
        }
        let pool = with_timeout(config.timeout, options.connect(&url)).await?;
        // Several services may open one embedded file at once (`xmidt up`, or caduceus and
        // mimisbrunnr side by side); SQLite has no migration lock of its own, so they take
        // turns through a lock file. PostgreSQL migrations lock in the database.
        let _turn = match backend {
            Backend::Sqlite => Some(migration_lock(&config.data_dir).await?),
            Backend::Postgres => None,
        };
        backend.migrator().run(&pool).await?;
        tracing::info!(backend = ?backend, "store opened");
        Ok(SqlStore {
            pool,
            timeout: config.timeout,
        })
    }

    fn decode(&self, collection: &str, row: &AnyRow) -> Result<Record, StoreError> {
        let id: String = row.try_get("id")?;
        let corrupt = |reason: String| StoreError::Corrupt {
            collection: collection.to_string(),
            id: id.clone(),
            reason,
        };
        let partners: String = row.try_get("partner_ids")?;
        let data: String = row.try_get("data")?;
        let expires_at: i64 = row.try_get("expires_at")?;
        Ok(Record {
            partner_ids: serde_json::from_str(&partners)
                .map_err(|e| corrupt(format!("partner_ids: {e}")))?,
            data: serde_json::from_str(&data).map_err(|e| corrupt(format!("data: {e}")))?,
            owner: row.try_get("owner")?,
            expires_at: from_millis(expires_at),
            id,
        })
    }
}

/// A `sqlite:` URL for `file`, creating it if missing. The path is percent-encoded, so any file
/// name works.
fn sqlite_url(file: &Path) -> String {
    let mut url = String::from("sqlite://");
    for b in file.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            url.push(char::from(b));
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url.push_str("?mode=rwc");
    url
}

fn millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

fn from_millis(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

async fn with_timeout<T, E>(
    limit: Duration,
    work: impl Future<Output = Result<T, E>>,
) -> Result<T, StoreError>
where
    StoreError: From<E>,
{
    match tokio::time::timeout(limit, work).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(StoreError::Timeout(limit)),
    }
}

/// A `SELECT` of every record column, followed by `$rest`.
macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, owner, partner_ids, data, expires_at FROM records",
            $rest
        )
    };
}

#[async_trait]
impl Store for SqlStore {
    async fn put(&self, collection: &str, record: &Record) -> Result<Written, StoreError> {
        let now = millis(SystemTime::now());
        let partners = serde_json::to_string(&record.partner_ids).unwrap_or_else(|_| "[]".into());
        let data = record.data.to_string();
        with_timeout(self.timeout, async {
            let live: Option<i64> = sqlx::query_scalar(
                "SELECT expires_at FROM records WHERE collection = $1 AND id = $2 AND expires_at > $3",
            )
            .bind(collection)
            .bind(&record.id)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
            sqlx::query(
                "INSERT INTO records (collection, id, owner, partner_ids, data, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (collection, id) DO UPDATE SET owner = excluded.owner, \
                 partner_ids = excluded.partner_ids, data = excluded.data, \
                 expires_at = excluded.expires_at",
            )
            .bind(collection)
            .bind(&record.id)
            .bind(&record.owner)
            .bind(partners)
            .bind(data)
            .bind(millis(record.expires_at))
            .execute(&self.pool)
            .await?;
            Ok::<_, sqlx::Error>(if live.is_some() {
                Written::Updated
            } else {
                Written::Created
            })
        })
        .await
    }

    async fn get(&self, collection: &str, id: &str) -> Result<Option<Record>, StoreError> {
        let query = select!(" WHERE collection = $1 AND id = $2 AND expires_at > $3");
        let row = with_timeout(
            self.timeout,
            sqlx::query(query)
                .bind(collection)
                .bind(id)
                .bind(millis(SystemTime::now()))
                .fetch_optional(&self.pool),
        )
        .await?;
        row.map(|row| self.decode(collection, &row)).transpose()
    }

    async fn list(&self, collection: &str, owner: Option<&str>) -> Result<Vec<Record>, StoreError> {
        let now = millis(SystemTime::now());
        let rows = with_timeout(self.timeout, async {
            match owner {
                Some(owner) => {
                    let query = select!(
                        " WHERE collection = $1 AND expires_at > $2 AND owner = $3 ORDER BY id"
                    );
                    sqlx::query(query)
                        .bind(collection)
                        .bind(now)
                        .bind(owner)
                        .fetch_all(&self.pool)
                        .await
                }
                None => {
                    let query = select!(" WHERE collection = $1 AND expires_at > $2 ORDER BY id");
                    sqlx::query(query)
                        .bind(collection)
                        .bind(now)
                        .fetch_all(&self.pool)
                        .await
                }
            }
        })
        .await?;
        rows.iter()
            .map(|row| self.decode(collection, row))
            .collect()
    }

    async fn delete(&self, collection: &str, id: &str) -> Result<bool, StoreError> {
        let done = with_timeout(
            self.timeout,
            sqlx::query(
                "DELETE FROM records WHERE collection = $1 AND id = $2 AND expires_at > $3",
            )
            .bind(collection)
            .bind(id)
            .bind(millis(SystemTime::now()))
            .execute(&self.pool),
        )
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn purge_expired(&self) -> Result<u64, StoreError> {
        let done = with_timeout(
            self.timeout,
            sqlx::query("DELETE FROM records WHERE expires_at <= $1")
                .bind(millis(SystemTime::now()))
                .execute(&self.pool),
        )
        .await?;
        Ok(done.rows_affected())
    }
}

/// An exclusive lock on `<data_dir>/store.lock`, held until dropped.
async fn migration_lock(data_dir: &std::path::Path) -> Result<std::fs::File, StoreError> {
    let path = data_dir.join("store.lock");
    let locked = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::create(&path)?;
        file.lock()?;
        Ok::<_, std::io::Error>(file)
    })
    .await
    .map_err(std::io::Error::other);
    locked
        .and_then(|r| r)
        .map_err(|source| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })
}
