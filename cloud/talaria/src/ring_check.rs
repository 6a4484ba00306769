//! The ring check: is this talaria the one the consistent-hash ring gives a device to? Used at
//! connect time, and after ring changes to move devices to their new owner (the Go rehasher).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use xmidt_discovery::Discovery;
use xmidt_ring::Instance;

use crate::config::{RingCheckConfig, RingMode};
use crate::registry::{CloseReason, Registry};

pub struct RingCheck {
    discovery: Discovery,
    me: Instance,
    pub mode: RingMode,
}

impl RingCheck {
    pub async fn start(config: &RingCheckConfig) -> Result<RingCheck, String> {
        let me = Instance::parse(&config.self_url, &config.discovery.default_scheme)
            .map_err(|e| format!("ring.self_url: {e}"))?;
        let discovery = Discovery::start(config.discovery.clone())
            .await
            .map_err(|e| format!("ring.discovery: {e}"))?;
        Ok(RingCheck {
            discovery,
            me,
            mode: config.mode,
        })
    }

    /// The owner of `id` when it is another talaria; `None` when it is this one, or when the ring
    /// is empty (then nobody can be sure, and the device is let in).
    pub fn elsewhere(&self, id: &str) -> Option<Instance> {
        let ring = self.discovery.ring();
        let owner = ring.owner(id.as_bytes()).ok()?;
        (owner.hostname() != self.me.hostname()).then(|| owner.clone())
    }

    /// After every ring change, disconnects the devices that now belong to another talaria.
    pub fn rehash(self: &Arc<Self>, registry: Arc<Registry>, shutdown: CancellationToken) {
        let mut changes = self.discovery.subscribe();
        let check = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    changed = changes.changed() => if changed.is_err() { return },
                }
                let mut moved = 0u64;
                for device in registry.all() {
                    if check.elsewhere(&device.id).is_some() {
                        device.close(CloseReason::Rehashed);
                        moved += 1;
                    }
                }
                tracing::info!(moved, "ring changed: devices owned elsewhere disconnected");
                metrics::counter!("xmidt_talaria_rehash_disconnect_device").increment(moved);
            }
        });
    }
}
