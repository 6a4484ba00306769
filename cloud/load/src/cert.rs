//! `xmidt-load cert`: a self-signed ECDSA P-256 certificate for talaria's TLS in a test (the key
//! type embedded-tls devices use).

use std::path::Path;

pub fn write(dir: &Path, names: Vec<String>) -> Result<(), String> {
    // rcgen's default key is ECDSA P-256 with SHA-256.
    let cert = rcgen::generate_simple_self_signed(names).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (file, pem) in [
        ("cert.pem", cert.cert.pem()),
        ("key.pem", cert.signing_key.serialize_pem()),
    ] {
        let path = dir.join(file);
        std::fs::write(&path, pem).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(())
}
