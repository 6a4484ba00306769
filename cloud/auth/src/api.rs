//! The two entry points: [`ApiAuth`] for API routes and [`DeviceTokenValidator`] for the device
//! connect route. They are built from separate configs with separate keys, so a device token
//! is never accepted on an API route (talaria#568) and an API token never on the device route.

use std::sync::Arc;

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
use tracing::warn;

use crate::basic::BasicAuthenticator;
use crate::caps::CapabilityChecker;
use crate::config::{ApiAuthConfig, DeviceAuthConfig};
use crate::error::{AuthError, ConfigError};
use crate::jwt::JwtValidator;
use crate::principal::{Principal, PrincipalKind};

/// Credentials from an `Authorization` header.
enum Credentials<'a> {
    Basic(&'a str),
    Bearer(&'a str),
}

/// Reads the `Authorization` header: `None` when absent. Schemes are case-insensitive
/// (RFC 7235); more than one header is refused rather than guessing which counts.
fn credentials(headers: &HeaderMap) -> Result<Option<Credentials<'_>>, AuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::MalformedHeader(
            "more than one Authorization header",
        ));
    }
    let value = value
        .to_str()
        .map_err(|_| AuthError::MalformedHeader("not visible ASCII"))?
        .trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if rest.is_empty() {
        return Err(AuthError::MalformedHeader(
            "no credentials after the scheme",
        ));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        Ok(Some(Credentials::Basic(rest)))
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Ok(Some(Credentials::Bearer(rest)))
    } else {
        Err(AuthError::MalformedHeader("unsupported scheme"))
    }
}

/// Authentication and authorization of API requests. Cheap to clone (shared state).
#[derive(Clone)]
pub struct ApiAuth {
    inner: Arc<ApiInner>,
}

struct ApiInner {
    basic: Option<BasicAuthenticator>,
    jwt: Option<JwtValidator>,
    caps: Option<CapabilityChecker>,
    challenges: Vec<HeaderValue>,
}

impl std::fmt::Debug for ApiAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiAuth")
            .field("basic", &self.inner.basic)
            .field("jwt", &self.inner.jwt.is_some())
            .field("capabilities", &self.inner.caps)
            .finish()
    }
}

impl ApiAuth {
    /// Builds the API authenticator. Needs a tokio runtime when `jwt.keys.jwks_url` is set.
    ///
    /// With no credentials configured ([`ApiAuthConfig::is_open`]) it lets every request
    /// through, and logs a warning saying so.
    pub fn from_config(config: &ApiAuthConfig) -> Result<ApiAuth, ConfigError> {
        let basic = if config.basic.is_empty() {
            None
        } else {
            Some(BasicAuthenticator::new(&config.basic)?)
        };
        let jwt = config
            .jwt
            .as_ref()
            .map(|jwt| JwtValidator::new(jwt, PrincipalKind::Jwt))
            .transpose()?;
        let caps = config
            .capabilities
            .as_ref()
            .map(CapabilityChecker::new)
            .transpose()?;
        if config.is_open() {
            if caps.is_some() {
                return Err(ConfigError::Invalid {
                    field: "capabilities",
                    reason: "set, but no credentials (basic, jwt) are configured to carry them"
                        .to_owned(),
                });
            }
            warn!("API authentication is OFF: no basic credentials and no jwt configured; every request is allowed");
        }

        let realm = &config.realm;
        if realm.contains(['"', '\\']) || realm.chars().any(char::is_control) {
            return Err(ConfigError::Invalid {
                field: "realm",
                reason: "must not contain quotes, backslashes or control characters".to_owned(),
            });
        }
        let mut challenges = Vec::new();
        for (enabled, scheme) in [(basic.is_some(), "Basic"), (jwt.is_some(), "Bearer")] {
            if enabled {
                let value = HeaderValue::from_str(&format!("{scheme} realm=\"{realm}\"")).map_err(
                    |_| ConfigError::Invalid {
                        field: "realm",
                        reason: "not a valid header value".to_owned(),
                    },
                )?;
                challenges.push(value);
            }
        }
        Ok(ApiAuth {
            inner: Arc::new(ApiInner {
                basic,
                jwt,
                caps,
                challenges,
            }),
        })
    }

    /// Whether any credentials are checked; false means every request is allowed.
    pub fn is_enabled(&self) -> bool {
        self.inner.basic.is_some() || self.inner.jwt.is_some()
    }

    /// Authenticates a request from its headers: `Ok(None)` only when auth is off.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Option<Principal>, AuthError> {
        if !self.is_enabled() {
            return Ok(None);
        }
        let principal = match credentials(headers)? {
            None => return Err(AuthError::MissingCredentials),
            Some(Credentials::Basic(encoded)) => match &self.inner.basic {
                Some(basic) => basic.authenticate(encoded)?,
                None => return Err(AuthError::SchemeNotAccepted("Basic")),
            },
            Some(Credentials::Bearer(token)) => match &self.inner.jwt {
                Some(jwt) => jwt.validate(token).await?,
                None => return Err(AuthError::SchemeNotAccepted("Bearer")),
            },
        };
        Ok(Some(principal))
    }

    /// Authorizes an authenticated principal for `method` on `path` (the capability check,
    /// when configured). `Err` is always [`AuthError::Forbidden`].
    pub fn authorize(
        &self,
        principal: &Principal,
        method: &str,
        path: &str,
    ) -> Result<(), AuthError> {
        match &self.inner.caps {
            Some(caps) => caps.check(principal, method, path),
            None => Ok(()),
        }
    }

    /// [`authenticate`](Self::authenticate) then [`authorize`](Self::authorize).
    pub async fn check(
        &self,
        method: &str,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<Option<Principal>, AuthError> {
        let principal = self.authenticate(headers).await?;
        if let Some(p) = &principal {
            self.authorize(p, method, path)?;
        }
        Ok(principal)
    }

    /// The `WWW-Authenticate` values sent with a 401: one per configured scheme.
    pub fn challenges(&self) -> &[HeaderValue] {
        &self.inner.challenges
    }

    /// The capability checker, when configured (for routes that check more than one path).
    pub fn capabilities(&self) -> Option<&CapabilityChecker> {
        self.inner.caps.as_ref()
    }
}

/// Validation of device tokens on the device connect route. Cheap to clone.
#[derive(Clone)]
pub struct DeviceTokenValidator {
    inner: Arc<DeviceInner>,
}

struct DeviceInner {
    jwt: Option<JwtValidator>,
    allow_missing: bool,
}

impl std::fmt::Debug for DeviceTokenValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceTokenValidator")
            .field("jwt", &self.inner.jwt.is_some())
            .field("allow_missing", &self.inner.allow_missing)
            .finish()
    }
}

impl DeviceTokenValidator {
    /// Builds the device validator. Needs a tokio runtime when `jwt.keys.jwks_url` is set.
    pub fn from_config(config: &DeviceAuthConfig) -> Result<DeviceTokenValidator, ConfigError> {
        let jwt = config
            .jwt
            .as_ref()
            .map(|jwt| JwtValidator::new(jwt, PrincipalKind::DeviceJwt))
            .transpose()?;
        if jwt.is_none() {
            warn!(
                "device authentication is OFF: no device jwt configured; every device may connect"
            );
        } else if config.allow_missing {
            warn!("devices without tokens are allowed to connect (allow_missing)");
        }
        Ok(DeviceTokenValidator {
            inner: Arc::new(DeviceInner {
                jwt,
                allow_missing: config.allow_missing,
            }),
        })
    }

    /// Validates a connect request's bearer token. `Ok(None)`: an unauthenticated device that
    /// may connect (no `Authorization` header and `allow_missing`, or no jwt configured).
    /// A header that is present must hold a valid device token, whatever `allow_missing` says.
    pub async fn validate(&self, headers: &HeaderMap) -> Result<Option<Principal>, AuthError> {
        let Some(jwt) = &self.inner.jwt else {
            return Ok(None);
        };
        match credentials(headers)? {
            None if self.inner.allow_missing => Ok(None),
            None => Err(AuthError::MissingCredentials),
            Some(Credentials::Basic(_)) => Err(AuthError::SchemeNotAccepted("Basic")),
            Some(Credentials::Bearer(token)) => Ok(Some(jwt.validate(token).await?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in value {
            h.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn header_parsing() {
        assert!(matches!(credentials(&headers(&[])), Ok(None)));
        assert!(matches!(
            credentials(&headers(&["basic  abc "])),
            Ok(Some(Credentials::Basic("abc")))
        ));
        assert!(matches!(
            credentials(&headers(&["BEARER t.o.k"])),
            Ok(Some(Credentials::Bearer("t.o.k")))
        ));
        for bad in [
            &["Bearer"][..],
            &["Bearer   "],
            &["Digest x"],
            &["Basic a", "Basic b"],
        ] {
            assert!(
                matches!(
                    credentials(&headers(bad)),
                    Err(AuthError::MalformedHeader(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn open_config_is_explicit() {
        let config = ApiAuthConfig::default();
        assert!(config.is_open());
        let auth = ApiAuth::from_config(&config).unwrap();
        assert!(!auth.is_enabled());
        assert!(auth.challenges().is_empty());
    }

    #[test]
    fn capabilities_without_credentials_refused() {
        let config = ApiAuthConfig {
            capabilities: Some(Default::default()),
            ..ApiAuthConfig::default()
        };
        assert!(ApiAuth::from_config(&config).is_err());
    }

    #[test]
    fn realm_validated() {
        let config = ApiAuthConfig {
            realm: "a\"b".into(),
            basic: vec!["u:p".into()],
            ..ApiAuthConfig::default()
        };
        assert!(ApiAuth::from_config(&config).is_err());
    }
}
