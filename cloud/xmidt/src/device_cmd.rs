//! `xmidt device`: many simulated devices in one process (see [`crate::sim`]), for a cluster's
//! load and failover tests. Device `i` is `mac:02584d` + `i` in 6 hex digits. Optionally it also
//! keeps a webhook at caduceus for its own events and counts which numbers arrive, so a test can
//! check that no acknowledged event was lost.
//!
//! Its HTTP API: `GET /health` (200 once every device is online), `GET /devices` (per device:
//! online, events sent, acked, still queued, received through caduceus, missing),
//! `POST /events/stop` (no new events; requests are still answered), `POST /hook` (caduceus's
//! deliveries).

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Args;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use wrp_nostd::OwnedMessage;
use xmidt_common::read_body;

use crate::sim::{self, Sim};

/// The longest a request to the device API may take to send its headers, then its body.
const API_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest event caduceus may deliver to `/hook` (caduceus's own intake limit).
const MAX_EVENT_SIZE: usize = 1024 * 1024;

/// How long each webhook registration lasts; it is renewed at a fifth of that.
const HOOK_DURATION: Duration = Duration::from_secs(30 * 60);

#[derive(Args)]
pub struct DeviceArgs {
    /// Where the devices connect: petasos's base URL; with several (comma-separated), device
    /// `i` uses the `i mod n`th.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:6400")]
    pub petasos: Vec<String>,
    /// How many devices.
    #[arg(long, default_value_t = 10)]
    pub count: u32,
    /// The first device's index.
    #[arg(long, default_value_t = 0)]
    pub first: u32,
    /// Each device sends a numbered event this often.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub event_every: Duration,
    /// The events' QoS; 25 and up are acknowledged by talaria and resent until they are.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u8).range(0..=99))]
    pub qos: u8,
    /// The events go to `event:<TYPE>`.
    #[arg(long, value_name = "TYPE", default_value = "sim-telemetry")]
    pub event_type: String,
    /// Seconds without a ping from talaria before a device reconnects.
    #[arg(long, default_value_t = 15)]
    pub ping_timeout: u32,
    /// Caps the reconnect backoff at 2^N - 1 s (parodus's default is 9).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub backoff_max: u8,
    /// Where the HTTP API listens.
    #[arg(long, default_value = "127.0.0.1:6900")]
    pub listen: SocketAddr,
    /// Register a webhook for the devices' events at this caduceus (base URL) and count the
    /// numbers delivered.
    #[arg(long, requires = "hook_url")]
    pub caduceus: Option<String>,
    /// The URL caduceus delivers to: this process's `POST /hook`, as caduceus reaches it.
    #[arg(long)]
    pub hook_url: Option<String>,
}

struct Shared {
    sims: Vec<Sim>,
    /// Event numbers delivered through caduceus, per device id.
    received: Mutex<HashMap<String, BTreeSet<u64>>>,
    duplicates: AtomicU64,
    event_dest: String,
}

/// The id of device `index`.
pub fn mac(index: u32) -> Result<String> {
    if index >= 1 << 24 {
        bail!("device index {index} is over 2^24 - 1");
    }
    Ok(format!("02584d{index:06x}"))
}

pub async fn run(args: DeviceArgs, shutdown: CancellationToken) -> Result<()> {
    if args.petasos.is_empty() {
        bail!("--petasos names no URL");
    }
    // Bound first: caduceus may deliver as soon as the webhook and the devices exist.
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    if let (Some(caduceus), Some(hook_url)) = (&args.caduceus, &args.hook_url) {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let hook = json!({
            "config": { "url": hook_url, "content_type": "application/msgpack" },
            "events": [format!("^{}$", args.event_type)],
            "duration": format!("{}s", HOOK_DURATION.as_secs()),
        });
        let url = format!("{}/hook", caduceus.trim_end_matches('/'));
        // Events sent before the webhook exists would never arrive: register before any device.
        register_until_done(&client, &url, &hook, &shutdown).await?;
        tracing::info!(%url, %hook_url, "webhook registered");
        let stop = shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(HOOK_DURATION / 5) => {}
                }
                if let Err(e) = register(&client, &url, &hook).await {
                    tracing::warn!(error = %format!("{e:#}"), "webhook renewal failed");
                }
            }
        });
    }

    let mut sims = Vec::new();
    for index in args.first..args.first.saturating_add(args.count) {
        let spec = sim::Spec {
            mac: mac(index)?,
            url: args.petasos[index as usize % args.petasos.len()].clone(),
            event_type: args.event_type.clone(),
            event_every: args.event_every,
            qos: args.qos,
            hw_model: "xmidt-sim".into(),
            hw_serial_number: format!("SIM{index:08}"),
            ping_timeout_secs: Some(args.ping_timeout),
            backoff_max: Some(args.backoff_max),
        };
        sims.push(sim::start(spec, shutdown.clone()).await?);
    }
    tracing::info!(count = sims.len(), petasos = ?args.petasos, "devices started");
    let shared = Arc::new(Shared {
        sims,
        received: Mutex::new(HashMap::new()),
        duplicates: AtomicU64::new(0),
        event_dest: format!("event:{}", args.event_type),
    });
    let app = Router::new()
        .route("/health", get(health))
        .route("/devices", get(devices))
        .route("/events/stop", post(stop_events))
        .route("/hook", post(hook))
        .with_state(shared);
    // Header and body reads are bounded in time like every service's (caduceus posts here).
    xmidt_common::serve(listener, app, API_READ_TIMEOUT, shutdown)
        .await
        .context("the device API")
}

async fn register_until_done(
    client: &reqwest::Client,
    url: &str,
    hook: &serde_json::Value,
    shutdown: &CancellationToken,
) -> Result<()> {
    loop {
        match register(client, url, hook).await {
            Ok(()) => return Ok(()),
            // Caduceus may still be starting.
            Err(e) => tracing::info!(error = %format!("{e:#}"), "webhook not registered yet"),
        }
        tokio::select! {
            () = shutdown.cancelled() => bail!("stopped before the webhook was registered"),
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

async fn register(client: &reqwest::Client, url: &str, hook: &serde_json::Value) -> Result<()> {
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(hook.to_string())
        .send()
        .await?;
    let status = response.status();
    if !status.is_success() {
        bail!(
            "{url}: {status}: {}",
            response.text().await.unwrap_or_default()
        );
    }
    Ok(())
}

async fn health(State(s): State<Arc<Shared>>) -> Response {
    let online = s.sims.iter().filter(|d| d.status().online).count();
    let body = format!("{online} of {} devices online\n", s.sims.len());
    if online == s.sims.len() {
        body.into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    }
}

async fn devices(State(s): State<Arc<Shared>>) -> Json<serde_json::Value> {
    let received = s.received.lock().map(|r| r.clone()).unwrap_or_default();
    let mut totals = [0u64; 6];
    let list: Vec<_> = s
        .sims
        .iter()
        .map(|d| {
            let status = d.status();
            let sent = d.sent();
            let got = received.get(&d.id);
            let missing: Vec<u64> = (1..=sent)
                .filter(|n| !got.is_some_and(|g| g.contains(n)))
                .collect();
            let row = [
                u64::from(status.online),
                sent,
                u64::from(status.stats.qos_acked),
                status.qos_queued as u64,
                got.map_or(0, |g| g.len() as u64),
                missing.len() as u64,
            ];
            for (total, value) in totals.iter_mut().zip(row) {
                *total += value;
            }
            json!({
                "id": d.id,
                "online": status.online,
                "sent": sent,
                "acked": status.stats.qos_acked,
                "queued": status.qos_queued,
                "dropped": status.stats.qos_dropped + status.stats.qos_expired,
                "received": row[4],
                "missing": missing,
            })
        })
        .collect();
    let [online, sent, acked, queued, received, missing] = totals;
    let duplicates = s.duplicates.load(Ordering::Relaxed);
    Json(json!({
        "devices": list,
        "totals": {
            "devices": s.sims.len(), "online": online, "sent": sent, "acked": acked,
            "queued": queued, "received": received, "missing": missing, "duplicates": duplicates,
        },
    }))
}

async fn stop_events(State(s): State<Arc<Shared>>) -> StatusCode {
    for d in &s.sims {
        d.stop_events();
    }
    StatusCode::NO_CONTENT
}

/// One delivery from caduceus: the whole event, msgpack.
async fn hook(State(s): State<Arc<Shared>>, request: Request) -> Response {
    let body = match read_body(request.into_body(), MAX_EVENT_SIZE, API_READ_TIMEOUT).await {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    let Ok(event) = OwnedMessage::decode(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    if event.dest != s.event_dest {
        return StatusCode::OK.into_response();
    }
    let id = event
        .source
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let Some(count) = sim::event_count(&event.payload) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let fresh = match s.received.lock() {
        Ok(mut received) => received.entry(id).or_default().insert(count),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    if !fresh {
        s.duplicates.fetch_add(1, Ordering::Relaxed);
    }
    StatusCode::OK.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_ids_from_indexes() {
        assert_eq!(mac(0).unwrap(), "02584d000000");
        assert_eq!(mac(0x12_3456).unwrap(), "02584d123456");
        assert!(mac(1 << 24).is_err());
    }
}
