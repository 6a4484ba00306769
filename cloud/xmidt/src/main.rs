//! `xmidt`: the Xmidt cloud's services and operator tools in one binary.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

// The services allocate per request and per event on many threads at once: glibc's malloc took
// a fifth of caduceus's CPU in its delivery benchmark, and musl's (the static images) is slower
// still under threads. mimalloc is the allocator for both.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod config;
mod credentials;
mod device_cmd;
mod health_cmd;
mod hooks_cmd;
mod send_cmd;
mod sim;
mod up;
mod wrp_cmd;

#[derive(Parser)]
#[command(name = "xmidt", version, about = "The Xmidt cloud in one binary")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a configuration file: every section parsed and validated, without starting anything.
    CheckConfig {
        /// The YAML configuration file.
        config: PathBuf,
    },
    /// Run the whole cloud in one process: caduceus (:6000), talaria (:6200), scytale (:6300),
    /// petasos (:6400) and mimisbrunnr (:6800), on the embedded store.
    Up(up::UpArgs),
    /// Send a WRP request to a device through scytale and print its answer as JSON.
    Send(Box<send_cmd::SendArgs>),
    /// Caduceus's webhooks: list, add (register or renew), rm.
    Hooks(hooks_cmd::HooksArgs),
    /// Run simulated devices that connect through petasos, answer requests and send numbered
    /// events; with --caduceus, also count which events a webhook receives (HTTP API on --listen).
    Device(Box<device_cmd::DeviceArgs>),
    /// GET a URL: exit 0 on a 2xx answer, 1 with a one-line error otherwise (a health check for
    /// images without curl).
    Health(health_cmd::HealthArgs),
    /// Work with WRP messages.
    Wrp {
        #[command(subcommand)]
        command: wrp_cmd::WrpCommand,
    },
    /// Run caduceus, which delivers device events to registered webhooks (:6000).
    #[command(after_long_help = concat!("Configuration (section `caduceus`):\n\n", include_str!("../../../config/caduceus.yaml")))]
    Caduceus {
        /// The YAML configuration file (section `caduceus`); XMIDT_CADUCEUS__* variables override it.
        #[arg(long, env = "XMIDT_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Run mimisbrunnr, which delivers one device's events to its subscribers' norns (:6800).
    #[command(after_long_help = concat!("Configuration (section `mimisbrunnr`):\n\n", include_str!("../../../config/mimisbrunnr.yaml")))]
    Mimisbrunnr {
        /// The YAML configuration file (section `mimisbrunnr`); XMIDT_MIMISBRUNNR__* variables override it.
        #[arg(long, env = "XMIDT_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Run petasos, which redirects devices to the talaria owning them (:6400).
    #[command(after_long_help = concat!("Configuration (section `petasos`):\n\n", include_str!("../../../config/petasos.yaml")))]
    Petasos {
        /// The YAML configuration file (section `petasos`); XMIDT_PETASOS__* variables override it.
        #[arg(long, env = "XMIDT_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Run scytale, the API gateway that sends requests to the talaria owning the device (:6300).
    #[command(after_long_help = concat!("Configuration (section `scytale`):\n\n", include_str!("../../../config/scytale.yaml")))]
    Scytale {
        /// The YAML configuration file (section `scytale`); XMIDT_SCYTALE__* variables override it.
        #[arg(long, env = "XMIDT_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Run talaria, the device websocket gateway (devices and API on :6200, control on :6203).
    #[command(after_long_help = concat!("Configuration (section `talaria`):\n\n", include_str!("../../../config/talaria.yaml")))]
    Talaria {
        /// The YAML configuration file (section `talaria`); XMIDT_TALARIA__* variables override it.
        #[arg(long, env = "XMIDT_CONFIG")]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Wrp { command } => wrp_cmd::run(command),
        Command::Send(args) => send_cmd::run(*args),
        Command::Health(args) => health_cmd::run(args),
        Command::Hooks(args) => hooks_cmd::run(args),
        Command::Device(args) => serve(|shutdown| device_cmd::run(*args, shutdown)),
        Command::Up(args) => serve(|shutdown| up::run(args, shutdown)),
        Command::CheckConfig { config } => {
            config::load(Some(&config)).map(|_| println!("{}: ok", config.display()))
        }
        Command::Caduceus { config } => serve(|shutdown| async move {
            let config = config::load(config.as_deref())?;
            Ok(xmidt_caduceus::run(config.caduceus, shutdown).await?)
        }),
        Command::Mimisbrunnr { config } => serve(|shutdown| async move {
            let config = config::load(config.as_deref())?;
            Ok(xmidt_mimisbrunnr::run(config.mimisbrunnr, shutdown).await?)
        }),
        Command::Petasos { config } => serve(|shutdown| async move {
            let config = config::load(config.as_deref())?;
            Ok(xmidt_petasos::run(config.petasos, shutdown).await?)
        }),
        Command::Scytale { config } => serve(|shutdown| async move {
            let config = config::load(config.as_deref())?;
            Ok(xmidt_scytale::run(config.scytale, shutdown).await?)
        }),
        Command::Talaria { config } => serve(|shutdown| async move {
            let config = config::load(config.as_deref())?;
            Ok(xmidt_talaria::run(config.talaria, shutdown).await?)
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever the cause chain: scripts read it.
            eprintln!("xmidt: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a service with logging on stderr (RUST_LOG, default info) until Ctrl-C or SIGTERM.
fn serve<F, Fut>(service: F) -> Result<()>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let signal = shutdown.clone();
        tokio::spawn(async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            tracing::info!("shutting down");
            signal.cancel();
        });
        service(shutdown).await
    })
}
