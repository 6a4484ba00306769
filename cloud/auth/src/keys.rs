//! Verification keys: from PEM and JWKS files, a JWKS URL kept fresh, and a per-kid key URL.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http::header::ACCEPT;
use http::StatusCode;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde_json::Value;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::config::KeysConfig;
use crate::error::{AuthError, ConfigError, KeyFetchError, TokenError};

/// The placeholder of `key_url_template` (clortho's spelling).
const KID_PLACEHOLDER: &str = "{keyID}";

/// The key families this crate verifies with; HMAC and EdDSA keys are never loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyFamily {
    Rsa,
    Ec,
}

impl KeyFamily {
    pub(crate) fn of(alg: Algorithm) -> Option<KeyFamily> {
        match alg.family() {
            AlgorithmFamily::Rsa => Some(KeyFamily::Rsa),
            AlgorithmFamily::Ec => Some(KeyFamily::Ec),
            _ => None,
        }
    }
}

/// One verification key.
#[derive(Debug)]
pub(crate) struct VerifyKey {
    pub(crate) key: DecodingKey,
    pub(crate) family: KeyFamily,
    /// The JWK's `alg`, when it named one: only that algorithm may use the key.
    pub(crate) alg: Option<Algorithm>,
}

type KeyMap = HashMap<String, Arc<VerifyKey>>;

/// Reads a PEM public key or certificate. Private keys are refused: a verifier has no business
/// holding one, and jsonwebtoken would misread it.
fn key_from_pem(pem: &[u8]) -> Result<VerifyKey, String> {
    let text = std::str::from_utf8(pem).map_err(|_| "not a PEM text file".to_owned())?;
    if text.contains("PRIVATE KEY-----") {
        return Err("holds a private key; give the public key or a certificate".to_owned());
    }
    if !text.contains("-----BEGIN ") {
        return Err("no PEM block".to_owned());
    }
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        return Ok(VerifyKey {
            key,
            family: KeyFamily::Rsa,
            alg: None,
        });
    }
    if let Ok(key) = DecodingKey::from_ec_pem(pem) {
        return Ok(VerifyKey {
            key,
            family: KeyFamily::Ec,
            alg: None,
        });
    }
    Err("not an RSA or EC public key or certificate".to_owned())
}

/// Turns one JWK into a key, or says why it is skipped.
fn key_from_jwk(jwk: &Jwk) -> Result<VerifyKey, String> {
    if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
        return Err("an encryption key (use: enc)".to_owned());
    }
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => KeyFamily::Rsa,
        AlgorithmParameters::EllipticCurve(ec)
            if matches!(ec.curve, EllipticCurve::P256 | EllipticCurve::P384) =>
        {
            KeyFamily::Ec
        }
        // Symmetric JWKs ("oct") would turn the key server's answer into an HMAC secret.
        _ => return Err("not an RSA or P-256/P-384 EC key".to_owned()),
    };
    let alg = match jwk.common.key_algorithm {
        Some(a) => {
            let alg = Algorithm::try_from(a).map_err(|_| format!("unsupported alg {a:?}"))?;
            if KeyFamily::of(alg) != Some(family) {
                return Err(format!("alg {alg:?} does not fit the key type"));
            }
            Some(alg)
        }
        None => None,
    };
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("bad key parameters: {e}"))?;
    Ok(VerifyKey { key, family, alg })
}

/// A JWKS document's keys by `kid`, with a note for every key that was skipped.
struct ParsedJwks {
    keys: KeyMap,
    skipped: Vec<String>,
}

fn parse_jwks(doc: &Value) -> Result<ParsedJwks, String> {
    let entries = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| "not a JWKS document (no \"keys\" array)".to_owned())?;
    let mut parsed = ParsedJwks {
        keys: HashMap::new(),
        skipped: Vec::new(),
    };
    for (i, entry) in entries.iter().enumerate() {
        // One odd key (another kty, a missing field) must not hide the others.
        let jwk: Jwk = match serde_json::from_value(entry.clone()) {
            Ok(jwk) => jwk,
            Err(e) => {
                parsed.skipped.push(format!("key #{i}: {e}"));
                continue;
            }
        };
        let Some(kid) = jwk.common.key_id.clone() else {
            parsed.skipped.push(format!("key #{i}: no kid"));
            continue;
        };
        match key_from_jwk(&jwk) {
            Ok(key) => {
                parsed.keys.insert(kid, Arc::new(key));
            }
            Err(reason) => parsed.skipped.push(format!("key {kid:?}: {reason}")),
        }
    }
    Ok(parsed)
}

/// An error and its causes on one line: reqwest's own message ("error sending request") hides
/// the one an operator needs ("Connection refused", "operation timed out").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

/// Whether a `kid` may be put into a URL: themis and clortho key IDs are plain tokens, and
/// anything else (slashes, `..`, `?`) could point the fetch somewhere unintended.
fn url_safe_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= 128
        && kid != "."
        && kid != ".."
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Finds the verification key for a `kid`.
pub(crate) struct KeyResolver {
    local: KeyMap,
    remote: Option<Arc<Remote>>,
}

impl KeyResolver {
    /// Loads the files and, when URLs are configured, starts the JWKS refresher (which needs a
    /// tokio runtime). Remote keys are not fetched here: the refresher's first round and the
    /// first unknown `kid` do that.
    pub(crate) fn new(config: &KeysConfig) -> Result<KeyResolver, ConfigError> {
        let mut local = KeyMap::new();
        for (kid, path) in &config.pem_files {
            let pem = read_key_file(path)?;
            let key = key_from_pem(&pem).map_err(|reason| ConfigError::KeyFormat {
                path: path.clone(),
                reason,
            })?;
            local.insert(kid.clone(), Arc::new(key));
        }
        for path in &config.jwks_files {
            let bytes = read_key_file(path)?;
            let doc: Value =
                serde_json::from_slice(&bytes).map_err(|e| ConfigError::KeyFormat {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            let parsed = parse_jwks(&doc).map_err(|reason| ConfigError::KeyFormat {
                path: path.clone(),
                reason,
            })?;
            // A file is under the operator's control: a key we cannot use is a mistake there.
            if let Some(reason) = parsed.skipped.into_iter().next() {
                return Err(ConfigError::KeyFormat {
                    path: path.clone(),
                    reason,
                });
            }
            local.extend(parsed.keys);
        }

        let remote = if config.jwks_url.is_some() || config.key_url_template.is_some() {
            Some(Remote::start(config)?)
        } else {
            None
        };
        if local.is_empty() && remote.is_none() {
            return Err(ConfigError::Invalid {
                field: "jwt.keys",
                reason: "no key source: set pem_files, jwks_files, jwks_url or key_url_template"
                    .to_owned(),
            });
        }
        Ok(KeyResolver { local, remote })
    }

    /// The key for `kid`: a known one, else one fetched now if a fetch is permitted.
    pub(crate) async fn resolve(&self, kid: &str) -> Result<Arc<VerifyKey>, AuthError> {
        if let Some(key) = self.local.get(kid) {
            return Ok(key.clone());
        }
        let Some(remote) = &self.remote else {
            return Err(TokenError::UnknownKid(kid.to_owned()).into());
        };
        if let Some(key) = remote.known(kid) {
            return Ok(key);
        }
        remote.fetch_unknown(kid).await
    }
}

fn read_key_file(path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::KeyFile {
        path: path.to_owned(),
        source,
    })
}

/// Refuses at start what could only fail at every fetch later.
fn check_url(field: &'static str, url: &str) -> Result<(), ConfigError> {
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => Ok(()),
        Ok(_) => Err(ConfigError::Invalid {
            field,
            reason: format!("{url:?} is not an http(s) URL with a host"),
        }),
        Err(e) => Err(ConfigError::Invalid {
            field,
            reason: format!("{url:?}: {e}"),
        }),
    }
}

/// Keys held by servers: the JWKS URL's document and keys fetched one by one from the key URL.
struct Remote {
    client: reqwest::Client,
    jwks_url: Option<String>,
    template: Option<String>,
    max_bytes: usize,
    min_refetch: Duration,
    /// Replaced whole by every successful JWKS fetch, so keys dropped there are dropped here.
    jwks: RwLock<KeyMap>,
    /// Keys from the key URL; only grows, at most one fetch per `min_refetch`.
    by_kid: RwLock<KeyMap>,
    /// When an unknown `kid` last caused a fetch. Held across that fetch, so concurrent
    /// requests for one new key wait for it instead of fetching it again.
    last_on_demand: tokio::sync::Mutex<Option<Instant>>,
}

impl Remote {
    fn start(config: &KeysConfig) -> Result<Arc<Remote>, ConfigError> {
        if let Some(url) = &config.jwks_url {
            check_url("jwt.keys.jwks_url", url)?;
        }
        if let Some(template) = &config.key_url_template {
            if !template.contains(KID_PLACEHOLDER) {
                return Err(ConfigError::Invalid {
                    field: "jwt.keys.key_url_template",
                    reason: format!("must contain {KID_PLACEHOLDER}"),
                });
            }
            check_url(
                "jwt.keys.key_url_template",
                &template.replace(KID_PLACEHOLDER, "current"),
            )?;
        }
        if config.max_response_bytes == 0 {
            return Err(ConfigError::Invalid {
                field: "jwt.keys.max_response_bytes",
                reason: "must be positive".to_owned(),
            });
        }
        if config.fetch_timeout.is_zero() {
            return Err(ConfigError::Invalid {
                field: "jwt.keys.fetch_timeout",
                reason: "must be positive".to_owned(),
            });
        }
        if config.jwks_url.is_some() && config.refresh_interval.is_zero() {
            return Err(ConfigError::Invalid {
                field: "jwt.keys.refresh_interval",
                reason: "must be positive".to_owned(),
            });
        }
        let client = reqwest::Client::builder()
            .timeout(config.fetch_timeout)
            .connect_timeout(config.fetch_timeout)
            .build()
            .map_err(ConfigError::HttpClient)?;
        let remote = Arc::new(Remote {
            client,
            jwks_url: config.jwks_url.clone(),
            template: config.key_url_template.clone(),
            max_bytes: config.max_response_bytes,
            min_refetch: config.min_refetch_interval,
            jwks: RwLock::new(KeyMap::new()),
            by_kid: RwLock::new(KeyMap::new()),
            last_on_demand: tokio::sync::Mutex::new(None),
        });
        if remote.jwks_url.is_some() {
            let runtime =
                tokio::runtime::Handle::try_current().map_err(|_| ConfigError::NoRuntime)?;
            // The task holds only a weak reference, so dropping the validator ends it.
            let weak = Arc::downgrade(&remote);
            let interval = config.refresh_interval;
            runtime.spawn(async move {
                loop {
                    match weak.upgrade() {
                        Some(remote) => {
                            if let Err(e) = remote.refresh_jwks().await {
                                warn!(error = %e, "JWKS refresh failed; keeping the previous keys");
                            }
                        }
                        None => break,
                    }
                    tokio::time::sleep(interval).await;
                }
            });
        }
        Ok(remote)
    }

    fn known(&self, kid: &str) -> Option<Arc<VerifyKey>> {
        // A poisoned lock only means a panic elsewhere mid-insert of a complete map entry.
        let jwks = self.jwks.read().unwrap_or_else(|p| p.into_inner());
        if let Some(key) = jwks.get(kid) {
            return Some(key.clone());
        }
        drop(jwks);
        let by_kid = self.by_kid.read().unwrap_or_else(|p| p.into_inner());
        by_kid.get(kid).cloned()
    }

    /// Fetches for a `kid` nobody knows, unless a fetch happened within `min_refetch`.
    async fn fetch_unknown(&self, kid: &str) -> Result<Arc<VerifyKey>, AuthError> {
        let unknown = || AuthError::InvalidToken(TokenError::UnknownKid(kid.to_owned()));
        let mut last = self.last_on_demand.lock().await;
        // Another request may have fetched this key while we waited for the lock.
        if let Some(key) = self.known(kid) {
            return Ok(key);
        }
        if last.is_some_and(|at| at.elapsed() < self.min_refetch) {
            debug!(
                kid,
                "unknown key id; refetch suppressed by min_refetch_interval"
            );
            return Err(unknown());
        }
        *last = Some(Instant::now());

        let mut failure = None;
        if self.jwks_url.is_some() {
            match self.refresh_jwks().await {
                Ok(()) => {
                    if let Some(key) = self.known(kid) {
                        return Ok(key);
                    }
                }
                Err(e) => failure = Some(e),
            }
        }
        if let Some(template) = &self.template {
            if url_safe_kid(kid) {
                match self.fetch_by_kid(template, kid).await {
                    Ok(Some(key)) => return Ok(key),
                    Ok(None) => {}
                    Err(e) => failure = Some(e),
                }
            }
        }
        match failure {
            Some(e) => Err(AuthError::KeyUnavailable(e)),
            None => Err(unknown()),
        }
    }

    async fn refresh_jwks(&self) -> Result<(), KeyFetchError> {
        let Some(url) = &self.jwks_url else {
            return Ok(());
        };
        let body = self
            .get(url, "application/jwk-set+json, application/json")
            .await?
            .ok_or_else(|| KeyFetchError::Status {
                url: url.clone(),
                status: StatusCode::NOT_FOUND,
            })?;
        let parse_error = |reason: String| KeyFetchError::Parse {
            url: url.clone(),
            reason,
        };
        let doc: Value = serde_json::from_slice(&body).map_err(|e| parse_error(e.to_string()))?;
        let parsed = parse_jwks(&doc).map_err(parse_error)?;
        for reason in &parsed.skipped {
            warn!(url, reason, "JWKS key skipped");
        }
        info!(url, keys = parsed.keys.len(), "JWKS fetched");
        *self.jwks.write().unwrap_or_else(|p| p.into_inner()) = parsed.keys;
        Ok(())
    }

    /// Fetches one key from the key URL. `Ok(None)` when the server does not have it (404) or
    /// its answer holds no key with that ID.
    async fn fetch_by_kid(
        &self,
        template: &str,
        kid: &str,
    ) -> Result<Option<Arc<VerifyKey>>, KeyFetchError> {
        let url = template.replace(KID_PLACEHOLDER, kid);
        let Some(body) = self
            .get(
                &url,
                "application/x-pem-file, application/jwk+json, application/json",
            )
            .await?
        else {
            return Ok(None);
        };
        let parse_error = |reason: String| KeyFetchError::Parse {
            url: url.clone(),
            reason,
        };
        let trimmed = body.trim_ascii_start();
        let key = if trimmed.starts_with(b"-----BEGIN") {
            key_from_pem(trimmed).map_err(parse_error)?
        } else {
            let doc: Value =
                serde_json::from_slice(trimmed).map_err(|e| parse_error(e.to_string()))?;
            if doc.get("keys").is_some() {
                let mut parsed = parse_jwks(&doc).map_err(parse_error)?;
                match parsed.keys.remove(kid) {
                    Some(key) => {
                        self.insert_by_kid(kid, key.clone());
                        return Ok(Some(key));
                    }
                    None => return Ok(None),
                }
            }
            let jwk: Jwk = serde_json::from_value(doc).map_err(|e| parse_error(e.to_string()))?;
            if jwk.common.key_id.as_deref().is_some_and(|id| id != kid) {
                return Err(parse_error(format!(
                    "answered with another kid for {kid:?}"
                )));
            }
            key_from_jwk(&jwk).map_err(parse_error)?
        };
        let key = Arc::new(key);
        self.insert_by_kid(kid, key.clone());
        info!(url, "verification key fetched");
        Ok(Some(key))
    }

    fn insert_by_kid(&self, kid: &str, key: Arc<VerifyKey>) {
        self.by_kid
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(kid.to_owned(), key);
    }

    /// GETs `url` with the size limit. `Ok(None)` on 404.
    async fn get(&self, url: &str, accept: &str) -> Result<Option<Vec<u8>>, KeyFetchError> {
        let request_error = |source: reqwest::Error| {
            let source = source.without_url();
            KeyFetchError::Request {
                url: url.to_owned(),
                reason: error_chain(&source),
                source,
            }
        };
        let mut response = self
            .client
            .get(url)
            .header(ACCEPT, accept)
            .send()
            .await
            .map_err(request_error)?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(KeyFetchError::Status {
                url: url.to_owned(),
                status,
            });
        }
        let too_large = || KeyFetchError::TooLarge {
            url: url.to_owned(),
            limit: self.max_bytes,
        };
        if response
            .content_length()
            .is_some_and(|len| len > self.max_bytes as u64)
        {
            return Err(too_large());
        }
        // Content-Length may be absent (chunked) or wrong, so count while reading.
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(request_error)? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(body))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn kid_safety() {
        for ok in ["current", "docker", "key-1.v2_a"] {
            assert!(url_safe_kid(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../admin",
            "a/b",
            "a?b",
            "a b",
            &"k".repeat(129),
        ] {
            assert!(!url_safe_kid(bad), "{bad}");
        }
    }

    #[test]
    fn jwks_skips_unusable_keys() {
        let doc = json!({"keys": [
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
            {"kty": "RSA", "kid": "mismatch", "alg": "ES256", "n": "AQAB", "e": "AQAB"},
            {"kty": "RSA", "kid": "good", "alg": "RS256", "n": "AQAB", "e": "AQAB"},
            {"kty": "weird"},
        ]});
        let parsed = parse_jwks(&doc).unwrap();
        assert_eq!(parsed.keys.len(), 1);
        let good = &parsed.keys["good"];
        assert_eq!(good.family, KeyFamily::Rsa);
        assert_eq!(good.alg, Some(Algorithm::RS256));
        assert_eq!(parsed.skipped.len(), 5, "{:?}", parsed.skipped);
        assert!(parse_jwks(&json!({"kty": "RSA"})).is_err());
    }

    #[test]
    fn pem_refusals() {
        let private = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(key_from_pem(private).unwrap_err().contains("private key"));
        assert!(key_from_pem(b"hello").is_err());
        let garbage = b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
        assert!(key_from_pem(garbage).is_err());
    }
}
