//! Bearer JWT validation.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, decode_header, Algorithm, Validation};
use serde_json::{Map, Value};
use tracing::warn;

use crate::config::JwtConfig;
use crate::error::{AuthError, ConfigError, TokenError};
use crate::keys::{KeyFamily, KeyResolver};
use crate::principal::{Principal, PrincipalKind};

/// Longest token accepted; themis tokens are well under 2 KiB, and the limit bounds the work an
/// unauthenticated caller can cause.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Longest `kid` accepted; it is echoed in error messages and used as a map key.
const MAX_KID_BYTES: usize = 256;

/// Validates bearer JWTs of one kind (API or device) against one set of keys.
pub(crate) struct JwtValidator {
    keys: KeyResolver,
    algorithms: Vec<Algorithm>,
    leeway: u64,
    issuers: Vec<String>,
    audiences: Vec<String>,
    require_exp: bool,
    default_kid: Option<String>,
    kind: PrincipalKind,
}

impl JwtValidator {
    pub(crate) fn new(
        config: &JwtConfig,
        kind: PrincipalKind,
    ) -> Result<JwtValidator, ConfigError> {
        if config.algorithms.is_empty() {
            return Err(ConfigError::Algorithms("none listed".to_owned()));
        }
        if let Some(bad) = config
            .algorithms
            .iter()
            .find(|a| KeyFamily::of(**a).is_none())
        {
            return Err(ConfigError::Algorithms(format!(
                "{bad:?} refused: only RSA and ECDSA signatures are verified"
            )));
        }
        Ok(JwtValidator {
            keys: KeyResolver::new(&config.keys)?,
            algorithms: config.algorithms.clone(),
            leeway: config.leeway.as_secs(),
            issuers: config.issuers.clone(),
            audiences: config.audiences.clone(),
            require_exp: config.require_exp,
            default_kid: config.default_kid.clone(),
            kind,
        })
    }

    /// Verifies the token's signature and time claims and builds its principal.
    pub(crate) async fn validate(&self, token: &str) -> Result<Principal, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLong.into());
        }
        // Fails for an `alg` outside jsonwebtoken's list, `none` included.
        let header = decode_header(token).map_err(|_| TokenError::Malformed)?;
        // Checked before any key lookup, so an HS256 or unlisted token cannot cause a fetch.
        if !self.algorithms.contains(&header.alg) {
            return Err(TokenError::AlgorithmNotAccepted(format!("{:?}", header.alg)).into());
        }
        let kid = match (header.kid, &self.default_kid) {
            (Some(kid), _) => kid,
            (None, Some(default)) => default.clone(),
            (None, None) => return Err(TokenError::MissingKid.into()),
        };
        if kid.len() > MAX_KID_BYTES {
            return Err(TokenError::Malformed.into());
        }
        let key = self.keys.resolve(&kid).await?;
        if KeyFamily::of(header.alg) != Some(key.family) || key.alg.is_some_and(|a| a != header.alg)
        {
            return Err(TokenError::AlgorithmKeyMismatch {
                alg: format!("{:?}", header.alg),
                kid,
            }
            .into());
        }

        let data = decode::<Map<String, Value>>(token, &key.key, &self.validation(header.alg))
            .map_err(|e| map_error(e.into_kind(), &kid))?;
        let claims = data.claims;
        // jsonwebtoken does not look at `iat`; bascule refuses tokens issued in the future.
        if let Some(iat) = claims.get("iat").and_then(Value::as_f64) {
            let now = jsonwebtoken::get_current_timestamp() as f64;
            if iat > now + self.leeway as f64 {
                return Err(TokenError::IssuedInFuture.into());
            }
        }
        let subject = self.subject(&claims)?;
        Ok(Principal::from_claims(self.kind, subject, claims))
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = self.leeway;
        v.validate_exp = true;
        v.validate_nbf = true;
        let mut required = Vec::new();
        if self.require_exp {
            required.push("exp");
        }
        if !self.issuers.is_empty() {
            v.set_issuer(&self.issuers);
            required.push("iss");
        }
        if self.audiences.is_empty() {
            // Otherwise jsonwebtoken refuses every token that has an `aud` (themis sets one).
            v.validate_aud = false;
        } else {
            v.set_audience(&self.audiences);
            required.push("aud");
        }
        v.required_spec_claims = required.into_iter().map(str::to_owned).collect();
        v
    }

    /// Device tokens name the device in `sub` (talaria requires it); API tokens may use
    /// `user` or `username` instead (scytale).
    fn subject(&self, claims: &Map<String, Value>) -> Result<String, TokenError> {
        let names: &[&str] = match self.kind {
            PrincipalKind::DeviceJwt => &["sub"],
            _ => &["sub", "user", "username"],
        };
        names
            .iter()
            .filter_map(|name| claims.get(*name).and_then(Value::as_str))
            .find(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or(TokenError::NoSubject)
    }
}

fn map_error(kind: ErrorKind, kid: &str) -> TokenError {
    match kind {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidIssuer => TokenError::Issuer,
        ErrorKind::InvalidAudience => TokenError::Audience,
        ErrorKind::MissingRequiredClaim(claim) => TokenError::MissingClaim(claim),
        // The configured key itself is unusable for this algorithm (e.g. a P-384 key with
        // ES256): the caller cannot fix that, the operator must.
        ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidRsaKey(_) | ErrorKind::InvalidKeyFormat => {
            warn!(kid, error = ?kind, "verification key unusable");
            TokenError::BadSignature
        }
        _ => TokenError::Malformed,
    }
}
