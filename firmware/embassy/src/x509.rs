//! The server certificate check, small enough for a microcontroller: a DER walker that reads
//! only what the check needs from X.509 certificates, ECDSA P-256 / SHA-256 signatures, a chain
//! up to the configured CA, and the host name against the leaf's subjectAltName.
//!
//! What is checked:
//! - every certificate is signed (ecdsa-with-SHA256) by the next one the server sent, the last
//!   by the configured CA; each issuer's subject equals its child's issuer field; certificates
//!   that issue others are CAs (basicConstraints);
//! - the leaf's subjectAltName holds the host: a DNS name (case-insensitive, `*.` wildcard for
//!   one leftmost label) or, for an IP literal, an iPAddress entry. The common name is not used
//!   (RFC 6125 §6.4.4; browsers ignore it too);
//! - a critical extension the check does not understand makes the certificate invalid
//!   (RFC 5280 §4.2).
//!
//! What is not: the validity period (the device has no clock), revocation, key usages, name
//! constraints (a CA that sets them critically is refused instead), RSA and other curves.

use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const BOOLEAN: u8 = 0x01;
const VERSION: u8 = 0xa0;
const EXTENSIONS: u8 = 0xa3;
const SAN_DNS: u8 = 0x82;
const SAN_IP: u8 = 0x87;

/// 1.2.840.10045.4.3.2
const ECDSA_WITH_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
/// 1.2.840.10045.2.1
const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// 1.2.840.10045.3.1.7
const PRIME256V1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// 2.5.29.x: subjectAltName 17, basicConstraints 19, keyUsage 15, extKeyUsage 37.
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
const BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
const KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
const EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];

/// Why a certificate chain was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, defmt::Format)]
pub enum CertError {
    /// Not DER, or not the X.509 shape this check reads.
    Malformed,
    /// A key or signature that is not ECDSA P-256 with SHA-256.
    Unsupported,
    /// A signature that does not verify, or names that do not chain.
    BadSignature,
    /// An issuer that is not a CA.
    NotCa,
    /// The host is not among the leaf's names.
    WrongHost,
    /// A critical extension this check does not understand.
    UnknownCritical,
    /// The server sent no certificate.
    Empty,
}

/// A DER reader over one level of TLVs.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    /// The next TLV: its tag, its contents and the whole encoding.
    fn next(&mut self) -> Result<(u8, &'a [u8], &'a [u8]), CertError> {
        let b = self.0;
        let (&tag, rest) = b.split_first().ok_or(CertError::Malformed)?;
        let (&first, rest) = rest.split_first().ok_or(CertError::Malformed)?;
        let (len, rest) = match first {
            n if n < 0x80 => (usize::from(n), rest),
            // Long form with one to three length bytes: ample for certificates.
            0x81..=0x83 => {
                let count = usize::from(first & 0x7f);
                let digits = rest.get(..count).ok_or(CertError::Malformed)?;
                let len = digits.iter().fold(0usize, |n, &d| n << 8 | usize::from(d));
                (len, &rest[count..])
            }
            _ => return Err(CertError::Malformed),
        };
        let contents = rest.get(..len).ok_or(CertError::Malformed)?;
        let header = b.len() - rest.len();
        self.0 = &rest[len..];
        Ok((tag, contents, &b[..header + len]))
    }

    /// The next TLV, which must have `tag`; its contents.
    fn expect(&mut self, tag: u8) -> Result<&'a [u8], CertError> {
        match self.next()? {
            (t, contents, _) if t == tag => Ok(contents),
            _ => Err(CertError::Malformed),
        }
    }

    fn peek_tag(&self) -> Option<u8> {
        self.0.first().copied()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What the check needs of one certificate.
struct Cert<'a> {
    /// The signed part, as encoded.
    tbs: &'a [u8],
    signature: &'a [u8],
    issuer: &'a [u8],
    subject: &'a [u8],
    key: &'a [u8],
    /// The subjectAltName's GeneralNames, if there is the extension.
    names: Option<&'a [u8]>,
    is_ca: bool,
}

impl<'a> Cert<'a> {
    fn parse(der: &'a [u8]) -> Result<Self, CertError> {
        let mut outer = Der(Der(der).expect(SEQUENCE)?);
        let (tag, tbs_contents, tbs) = outer.next()?;
        if tag != SEQUENCE {
            return Err(CertError::Malformed);
        }
        if algorithm(outer.expect(SEQUENCE)?)? != ECDSA_WITH_SHA256 {
            return Err(CertError::Unsupported);
        }
        let signature = bit_string(outer.expect(BIT_STRING)?)?;

        let mut t = Der(tbs_contents);
        if t.peek_tag() == Some(VERSION) {
            t.next()?;
        }
        t.expect(INTEGER)?;
        if algorithm(t.expect(SEQUENCE)?)? != ECDSA_WITH_SHA256 {
            return Err(CertError::Unsupported);
        }
        let (_, _, issuer) = t.next()?;
        t.expect(SEQUENCE)?; // validity: no clock to check it against
        let (_, _, subject) = t.next()?;
        let mut spki = Der(t.expect(SEQUENCE)?);
        let mut alg = Der(spki.expect(SEQUENCE)?);
        if alg.expect(OID)? != EC_PUBLIC_KEY || alg.expect(OID)? != PRIME256V1 {
            return Err(CertError::Unsupported);
        }
        let key = bit_string(spki.expect(BIT_STRING)?)?;

        let mut cert = Cert {
            tbs,
            signature,
            issuer,
            subject,
            key,
            names: None,
            is_ca: false,
        };
        while !t.is_empty() {
            let (tag, contents, _) = t.next()?;
            if tag == EXTENSIONS {
                cert.extensions(Der(contents).expect(SEQUENCE)?)?;
            }
        }
        Ok(cert)
    }

    fn extensions(&mut self, list: &'a [u8]) -> Result<(), CertError> {
        let mut list = Der(list);
        while !list.is_empty() {
            let mut ext = Der(list.expect(SEQUENCE)?);
            let id = ext.expect(OID)?;
            let critical = if ext.peek_tag() == Some(BOOLEAN) {
                ext.expect(BOOLEAN)? != [0]
            } else {
                false
            };
            let value = ext.expect(OCTET_STRING)?;
            if id == SUBJECT_ALT_NAME {
                self.names = Some(Der(value).expect(SEQUENCE)?);
            } else if id == BASIC_CONSTRAINTS {
                let mut bc = Der(Der(value).expect(SEQUENCE)?);
                self.is_ca = bc.peek_tag() == Some(BOOLEAN) && bc.expect(BOOLEAN)? != [0];
            } else if critical && id != KEY_USAGE && id != EXT_KEY_USAGE {
                return Err(CertError::UnknownCritical);
            }
        }
        Ok(())
    }

    /// Whether `issuer` signed this certificate.
    fn signed_by(&self, issuer: &Cert<'_>) -> Result<(), CertError> {
        if self.issuer != issuer.subject {
            return Err(CertError::BadSignature);
        }
        verify(issuer.key, self.tbs, self.signature)
    }

    /// Whether `host` is one of the names of this certificate.
    fn names(&self, host: &str) -> bool {
        let Some(names) = self.names else {
            return false;
        };
        let ip = host.parse::<core::net::IpAddr>().ok();
        let mut names = Der(names);
        while let Ok((tag, value, _)) = names.next() {
            let matched = match (tag, ip) {
                (SAN_IP, Some(core::net::IpAddr::V4(v4))) => value == v4.octets(),
                (SAN_IP, Some(core::net::IpAddr::V6(v6))) => value == v6.octets(),
                (SAN_DNS, None) => dns_match(value, host),
                _ => false,
            };
            if matched {
                return true;
            }
        }
        false
    }
}

/// The algorithm OID of an AlgorithmIdentifier's contents.
fn algorithm(contents: &[u8]) -> Result<&[u8], CertError> {
    Der(contents).expect(OID)
}

/// A BIT STRING's bits, which must be whole bytes.
fn bit_string(contents: &[u8]) -> Result<&[u8], CertError> {
    match contents.split_first() {
        Some((0, bits)) => Ok(bits),
        _ => Err(CertError::Malformed),
    }
}

/// An ECDSA P-256 signature (DER `SEQUENCE { r, s }`) over `message` by the SEC1 `key`.
pub fn verify(key: &[u8], message: &[u8], signature: &[u8]) -> Result<(), CertError> {
    let key = VerifyingKey::from_sec1_bytes(key).map_err(|_| CertError::Unsupported)?;
    let mut seq = Der(Der(signature).expect(SEQUENCE)?);
    let mut rs = [0u8; 64];
    for half in rs.chunks_mut(32) {
        // A positive INTEGER: drop its sign byte, then right-align in 32 bytes.
        let n = seq.expect(INTEGER)?;
        let n = n.strip_prefix(&[0]).unwrap_or(n);
        let start = half
            .len()
            .checked_sub(n.len())
            .ok_or(CertError::Malformed)?;
        half[start..].copy_from_slice(n);
    }
    let signature = Signature::from_slice(&rs).map_err(|_| CertError::Malformed)?;
    key.verify(message, &signature)
        .map_err(|_| CertError::BadSignature)
}

/// RFC 6125 §6.4: exact (ASCII case-insensitive), or `*.rest` matching one leftmost label.
fn dns_match(pattern: &[u8], host: &str) -> bool {
    let host = host.as_bytes();
    if let Some(rest) = pattern.strip_prefix(b"*.") {
        // At least two labels after the wildcard, so `*.com` matches nothing.
        let Some(dot) = host.iter().position(|&b| b == b'.') else {
            return false;
        };
        return dot > 0 && rest.contains(&b'.') && rest.eq_ignore_ascii_case(&host[dot + 1..]);
    }
    pattern.eq_ignore_ascii_case(host)
}

/// Checks the chain the server sent (`chain[0]` the leaf) against `ca` and `host`; the leaf's
/// public key (SEC1) for the handshake signature.
pub fn check_chain<'c>(
    chain: impl Iterator<Item = &'c [u8]>,
    ca: &[u8],
    host: &str,
) -> Result<&'c [u8], CertError> {
    let anchor = Cert::parse(ca)?;
    let mut chain = chain.map(Cert::parse);
    let leaf = chain.next().ok_or(CertError::Empty)??;
    if !leaf.names(host) {
        return Err(CertError::WrongHost);
    }
    let key = leaf.key;
    let mut current = leaf;
    loop {
        // Signed by the CA ends the chain, whatever else the server appended.
        if current.signed_by(&anchor).is_ok() {
            return Ok(key);
        }
        let issuer = chain.next().ok_or(CertError::BadSignature)??;
        if !issuer.is_ca {
            return Err(CertError::NotCa);
        }
        current.signed_by(&issuer)?;
        current = issuer;
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, CustomExtension, IsCa, KeyPair,
        SanType, PKCS_ECDSA_P384_SHA384,
    };

    use super::*;

    struct Ca(CertifiedIssuer<'static, KeyPair>);

    impl Ca {
        fn new(name: &str) -> Ca {
            let mut params = CertificateParams::new(Vec::<std::string::String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            Ca(CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap())
        }

        fn intermediate(&self, name: &str, is_ca: bool) -> Ca {
            let mut params = CertificateParams::new(Vec::<std::string::String>::new()).unwrap();
            if is_ca {
                params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            }
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            Ca(CertifiedIssuer::signed_by(params, KeyPair::generate().unwrap(), &self.0).unwrap())
        }

        fn der(&self) -> Vec<u8> {
            self.0.der().to_vec()
        }

        fn leaf(&self, names: &[SanType]) -> Vec<u8> {
            self.leaf_with(names, |_| {})
        }

        fn leaf_with(
            &self,
            names: &[SanType],
            tune: impl FnOnce(&mut CertificateParams),
        ) -> Vec<u8> {
            let mut params = CertificateParams::new(Vec::<std::string::String>::new()).unwrap();
            params.subject_alt_names = names.to_vec();
            tune(&mut params);
            params
                .signed_by(&KeyPair::generate().unwrap(), &self.0)
                .unwrap()
                .der()
                .to_vec()
        }
    }

    fn dns(name: &str) -> SanType {
        SanType::DnsName(name.try_into().unwrap())
    }

    fn check(chain: &[&Vec<u8>], ca: &Ca, host: &str) -> Result<(), CertError> {
        check_chain(chain.iter().map(|c| c.as_slice()), &ca.der(), host).map(|_| ())
    }

    #[test]
    fn leaf_signed_by_the_ca_for_its_names() {
        let ca = Ca::new("ca");
        let leaf = ca.leaf(&[
            dns("talaria.example.com"),
            dns("*.xmidt.example.com"),
            SanType::IpAddress("10.0.2.2".parse().unwrap()),
            SanType::IpAddress("::1".parse().unwrap()),
        ]);
        for host in [
            "talaria.example.com",
            "TALARIA.example.COM",
            "t1.xmidt.example.com",
            "10.0.2.2",
            "::1",
        ] {
            assert_eq!(check(&[&leaf], &ca, host), Ok(()), "{host}");
        }
        for host in [
            "example.com",
            "a.b.xmidt.example.com",
            "xmidt.example.com",
            "10.0.2.3",
            "127.0.0.1",
        ] {
            assert_eq!(
                check(&[&leaf], &ca, host),
                Err(CertError::WrongHost),
                "{host}"
            );
        }
        // The root appended to the chain changes nothing.
        assert_eq!(check(&[&leaf, &ca.der()], &ca, "10.0.2.2"), Ok(()));
        // The leaf key is returned for the handshake signature.
        let key = check_chain([leaf.as_slice()].into_iter(), &ca.der(), "10.0.2.2").unwrap();
        assert_eq!(key.len(), 65);
    }

    #[test]
    fn ip_addresses_match_ip_entries_only() {
        let ca = Ca::new("ca");
        // A DNS entry spelled like an address is not an address (RFC 6125).
        let leaf = ca.leaf(&[dns("10.0.2.2")]);
        assert_eq!(check(&[&leaf], &ca, "10.0.2.2"), Err(CertError::WrongHost));
        // Without subjectAltName there is no name at all (the CN is not used).
        let leaf = ca.leaf_with(&[], |p| {
            p.distinguished_name
                .push(rcgen::DnType::CommonName, "localhost")
        });
        assert_eq!(check(&[&leaf], &ca, "localhost"), Err(CertError::WrongHost));
    }

    #[test]
    fn another_ca_is_refused() {
        let ca = Ca::new("ca");
        let stranger = Ca::new("ca");
        let leaf = stranger.leaf(&[dns("localhost")]);
        assert_eq!(
            check(&[&leaf], &ca, "localhost"),
            Err(CertError::BadSignature)
        );
        // Even when the stranger's certificate is sent along.
        assert_eq!(
            check(&[&leaf, &stranger.der()], &ca, "localhost"),
            Err(CertError::BadSignature)
        );
    }

    #[test]
    fn intermediates_chain_up_and_must_be_cas() {
        let ca = Ca::new("root");
        let inter = ca.intermediate("intermediate", true);
        let leaf = inter.leaf(&[dns("localhost")]);
        assert_eq!(check(&[&leaf, &inter.der()], &ca, "localhost"), Ok(()));
        assert_eq!(
            check(&[&leaf, &inter.der(), &ca.der()], &ca, "localhost"),
            Ok(())
        );
        // The intermediate missing: nothing links the leaf to the root.
        assert_eq!(
            check(&[&leaf], &ca, "localhost"),
            Err(CertError::BadSignature)
        );
        // A leaf certificate cannot issue others.
        let not_ca = ca.intermediate("not a ca", false);
        let leaf = not_ca.leaf(&[dns("localhost")]);
        assert_eq!(
            check(&[&leaf, &not_ca.der()], &ca, "localhost"),
            Err(CertError::NotCa)
        );
    }

    #[test]
    fn tampering_and_unknown_critical_extensions_are_refused() {
        let ca = Ca::new("ca");
        let mut leaf = ca.leaf(&[dns("localhost")]);
        // Flip a byte inside the signed part (the end of the SAN list is inside the TBS).
        let at = leaf.windows(9).position(|w| w == b"localhost").unwrap();
        leaf[at] = b'L';
        assert_eq!(
            check(&[&leaf], &ca, "Localhost"),
            Err(CertError::BadSignature)
        );

        let leaf = ca.leaf_with(&[dns("localhost")], |p| {
            let mut ext =
                CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 99999, 1], std::vec![5, 0]);
            ext.set_criticality(true);
            p.custom_extensions.push(ext);
        });
        assert_eq!(
            check(&[&leaf], &ca, "localhost"),
            Err(CertError::UnknownCritical)
        );
    }

    #[test]
    fn other_algorithms_and_garbage_are_refused() {
        let mut params = CertificateParams::new(std::vec!["localhost".into()]).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
        let p384 = params.self_signed(&key).unwrap().der().to_vec();
        let ca = Ca::new("ca");
        assert_eq!(
            check_chain([p384.as_slice()].into_iter(), &ca.der(), "localhost").map(|_| ()),
            Err(CertError::Unsupported)
        );
        let leaf = ca.leaf(&[dns("localhost")]);
        for cut in [0, 1, 10, leaf.len() / 2, leaf.len() - 1] {
            assert_eq!(
                check_chain([&leaf[..cut]].into_iter(), &ca.der(), "localhost").map(|_| ()),
                Err(CertError::Malformed),
                "cut at {cut}"
            );
        }
        assert_eq!(
            check_chain(core::iter::empty(), &ca.der(), "localhost").map(|_| ()),
            Err(CertError::Empty)
        );
        assert_eq!(
            check_chain(
                [leaf.as_slice()].into_iter(),
                b"not a certificate",
                "localhost"
            )
            .map(|_| ()),
            Err(CertError::Malformed)
        );
    }

    #[test]
    fn wildcards_need_a_label_and_two_more() {
        assert!(dns_match(b"*.example.com", "a.example.com"));
        assert!(!dns_match(b"*.example.com", ".example.com"));
        assert!(!dns_match(b"*.com", "example.com"));
        assert!(!dns_match(b"*.example.com", "example.com"));
        assert!(!dns_match(b"a*.example.com", "ab.example.com"));
    }
}
