//! Links with cortex-m-rt's and defmt's scripts, rejects a bad XMIDT_URL before it is baked into
//! the firmware, and turns XMIDT_CA (a PEM or DER file) into the DER the firmware embeds.

#[path = "../build-support.rs"]
mod build_support;

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

    // This board has no DNS client (xmidt-firmware's `dns` feature is off).
    build_support::firmware_config(Some(DEFAULT_URL), false);
}
