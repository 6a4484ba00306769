//! The axum layer and extractor, over a real socket.

use std::collections::BTreeMap;

use axum::routing::get;
use axum::Router;
use http::StatusCode;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use xmidt_auth::{ApiAuth, ApiAuthConfig, CapabilityConfig, JwtConfig, KeysConfig, Principal};

use crate::common::{api_claims, closed_port, TempDir, API_RSA};

/// Serves `app` on 127.0.0.1 and returns its base URL; the server ends with the test runtime.
async fn serve(app: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// Routes as a scytale would have them, behind `auth`.
fn app(auth: &ApiAuth) -> Router {
    Router::new()
        .route(
            "/api/v3/device/{id}/stat",
            get(|p: Principal| async move { p.subject }).post(|| async { "posted" }),
        )
        .route(
            "/api/v3/open",
            get(|p: Option<Principal>| async move {
                p.map_or("anonymous".to_owned(), |p| p.subject)
            }),
        )
        .layer(auth.layer())
}

fn scytale_config(dir: &TempDir) -> ApiAuthConfig {
    ApiAuthConfig {
        basic: vec!["dXNlcjpwYXNz".to_owned()],
        jwt: Some(JwtConfig {
            keys: KeysConfig {
                pem_files: BTreeMap::from([(
                    API_RSA.kid.clone(),
                    dir.write("api.pem", &API_RSA.public_pem),
                )]),
                ..KeysConfig::default()
            },
            ..JwtConfig::default()
        }),
        capabilities: Some(CapabilityConfig {
            prefixes: vec!["x1:webpa:api:".to_owned()],
            strip_path_prefixes: vec!["/api/v3".to_owned()],
            ..CapabilityConfig::default()
        }),
        ..ApiAuthConfig::default()
    }
}

struct Reply {
    status: StatusCode,
    challenges: Vec<String>,
    content_type: Option<String>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("JSON error body")
    }
}

async fn call(method: &str, url: &str, authorization: Option<&str>) -> Reply {
    let client = reqwest::Client::new();
    let mut request = client.request(method.parse().expect("method"), url);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let headers = response.headers().clone();
    Reply {
        status,
        challenges: headers
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect(),
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok().map(str::to_owned)),
        body: response.text().await.expect("body"),
    }
}

fn token_with_caps(caps: &[&str]) -> String {
    let mut claims = api_claims("client");
    claims["capabilities"] = json!(caps);
    format!("Bearer {}", API_RSA.sign(&claims))
}

#[tokio::test]
async fn unauthenticated_gets_401_with_challenges() {
    let dir = TempDir::new();
    let auth = ApiAuth::from_config(&scytale_config(&dir)).unwrap();
    let base = serve(app(&auth)).await;
    let url = format!("{base}/api/v3/device/mac:112233445566/stat");

    let r = call("GET", &url, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.challenges,
        [r#"Basic realm="xmidt""#, r#"Bearer realm="xmidt""#]
    );
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        r.json(),
        json!({"code": 401, "message": "missing credentials"})
    );

    for bad in [
        "Basic !!!",
        "Basic dXNlcjp3cm9uZw==",
        "Digest x",
        "Bearer not.a.token",
    ] {
        let r = call("GET", &url, Some(bad)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{bad}");
        assert_eq!(r.json()["code"], 401, "{bad}");
        assert_eq!(r.challenges.len(), 2, "{bad}");
    }

    let mut expired = api_claims("client");
    expired["exp"] = json!(0);
    let r = call(
        "GET",
        &url,
        Some(&format!("Bearer {}", API_RSA.sign(&expired))),
    )
    .await;
    assert_eq!(
        r.json(),
        json!({"code": 401, "message": "invalid token: token expired"})
    );
}

#[tokio::test]
async fn authenticated_but_not_allowed_gets_403() {
    let dir = TempDir::new();
    let auth = ApiAuth::from_config(&scytale_config(&dir)).unwrap();
    let base = serve(app(&auth)).await;
    let url = format!("{base}/api/v3/device/mac:112233445566/stat");
    let stat_get = token_with_caps(&["x1:webpa:api:device/.*/stat:get"]);

    let r = call("GET", &url, Some(&stat_get)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "client"));

    // Same token, another method.
    let r = call("POST", &url, Some(&stat_get)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.challenges.is_empty());
    assert_eq!(r.json()["code"], 403);
    assert_eq!(
        r.json()["message"],
        "forbidden: no capability grants this request: POST /api/v3/device/mac:112233445566/stat"
    );

    // No capabilities at all.
    let r = call("GET", &url, Some(&token_with_caps(&[]))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Basic users bypass capability checks (bascule: JWT only).
    let r = call("POST", &url, Some("Basic dXNlcjpwYXNz")).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "posted"));
}

#[tokio::test]
async fn bearer_refused_where_only_basic_is_configured() {
    // talaria's /device/send: Basic only, so no JWT (device or otherwise) gets through.
    let auth = ApiAuth::from_config(&ApiAuthConfig {
        basic: vec!["user:pass".to_owned()],
        ..ApiAuthConfig::default()
    })
    .unwrap();
    let base = serve(app(&auth)).await;
    let url = format!("{base}/api/v3/device/mac:112233445566/stat");
    let r = call(
        "GET",
        &url,
        Some(&token_with_caps(&["x1:webpa:api:.*:all"])),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.challenges, [r#"Basic realm="xmidt""#]);
    assert_eq!(
        r.json()["message"],
        "Bearer credentials are not accepted here"
    );
}

#[tokio::test]
async fn auth_off_lets_everything_through() {
    let auth = ApiAuth::from_config(&ApiAuthConfig::default()).unwrap();
    assert!(!auth.is_enabled());
    let base = serve(app(&auth)).await;
    let r = call("GET", &format!("{base}/api/v3/open"), None).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "anonymous"));
    // A handler that insists on a principal cannot have one.
    let r = call("GET", &format!("{base}/api/v3/device/mac:1/stat"), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.json(),
        json!({"code": 401, "message": "authentication required"})
    );
}

#[tokio::test]
async fn key_server_outage_is_503() {
    let addr = closed_port().await;
    let auth = ApiAuth::from_config(&ApiAuthConfig {
        jwt: Some(JwtConfig {
            keys: KeysConfig {
                jwks_url: Some(format!("http://{addr}/jwks.json")),
                ..KeysConfig::default()
            },
            ..JwtConfig::default()
        }),
        ..ApiAuthConfig::default()
    })
    .unwrap();
    let base = serve(app(&auth)).await;
    let r = call(
        "GET",
        &format!("{base}/api/v3/open"),
        Some(&token_with_caps(&[])),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json()["code"], 503);
    assert!(r.challenges.is_empty());
}
