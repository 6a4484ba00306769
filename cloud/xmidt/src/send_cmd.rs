//! `xmidt send`: one WRP request to a device through scytale, the answer printed as JSON.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use wrp_nostd::{MessageType, OwnedMessage};

use crate::credentials::Credentials;

#[derive(Args)]
pub struct SendArgs {
    /// The device, e.g. mac:112233445566.
    device: String,
    /// The service on the device (the dest is <device>/<service>).
    #[arg(long, default_value = "config")]
    service: String,
    /// The message type: a number 3..11 or a name (SimpleRequestResponse, event, Retrieve, ...).
    #[arg(long = "type", default_value = "SimpleRequestResponse", value_parser = parse_type)]
    msg_type: MessageType,
    /// The payload, as text.
    #[arg(long, conflicts_with = "payload_file")]
    payload: Option<String>,
    /// The payload, read from a file.
    #[arg(long)]
    payload_file: Option<std::path::PathBuf>,
    #[arg(long, default_value = "application/json")]
    content_type: String,
    /// CRUD path (types 5-8).
    #[arg(long)]
    path: Option<String>,
    #[arg(long, default_value = "dns:xmidt-cli")]
    source: String,
    /// Partner ids (repeatable).
    #[arg(long = "partner-id")]
    partner_ids: Vec<String>,
    /// The transaction id; a random one when absent.
    #[arg(long)]
    transaction_uuid: Option<String>,
    /// Scytale's base URL.
    #[arg(
        long,
        env = "XMIDT_SCYTALE_URL",
        default_value = "http://127.0.0.1:6300"
    )]
    scytale: String,
    #[command(flatten)]
    credentials: Credentials,
    /// How long to wait for the answer.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

fn parse_type(s: &str) -> Result<MessageType, String> {
    MessageType::parse(s).ok_or_else(|| format!("unknown message type {s:?}"))
}

pub fn run(args: SendArgs) -> Result<()> {
    let payload = match (&args.payload, &args.payload_file) {
        (Some(text), _) => text.clone().into_bytes(),
        (None, Some(file)) => {
            std::fs::read(file).with_context(|| format!("reading {}", file.display()))?
        }
        (None, None) => Vec::new(),
    };
    let mut message = OwnedMessage::builder(args.msg_type)
        .source(&args.source)
        .dest(format!("{}/{}", args.device, args.service))
        .content_type(if payload.is_empty() {
            ""
        } else {
            &args.content_type
        })
        .payload(payload)
        .build();
    message.partner_ids = args.partner_ids.clone();
    message.path = args.path.clone().unwrap_or_default();
    if args.msg_type.requires_transaction() || args.transaction_uuid.is_some() {
        message.transaction_uuid = args
            .transaction_uuid
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    }
    let client = reqwest::blocking::Client::builder()
        .timeout(args.timeout)
        .build()
        .context("HTTP client")?;
    let request = client
        .post(format!(
            "{}/api/v3/device",
            args.scytale.trim_end_matches('/')
        ))
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .body(message.to_json());
    let response = args
        .credentials
        .apply(request)?
        .send()
        .with_context(|| format!("sending to {}", args.scytale))?;
    let status = response.status();
    let body = response.bytes().context("reading the answer")?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body);
        bail!("{status}: {}", text.trim());
    }
    if body.is_empty() {
        println!("{{}}");
        return Ok(());
    }
    let answer = OwnedMessage::from_json(&body).context("the answer is not a JSON WRP")?;
    let mut json: serde_json::Value =
        serde_json::from_slice(&answer.to_json()).context("re-reading the answer")?;
    // Show a text payload as text too, so a person can read it.
    if let Ok(text) = std::str::from_utf8(&answer.payload) {
        json["payload_text"] = text.into();
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&json).unwrap_or_default()
    );
    Ok(())
}
