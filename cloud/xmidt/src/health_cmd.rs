//! `xmidt health URL`: a container health check that needs nothing but this binary (the
//! images are built from scratch: no curl, no shell).

use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;

#[derive(Args)]
pub struct HealthArgs {
    /// The URL to GET, e.g. http://127.0.0.1:6200/health.
    pub url: String,
    /// Give up after this long (connecting included).
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// Succeeds on a 2xx answer; anything else, or no answer in time, is the error.
pub fn run(args: HealthArgs) -> Result<()> {
    let client = reqwest::blocking::Client::builder()
        .timeout(args.timeout)
        .connect_timeout(args.timeout)
        // A proxy in the environment must not stand in for the service checked.
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("the HTTP client")?;
    let response = client
        .get(&args.url)
        .send()
        .with_context(|| format!("GET {}", args.url))?;
    let status = response.status();
    if !status.is_success() {
        bail!("GET {}: {status}", args.url);
    }
    Ok(())
}
