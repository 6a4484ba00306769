//! `xmidt up --demo`: one simulated device, client-std's device (the same core and driver as
//! the parodus replacement) running in-process, connected through petasos like any device. Its
//! `config` service answers every request, and it sends an event every few seconds.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use tokio_util::sync::CancellationToken;
use wrp_nostd::{MessageType, OwnedMessage};

/// The demo device's MAC; its id is `mac:112233445566`.
pub const MAC: &str = "11:22:33:44:55:66";
const EVENT_EVERY: Duration = Duration::from_secs(5);

/// Starts the device; it runs until `shutdown`.
pub async fn start(petasos: SocketAddr, shutdown: CancellationToken) -> Result<()> {
    let mut config = client_std::Config::new(MAC, format!("http://{petasos}"));
    config.hw_model = "xmidt-demo".into();
    config.hw_manufacturer = "xmidt-rs".into();
    config.hw_serial_number = "DEMO0001".into();
    config.fw_name = concat!("xmidt-demo-", env!("CARGO_PKG_VERSION")).into();
    config.boot_time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // In-process services only: no libparodus port to collide with a real parodus.
    config.local_url = None;
    let device = client_std::Device::spawn(config, shutdown.clone()).context("the demo device")?;
    let id = device.device_id().to_string();
    let mut service = device
        .register("config")
        .await
        .context("the demo device's service")?;
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(EVENT_EVERY);
        let mut count: u64 = 0;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                message = service.recv() => {
                    let Some(bytes) = message else { return };
                    if let Some(answer) = answer(&bytes) {
                        let _ = service.send(answer).await;
                    }
                }
                _ = ticker.tick() => {
                    count += 1;
                    let _ = service.send(event(&id, count)).await;
                }
            }
        }
    });
    Ok(())
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

/// A periodic telemetry event, qos 25 so talaria acknowledges it.
fn event(id: &str, count: u64) -> Vec<u8> {
    OwnedMessage::builder(MessageType::SimpleEvent)
        .source(format!("{id}/config"))
        .dest("event:demo-telemetry")
        .content_type("application/json")
        .payload(
            serde_json::json!({ "count": count })
                .to_string()
                .into_bytes(),
        )
        .qos(25)
        .build()
        .to_msgpack()
        .unwrap_or_default()
}
