//! What every Xmidt service shares: the webpa-common error body, the `/metrics` and `/health`
//! routes, the OpenAPI document served at `/openapi.json`, and the loops that serve HTTP and
//! reload stored records.

use std::sync::OnceLock;

mod body;
pub mod gotime;
pub mod openapi;
#[cfg(feature = "openapi-check")]
pub mod openapi_check;
pub mod reload;
mod serve;
pub use body::{read_body, BodyError};
pub use openapi::ErrorBody;
pub use serve::serve;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// An error response in the webpa-common shape: `{"code": N, "message": "..."}`.
pub fn json_error(status: StatusCode, message: &str) -> Response {
    let body = ErrorBody {
        code: status.as_u16(),
        message: message.to_owned(),
    };
    (status, Json(body)).into_response()
}

/// The process-wide Prometheus recorder, installed on first use. One process may run several
/// services (`xmidt up`), and they share it, as they share the metric names' `xmidt_` prefix.
fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(handle) => Some(handle),
            Err(e) => {
                // Another recorder was installed first (a test harness, an embedding program).
                tracing::warn!(error = %e, "metrics recorder not installed; /metrics will be empty");
                None
            }
        })
        .as_ref()
}

/// `GET /metrics` (Prometheus text) and `GET /health`, documented; [`openapi::finish`] adds
/// them to every service.
fn routes<S: Clone + Send + Sync + 'static>() -> OpenApiRouter<S> {
    // Install now, so metrics recorded before the first scrape are kept.
    prometheus();
    OpenApiRouter::new()
        .routes(routes!(metrics))
        .routes(routes!(health))
}

/// Every metric of the process, in the Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = openapi::COMMON, responses(
    (status = 200, description = "Prometheus text exposition", content_type = "text/plain; version=0.0.4", body = String),
))]
async fn metrics() -> Response {
    let body = prometheus().map(|h| h.render()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// `/health`'s answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Health {
    /// Always `up` while the process serves.
    status: &'static str,
}

/// Liveness: answers while the process serves.
#[utoipa::path(get, path = "/health", tag = openapi::COMMON, responses(
    (status = 200, description = "The service is up", body = Health),
))]
async fn health() -> Json<Health> {
    Json(Health { status: "up" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{to_bytes, Body};
    use axum::http::Request;
    use tower::ServiceExt;

    #[tokio::test]
    async fn metrics_and_health_are_served() {
        let app: axum::Router = routes().into();
        metrics::counter!("xmidt_common_test_total").increment(3);
        let r = app
            .clone()
            .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let text =
            String::from_utf8(to_bytes(r.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap();
        assert!(text.contains("xmidt_common_test_total 3"), "{text}");
        let r = app
            .oneshot(Request::get("/health").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    #[tokio::test]
    async fn errors_have_the_webpa_shape() {
        let r = json_error(StatusCode::NOT_FOUND, "gone");
        assert_eq!(r.status(), 404);
        let body = to_bytes(r.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], br#"{"code":404,"message":"gone"}"#);
    }
}
