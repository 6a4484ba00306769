//! The authenticated caller.

use serde_json::{Map, Value};

/// How the caller authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    /// Basic credentials matching a configured user.
    Basic,
    /// A bearer JWT accepted by the API validator.
    Jwt,
    /// A bearer JWT accepted by the device validator (talaria's device route only).
    DeviceJwt,
}

/// The authenticated caller, inserted into request extensions by the API layer and returned by
/// [`crate::DeviceTokenValidator`].
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// How the caller authenticated.
    pub kind: PrincipalKind,
    /// Basic: the user name. JWT: `sub`, else `user`, else `username` (device tokens: `sub`).
    pub subject: String,
    /// Every claim of the token; empty for Basic.
    pub claims: Map<String, Value>,
    /// API tokens: `allowedResources.allowedPartners`. Device tokens: the `partner-id` claim.
    /// Empty for Basic and when the claim is absent or not strings.
    pub partner_ids: Vec<String>,
    /// The `trust` claim (themis: 0, 500 or 1000 by client certificate), if an integer.
    pub trust: Option<i64>,
    /// The `capabilities` claim's strings; empty for Basic.
    pub capabilities: Vec<String>,
}

impl Principal {
    /// A Basic-auth principal.
    pub(crate) fn basic(user: String) -> Principal {
        Principal {
            kind: PrincipalKind::Basic,
            subject: user,
            claims: Map::new(),
            partner_ids: Vec::new(),
            trust: None,
            capabilities: Vec::new(),
        }
    }

    /// A JWT principal from validated claims. `subject` was chosen by the validator.
    pub(crate) fn from_claims(
        kind: PrincipalKind,
        subject: String,
        claims: Map<String, Value>,
    ) -> Principal {
        let partner_ids = match kind {
            PrincipalKind::DeviceJwt => claims
                .get(PARTNER_ID_CLAIM)
                .and_then(Value::as_str)
                .filter(|p| !p.is_empty())
                .map(|p| vec![p.to_owned()])
                .unwrap_or_default(),
            _ => allowed_partners(&claims).unwrap_or_default(),
        };
        let trust = claims.get("trust").and_then(|v| {
            v.as_i64()
                .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
        });
        let capabilities = match claims.get("capabilities") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        Principal {
            kind,
            subject,
            claims,
            partner_ids,
            trust,
            capabilities,
        }
    }

    /// Whether the caller presented a JWT (API or device).
    pub fn is_jwt(&self) -> bool {
        matches!(self.kind, PrincipalKind::Jwt | PrincipalKind::DeviceJwt)
    }
}

/// The device-token claim that carries the device's partner (themis `partner-id`).
pub const PARTNER_ID_CLAIM: &str = "partner-id";

/// What the `allowedResources.allowedPartners` claim holds.
#[derive(Debug, PartialEq)]
pub(crate) enum AllowedPartnersError {
    /// The claim (or `allowedResources`) is absent.
    Missing,
    /// Present but not a non-empty list of strings.
    Invalid,
}

/// Reads `allowedResources.allowedPartners`: a list of strings, or (as Go's `cast` accepts) one
/// string of whitespace-separated IDs.
pub(crate) fn allowed_partners(
    claims: &Map<String, Value>,
) -> Result<Vec<String>, AllowedPartnersError> {
    let value = claims
        .get("allowedResources")
        .and_then(|r| r.get("allowedPartners"))
        .ok_or(AllowedPartnersError::Missing)?;
    let partners: Vec<String> = match value {
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or(AllowedPartnersError::Invalid)?,
        Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        _ => return Err(AllowedPartnersError::Invalid),
    };
    if partners.is_empty() {
        return Err(AllowedPartnersError::Invalid);
    }
    Ok(partners)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn api_token_fields() {
        let p = Principal::from_claims(
            PrincipalKind::Jwt,
            "client".into(),
            claims(json!({
                "sub": "client",
                "allowedResources": {"allowedPartners": ["comcast", "sky"]},
                "partner-id": "ignored-for-api-tokens",
                "trust": 1000,
                "capabilities": ["x1:webpa:api:.*:all", 7],
            })),
        );
        assert_eq!(p.partner_ids, ["comcast", "sky"]);
        assert_eq!(p.trust, Some(1000));
        assert_eq!(p.capabilities, ["x1:webpa:api:.*:all"]);
        assert!(p.is_jwt());
    }

    #[test]
    fn device_token_partner_id() {
        let p = Principal::from_claims(
            PrincipalKind::DeviceJwt,
            "mac:112233445566".into(),
            claims(json!({"partner-id": "comcast", "trust": 500.0})),
        );
        assert_eq!(p.partner_ids, ["comcast"]);
        assert_eq!(p.trust, Some(500));
    }

    #[test]
    fn allowed_partners_shapes() {
        assert_eq!(
            allowed_partners(&claims(json!({}))),
            Err(AllowedPartnersError::Missing)
        );
        assert_eq!(
            allowed_partners(&claims(
                json!({"allowedResources": {"allowedPartners": []}})
            )),
            Err(AllowedPartnersError::Invalid)
        );
        assert_eq!(
            allowed_partners(&claims(
                json!({"allowedResources": {"allowedPartners": [1]}})
            )),
            Err(AllowedPartnersError::Invalid)
        );
        assert_eq!(
            allowed_partners(&claims(
                json!({"allowedResources": {"allowedPartners": "a b"}})
            )),
            Ok(vec!["a".to_owned(), "b".to_owned()])
        );
    }
}
