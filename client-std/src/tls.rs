//! rustls client configs: the CA roots (`--ssl-cert-path`, else the system's) and an optional
//! client certificate, for the cloud WebSocket and the token server.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::Error;

/// A client certificate chain and its key.
pub(crate) type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn provider() -> Arc<CryptoProvider> {
    // Named, not looked up: other crates in a build may enable ring as well.
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The CA bundle at `ca`, or the system's roots.
pub(crate) fn roots(ca: Option<&Path>) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    match ca {
        Some(path) => {
            for cert in certs(path)? {
                roots
                    .add(cert)
                    .map_err(|e| Error::Tls(format!("{}: {e}", path.display())))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!(error = %e, "reading the system CA certificates");
            }
            // Unparsable system certificates are skipped, as curl does.
            roots.add_parsable_certificates(found.certs);
        }
    }
    if roots.is_empty() {
        return Err(Error::Tls(match ca {
            Some(path) => format!("{}: no CA certificates", path.display()),
            None => "no system CA certificates; give --ssl-cert-path".into(),
        }));
    }
    Ok(roots)
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| Error::Tls(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::Tls(format!("{}: no certificates", path.display())));
    }
    Ok(certs)
}

/// A certificate chain from `cert` and the private key from `key` (the same file is fine).
pub(crate) fn identity(cert: &Path, key: &Path) -> Result<Identity, Error> {
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| Error::Tls(format!("{}: {e}", key.display())))?;
    Ok((certs(cert)?, key))
}

/// TLS 1.2 or 1.3, the peer verified against `roots`, `identity` offered when asked.
pub(crate) fn client_config(
    roots: RootCertStore,
    identity: Option<Identity>,
) -> Result<ClientConfig, Error> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_root_certificates(roots);
    match identity {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| Error::Tls(e.to_string())),
        None => Ok(builder.with_no_client_auth()),
    }
}
