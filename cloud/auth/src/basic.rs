//! HTTP Basic credentials checked against a configured list.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use subtle::ConstantTimeEq;

use crate::error::{AuthError, ConfigError};
use crate::principal::Principal;

/// The configured Basic users. Each entry is kept as the decoded `user:pass` bytes.
#[derive(Clone)]
pub(crate) struct BasicAuthenticator {
    credentials: Vec<Vec<u8>>,
}

// Credentials must not reach logs through `{:?}`.
impl std::fmt::Debug for BasicAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuthenticator")
            .field("users", &self.credentials.len())
            .finish()
    }
}

impl BasicAuthenticator {
    /// Accepts entries written as `user:pass` or as base64 of `user:pass` (the Go configs'
    /// `authHeader` / `inbound.authKey` form). Base64 has no `:`, so a colon decides.
    pub(crate) fn new(entries: &[String]) -> Result<BasicAuthenticator, ConfigError> {
        let credentials = entries
            .iter()
            .enumerate()
            .map(|(index, entry)| {
                let entry = entry.trim();
                let decoded = if entry.contains(':') {
                    entry.as_bytes().to_vec()
                } else {
                    STANDARD
                        .decode(entry)
                        .map_err(|_| ConfigError::BasicCredential {
                            index,
                            reason: "neither user:pass nor base64 of user:pass",
                        })?
                };
                match decoded.iter().position(|&b| b == b':') {
                    Some(0) => Err(ConfigError::BasicCredential {
                        index,
                        reason: "empty user name",
                    }),
                    Some(_) => Ok(decoded),
                    None => Err(ConfigError::BasicCredential {
                        index,
                        reason: "decoded value has no ':' between user and password",
                    }),
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(BasicAuthenticator { credentials })
    }

    /// Checks the base64 credential of a `Basic` header.
    ///
    /// Every configured entry is compared, without stopping at a match, in constant time for
    /// equal lengths, so timing reveals at most the length of the pair that was tried.
    pub(crate) fn authenticate(&self, encoded: &str) -> Result<Principal, AuthError> {
        let decoded = STANDARD
            .decode(encoded)
            .map_err(|_| AuthError::MalformedHeader("basic credentials are not base64"))?;
        let colon = decoded
            .iter()
            .position(|&b| b == b':')
            .ok_or(AuthError::MalformedHeader("basic credentials have no ':'"))?;
        let mut matched = subtle::Choice::from(0);
        for known in &self.credentials {
            matched |= known.as_slice().ct_eq(&decoded);
        }
        if !bool::from(matched) {
            return Err(AuthError::BadBasicCredentials);
        }
        let user = String::from_utf8(decoded[..colon].to_vec())
            .map_err(|_| AuthError::MalformedHeader("basic user name is not UTF-8"))?;
        Ok(Principal::basic(user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn both_config_forms() {
        let auth = BasicAuthenticator::new(&entries(&["dXNlcjpwYXNz", "admin:s3cr:et"])).unwrap();
        // user:pass
        assert_eq!(auth.authenticate("dXNlcjpwYXNz").unwrap().subject, "user");
        // admin:s3cr:et — the password may itself hold colons
        let admin = STANDARD.encode("admin:s3cr:et");
        assert_eq!(auth.authenticate(&admin).unwrap().subject, "admin");
        let wrong = STANDARD.encode("user:nope");
        assert!(matches!(
            auth.authenticate(&wrong),
            Err(AuthError::BadBasicCredentials)
        ));
    }

    #[test]
    fn bad_config_entries() {
        for bad in ["not base64!", "bm9jb2xvbg==", ":pass"] {
            assert!(
                BasicAuthenticator::new(&entries(&[bad])).is_err(),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn malformed_headers() {
        let auth = BasicAuthenticator::new(&entries(&["user:pass"])).unwrap();
        assert!(matches!(
            auth.authenticate("%%%"),
            Err(AuthError::MalformedHeader(_))
        ));
        assert!(matches!(
            auth.authenticate(&STANDARD.encode("nocolon")),
            Err(AuthError::MalformedHeader(_))
        ));
    }

    #[test]
    fn debug_hides_credentials() {
        let auth = BasicAuthenticator::new(&entries(&["user:pass"])).unwrap();
        assert!(!format!("{auth:?}").contains("pass"));
    }
}
