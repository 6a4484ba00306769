//! `sha1=<hex HMAC-SHA1(secret, body)>`: what mimisbrunnr puts in `X-Codex-Signature` on its
//! deliveries, and what caduceus puts in `X-Webpa-Signature` on the events it sends here.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

fn mac(secret: &str, body: &[u8]) -> Hmac<Sha1> {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC key of any size");
    mac.update(body);
    mac
}

/// The header value for `body`. The Go mimisbrunnr signed an empty buffer instead of the body;
/// this signs the bytes sent.
pub(crate) fn sign(secret: &str, body: &[u8]) -> String {
    format!(
        "sha1={}",
        hex::encode(mac(secret, body).finalize().into_bytes())
    )
}

/// Whether `header` is `body`'s signature (compared in constant time).
pub(crate) fn verify(secret: &str, body: &[u8], header: &str) -> bool {
    let Some(digest) = header
        .strip_prefix("sha1=")
        .and_then(|h| hex::decode(h.trim()).ok())
    else {
        return false;
    };
    mac(secret, body).verify_slice(&digest).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_2202_vector_and_verification() {
        let signature = sign("Jefe", b"what do ya want for nothing?");
        assert_eq!(signature, "sha1=effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
        assert!(verify("Jefe", b"what do ya want for nothing?", &signature));
        assert!(!verify("Jefe", b"something else", &signature));
        assert!(!verify("Jefe", b"what do ya want for nothing?", "sha1=zz"));
        assert!(!verify(
            "Jefe",
            b"",
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        ));
    }
}
