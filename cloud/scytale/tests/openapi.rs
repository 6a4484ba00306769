//! The document scytale serves matches its router and docs/openapi/scytale.json.

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use xmidt_scytale::{Config, Scytale, Targets};

#[tokio::test]
async fn openapi_document_matches_the_router() {
    let mut config = Config::default();
    config.auth.basic = vec!["ops:secret".into()];
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    // No talaria is needed: every request the check makes is refused before the fan-out.
    let scytale = Scytale::new(config, Targets::Fixed(vec!["http://127.0.0.1:1".into()])).unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(xmidt_scytale::serve(scytale, listener, stop.clone()));
    xmidt_common::openapi_check::Check {
        name: "scytale",
        package: "xmidt-scytale",
        base: &base,
        routes: &[
            "/api/v2/device",
            "/api/v2/device/{id}/stat",
            "/api/v3/device",
            "/api/v3/device/{id}/stat",
            "/health",
            "/metrics",
            "/openapi.json",
        ],
        basic: Some(("ops", "secret")),
        catch_all: None,
    }
    .run()
    .await;
    stop.cancel();
}
