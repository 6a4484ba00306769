//! The document mimisbrunnr serves matches its router and docs/openapi/mimisbrunnr.json.

use crate::harness::{config, start};

#[tokio::test]
async fn openapi_document_matches_the_router() {
    let service = start(|_| config()).await;
    xmidt_common::openapi_check::Check {
        name: "mimisbrunnr",
        package: "xmidt-mimisbrunnr",
        base: &service.url,
        routes: &[
            "/events",
            "/health",
            "/metrics",
            "/norns",
            "/norns/{id}",
            "/openapi.json",
        ],
        basic: None,
        catch_all: None,
    }
    .run()
    .await;
}
