//! Error responses in the webpa-common shape: `{"code": N, "message": "..."}`.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

pub fn json_error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "code": status.as_u16(), "message": message });
    (status, Json(body)).into_response()
}

/// An error from `/device/send`: the JSON body, plus `X-Xmidt-Message-Error` as talaria sends it.
pub fn send_error(status: StatusCode, error: &str) -> Response {
    let mut response = json_error(
        status,
        &format!("Could not process device request: {error}"),
    );
    if let Ok(value) = HeaderValue::from_str(error) {
        response
            .headers_mut()
            .insert("x-xmidt-message-error", value);
    }
    response
}
