//! Error responses of the API.

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
pub use xmidt_common::json_error;

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
