//! Links with cortex-m-rt's and defmt's scripts (embassy-stm32's `memory-x` feature provides
//! memory.x), checks XMIDT_URL and embeds the XMIDT_CA certificate.

#[path = "../build-support.rs"]
mod build_support;

use std::{env, path::PathBuf};

fn main() {
    println!("cargo:rustc-link-arg-bins=--nmagic");
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
    println!("cargo:rerun-if-changed=../build-support.rs");

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    build_support::cloud_url(None, true);
    build_support::ca(&out);
    build_support::token();
}
