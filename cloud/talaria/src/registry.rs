//! Connected devices: who is here, their queues, pending transactions and statistics.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime};

use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::timefmt::{go_duration, rfc3339_nano};

/// Why a connection ended; the text is what offline events and logs carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    ReadError,
    WriteError,
    IdleTimeout,
    ClosedByDevice,
    Duplicate,
    DeviceLimitReached,
    Drained,
    Rehashed,
    Shutdown,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::ReadError => "readerror",
            CloseReason::WriteError => "write-error",
            CloseReason::IdleTimeout => "idle-timeout",
            CloseReason::ClosedByDevice => "closed-by-device",
            CloseReason::Duplicate => "duplicate",
            CloseReason::DeviceLimitReached => "device-limit-reached",
            CloseReason::Drained => "drained",
            CloseReason::Rehashed => "rehash-other-instance",
            CloseReason::Shutdown => "shutdown",
        }
    }
}

/// A frame for the device, and who to tell once it is written (or not).
pub struct Envelope {
    pub frame: Vec<u8>,
    pub written: Option<oneshot::Sender<bool>>,
}

/// What talaria learned about a device when it connected.
#[derive(Debug, Clone, Default)]
pub struct DeviceInfo {
    /// The decoded `X-Webpa-Convey` object, when there was a valid one.
    pub convey: Map<String, Value>,
    /// `full`, `missing-convey`, `invalid-convey` or `convey-missing-fields`.
    pub compliance: &'static str,
    /// Claims of the device's token, when it had one.
    pub claims: Map<String, Value>,
    pub partner_id: Option<String>,
    pub trust: i64,
    pub intermediate_context: Option<String>,
}

/// Frame and byte counters, as the Go talaria reports them.
#[derive(Debug, Default)]
pub struct Stats {
    pub bytes_sent: AtomicU64,
    pub messages_sent: AtomicU64,
    pub bytes_received: AtomicU64,
    pub messages_received: AtomicU64,
}

impl Stats {
    pub fn sent(&self, bytes: usize) {
        self.messages_sent.fetch_add(1, Ordering::Relaxed);
        self.bytes_sent.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn received(&self, bytes: usize) {
        self.messages_received.fetch_add(1, Ordering::Relaxed);
        self.bytes_received
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// Answers that `/device/send` waits for, by transaction_uuid.
type Pending = HashMap<String, oneshot::Sender<Vec<u8>>>;

/// One connected device.
pub struct Device {
    pub id: String,
    pub session_id: String,
    pub info: DeviceInfo,
    pub connected_at: SystemTime,
    connected_instant: Instant,
    pub stats: Stats,
    pub duplications: u64,
    outbound: mpsc::Sender<Envelope>,
    pending: Mutex<Pending>,
    closed: CancellationToken,
    close_reason: Mutex<Option<CloseReason>>,
}

/// Why a frame could not be queued for a device.
#[derive(Debug, PartialEq, Eq)]
pub enum QueueError {
    Full,
    Closed,
}

/// Why a transaction could not be registered.
#[derive(Debug, PartialEq, Eq)]
pub enum TransactionError {
    Duplicate,
    Closed,
}

impl Device {
    pub fn new(
        id: String,
        info: DeviceInfo,
        queue_size: usize,
    ) -> (Device, mpsc::Receiver<Envelope>) {
        let (tx, rx) = mpsc::channel(queue_size.max(1));
        let device = Device {
            id,
            session_id: <svix_ksuid::Ksuid as svix_ksuid::KsuidLike>::new(None, None).to_string(),
            info,
            connected_at: SystemTime::now(),
            connected_instant: Instant::now(),
            stats: Stats::default(),
            duplications: 0,
            outbound: tx,
            pending: Mutex::new(HashMap::new()),
            closed: CancellationToken::new(),
            close_reason: Mutex::new(None),
        };
        (device, rx)
    }

    /// Queues a frame without waiting; a full queue is the caller's 503, never a silent drop.
    pub fn enqueue(&self, envelope: Envelope) -> Result<(), QueueError> {
        if self.closed.is_cancelled() {
            return Err(QueueError::Closed);
        }
        self.outbound.try_send(envelope).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => QueueError::Full,
            mpsc::error::TrySendError::Closed(_) => QueueError::Closed,
        })
    }

    /// Frames waiting to be written.
    pub fn queued(&self) -> usize {
        self.outbound.max_capacity() - self.outbound.capacity()
    }

    /// Registers a transaction whose answer the caller awaits.
    pub fn expect_answer(
        &self,
        transaction_uuid: &str,
    ) -> Result<oneshot::Receiver<Vec<u8>>, TransactionError> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if self.closed.is_cancelled() {
            return Err(TransactionError::Closed);
        }
        if pending.contains_key(transaction_uuid) {
            return Err(TransactionError::Duplicate);
        }
        let (tx, rx) = oneshot::channel();
        pending.insert(transaction_uuid.to_string(), tx);
        Ok(rx)
    }

    /// Drops a transaction nobody waits for any more (timeout, failed enqueue).
    pub fn forget(&self, transaction_uuid: &str) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(transaction_uuid);
    }

    /// Hands the device's answer to the waiting request; false when nobody waits for it.
    pub fn answer(&self, transaction_uuid: &str, frame: Vec<u8>) -> bool {
        let waiter = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(transaction_uuid);
        waiter.is_some_and(|w| w.send(frame).is_ok())
    }

    /// Ends the connection; the first reason given is the one reported.
    pub fn close(&self, reason: CloseReason) {
        let mut slot = self.close_reason.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(reason);
        }
        drop(slot);
        self.closed.cancel();
        // Waiters learn at once that no answer will come.
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    pub fn close_reason(&self) -> Option<CloseReason> {
        *self.close_reason.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn closed(&self) -> &CancellationToken {
        &self.closed
    }

    pub fn up_time(&self) -> std::time::Duration {
        self.connected_instant.elapsed()
    }

    /// The device JSON of `/devices` and `/device/{id}/stat`.
    pub fn to_json(&self) -> Value {
        let s = &self.stats;
        serde_json::json!({
            "id": self.id,
            "pending": self.queued(),
            "statistics": {
                "bytesSent": s.bytes_sent.load(Ordering::Relaxed),
                "messagesSent": s.messages_sent.load(Ordering::Relaxed),
                "bytesReceived": s.bytes_received.load(Ordering::Relaxed),
                "messagesReceived": s.messages_received.load(Ordering::Relaxed),
                "duplications": self.duplications,
                "connectedAt": rfc3339_nano(self.connected_at),
                "upTime": go_duration(self.up_time()),
            }
        })
    }
}

/// Why a device could not be registered.
#[derive(Debug, PartialEq, Eq)]
pub struct LimitReached;

/// All devices connected to this talaria, by canonical id.
#[derive(Default)]
pub struct Registry {
    devices: RwLock<HashMap<String, Arc<Device>>>,
    max_devices: usize,
}

impl Registry {
    pub fn new(max_devices: usize) -> Self {
        Registry {
            devices: RwLock::new(HashMap::new()),
            max_devices,
        }
    }

    /// Adds a device. A device already connected under the same id is closed as a duplicate and
    /// replaced: the newest connection wins, as in the Go talaria.
    pub fn add(&self, mut device: Device) -> Result<Arc<Device>, LimitReached> {
        let mut devices = self.devices.write().unwrap_or_else(|p| p.into_inner());
        let old = devices.get(&device.id).cloned();
        if old.is_none() && self.max_devices > 0 && devices.len() >= self.max_devices {
            return Err(LimitReached);
        }
        if let Some(old) = &old {
            device.duplications = old.duplications + 1;
            old.close(CloseReason::Duplicate);
        }
        let device = Arc::new(device);
        devices.insert(device.id.clone(), device.clone());
        metrics::gauge!("xmidt_talaria_device_count").set(devices.len() as f64);
        if old.is_some() {
            metrics::counter!("xmidt_talaria_duplicate_count").increment(1);
        }
        Ok(device)
    }

    /// Removes `device`, unless a newer connection has already taken its place.
    pub fn remove(&self, device: &Arc<Device>) {
        let mut devices = self.devices.write().unwrap_or_else(|p| p.into_inner());
        if devices
            .get(&device.id)
            .is_some_and(|d| Arc::ptr_eq(d, device))
        {
            devices.remove(&device.id);
        }
        metrics::gauge!("xmidt_talaria_device_count").set(devices.len() as f64);
    }

    pub fn get(&self, id: &str) -> Option<Arc<Device>> {
        self.devices
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    pub fn len(&self) -> usize {
        self.devices.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A snapshot of every device.
    pub fn all(&self) -> Vec<Arc<Device>> {
        self.devices
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }
}
