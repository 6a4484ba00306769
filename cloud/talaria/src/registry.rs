//! Connected devices: who is here, their queues, pending transactions and statistics.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime};

use serde_json::{Map, Value};
use svix_ksuid::{Ksuid, KsuidLike};
use tokio::sync::{oneshot, Notify};
use tokio_util::sync::CancellationToken;

use xmidt_common::gotime::{format_duration as go_duration, rfc3339_nano};

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

/// Convey keys copied into online/offline event metadata (cloud-spec §4.6), and the metadata key
/// each becomes.
pub const CONVEY_METADATA: [(&str, &str); 12] = [
    ("boot-time", "/boot-time"),
    ("hw-model", "/hw-model"),
    ("hw-manufacturer", "/hw-manufacturer"),
    ("hw-serial-number", "/hw-serial-number"),
    ("hw-last-reboot-reason", "/hw-last-reboot-reason"),
    ("fw-name", "/fw-name"),
    ("last-reconnect-reason", "/last-reconnect-reason"),
    ("webpa-protocol", "/protocol"),
    ("webpa-interface-used", "/interface-used"),
    ("boot-time-retry-wait", "/boot-time-retry-wait"),
    ("webpa-interface-label", "/webpa-interface-label"),
    ("wan-ipv4-address", "/wan-ipv4-address"),
];

/// The convey values that events carry, in one string: only these are ever read, and the
/// whole decoded map would cost a kilobyte or more per connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConveyMetadata {
    /// The values of the keys present, in CONVEY_METADATA order, one after the other.
    text: Box<str>,
    /// Where each key's value ends in `text`; u16 is enough, as the header is at most 8 KiB.
    ends: [u16; CONVEY_METADATA.len()],
    /// Bit i: key i was present (an empty value is still a value).
    present: u16,
}

impl ConveyMetadata {
    /// Keeps the values of `convey` that events carry; numbers and other non-strings become
    /// their JSON text (parodus sends boot-time as a number).
    pub fn from_convey(convey: &Map<String, Value>) -> Self {
        let mut text = String::new();
        let mut ends = [0u16; CONVEY_METADATA.len()];
        let mut present = 0u16;
        for (i, (key, _)) in CONVEY_METADATA.iter().enumerate() {
            let start = text.len();
            match convey.get(*key) {
                Some(Value::String(s)) => text.push_str(s),
                Some(other) => text.push_str(&other.to_string()),
                None => {}
            }
            match u16::try_from(text.len()) {
                Ok(end) => {
                    ends[i] = end;
                    if convey.contains_key(*key) {
                        present |= 1 << i;
                    }
                }
                // Past 64 KiB (a header this size is refused earlier): the value is left out.
                Err(_) => {
                    text.truncate(start);
                    ends[i] = u16::try_from(start).unwrap_or(u16::MAX);
                }
            }
        }
        ConveyMetadata {
            text: text.into_boxed_str(),
            ends,
            present,
        }
    }

    /// (metadata key, value) of every key present.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        CONVEY_METADATA
            .iter()
            .enumerate()
            .filter(|(i, _)| self.present & (1 << i) != 0)
            .map(|(i, (_, meta))| {
                let start = if i == 0 { 0 } else { self.ends[i - 1] };
                let value = self
                    .text
                    .get(usize::from(start)..usize::from(self.ends[i]))
                    .unwrap_or_default();
                (*meta, value)
            })
    }
}

/// What talaria learned about a device when it connected.
#[derive(Debug, Clone, Default)]
pub struct DeviceInfo {
    /// What events carry of the `X-Webpa-Convey` object, when there was a valid one.
    pub convey: ConveyMetadata,
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

/// Frames waiting to be written to a device. A tokio mpsc channel allocates a block of 32
/// slots per channel up front; this holds memory only while frames wait, so idle devices cost
/// nothing here.
#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    /// Wakes the write pump (its only waiter) when a frame arrives or the queue closes.
    ready: Notify,
}

#[derive(Default)]
struct QueueState {
    frames: VecDeque<Envelope>,
    closed: bool,
}

/// One connected device.
pub struct Device {
    /// The canonical device id; shared with the registry's key.
    pub id: Arc<str>,
    session_id: Ksuid,
    pub info: DeviceInfo,
    pub connected_at: SystemTime,
    connected_instant: Instant,
    pub stats: Stats,
    pub duplications: u64,
    queue: Queue,
    queue_size: usize,
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
    /// A device with a new session id; `queue_size` frames may wait for it (at least one).
    pub fn new(id: &str, info: DeviceInfo, queue_size: usize) -> Device {
        Device {
            id: id.into(),
            session_id: Ksuid::new(None, None),
            info,
            connected_at: SystemTime::now(),
            connected_instant: Instant::now(),
            stats: Stats::default(),
            duplications: 0,
            queue: Queue::default(),
            queue_size: queue_size.max(1),
            pending: Mutex::new(HashMap::new()),
            closed: CancellationToken::new(),
            close_reason: Mutex::new(None),
        }
    }

    /// The connection's session id (a KSUID), as events carry it.
    pub fn session_id(&self) -> String {
        self.session_id.to_string()
    }

    /// Queues a frame without waiting; a full queue is the caller's 503, never a silent drop.
    pub fn enqueue(&self, envelope: Envelope) -> Result<(), QueueError> {
        if self.closed.is_cancelled() {
            return Err(QueueError::Closed);
        }
        let mut state = self.queue.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.closed {
            return Err(QueueError::Closed);
        }
        if state.frames.len() >= self.queue_size {
            return Err(QueueError::Full);
        }
        state.frames.push_back(envelope);
        drop(state);
        self.queue.ready.notify_one();
        Ok(())
    }

    /// The next frame to write, once there is one; `None` once the queue is closed. Only the
    /// connection's write pump calls this.
    pub(crate) async fn next_frame(&self) -> Option<Envelope> {
        loop {
            {
                let mut state = self.queue.state.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(envelope) = state.frames.pop_front() {
                    if state.frames.is_empty() {
                        // Give the room back: most devices are idle most of the time.
                        state.frames = VecDeque::new();
                    }
                    return Some(envelope);
                }
                if state.closed {
                    return None;
                }
            }
            // A frame queued since the check above left a permit, so this returns at once.
            self.queue.ready.notified().await;
        }
    }

    /// Closes the queue to new frames and hands back those that will never be written.
    pub(crate) fn close_queue(&self) -> VecDeque<Envelope> {
        let mut state = self.queue.state.lock().unwrap_or_else(|p| p.into_inner());
        state.closed = true;
        std::mem::take(&mut state.frames)
    }

    /// Frames waiting to be written.
    pub fn queued(&self) -> usize {
        self.queue
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .frames
            .len()
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Removes a transaction; an emptied map gives its memory back (idle devices hold none).
    fn take_pending(&self, transaction_uuid: &str) -> Option<oneshot::Sender<Vec<u8>>> {
        let mut pending = self.pending();
        let waiter = pending.remove(transaction_uuid);
        if pending.is_empty() {
            *pending = HashMap::new();
        }
        waiter
    }

    /// Registers a transaction whose answer the caller awaits.
    pub fn expect_answer(
        &self,
        transaction_uuid: &str,
    ) -> Result<oneshot::Receiver<Vec<u8>>, TransactionError> {
        let mut pending = self.pending();
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
        self.take_pending(transaction_uuid);
    }

    /// Hands the device's answer to the waiting request; false when nobody waits for it.
    pub fn answer(&self, transaction_uuid: &str, frame: Vec<u8>) -> bool {
        self.take_pending(transaction_uuid)
            .is_some_and(|w| w.send(frame).is_ok())
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
        *self.pending() = HashMap::new();
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
    pub fn view(&self) -> DeviceView {
        let s = &self.stats;
        DeviceView {
            id: self.id.to_string(),
            pending: self.queued(),
            statistics: DeviceStatistics {
                bytes_sent: s.bytes_sent.load(Ordering::Relaxed),
                messages_sent: s.messages_sent.load(Ordering::Relaxed),
                bytes_received: s.bytes_received.load(Ordering::Relaxed),
                messages_received: s.messages_received.load(Ordering::Relaxed),
                duplications: self.duplications,
                connected_at: rfc3339_nano(self.connected_at),
                up_time: go_duration(self.up_time()),
            },
        }
    }
}

/// A device as `/devices` lists it and `/device/{id}/stat` shows it (the Go JSON).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct DeviceView {
    /// The canonical device id, e.g. `mac:112233445566`.
    pub id: String,
    /// Messages queued for the device.
    pub pending: usize,
    pub statistics: DeviceStatistics,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceStatistics {
    pub bytes_sent: u64,
    pub messages_sent: u64,
    pub bytes_received: u64,
    pub messages_received: u64,
    /// Connections this one replaced.
    pub duplications: u64,
    /// RFC 3339 with nanoseconds.
    pub connected_at: String,
    /// A Go duration, e.g. `1m30.5s`.
    pub up_time: String,
}

/// Why a device could not be registered.
#[derive(Debug, PartialEq, Eq)]
pub struct LimitReached;

/// All devices connected to this talaria, by canonical id.
#[derive(Default)]
pub struct Registry {
    devices: RwLock<HashMap<Arc<str>, Arc<Device>>>,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(byte: u8) -> Envelope {
        Envelope {
            frame: vec![byte],
            written: None,
        }
    }

    #[test]
    fn convey_keeps_what_events_carry() {
        let convey: Map<String, Value> = serde_json::from_str(
            r#"{"hw-model":"TG1682","boot-time":1700000000,"fw-name":"","ignored":"x"}"#,
        )
        .unwrap();
        let kept = ConveyMetadata::from_convey(&convey);
        let pairs: Vec<_> = kept.iter().collect();
        assert_eq!(
            pairs,
            [
                ("/boot-time", "1700000000"),
                ("/hw-model", "TG1682"),
                ("/fw-name", "")
            ]
        );
        assert_eq!(ConveyMetadata::default().iter().count(), 0);
    }

    #[tokio::test]
    async fn the_queue_holds_memory_only_while_frames_wait() {
        let device = Arc::new(Device::new("mac:112233445566", DeviceInfo::default(), 2));
        device.enqueue(envelope(1)).unwrap();
        device.enqueue(envelope(2)).unwrap();
        assert_eq!(device.enqueue(envelope(3)), Err(QueueError::Full));
        assert_eq!(device.queued(), 2);
        assert_eq!(device.next_frame().await.unwrap().frame, [1]);
        assert_eq!(device.next_frame().await.unwrap().frame, [2]);
        assert_eq!(device.queue.state.lock().unwrap().frames.capacity(), 0);

        // A frame queued while the writer waits wakes it.
        let writer = tokio::spawn({
            let device = device.clone();
            async move { device.next_frame().await.map(|e| e.frame) }
        });
        tokio::task::yield_now().await;
        device.enqueue(envelope(4)).unwrap();
        let written = tokio::time::timeout(std::time::Duration::from_secs(5), writer).await;
        assert_eq!(written.unwrap().unwrap(), Some(vec![4]));

        // Closing hands back what will never be written and ends the writer's wait.
        device.enqueue(envelope(5)).unwrap();
        assert_eq!(device.close_queue().len(), 1);
        assert_eq!(device.enqueue(envelope(6)), Err(QueueError::Closed));
        assert!(device.next_frame().await.is_none());
    }

    #[test]
    fn an_answered_transaction_gives_its_room_back() {
        let device = Device::new("mac:112233445566", DeviceInfo::default(), 1);
        let mut answer = device.expect_answer("t-1").unwrap();
        assert_eq!(
            device.expect_answer("t-1").unwrap_err(),
            TransactionError::Duplicate
        );
        assert!(device.answer("t-1", vec![7]));
        assert_eq!(answer.try_recv().unwrap(), [7]);
        assert_eq!(device.pending().capacity(), 0);
        assert!(!device.answer("t-1", vec![8]), "nobody waits any more");
    }
}
