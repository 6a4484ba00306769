//! Errors: configuration problems, request rejections and key-fetch failures.

use std::path::PathBuf;

use http::StatusCode;

/// A configuration that cannot be used. Returned by the constructors, never while serving.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A `basic` entry is neither `user:pass` nor the base64 of `user:pass`.
    #[error("basic credential #{index}: {reason}")]
    BasicCredential {
        /// Position in the `basic` list, from 0.
        index: usize,
        /// What is wrong with it (never the credential itself).
        reason: &'static str,
    },
    /// `algorithms` is empty or names an algorithm this crate refuses (HMAC, EdDSA).
    #[error("jwt algorithms: {0}")]
    Algorithms(String),
    /// A key file could not be read.
    #[error("reading key file {path}: {source}")]
    KeyFile {
        /// The configured path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A key file was read but holds no usable verification key.
    #[error("key file {path}: {reason}")]
    KeyFormat {
        /// The configured path.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },
    /// A capability prefix is not a valid regular expression.
    #[error("capability prefix {prefix:?}: {source}")]
    CapabilityPrefix {
        /// The configured prefix.
        prefix: String,
        /// The regex compiler's complaint.
        source: Box<regex::Error>,
    },
    /// Any other invalid setting.
    #[error("{field}: {reason}")]
    Invalid {
        /// The config field, dotted as in the YAML.
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// The HTTP client for key fetching could not be built.
    #[error("building the key-fetch HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// Remote keys need a tokio runtime for their refresh task.
    #[error("jwt.keys.jwks_url needs a tokio runtime: construct the validator inside one")]
    NoRuntime,
}

/// Why a key could not be fetched from a JWKS URL or a key URL template.
#[derive(Debug, thiserror::Error)]
pub enum KeyFetchError {
    /// The request failed: connection refused, DNS, TLS, timeout.
    #[error("GET {url}: {reason}")]
    Request {
        /// The URL fetched.
        url: String,
        /// The error with its causes, e.g. `error sending request: ... Connection refused`.
        reason: String,
        /// reqwest's error.
        source: reqwest::Error,
    },
    /// The server answered with a status other than 2xx (and other than 404 for a key URL).
    #[error("GET {url}: HTTP status {status}")]
    Status {
        /// The URL fetched.
        url: String,
        /// The status received.
        status: StatusCode,
    },
    /// The body was longer than `max_response_bytes`.
    #[error("GET {url}: response larger than {limit} bytes")]
    TooLarge {
        /// The URL fetched.
        url: String,
        /// The configured limit.
        limit: usize,
    },
    /// The body is not a PEM key, a JWK or a JWKS.
    #[error("GET {url}: {reason}")]
    Parse {
        /// The URL fetched.
        url: String,
        /// What could not be parsed.
        reason: String,
    },
}

/// Why a bearer token was refused. All of these mean 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts, bad JSON, or an unknown `alg` such as `none`.
    #[error("malformed token")]
    Malformed,
    /// The token is longer than this crate accepts.
    #[error("token too long")]
    TooLong,
    /// The header's `alg` is not one of the configured algorithms (HS256 lands here).
    #[error("algorithm {0} not accepted")]
    AlgorithmNotAccepted(String),
    /// The `alg` does not fit the key found for the `kid` (e.g. ES256 with an RSA key).
    #[error("algorithm {alg} does not fit key {kid:?}")]
    AlgorithmKeyMismatch {
        /// The header's algorithm.
        alg: String,
        /// The key ID.
        kid: String,
    },
    /// No `kid` header and no `default_kid` configured.
    #[error("token has no kid")]
    MissingKid,
    /// No key with this ID is known, even after a permitted refetch.
    #[error("unknown key id {0:?}")]
    UnknownKid(String),
    /// The signature does not verify with the key.
    #[error("bad signature")]
    BadSignature,
    /// `exp` is in the past (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// `iat` is in the future (beyond the leeway).
    #[error("token issued in the future")]
    IssuedInFuture,
    /// `iss` is not one of the configured issuers.
    #[error("issuer not accepted")]
    Issuer,
    /// `aud` names none of the configured audiences.
    #[error("audience not accepted")]
    Audience,
    /// A claim that must be present is not.
    #[error("missing claim {0}")]
    MissingClaim(String),
    /// None of the subject claims holds a non-empty string.
    #[error("no subject (sub) in token")]
    NoSubject,
}

/// Why a request was refused, with the HTTP status it maps to ([`AuthError::status`]).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header where one is required. 401.
    #[error("missing credentials")]
    MissingCredentials,
    /// The `Authorization` header cannot be parsed. 401.
    #[error("malformed Authorization header: {0}")]
    MalformedHeader(&'static str),
    /// A scheme this endpoint does not take (e.g. a bearer token where only Basic is
    /// configured, the talaria#568 case). 401.
    #[error("{0} credentials are not accepted here")]
    SchemeNotAccepted(&'static str),
    /// Basic credentials that match no configured user. 401.
    #[error("invalid basic credentials")]
    BadBasicCredentials,
    /// A bearer token that does not validate. 401.
    #[error("invalid token: {0}")]
    InvalidToken(#[from] TokenError),
    /// The signing key could not be fetched, so the token could not be checked. 503: the
    /// credentials may well be good, and a 401 would send clients for new tokens in vain.
    #[error("signing key unavailable: {0}")]
    KeyUnavailable(#[from] KeyFetchError),
    /// Authenticated, but not allowed to do this. 403.
    #[error("forbidden: {0}")]
    Forbidden(String),
}

impl AuthError {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::MissingCredentials
            | AuthError::MalformedHeader(_)
            | AuthError::SchemeNotAccepted(_)
            | AuthError::BadBasicCredentials
            | AuthError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            AuthError::KeyUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AuthError::Forbidden(_) => StatusCode::FORBIDDEN,
        }
    }
}
