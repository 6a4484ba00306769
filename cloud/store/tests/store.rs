//! The same behaviour checks against both backends: the embedded SQLite file and a real
//! PostgreSQL server started by the test harness.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use tokio_util::sync::CancellationToken;
use xmidt_store::{open, spawn_purger, Record, Store, StoreConfig, Written};

fn record(id: &str, owner: &str, ttl: Duration) -> Record {
    Record {
        id: id.to_string(),
        owner: owner.to_string(),
        partner_ids: vec!["comcast".into(), "sky".into()],
        data: json!({"url": format!("https://{id}.example.net/"), "events": [".*"]}),
        expires_at: whole_millis(SystemTime::now() + ttl),
    }
}

/// Stored times have millisecond precision.
fn whole_millis(t: SystemTime) -> SystemTime {
    let since = t.duration_since(UNIX_EPOCH).unwrap();
    UNIX_EPOCH + Duration::from_millis(since.as_millis() as u64)
}

fn sqlite_config(dir: &tempfile::TempDir) -> StoreConfig {
    StoreConfig {
        data_dir: dir.path().join("nested/data"),
        ..StoreConfig::default()
    }
}

async fn postgres_config() -> StoreConfig {
    StoreConfig {
        database_url: Some(xmidt_store::testing::postgres().create_database().await),
        ..StoreConfig::default()
    }
}

const HOUR: Duration = Duration::from_secs(3600);

/// Put, get, replace, list (with and without owner), delete, collections kept apart.
async fn crud(store: &dyn Store) {
    let a = record("a", "alice", HOUR);
    assert_eq!(store.put("webhooks", &a).await.unwrap(), Written::Created);
    assert_eq!(store.get("webhooks", "a").await.unwrap(), Some(a.clone()));
    let mut a2 = record("a", "alice", 2 * HOUR);
    a2.data = json!({"renewed": true});
    assert_eq!(store.put("webhooks", &a2).await.unwrap(), Written::Updated);
    assert_eq!(store.get("webhooks", "a").await.unwrap(), Some(a2));

    store
        .put("webhooks", &record("b", "bob", HOUR))
        .await
        .unwrap();
    store
        .put("norns", &record("a", "alice", HOUR))
        .await
        .unwrap();
    let ids = |records: Vec<Record>| records.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(store.list("webhooks", None).await.unwrap()), ["a", "b"]);
    assert_eq!(
        ids(store.list("webhooks", Some("bob")).await.unwrap()),
        ["b"]
    );
    assert_eq!(ids(store.list("norns", None).await.unwrap()), ["a"]);

    assert!(store.delete("webhooks", "a").await.unwrap());
    assert!(!store.delete("webhooks", "a").await.unwrap());
    assert_eq!(store.get("webhooks", "a").await.unwrap(), None);
    assert!(store.get("norns", "a").await.unwrap().is_some());
}

/// Expired records are invisible at once, count as absent for put/delete, and are purged.
async fn expiry(store: Arc<dyn Store>) {
    store
        .put("webhooks", &record("short", "", Duration::from_millis(300)))
        .await
        .unwrap();
    store
        .put("webhooks", &record("long", "", HOUR))
        .await
        .unwrap();
    assert_eq!(store.list("webhooks", None).await.unwrap().len(), 2);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(store.get("webhooks", "short").await.unwrap(), None);
    let live = store.list("webhooks", None).await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].id, "long");
    assert!(!store.delete("webhooks", "short").await.unwrap());

    // The purger removes the row itself; a second purge finds nothing left.
    let stop = CancellationToken::new();
    let purger = spawn_purger(store.clone(), Duration::from_millis(50), stop.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.cancel();
    purger.await.unwrap();
    assert_eq!(store.purge_expired().await.unwrap(), 0);

    // Re-creating an expired id is a creation, not an update.
    store
        .put("webhooks", &record("again", "", Duration::from_millis(1)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let fresh = record("again", "", HOUR);
    assert_eq!(
        store.put("webhooks", &fresh).await.unwrap(),
        Written::Created
    );
    assert_eq!(store.purge_expired().await.unwrap(), 0);
}

#[tokio::test]
async fn sqlite_crud() {
    let dir = tempfile::tempdir().unwrap();
    crud(&*open(&sqlite_config(&dir)).await.unwrap()).await;
}

#[tokio::test]
async fn sqlite_expiry() {
    let dir = tempfile::tempdir().unwrap();
    expiry(open(&sqlite_config(&dir)).await.unwrap()).await;
}

#[tokio::test]
async fn sqlite_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let config = sqlite_config(&dir);
    {
        let store = open(&config).await.unwrap();
        store
            .put("webhooks", &record("kept", "o", HOUR))
            .await
            .unwrap();
    }
    // Opening again runs the (already applied) migrations and finds the record.
    let store = open(&config).await.unwrap();
    assert_eq!(
        store.get("webhooks", "kept").await.unwrap().unwrap().owner,
        "o"
    );
    assert!(config.data_dir.join("store.sqlite3").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_opened_by_several_services_at_once() {
    // `xmidt up` opens one file for caduceus and mimisbrunnr at the same moment: the
    // migrations must take turns, not fail with "table already exists".
    let dir = tempfile::tempdir().unwrap();
    let config = sqlite_config(&dir);
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let config = config.clone();
            tokio::spawn(async move { open(&config).await.map(|_| ()) })
        })
        .collect();
    for opened in opens {
        opened
            .await
            .unwrap()
            .expect("every concurrent open succeeds");
    }
}

#[tokio::test]
async fn sqlite_path_with_odd_characters() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        data_dir: dir.path().join("a dir?with#odd%chars"),
        ..StoreConfig::default()
    };
    let store = open(&config).await.unwrap();
    store.put("c", &record("x", "", HOUR)).await.unwrap();
    assert!(config.data_dir.join("store.sqlite3").exists());
}

#[tokio::test]
async fn postgres_crud() {
    crud(&*open(&postgres_config().await).await.unwrap()).await;
}

#[tokio::test]
async fn postgres_expiry() {
    expiry(open(&postgres_config().await).await.unwrap()).await;
}

#[tokio::test]
async fn postgres_is_shared_between_handles() {
    let config = postgres_config().await;
    // Two replicas opening at once: the migrations run once.
    let (a, b) = tokio::join!(open(&config), open(&config));
    let (a, b) = (a.unwrap(), b.unwrap());
    a.put("webhooks", &record("shared", "", HOUR))
        .await
        .unwrap();
    assert!(b.get("webhooks", "shared").await.unwrap().is_some());
    assert!(b.delete("webhooks", "shared").await.unwrap());
    assert!(a.list("webhooks", None).await.unwrap().is_empty());
}

#[tokio::test]
async fn unreachable_postgres_fails_within_the_timeout() {
    let config = StoreConfig {
        // Port 9 (discard) on loopback: nothing listens there.
        database_url: Some("postgres://postgres@127.0.0.1:9/none".into()),
        timeout: Duration::from_millis(500),
        ..StoreConfig::default()
    };
    let started = std::time::Instant::now();
    assert!(open(&config).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(5));
}
