//! `parodus`: the device client with parodus's command line and signals.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use client_std::{cli, Device};
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// parodus's close reasons (client-spec §3.10).
const SYSTEM_RESTARTING: &str = "system_restarting";
const PARODUS_STOPPING: &str = "parodus_stopping";

fn main() -> ExitCode {
    let parsed = match cli::parse(std::env::args_os()) {
        Ok(p) => p,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // journald and log files get plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    for w in &parsed.warnings {
        tracing::warn!("{w}");
    }
    // Signals and the wait: one small thread; the device has its own.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(parsed)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "parodus stopped");
            ExitCode::FAILURE
        }
    }
}

async fn run(parsed: cli::Parsed) -> Result<(), Box<dyn std::error::Error>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut quit = signal(SignalKind::quit())?;
    let mut hup = signal(SignalKind::hangup())?;
    let device = Device::spawn(parsed.config, CancellationToken::new())?;
    tracing::info!(device = device.device_id(), "parodus started");
    let reason = tokio::select! {
        _ = term.recv() => sigterm_reason(parsed.close_reason_file.as_deref()),
        _ = usr1.recv() => SYSTEM_RESTARTING.to_string(),
        _ = int.recv() => PARODUS_STOPPING.to_string(),
        _ = quit.recv() => PARODUS_STOPPING.to_string(),
        _ = hup.recv() => PARODUS_STOPPING.to_string(),
    };
    tracing::info!(reason, "signal received; stopping");
    device.shutdown(&reason);
    device.join().await?;
    Ok(())
}

/// The close reason file's text without its trailing newline (parodus sent the newline too),
/// or `system_restarting` when there is none.
fn sigterm_reason(file: Option<&Path>) -> String {
    file.and_then(|f| std::fs::read_to_string(f).ok())
        .map(|r| r.trim_end_matches(['\r', '\n']).to_string())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| SYSTEM_RESTARTING.to_string())
}
