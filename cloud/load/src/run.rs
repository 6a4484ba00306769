//! The run: start the workers, wait for the devices, send the API requests, read talaria's RSS
//! along the way, show progress on stderr, stop everything and print the summary.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::task::JoinHandle;
use tokio::time::{interval, Instant};
use tokio_util::sync::CancellationToken;

use crate::api::{self, ApiStats};
use crate::args::{Arrivals, RunArgs};
use crate::report::Stats;
use crate::sink::{self, Received};

/// How often the run looks at the workers' counters while waiting.
const POLL: Duration = Duration::from_millis(100);
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// Workers get this long to close their devices and exit before they are killed.
const WORKER_EXIT: Duration = Duration::from_secs(10);
/// Offline events trail the disconnects: the sink is read once it has been quiet for two of
/// these…
const SINK_QUIET: Duration = Duration::from_millis(500);
/// …or after this many of them.
const SINK_QUIET_ROUNDS: u32 = 20;

pub fn main(args: RunArgs) -> Result<(), String> {
    args.validate()?;
    let per_worker = crate::worker::share(args.device.devices, 0, args.workers);
    let (_, hard) = rlimit::Resource::NOFILE
        .get()
        .map_err(|e| format!("RLIMIT_NOFILE: {e}"))?;
    if per_worker + crate::worker::SPARE_FDS > hard {
        return Err(format!(
            "{per_worker} devices per worker exceed the open-file limit of {hard}: use more --workers"
        ));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let summary = runtime.block_on(run(&args))?;
    if args.json {
        println!("{}", summary.to_json());
    } else {
        print!("{}", summary.to_text());
    }
    Ok(())
}

struct Workers {
    children: Vec<Child>,
    stdins: Vec<ChildStdin>,
    stats: Arc<Mutex<Vec<Stats>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Workers {
    fn start(args: &RunArgs) -> Result<Workers, String> {
        let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
        let stats = Arc::new(Mutex::new(vec![Stats::default(); args.workers as usize]));
        let mut workers = Workers {
            children: Vec::new(),
            stdins: Vec::new(),
            stats: stats.clone(),
            readers: Vec::new(),
        };
        for index in 0..args.workers {
            let mut child = Command::new(&exe)
                .arg("worker")
                .arg(format!("--index={index}"))
                .arg(format!("--workers={}", args.workers))
                .args(args.device.to_args())
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("starting worker {index}: {e}"))?;
            let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
                return Err("worker pipes missing".into());
            };
            let stats = stats.clone();
            workers.readers.push(tokio::spawn(async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(s) = Stats::parse(&line) {
                        stats.lock().unwrap_or_else(PoisonError::into_inner)[index as usize] = s;
                    } else if let Some(error) = line.strip_prefix("error ") {
                        eprintln!("worker {index}: {error}");
                    }
                }
            }));
            workers.children.push(child);
            workers.stdins.push(stdin);
        }
        Ok(workers)
    }

    fn total(&self) -> Stats {
        let mut total = Stats::default();
        for s in self
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            total.add(s);
        }
        total
    }

    /// A worker that has exited before being told to stop: the run cannot go on.
    fn failed(&mut self) -> Option<String> {
        self.children.iter_mut().enumerate().find_map(|(i, c)| {
            c.try_wait()
                .ok()
                .flatten()
                .map(|status| format!("worker {i} exited early ({status})"))
        })
    }

    /// Closes the workers' stdin (their stop signal), waits for them, and returns the last
    /// counters they reported.
    async fn stop(mut self) -> Stats {
        self.stdins.clear();
        for child in &mut self.children {
            if tokio::time::timeout(WORKER_EXIT, child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(POLL, reader).await;
        }
        self.total()
    }
}

/// The talarias' resident sets, summed; None without pids or when one cannot be read.
fn talaria_rss(args: &RunArgs) -> Option<u64> {
    if args.talaria_pids.is_empty() {
        return None;
    }
    args.talaria_pids
        .iter()
        .map(|&pid| {
            crate::proc::rss(pid)
                .map_err(|e| eprintln!("xmidt-load: {e}"))
                .ok()
        })
        .sum()
}

/// The talarias' CPU time, summed, as [`talaria_rss`].
fn talaria_cpu(args: &RunArgs) -> Option<Duration> {
    if args.talaria_pids.is_empty() {
        return None;
    }
    args.talaria_pids
        .iter()
        .map(|&pid| crate::proc::cpu(pid).ok())
        .sum()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Waits `d`, or less when interrupted.
async fn pause(d: Duration, interrupted: &CancellationToken) {
    tokio::select! {
        () = tokio::time::sleep(d) => {}
        () = interrupted.cancelled() => {}
    }
}

async fn run(args: &RunArgs) -> Result<Summary, String> {
    let interrupted = CancellationToken::new();
    let on_signal = interrupted.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("xmidt-load: interrupted, stopping");
            on_signal.cancel();
        }
    });
    let stop_sink = CancellationToken::new();
    let _stop_sink = stop_sink.clone().drop_guard();
    let sink = match args.event_sink {
        Some(addr) => Some(sink::start(addr, stop_sink).await?.1),
        None => None,
    };

    let mut summary = Summary {
        devices: args.device.devices,
        workers: args.workers,
        arrivals: args.arrivals,
        load_before: load_average(),
        rss_before: talaria_rss(args),
        ..Summary::default()
    };
    let api_stats: api::Shared = Arc::default();
    let connect_cpu_before = talaria_cpu(args);
    let started = Instant::now();
    let mut workers = Workers::start(args)?;
    let stop_progress = CancellationToken::new();
    let _stop_progress = stop_progress.clone().drop_guard();
    tokio::spawn(progress(
        args.clone(),
        workers.stats.clone(),
        api_stats.clone(),
        started,
        stop_progress,
    ));

    // Connect phase: until every device has connected or failed, within the connect timeout.
    let connect_deadline = started + args.connect_timeout();
    let mut poll = interval(POLL);
    loop {
        tokio::select! {
            _ = poll.tick() => {}
            () = interrupted.cancelled() => break,
        }
        let total = workers.total();
        if total.connects + total.failed >= u64::from(args.device.devices) {
            break;
        }
        if let Some(failure) = workers.failed() {
            workers.stop().await;
            return Err(failure);
        }
        if Instant::now() >= connect_deadline {
            eprintln!("xmidt-load: connect phase timed out");
            break;
        }
    }
    pause(args.settle, &interrupted).await;
    let connected = workers.total();
    summary.held = connected.connected;
    summary.connect_failures = connected.failed;
    summary.connect_rate = connected.connect_rate();
    summary.connect_seconds = connected
        .last_connect
        .saturating_sub(connected.first_connect) as f64
        / 1e6;
    summary.connect_cpu = connect_cpu_before
        .zip(talaria_cpu(args))
        .map(|(before, after)| after.saturating_sub(before));
    summary.rss_connected = talaria_rss(args);

    if args.requests > 0 && !interrupted.is_cancelled() {
        let cpu_before = talaria_cpu(args);
        summary.request_seconds = tokio::select! {
            r = api::run(args, api_stats.clone()) => r?.as_secs_f64(),
            () = interrupted.cancelled() => 0.0,
        };
        summary.request_cpu = cpu_before
            .zip(talaria_cpu(args))
            .map(|(before, after)| after.saturating_sub(before));
    }
    pause(args.hold, &interrupted).await;
    summary.held_after = workers.total().connected;
    summary.rss_after = talaria_rss(args);
    summary.load_after = load_average();

    let last = workers.stop().await;
    summary.dropped = last.dropped;
    summary.answered = last.answered;
    summary.events = last.events;
    summary.acks = last.acks;
    summary.api = std::mem::take(&mut *api::lock(&api_stats));
    if let Some(received) = sink {
        summary.sink = Some(quiet_counts(&received).await);
    }
    Ok(summary)
}

/// The sink's counts once talaria's last offline events have come in: unchanged for a while,
/// or after a bounded wait.
async fn quiet_counts(received: &Received) -> [u64; 4] {
    use std::sync::atomic::Ordering::Relaxed;
    let read = || {
        [
            received.online.load(Relaxed),
            received.offline.load(Relaxed),
            received.other.load(Relaxed),
            received.invalid.load(Relaxed),
        ]
    };
    let mut last = read();
    let mut quiet = 0;
    for _ in 0..SINK_QUIET_ROUNDS {
        tokio::time::sleep(SINK_QUIET).await;
        let now = read();
        quiet = if now == last { quiet + 1 } else { 0 };
        if quiet == 2 {
            break;
        }
        last = now;
    }
    last
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

/// One progress line a second on stderr, until the run ends.
async fn progress(
    args: RunArgs,
    workers: Arc<Mutex<Vec<Stats>>>,
    api_stats: api::Shared,
    started: Instant,
    stop: CancellationToken,
) {
    let mut tick = interval(PROGRESS_EVERY);
    tick.tick().await;
    let mut last_sent = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let mut total = Stats::default();
        for s in workers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            total.add(s);
        }
        let mut line = format!(
            "[{:6.1}s] devices {}/{} connected, {} failed, {} dropped",
            started.elapsed().as_secs_f64(),
            total.connected,
            args.device.devices,
            total.failed,
            total.dropped
        );
        {
            let mut api = api::lock(&api_stats);
            if api.sent > 0 {
                line += &format!(
                    " | requests {}/s, {} ok, {} errors, {} timeouts, {} not found | p50 {:.3} ms p99 {:.3} ms",
                    api.sent - last_sent,
                    api.ok,
                    api.errors,
                    api.timeouts,
                    api.not_found,
                    ms(api.window.value_at_quantile(0.5)),
                    ms(api.window.value_at_quantile(0.99)),
                );
                last_sent = api.sent;
                api.window.reset();
            } else if api.warmup_sent > 0 {
                line += &format!(" | warming up: {} requests", api.warmup_sent);
            }
        }
        if let Some(rss) = talaria_rss(&args) {
            line += &format!(" | talaria RSS {:.1} MiB", mib(rss));
        }
        eprintln!("{line}");
    }
}

#[derive(Default)]
struct Summary {
    devices: u32,
    workers: u32,
    held: u64,
    held_after: u64,
    connect_failures: u64,
    dropped: u64,
    connect_rate: f64,
    connect_seconds: f64,
    rss_before: Option<u64>,
    rss_connected: Option<u64>,
    rss_after: Option<u64>,
    request_seconds: f64,
    arrivals: Arrivals,
    /// talaria's CPU time while connecting (including the settle time) and while requesting.
    connect_cpu: Option<Duration>,
    request_cpu: Option<Duration>,
    api: ApiStats,
    answered: u64,
    events: u64,
    acks: u64,
    /// online, offline, other, invalid.
    sink: Option<[u64; 4]>,
    load_before: String,
    load_after: String,
}

impl Summary {
    /// Talaria's RSS growth per connection held, between before and after connecting.
    fn rss_per_connection(&self) -> Option<u64> {
        let (before, after) = (self.rss_before?, self.rss_connected?);
        (self.held > 0).then(|| after.saturating_sub(before) / self.held)
    }

    fn request_rate(&self) -> f64 {
        if self.request_seconds > 0.0 {
            self.api.sent.saturating_sub(1) as f64 / self.request_seconds
        } else {
            0.0
        }
    }

    /// talaria's CPU time per connection and per request, in µs.
    fn cpu_per_connection(&self) -> Option<f64> {
        let cpu = self.connect_cpu?;
        (self.held > 0).then(|| cpu.as_secs_f64() * 1e6 / self.held as f64)
    }

    fn cpu_per_request(&self) -> Option<f64> {
        let cpu = self.request_cpu?;
        (self.api.sent > 0).then(|| cpu.as_secs_f64() * 1e6 / self.api.sent as f64)
    }

    fn quantile_ms(&self, q: f64) -> f64 {
        ms(self.api.latency.value_at_quantile(q))
    }

    fn to_json(&self) -> serde_json::Value {
        json!({
            "devices": self.devices,
            "workers": self.workers,
            "held": self.held,
            "held_after_requests": self.held_after,
            "connect_failures": self.connect_failures,
            "dropped": self.dropped,
            "connect_rate": self.connect_rate,
            "connect_seconds": self.connect_seconds,
            "talaria_rss_before": self.rss_before,
            "talaria_rss_connected": self.rss_connected,
            "talaria_rss_after_requests": self.rss_after,
            "talaria_rss_per_connection": self.rss_per_connection(),
            "talaria_cpu_us_per_connection": self.cpu_per_connection(),
            "talaria_cpu_us_per_request": self.cpu_per_request(),
            "requests_sent": self.api.sent,
            "requests_ok": self.api.ok,
            "requests_not_found": self.api.not_found,
            "requests_timed_out": self.api.timeouts,
            "requests_failed": self.api.errors,
            "first_error": self.api.first_error,
            "warmup_requests": self.api.warmup_sent,
            "warmup_failed": self.api.warmup_failed,
            "request_rate": self.request_rate(),
            "arrivals": self.arrivals.name(),
            "latency_ms": {
                "p50": self.quantile_ms(0.5),
                "p90": self.quantile_ms(0.9),
                "p99": self.quantile_ms(0.99),
                "p99.9": self.quantile_ms(0.999),
                "max": ms(self.api.latency.max()),
            },
            "answered_by_devices": self.answered,
            "events_sent": self.events,
            "acks_received": self.acks,
            "sink": self.sink.map(|[online, offline, other, invalid]| json!({
                "online": online, "offline": offline, "other": other, "invalid": invalid,
            })),
            "load_average_before": self.load_before,
            "load_average_after": self.load_after,
        })
    }

    fn to_text(&self) -> String {
        let rss = |r: Option<u64>| r.map_or("-".to_string(), |r| format!("{:.1} MiB", mib(r)));
        let mut s = format!(
            "devices held:        {} of {} ({} workers), {} after the requests\n\
             connect failures:    {}, dropped later: {}\n\
             connect rate:        {:.0}/s ({:.2} s from first to last)\n\
             talaria RSS:         {} before, {} connected, {} after the requests\n",
            self.held,
            self.devices,
            self.workers,
            self.held_after,
            self.connect_failures,
            self.dropped,
            self.connect_rate,
            self.connect_seconds,
            rss(self.rss_before),
            rss(self.rss_connected),
            rss(self.rss_after),
        );
        if let Some(per) = self.rss_per_connection() {
            s += &format!(
                "RSS per connection:  {per} bytes ({:.2} KiB)\n",
                per as f64 / 1024.0
            );
        }
        if let (Some(c), Some(r)) = (self.cpu_per_connection(), self.cpu_per_request()) {
            s += &format!("talaria CPU:         {c:.0} µs per connection, {r:.0} µs per request\n");
        } else if let Some(c) = self.cpu_per_connection() {
            s += &format!("talaria CPU:         {c:.0} µs per connection\n");
        }
        if self.api.sent > 0 {
            s += &format!(
                "requests:            {} sent at {:.0}/s ({} arrivals), {} ok, {} not found, {} timed out, {} failed\n\
                 latency:             p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms\n",
                self.api.sent,
                self.request_rate(),
                self.arrivals.name(),
                self.api.ok,
                self.api.not_found,
                self.api.timeouts,
                self.api.errors,
                self.quantile_ms(0.5),
                self.quantile_ms(0.9),
                self.quantile_ms(0.99),
                self.quantile_ms(0.999),
                ms(self.api.latency.max()),
            );
        }
        s += &format!(
            "devices:             {} requests answered, {} events sent, {} acks received\n",
            self.answered, self.events, self.acks,
        );
        if self.api.warmup_sent > 0 {
            s += &format!(
                "warm-up:             {} requests before the measured ones (latency not recorded), {} failed\n",
                self.api.warmup_sent, self.api.warmup_failed
            );
        }
        if let Some(e) = &self.api.first_error {
            s += &format!("first request error: {e}\n");
        }
        if let Some([online, offline, other, invalid]) = self.sink {
            s += &format!(
                "event sink:          {online} online, {offline} offline, {other} other, {invalid} invalid\n"
            );
        }
        s += &format!(
            "load average:        {} before, {} after\n",
            self.load_before, self.load_after
        );
        s
    }
}
