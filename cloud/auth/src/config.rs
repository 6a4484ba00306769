//! Configuration: what the services deserialize from their YAML.
//!
//! Every struct takes `#[serde(default)]`, so any field may be left out; durations are
//! humantime strings (`"10s"`, `"1h"`). The README has a complete YAML example.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde::Deserialize;

/// Authentication of API routes (scytale, caduceus, talaria's `/device/send`, ...).
///
/// **With neither `basic` nor `jwt` set, API authentication is off**: every request is let
/// through without a principal, and [`crate::ApiAuth::from_config`] logs a warning saying so.
/// This mirrors the Go services, whose API is open when no credentials are configured.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiAuthConfig {
    /// Realm named in `WWW-Authenticate` challenges.
    pub realm: String,
    /// Accepted Basic credentials, each either `user:pass` or base64 of `user:pass` (the Go
    /// configs' `authHeader` / `inbound.authKey`, e.g. `dXNlcjpwYXNz`). Empty: Basic refused.
    pub basic: Vec<String>,
    /// Accepted bearer JWTs. Absent: bearer tokens refused (talaria's `/device/send` hotfix,
    /// talaria#568: a device token can never pass where only Basic is configured).
    pub jwt: Option<JwtConfig>,
    /// Capability checks on JWT principals (bascule `basculecaps`). Absent: none.
    pub capabilities: Option<CapabilityConfig>,
}

impl ApiAuthConfig {
    /// True when no credentials of any kind are configured, i.e. API auth is off.
    pub fn is_open(&self) -> bool {
        self.basic.is_empty() && self.jwt.is_none()
    }
}

impl Default for ApiAuthConfig {
    fn default() -> Self {
        ApiAuthConfig {
            realm: "xmidt".to_owned(),
            basic: Vec::new(),
            jwt: None,
            capabilities: None,
        }
    }
}

// Basic credentials must not reach logs through `{:?}`.
impl std::fmt::Debug for ApiAuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiAuthConfig")
            .field("realm", &self.realm)
            .field("basic", &format_args!("[{} redacted]", self.basic.len()))
            .field("jwt", &self.jwt)
            .field("capabilities", &self.capabilities)
            .finish()
    }
}

/// Authentication of device connections (talaria's `/api/v2/device` websocket route).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceAuthConfig {
    /// Let devices that send no `Authorization` header connect unauthenticated (talaria's
    /// `failOpen`). A device that does send one must still pass. Default false.
    pub allow_missing: bool,
    /// The device-token validator; configure it with the device issuer's keys (themis), not the
    /// API issuer's. Absent: no device is authenticated and every connect is let through.
    pub jwt: Option<JwtConfig>,
}

/// How bearer JWTs are validated.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtConfig {
    /// Accepted `alg` values. Only RSA (`RS*`, `PS*`) and ECDSA (`ES256`, `ES384`) can be
    /// listed; HMAC and `none` are always refused. Default `[RS256, ES256]`.
    pub algorithms: Vec<Algorithm>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`. Default 5s.
    #[serde(with = "humantime_serde")]
    pub leeway: Duration,
    /// If non-empty, `iss` must be present and one of these.
    pub issuers: Vec<String>,
    /// If non-empty, `aud` must be present and name one of these. If empty, `aud` is ignored
    /// (themis puts `aud: XMiDT` in its tokens).
    pub audiences: Vec<String>,
    /// Refuse tokens without `exp`. Default true (bascule accepts them; see the README).
    pub require_exp: bool,
    /// Key ID assumed for tokens without a `kid` header (talaria/clortho use `current`).
    /// Absent: such tokens are refused.
    pub default_kid: Option<String>,
    /// Where verification keys come from.
    pub keys: KeysConfig,
}

impl Default for JwtConfig {
    fn default() -> Self {
        JwtConfig {
            algorithms: vec![Algorithm::RS256, Algorithm::ES256],
            leeway: Duration::from_secs(5),
            issuers: Vec::new(),
            audiences: Vec::new(),
            require_exp: true,
            default_kid: None,
            keys: KeysConfig::default(),
        }
    }
}

/// Verification key sources. Any combination; a `kid` is looked up in the files first, then in
/// the JWKS document, then at the key URL.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    /// Key ID → PEM file holding a public key (`PUBLIC KEY`, `RSA PUBLIC KEY`) or a
    /// certificate (`CERTIFICATE`). Private keys are refused.
    pub pem_files: BTreeMap<String, PathBuf>,
    /// JWKS documents on disk; every key must have a `kid`.
    pub jwks_files: Vec<PathBuf>,
    /// A JWKS document fetched at start, every `refresh_interval`, and when a token names an
    /// unknown `kid` (at most once per `min_refetch_interval`).
    pub jwks_url: Option<String>,
    /// A URL with `{keyID}` replaced by the token's `kid`, answering with a PEM public key,
    /// a JWK or a JWKS (themis: `http://themis:6500/keys/{keyID}`). Fetched keys are kept.
    pub key_url_template: Option<String>,
    /// How often `jwks_url` is fetched again. Default 1h.
    #[serde(with = "humantime_serde")]
    pub refresh_interval: Duration,
    /// Least time between two fetches caused by unknown key IDs, so that tokens with made-up
    /// `kid`s cannot hammer the key server. Default 10s.
    #[serde(with = "humantime_serde")]
    pub min_refetch_interval: Duration,
    /// Upper bound on one fetch, connecting included. Default 10s.
    #[serde(with = "humantime_serde")]
    pub fetch_timeout: Duration,
    /// Largest response body accepted from `jwks_url` or the key URL. Default 1 MiB.
    pub max_response_bytes: usize,
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            pem_files: BTreeMap::new(),
            jwks_files: Vec::new(),
            jwks_url: None,
            key_url_template: None,
            refresh_interval: Duration::from_secs(3600),
            min_refetch_interval: Duration::from_secs(10),
            fetch_timeout: Duration::from_secs(10),
            max_response_bytes: 1 << 20,
        }
    }
}

/// Whether a failed check refuses the request or is only logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckMode {
    /// Refuse with 403.
    #[default]
    Enforce,
    /// Log at `info` and let the request through (scytale's `monitor`).
    Monitor,
}

/// Capability checks: `<prefix><url-regex>:<method>` entries of the `capabilities` claim.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CapabilityConfig {
    /// Enforce or only monitor. Default enforce.
    pub mode: CheckMode,
    /// Accepted capability prefixes, literal or regular expressions (e.g. `x1:webpa:api:`,
    /// `x1:xmidt:api:`). With none, no capability matches and every JWT is refused.
    pub prefixes: Vec<String>,
    /// The method token that grants every HTTP method. Default `all`.
    pub all_method: String,
    /// Path prefixes removed before matching, when followed by `/` (scytale strips `/api/v3`
    /// and `/api/v2`, so capabilities read `device/.*/stat`). Default none.
    pub strip_path_prefixes: Vec<String>,
    /// Basic principals skip the check (bascule checks capabilities of JWTs only). When false
    /// they are refused, having no capabilities. Default true.
    pub basic_bypass: bool,
    /// Compiled capability URL patterns kept (they come from tokens, so the cache is bounded).
    /// Default 1024.
    pub cache_size: usize,
}

impl Default for CapabilityConfig {
    fn default() -> Self {
        CapabilityConfig {
            mode: CheckMode::Enforce,
            prefixes: Vec::new(),
            all_method: "all".to_owned(),
            strip_path_prefixes: Vec::new(),
            basic_bypass: true,
            cache_size: 1024,
        }
    }
}
