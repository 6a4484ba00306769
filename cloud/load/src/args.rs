//! Command-line options: those of the devices (passed on to every worker) and those of the run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

/// What every worker needs to know to play its share of the devices.
#[derive(Args, Clone, Debug)]
pub struct DeviceArgs {
    /// Devices to connect, in total.
    #[arg(long, default_value_t = 1000)]
    pub devices: u32,
    /// New device connections per second, in total.
    #[arg(long, default_value_t = 2000.0)]
    pub connect_rate: f64,
    /// Where devices connect: talaria's ws:// or wss:// device URL, or petasos' http(s):// URL
    /// (its 307 is followed). Loopback addresses only.
    #[arg(long, default_value = "ws://127.0.0.1:6200/api/v3/device")]
    pub device_url: String,
    /// Source addresses the devices bind to, from 127.1.0.1 on, so that no single address runs
    /// out of ephemeral ports (Linux routes all of 127.0.0.0/8 to lo); 0 binds none.
    #[arg(long, default_value_t = 64)]
    pub source_ips: u32,
    /// The first device's MAC (12 hex digits); device n is this plus n.
    #[arg(long, default_value = "020000000000", value_parser = parse_mac)]
    pub first_mac: u64,
    /// Events per second from all devices together, each device on its own timer; 0: none.
    #[arg(long, default_value_t = 0.0)]
    pub event_rate: f64,
    /// QoS of those events (25 and above are acknowledged by talaria).
    #[arg(long, default_value_t = 0)]
    pub event_qos: u8,
    /// Send no X-Webpa-Convey header (parodus sends one, and talaria keeps parts of it).
    #[arg(long)]
    pub no_convey: bool,
    /// PEM CA certificate(s) to trust for wss:// and https:// (e.g. from `xmidt-load cert`).
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
    /// Handshakes in progress at once, per worker.
    #[arg(long, default_value_t = 256)]
    pub max_connecting: u32,
}

impl DeviceArgs {
    /// The same options as command-line arguments, for a worker.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            format!("--devices={}", self.devices),
            format!("--connect-rate={}", self.connect_rate),
            format!("--device-url={}", self.device_url),
            format!("--source-ips={}", self.source_ips),
            format!("--first-mac={:012x}", self.first_mac),
            format!("--event-rate={}", self.event_rate),
            format!("--event-qos={}", self.event_qos),
            format!("--max-connecting={}", self.max_connecting),
        ];
        if self.no_convey {
            args.push("--no-convey".into());
        }
        if let Some(ca) = &self.ca_cert {
            args.push(format!("--ca-cert={}", ca.display()));
        }
        args
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.devices == 0 {
            return Err("--devices must be at least 1".into());
        }
        if !rate_in_range(self.connect_rate) {
            return Err(format!(
                "--connect-rate must be within {MIN_RATE}..={MAX_RATE}"
            ));
        }
        if self.event_rate != 0.0 && !rate_in_range(self.event_rate) {
            return Err(format!(
                "--event-rate must be 0 or within {MIN_RATE}..={MAX_RATE}"
            ));
        }
        if self.event_qos > 99 {
            return Err("--event-qos is 0..=99".into());
        }
        if self.source_ips > 65_000 {
            return Err("--source-ips is at most 65000".into());
        }
        if self.max_connecting == 0 {
            return Err("--max-connecting must be at least 1".into());
        }
        if u64::from(self.devices) + self.first_mac > 0xffff_ffff_ffff {
            return Err("--first-mac plus --devices runs past ff:ff:ff:ff:ff:ff".into());
        }
        Ok(())
    }
}

/// Rates (per second) are kept where the periods they imply stay representable.
const MIN_RATE: f64 = 0.01;
const MAX_RATE: f64 = 1e6;
/// No phase or timeout of a run lasts longer (the tool's clocks add these to "now").
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

fn rate_in_range(rate: f64) -> bool {
    (MIN_RATE..=MAX_RATE).contains(&rate)
}

fn parse_mac(s: &str) -> Result<u64, String> {
    let hex: String = s.chars().filter(|c| !matches!(c, ':' | '-')).collect();
    if hex.len() != 12 {
        return Err("a MAC is 12 hex digits".into());
    }
    u64::from_str_radix(&hex, 16).map_err(|e| e.to_string())
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d > MAX_DURATION {
        return Err("at most 24h".into());
    }
    Ok(d)
}

/// A worker: its index among `workers`, and the devices' options.
#[derive(Args, Clone, Debug)]
pub struct WorkerArgs {
    #[arg(long)]
    pub index: u32,
    #[arg(long)]
    pub workers: u32,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// How API requests are spaced in time.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Arrivals {
    #[default]
    Even,
    Poisson,
}

impl Arrivals {
    pub fn name(self) -> &'static str {
        match self {
            Arrivals::Even => "even",
            Arrivals::Poisson => "poisson",
        }
    }
}

/// The run: devices, then API requests, then the summary.
#[derive(Args, Clone, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Worker processes holding the devices (each stays under its open-file limit).
    #[arg(long, default_value_t = 4)]
    pub workers: u32,
    /// Where API requests go: talaria's /api/v3/device/send, or scytale's /api/v3/device.
    #[arg(long, default_value = "http://127.0.0.1:6200/api/v3/device/send")]
    pub api_url: String,
    /// `Authorization` header of API requests, e.g. "Basic dXNlcjpwYXNz".
    #[arg(long)]
    pub api_authorization: Option<String>,
    /// API requests per second, once the devices are connected.
    #[arg(long, default_value_t = 2000.0)]
    pub request_rate: f64,
    /// How requests are spaced: `even` (1/rate apart, a steady rate) or `poisson` (random
    /// exponential gaps with the same mean, as independent clients would send them).
    #[arg(long, value_enum, default_value_t = Arrivals::Even)]
    pub arrivals: Arrivals,
    /// API requests in all (the request phase ends at this count or after --duration); 0: none.
    #[arg(long, default_value_t = 20_000)]
    pub requests: u64,
    /// The longest the request phase lasts.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Requests at the same rate before the measured ones, whose latency is not recorded: the
    /// client opens its connections then (a TLS handshake each, with https).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// API requests in flight at once; the next one waits for a free slot.
    #[arg(long, default_value_t = 256)]
    pub max_inflight: u32,
    /// One API request's time limit.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// The longest the connect phase lasts [default: devices / connect rate + 30s].
    #[arg(long, value_parser = parse_duration)]
    pub connect_timeout: Option<Duration>,
    /// Wait this long after connecting before reading talaria's RSS.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub settle: Duration,
    /// Keep the devices connected this long after the requests, before disconnecting.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub hold: Duration,
    /// Serve an event receiver (caduceus stand-in, answers 202) here and count what talaria
    /// sends it: point talaria's outbound.event_endpoints at http://ADDR/api/v4/notify.
    #[arg(long)]
    pub event_sink: Option<SocketAddr>,
    /// talaria's process id: its VmRSS (/proc/PID/status) is read before and after connecting,
    /// and its CPU time (/proc/PID/task/*/schedstat) around the connect and request phases.
    /// Repeatable: with several talarias, their sums.
    #[arg(long = "talaria-pid")]
    pub talaria_pids: Vec<u32>,
    /// Print the summary as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

impl RunArgs {
    pub fn validate(&self) -> Result<(), String> {
        self.device.validate()?;
        if self.workers == 0 || self.workers > self.device.devices {
            return Err("--workers must be between 1 and --devices".into());
        }
        if self.requests > 0 && !rate_in_range(self.request_rate) {
            return Err(format!(
                "--request-rate must be within {MIN_RATE}..={MAX_RATE}"
            ));
        }
        if self.max_inflight == 0 {
            return Err("--max-inflight must be at least 1".into());
        }
        Ok(())
    }

    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout.unwrap_or_else(|| {
            // At most u32::MAX devices at no less than MIN_RATE: well within Duration's range.
            Duration::from_secs_f64(f64::from(self.device.devices) / self.device.connect_rate)
                + Duration::from_secs(30)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Probe {
        #[command(flatten)]
        device: DeviceArgs,
    }

    #[test]
    fn device_args_survive_the_trip_to_a_worker() {
        let original = Probe::try_parse_from([
            "x",
            "--devices=7",
            "--first-mac=02:00:00:00:00:10",
            "--no-convey",
            "--event-rate=1.5",
        ])
        .expect("valid");
        let again = Probe::try_parse_from(
            std::iter::once("x".to_string()).chain(original.device.to_args()),
        )
        .expect("round trip");
        assert_eq!(again.device.devices, 7);
        assert_eq!(again.device.first_mac, 0x0200_0000_0010);
        assert!(again.device.no_convey);
        assert_eq!(again.device.event_rate, 1.5);
    }

    #[test]
    fn rates_and_durations_stay_in_range() {
        for bad in [
            vec!["--connect-rate=0"],
            vec!["--connect-rate=1e-300"],
            vec!["--event-rate=NaN"],
        ] {
            let probe = Probe::try_parse_from(std::iter::once("x").chain(bad.clone())).unwrap();
            assert!(probe.device.validate().is_err(), "{bad:?}");
        }
        assert!(parse_duration("2days").is_err());
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn bad_macs_are_refused() {
        assert!(parse_mac("0200").is_err());
        assert!(parse_mac("zz0000000000").is_err());
        assert_eq!(parse_mac("02-00-00-00-00-01"), Ok(0x0200_0000_0001));
    }
}
