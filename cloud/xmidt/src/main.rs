//! `xmidt`: the Xmidt cloud's services and operator tools in one binary.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod wrp_cmd;

#[derive(Parser)]
#[command(name = "xmidt", version, about = "The Xmidt cloud in one binary")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Work with WRP messages.
    Wrp {
        #[command(subcommand)]
        command: wrp_cmd::WrpCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Wrp { command } => wrp_cmd::run(command),
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
