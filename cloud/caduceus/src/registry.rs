//! The live webhooks: one [`Sender`] per registration, kept in step with the store.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use xmidt_store::Record;

use crate::config::RegistrationConfig;
use crate::event::Event;
use crate::sender::{Dropped, Sender, Shared};
use crate::webhook::Spec;

pub(crate) struct Registry {
    senders: RwLock<HashMap<String, Arc<Sender>>>,
    shared: Arc<Shared>,
    policy: RegistrationConfig,
    /// Held across a store write and the registry change that follows, and across a reload,
    /// so a reload never undoes a newer local change with an older listing.
    pub writes: tokio::sync::Mutex<()>,
}

impl Registry {
    pub fn new(shared: Arc<Shared>, policy: RegistrationConfig) -> Registry {
        Registry {
            senders: RwLock::new(HashMap::new()),
            shared,
            policy,
            writes: tokio::sync::Mutex::new(()),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Sender>>> {
        self.senders.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<Sender>>> {
        self.senders.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.read().contains_key(id)
    }

    /// Offers `event` to every webhook; returns how many took it.
    pub fn dispatch(&self, event: &Arc<Event>, partners: Option<&[String]>) -> usize {
        self.read()
            .values()
            .filter(|sender| sender.offer(event, partners))
            .count()
    }

    /// Adds a webhook or replaces its registration.
    pub fn upsert(&self, spec: Spec) {
        let id = spec.record.id.clone();
        let mut senders = self.write();
        match senders.get(&id) {
            Some(sender) => sender.update(spec),
            None => {
                senders.insert(id, Sender::start(spec, self.shared.clone()));
            }
        }
        count(senders.len());
    }

    /// Stops a webhook; its queued events are counted as `why`.
    pub fn remove(&self, id: &str, why: Dropped) {
        let mut senders = self.write();
        let removed = senders.remove(id);
        count(senders.len());
        drop(senders);
        if let Some(sender) = removed {
            sender.close(why);
        }
    }

    /// Makes the live set what the store holds: new and changed registrations are applied,
    /// missing ones (deleted elsewhere, or expired) stopped.
    pub fn sync(&self, records: Vec<Record>) {
        let mut listed = HashSet::with_capacity(records.len());
        for record in records {
            listed.insert(record.id.clone());
            let current = self.read().get(&record.id).map(|s| s.spec());
            if current.is_some_and(|spec| spec.record == record) {
                continue;
            }
            let id = record.id.clone();
            match Spec::compile(record, &self.policy) {
                Ok(spec) => self.upsert(spec),
                Err(e) => {
                    // Written by another version, or limits tightened since: not delivered to,
                    // and said so.
                    tracing::warn!(id, error = %e, "stored webhook not usable");
                    metrics::counter!("xmidt_caduceus_unusable_webhook_count").increment(1);
                    self.remove(&id, Dropped::Stopped);
                }
            }
        }
        let gone: Vec<(String, bool)> = self
            .read()
            .iter()
            .filter(|(id, _)| !listed.contains(*id))
            .map(|(id, sender)| (id.clone(), sender.spec().until <= SystemTime::now()))
            .collect();
        for (id, expired) in gone {
            let why = if expired {
                Dropped::Expired
            } else {
                Dropped::Stopped
            };
            self.remove(&id, why);
        }
    }
}

fn count(n: usize) {
    metrics::gauge!("xmidt_caduceus_webhook_count").set(n as f64);
}
