//! `xmidt hooks list|add|rm`: caduceus's webhooks from the command line.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use xmidt_caduceus::{Matcher, RegistrationV1, Target};

use crate::credentials::Credentials;

#[derive(Args)]
pub struct HooksArgs {
    #[command(subcommand)]
    command: HooksCommand,
    /// Caduceus's base URL.
    #[arg(
        long,
        global = true,
        env = "XMIDT_CADUCEUS_URL",
        default_value = "http://127.0.0.1:6000"
    )]
    caduceus: String,
    #[command(flatten)]
    credentials: Credentials,
    /// Partner ids to act for (repeatable), sent as X-Xmidt-Partner-Ids: caduceus uses them
    /// when the credentials carry none (Basic auth); a JWT's partner ids take precedence.
    #[arg(long = "partner-id", global = true)]
    partner_ids: Vec<String>,
}

#[derive(Subcommand)]
enum HooksCommand {
    /// List the webhooks you may see: one line each (id, url, events, devices, until), or the
    /// registrations as JSON with --json.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Register (or renew) a webhook; prints its id and when it expires.
    Add(Box<AddArgs>),
    /// Delete a webhook by its id (as listed) or by the URL it was registered with.
    Rm {
        /// A webhook id (64 hex digits) or its URL.
        webhook: String,
    },
}

#[derive(Args)]
struct AddArgs {
    /// Where events are POSTed.
    url: String,
    /// Event-type regular expression (repeatable), e.g. 'device-status/.*'.
    #[arg(long = "event", required = true)]
    events: Vec<String>,
    /// Device-id regular expression (repeatable); every device when absent.
    #[arg(long = "device-id")]
    device_ids: Vec<String>,
    /// Shared secret for X-Webpa-Signature and webhook-signature.
    #[arg(long, env = "XMIDT_HOOK_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// What is POSTed: `wrp` (the whole WRP, msgpack), `application/wrp+json`, or empty for
    /// the event's payload.
    #[arg(long, default_value = "")]
    content_type: String,
    /// Further receivers, used in turn with the URL (repeatable).
    #[arg(long = "alt-url")]
    alt_urls: Vec<String>,
    /// Told (POST, JSON) when the webhook is cut off.
    #[arg(long, default_value = "")]
    failure_url: String,
    /// How long the registration lasts (caduceus caps it at its max_duration).
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    duration: Duration,
}

pub fn run(args: HooksArgs) -> Result<()> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("HTTP client")?;
    let HooksArgs {
        command,
        caduceus,
        credentials,
        partner_ids,
    } = args;
    let base = caduceus.trim_end_matches('/');
    let call = |request: reqwest::blocking::RequestBuilder| {
        let request = if partner_ids.is_empty() {
            request
        } else {
            request.header("X-Xmidt-Partner-Ids", partner_ids.join(","))
        };
        call(&caduceus, &credentials, request)
    };
    let answer = match command {
        HooksCommand::List { json } => {
            let hooks = call(client.get(format!("{base}/hooks")))?;
            let hooks = hooks.as_array().context("the answer is not a JSON list")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&hooks)?);
            } else {
                for hook in hooks {
                    println!("{}", summary(hook));
                }
            }
            return Ok(());
        }
        HooksCommand::Add(add) => {
            let registration = RegistrationV1 {
                config: Target {
                    url: add.url,
                    content_type: add.content_type,
                    secret: add.secret.unwrap_or_default(),
                    alt_urls: add.alt_urls,
                },
                failure_url: add.failure_url,
                events: add.events,
                matcher: Matcher {
                    device_id: add.device_ids,
                },
                duration: add.duration,
                until: None,
                registered_from_address: String::new(),
            };
            let answer = call(client.post(format!("{base}/hook")).json(&registration))?;
            format!("{} until {}", text(&answer["id"]), text(&answer["until"]))
        }
        HooksCommand::Rm { webhook } => {
            let request = if webhook.contains("://") {
                let url =
                    reqwest::Url::parse_with_params(&format!("{base}/hook"), [("url", &webhook)])
                        .context("caduceus's URL")?;
                client.delete(url)
            } else {
                client.delete(format!("{base}/hook/{webhook}"))
            };
            let answer = call(request)?;
            format!("{} deleted", text(&answer["id"]))
        }
    };
    println!("{answer}");
    Ok(())
}

/// Sends with the credentials; a non-2xx answer becomes the error, with caduceus's message.
fn call(
    caduceus: &str,
    credentials: &Credentials,
    request: reqwest::blocking::RequestBuilder,
) -> Result<serde_json::Value> {
    let response = credentials
        .apply(request)?
        .send()
        .with_context(|| format!("calling caduceus at {caduceus}"))?;
    let status = response.status();
    let body = response.bytes().context("reading the answer")?;
    if !status.is_success() {
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
        bail!("{status}: {message}");
    }
    serde_json::from_slice(&body).context("the answer is not JSON")
}

/// `id url events=… devices=… until=…` for one listed registration.
fn summary(hook: &serde_json::Value) -> String {
    let list = |v: &serde_json::Value| {
        v.as_array()
            .map(|items| items.iter().map(text).collect::<Vec<_>>().join(","))
            .filter(|joined| !joined.is_empty())
            .unwrap_or_else(|| "*".into())
    };
    format!(
        "{} {} events={} devices={} until={}",
        text(&hook["id"]),
        text(&hook["config"]["url"]),
        list(&hook["events"]),
        list(&hook["matcher"]["device_id"]),
        text(&hook["until"]),
    )
}

fn text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    }
}
