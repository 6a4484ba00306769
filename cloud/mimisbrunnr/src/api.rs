//! The HTTP API: norns (`/norns`, `/norns/{id}`) behind API authentication, and event intake
//! (`/events`), which caduceus authenticates by signing.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::LengthLimitError;
use xmidt_auth::Principal;
use xmidt_common::json_error;

use crate::{signature, Caller, EventError, Mimisbrunnr, NornError, NornRequest, Saved};

/// The header caduceus signs its deliveries with.
const CADUCEUS_SIGNATURE: &str = "x-webpa-signature";

pub(crate) fn routes(mimisbrunnr: Arc<Mimisbrunnr>, auth: &xmidt_auth::ApiAuth) -> Router {
    let norns = Router::new()
        .route("/norns", get(list).post(create))
        .route("/norns/{id}", get(show).put(update).delete(remove))
        .layer(auth.layer());
    Router::new()
        .route("/events", post(events))
        .merge(norns)
        .with_state(mimisbrunnr)
}

/// Why a request body could not be read.
enum BodyError {
    TooLarge(usize),
    Timeout,
    Broken,
}

impl IntoResponse for BodyError {
    fn into_response(self) -> Response {
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

/// `POST /events`: one msgpack WRP event → 200 once queued for its device's norns.
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

/// `POST /norns` → 201 with the new norn, or 200 when it updated the caller's own.
async fn create(
    State(m): State<Arc<Mimisbrunnr>>,
    principal: Option<Principal>,
    request: Request,
) -> Response {
    let caller = Caller::from_principal(principal.as_ref());
    match norn_body(&m, request.into_body()).await {
        Ok(norn) => saved(m.put_norn(norn, &caller).await, StatusCode::CREATED),
        Err(response) => response,
    }
}

/// `PUT /norns/{id}` → 200 with the updated norn.
async fn update(
    State(m): State<Arc<Mimisbrunnr>>,
    Path(id): Path<String>,
    principal: Option<Principal>,
    request: Request,
) -> Response {
    let caller = Caller::from_principal(principal.as_ref());
    match norn_body(&m, request.into_body()).await {
        Ok(norn) => saved(m.update_norn(&id, norn, &caller).await, StatusCode::OK),
        Err(response) => response,
    }
}

/// `GET /norns` → the caller's norns.
async fn list(State(m): State<Arc<Mimisbrunnr>>, principal: Option<Principal>) -> Response {
    match m.norns(&Caller::from_principal(principal.as_ref())).await {
        Ok(norns) => Json(norns).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /norns/{id}` → the norn, or 404 unless it is the caller's.
async fn show(
    State(m): State<Arc<Mimisbrunnr>>,
    Path(id): Path<String>,
    principal: Option<Principal>,
) -> Response {
    match m
        .norn(&id, &Caller::from_principal(principal.as_ref()))
        .await
    {
        Ok(norn) => Json(norn).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `DELETE /norns/{id}` → 200, or 404 unless it is the caller's.
async fn remove(
    State(m): State<Arc<Mimisbrunnr>>,
    Path(id): Path<String>,
    principal: Option<Principal>,
) -> Response {
    match m
        .delete_norn(&id, &Caller::from_principal(principal.as_ref()))
        .await
    {
        Ok(()) => Json(serde_json::json!({"message": "Success", "ID": id})).into_response(),
        Err(e) => e.into_response(),
    }
}
