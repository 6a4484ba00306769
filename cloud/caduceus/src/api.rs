//! The HTTP API: event intake (`/api/v4/notify`, `/api/v3/notify`) and webhooks (`/hook`,
//! `/hooks`, and the same under `/api/v3`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use http_body_util::LengthLimitError;
use xmidt_common::json_error;

use xmidt_auth::Principal;

use crate::webhook::webhook_id;
use crate::{gotime, Caduceus, Caller, RegistrationV1, WebhookError};

pub(crate) fn routes(caduceus: Arc<Caduceus>) -> Router {
    let hooks = Router::new()
        .route("/hook", post(register).delete(delete_by_url))
        .route("/hook/{id}", delete(delete_by_id))
        .route("/hooks", get(list));
    Router::new()
        .route("/api/v4/notify", post(notify))
        .route("/api/v3/notify", post(notify))
        .merge(hooks.clone())
        .nest("/api/v3", hooks)
        .with_state(caduceus)
}

/// Why a request body could not be read.
enum BodyError {
    TooLarge(usize),
    Timeout,
    Broken,
}

impl IntoResponse for BodyError {
    fn into_response(self) -> Response {
        metrics::counter!("xmidt_caduceus_error_request_body_count").increment(1);
        match self {
            BodyError::TooLarge(limit) => json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("The body is larger than {limit} bytes."),
            ),
            BodyError::Timeout => json_error(
                StatusCode::REQUEST_TIMEOUT,
                "The body took too long to arrive.",
            ),
            BodyError::Broken => json_error(StatusCode::BAD_REQUEST, "The body could not be read."),
        }
    }
}

/// Reads at most `limit` bytes within `timeout`.
async fn read_body(body: Body, limit: usize, timeout: Duration) -> Result<Bytes, BodyError> {
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Err(_) => Err(BodyError::Timeout),
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => {
            if e.into_inner().is::<LengthLimitError>() {
                Err(BodyError::TooLarge(limit))
            } else {
                Err(BodyError::Broken)
            }
        }
    }
}

/// `POST /api/v4/notify`: one msgpack WRP event (msg_type 4) → 202 once offered to every
/// webhook (never waiting for any of them).
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
        Err(e) => return e.into_response(),
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

/// `POST /hook`: a RegistrationV1 → 200 `{"message": "Success", "id", "until", "created"}`.
async fn register(State(caduceus): State<Arc<Caduceus>>, request: Request) -> Response {
    let principal = request.extensions().get::<Principal>().cloned();
    let caller = Caller::identify(
        request.headers(),
        principal.as_ref(),
        &caduceus.config.registration,
    );
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
        Err(e) => return e.into_response(),
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
    match caduceus.register(registration, &caller, from).await {
        // 200 for renewals too, as ancla answers: clients check for it.
        Ok(registered) => Json(serde_json::json!({
            "message": "Success",
            "id": registered.id,
            "until": gotime::format_time(registered.until),
            "created": registered.created,
        }))
        .into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /hooks`: the webhooks the caller may see, secrets hidden.
async fn list(
    State(caduceus): State<Arc<Caduceus>>,
    principal: Option<Principal>,
    headers: HeaderMap,
) -> Response {
    let caller = Caller::identify(&headers, principal.as_ref(), &caduceus.config.registration);
    match caduceus.webhooks(&caller).await {
        Ok(hooks) => Json(hooks).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `DELETE /hook/{id}`: by id (hex SHA-256 of the URL, as listed).
async fn delete_by_id(
    State(caduceus): State<Arc<Caduceus>>,
    Path(id): Path<String>,
    principal: Option<Principal>,
    headers: HeaderMap,
) -> Response {
    remove(&caduceus, &id, principal.as_ref(), &headers).await
}

/// `DELETE /hook?url=<url>`: by the URL it was registered with.
async fn delete_by_url(
    State(caduceus): State<Arc<Caduceus>>,
    Query(query): Query<HashMap<String, String>>,
    principal: Option<Principal>,
    headers: HeaderMap,
) -> Response {
    match query.get("url") {
        Some(url) => remove(&caduceus, &webhook_id(url), principal.as_ref(), &headers).await,
        None => json_error(
            StatusCode::BAD_REQUEST,
            "name the webhook: DELETE /hook/{id} or /hook?url=<url>",
        ),
    }
}

async fn remove(
    caduceus: &Caduceus,
    id: &str,
    principal: Option<&Principal>,
    headers: &HeaderMap,
) -> Response {
    let caller = Caller::identify(headers, principal, &caduceus.config.registration);
    match caduceus.delete(id, &caller).await {
        Ok(()) => Json(serde_json::json!({"message": "Success", "id": id})).into_response(),
        Err(e) => e.into_response(),
    }
}
