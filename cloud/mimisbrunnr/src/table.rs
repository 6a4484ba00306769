//! The live norns, by id and by device: what routing reads and the API and reloads change.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use wrp_nostd::OwnedMessage;

use crate::delivery::{dropped, Live, Sender, Shared};

pub(crate) struct Table {
    inner: RwLock<Inner>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<String, Arc<Sender>>,
    /// Canonical device id → its norns.
    by_device: HashMap<String, Vec<Arc<Sender>>>,
}

impl Table {
    pub fn new(shared: Arc<Shared>, shutdown: CancellationToken) -> Table {
        Table {
            inner: RwLock::default(),
            shared,
            shutdown,
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn len(&self) -> usize {
        self.read().by_id.len()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.read().by_id.contains_key(id)
    }

    /// Adds a norn, or updates one with the same id (whose buffer carries over).
    pub fn upsert(&self, live: Live) {
        let mut inner = self.write();
        Self::upsert_locked(&mut inner, live, &self.shared, &self.shutdown);
        metrics::gauge!("xmidt_mimisbrunnr_norn_count").set(inner.by_id.len() as f64);
    }

    fn upsert_locked(
        inner: &mut Inner,
        live: Live,
        shared: &Arc<Shared>,
        shutdown: &CancellationToken,
    ) {
        if let Some(sender) = inner.by_id.get(&live.norn.id) {
            sender.update(live);
            return;
        }
        let id = live.norn.id.clone();
        let device = live.norn.device_id.clone();
        let sender = Sender::start(live, shared.clone(), shutdown);
        inner
            .by_device
            .entry(device)
            .or_default()
            .push(sender.clone());
        inner.by_id.insert(id, sender);
    }

    /// Removes a norn; its worker stops and its buffered events are dropped.
    pub fn remove(&self, id: &str) {
        let mut inner = self.write();
        Self::remove_locked(&mut inner, id);
        metrics::gauge!("xmidt_mimisbrunnr_norn_count").set(inner.by_id.len() as f64);
    }

    fn remove_locked(inner: &mut Inner, id: &str) {
        let Some(sender) = inner.by_id.remove(id) else {
            return;
        };
        sender.stop();
        let device = sender.live().norn.device_id.clone();
        if let Some(senders) = inner.by_device.get_mut(&device) {
            senders.retain(|s| !Arc::ptr_eq(s, &sender));
            if senders.is_empty() {
                inner.by_device.remove(&device);
            }
        }
    }

    /// Makes the table what the store holds: norns gone from it (deleted, expired) stop.
    pub fn sync(&self, lives: Vec<Live>) {
        let mut inner = self.write();
        let keep: HashSet<&str> = lives.iter().map(|l| l.norn.id.as_str()).collect();
        let gone: Vec<String> = inner
            .by_id
            .keys()
            .filter(|id| !keep.contains(id.as_str()))
            .cloned()
            .collect();
        for id in gone {
            Self::remove_locked(&mut inner, &id);
        }
        for live in lives {
            Self::upsert_locked(&mut inner, live, &self.shared, &self.shutdown);
        }
        metrics::gauge!("xmidt_mimisbrunnr_norn_count").set(inner.by_id.len() as f64);
    }

    /// Offers an event to the live norns of `device`; returns how many took it. The JSON is
    /// made once, only when some norn wants it.
    pub fn route(&self, device: &str, msg: &OwnedMessage) -> usize {
        let inner = self.read();
        let Some(senders) = inner.by_device.get(device) else {
            return 0;
        };
        let now = SystemTime::now();
        let mut body: Option<Bytes> = None;
        let mut offered = 0;
        for sender in senders {
            if sender.live().expires_at <= now {
                dropped("expired", 1);
                continue;
            }
            let body = body.get_or_insert_with(|| Bytes::from(msg.to_json()));
            sender.offer(body.clone());
            offered += 1;
        }
        offered
    }
}
