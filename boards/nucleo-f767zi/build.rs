//! Links with cortex-m-rt's and defmt's scripts (embassy-stm32's `memory-x` feature provides
//! memory.x), checks XMIDT_URL and embeds the XMIDT_CA certificate.

#[path = "../build-support.rs"]
mod build_support;

fn main() {
    println!("cargo:rustc-link-arg-bins=--nmagic");
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");

    build_support::firmware_config(None, true);
}
