//! The document caduceus serves matches its router and docs/openapi/caduceus.json.

use crate::common::{config, start};

#[tokio::test]
async fn openapi_document_matches_the_router() {
    let caduceus = start(config()).await;
    xmidt_common::openapi_check::Check {
        name: "caduceus",
        package: "xmidt-caduceus",
        base: &caduceus.base,
        routes: &[
            "/api/v3/hook",
            "/api/v3/hook/{id}",
            "/api/v3/hooks",
            "/api/v3/notify",
            "/api/v4/notify",
            "/health",
            "/hook",
            "/hook/{id}",
            "/hooks",
            "/metrics",
            "/openapi.json",
        ],
        basic: None,
        catch_all: None,
    }
    .run()
    .await;
}
