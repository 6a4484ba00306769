//! Scytale, the Xmidt API gateway: takes a WRP request (msgpack, JSON or the `X-Xmidt-*` header
//! form), sends it to the talaria that owns the device (or to every configured endpoint, such as
//! petasos replicas), and returns the first success, else the worst failure.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures_util::stream::{FuturesUnordered, StreamExt};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wrp_nostd::{DeviceId, OwnedMessage};
use xmidt_common::json_error;
use xmidt_common::openapi::{About, WrpMessage, WrpMsgpack};
use xmidt_common::ErrorBody;
use xmidt_discovery::{Discovery, DiscoveryConfig};

/// `xmidt scytale` configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub address: SocketAddr,
    pub fanout: FanoutConfig,
    /// The largest request body (413 above).
    pub max_body: usize,
    /// Who may call the API (Basic, JWT, capabilities). No credentials configured: open.
    pub auth: xmidt_auth::ApiAuthConfig,
    /// The WRP partner check (`allowedResources.allowedPartners` of the caller's JWT against the
    /// message's partner_ids): `enforce`, `monitor`, or absent for none.
    pub wrp_check: Option<xmidt_auth::CheckMode>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            address: SocketAddr::from(([0, 0, 0, 0], 6300)),
            fanout: FanoutConfig::default(),
            max_body: 1024 * 1024,
            auth: xmidt_auth::ApiAuthConfig::default(),
            wrp_check: None,
        }
    }
}

/// Where requests go and how long they may take.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FanoutConfig {
    /// Send every request to all of these (e.g. petasos replicas, which redirect to the owner).
    /// When empty, `discovery` picks the one owning talaria by consistent hash.
    pub endpoints: Vec<String>,
    pub discovery: DiscoveryConfig,
    /// The talaria API prefix requests are sent under.
    pub path_prefix: String,
    /// `Authorization` header sent to talaria, e.g. `Basic dXNlcjpwYXNz`.
    pub authorization: Option<String>,
    /// Redirects followed per request (petasos answers 307).
    pub max_redirects: usize,
    /// One request to one endpoint.
    #[serde(with = "humantime_serde")]
    pub client_timeout: Duration,
    /// The whole fan-out (504 after).
    #[serde(with = "humantime_serde")]
    pub fanout_timeout: Duration,
    /// Fan-outs in flight at once; a request that cannot start within the timeout gets 503.
    pub concurrency: usize,
}

impl Default for FanoutConfig {
    fn default() -> Self {
        FanoutConfig {
            endpoints: Vec::new(),
            discovery: DiscoveryConfig {
                fixed: vec!["http://127.0.0.1:6200".into()],
                default_scheme: "http".into(),
                ..DiscoveryConfig::default()
            },
            path_prefix: "/api/v3".into(),
            authorization: None,
            max_redirects: 3,
            client_timeout: Duration::from_secs(30),
            fanout_timeout: Duration::from_secs(45),
            concurrency: 1000,
        }
    }
}

/// How scytale finds the talaria for a device.
pub enum Targets {
    /// Every request to all of these.
    Fixed(Vec<String>),
    /// The ring owner of the device.
    Ring(Discovery),
}

impl Targets {
    /// Base URLs for a device id.
    fn for_device(&self, id: &str) -> Result<Vec<String>, String> {
        match self {
            Targets::Fixed(urls) if urls.is_empty() => Err("no endpoints configured".into()),
            Targets::Fixed(urls) => Ok(urls.clone()),
            Targets::Ring(discovery) => discovery
                .ring()
                .owner(id.as_bytes())
                .map(|owner| vec![owner.to_string()])
                .map_err(|e| e.to_string()),
        }
    }
}

pub struct Scytale {
    config: Config,
    auth: xmidt_auth::ApiAuth,
    targets: Targets,
    client: reqwest::Client,
    slots: Semaphore,
}

impl Scytale {
    /// Must run inside a tokio runtime (JWKS keys are fetched in the background).
    pub fn new(config: Config, targets: Targets) -> Result<Arc<Scytale>, xmidt_auth::ConfigError> {
        let auth = xmidt_auth::ApiAuth::from_config(&config.auth)?;
        let client = reqwest::Client::builder()
            .timeout(config.fanout.client_timeout)
            .redirect(reqwest::redirect::Policy::limited(
                config.fanout.max_redirects,
            ))
            .build()
            .unwrap_or_default();
        Ok(Arc::new(Scytale {
            slots: Semaphore::new(config.fanout.concurrency.max(1)),
            auth,
            config,
            targets,
            client,
        }))
    }

    /// The API routes, `/health`, `/metrics` and `/openapi.json`; anything else is 400
    /// "Invalid endpoint".
    pub fn router(self: &Arc<Self>) -> Router {
        let versioned = OpenApiRouter::new()
            .routes(routes!(send))
            .routes(routes!(stat))
            .layer(self.auth.layer());
        let documented = OpenApiRouter::new()
            .nest("/api/v3", versioned.clone())
            .nest("/api/v2", versioned);
        let about = About {
            title: "scytale",
            version: env!("CARGO_PKG_VERSION"),
            description: "The API gateway: sends WRP messages to devices through the talaria that holds each.",
        };
        xmidt_common::openapi::finish(documented, about)
            .fallback(|| async { json_error(StatusCode::BAD_REQUEST, "Invalid endpoint") })
            .layer(DefaultBodyLimit::max(self.config.max_body))
            .with_state(self.clone())
    }

    /// Sends one request to every target of `id` and merges the answers.
    async fn fan_out(
        &self,
        id: &str,
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        let targets = match self.targets.for_device(id) {
            Ok(t) => t,
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e),
        };
        let budget = self.config.fanout.fanout_timeout;
        let Ok(Ok(_slot)) = tokio::time::timeout(budget, self.slots.acquire()).await else {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many requests in flight",
            );
        };
        let requests: FuturesUnordered<_> = targets
            .iter()
            .map(|base| {
                let mut request = self
                    .client
                    .request(
                        method.clone(),
                        format!("{}{path}", base.trim_end_matches('/')),
                    )
                    .headers(headers.clone())
                    .body(body.clone());
                if let Some(auth) = &self.config.fanout.authorization {
                    request = request.header(header::AUTHORIZATION, auth);
                }
                request.send()
            })
            .collect();
        match tokio::time::timeout(budget, merge(requests)).await {
            Ok(response) => response,
            Err(_) => error(StatusCode::GATEWAY_TIMEOUT, "timed out"),
        }
    }
}

/// Scytale's merge: the first answer under 400 wins at once; otherwise, once all are in, the one
/// with the highest status. Transport errors count as 504 (timeout) or 503.
async fn merge<F>(mut requests: FuturesUnordered<F>) -> Response
where
    F: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
{
    let mut worst: Option<Response> = None;
    while let Some(result) = requests.next().await {
        let response = match result {
            Ok(r) => {
                let status = r.status();
                let headers = r.headers().clone();
                match r.bytes().await {
                    Ok(body) => passthrough(status, &headers, body),
                    Err(e) => transport_error(&e),
                }
            }
            Err(e) => transport_error(&e),
        };
        if response.status().as_u16() < 400 {
            return response;
        }
        if worst
            .as_ref()
            .is_none_or(|w| response.status() > w.status())
        {
            worst = Some(response);
        }
    }
    worst.unwrap_or_else(|| error(StatusCode::INTERNAL_SERVER_ERROR, "no response"))
}

fn transport_error(e: &reqwest::Error) -> Response {
    let status = if e.is_timeout() {
        StatusCode::GATEWAY_TIMEOUT
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    error(status, &e.to_string())
}

/// The endpoint's status, body, Content-Type and `X-*` headers.
fn passthrough(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: Bytes,
) -> Response {
    let mut response = (
        StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
        body,
    )
        .into_response();
    let out = response.headers_mut();
    for (name, value) in headers {
        let keep = name == header::CONTENT_TYPE || name.as_str().starts_with("x-");
        if keep {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_ref()),
                HeaderValue::from_bytes(value.as_bytes()),
            ) {
                out.append(n, v);
            }
        }
    }
    response
}

/// Scytale's own errors: plain text with `X-Xmidt-Error`.
fn error(status: StatusCode, text: &str) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/plain")],
        text.to_string(),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(text) {
        response.headers_mut().insert("x-xmidt-error", value);
    }
    response
}

/// Reads the WRP of a send request: the header form when `X-Xmidt-Message-Type` (or the old
/// `X-Midt-Msg-Type`) is present, else msgpack or JSON per Content-Type.
fn read_wrp(headers: &HeaderMap, body: &Bytes) -> Result<OwnedMessage, String> {
    if headers.contains_key("x-xmidt-message-type") || headers.contains_key("x-midt-msg-type") {
        return wrp_nostd::http::from_headers(headers, body).map_err(|e| e.to_string());
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.contains("json") {
        OwnedMessage::from_json(body).map_err(|e| e.to_string())
    } else if content_type.is_empty() || content_type.contains("msgpack") {
        OwnedMessage::decode(body).map_err(|e| e.to_string())
    } else {
        Err(format!("unsupported Content-Type {content_type:?}"))
    }
}

/// Sends one WRP message to a device through its talaria(s) and answers with the merged
/// result: the device's answer for a transaction.
#[utoipa::path(method(post, put), path = "/device", tag = "api",
    security(("basic" = []), ("bearer" = [])),
    params(
        ("X-Xmidt-Message-Type" = Option<String>, Header, description = "Present: the WRP is in header form (`X-Xmidt-*` headers, the body is the payload with its own Content-Type); the old `X-Midt-Msg-Type` also counts"),
        ("Accept" = Option<String>, Header, description = "Passed to talaria: the answer's format, JSON or msgpack"),
    ),
    request_body(description = "One WRP message: msgpack, JSON, or the header form's payload", content(
        (WrpMsgpack = "application/msgpack"),
        (WrpMessage = "application/json"),
        (String = "*/*"),
    )),
    responses(
        (status = 200, description = "The device's answer (or nothing, for an event), as talaria sent it", content(
            (WrpMsgpack = "application/msgpack"),
            (WrpMessage = "application/json"),
        )),
        (status = 400, description = "Invalid WRP, device name, or a missing transaction_uuid", body = ErrorBody),
        (status = 401, description = "API credentials missing or invalid", body = ErrorBody),
        (status = 403, description = "The credentials or the WRP's partners do not allow this call", body = ErrorBody),
        (status = 404, description = "No talaria holds the device", body = ErrorBody),
        (status = 413, description = "The body is larger than `max_body`"),
        (status = 500, description = "No talaria answered", body = ErrorBody),
        (status = 503, description = "No talaria is reachable, or a signing key is unavailable", body = ErrorBody),
        (status = 504, description = "The device or its talaria did not answer in time", body = ErrorBody),
    ))]
async fn send(
    State(s): State<Arc<Scytale>>,
    caller: Option<xmidt_auth::Principal>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut message = match read_wrp(&headers, &body) {
        Ok(m) => m,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("invalid WRP: {e}")),
    };
    if let Some(mode) = s.config.wrp_check {
        let checked = xmidt_auth::check_wrp_partners(caller.as_ref(), &message.partner_ids, mode);
        let (outcome, reason) = match &checked {
            Ok(decision) => ("accepted", decision.reason),
            Err(e) => ("rejected", e.reason),
        };
        metrics::counter!("xmidt_scytale_received_wrp_message_total", "outcome" => outcome, "reason" => format!("{reason:?}")).increment(1);
        match checked {
            Ok(decision) => {
                if let xmidt_auth::PartnerAction::Replace(partners) = decision.action {
                    message.partner_ids = partners;
                }
            }
            Err(e) => return error(e.status, e.message),
        }
    }
    if message.msg_type.requires_transaction() && message.transaction_uuid.is_empty() {
        return error(StatusCode::BAD_REQUEST, "a transaction_uuid is required");
    }
    let Ok(id) = DeviceId::parse(&message.dest) else {
        return error(StatusCode::BAD_REQUEST, "invalid device name");
    };
    let frame = match message.to_msgpack() {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let mut forward = HeaderMap::new();
    forward.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/msgpack"),
    );
    if let Ok(dest) = HeaderValue::from_str(&message.dest) {
        forward.insert("x-webpa-device-name", dest);
    }
    // Unlike the Go scytale, the caller's Accept goes along, so a JSON caller gets JSON back.
    if let Some(accept) = headers.get(header::ACCEPT) {
        forward.insert(header::ACCEPT, accept.clone());
    }
    // Talaria takes POST and PATCH; the PUT that scytale also accepts is sent as POST.
    let method = if method == Method::PUT {
        Method::POST
    } else {
        method
    };
    let path = format!("{}/device/send", s.config.fanout.path_prefix);
    metrics::counter!("xmidt_scytale_requests", "route" => "send").increment(1);
    s.fan_out(&id.to_string(), method, &path, forward, frame.into())
        .await
}

/// One device's statistics from the talaria that holds it.
#[utoipa::path(get, path = "/device/{id}/stat", tag = "api",
    security(("basic" = []), ("bearer" = [])),
    params(("id" = String, Path, description = "The device, e.g. `mac:112233445566`")),
    responses(
        (status = 200, description = "The device, as talaria shows it", content_type = "application/json", body = Object),
        (status = 400, description = "Not a device name", body = ErrorBody),
        (status = 401, description = "API credentials missing or invalid", body = ErrorBody),
        (status = 403, description = "The credentials do not allow this call", body = ErrorBody),
        (status = 404, description = "No talaria holds the device"),
        (status = 500, description = "No talaria answered", body = ErrorBody),
        (status = 503, description = "No talaria is reachable, or a signing key is unavailable", body = ErrorBody),
        (status = 504, description = "The talaria did not answer in time", body = ErrorBody),
    ))]
async fn stat(State(s): State<Arc<Scytale>>, Path(name): Path<String>) -> Response {
    let id = match DeviceId::parse(&name) {
        Ok(id) => id.to_string(),
        Err(e) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                &format!("failed to extract device ID: {e}"),
            )
        }
    };
    let mut forward = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&id) {
        forward.insert("x-webpa-device-name", v);
    }
    let path = format!("{}/device/{id}/stat", s.config.fanout.path_prefix);
    metrics::counter!("xmidt_scytale_requests", "route" => "stat").increment(1);
    s.fan_out(&id, Method::GET, &path, forward, Bytes::new())
        .await
}

/// Serves scytale until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> std::io::Result<()> {
    let listener = TcpListener::bind(config.address).await?;
    let targets = if config.fanout.endpoints.is_empty() {
        let discovery = Discovery::start(config.fanout.discovery.clone())
            .await
            .map_err(|e| std::io::Error::other(format!("discovery: {e}")))?;
        Targets::Ring(discovery)
    } else {
        Targets::Fixed(config.fanout.endpoints.clone())
    };
    let scytale = Scytale::new(config, targets)
        .map_err(|e| std::io::Error::other(format!("auth configuration: {e}")))?;
    serve(scytale, listener, shutdown).await
}

pub async fn serve(
    scytale: Arc<Scytale>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    tracing::info!(address = %listener.local_addr()?, "scytale listening");
    axum::serve(listener, scytale.router())
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
