//! Links with cortex-m-rt's and defmt's scripts, and rejects a bad XMIDT_URL before it is baked
//! into the firmware (the firmware parses it with the same module).

use std::{env, fs, path::PathBuf};

#[path = "src/url.rs"]
mod url;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(out.join("memory.x"), include_bytes!("memory.x")).expect("write memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=src/url.rs");
    println!("cargo:rerun-if-env-changed=XMIDT_URL");

    let xmidt_url = env::var("XMIDT_URL").unwrap_or_else(|_| url::DEFAULT_URL.into());
    if let Err(e) = url::Target::parse(&xmidt_url) {
        panic!("XMIDT_URL={xmidt_url:?}: {e}");
    }
}
