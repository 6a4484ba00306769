//! Links with cortex-m-rt's, embassy-rp's (BOOT2) and defmt's scripts, checks XMIDT_URL, embeds
//! the XMIDT_CA certificate and the CYW43439's firmware from CYW43_FIRMWARE_DIR.

#[path = "../build-support.rs"]
mod build_support;

use std::{env, fs, path::PathBuf};

/// The Wi-Fi chip's firmware, its country tables (CLM) and the Pico W's NVRAM settings, as
/// embassy's `cyw43-firmware/` directory names them.
const BLOBS: [&str; 3] = ["43439A0.bin", "43439A0_clm.bin", "nvram_rp2040.bin"];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(out.join("memory.x"), include_bytes!("memory.x")).expect("write memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-link-arg-bins=--nmagic");
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    println!("cargo:rustc-link-arg-bins=-Tlink-rp.x");
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
    println!("cargo:rerun-if-changed=memory.x");

    build_support::firmware_config(None, true);

    // The blobs are Infineon's (redistributable, not ours to vendor): without them the image
    // builds, so CI can check it, but stops at boot with a message saying so.
    println!("cargo:rerun-if-env-changed=CYW43_FIRMWARE_DIR");
    let dir = env::var_os("CYW43_FIRMWARE_DIR").map(PathBuf::from);
    if dir.is_none() {
        println!(
            "cargo:warning=CYW43_FIRMWARE_DIR is not set: this image has no Wi-Fi firmware and \
             stops at boot (README.md says where to get it)"
        );
    }
    for blob in BLOBS {
        let bytes = match &dir {
            Some(dir) => {
                let path = dir.join(blob);
                println!("cargo:rerun-if-changed={}", path.display());
                fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            }
            None => Vec::new(),
        };
        fs::write(out.join(blob), bytes).expect("write a CYW43 blob");
    }
}
