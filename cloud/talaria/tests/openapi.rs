//! The documents talaria serves (API and control) match its routers and docs/openapi/.

mod common;

use xmidt_common::openapi_check::Check;

#[tokio::test]
async fn openapi_documents_match_the_routers() {
    let t = common::start(|_| {}).await;
    let versioned = |path: &str| [format!("/api/v2{path}"), format!("/api/v3{path}")];
    let shared = ["/health", "/metrics", "/openapi.json"].map(String::from);

    let api: Vec<String> = ["/device", "/device/send", "/devices", "/device/{id}/stat"]
        .iter()
        .flat_map(|p| versioned(p))
        .chain(shared.clone())
        .collect();
    Check {
        name: "talaria",
        package: "xmidt-talaria",
        base: &format!("http://{}", t.addr),
        routes: &api.iter().map(String::as_str).collect::<Vec<_>>(),
        basic: None,
        catch_all: None,
    }
    .run()
    .await;

    let control: Vec<String> = ["/device/gate", "/device/drain"]
        .iter()
        .flat_map(|p| versioned(p))
        .chain(shared)
        .collect();
    Check {
        name: "talaria-control",
        package: "xmidt-talaria",
        base: &format!("http://{}", t.control),
        routes: &control.iter().map(String::as_str).collect::<Vec<_>>(),
        basic: None,
        catch_all: None,
    }
    .run()
    .await;
}
