//! A worker process: connects its share of the devices at its share of the rate, reports its
//! counters on stdout every 100 ms, and stops when stdin closes (the run ended or died).

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;
use tokio::time::{interval, Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::args::WorkerArgs;
use crate::device::{self, Fleet};
use crate::target::Target;

const REPORT_EVERY: Duration = Duration::from_millis(100);
/// Devices close their websockets within this time once told to stop.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// File descriptors a worker needs besides its devices' sockets.
pub const SPARE_FDS: u64 = 64;

/// One line to the run. A closed stdout means the run is gone: nothing to do but stop.
pub fn say(line: &str) -> bool {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|()| out.flush()).is_ok()
}

/// Raises the open-file limit to the hard limit and checks that `sockets` fit under it.
pub fn raise_fd_limit(sockets: u64) -> Result<(), String> {
    let limit =
        rlimit::increase_nofile_limit(u64::MAX).map_err(|e| format!("RLIMIT_NOFILE: {e}"))?;
    if sockets + SPARE_FDS > limit {
        return Err(format!(
            "{sockets} connections do not fit under the open-file limit of {limit}: use more --workers"
        ));
    }
    Ok(())
}

pub fn main(args: WorkerArgs) -> Result<(), String> {
    args.device.validate()?;
    if args.workers == 0 || args.index >= args.workers {
        return Err("--index must be below --workers".into());
    }
    raise_fd_limit(share(args.device.devices, args.index, args.workers))?;
    // One thread per worker: the run starts as many workers as it wants cores busy.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(run(args))
}

/// How many of `devices` worker `index` of `workers` plays (devices index, index + workers, …).
pub fn share(devices: u32, index: u32, workers: u32) -> u64 {
    u64::from(devices.saturating_sub(index).div_ceil(workers.max(1)))
}

/// The `X-Webpa-Convey` header parodus would send (base64 of a JSON object).
fn convey() -> Option<HeaderValue> {
    let json = format!(
        r#"{{"hw-model":"xmidt-load","hw-manufacturer":"Xmidt","hw-serial-number":"LOAD00000001","fw-name":"xmidt-load-{}","boot-time":{},"webpa-protocol":"PARODUS-2.0","webpa-interface-used":"erouter0","last-reconnect-reason":"webpa_process_starts"}}"#,
        env!("CARGO_PKG_VERSION"),
        crate::report::epoch_micros() / 1_000_000,
    );
    HeaderValue::from_str(&base64::engine::general_purpose::STANDARD.encode(json)).ok()
}

async fn run(args: WorkerArgs) -> Result<(), String> {
    let d = &args.device;
    let target = Target::new(&d.device_url, d.ca_cert.as_deref()).await?;
    let count = share(d.devices, args.index, args.workers);
    let workers = f64::from(args.workers);
    // Each device sends every devices/event_rate seconds, so all together send event_rate/s.
    let event_every =
        (d.event_rate > 0.0).then(|| Duration::from_secs_f64(f64::from(d.devices) / d.event_rate));
    let stop = CancellationToken::new();
    let fleet = Arc::new(Fleet::new(
        target,
        d.first_mac,
        d.source_ips,
        (!d.no_convey).then(convey).flatten(),
        event_every,
        d.event_qos,
        stop.clone(),
    ));

    tokio::spawn(stop_on_eof(stop.clone()));
    let reporter = tokio::spawn(report(fleet.clone()));

    let tracker = TaskTracker::new();
    let handshakes = Arc::new(Semaphore::new(d.max_connecting as usize));
    let rate = d.connect_rate / workers;
    let start = Instant::now();
    let mut tick = interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut k = 0u64;
    'connect: while k < count {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        // Devices due by now at the worker's rate (the first one at once).
        let due = count.min((start.elapsed().as_secs_f64() * rate) as u64 + 1);
        while k < due {
            let permit = tokio::select! {
                () = stop.cancelled() => break 'connect,
                p = handshakes.clone().acquire_owned() => p.map_err(|e| e.to_string())?,
            };
            let n = u64::from(args.index) + k * u64::from(args.workers);
            tracker.spawn(device::run(fleet.clone(), n, permit));
            k += 1;
        }
    }
    stop.cancelled().await;
    tracker.close();
    let _ = tokio::time::timeout(STOP_GRACE, tracker.wait()).await;
    reporter.abort();
    say(&fleet.counters.snapshot().to_line());
    Ok(())
}

/// The run closes our stdin to stop us; so does its death.
async fn stop_on_eof(stop: CancellationToken) {
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    while let Ok(n) = stdin.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
    stop.cancel();
}

async fn report(fleet: Arc<Fleet>) {
    let mut tick = interval(REPORT_EVERY);
    loop {
        tick.tick().await;
        if !say(&fleet.counters.snapshot().to_line()) {
            fleet.stop.cancel();
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_every_device_once() {
        for (devices, workers) in [(10, 3), (3, 3), (18_000, 4), (1, 1)] {
            let total: u64 = (0..workers).map(|i| share(devices, i, workers)).sum();
            assert_eq!(total, u64::from(devices));
        }
        assert_eq!(share(10, 0, 3), 4);
        assert_eq!(share(10, 2, 3), 3);
    }

    #[test]
    fn the_convey_header_is_base64_json() {
        let header = convey().expect("valid header");
        let json = base64::engine::general_purpose::STANDARD
            .decode(header.as_bytes())
            .expect("base64");
        let value: serde_json::Value = serde_json::from_slice(&json).expect("json");
        assert_eq!(value["hw-model"], "xmidt-load");
    }
}
