//! The HTTP API: norns (`/norns`, `/norns/{id}`) behind API authentication, and event intake
//! (`/events`), which caduceus authenticates by signing.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use xmidt_auth::Principal;
use xmidt_common::openapi::WrpMsgpack;
use xmidt_common::ErrorBody;
use xmidt_common::{json_error, read_body};

use crate::{signature, Caller, EventError, Mimisbrunnr, NornError, NornRequest, Saved};

/// The header caduceus signs its deliveries with.
const CADUCEUS_SIGNATURE: &str = "x-webpa-signature";

/// Every norn route acts for the caller its principal names (see [`Caller::from_principal`]).
impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Caller, Infallible> {
        Ok(Caller::from_principal(parts.extensions.get::<Principal>()))
    }
}

pub(crate) fn routes(
    mimisbrunnr: Arc<Mimisbrunnr>,
    auth: &xmidt_auth::ApiAuth,
) -> OpenApiRouter<()> {
    let norns = OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
        .layer(auth.layer());
    OpenApiRouter::new()
        .routes(routes!(events))
        .merge(norns)
        .with_state(mimisbrunnr)
}

/// The answer to a deletion.
#[derive(Serialize, ToSchema)]
struct Removed {
    /// `Success`.
    message: &'static str,
    #[serde(rename = "ID")]
    id: String,
}

/// One msgpack WRP event (caduceus delivers them here) → 200 once queued for its device's norns.
#[utoipa::path(post, path = "/events", tag = "intake",
    params(("X-Webpa-Signature" = Option<String>, Header, description = "`sha1=<hex HMAC-SHA1 of the body>`, required when `caduceus.secret` is set")),
    request_body(description = "One WRP event", content((WrpMsgpack = "application/msgpack"))),
    responses(
        (status = 200, description = "Queued for the device's norns", content_type = "text/plain", body = String),
        (status = 400, description = "Not a WRP event, or the body broke off", body = ErrorBody),
        (status = 403, description = "The signature is missing or does not match", body = ErrorBody),
        (status = 408, description = "The body took longer than `intake.read_timeout`", body = ErrorBody),
        (status = 413, description = "The body is larger than `intake.max_event_size`", body = ErrorBody),
        (status = 429, description = "A norn's buffer is full", body = ErrorBody),
    ))]
async fn events(State(m): State<Arc<Mimisbrunnr>>, request: Request) -> Response {
    let secret = m.config.caduceus.as_ref().and_then(|c| c.secret.clone());
    let signature = request
        .headers()
        .get(CADUCEUS_SIGNATURE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let intake = &m.config.intake;
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
    if let Some(secret) = secret.filter(|s| !s.is_empty()) {
        if !signature.is_some_and(|s| signature::verify(&secret, &body, &s)) {
            return json_error(
                StatusCode::FORBIDDEN,
                "X-Webpa-Signature is missing or does not match the body",
            );
        }
    }
    match m.accept_event(&body) {
        Ok(()) => (StatusCode::OK, "Event accepted.\n").into_response(),
        Err(e @ EventError::Full) => json_error(StatusCode::TOO_MANY_REQUESTS, &e.to_string()),
        Err(e) => json_error(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

impl IntoResponse for NornError {
    fn into_response(self) -> Response {
        let status = match &self {
            NornError::Invalid(_) => StatusCode::BAD_REQUEST,
            NornError::NotFound => StatusCode::NOT_FOUND,
            NornError::Conflict => StatusCode::CONFLICT,
            NornError::TooMany(_) => StatusCode::FORBIDDEN,
            NornError::Store(e) => {
                tracing::error!(error = %e, "norn store failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        json_error(status, &self.to_string())
    }
}

/// A norn body: JSON in the Go shape, within `max_norn_body`.
async fn norn_body(m: &Mimisbrunnr, body: Body) -> Result<NornRequest, Response> {
    let bytes = read_body(body, m.config.max_norn_body, m.config.intake.read_timeout)
        .await
        .map_err(IntoResponse::into_response)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| NornError::Invalid(crate::Invalid::Json(e.to_string())).into_response())
}

fn saved(result: Result<Saved, NornError>, new_status: StatusCode) -> Response {
    match result {
        Ok(saved) if saved.created => (new_status, Json(saved.view)).into_response(),
        Ok(saved) => Json(saved.view).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Creates a norn (201), or updates the caller's own for the same device and destination (200).
#[utoipa::path(post, path = "/norns", tag = "norns",
    security(("basic" = []), ("bearer" = [])),
    request_body(content = NornRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Updated; A norn as shown: the request with secrets obfuscated, plus `ID` and `ExpiresAt` (RFC 3339)", content_type = "application/json", body = Object),
        (status = 201, description = "Created; A norn as shown: the request with secrets obfuscated, plus `ID` and `ExpiresAt` (RFC 3339)", content_type = "application/json", body = Object),
        (status = 400, description = "Not a valid norn, or the body broke off", body = ErrorBody),
        (status = 408, description = "The body took longer than `intake.read_timeout`", body = ErrorBody),
        (status = 409, description = "A norn for this device and destination belongs to another owner", body = ErrorBody),
        (status = 413, description = "The body is larger than `max_norn_body`", body = ErrorBody),
        (status = 401, description = "API credentials missing or invalid", body = ErrorBody),
        (status = 403, description = "Too many norns, or the credentials do not allow this call", body = ErrorBody),
        (status = 500, description = "The store failed", body = ErrorBody),
        (status = 503, description = "A signing key is unavailable", body = ErrorBody),
    ))]
async fn create(State(m): State<Arc<Mimisbrunnr>>, caller: Caller, request: Request) -> Response {
    match norn_body(&m, request.into_body()).await {
        Ok(norn) => saved(m.put_norn(norn, &caller).await, StatusCode::CREATED),
        Err(response) => response,
    }
}

/// Replaces the caller's norn.
#[utoipa::path(put, path = "/norns/{id}", tag = "norns",
    security(("basic" = []), ("bearer" = [])),
    params(("id" = String, Path, description = "The norn's id")),
    request_body(content = NornRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "A norn as shown: the request with secrets obfuscated, plus `ID` and `ExpiresAt` (RFC 3339)", content_type = "application/json", body = Object),
        (status = 400, description = "Not a valid norn, or the body broke off", body = ErrorBody),
        (status = 404, description = "No such norn, or not the caller's", body = ErrorBody),
        (status = 408, description = "The body took longer than `intake.read_timeout`", body = ErrorBody),
        (status = 409, description = "A norn for this device and destination belongs to another owner", body = ErrorBody),
        (status = 413, description = "The body is larger than `max_norn_body`", body = ErrorBody),
        (status = 401, description = "API credentials missing or invalid", body = ErrorBody),
        (status = 403, description = "The credentials do not allow this call", body = ErrorBody),
        (status = 500, description = "The store failed", body = ErrorBody),
        (status = 503, description = "A signing key is unavailable", body = ErrorBody),
    ))]
async fn update(
    State(m): State<Arc<Mimisbrunnr>>,
    Path(id): Path<String>,
    caller: Caller,
    request: Request,
) -> Response {
    match norn_body(&m, request.into_body()).await {
        Ok(norn) => saved(m.update_norn(&id, norn, &caller).await, StatusCode::OK),
        Err(response) => response,
    }
}

/// The caller's norns.
#[utoipa::path(get, path = "/norns", tag = "norns",
    security(("basic" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Norns as shown: requests with secrets obfuscated, plus `ID` and `ExpiresAt`", content_type = "application/json", body = Vec<Object>),
        (status = 401, description = "API credentials missing or invalid", body = ErrorBody),
        (status = 403, description = "The credentials do not allow this call", body = ErrorBody),
        (status = 500, description = "The store failed", body = ErrorBody),
        (status = 503, description = "A signing key is unavailable", body = ErrorBody),
    ))]
async fn list(State(m): State<Arc<Mimisbrunnr>>, caller: Caller) -> Response {
    m.norns(&caller).await.map(Json).into_response()
}

/// One of the caller's norns.
#[utoipa::path(get, path = "/norns/{id}", tag = "norns",
    security(("basic" = []), ("bearer" = [])),
    params(("id" = String, Path, description = "The norn's id")),
    responses(
        (status = 200, description = "A norn as shown: the request with secrets obfuscated, plus `ID` and `ExpiresAt` (RFC 3339)", content_type = "application/json", body = Object),
        (status = 404, description = "No such norn, or not the caller's", body = ErrorBody),
        (status = 401, description = "API credentials missing or invalid", body = ErrorBody),
        (status = 403, description = "The credentials do not allow this call", body = ErrorBody),
        (status = 500, description = "The store failed", body = ErrorBody),
        (status = 503, description = "A signing key is unavailable", body = ErrorBody),
    ))]
async fn show(
    State(m): State<Arc<Mimisbrunnr>>,
    Path(id): Path<String>,
    caller: Caller,
) -> Response {
    m.norn(&id, &caller).await.map(Json).into_response()
}

/// Deletes one of the caller's norns; its buffered events are dropped.
#[utoipa::path(delete, path = "/norns/{id}", tag = "norns",
    security(("basic" = []), ("bearer" = [])),
    params(("id" = String, Path, description = "The norn's id")),
    responses(
        (status = 200, description = "Deleted", body = Removed),
        (status = 404, description = "No such norn, or not the caller's", body = ErrorBody),
        (status = 401, description = "API credentials missing or invalid", body = ErrorBody),
        (status = 403, description = "The credentials do not allow this call", body = ErrorBody),
        (status = 500, description = "The store failed", body = ErrorBody),
        (status = 503, description = "A signing key is unavailable", body = ErrorBody),
    ))]
async fn remove(
    State(m): State<Arc<Mimisbrunnr>>,
    Path(id): Path<String>,
    caller: Caller,
) -> Response {
    m.delete_norn(&id, &caller)
        .await
        .map(|()| {
            Json(Removed {
                message: "Success",
                id,
            })
        })
        .into_response()
}
