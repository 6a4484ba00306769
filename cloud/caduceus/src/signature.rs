//! The two signatures on every delivery to a webhook with a secret:
//! - `X-Webpa-Signature: sha1=<hex HMAC-SHA1(secret, body)>`, what Go caduceus sends;
//! - Standard Webhooks (`webhook-id`, `webhook-timestamp`,
//!   `webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`), which
//!   binds the time and message id too, so receivers can refuse replays.
//!
//! The Standard Webhooks key is the base64-decoded part of a `whsec_...` secret, as that
//! specification defines; any other secret is used as its UTF-8 bytes, as for the SHA-1
//! signature.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::Sha256;

/// A webhook's secret, ready to sign with.
#[derive(Clone)]
pub struct Secret {
    raw: Vec<u8>,
    standard_key: Vec<u8>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// `None` for an empty secret: nothing is signed.
    pub fn new(secret: &str) -> Option<Secret> {
        if secret.is_empty() {
            return None;
        }
        let standard_key = secret
            .strip_prefix("whsec_")
            .and_then(|key| BASE64.decode(key).ok())
            .filter(|key| !key.is_empty())
            .unwrap_or_else(|| secret.as_bytes().to_vec());
        Some(Secret {
            raw: secret.as_bytes().to_vec(),
            standard_key,
        })
    }

    /// The `X-Webpa-Signature` value.
    pub fn webpa(&self, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha1>::new_from_slice(&self.raw).expect("HMAC takes keys of any size");
        mac.update(body);
        format!("sha1={}", hex::encode(mac.finalize().into_bytes()))
    }

    /// The `webhook-signature` value for message `id` sent at `timestamp` (Unix seconds).
    pub fn standard(&self, id: &str, timestamp: u64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.standard_key)
            .expect("HMAC takes keys of any size");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_published_example() {
        // The example in the Standard Webhooks specification.
        let secret = Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            secret.standard(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn webpa_signature_is_hex_hmac_sha1() {
        // RFC 2202 test case 2.
        let secret = Secret::new("Jefe").unwrap();
        assert_eq!(
            secret.webpa(b"what do ya want for nothing?"),
            "sha1=effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }

    #[test]
    fn plain_secrets_key_both_signatures_with_their_bytes() {
        let secret = Secret::new("s3cr3t").unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cr3t").unwrap();
        mac.update(b"id.5.body");
        let expected = format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()));
        assert_eq!(secret.standard("id", 5, b"body"), expected);
        assert!(Secret::new("").is_none());
    }
}
