//! The OpenAPI document of a service. Each service declares its routes with utoipa-axum's
//! `OpenApiRouter` (a handler's route and its documentation come from one `#[utoipa::path]`),
//! and [`finish`] adds the shared routes and serves the result at `GET /openapi.json`.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use serde::Serialize;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Components, Info, License, RefOr};
use utoipa::{OpenApi as _, ToSchema};
use utoipa_axum::router::OpenApiRouter;

/// The tag of the routes every service has.
pub const COMMON: &str = "common";
/// The security scheme of API credentials given as HTTP Basic.
pub const BASIC: &str = "basic";
/// The security scheme of API credentials given as a JWT bearer token.
pub const BEARER: &str = "bearer";

/// The webpa-common error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The HTTP status code again.
    pub code: u16,
    pub message: String,
}

/// A WRP message in wrp-go's JSON form (the msgpack form has the same keys). Described here
/// because the codec, wrp-nostd, stays free of anything but the codec.
#[derive(ToSchema)]
pub struct WrpMessage {
    /// 3 SimpleRequestResponse, 4 SimpleEvent, 5 Create, 6 Retrieve, 7 Update, 8 Delete,
    /// 9 ServiceRegistration, 10 ServiceAlive, 11 Unknown, 2 Authorization.
    #[schema(minimum = 2, maximum = 11)]
    pub msg_type: u8,
    /// The sender, e.g. `dns:webpa.example.com/api` or `mac:112233445566/config`.
    pub source: Option<String>,
    /// The receiver: a device locator (`mac:…`, `uuid:…`, `serial:…`, `dns:…`) and a service,
    /// or an event locator (`event:device-status/…`).
    pub dest: Option<String>,
    /// Required for request/response and CRUD messages.
    pub transaction_uuid: Option<String>,
    pub content_type: Option<String>,
    pub accept: Option<String>,
    pub status: Option<i64>,
    pub rdr: Option<i64>,
    pub headers: Option<Vec<String>>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub path: Option<String>,
    /// The payload, standard base64.
    #[schema(format = Byte)]
    pub payload: Option<String>,
    pub service_name: Option<String>,
    pub url: Option<String>,
    pub partner_ids: Option<Vec<String>>,
    pub session_id: Option<String>,
    /// Quality of service, 0..99.
    pub qos: Option<i64>,
    pub msg_id: Option<String>,
    pub spans: Option<Vec<Vec<String>>>,
    pub include_spans: Option<bool>,
}

/// A WRP message as msgpack: the request and answer bodies of `application/msgpack`.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct WrpMsgpack(pub Vec<u8>);

/// What a service says about itself in its document.
pub struct About<'a> {
    pub title: &'a str,
    pub version: &'a str,
    pub description: &'a str,
}

/// Adds `/metrics`, `/health` and `/openapi.json` to `api` and returns the router. The
/// document is rendered once, here; every operation gets an id unique in it (a handler mounted
/// under several prefixes or methods would otherwise repeat its name).
pub fn finish<S: Clone + Send + Sync + 'static>(api: OpenApiRouter<S>, about: About) -> Router<S> {
    let (router, mut doc) = api.merge(crate::routes()).split_for_parts();
    doc.merge(Served::openapi());
    // Every crate of the workspace has one license; this one's stands for the service's.
    doc.info = Info::builder()
        .title(about.title)
        .version(about.version)
        .description(Some(about.description))
        .license(Some(License::new(env!("CARGO_PKG_LICENSE"))))
        .build();
    let mut secured = false;
    for (path, item) in &mut doc.paths.paths {
        let operations = [
            ("get", &mut item.get),
            ("put", &mut item.put),
            ("post", &mut item.post),
            ("delete", &mut item.delete),
            ("patch", &mut item.patch),
        ];
        for (method, operation) in operations {
            if let Some(op) = operation {
                op.operation_id = Some(operation_id(method, path));
                secured |= is_secured(op);
            }
        }
    }
    if secured {
        let schemes = &mut doc
            .components
            .get_or_insert_with(Components::new)
            .security_schemes;
        schemes.insert(
            BASIC.into(),
            RefOr::T(SecurityScheme::Http(Http::new(HttpAuthScheme::Basic))),
        );
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.bearer_format = Some("JWT".into());
        schemes.insert(BEARER.into(), RefOr::T(SecurityScheme::Http(bearer)));
    }
    // Serialising these plain types cannot fail; an empty document would show it if it did.
    let mut text = doc.to_pretty_json().unwrap_or_default();
    text.push('\n');
    router.route(
        "/openapi.json",
        get(openapi_json).layer(Extension(Document(text.into()))),
    )
}

fn is_secured(op: &Operation) -> bool {
    op.security.as_ref().is_some_and(|s| !s.is_empty())
}

/// `get /api/v2/device/{id}/stat` → `get_api_v2_device_id_stat`.
fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_owned();
    for part in path.split(|c: char| !c.is_ascii_alphanumeric()) {
        if !part.is_empty() {
            id.push('_');
            id.push_str(part);
        }
    }
    id
}

#[derive(Clone)]
struct Document(Bytes);

#[derive(utoipa::OpenApi)]
#[openapi(paths(openapi_json))]
struct Served;

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = COMMON, responses(
    (status = 200, description = "The OpenAPI 3.1 document of this service", content_type = "application/json", body = Object),
))]
async fn openapi_json(Extension(doc): Extension<Document>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], doc.0).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_name_method_and_path() {
        assert_eq!(
            operation_id("get", "/api/v2/device/{id}/stat"),
            "get_api_v2_device_id_stat"
        );
        assert_eq!(operation_id("get", "/openapi.json"), "get_openapi_json");
    }
}
