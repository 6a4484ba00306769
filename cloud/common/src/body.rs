//! Reading a request body with a size limit and a deadline, and the webpa-style answer when
//! that fails: every service that takes a body reads it this way.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use http_body_util::LengthLimitError;

use crate::json_error;

/// Why a request body could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Over the limit (413).
    TooLarge(usize),
    /// Not all there in time (408).
    Timeout,
    /// The connection broke off (400).
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
pub async fn read_body(body: Body, limit: usize, timeout: Duration) -> Result<Bytes, BodyError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bodies_within_the_limit_are_read_and_others_refused() {
        let second = Duration::from_secs(1);
        let read = read_body(Body::from("12345"), 5, second).await;
        assert_eq!(read, Ok(Bytes::from("12345")));
        let read = read_body(Body::from("123456"), 5, second).await;
        assert_eq!(read, Err(BodyError::TooLarge(5)));
        assert_eq!(
            BodyError::TooLarge(5).into_response().status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );

        // A body that never ends.
        let (_sender, never) = tokio::io::duplex(16);
        let stream = tokio_util::io::ReaderStream::new(never);
        let read = read_body(Body::from_stream(stream), 5, Duration::from_millis(50)).await;
        assert_eq!(read, Err(BodyError::Timeout));
    }
}
