//! The webhook mimisbrunnr keeps at caduceus: registered at start, then renewed every
//! `interval` for `duration`, so it lapses by itself if this mimisbrunnr goes away.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::config::RegistrationConfig;
use crate::delivery::read_prefix;

/// The header caduceus reads a registration's partner ids from.
const PARTNER_IDS_HEADER: &str = "X-Xmidt-Partner-Ids";

/// A registration ready to send: body and headers made once.
pub(crate) struct Registrar {
    url: Url,
    body: String,
    authorization: Option<HeaderValue>,
    partner_ids: Option<HeaderValue>,
    config: RegistrationConfig,
    client: reqwest::Client,
}

impl Registrar {
    /// Checks the configuration; the message names the faulty key.
    pub fn new(config: RegistrationConfig) -> Result<Registrar, String> {
        let http_url = |key: &str, raw: &str| -> Result<Url, String> {
            Url::parse(raw)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
                .ok_or_else(|| format!("caduceus.{key} {raw:?} is not an http(s) URL"))
        };
        let url = http_url("url", &config.url)?;
        http_url("events_url", &config.events_url)?;
        if config.events.is_empty() {
            return Err("caduceus.events needs at least one pattern".into());
        }
        if config.interval.is_zero() || config.timeout.is_zero() {
            return Err("caduceus.interval and caduceus.timeout must be more than 0".into());
        }
        // Renewals must land before the previous registration lapses.
        if config.duration <= config.interval + config.timeout {
            return Err(
                "caduceus.duration must be longer than caduceus.interval plus caduceus.timeout"
                    .into(),
            );
        }
        let authorization = match (&config.basic, &config.bearer) {
            (Some(_), Some(_)) => {
                return Err("caduceus: give basic or bearer credentials, not both".into())
            }
            (Some(basic), None) => Some(if basic.contains(':') {
                format!("Basic {}", BASE64.encode(basic))
            } else {
                format!("Basic {basic}")
            }),
            (None, Some(token)) => Some(format!("Bearer {token}")),
            (None, None) => None,
        }
        .map(|value| {
            HeaderValue::from_str(&value)
                .map(|mut v| {
                    v.set_sensitive(true);
                    v
                })
                .map_err(|_| "caduceus credentials must be visible ASCII".to_string())
        })
        .transpose()?;
        let partner_ids = if config.partner_ids.is_empty() {
            None
        } else {
            Some(
                HeaderValue::from_str(&config.partner_ids.join(","))
                    .map_err(|_| "caduceus.partner_ids must be visible ASCII".to_string())?,
            )
        };
        let body = serde_json::json!({
            "config": {
                "url": config.events_url,
                // Caduceus sends the whole WRP, as msgpack, for this content type.
                "content_type": "application/msgpack",
                "secret": config.secret.clone().unwrap_or_default(),
            },
            "events": config.events,
            // Whole seconds, rounded up.
            "duration": config.duration.as_secs() + u64::from(config.duration.subsec_nanos() > 0),
        })
        .to_string();
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("caduceus registration client: {e}"))?;
        Ok(Registrar {
            url,
            body,
            authorization,
            partner_ids,
            config,
            client,
        })
    }

    /// Registers now, then every `interval` until `shutdown`. A failed attempt is retried
    /// sooner (250 ms, doubling, at most `interval`): caduceus may simply not be listening yet
    /// when both start together, as in `xmidt up`, and a norn's events would be lost meanwhile.
    pub fn spawn(self, shutdown: CancellationToken) {
        tokio::spawn(async move {
            let first_retry = Duration::from_millis(250);
            let mut retry = first_retry;
            loop {
                let (outcome, wait) = match self.register().await {
                    Ok(()) => {
                        tracing::debug!(url = %self.url, "registered at caduceus");
                        retry = first_retry;
                        ("registered", self.config.interval)
                    }
                    Err(e) => {
                        let wait = retry.min(self.config.interval);
                        retry = retry.saturating_mul(2);
                        tracing::warn!(url = %self.url, error = e, ?wait, "registration at caduceus failed; retrying");
                        ("failed", wait)
                    }
                };
                metrics::counter!("xmidt_mimisbrunnr_registration_count", "outcome" => outcome)
                    .increment(1);
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = shutdown.cancelled() => return,
                }
            }
        });
    }

    async fn register(&self) -> Result<(), String> {
        let mut request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(self.body.clone());
        if let Some(authorization) = &self.authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        if let Some(partner_ids) = &self.partner_ids {
            request = request.header(PARTNER_IDS_HEADER, partner_ids.clone());
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        // Caduceus explains a refusal in a short JSON body.
        Err(format!("{status}: {}", read_prefix(response, 1024).await))
    }
}
