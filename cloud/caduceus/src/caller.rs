//! Who is calling the webhook API: the owner and partners a registration gets, and what a
//! listing shows.

use axum::http::HeaderMap;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use crate::config::RegistrationConfig;

/// The header ancla reads partner ids from for Basic credentials (comma-separated, repeatable).
pub const PARTNER_IDS_HEADER: &str = "x-xmidt-partner-ids";

/// The identity behind a webhook request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// Recorded as the registration's owner.
    pub owner: String,
    /// Given to registrations; decides which webhooks a listing or deletion may touch.
    pub partner_ids: Vec<String>,
}

impl Caller {
    /// The caller as ancla sees it. With an authenticated `principal` (the API auth layer put
    /// it there): owner its subject, partners its token's `allowedResources.allowedPartners`.
    /// Otherwise, or when the token names no partners, as ancla treats Basic credentials:
    /// partners from `X-Xmidt-Partner-Ids` (or `config.default_partner_ids` when absent), owner
    /// the Basic user name.
    pub fn identify(
        headers: &HeaderMap,
        principal: Option<&xmidt_auth::Principal>,
        config: &RegistrationConfig,
    ) -> Caller {
        if let Some(p) = principal.filter(|p| !p.partner_ids.is_empty()) {
            let mut partner_ids = p.partner_ids.clone();
            partner_ids.sort();
            partner_ids.dedup();
            return Caller {
                owner: p.subject.clone(),
                partner_ids,
            };
        }
        let mut partner_ids: Vec<String> = headers
            .get_all(PARTNER_IDS_HEADER)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect();
        if partner_ids.is_empty() {
            partner_ids = config.default_partner_ids.clone();
        }
        partner_ids.sort();
        partner_ids.dedup();
        Caller {
            owner: principal
                .map(|p| p.subject.clone())
                .or_else(|| basic_user(headers))
                .unwrap_or_default(),
            partner_ids,
        }
    }
}

fn basic_user(headers: &HeaderMap) -> Option<String> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, credentials) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = BASE64.decode(credentials.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    Some(decoded.split_once(':')?.0.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partners_and_owner() {
        let mut headers = HeaderMap::new();
        headers.append(PARTNER_IDS_HEADER, "comcast, sky".parse().unwrap());
        headers.append(PARTNER_IDS_HEADER, "cox".parse().unwrap());
        headers.insert("authorization", "Basic dXNlcjpwYXNz".parse().unwrap());
        let caller = Caller::identify(&headers, None, &RegistrationConfig::default());
        assert_eq!(caller.partner_ids, ["comcast", "cox", "sky"]);
        assert_eq!(caller.owner, "user");

        let config = RegistrationConfig {
            default_partner_ids: vec!["*".into()],
            ..RegistrationConfig::default()
        };
        let anonymous = Caller::identify(&HeaderMap::new(), None, &config);
        assert_eq!(anonymous.partner_ids, ["*"]);
        assert_eq!(anonymous.owner, "");
    }
}
