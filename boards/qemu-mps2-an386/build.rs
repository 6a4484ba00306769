//! Links with cortex-m-rt's and defmt's scripts, rejects a bad XMIDT_URL before it is baked into
//! the firmware, and turns XMIDT_CA (a PEM or DER file) into the DER the firmware embeds.

use std::{env, fs, path::PathBuf};

/// Where the board connects without XMIDT_URL: petasos's port on the host, as QEMU's user-mode
/// network shows it to the guest.
const DEFAULT_URL: &str = "ws://10.0.2.2:6400";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(out.join("memory.x"), include_bytes!("memory.x")).expect("write memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-env-changed=XMIDT_URL");
    println!("cargo:rerun-if-env-changed=XMIDT_CA");

    let url = env::var("XMIDT_URL").unwrap_or_else(|_| DEFAULT_URL.into());
    match xmidt_client_core::Endpoint::parse(&url) {
        // This board has no DNS client (xmidt-firmware's `dns` feature is off).
        Ok(e) if e.host.parse::<std::net::Ipv4Addr>().is_err() => {
            panic!("XMIDT_URL={url:?}: the host must be an IPv4 address (no DNS on this board)")
        }
        Ok(_) => {}
        Err(e) => panic!("XMIDT_URL={url:?}: {e}"),
    }
    println!("cargo:rustc-env=XMIDT_URL={url}");

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
