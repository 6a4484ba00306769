//! Petasos, the Xmidt redirector: any request naming a device in `X-Webpa-Device-Name` is
//! answered with a 307 to the talaria that owns the device on the consistent-hash ring, so Go and
//! Rust petasos replicas send a device to the same place.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use wrp_nostd::DeviceId;
use xmidt_common::openapi::About;
use xmidt_discovery::{Discovery, DiscoveryConfig};
use xmidt_ring::{Instance, Ring};

/// `xmidt petasos` configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub address: SocketAddr,
    /// Where the talarias are.
    pub discovery: DiscoveryConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            address: SocketAddr::from(([0, 0, 0, 0], 6400)),
            discovery: DiscoveryConfig {
                fixed: vec!["http://127.0.0.1:6200".into()],
                default_scheme: "http".into(),
                ..DiscoveryConfig::default()
            },
        }
    }
}

/// Where redirects point: the current ring, replaced as discovery sees changes.
pub trait RingSource: Send + Sync + 'static {
    fn ring(&self) -> Arc<Ring>;
}

impl RingSource for Discovery {
    fn ring(&self) -> Arc<Ring> {
        Discovery::ring(self)
    }
}

/// Documents the fallback, which has no route of its own.
#[derive(utoipa::OpenApi)]
#[openapi(paths(redirect))]
struct Redirect;

/// The redirector, for any ring source.
pub fn router(ring: Arc<dyn RingSource>) -> Router {
    let api = OpenApiRouter::with_openapi(Redirect::openapi()).fallback(redirect);
    let about = About {
        title: "petasos",
        version: env!("CARGO_PKG_VERSION"),
        description: "Redirects devices and API calls to the talaria that owns the device.",
    };
    xmidt_common::openapi::finish(api, about).with_state(ring)
}

/// Whether `host` (a name or an IP literal, IPv6 possibly bracketed) is this machine only.
fn is_local(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
}

/// The owning talaria's URL + the request URI (trailing "/" trimmed), as petasos builds it.
///
/// One addition: when the owner listens on a loopback or unspecified address (talaria beside
/// petasos, as in `xmidt up`) and the client reached petasos from elsewhere (its Host is not
/// local), the owner's host is replaced by the host the client used, keeping talaria's port. So a
/// device behind NAT or inside an emulator's network (QEMU's 10.0.2.2) can follow the redirect.
pub fn location(owner: &Instance, request_host: Option<&str>, path_and_query: &str) -> String {
    let base = match request_host {
        Some(host) if is_local(owner.hostname()) && !is_local(host) => {
            let port = owner.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!("{}://{host}{port}", owner.scheme())
        }
        _ => owner.as_str().to_string(),
    };
    let path = path_and_query.trim_end_matches('/');
    format!("{base}{path}")
}

/// The host part of a Host header (no port).
fn request_host(headers: &HeaderMap) -> Option<&str> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    Some(match host.rsplit_once(':') {
        // "[::1]:6400" and "name:6400" lose the port; a bare "[::1]" has none to lose.
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    })
}

/// Every path and method not listed elsewhere is answered this way; devices connect with
/// `GET /api/v2/device` and follow the redirect to their talaria.
#[utoipa::path(get, path = "/{path}", tag = "redirect",
    params(
        ("path" = String, Path, description = "Any path; kept in the redirect"),
        ("X-Webpa-Device-Name" = String, Header, description = "The device, e.g. `mac:112233445566`"),
    ),
    responses(
        (status = 307, description = "To the owning talaria (host kept for NAT)",
            headers(("Location" = String, description = "The talaria's URL + this request's path and query")),
            content_type = "text/html; charset=utf-8", body = String),
        (status = 400, description = "Missing or invalid device name", content_type = "text/plain", body = String),
        (status = 500, description = "No talaria is known", content_type = "text/plain", body = String),
    ))]
async fn redirect(State(ring): State<Arc<dyn RingSource>>, request: Request) -> Response {
    let headers = request.headers();
    let Some(name) = headers.get("x-webpa-device-name") else {
        return (StatusCode::BAD_REQUEST, "missing device name header").into_response();
    };
    let Ok(id) = DeviceId::parse(name.to_str().unwrap_or_default()) else {
        return (StatusCode::BAD_REQUEST, "invalid device name").into_response();
    };
    let ring = ring.ring();
    let owner = match ring.owner(id.to_string().as_bytes()) {
        Ok(owner) => owner,
        Err(e) => {
            // Go petasos answers 500 with the error text.
            metrics::counter!("xmidt_petasos_redirects", "outcome" => "no_instances").increment(1);
            return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
        }
    };
    let uri = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let location = location(owner, request_host(headers), uri);
    let Ok(value) = HeaderValue::from_str(&location) else {
        return (StatusCode::BAD_REQUEST, "invalid request URI").into_response();
    };
    metrics::counter!("xmidt_petasos_redirects", "outcome" => "redirected").increment(1);
    let body = if matches!(*request.method(), Method::GET | Method::HEAD) {
        format!(
            "<a href=\"{}\">Temporary Redirect</a>.\n\n",
            html_escape(&location)
        )
    } else {
        String::new()
    };
    (
        StatusCode::TEMPORARY_REDIRECT,
        [(header::LOCATION, value)],
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Serves petasos until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> std::io::Result<()> {
    let listener = TcpListener::bind(config.address).await?;
    let discovery = Discovery::start(config.discovery)
        .await
        .map_err(|e| std::io::Error::other(format!("discovery: {e}")))?;
    serve(Arc::new(discovery), listener, shutdown).await
}

pub async fn serve(
    ring: Arc<dyn RingSource>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    tracing::info!(address = %listener.local_addr()?, "petasos listening");
    axum::serve(listener, router(ring))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
