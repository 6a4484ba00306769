//! The device token from a themis-style issuer (client-spec §3.4.1): a GET with the `X-Midt-*`
//! headers the core writes, a client certificate when given, three tries (any address family,
//! then IPv4, then IPv6) as parodus does. The body of a 200 is the token.
//!
//! parodus never refreshed a token. Here a token whose JWT payload carries `exp` is fetched
//! again when 90% of its lifetime has passed, and the new one is used from the next connect.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use base64::Engine;
use serde_json::Value;

use crate::error::Error;

/// parodus's curl timeout per try.
const TRY_TIMEOUT: Duration = Duration::from_secs(25);
/// parodus reads at most 4095 bytes of token.
const MAX_BODY: usize = 4095;
/// The soonest a refresh happens, so an almost-expired token does not make a busy loop.
const MIN_REFRESH: Duration = Duration::from_secs(10);

/// Why a fetch failed.
#[derive(Debug)]
pub(crate) enum FetchError {
    /// A non-200 answer, with its `Retry-After` seconds if it gave them.
    Status(u16, Option<Duration>),
    /// DNS, TCP, TLS or a too-long body.
    Failed(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Status(s, _) => write!(f, "HTTP {s}"),
            FetchError::Failed(e) => f.write_str(e),
        }
    }
}

/// HTTP clients for the three tries.
pub(crate) struct TokenClient {
    tries: Vec<reqwest::Client>,
}

impl TokenClient {
    /// `tls` is used for https issuers (mTLS when it carries a client certificate).
    pub fn new(tls: Option<rustls::ClientConfig>) -> Result<Self, Error> {
        let unspecified = [
            None,
            Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
        ];
        let tries = unspecified
            .into_iter()
            .map(|local| {
                let mut b = reqwest::Client::builder()
                    .timeout(TRY_TIMEOUT)
                    .redirect(reqwest::redirect::Policy::none())
                    .local_address(local);
                if let Some(tls) = tls.clone() {
                    b = b.tls_backend_preconfigured(tls);
                }
                b.build()
                    .map_err(|e| Error::Tls(format!("token client: {e}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(TokenClient { tries })
    }

    pub async fn fetch(
        &self,
        url: &str,
        headers: &[(String, String)],
    ) -> Result<String, FetchError> {
        let mut last = FetchError::Failed("no try made".into());
        for client in &self.tries {
            let mut request = client.get(url);
            for (name, value) in headers {
                request = request.header(name.as_str(), value.as_str());
            }
            match attempt(request).await {
                Ok(token) => return Ok(token),
                // The issuer answered: another address family will not change its mind.
                Err(e @ FetchError::Status(..)) => return Err(e),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

async fn attempt(request: reqwest::RequestBuilder) -> Result<String, FetchError> {
    let mut response = request
        .send()
        .await
        .map_err(|e| FetchError::Failed(e.to_string()))?;
    let status = response.status().as_u16();
    if status != 200 {
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        return Err(FetchError::Status(status, retry_after));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| FetchError::Failed(e.to_string()))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(FetchError::Failed("token longer than 4095 bytes".into()));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body)
        .map(|t| t.trim().to_string())
        .map_err(|_| FetchError::Failed("token is not text".into()))
}

/// When to fetch a fresh token: after 90% of the lifetime from the JWT's `iat` (or from now)
/// to its `exp`. `None` for a token that is not a JWT with an `exp`.
pub(crate) fn refresh_after(token: &str, now_unix: u64) -> Option<Duration> {
    let payload = token.split('.').nth(1)?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&json).ok()?;
    let exp = claims.get("exp")?.as_u64()?;
    let start = claims
        .get("iat")
        .and_then(Value::as_u64)
        .filter(|&iat| iat <= exp)
        .unwrap_or(now_unix.min(exp));
    let refresh_at = exp - (exp - start) / 10;
    Some(Duration::from_secs(refresh_at.saturating_sub(now_unix)).max(MIN_REFRESH))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            b64.encode(r#"{"alg":"RS256"}"#),
            b64.encode(claims)
        )
    }

    #[test]
    fn refresh_at_ninety_percent() {
        // Issued at 1000, valid 24 h: refreshed 2.4 h before expiry.
        let t = jwt(r#"{"iat":1000,"exp":87400}"#);
        assert_eq!(refresh_after(&t, 1000), Some(Duration::from_secs(77_760)));
        assert_eq!(refresh_after(&t, 50_000), Some(Duration::from_secs(28_760)));
        // Past the point, or expired: soon, never at once.
        assert_eq!(refresh_after(&t, 80_000), Some(MIN_REFRESH));
        assert_eq!(refresh_after(&t, 90_000), Some(MIN_REFRESH));
        // No iat: the lifetime counts from now.
        let t = jwt(r#"{"exp":2000}"#);
        assert_eq!(refresh_after(&t, 1000), Some(Duration::from_secs(900)));
        // Nothing to go by.
        assert_eq!(refresh_after(&jwt(r#"{"iat":1}"#), 0), None);
        assert_eq!(refresh_after(&jwt(r#"{"exp":"soon"}"#), 0), None);
        assert_eq!(refresh_after("opaque-token", 0), None);
        assert_eq!(refresh_after("a.!!!.c", 0), None);
    }
}
