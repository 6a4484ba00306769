//! Webhook registrations: the RegistrationV1 body (webhook-schema), its validation (ancla's
//! rules), how it is stored, and its compiled form used for matching and delivery.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use regex::{RegexSet, RegexSetBuilder};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use xmidt_store::Record;

use crate::config::RegistrationConfig;
use crate::event::Event;
use crate::gotime;
use crate::signature::Secret;
use crate::urlcheck::{self, UrlError};

/// The store collection holding webhooks.
pub(crate) const COLLECTION: &str = "webhooks";

/// What `GET /hooks` shows instead of a secret.
pub(crate) const OBFUSCATED: &str = "<obfuscated>";

/// A webhook registration, as `POST /hook` takes it and as it is stored. Unknown fields are
/// ignored, as Go does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RegistrationV1 {
    pub config: Target,
    /// Told (POST, JSON) when the webhook is cut off.
    #[serde(default)]
    pub failure_url: String,
    /// Regular expressions for event types (see [`Spec::matches`]).
    #[serde(default)]
    pub events: Vec<String>,
    #[serde(default)]
    pub matcher: Matcher,
    /// Whole seconds or a Go duration string; written back as a Go duration string.
    #[serde(default, with = "gotime::duration")]
    #[schema(value_type = String, example = "5m")]
    pub duration: Duration,
    /// RFC 3339.
    #[serde(
        default,
        with = "gotime::until",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub until: Option<SystemTime>,
    /// Set from the connection; ignored on input.
    #[serde(default)]
    pub registered_from_address: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Target {
    /// The receiver; also the webhook's identity.
    pub url: String,
    /// `wrp`, `application/msgpack`, `application/wrp`, `application/wrp+msgpack`: the whole
    /// WRP as msgpack. `application/wrp+json`: the whole WRP as JSON. Anything else: the
    /// event's payload with the event's own content type (as Go caduceus does).
    #[serde(default)]
    pub content_type: String,
    #[serde(default)]
    pub secret: String,
    /// Further receivers, used in turn with `url`.
    #[serde(default)]
    pub alt_urls: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Matcher {
    /// Regular expressions for the canonical device id; empty or `.*` matches every event.
    #[serde(default)]
    pub device_id: Vec<String>,
}

/// Why a registration is refused (400).
#[derive(Debug, thiserror::Error)]
pub enum Invalid {
    #[error("invalid config.url: {0}")]
    Url(UrlError),
    #[error("invalid failure_url: {0}")]
    FailureUrl(UrlError),
    #[error("invalid config.alt_urls entry {url:?}: {error}")]
    AltUrl { url: String, error: UrlError },
    #[error("at most {0} alt_urls are allowed")]
    TooManyAltUrls(usize),
    #[error("events must name at least one event type pattern")]
    NoEvents,
    #[error("{field}: at most {max} patterns are allowed")]
    TooManyPatterns { field: &'static str, max: usize },
    #[error("{field}: pattern {pattern:?} is invalid: {reason}")]
    Pattern {
        field: &'static str,
        pattern: String,
        reason: String,
    },
    #[error("duration or until must be set")]
    NoLifetime,
    #[error("duration {0} exceeds the maximum of {1}")]
    DurationTooLong(String, String),
    #[error("until is in the past")]
    UntilPast,
    #[error("until is more than {0} from now")]
    UntilTooFar(String),
    #[error("no partner ids: present credentials with partners (X-Xmidt-Partner-Ids)")]
    NoPartners,
    #[error("{0} is too long")]
    TooLong(&'static str),
}

/// The limits on free-text fields.
const MAX_SECRET_LEN: usize = 1024;
const MAX_CONTENT_TYPE_LEN: usize = 256;

impl RegistrationV1 {
    /// Checks a new registration and fills in what it leaves out (the matcher defaults to
    /// every device, `until` from `duration`, the caller's address). When both `duration` and
    /// `until` are given, the earlier end wins.
    pub async fn validate(
        &mut self,
        policy: &RegistrationConfig,
        now: SystemTime,
        from: Option<SocketAddr>,
    ) -> Result<(), Invalid> {
        urlcheck::check(&self.config.url, policy)
            .await
            .map_err(Invalid::Url)?;
        if self.config.alt_urls.len() > policy.max_alt_urls {
            return Err(Invalid::TooManyAltUrls(policy.max_alt_urls));
        }
        for url in &self.config.alt_urls {
            urlcheck::check(url, policy)
                .await
                .map_err(|error| Invalid::AltUrl {
                    url: url.clone(),
                    error,
                })?;
        }
        if !self.failure_url.is_empty() {
            urlcheck::check(&self.failure_url, policy)
                .await
                .map_err(Invalid::FailureUrl)?;
        }
        if self.config.secret.len() > MAX_SECRET_LEN {
            return Err(Invalid::TooLong("config.secret"));
        }
        if self.config.content_type.len() > MAX_CONTENT_TYPE_LEN {
            return Err(Invalid::TooLong("config.content_type"));
        }
        if self.events.is_empty() {
            return Err(Invalid::NoEvents);
        }
        if self.matcher.device_id.is_empty() {
            self.matcher.device_id = vec![".*".into()];
        }
        compile("events", &self.events, policy)?;
        compile("matcher.device_id", &self.matcher.device_id, policy)?;

        let max = policy.max_duration;
        if self.duration > max {
            return Err(Invalid::DurationTooLong(
                gotime::format_duration(self.duration),
                gotime::format_duration(max),
            ));
        }
        let from_duration = (!self.duration.is_zero()).then(|| now + self.duration);
        let until = match (self.until, from_duration) {
            (None, None) => return Err(Invalid::NoLifetime),
            (Some(until), None) | (None, Some(until)) => until,
            (Some(a), Some(b)) => a.min(b),
        };
        if until <= now {
            return Err(Invalid::UntilPast);
        }
        if until > now + max + policy.until_jitter {
            return Err(Invalid::UntilTooFar(gotime::format_duration(max)));
        }
        self.until = Some(until);
        self.registered_from_address = from.map(|a| a.to_string()).unwrap_or_default();
        Ok(())
    }

    /// The webhook's id: lower-case hex SHA-256 of its URL, as argus keys it.
    pub fn id(&self) -> String {
        webhook_id(&self.config.url)
    }
}

/// The id of the webhook delivering to `url`.
pub fn webhook_id(url: &str) -> String {
    hex::encode(Sha256::digest(url.as_bytes()))
}

/// Patterns are anchored: each must match a whole event type, event path or device id.
fn compile(
    field: &'static str,
    patterns: &[String],
    policy: &RegistrationConfig,
) -> Result<RegexSet, Invalid> {
    if patterns.len() > policy.max_patterns {
        return Err(Invalid::TooManyPatterns {
            field,
            max: policy.max_patterns,
        });
    }
    for pattern in patterns {
        let invalid = |reason: String| Invalid::Pattern {
            field,
            pattern: pattern.clone(),
            reason,
        };
        if pattern.len() > policy.max_pattern_len {
            return Err(invalid(format!(
                "longer than {} characters",
                policy.max_pattern_len
            )));
        }
        RegexSetBuilder::new([anchor(pattern)])
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| invalid(e.to_string()))?;
    }
    RegexSetBuilder::new(patterns.iter().map(|p| anchor(p)))
        .size_limit(REGEX_SIZE_LIMIT * patterns.len().max(1))
        .build()
        .map_err(|e| Invalid::Pattern {
            field,
            pattern: patterns.join(" "),
            reason: e.to_string(),
        })
}

/// The compiled size one pattern may reach; bounds the memory and time a registration can
/// cost.
const REGEX_SIZE_LIMIT: usize = 256 * 1024;

fn anchor(pattern: &str) -> String {
    format!("^(?:{pattern})$")
}

/// How a webhook wants events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    /// The WRP payload, with the WRP's content type.
    Payload,
    /// The whole WRP, msgpack.
    WrpMsgpack,
    /// The whole WRP, JSON.
    WrpJson,
}

impl BodyKind {
    fn from_content_type(ct: &str) -> BodyKind {
        match ct.trim().to_ascii_lowercase().as_str() {
            "wrp" | "application/msgpack" | "application/wrp" | "application/wrp+msgpack" => {
                BodyKind::WrpMsgpack
            }
            "application/wrp+json" => BodyKind::WrpJson,
            _ => BodyKind::Payload,
        }
    }
}

/// A stored webhook, compiled for matching and delivery.
#[derive(Debug)]
pub(crate) struct Spec {
    /// As stored: reloads compare it to spot changes.
    pub record: Record,
    pub registration: RegistrationV1,
    pub until: SystemTime,
    events: RegexSet,
    /// `None` matches every event.
    devices: Option<RegexSet>,
    /// `config.url` first, then the `alt_urls`, without repeats; parsed once, not per
    /// delivery.
    pub urls: Vec<reqwest::Url>,
    pub body: BodyKind,
    pub secret: Option<Secret>,
}

/// Why a stored record cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unusable {
    #[error("not a registration: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Invalid(#[from] Invalid),
}

impl Spec {
    /// Compiles a stored record. URL policy is not checked again (it was at registration).
    pub fn compile(record: Record, policy: &RegistrationConfig) -> Result<Spec, Unusable> {
        let registration = serde_json::from_value(record.data.clone())?;
        Ok(Spec::build(registration, record, policy)?)
    }

    /// Compiles `registration`, stored as `record`.
    pub fn build(
        registration: RegistrationV1,
        record: Record,
        policy: &RegistrationConfig,
    ) -> Result<Spec, Invalid> {
        let events = compile("events", &registration.events, policy)?;
        let devices = &registration.matcher.device_id;
        let devices = if devices.is_empty() || devices.iter().any(|p| p == ".*") {
            None
        } else {
            Some(compile("matcher.device_id", devices, policy)?)
        };
        let parse =
            |url: &str| reqwest::Url::parse(url).map_err(|e| UrlError::Parse(e.to_string()));
        let mut urls = vec![parse(&registration.config.url).map_err(Invalid::Url)?];
        for url in &registration.config.alt_urls {
            let parsed = parse(url).map_err(|error| Invalid::AltUrl {
                url: url.clone(),
                error,
            })?;
            if !urls.contains(&parsed) {
                urls.push(parsed);
            }
        }
        Ok(Spec {
            until: record.expires_at,
            events,
            devices,
            urls,
            body: BodyKind::from_content_type(&registration.config.content_type),
            secret: Secret::new(&registration.config.secret),
            registration,
            record,
        })
    }

    /// Whether `event` goes to this webhook: some `events` pattern matches the event type
    /// (`device-status`) or the whole event path (`device-status/mac:112233445566/online`);
    /// the device matcher matches the event's canonical device id; and the partners overlap
    /// (a webhook partner `*` takes every partner).
    pub fn matches(&self, event: &Event, partners: Option<&[String]>) -> bool {
        if !(self.events.is_match(&event.event_type) || self.events.is_match(&event.event_path)) {
            return false;
        }
        if let Some(devices) = &self.devices {
            match &event.device_id {
                Some(id) if devices.is_match(id) => {}
                _ => return false,
            }
        }
        match partners {
            None => true,
            Some(partners) => self
                .record
                .partner_ids
                .iter()
                .any(|p| p == "*" || partners.contains(p)),
        }
    }

    /// The registration as `GET /hooks` and failure notices show it: secret hidden.
    pub fn public_view(record: &Record) -> serde_json::Value {
        let mut data = record.data.clone();
        if let Some(config) = data.get_mut("config").and_then(|c| c.as_object_mut()) {
            if config.get("secret").is_some_and(|s| s != "") {
                config.insert("secret".into(), OBFUSCATED.into());
            }
        }
        if let Some(object) = data.as_object_mut() {
            object.insert("id".into(), record.id.clone().into());
            object.insert("partner_ids".into(), record.partner_ids.clone().into());
        }
        data
    }
}
