//! Norns: the request body (the Go service's JSON shape), its validation, its identity and how
//! it is shown.

use std::time::{Duration, SystemTime};

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;
use wrp_nostd::DeviceId;

/// The store collection holding norns.
pub(crate) const COLLECTION: &str = "norns";

/// What listings show instead of a secret.
const OBFUSCATED: &str = "<obfuscated>";

const MAX_URL_LEN: usize = 2048;
const MAX_SECRET_LEN: usize = 1024;
const MAX_DEVICE_ID_LEN: usize = 256;
/// SQS' own limit on `DelaySeconds`.
const MAX_SQS_DELAY: u32 = 900;

/// A norn as `POST /norns` and `PUT /norns/{id}` take it: the Go mimisbrunnr's `model.Norn`,
/// field names included. Unknown fields are refused, so a misspelt one is reported rather than
/// silently dropped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NornRequest {
    /// The device whose events are wanted, e.g. `mac:112233445566`.
    #[serde(rename = "DeviceID", default)]
    pub device_id: String,
    /// Seconds the norn lasts, at most the configured `max_ttl`.
    #[serde(rename = "TTL", default)]
    pub ttl: i64,
    #[serde(rename = "Destination", default)]
    pub destination: Destination,
}

/// Where events go: exactly one of `HttpConfig` and `AWSConfig`. Go clients send both, the
/// unused one empty; an empty one counts as absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    #[serde(
        rename = "HttpConfig",
        default,
        skip_serializing_if = "HttpConfig::is_empty"
    )]
    pub http: HttpConfig,
    #[serde(
        rename = "AWSConfig",
        default,
        skip_serializing_if = "AwsConfig::is_empty"
    )]
    pub aws: AwsConfig,
    /// Free-form data kept with the norn and shown back (Go's `Info`).
    #[serde(rename = "Info", default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub info: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Receives each event as JSON WRP.
    #[serde(rename = "URL", default)]
    pub url: String,
    /// Signs each body: `X-Codex-Signature: sha1=<hex HMAC-SHA1>`.
    #[serde(rename = "Secret", default)]
    pub secret: String,
    /// Told (signed JSON POST) when the norn's buffer overflows.
    #[serde(rename = "FailureURL", default)]
    pub failure_url: String,
}

impl HttpConfig {
    fn is_empty(&self) -> bool {
        self.url.is_empty() && self.secret.is_empty() && self.failure_url.is_empty()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// The AWS access key id.
    #[serde(rename = "AccessKey", default)]
    pub access_key: String,
    /// The AWS secret access key.
    #[serde(rename = "SecretKey", default)]
    pub secret_key: String,
    /// Accepted for Go compatibility and ignored: Go passed it as the access key id, its
    /// `AccessKey` as the secret and its `SecretKey` as a session token.
    #[serde(rename = "ID", default, skip_serializing)]
    #[schema(ignore)]
    pub id: IgnoredAny,
    /// Accepted for Go compatibility and ignored (unused there too).
    #[serde(rename = "Env", default, skip_serializing)]
    #[schema(ignore)]
    pub env: IgnoredAny,
    #[serde(rename = "Sqs", default)]
    pub sqs: SqsConfig,
}

impl AwsConfig {
    fn is_empty(&self) -> bool {
        self.access_key.is_empty() && self.secret_key.is_empty() && self.sqs == SqsConfig::default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SqsConfig {
    #[serde(rename = "QueueURL", default)]
    pub queue_url: String,
    /// 0 to 900.
    #[serde(rename = "DelaySeconds", default)]
    pub delay_seconds: i64,
    /// e.g. `us-east-1`; the SigV4 signing region.
    #[serde(rename = "Region", default)]
    pub region: String,
}

/// Why a norn is refused (400). Each names the field.
#[derive(Debug, thiserror::Error)]
pub enum Invalid {
    #[error("invalid norn JSON: {0}")]
    Json(String),
    #[error("DeviceID is required, e.g. \"mac:112233445566\"")]
    NoDeviceId,
    #[error("DeviceID {id:?} is not a device id: {reason}")]
    DeviceId { id: String, reason: String },
    #[error("TTL is required: the norn's lifetime in seconds, at most {max}")]
    NoTtl { max: u64 },
    #[error("TTL {ttl} is out of range: give 1 to {max} seconds")]
    Ttl { ttl: i64, max: u64 },
    #[error("Destination needs HttpConfig (URL) or AWSConfig (Sqs.QueueURL)")]
    NoDestination,
    #[error("Destination may hold only one of HttpConfig and AWSConfig")]
    TwoDestinations,
    #[error("{field} is required")]
    Missing { field: &'static str },
    #[error("{field} is longer than {max} characters")]
    TooLong { field: &'static str, max: usize },
    #[error("{field} {url:?} is not usable: {reason}")]
    Url {
        field: &'static str,
        url: String,
        reason: String,
    },
    #[error("Destination.AWSConfig.Sqs.Region {0:?} is not an AWS region name")]
    Region(String),
    #[error("Destination.AWSConfig.Sqs.DelaySeconds {0} is out of range: give 0 to 900")]
    Delay(i64),
    #[error(
        "this body names norn {body_id}, not {path_id}: DeviceID and the destination's URL or \
         QueueURL identify a norn and cannot change; create a new norn instead"
    )]
    IdMismatch { path_id: String, body_id: String },
}

/// A norn that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Norn {
    /// Hex SHA-256 of the canonical device id and the destination's identity.
    pub id: String,
    /// Canonical, as talaria writes it: `mac:112233445566`.
    pub device_id: String,
    pub target: Target,
    /// The request as stored (device id canonical).
    pub request: NornRequest,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Http(HttpTarget),
    Sqs(SqsTarget),
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpTarget {
    pub url: Url,
    pub secret: String,
    pub failure_url: Option<Url>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SqsTarget {
    pub queue_url: Url,
    pub region: String,
    pub delay_seconds: u32,
    pub access_key: String,
    pub secret_key: String,
}

impl NornRequest {
    /// Checks a norn from the API; its TTL must be within `max_ttl`.
    pub fn validate(self, max_ttl: Duration) -> Result<Norn, Invalid> {
        let max = max_ttl.as_secs();
        if self.ttl == 0 {
            return Err(Invalid::NoTtl { max });
        }
        if self.ttl < 0 || self.ttl.unsigned_abs() > max {
            return Err(Invalid::Ttl { ttl: self.ttl, max });
        }
        self.build()
    }

    /// The lifetime the norn asked for (after [`NornRequest::validate`]).
    pub fn lifetime(&self) -> Duration {
        Duration::from_secs(self.ttl.unsigned_abs())
    }

    /// Checks everything but the TTL bound, which applies when a norn is written, not when a
    /// stored one is read back under a possibly changed configuration.
    pub(crate) fn build(mut self) -> Result<Norn, Invalid> {
        let device_id = canonical_device_id(&self.device_id)?;
        self.device_id = device_id.clone();
        let d = &self.destination;
        let target = match (d.http.is_empty(), d.aws.is_empty()) {
            (true, true) => return Err(Invalid::NoDestination),
            (false, false) => return Err(Invalid::TwoDestinations),
            (false, true) => Target::Http(http_target(&d.http)?),
            (true, false) => Target::Sqs(sqs_target(&d.aws)?),
        };
        Ok(Norn {
            id: norn_id(&device_id, &target),
            device_id,
            target,
            request: self,
        })
    }
}

fn canonical_device_id(id: &str) -> Result<String, Invalid> {
    if id.trim().is_empty() {
        return Err(Invalid::NoDeviceId);
    }
    if id.len() > MAX_DEVICE_ID_LEN {
        return Err(Invalid::TooLong {
            field: "DeviceID",
            max: MAX_DEVICE_ID_LEN,
        });
    }
    let invalid = |reason: String| Invalid::DeviceId {
        id: id.into(),
        reason,
    };
    // A norn names one device, not a device's service: `mac:112233445566/config` would be
    // silently widened to the whole device.
    if id.contains('/') {
        return Err(invalid("give the device only, without a /service".into()));
    }
    DeviceId::parse(id.trim())
        .map(|d| d.to_string())
        .map_err(|e| invalid(e.to_string()))
}

fn http_target(c: &HttpConfig) -> Result<HttpTarget, Invalid> {
    let url = check_url("Destination.HttpConfig.URL", &c.url)?;
    if c.secret.len() > MAX_SECRET_LEN {
        return Err(Invalid::TooLong {
            field: "Destination.HttpConfig.Secret",
            max: MAX_SECRET_LEN,
        });
    }
    let failure_url = if c.failure_url.is_empty() {
        None
    } else {
        Some(check_url(
            "Destination.HttpConfig.FailureURL",
            &c.failure_url,
        )?)
    };
    Ok(HttpTarget {
        url,
        secret: c.secret.clone(),
        failure_url,
    })
}

fn sqs_target(c: &AwsConfig) -> Result<SqsTarget, Invalid> {
    let queue_url = check_url("Destination.AWSConfig.Sqs.QueueURL", &c.sqs.queue_url)?;
    for (field, value) in [
        ("Destination.AWSConfig.AccessKey", &c.access_key),
        ("Destination.AWSConfig.SecretKey", &c.secret_key),
    ] {
        if value.is_empty() {
            return Err(Invalid::Missing { field });
        }
        if value.len() > MAX_SECRET_LEN {
            return Err(Invalid::TooLong {
                field,
                max: MAX_SECRET_LEN,
            });
        }
    }
    let region = &c.sqs.region;
    if region.is_empty() {
        return Err(Invalid::Missing {
            field: "Destination.AWSConfig.Sqs.Region",
        });
    }
    if region.len() > 64
        || !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(Invalid::Region(region.clone()));
    }
    let delay_seconds = u32::try_from(c.sqs.delay_seconds)
        .ok()
        .filter(|d| *d <= MAX_SQS_DELAY)
        .ok_or(Invalid::Delay(c.sqs.delay_seconds))?;
    Ok(SqsTarget {
        queue_url,
        region: region.clone(),
        delay_seconds,
        access_key: c.access_key.clone(),
        secret_key: c.secret_key.clone(),
    })
}

/// An absolute http(s) URL with a host and no credentials (they would show in listings).
fn check_url(field: &'static str, raw: &str) -> Result<Url, Invalid> {
    if raw.is_empty() {
        return Err(Invalid::Missing { field });
    }
    if raw.len() > MAX_URL_LEN {
        return Err(Invalid::TooLong {
            field,
            max: MAX_URL_LEN,
        });
    }
    let refuse = |reason: &str| Invalid::Url {
        field,
        url: raw.into(),
        reason: reason.into(),
    };
    let url = Url::parse(raw).map_err(|e| refuse(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refuse("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(refuse("a host is required"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("credentials in the URL are not allowed"));
    }
    Ok(url)
}

/// The norn id: hex SHA-256 of the canonical device id and the destination's identity (its
/// normalised URL or queue URL), so that no two norns share both.
pub(crate) fn norn_id(device_id: &str, target: &Target) -> String {
    let (kind, url) = match target {
        Target::Http(h) => ("http", &h.url),
        Target::Sqs(s) => ("sqs", &s.queue_url),
    };
    let mut hash = Sha256::new();
    for part in [device_id, kind, url.as_str()] {
        hash.update(part.as_bytes());
        // A separator no part can contain keeps the concatenation unambiguous.
        hash.update([0u8]);
    }
    hex::encode(hash.finalize())
}

impl Norn {
    /// The norn as the API shows it: the request with secrets hidden, plus `ID` and
    /// `ExpiresAt` (RFC 3339).
    pub fn view(&self, expires_at: SystemTime) -> serde_json::Value {
        let mut shown = self.request.clone();
        for secret in [
            &mut shown.destination.http.secret,
            &mut shown.destination.aws.access_key,
            &mut shown.destination.aws.secret_key,
        ] {
            if !secret.is_empty() {
                *secret = OBFUSCATED.into();
            }
        }
        let mut view = serde_json::to_value(&shown).unwrap_or_default();
        if let Some(object) = view.as_object_mut() {
            object.insert("ID".into(), self.id.clone().into());
            object.insert(
                "ExpiresAt".into(),
                humantime::format_rfc3339_seconds(expires_at)
                    .to_string()
                    .into(),
            );
        }
        view
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(device: &str, url: &str) -> NornRequest {
        serde_json::from_value(serde_json::json!({
            "DeviceID": device, "TTL": 60,
            "Destination": {"HttpConfig": {"URL": url, "Secret": "s"}}
        }))
        .unwrap()
    }

    const DAY: Duration = Duration::from_secs(86400);

    #[test]
    fn device_ids_are_canonical_and_identity_ignores_their_spelling() {
        let a = http("MAC:11-22-33-44-55-66", "http://Receiver.example:80/x")
            .validate(DAY)
            .unwrap();
        let b = http("mac:112233445566", "http://receiver.example/x")
            .validate(DAY)
            .unwrap();
        assert_eq!(a.device_id, "mac:112233445566");
        assert_eq!(a.id, b.id);
        assert_eq!(a.id.len(), 64);
        let other = http("mac:112233445567", "http://receiver.example/x")
            .validate(DAY)
            .unwrap();
        assert_ne!(a.id, other.id);
    }

    #[test]
    fn go_clients_full_shape_is_accepted() {
        // What Go's json.Marshal of model.Norn produces: both configs, the unused one empty.
        let body = r#"{"DeviceID":"mac:112233445566","TTL":30,"Destination":{"Info":null,
            "AWSConfig":{"AccessKey":"","SecretKey":"","ID":"","Env":"","Sqs":{"QueueURL":"","DelaySeconds":0,"Region":""}},
            "HttpConfig":{"URL":"https://r.example/e","Secret":"","FailureURL":""}}}"#;
        let norn: NornRequest = serde_json::from_str(body).unwrap();
        let norn = norn.validate(DAY).unwrap();
        assert!(matches!(norn.target, Target::Http(_)));
    }

    #[test]
    fn every_bad_input_names_its_field() {
        let cases: Vec<(serde_json::Value, &str)> = vec![
            (serde_json::json!({"TTL": 5}), "DeviceID is required"),
            (
                serde_json::json!({"DeviceID": "event:x", "TTL": 5}),
                "is not a device id",
            ),
            (
                serde_json::json!({"DeviceID": "mac:1122", "TTL": 5}),
                "12 hex digits",
            ),
            (
                serde_json::json!({"DeviceID": "mac:112233445566/config", "TTL": 5}),
                "without a /service",
            ),
            (
                serde_json::json!({"DeviceID": "mac:112233445566"}),
                "TTL is required",
            ),
            (
                serde_json::json!({"DeviceID": "mac:112233445566", "TTL": 90000}),
                "TTL 90000 is out of range",
            ),
            (
                serde_json::json!({"DeviceID": "mac:112233445566", "TTL": -1}),
                "TTL -1 is out of range",
            ),
            (
                serde_json::json!({"DeviceID": "mac:112233445566", "TTL": 5}),
                "Destination needs",
            ),
            (
                serde_json::json!({"DeviceID": "mac:112233445566", "TTL": 5, "Destination": {
                    "HttpConfig": {"URL": "http://a.example"},
                    "AWSConfig": {"AccessKey": "k"}}}),
                "only one of",
            ),
            (
                serde_json::json!({"DeviceID": "mac:112233445566", "TTL": 5, "Destination": {
                    "HttpConfig": {"URL": "ftp://a.example"}}}),
                "Destination.HttpConfig.URL \"ftp://a.example\" is not usable: the scheme",
            ),
            (
                serde_json::json!({"DeviceID": "mac:112233445566", "TTL": 5, "Destination": {
                    "HttpConfig": {"URL": "http://u:p@a.example"}}}),
                "credentials",
            ),
            (
                serde_json::json!({"DeviceID": "mac:112233445566", "TTL": 5, "Destination": {
                    "HttpConfig": {"URL": "http://a.example", "FailureURL": "nope"}}}),
                "Destination.HttpConfig.FailureURL",
            ),
            (
                serde_json::json!({"DeviceID": "mac:112233445566", "TTL": 5, "Destination": {
                    "AWSConfig": {"SecretKey": "s", "Sqs": {"QueueURL": "http://q.example/1/q", "Region": "us-east-1"}}}}),
                "Destination.AWSConfig.AccessKey is required",
            ),
            (
                serde_json::json!({"DeviceID": "mac:112233445566", "TTL": 5, "Destination": {
                    "AWSConfig": {"AccessKey": "k", "SecretKey": "s", "Sqs": {"QueueURL": "http://q.example/1/q"}}}}),
                "Destination.AWSConfig.Sqs.Region is required",
            ),
            (
                serde_json::json!({"DeviceID": "mac:112233445566", "TTL": 5, "Destination": {
                    "AWSConfig": {"AccessKey": "k", "SecretKey": "s", "Sqs": {"QueueURL": "http://q.example/1/q", "Region": "US East"}}}}),
                "not an AWS region name",
            ),
            (
                serde_json::json!({"DeviceID": "mac:112233445566", "TTL": 5, "Destination": {
                    "AWSConfig": {"AccessKey": "k", "SecretKey": "s", "Sqs": {"QueueURL": "http://q.example/1/q", "Region": "us-east-1", "DelaySeconds": 901}}}}),
                "DelaySeconds 901 is out of range",
            ),
        ];
        for (body, expected) in cases {
            let request: NornRequest = serde_json::from_value(body.clone()).unwrap();
            let error = request.validate(DAY).unwrap_err().to_string();
            assert!(error.contains(expected), "{body}: {error}");
        }
        let typo = serde_json::from_value::<NornRequest>(serde_json::json!({"DeviceId": "x"}))
            .unwrap_err()
            .to_string();
        assert!(typo.contains("unknown field `DeviceId`"), "{typo}");
    }

    #[test]
    fn views_hide_secrets() {
        let norn: NornRequest = serde_json::from_value(serde_json::json!({
            "DeviceID": "mac:112233445566", "TTL": 5, "Destination": {
                "AWSConfig": {"AccessKey": "AKIA", "SecretKey": "shh", "ID": "x",
                    "Sqs": {"QueueURL": "http://q.example/1/q", "Region": "us-east-1"}}}
        }))
        .unwrap();
        let norn = norn.validate(DAY).unwrap();
        let view = norn.view(SystemTime::UNIX_EPOCH).to_string();
        assert!(!view.contains("AKIA") && !view.contains("shh"), "{view}");
        assert!(
            view.contains("\"ExpiresAt\":\"1970-01-01T00:00:00Z\""),
            "{view}"
        );
        assert!(view.contains(&norn.id));
    }
}
