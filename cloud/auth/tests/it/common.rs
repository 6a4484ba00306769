//! Test helpers: real keys (generated with rcgen on aws-lc), real signed tokens, a real key
//! server on 127.0.0.1, and temporary files.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use rcgen::{CertificateParams, KeyPair};
use serde_json::{json, Value};
use tokio::net::TcpListener;

/// A signing key with every public form of it the tests need.
pub struct TestKey {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    /// SPKI `PUBLIC KEY` PEM.
    pub public_pem: String,
    /// A self-signed certificate for the key.
    pub cert_pem: String,
    /// The private key PEM (only to show it is refused as a verification key).
    pub private_pem: String,
    /// The public JWK, with `kid` and `alg`.
    pub jwk: Value,
}

impl TestKey {
    fn new(kid: &str, alg: Algorithm) -> TestKey {
        let (pair, encoding) = match alg {
            Algorithm::RS256 => {
                let pair = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("rsa keygen");
                let enc = EncodingKey::from_rsa_pem(pair.serialize_pem().as_bytes()).expect("rsa");
                (pair, enc)
            }
            Algorithm::ES256 => {
                let pair =
                    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("ec keygen");
                let enc = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).expect("ec");
                (pair, enc)
            }
            other => panic!("no test keys for {other:?}"),
        };
        let cert_pem = CertificateParams::new(vec!["themis.test".to_owned()])
            .expect("cert params")
            .self_signed(&pair)
            .expect("self-signed")
            .pem();
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).expect("jwk");
        jwk.common.key_id = Some(kid.to_owned());
        TestKey {
            kid: kid.to_owned(),
            alg,
            public_pem: pair.public_key_pem(),
            cert_pem,
            private_pem: pair.serialize_pem(),
            jwk: serde_json::to_value(&jwk).expect("jwk json"),
            encoding,
        }
    }

    pub fn rsa(kid: &str) -> TestKey {
        TestKey::new(kid, Algorithm::RS256)
    }

    pub fn ec(kid: &str) -> TestKey {
        TestKey::new(kid, Algorithm::ES256)
    }

    /// Signs `claims` with this key's algorithm and `kid`.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        self.sign_with(header, claims)
    }

    pub fn sign_with(&self, header: Header, claims: &Value) -> String {
        encode(&header, claims, &self.encoding).expect("sign")
    }
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Claims of a valid API token for `sub`.
pub fn api_claims(sub: &str) -> Value {
    json!({
        "sub": sub,
        "iat": now(),
        "nbf": now() - 15,
        "exp": now() + 300,
        "iss": "themis",
        "aud": "XMiDT",
        "trust": 1000,
        "capabilities": ["x1:webpa:api:.*:all"],
        "allowedResources": {"allowedPartners": ["comcast"]},
    })
}

/// Claims of a valid themis device token.
pub fn device_claims(mac: &str) -> Value {
    json!({
        "sub": mac,
        "iat": now(),
        "nbf": now() - 15,
        "exp": now() + 300,
        "iss": "themis",
        "aud": "XMiDT",
        "trust": 1000,
        "partner-id": "comcast",
        "mac": mac,
    })
}

pub fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).expect("header"),
    );
    h
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "xmidt-auth-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the key server serves; tests change it while it runs.
#[derive(Default)]
pub struct KeyServerState {
    /// `GET /jwks.json`.
    pub jwks: Mutex<Value>,
    /// `GET /keys/{kid}`: PEM text by kid; others 404.
    pub pems: Mutex<Vec<(String, String)>>,
    pub jwks_hits: AtomicUsize,
    pub key_hits: AtomicUsize,
}

/// A real HTTP key server on 127.0.0.1 (axum), like themis' key endpoint or an IdP's JWKS.
/// Also `GET /big` (2 MiB) and `GET /slow` (answers after 5 s).
pub struct KeyServer {
    pub addr: SocketAddr,
    pub state: Arc<KeyServerState>,
    task: tokio::task::JoinHandle<()>,
}

impl KeyServer {
    pub async fn start(jwks: Value) -> KeyServer {
        let state = Arc::new(KeyServerState {
            jwks: Mutex::new(jwks),
            ..KeyServerState::default()
        });
        let app = Router::new()
            .route("/jwks.json", get(serve_jwks))
            .route("/keys/{kid}", get(serve_pem))
            .route("/big", get(|| async { vec![b' '; 2 << 20] }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "{}"
                }),
            )
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        KeyServer { addr, state, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set_jwks(&self, jwks: Value) {
        *self.state.jwks.lock().expect("lock") = jwks;
    }

    pub fn add_pem(&self, kid: &str, pem: &str) {
        self.state
            .pems
            .lock()
            .expect("lock")
            .push((kid.to_owned(), pem.to_owned()));
    }

    pub fn jwks_hits(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }

    pub fn key_hits(&self) -> usize {
        self.state.key_hits.load(Ordering::SeqCst)
    }
}

impl Drop for KeyServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_jwks(State(state): State<Arc<KeyServerState>>) -> Response {
    state.jwks_hits.fetch_add(1, Ordering::SeqCst);
    let jwks = state.jwks.lock().expect("lock").clone();
    (
        [("content-type", "application/json")],
        serde_json::to_vec(&jwks).unwrap_or_default(),
    )
        .into_response()
}

async fn serve_pem(State(state): State<Arc<KeyServerState>>, Path(kid): Path<String>) -> Response {
    state.key_hits.fetch_add(1, Ordering::SeqCst);
    let pems = state.pems.lock().expect("lock").clone();
    match pems.into_iter().find(|(k, _)| *k == kid) {
        Some((_, pem)) => ([("content-type", "application/x-pem-file")], pem).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// An address on 127.0.0.1 where nothing listens (bound, then released).
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr")
}

/// Keys shared by the tests of one run (RSA generation is the slow part).
pub static API_RSA: LazyLock<TestKey> = LazyLock::new(|| TestKey::rsa("api-rsa"));
pub static API_EC: LazyLock<TestKey> = LazyLock::new(|| TestKey::ec("api-ec"));
pub static DEVICE_RSA: LazyLock<TestKey> = LazyLock::new(|| TestKey::rsa("device-rsa"));
/// Another RSA key, for "signed by the wrong key" and key-rotation cases.
pub static OTHER_RSA: LazyLock<TestKey> = LazyLock::new(|| TestKey::rsa("other-rsa"));
