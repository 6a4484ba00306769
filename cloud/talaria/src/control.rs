//! The operator control API (cloud-spec §4.10): open or close the gate for new devices, and
//! drain connected devices at a given rate. Served on its own address, under /api/v2 and /api/v3.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use xmidt_common::openapi::About;
use xmidt_common::ErrorBody;

use crate::error::json_error;
use crate::registry::CloseReason;
use crate::Talaria;
use xmidt_common::gotime::rfc3339_nano;

/// Whether new devices may connect.
pub struct Gate {
    open: AtomicBool,
    changed: Mutex<SystemTime>,
}

impl Gate {
    pub fn new(open: bool) -> Self {
        Gate {
            open: AtomicBool::new(open),
            changed: Mutex::new(SystemTime::now()),
        }
    }

    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Relaxed)
    }

    /// Sets the state; true when it changed.
    pub fn set(&self, open: bool) -> bool {
        let changed = self.open.swap(open, Ordering::Relaxed) != open;
        if changed {
            *self.changed.lock().unwrap_or_else(|p| p.into_inner()) = SystemTime::now();
        }
        metrics::gauge!("xmidt_talaria_gate_status").set(if open { 1.0 } else { 0.0 });
        changed
    }

    fn view(&self) -> GateView {
        let at = *self.changed.lock().unwrap_or_else(|p| p.into_inner());
        GateView {
            open: self.is_open(),
            timestamp: rfc3339_nano(at),
        }
    }
}

/// The drain job in progress or last finished.
#[derive(Default)]
pub struct Drain {
    state: Mutex<DrainState>,
}

#[derive(Default)]
struct DrainState {
    cancel: Option<CancellationToken>,
    job: serde_json::Value,
    visited: u64,
    drained: u64,
    started: Option<SystemTime>,
    finished: Option<SystemTime>,
}

impl Drain {
    fn view(&self) -> DrainView {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        DrainView {
            active: s.cancel.is_some(),
            job: s.job.clone(),
            progress: DrainProgress {
                visited: s.visited,
                drained: s.drained,
                started: s.started.map(rfc3339_nano),
                finished: s.finished.map(rfc3339_nano),
            },
        }
    }
}

/// The gate's state.
#[derive(Serialize, ToSchema)]
struct GateView {
    open: bool,
    /// When it last changed, RFC 3339 with nanoseconds.
    timestamp: String,
}

/// The drain job in progress or last finished.
#[derive(Serialize, ToSchema)]
struct DrainView {
    active: bool,
    /// The job's parameters: `count`, `percent`, `rate`, `tick`.
    #[schema(value_type = Object)]
    job: serde_json::Value,
    progress: DrainProgress,
}

#[derive(Serialize, ToSchema)]
struct DrainProgress {
    /// Devices looked at.
    visited: u64,
    /// Devices disconnected.
    drained: u64,
    started: Option<String>,
    finished: Option<String>,
}

/// The control API under `/api/v2` and `/api/v3`, with `/health`, `/metrics` and
/// `/openapi.json` (its own document).
pub fn router(t: Arc<Talaria>) -> Router {
    let routes = OpenApiRouter::new()
        .routes(routes!(get_gate, set_gate))
        .routes(routes!(get_drain, start_drain, cancel_drain));
    let documented = OpenApiRouter::new()
        .nest("/api/v2", routes.clone())
        .nest("/api/v3", routes);
    let about = About {
        title: "talaria control",
        version: env!("CARGO_PKG_VERSION"),
        description: "Talaria's operator API, on its own address: the gate and draining.",
    };
    xmidt_common::openapi::finish(documented, about).with_state(t)
}

/// Whether new devices may connect.
#[utoipa::path(get, path = "/device/gate", tag = "control",
    responses((status = 200, description = "The gate", body = GateView)))]
async fn get_gate(State(t): State<Arc<Talaria>>) -> Json<GateView> {
    Json(t.gate.view())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct GateParams {
    /// Open (`true`) or close (`false`) the gate.
    open: bool,
}

/// Opens or closes the gate; connected devices stay.
#[utoipa::path(method(post, put, patch), path = "/device/gate", tag = "control",
    params(GateParams),
    responses(
        (status = 200, description = "The gate was already so", body = GateView),
        (status = 201, description = "The gate changed", body = GateView),
        (status = 400, description = "`open` is missing or not a boolean", body = ErrorBody),
    ))]
async fn set_gate(
    State(t): State<Arc<Talaria>>,
    params: Result<Query<GateParams>, QueryRejection>,
) -> Response {
    let Ok(Query(params)) = params else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "the open parameter must be true or false",
        );
    };
    let changed = t.gate.set(params.open);
    tracing::info!(open = params.open, "gate set");
    let status = if changed {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (status, Json(t.gate.view())).into_response()
}

/// The drain job in progress or last finished.
#[utoipa::path(get, path = "/device/drain", tag = "control",
    responses((status = 200, description = "The drain", body = DrainView)))]
async fn get_drain(State(t): State<Arc<Talaria>>) -> Json<DrainView> {
    Json(t.drain.view())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DrainParams {
    /// Devices to drain; all connected when absent.
    count: Option<u64>,
    /// Percentage of connected devices; overrides `count`.
    percent: Option<u8>,
    /// Devices per tick; all at once when absent.
    rate: Option<u64>,
    /// Time between batches, e.g. `1s` (the default) or `250ms`.
    #[serde(default, with = "humantime_serde")]
    #[param(value_type = Option<String>)]
    tick: Option<Duration>,
}

/// Starts disconnecting devices, `rate` per `tick`.
#[utoipa::path(method(post, put, patch), path = "/device/drain", tag = "control",
    params(DrainParams),
    responses(
        (status = 200, description = "The drain started", body = DrainView),
        (status = 400, description = "Invalid parameters", body = ErrorBody),
        (status = 429, description = "A drain is already running", body = ErrorBody),
    ))]
async fn start_drain(
    State(t): State<Arc<Talaria>>,
    params: Result<Query<DrainParams>, QueryRejection>,
) -> Response {
    let Ok(Query(p)) = params else {
        return json_error(StatusCode::BAD_REQUEST, "invalid drain parameters");
    };
    if p.percent.is_some_and(|pc| pc > 100) || p.rate == Some(0) {
        return json_error(
            StatusCode::BAD_REQUEST,
            "percent must be 0..100 and rate above 0",
        );
    }
    let connected = t.registry.len() as u64;
    let count = match (p.percent, p.count) {
        (Some(pc), _) => connected * u64::from(pc) / 100,
        (None, Some(c)) => c.min(connected),
        (None, None) => connected,
    };
    let tick = p
        .tick
        .unwrap_or(Duration::from_secs(1))
        .max(Duration::from_millis(1));
    let cancel = CancellationToken::new();
    {
        let mut s = t.drain.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.cancel.is_some() {
            return json_error(StatusCode::TOO_MANY_REQUESTS, "a drain is already running");
        }
        *s = DrainState {
            cancel: Some(cancel.clone()),
            job: json!({ "count": count, "percent": p.percent, "rate": p.rate, "tick": p.tick.map(|d| humantime::format_duration(d).to_string()) }),
            started: Some(SystemTime::now()),
            ..DrainState::default()
        };
    }
    metrics::gauge!("xmidt_talaria_drain_status").set(1.0);
    let job = t.clone();
    tokio::spawn(async move { run_drain(job, count, p.rate, tick, cancel).await });
    Json(t.drain.view()).into_response()
}

async fn run_drain(
    t: Arc<Talaria>,
    count: u64,
    rate: Option<u64>,
    tick: Duration,
    cancel: CancellationToken,
) {
    let mut left = count;
    let mut ticker = tokio::time::interval(tick);
    while left > 0 {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let batch = rate.unwrap_or(left).min(left);
        // Drained devices stay listed until their connection winds down: skip them.
        let devices: Vec<_> = t
            .registry
            .all()
            .into_iter()
            .filter(|d| !d.closed().is_cancelled())
            .collect();
        if devices.is_empty() {
            break;
        }
        let mut drained = 0;
        for device in devices.iter().take(batch as usize) {
            device.close(CloseReason::Drained);
            drained += 1;
        }
        left -= drained;
        let mut s = t.drain.state.lock().unwrap_or_else(|p| p.into_inner());
        s.visited += devices.len() as u64;
        s.drained += drained;
        metrics::counter!("xmidt_talaria_drain_count").increment(drained);
    }
    let mut s = t.drain.state.lock().unwrap_or_else(|p| p.into_inner());
    s.cancel = None;
    s.finished = Some(SystemTime::now());
    metrics::gauge!("xmidt_talaria_drain_status").set(0.0);
}

/// Stops the drain in progress.
#[utoipa::path(delete, path = "/device/drain", tag = "control",
    responses(
        (status = 200, description = "The drain stopped", body = DrainView),
        (status = 429, description = "No drain is running", body = ErrorBody),
    ))]
async fn cancel_drain(State(t): State<Arc<Talaria>>) -> Response {
    let cancel = t
        .drain
        .state
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .cancel
        .clone();
    match cancel {
        Some(c) => {
            c.cancel();
            Json(t.drain.view()).into_response()
        }
        None => json_error(StatusCode::TOO_MANY_REQUESTS, "no drain is running"),
    }
}
