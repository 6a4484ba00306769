//! Build-time configuration shared by the board crates' build scripts (each one includes this
//! file with `#[path]`, so there is one copy): the cloud URL, the CA and the device token baked
//! into the firmware.

use std::{env, fs, path::Path};

/// Everything a board's firmware is configured with at build time: XMIDT_URL
/// ([`cloud_url`] with `default_url` and `dns`), the CA ([`ca`]) and the token ([`token`]).
pub fn firmware_config(default_url: Option<&str>, dns: bool) {
    println!("cargo:rerun-if-changed=../build-support.rs");
    let out = env::var_os("OUT_DIR").expect("cargo sets OUT_DIR");
    cloud_url(default_url, dns);
    ca(Path::new(&out));
    token();
}

/// Exports XMIDT_URL to the crate (`env!("XMIDT_URL")`) after checking it with the client's own
/// parser, so a bad value fails the build instead of the board. `default` is used when XMIDT_URL
/// is not set (`None`: it must be set); `dns` says whether the board can resolve host names.
pub fn cloud_url(default: Option<&str>, dns: bool) {
    println!("cargo:rerun-if-env-changed=XMIDT_URL");
    let url = match (env::var("XMIDT_URL"), default) {
        (Ok(url), _) => url,
        (Err(_), Some(default)) => default.into(),
        (Err(_), None) => panic!(
            "set XMIDT_URL at build time: the cloud this board connects to, usually petasos \
             (e.g. XMIDT_URL=ws://192.168.1.20:6400)"
        ),
    };
    match xmidt_client_core::Endpoint::parse(&url) {
        Ok(e) if !dns && e.host.parse::<std::net::Ipv4Addr>().is_err() => {
            panic!("XMIDT_URL={url:?}: the host must be an IPv4 address (no DNS on this board)")
        }
        Ok(_) => {}
        Err(e) => panic!("XMIDT_URL={url:?}: {e}"),
    }
    println!("cargo:rustc-env=XMIDT_URL={url}");
}

/// Exports XMIDT_TOKEN to the crate (`env!("XMIDT_TOKEN")`): the device's JWT, sent as
/// `Authorization: Bearer` on every connect, or empty without XMIDT_TOKEN. Checked as the client
/// checks it (printable ASCII, at most `MAX_TOKEN` bytes), so a bad token fails the build. The
/// token is then in the image: build one per device, and keep images as secret as tokens.
pub fn token() {
    println!("cargo:rerun-if-env-changed=XMIDT_TOKEN");
    let token = env::var("XMIDT_TOKEN").unwrap_or_default();
    let token = token.trim();
    if token.len() > xmidt_client_core::MAX_TOKEN {
        panic!(
            "XMIDT_TOKEN: {} bytes, more than the client's {}",
            token.len(),
            xmidt_client_core::MAX_TOKEN
        );
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        panic!("XMIDT_TOKEN: a token is printable ASCII without spaces");
    }
    println!("cargo:rustc-env=XMIDT_TOKEN={token}");
}

/// Writes `ca.der` into `out` for `include_bytes!`: the certificate in the file XMIDT_CA names
/// (PEM or DER), or nothing without XMIDT_CA (then `wss` connections fail: verification is not
/// optional).
pub fn ca(out: &Path) {
    println!("cargo:rerun-if-env-changed=XMIDT_CA");
    let ca = match env::var("XMIDT_CA") {
        Ok(path) if !path.is_empty() => {
            println!("cargo:rerun-if-changed={path}");
            let bytes = fs::read(&path).unwrap_or_else(|e| panic!("XMIDT_CA={path}: {e}"));
            der(&bytes).unwrap_or_else(|| panic!("XMIDT_CA={path}: not a PEM or DER certificate"))
        }
        _ => Vec::new(),
    };
    fs::write(out.join("ca.der"), ca).expect("write ca.der");
}

/// The first certificate of a PEM file, or the bytes of a DER one.
fn der(bytes: &[u8]) -> Option<Vec<u8>> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        // Binary: DER starts with a SEQUENCE.
        return (bytes.first() == Some(&0x30)).then(|| bytes.to_vec());
    };
    let body = text
        .split("-----BEGIN CERTIFICATE-----")
        .nth(1)?
        .split("-----END CERTIFICATE-----")
        .next()?;
    base64_decode(body.bytes().filter(|b| !b.is_ascii_whitespace()))
}

fn base64_decode(text: impl Iterator<Item = u8>) -> Option<Vec<u8>> {
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for c in text.take_while(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}
