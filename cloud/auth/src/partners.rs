//! The WRP partner check scytale runs before forwarding a message (cloud-spec §6.2 step 3).
//!
//! The caller's allowed partners are the JWT claim `allowedResources.allowedPartners`. In
//! order, the first rule that applies decides:
//!
//! | # | condition | enforce | monitor |
//! |---|---|---|---|
//! | 1 | no principal | 500 | unchanged |
//! | 2 | principal is not an API JWT | 500 | unchanged |
//! | 3 | claim missing | 403 | unchanged |
//! | 4 | claim not a non-empty list of strings | 403 | unchanged |
//! | 5 | the WRP has no partner IDs | 400 | replaced by the allowed list |
//! | 6 | the allowed list holds `*` | accepted | accepted |
//! | 7 | every WRP partner ID is allowed | accepted | accepted |
//! | 8 | otherwise | 403 | replaced by the allowed list |
//!
//! Note rule 5 comes before the wildcard, as in scytale: even a `*` caller must name partners
//! in enforce mode. "Replaced" means the service must re-encode the WRP with the new list.

use http::StatusCode;

use crate::config::CheckMode;
use crate::principal::{allowed_partners, AllowedPartnersError, Principal, PrincipalKind};

/// Which rule decided, for logs and metrics (scytale's `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartnerReason {
    /// Rule 1.
    TokenMissing,
    /// Rule 2.
    TokenTypeMismatch,
    /// Rule 3.
    AllowedPartnersMissing,
    /// Rule 4.
    AllowedPartnersInvalid,
    /// Rule 5.
    WrpPartnersMissing,
    /// Rule 6.
    Wildcard,
    /// Rule 7.
    Match,
    /// Rule 8.
    Mismatch,
}

/// What to do with an accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartnerAction {
    /// Forward as it is.
    Unchanged,
    /// Set the WRP's `partner_ids` to this list, then forward.
    Replace(Vec<String>),
}

/// An accepted message: the action and the rule that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerDecision {
    /// What to do with the WRP.
    pub action: PartnerAction,
    /// Which rule decided.
    pub reason: PartnerReason,
}

/// A refused message (enforce mode only).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PartnerError {
    /// Which rule refused.
    pub reason: PartnerReason,
    /// 400, 403 or 500, as scytale answers.
    pub status: StatusCode,
    /// scytale's message text.
    pub message: &'static str,
}

/// Applies the partner rules to a WRP whose `partner_ids` are `wrp_partner_ids`.
pub fn check_wrp_partners(
    principal: Option<&Principal>,
    wrp_partner_ids: &[String],
    mode: CheckMode,
) -> Result<PartnerDecision, PartnerError> {
    let enforce = mode == CheckMode::Enforce;
    let refuse_or_pass = |reason, status, message| -> Result<PartnerDecision, PartnerError> {
        if enforce {
            Err(PartnerError {
                reason,
                status,
                message,
            })
        } else {
            Ok(PartnerDecision {
                action: PartnerAction::Unchanged,
                reason,
            })
        }
    };

    let Some(principal) = principal else {
        return refuse_or_pass(
            PartnerReason::TokenMissing,
            StatusCode::INTERNAL_SERVER_ERROR,
            "No JWT Token was found in context",
        );
    };
    if principal.kind != PrincipalKind::Jwt {
        return refuse_or_pass(
            PartnerReason::TokenTypeMismatch,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Token must be a JWT",
        );
    }
    let allowed = match allowed_partners(&principal.claims) {
        Ok(allowed) => allowed,
        Err(AllowedPartnersError::Missing) => {
            return refuse_or_pass(
                PartnerReason::AllowedPartnersMissing,
                StatusCode::FORBIDDEN,
                "AllowedPartners JWT claim not found",
            )
        }
        Err(AllowedPartnersError::Invalid) => {
            return refuse_or_pass(
                PartnerReason::AllowedPartnersInvalid,
                StatusCode::FORBIDDEN,
                "AllowedPartners JWT claim must be a non-empty list of strings",
            )
        }
    };

    // From here on, a monitor-mode failure corrects the message instead of passing it as is.
    let refuse_or_replace = |reason, status, message| {
        if enforce {
            Err(PartnerError {
                reason,
                status,
                message,
            })
        } else {
            Ok(PartnerDecision {
                action: PartnerAction::Replace(allowed.clone()),
                reason,
            })
        }
    };
    let accept = |reason| {
        Ok(PartnerDecision {
            action: PartnerAction::Unchanged,
            reason,
        })
    };

    if wrp_partner_ids.is_empty() {
        return refuse_or_replace(
            PartnerReason::WrpPartnersMissing,
            StatusCode::BAD_REQUEST,
            "WRP PartnerIDs field must not be empty",
        );
    }
    if allowed.iter().any(|p| p == "*") {
        return accept(PartnerReason::Wildcard);
    }
    if wrp_partner_ids.iter().all(|p| allowed.contains(p)) {
        return accept(PartnerReason::Match);
    }
    refuse_or_replace(
        PartnerReason::Mismatch,
        StatusCode::FORBIDDEN,
        "Unauthorized partners credentials in WRP message",
    )
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn jwt(claims: Value) -> Principal {
        Principal::from_claims(
            PrincipalKind::Jwt,
            "client".into(),
            claims.as_object().cloned().unwrap_or_default(),
        )
    }

    fn allowed(list: Value) -> Principal {
        jwt(json!({"allowedResources": {"allowedPartners": list}}))
    }

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    use CheckMode::{Enforce, Monitor};

    #[test]
    fn no_principal_or_not_jwt() {
        let e = check_wrp_partners(None, &ids(&["a"]), Enforce).unwrap_err();
        assert_eq!(
            (e.status, e.reason),
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                PartnerReason::TokenMissing
            )
        );
        let m = check_wrp_partners(None, &ids(&["a"]), Monitor).unwrap();
        assert_eq!(m.action, PartnerAction::Unchanged);

        let basic = Principal::basic("user".into());
        let e = check_wrp_partners(Some(&basic), &ids(&["a"]), Enforce).unwrap_err();
        assert_eq!(e.reason, PartnerReason::TokenTypeMismatch);
        let device = Principal::from_claims(
            PrincipalKind::DeviceJwt,
            "mac:1".into(),
            json!({"partner-id": "a"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        assert!(check_wrp_partners(Some(&device), &ids(&["a"]), Enforce).is_err());
    }

    #[test]
    fn claim_missing_or_invalid() {
        let e = check_wrp_partners(Some(&jwt(json!({}))), &ids(&["a"]), Enforce).unwrap_err();
        assert_eq!(
            (e.status, e.reason),
            (StatusCode::FORBIDDEN, PartnerReason::AllowedPartnersMissing)
        );
        let e = check_wrp_partners(Some(&allowed(json!([]))), &ids(&["a"]), Enforce).unwrap_err();
        assert_eq!(e.reason, PartnerReason::AllowedPartnersInvalid);
        let m = check_wrp_partners(Some(&allowed(json!([]))), &ids(&["a"]), Monitor).unwrap();
        assert_eq!(m.action, PartnerAction::Unchanged);
    }

    #[test]
    fn empty_wrp_partners() {
        let p = allowed(json!(["comcast"]));
        let e = check_wrp_partners(Some(&p), &[], Enforce).unwrap_err();
        assert_eq!(
            (e.status, e.reason),
            (StatusCode::BAD_REQUEST, PartnerReason::WrpPartnersMissing)
        );
        let m = check_wrp_partners(Some(&p), &[], Monitor).unwrap();
        assert_eq!(m.action, PartnerAction::Replace(ids(&["comcast"])));
        // Before the wildcard, as in scytale.
        let star = allowed(json!(["*"]));
        assert!(check_wrp_partners(Some(&star), &[], Enforce).is_err());
        let m = check_wrp_partners(Some(&star), &[], Monitor).unwrap();
        assert_eq!(m.action, PartnerAction::Replace(ids(&["*"])));
    }

    #[test]
    fn wildcard_subset_mismatch() {
        let star = allowed(json!(["*"]));
        let d = check_wrp_partners(Some(&star), &ids(&["anyone"]), Enforce).unwrap();
        assert_eq!(
            (d.action, d.reason),
            (PartnerAction::Unchanged, PartnerReason::Wildcard)
        );

        let p = allowed(json!(["comcast", "sky"]));
        let d = check_wrp_partners(Some(&p), &ids(&["sky", "comcast", "sky"]), Enforce).unwrap();
        assert_eq!(
            (d.action, d.reason),
            (PartnerAction::Unchanged, PartnerReason::Match)
        );

        let e = check_wrp_partners(Some(&p), &ids(&["sky", "evil"]), Enforce).unwrap_err();
        assert_eq!(
            (e.status, e.reason),
            (StatusCode::FORBIDDEN, PartnerReason::Mismatch)
        );
        assert_eq!(
            e.to_string(),
            "Unauthorized partners credentials in WRP message"
        );
        let m = check_wrp_partners(Some(&p), &ids(&["sky", "evil"]), Monitor).unwrap();
        assert_eq!(m.action, PartnerAction::Replace(ids(&["comcast", "sky"])));
    }
}
