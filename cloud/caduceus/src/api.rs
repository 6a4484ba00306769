//! The HTTP API: event intake (`/api/v4/notify`, `/api/v3/notify`) and webhooks (`/hook`,
//! `/hooks`, and the same under `/api/v3`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::connect_info::ConnectInfo;
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use xmidt_common::openapi::WrpMsgpack;
use xmidt_common::ErrorBody;
use xmidt_common::{json_error, read_body};

use xmidt_auth::Principal;

use crate::webhook::webhook_id;
use crate::{gotime, Caduceus, Caller, RegistrationV1, WebhookError};

/// A body that could not be read: counted, then answered as xmidt-common does.
fn body_error(e: xmidt_common::BodyError) -> Response {
    metrics::counter!("xmidt_caduceus_error_request_body_count").increment(1);
    e.into_response()
}

/// Every webhook route identifies its caller the same way (see [`Caller::identify`]).
impl FromRequestParts<Arc<Caduceus>> for Caller {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        caduceus: &Arc<Caduceus>,
    ) -> Result<Caller, Infallible> {
        let principal = parts.extensions.get::<Principal>();
        Ok(Caller::identify(
            &parts.headers,
            principal,
            &caduceus.config.registration,
        ))
    }
}

pub(crate) fn routes(caduceus: Arc<Caduceus>) -> OpenApiRouter {
    let hooks = OpenApiRouter::new()
        .routes(routes!(register, delete_by_url))
        .routes(routes!(delete_by_id))
        .routes(routes!(list));
    let intake = OpenApiRouter::new().routes(routes!(notify));
    OpenApiRouter::new()
        .nest("/api/v4", intake.clone())
        .nest("/api/v3", intake.merge(hooks.clone()))
        .merge(hooks)
        .with_state(caduceus)
}

/// The answer to a registration.
#[derive(Serialize, ToSchema)]
struct Registered {
    /// `Success`.
    message: &'static str,
    /// The webhook's id: hex SHA-256 of its URL.
    id: String,
    /// When it expires, RFC 3339.
    until: String,
    /// False when it renewed an existing webhook.
    created: bool,
}

/// The answer to a deletion.
#[derive(Serialize, ToSchema)]
struct Removed<'a> {
    /// `Success`.
    message: &'static str,
    id: &'a str,
}

/// One msgpack WRP event (msg_type 4) → 202 once offered to every webhook (never waiting for
/// any of them).
#[utoipa::path(post, path = "/notify", tag = "intake",
    security(("basic" = []), ("bearer" = [])),
    request_body(description = "One WRP event", content((WrpMsgpack = "application/msgpack"))),
    responses(
        (status = 202, description = "Queued for delivery", content_type = "text/plain", body = String),
        (status = 400, description = "Not a WRP event, or the body broke off", body = ErrorBody),
        (status = 401, description = "API credentials missing or invalid", body = ErrorBody),
        (status = 403, description = "The credentials do not allow this call", body = ErrorBody),
        (status = 408, description = "The body took longer than `intake.read_timeout`", body = ErrorBody),
        (status = 413, description = "The body is larger than `intake.max_event_size`", body = ErrorBody),
        (status = 415, description = "Content-Type is not exactly one application/msgpack", body = ErrorBody),
        (status = 503, description = "A signing key is unavailable", body = ErrorBody),
    ))]
async fn notify(State(caduceus): State<Arc<Caduceus>>, request: Request) -> Response {
    let content_types: Vec<_> = request
        .headers()
        .get_all(header::CONTENT_TYPE)
        .iter()
        .collect();
    let msgpack = match content_types.as_slice() {
        [one] => one
            .to_str()
            .ok()
            .and_then(|v| v.split(';').next())
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/msgpack")),
        _ => false,
    };
    if !msgpack {
        return json_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Invalid Content-Type header(s). Expected application/msgpack.",
        );
    }
    let intake = &caduceus.config.intake;
    let body = match read_body(
        request.into_body(),
        intake.max_event_size,
        intake.read_timeout,
    )
    .await
    {
        Ok(body) => body,
        Err(e) => return body_error(e),
    };
    match caduceus.submit_msgpack(body) {
        Ok(_) => (StatusCode::ACCEPTED, "Request placed on to queue.\n").into_response(),
        Err(e) => json_error(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        let status = match &self {
            WebhookError::Invalid(_) => StatusCode::BAD_REQUEST,
            WebhookError::TooMany(_) => StatusCode::FORBIDDEN,
            WebhookError::NotFound => StatusCode::NOT_FOUND,
            WebhookError::Store(e) => {
                tracing::error!(error = %e, "webhook store failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        json_error(status, &self.to_string())
    }
}

/// Registers or renews a webhook.
#[utoipa::path(post, path = "/hook", tag = "webhooks",
    security(("basic" = []), ("bearer" = [])),
    params(("X-Xmidt-Partner-Id" = Option<String>, Header, description = "The caller's partners, comma-separated, when not from a token")),
    request_body(content = RegistrationV1, content_type = "application/json"),
    responses(
        (status = 200, description = "Registered (or renewed: 200 either way, as ancla answers)", body = Registered),
        (status = 400, description = "Not a valid registration (ancla's rules), or the body broke off", body = ErrorBody),
        (status = 401, description = "API credentials missing or invalid", body = ErrorBody),
        (status = 403, description = "Too many webhooks, or the credentials do not allow this call", body = ErrorBody),
        (status = 408, description = "The body took longer than `intake.read_timeout`", body = ErrorBody),
        (status = 413, description = "The body is larger than `registration.max_body`", body = ErrorBody),
        (status = 500, description = "The store failed", body = ErrorBody),
        (status = 503, description = "A signing key is unavailable", body = ErrorBody),
    ))]
async fn register(
    State(caduceus): State<Arc<Caduceus>>,
    caller: Caller,
    request: Request,
) -> Response {
    let from = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let config = &caduceus.config;
    let body = match read_body(
        request.into_body(),
        config.registration.max_body,
        config.intake.read_timeout,
    )
    .await
    {
        Ok(body) => body,
        Err(e) => return body_error(e),
    };
    let registration: RegistrationV1 = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                &format!("failed to JSON unmarshal webhook: {e}"),
            )
        }
    };
    caduceus
        .register(registration, &caller, from)
        .await
        // 200 for renewals too, as ancla answers: clients check for it.
        .map(|registered| {
            Json(Registered {
                message: "Success",
                id: registered.id,
                until: gotime::format_time(registered.until),
                created: registered.created,
            })
        })
        .into_response()
}

/// The webhooks the caller may see, secrets hidden.
#[utoipa::path(get, path = "/hooks", tag = "webhooks",
    security(("basic" = []), ("bearer" = [])),
    params(("X-Xmidt-Partner-Id" = Option<String>, Header, description = "The caller's partners, comma-separated, when not from a token")),
    responses(
        (status = 200, description = "Registrations, each with its `id` and `partner_ids`; secrets obfuscated", body = Vec<RegistrationV1>),
        (status = 401, description = "API credentials missing or invalid", body = ErrorBody),
        (status = 403, description = "The credentials do not allow this call", body = ErrorBody),
        (status = 500, description = "The store failed", body = ErrorBody),
        (status = 503, description = "A signing key is unavailable", body = ErrorBody),
    ))]
async fn list(State(caduceus): State<Arc<Caduceus>>, caller: Caller) -> Response {
    caduceus.webhooks(&caller).await.map(Json).into_response()
}

/// Deletes a webhook by id (hex SHA-256 of the URL, as listed).
#[utoipa::path(delete, path = "/hook/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The webhook's id")),
    security(("basic" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Deleted", body = Removed),
        (status = 401, description = "API credentials missing or invalid", body = ErrorBody),
        (status = 403, description = "The credentials do not allow this call", body = ErrorBody),
        (status = 404, description = "No such webhook, or not the caller's", body = ErrorBody),
        (status = 500, description = "The store failed", body = ErrorBody),
        (status = 503, description = "A signing key is unavailable", body = ErrorBody),
    ))]
async fn delete_by_id(
    State(caduceus): State<Arc<Caduceus>>,
    Path(id): Path<String>,
    caller: Caller,
) -> Response {
    remove(&caduceus, &id, &caller).await
}

/// Deletes a webhook by the URL it was registered with.
#[utoipa::path(delete, path = "/hook", tag = "webhooks",
    params(("url" = Option<String>, Query, description = "The webhook's `config.url`")),
    security(("basic" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Deleted", body = Removed),
        (status = 400, description = "No webhook named", body = ErrorBody),
        (status = 401, description = "API credentials missing or invalid", body = ErrorBody),
        (status = 403, description = "The credentials do not allow this call", body = ErrorBody),
        (status = 404, description = "No such webhook, or not the caller's", body = ErrorBody),
        (status = 500, description = "The store failed", body = ErrorBody),
        (status = 503, description = "A signing key is unavailable", body = ErrorBody),
    ))]
async fn delete_by_url(
    State(caduceus): State<Arc<Caduceus>>,
    Query(query): Query<HashMap<String, String>>,
    caller: Caller,
) -> Response {
    match query.get("url") {
        Some(url) => remove(&caduceus, &webhook_id(url), &caller).await,
        None => json_error(
            StatusCode::BAD_REQUEST,
            "name the webhook: DELETE /hook/{id} or /hook?url=<url>",
        ),
    }
}

async fn remove(caduceus: &Caduceus, id: &str, caller: &Caller) -> Response {
    caduceus
        .delete(id, caller)
        .await
        .map(|()| {
            Json(Removed {
                message: "Success",
                id,
            })
        })
        .into_response()
}
