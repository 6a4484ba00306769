//! Links with esp-hal's and defmt's scripts (esp-hal's `linkall.x` carries the chip's memory
//! map), checks XMIDT_URL and embeds the XMIDT_CA certificate.

#[path = "../build-support.rs"]
mod build_support;

fn main() {
    println!("cargo:rustc-link-arg-bins=-Tlinkall.x");
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");

    build_support::firmware_config(None, true);
}
