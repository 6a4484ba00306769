//! parodus's command line (client-spec §2), parsed as GNU getopt_long would: `--name=value` or
//! `--name value`, unambiguous prefixes of long names (RDK start scripts pass
//! `--webpa-ping-time=180`), parodus's short letters, and unknown options only warned about.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::Parser;

use crate::config::{Config, IpFamily, DEFAULT_LOCAL_URL};

/// parodus's `/tmp/webpanotifyready`.
const NOTIFY_READY_FILE: &str = "/tmp/webpanotifyready";
/// The ping timeout used when none (or parodus's 0) is given.
const DEFAULT_PING_TIMEOUT: u32 = 180;

#[derive(Debug, Parser)]
#[command(
    name = "parodus",
    version,
    infer_long_args = true,
    about = "The Xmidt device client: keeps the cloud WebSocket and routes WRP messages to local services (libparodus IPC)",
    after_help = "Options take `--name=value` or `--name value`, as parodus's do. Unknown options are \
                  logged and ignored. Logging: RUST_LOG (default `info`), to stderr."
)]
struct Cli {
    /// Device model name (convey `hw-model`, User-Agent)
    #[arg(long, short = 'm', value_name = "NAME", default_value = "")]
    hw_model: String,
    /// Device serial number, letters and digits only
    #[arg(long, short = 's', value_name = "SERIAL", default_value = "")]
    hw_serial_number: String,
    /// Device manufacturer
    #[arg(long, short = 'f', value_name = "NAME", default_value = "")]
    hw_manufacturer: String,
    /// Device MAC: 12 hex digits, ':' allowed; the device id is mac:<digits>
    #[arg(long, short = 'd', value_name = "MAC", required = true)]
    hw_mac: String,
    /// Reason of the last reboot
    #[arg(long, short = 'r', value_name = "TEXT", default_value = "")]
    hw_last_reboot_reason: String,
    /// Firmware name
    #[arg(long, short = 'n', value_name = "NAME", default_value = "")]
    fw_name: String,
    /// Boot time, unix seconds
    #[arg(long, short = 'b', value_name = "SECS", default_value_t = 0)]
    boot_time: u64,
    /// The cloud: http(s)://host[:port] of petasos or talaria (the path is ignored)
    #[arg(long, short = 'u', value_name = "URL", required = true)]
    webpa_url: String,
    /// Seconds without a ping from the server before reconnecting (parodus's 0 means 180 here)
    #[arg(long, short = 't', value_name = "SECS", default_value_t = DEFAULT_PING_TIMEOUT)]
    webpa_ping_timeout: u32,
    /// Reconnect backoff cap c: waits up to 2^c - 1 s (0: a fixed 3 s)
    #[arg(long, short = 'o', value_name = "C", default_value_t = 0,
          value_parser = clap::value_parser!(u8).range(0..=31))]
    webpa_backoff_max: u8,
    /// Network interface of the cloud connection (convey, metadata, SO_BINDTODEVICE)
    #[arg(long, short = 'i', value_name = "IFNAME", default_value = "")]
    webpa_interface_used: String,
    /// Where local services send (nanomsg PULL): tcp://host:port or ipc:///path
    #[arg(long, short = 'l', value_name = "URL", default_value = DEFAULT_LOCAL_URL)]
    parodus_local_url: String,
    /// Partner ids, comma separated (empty: no partner filtering)
    #[arg(long, short = 'p', value_name = "IDS", default_value = "")]
    partner_id: String,
    /// CA bundle (PEM) for the cloud and the token server (default: the system's)
    #[arg(long, short = 'c', value_name = "FILE")]
    ssl_cert_path: Option<OsString>,
    /// Connect over IPv4 only
    #[arg(long, short = '4')]
    force_ipv4: bool,
    /// Connect over IPv6 only
    #[arg(long, short = '6')]
    force_ipv6: bool,
    /// Seconds waited before boot-time retries (convey, token request)
    #[arg(long, short = 'w', value_name = "SECS", default_value_t = 0)]
    boot_time_retry_wait: u32,
    /// PEM with the client certificate and key for the token server; tokens are fetched only
    /// with it, as in parodus
    #[arg(long, value_name = "FILE")]
    client_cert_path: Option<OsString>,
    /// The token issuer (themis /issue)
    #[arg(long, value_name = "URL", default_value = "")]
    token_server_url: String,
    /// Client certificate (PEM) for the cloud WebSocket (mTLS)
    #[arg(long, value_name = "FILE")]
    mtls_client_cert_path: Option<OsString>,
    /// Its private key (PEM)
    #[arg(long, value_name = "FILE")]
    mtls_client_key_path: Option<OsString>,
    /// JSON file keeping CRUD tags
    #[arg(long, short = 'C', value_name = "FILE")]
    crud_config_file: Option<OsString>,
    /// File rewritten with {START=<t0>,<now>} while connecting and {STOP=<now>} once online
    #[arg(long, value_name = "FILE")]
    connection_health_file: Option<OsString>,
    /// Its contents are the close reason on SIGTERM (else system_restarting)
    #[arg(long, value_name = "FILE")]
    close_reason_file: Option<OsString>,
    /// Extra convey field webpa-interface-label
    #[arg(long, value_name = "LABEL", default_value = "")]
    webpa_interface_label: String,
    /// Extra convey field wan-ipv4-address
    #[arg(long, value_name = "ADDR", default_value = "")]
    wan_ipv4_address: String,

    // Not in parodus.
    /// [not in parodus] Seconds between keep-alive messages to local services (0: none)
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    service_alive_interval: u32,
    /// [not in parodus] Seconds a connect attempt (DNS, TCP, TLS, upgrade) may take
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    connect_timeout: u32,
    /// [not in parodus] File present while online after a reconnect (empty: none)
    #[arg(long, value_name = "FILE", default_value = NOTIFY_READY_FILE)]
    notify_ready_file: OsString,

    // parodus options of builds with features this client does not have: accepted and ignored.
    #[arg(long, hide = true)]
    ssl_engine: Option<String>,
    #[arg(long, hide = true)]
    ssl_cert_type: Option<String>,
    #[arg(long, hide = true)]
    ssl_reference_name: Option<String>,
    #[arg(long, short = 'j', hide = true)]
    acquire_jwt: Option<String>,
    #[arg(long, short = 'D', hide = true)]
    dns_txt_url: Option<String>,
    #[arg(long, short = 'a', hide = true)]
    jwt_algo: Option<String>,
    #[arg(long, short = 'k', hide = true)]
    jwt_public_key_file: Option<String>,
    #[arg(long, hide = true)]
    record_jwt_payload: Option<String>,
    #[arg(long, short = 'e', hide = true)]
    seshat_url: Option<String>,
    #[arg(long, hide = true)]
    max_queue_size: Option<String>,
}

/// A parsed command line.
#[derive(Debug)]
pub struct Parsed {
    pub config: Config,
    /// `--close-reason-file`, read when SIGTERM arrives.
    pub close_reason_file: Option<PathBuf>,
    /// What parodus would have logged about the command line.
    pub warnings: Vec<String>,
}

/// Parses `args` (the program name first). Unknown options and stray arguments are dropped
/// with a warning, as getopt_long does; `--help`, `--version` and real errors (a missing
/// `--webpa-url`, a bad number) come back as clap errors to print.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Parsed, clap::Error> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    let mut warnings = Vec::new();
    let cli = loop {
        match Cli::try_parse_from(&args) {
            Ok(cli) => break cli,
            Err(e) if e.kind() == ErrorKind::UnknownArgument => {
                let Some(ContextValue::String(bad)) = e.get(ContextKind::InvalidArg) else {
                    return Err(e);
                };
                // clap names `--opt` for `--opt=value`; a stray word is named as it is.
                let position = args.iter().skip(1).position(|a| {
                    let a = a.to_string_lossy();
                    a == bad.as_str() || a.starts_with(&format!("{bad}="))
                });
                let Some(i) = position else { return Err(e) };
                let removed = args.remove(i + 1);
                warnings.push(format!(
                    "ignoring unknown argument {}",
                    removed.to_string_lossy()
                ));
            }
            Err(e) => return Err(e),
        }
    };
    Ok(cli.into_parsed(warnings))
}

/// Start scripts pass `--opt=$UNSET`: an empty value is no value, as in parodus.
fn non_empty(p: Option<OsString>) -> Option<PathBuf> {
    p.filter(|p| !p.is_empty()).map(PathBuf::from)
}

impl Cli {
    fn into_parsed(self, mut warnings: Vec<String>) -> Parsed {
        let ignored = [
            ("ssl-engine", self.ssl_engine.is_some()),
            ("ssl-cert-type", self.ssl_cert_type.is_some()),
            ("ssl-reference-name", self.ssl_reference_name.is_some()),
            ("acquire-jwt", self.acquire_jwt.is_some()),
            ("dns-txt-url", self.dns_txt_url.is_some()),
            ("jwt-algo", self.jwt_algo.is_some()),
            ("jwt-public-key-file", self.jwt_public_key_file.is_some()),
            ("record-jwt-payload", self.record_jwt_payload.is_some()),
            ("seshat-url", self.seshat_url.is_some()),
            ("max-queue-size", self.max_queue_size.is_some()),
        ];
        for (name, given) in ignored {
            if given {
                warnings.push(format!(
                    "--{name} is not supported by this parodus; ignored"
                ));
            }
        }
        let ping_timeout_secs = match self.webpa_ping_timeout {
            0 => {
                warnings.push(format!(
                    "--webpa-ping-timeout=0 would reconnect constantly; using {DEFAULT_PING_TIMEOUT}"
                ));
                DEFAULT_PING_TIMEOUT
            }
            t => t,
        };
        let client_cert_path = non_empty(self.client_cert_path);
        let token_server_url = match (&client_cert_path, self.token_server_url.is_empty()) {
            (_, true) => String::new(),
            (Some(_), false) => self.token_server_url,
            (None, false) => {
                warnings.push(
                    "--token-server-url without --client-cert-path: no token is fetched (as in parodus)"
                        .into(),
                );
                String::new()
            }
        };
        let ip_family = match (self.force_ipv4, self.force_ipv6) {
            // parodus checks the IPv4 flag first.
            (true, _) => IpFamily::V4,
            (false, true) => IpFamily::V6,
            (false, false) => IpFamily::Any,
        };
        let local_url = match self.parodus_local_url.as_str() {
            "" => DEFAULT_LOCAL_URL.to_string(),
            url => url.to_string(),
        };
        let mtls = non_empty(self.mtls_client_cert_path).zip(non_empty(self.mtls_client_key_path));
        let config = Config {
            hw_model: self.hw_model,
            hw_serial_number: self.hw_serial_number,
            hw_manufacturer: self.hw_manufacturer,
            hw_last_reboot_reason: self.hw_last_reboot_reason,
            fw_name: self.fw_name,
            boot_time: self.boot_time,
            boot_time_retry_wait: self.boot_time_retry_wait,
            ping_timeout_secs,
            backoff_max: self.webpa_backoff_max,
            interface_used: self.webpa_interface_used,
            interface_label: self.webpa_interface_label,
            wan_ipv4_address: self.wan_ipv4_address,
            partner_ids: self.partner_id,
            local_url: Some(local_url),
            ssl_cert_path: non_empty(self.ssl_cert_path),
            ip_family,
            token_server_url,
            client_cert_path,
            mtls_client_cert_path: mtls.as_ref().map(|(c, _)| c.clone()),
            mtls_client_key_path: mtls.map(|(_, k)| k),
            crud_config_file: non_empty(self.crud_config_file),
            connection_health_file: non_empty(self.connection_health_file),
            notify_ready_file: non_empty(Some(self.notify_ready_file)),
            connect_timeout_secs: self.connect_timeout,
            service_alive_secs: self.service_alive_interval,
            ..Config::new(self.hw_mac, self.webpa_url)
        };
        Parsed {
            config,
            close_reason_file: non_empty(self.close_reason_file),
            warnings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &str) -> Result<Parsed, clap::Error> {
        parse(line.split_whitespace().map(OsString::from))
    }

    #[test]
    fn rdk_start_script_line() {
        // The shape of RDK's start-parodus command line (prefix `--webpa-ping-time` included).
        let p = parse_line(
            "parodus --hw-model=TG1682 --hw-serial-number=SER123456 --hw-manufacturer=ARRIS \
             --hw-last-reboot-reason=unknown --fw-name=TG1682_DEV --boot-time=1700000000 \
             --hw-mac=11:22:33:44:55:66 --webpa-ping-time=180 --webpa-interface-used=erouter0 \
             --webpa-url=https://petasos.example.com:443 --webpa-backoff-max=8 \
             --parodus-local-url=tcp://127.0.0.1:6666 --partner-id=comcast,cox \
             --ssl-cert-path=/etc/ssl/certs/ca-certificates.crt \
             --connection-health-file=/tmp/parodus_health --client-cert-path=/tmp/c.pem \
             --token-server-url=https://themis.example.com/issue --acquire-jwt=0 \
             --crud-config-file=/nvram/parodus_cfg.json --boot-time-retry-wait=7",
        )
        .unwrap();
        let c = &p.config;
        assert_eq!(c.hw_model, "TG1682");
        assert_eq!(c.hw_mac, "11:22:33:44:55:66");
        assert_eq!(c.boot_time, 1_700_000_000);
        assert_eq!(c.ping_timeout_secs, 180);
        assert_eq!(c.backoff_max, 8);
        assert_eq!(c.interface_used, "erouter0");
        assert_eq!(c.partner_ids, "comcast,cox");
        assert_eq!(c.local_url.as_deref(), Some("tcp://127.0.0.1:6666"));
        assert_eq!(c.token_server_url, "https://themis.example.com/issue");
        assert_eq!(c.boot_time_retry_wait, 7);
        assert_eq!(
            c.connection_health_file.as_deref(),
            Some(std::path::Path::new("/tmp/parodus_health"))
        );
        assert_eq!(
            p.warnings,
            vec!["--acquire-jwt is not supported by this parodus; ignored"]
        );
    }

    #[test]
    fn separate_values_short_options_and_defaults() {
        let p = parse_line(
            "parodus -d 112233445566 -u http://127.0.0.1:8080 -t 60 -4 --partner-id comcast",
        )
        .unwrap();
        let c = &p.config;
        assert_eq!(c.ping_timeout_secs, 60);
        assert_eq!(c.ip_family, IpFamily::V4);
        assert_eq!(c.partner_ids, "comcast");
        assert_eq!(c.backoff_max, 0, "parodus's default: a fixed 3 s retry");
        assert_eq!(c.local_url.as_deref(), Some(DEFAULT_LOCAL_URL));
        assert_eq!(c.ssl_cert_path, None);
        assert_eq!(
            c.notify_ready_file.as_deref(),
            Some(std::path::Path::new(NOTIFY_READY_FILE))
        );
        assert!(p.warnings.is_empty());

        let p =
            parse_line("parodus --hw-mac=112233445566 --webpa-url=http://x --force-ipv6").unwrap();
        assert_eq!(p.config.ip_family, IpFamily::V6);
        assert_eq!(p.config.ping_timeout_secs, DEFAULT_PING_TIMEOUT);
    }

    #[test]
    fn unknown_options_and_stray_words_are_warnings() {
        let p = parse_line(
            "parodus --hw-mac=112233445566 --no-such-option=1 stray --webpa-url=http://x --secure-flag",
        )
        .unwrap();
        assert_eq!(p.config.webpa_url, "http://x");
        assert_eq!(
            p.warnings,
            vec![
                "ignoring unknown argument --no-such-option=1",
                "ignoring unknown argument stray",
                "ignoring unknown argument --secure-flag",
            ]
        );
    }

    #[test]
    fn ambiguous_prefixes_are_ignored_like_getopt() {
        // --hw-m could be --hw-model, --hw-mac or --hw-manufacturer.
        let p = parse_line("parodus --hw-m=x --hw-mac=112233445566 --webpa-url=http://x").unwrap();
        assert_eq!(p.config.hw_model, "");
        assert_eq!(p.config.hw_manufacturer, "");
        assert_eq!(p.warnings, vec!["ignoring unknown argument --hw-m=x"]);
    }

    #[test]
    fn parodus_quirks_made_sane() {
        let p = parse_line(
            "parodus --hw-mac=112233445566 --webpa-url=http://x --webpa-ping-timeout=0 \
             --token-server-url=http://themis/issue --ssl-cert-path= --notify-ready-file=",
        )
        .unwrap();
        assert_eq!(p.config.ping_timeout_secs, DEFAULT_PING_TIMEOUT);
        assert_eq!(
            p.config.token_server_url, "",
            "no client certificate: no token"
        );
        assert_eq!(p.config.ssl_cert_path, None, "an empty value is no value");
        assert_eq!(p.config.notify_ready_file, None);
        assert_eq!(p.warnings.len(), 2);
    }

    #[test]
    fn real_errors() {
        for line in [
            "parodus --hw-mac=112233445566",
            "parodus --webpa-url=http://x",
            "parodus --hw-mac=1 --webpa-url=http://x --boot-time=soon",
            "parodus --hw-mac=1 --webpa-url=http://x --webpa-backoff-max=32",
        ] {
            assert!(parse_line(line).is_err(), "{line}");
        }
        assert_eq!(
            parse_line("parodus --help").unwrap_err().kind(),
            ErrorKind::DisplayHelp
        );
    }
}
