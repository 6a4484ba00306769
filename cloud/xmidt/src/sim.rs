//! Simulated devices: client-std's device (the same core and driver as the parodus
//! replacement) running in-process, connected through petasos like any device. Each one's
//! `config` service answers every request, and it sends numbered events (`{"count": n}`, from
//! 1) until told to stop. `xmidt up --demo` runs one; `xmidt device` runs many.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use wrp_nostd::{MessageType, OwnedMessage};

/// One simulated device.
pub struct Spec {
    /// 12 hex digits, `:` allowed; the id is `mac:` + the digits.
    pub mac: String,
    /// Where it connects: petasos's (or talaria's) base URL.
    pub url: String,
    /// Its events go to `event:<event_type>`.
    pub event_type: String,
    pub event_every: Duration,
    /// 25 and up: talaria acknowledges the events and the device resends them until it does.
    pub qos: u8,
    pub hw_model: String,
    pub hw_serial_number: String,
    /// Seconds without a ping from talaria before reconnecting.
    pub ping_timeout_secs: Option<u32>,
    /// Caps the reconnect backoff at 2^c - 1 s.
    pub backoff_max: Option<u8>,
}

/// A running simulated device.
pub struct Sim {
    pub id: String,
    status: watch::Receiver<client_std::Status>,
    sent: Arc<AtomicU64>,
    events: CancellationToken,
}

impl Sim {
    /// Online state and the client's counters.
    pub fn status(&self) -> client_std::Status {
        *self.status.borrow()
    }

    /// How many events it has handed to its client: they are numbered 1 to this.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    /// Stops sending events; requests are still answered.
    pub fn stop_events(&self) {
        self.events.cancel();
    }
}

/// Starts a device; it runs until `shutdown`.
pub async fn start(spec: Spec, shutdown: CancellationToken) -> Result<Sim> {
    let mut config = client_std::Config::new(spec.mac.as_str(), spec.url.as_str());
    config.hw_model = spec.hw_model;
    config.hw_manufacturer = "xmidt-rs".into();
    config.hw_serial_number = spec.hw_serial_number;
    config.fw_name = concat!("xmidt-sim-", env!("CARGO_PKG_VERSION")).into();
    config.boot_time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if let Some(secs) = spec.ping_timeout_secs {
        config.ping_timeout_secs = secs;
    }
    if let Some(max) = spec.backoff_max {
        config.backoff_max = max;
    }
    // In-process services only: no libparodus port to collide with a real parodus.
    config.local_url = None;
    let device = client_std::Device::spawn(config, shutdown.clone())
        .with_context(|| format!("device {}", spec.mac))?;
    let id = device.device_id().to_string();
    let mut service = device
        .register("config")
        .await
        .with_context(|| format!("{id}: the config service"))?;
    let sent = Arc::new(AtomicU64::new(0));
    let events = shutdown.child_token();
    let sim = Sim {
        id: id.clone(),
        status: device.status(),
        sent: sent.clone(),
        events: events.clone(),
    };
    let dest = format!("event:{}", spec.event_type);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(spec.event_every);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                message = service.recv() => {
                    let Some(bytes) = message else { return };
                    if let Some(answer) = answer(&bytes) {
                        let _ = service.send(answer).await;
                    }
                }
                _ = ticker.tick(), if !events.is_cancelled() => {
                    let count = sent.load(Ordering::SeqCst) + 1;
                    if service.send(event(&id, &dest, spec.qos, count)).await.is_ok() {
                        sent.store(count, Ordering::SeqCst);
                    }
                }
            }
        }
    });
    Ok(sim)
}

/// The answer to a request: status 200 and a JSON payload that echoes what was asked.
fn answer(request: &[u8]) -> Option<Vec<u8>> {
    let request = OwnedMessage::decode(request).ok()?;
    if request.transaction_uuid.is_empty() || request.msg_type == MessageType::SimpleEvent {
        return None;
    }
    let asked = String::from_utf8_lossy(&request.payload).into_owned();
    let mut answer = OwnedMessage::new(request.msg_type);
    answer.source = request.dest;
    answer.dest = request.source;
    answer.transaction_uuid = request.transaction_uuid;
    answer.status = Some(200);
    answer.content_type = "application/json".into();
    answer.payload = serde_json::json!({ "statusCode": 200, "message": "Success", "asked": asked })
        .to_string()
        .into_bytes();
    answer.to_msgpack().ok()
}

/// Event number `count`.
fn event(id: &str, dest: &str, qos: u8, count: u64) -> Vec<u8> {
    OwnedMessage::builder(MessageType::SimpleEvent)
        .source(format!("{id}/config"))
        .dest(dest)
        .content_type("application/json")
        .payload(
            serde_json::json!({ "count": count })
                .to_string()
                .into_bytes(),
        )
        .qos(qos.into())
        .build()
        .to_msgpack()
        .unwrap_or_default()
}

/// The number an event from [`start`] carries, if it is one.
pub fn event_count(payload: &[u8]) -> Option<u64> {
    serde_json::from_slice::<serde_json::Value>(payload)
        .ok()?
        .get("count")?
        .as_u64()
}
