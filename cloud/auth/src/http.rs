//! axum integration: the API auth layer, the [`Principal`] extractor and JSON error bodies.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{HeaderValue, Request, StatusCode};
use serde::Serialize;
use tower_layer::Layer;
use tower_service::Service;
use tracing::{debug, warn};

use crate::api::ApiAuth;
use crate::error::AuthError;
use crate::partners::PartnerError;
use crate::principal::Principal;

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: u16,
    message: &'a str,
}

/// An error response in the webpa-common convention: `Content-Type: application/json` and
/// `{"code": <status>, "message": "<text>"}`.
pub fn json_error(status: StatusCode, message: &str) -> Response {
    let body = ErrorBody {
        code: status.as_u16(),
        message,
    };
    // Serializing a u16 and a str cannot fail; the fallback only keeps this total.
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

impl ApiAuth {
    /// The response for a refused request: the JSON error body, plus one `WWW-Authenticate`
    /// header per configured scheme on a 401.
    pub fn error_response(&self, error: &AuthError) -> Response {
        let status = error.status();
        let mut response = json_error(status, &error.to_string());
        if status == StatusCode::UNAUTHORIZED {
            for challenge in self.challenges() {
                response
                    .headers_mut()
                    .append(WWW_AUTHENTICATE, challenge.clone());
            }
        }
        response
    }

    /// A tower layer running [`ApiAuth::check`] on every request: a refused request gets
    /// [`ApiAuth::error_response`]; an accepted one reaches the inner service with its
    /// [`Principal`] in the request extensions (none when auth is off). The capability check
    /// sees the path as the layer sees it, so apply the layer outside any `nest`.
    pub fn layer(&self) -> ApiAuthLayer {
        ApiAuthLayer { auth: self.clone() }
    }
}

/// The [`tower_layer::Layer`] made by [`ApiAuth::layer`].
#[derive(Debug, Clone)]
pub struct ApiAuthLayer {
    auth: ApiAuth,
}

impl<S> Layer<S> for ApiAuthLayer {
    type Service = ApiAuthService<S>;

    fn layer(&self, inner: S) -> ApiAuthService<S> {
        ApiAuthService {
            auth: self.auth.clone(),
            inner,
        }
    }
}

/// The service wrapped by [`ApiAuthLayer`].
#[derive(Debug, Clone)]
pub struct ApiAuthService<S> {
    auth: ApiAuth,
    inner: S,
}

impl<S, B> Service<Request<B>> for ApiAuthService<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // Use the instance that was driven to readiness; leave a fresh clone for the next call.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let auth = self.auth.clone();
        Box::pin(async move {
            // The body is not Sync, so only the parts are borrowed across the await.
            let (mut parts, body) = request.into_parts();
            match auth
                .check(parts.method.as_str(), parts.uri.path(), &parts.headers)
                .await
            {
                Ok(principal) => {
                    if let Some(principal) = principal {
                        parts.extensions.insert(principal);
                    }
                    inner.call(Request::from_parts(parts, body)).await
                }
                Err(error) => {
                    if matches!(error, AuthError::KeyUnavailable(_)) {
                        warn!(%error, path = parts.uri.path(), "request refused: cannot verify token");
                    } else {
                        debug!(%error, method = %parts.method, path = parts.uri.path(), "request refused");
                    }
                    Ok(auth.error_response(&error))
                }
            }
        })
    }
}

/// Extracts the principal put in place by [`ApiAuthLayer`]; 401 when there is none (auth off,
/// or the route is outside the layer). Use `Option<Principal>` on routes that must also work
/// with auth off.
impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Principal, Response> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| json_error(StatusCode::UNAUTHORIZED, "authentication required"))
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Principal {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Principal>, Infallible> {
        Ok(parts.extensions.get::<Principal>().cloned())
    }
}

/// The JSON error body with [`AuthError::status`], without challenges (see
/// [`ApiAuth::error_response`] for those).
impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        json_error(self.status(), &self.to_string())
    }
}

/// The JSON error body with scytale's status and message.
impl IntoResponse for PartnerError {
    fn into_response(self) -> Response {
        json_error(self.status, self.message)
    }
}
