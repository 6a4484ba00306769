//! `xmidt-load`: many simulated WRP devices on talaria's websockets, API round trips through
//! talaria (or scytale/petasos) while they are connected, and a summary of what it cost.
//!
//! The run (coordinator) starts worker processes (this binary again, `worker` subcommand), each
//! holding a share of the devices under its own file limit; workers report their counters on
//! stdout and stop when their stdin closes, so they never outlive the run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod api;
mod args;
mod cert;
mod device;
mod proc;
mod report;
mod run;
mod sink;
mod target;
mod worker;

#[derive(Parser)]
#[command(
    name = "xmidt-load",
    version,
    about = "Load talaria with simulated WRP devices and API requests, then summarise",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: args::RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Write a self-signed ECDSA P-256 certificate and key (cert.pem, key.pem) for talaria's TLS.
    Cert {
        /// The directory to write into.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Names the certificate is valid for.
        #[arg(long = "name", default_values_t = ["localhost".to_string(), "127.0.0.1".to_string()])]
        names: Vec<String>,
    },
    /// One worker process of a run (started by the run itself).
    #[command(hide = true)]
    Worker(args::WorkerArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Cert { out, names }) => cert::write(&out, names),
        Some(Command::Worker(args)) => worker::main(args),
        None => run::main(cli.run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xmidt-load: {e}");
            ExitCode::FAILURE
        }
    }
}
