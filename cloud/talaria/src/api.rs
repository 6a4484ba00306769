//! The API: send a WRP to a device and wait for its answer; list devices; one device's stats.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::oneshot;
use wrp_nostd::{DeviceId, Message, OwnedMessage};
use xmidt_common::openapi::{WrpMessage, WrpMsgpack};
use xmidt_common::ErrorBody;

use crate::error::{json_error, send_error};
use crate::registry::{DeviceView, Envelope, QueueError, TransactionError};
use crate::Talaria;

/// `/devices`'s answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct DeviceList {
    pub devices: Vec<DeviceView>,
}

/// The two WRP encodings the API speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Msgpack,
    Json,
}

impl Format {
    /// wrp-go's rule: a Content-Type/Accept containing "json" is JSON, "msgpack" is msgpack,
    /// empty is the default. Unlike wrp-go, wildcards (`*/*`, curl's default) also mean the
    /// default, instead of a 400.
    pub fn from_media_type(value: &str) -> Option<Format> {
        let v = value.trim();
        if v.contains("json") {
            Some(Format::Json)
        } else if v.is_empty()
            || v.contains("msgpack")
            || v.starts_with("*/*")
            || v.starts_with("application/*")
        {
            Some(Format::Msgpack)
        } else {
            None
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Msgpack => "application/msgpack",
            Format::Json => "application/json",
        }
    }
}

/// What `/device/send` waits for.
enum Wait {
    /// The device's answer to a transaction.
    Answer(oneshot::Receiver<Vec<u8>>),
    /// The frame of an event being written.
    Written(oneshot::Receiver<bool>),
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Sends one WRP message to a connected device and, for a transaction, waits for its answer.
#[utoipa::path(method(post, patch), path = "/device/send", tag = "api",
    security(("basic" = []), ("bearer" = [])),
    params(("Accept" = Option<String>, Header, description = "The answer's format: JSON or msgpack (the default)")),
    request_body(description = "One WRP message; msgpack unless Content-Type names JSON", content(
        (WrpMsgpack = "application/msgpack"),
        (WrpMessage = "application/json"),
    )),
    responses(
        (status = 200, description = "The device's answer in the Accept format; empty once an event is written", content(
            (WrpMsgpack = "application/msgpack"),
            (WrpMessage = "application/json"),
        )),
        (status = 400, description = "Invalid WRP, Accept, device name, or a missing or duplicate transaction", body = ErrorBody,
            headers(("X-Xmidt-Message-Error" = String, description = "The reason"))),
        (status = 401, description = "API credentials missing or invalid", body = ErrorBody),
        (status = 403, description = "The credentials do not allow this call", body = ErrorBody),
        (status = 404, description = "The device is not connected here", body = ErrorBody),
        (status = 413, description = "The body is larger than `api.max_body`"),
        (status = 415, description = "Content-Type is neither msgpack nor JSON", body = ErrorBody),
        (status = 500, description = "The device's answer is not valid WRP", body = ErrorBody),
        (status = 503, description = "The device's queue is full, or a signing key is unavailable", body = ErrorBody),
        (status = 504, description = "The device disconnected or did not answer in time", body = ErrorBody),
    ))]
pub async fn send(State(t): State<Arc<Talaria>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(format) = Format::from_media_type(header_text(&headers, header::CONTENT_TYPE)) else {
        return send_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid WRP content type",
        );
    };
    let Some(accept) = Format::from_media_type(header_text(&headers, header::ACCEPT)) else {
        return send_error(
            StatusCode::BAD_REQUEST,
            "invalid Accept: expected JSON or msgpack",
        );
    };
    // msgpack is read in place (this is the hot path); JSON needs an owned message to point into.
    let owned;
    let message = match format {
        Format::Msgpack => Message::decode(&body).map_err(|e| e.to_string()),
        Format::Json => match OwnedMessage::from_json(&body) {
            Ok(m) => {
                owned = m;
                Ok(owned.as_message())
            }
            Err(e) => Err(e.to_string()),
        },
    };
    let message = match message {
        Ok(m) => m,
        Err(e) => return send_error(StatusCode::BAD_REQUEST, &format!("invalid WRP: {e}")),
    };
    if message.msg_type.requires_transaction() && message.transaction_uuid.is_empty() {
        return send_error(StatusCode::BAD_REQUEST, "a transaction_uuid is required");
    }
    let id = match DeviceId::parse(message.dest) {
        Ok(id) => id.to_string(),
        Err(_) => return send_error(StatusCode::BAD_REQUEST, "invalid device name"),
    };
    let Some(device) = t.registry.get(&id) else {
        return send_error(StatusCode::NOT_FOUND, "the device does not exist");
    };
    let frame = match message.to_vec() {
        Ok(f) => f,
        Err(e) => return send_error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    // A transaction is done once answered, an event once written. A transaction needs no word
    // from the write pump: a failed write closes the device, which ends the wait for the answer.
    let (wait, written) = if message.is_transaction() {
        match device.expect_answer(message.transaction_uuid) {
            Ok(rx) => (Wait::Answer(rx), None),
            Err(TransactionError::Duplicate) => {
                return send_error(
                    StatusCode::BAD_REQUEST,
                    "that transaction is already registered",
                )
            }
            Err(TransactionError::Closed) => {
                return send_error(StatusCode::GATEWAY_TIMEOUT, "the device disconnected")
            }
        }
    } else {
        let (tx, rx) = oneshot::channel();
        (Wait::Written(rx), Some(tx))
    };
    if let Err(e) = device.enqueue(Envelope { frame, written }) {
        device.forget(message.transaction_uuid);
        return match e {
            QueueError::Full => send_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the device's queue is full",
            ),
            QueueError::Closed => {
                send_error(StatusCode::GATEWAY_TIMEOUT, "the device disconnected")
            }
        };
    }
    let deadline = tokio::time::Instant::now() + t.config.api.request_timeout;
    let answer = match wait {
        Wait::Answer(answer) => answer,
        Wait::Written(written) => {
            return match tokio::time::timeout_at(deadline, written).await {
                Ok(Ok(true)) => StatusCode::OK.into_response(),
                Ok(_) => send_error(StatusCode::GATEWAY_TIMEOUT, "the device disconnected"),
                Err(_) => send_error(StatusCode::GATEWAY_TIMEOUT, "timed out"),
            }
        }
    };
    let frame = match tokio::time::timeout_at(deadline, answer).await {
        Ok(Ok(frame)) => frame,
        Ok(Err(_)) => return send_error(StatusCode::GATEWAY_TIMEOUT, "the device disconnected"),
        Err(_) => {
            device.forget(message.transaction_uuid);
            return send_error(
                StatusCode::GATEWAY_TIMEOUT,
                "timed out waiting for the device",
            );
        }
    };
    let body = match accept {
        Format::Msgpack => frame,
        Format::Json => match OwnedMessage::decode(&frame) {
            Ok(m) => m.to_json(),
            Err(e) => return send_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        },
    };
    ([(header::CONTENT_TYPE, accept.content_type())], body).into_response()
}

/// Every connected device, rendered at most once per `api.devices_cache`.
#[utoipa::path(get, path = "/devices", tag = "api",
    security(("basic" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The devices", body = DeviceList),
        (status = 401, description = "API credentials missing or invalid", body = ErrorBody),
        (status = 403, description = "The credentials do not allow this call", body = ErrorBody),
        (status = 503, description = "A signing key is unavailable", body = ErrorBody),
    ))]
pub async fn devices(State(t): State<Arc<Talaria>>) -> Response {
    let mut cache = t.devices_cache.lock().await;
    let fresh = cache
        .as_ref()
        .is_some_and(|(at, _)| at.elapsed() < t.config.api.devices_cache);
    if !fresh {
        let devices = t.registry.all().iter().map(|d| d.view()).collect();
        // Plain data: serialising it cannot fail.
        let body = serde_json::to_string(&DeviceList { devices }).unwrap_or_default();
        *cache = Some((Instant::now(), Bytes::from(body)));
    }
    let body = cache.as_ref().map(|(_, b)| b.clone()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// One device's statistics, without contacting the device.
#[utoipa::path(get, path = "/device/{id}/stat", tag = "api",
    security(("basic" = []), ("bearer" = [])),
    params(("id" = String, Path, description = "The device, e.g. `mac:112233445566`")),
    responses(
        (status = 200, description = "The device", body = DeviceView),
        (status = 400, description = "Not a device name", body = ErrorBody),
        (status = 401, description = "API credentials missing or invalid", body = ErrorBody),
        (status = 403, description = "The credentials do not allow this call", body = ErrorBody),
        (status = 404, description = "The device is not connected here (empty body)"),
        (status = 503, description = "A signing key is unavailable", body = ErrorBody),
    ))]
pub async fn stat(State(t): State<Arc<Talaria>>, Path(name): Path<String>) -> Response {
    let id = match DeviceId::parse(&name) {
        Ok(id) => id.to_string(),
        Err(_) => return json_error(StatusCode::BAD_REQUEST, "invalid device name"),
    };
    match t.registry.get(&id) {
        Some(device) => axum::Json(device.view()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
