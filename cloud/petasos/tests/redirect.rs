//! Petasos over real sockets: every device lands where the ring says, errors are Go's.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use xmidt_petasos::{location, RingSource};
use xmidt_ring::{Instance, Ring, RingOptions};

struct Fixed(Arc<Ring>);

impl RingSource for Fixed {
    fn ring(&self) -> Arc<Ring> {
        self.0.clone()
    }
}

async fn start(instances: &[&str]) -> (String, Arc<Ring>, CancellationToken) {
    let ring = Arc::new(Ring::new(instances, &RingOptions::default()).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    tokio::spawn(xmidt_petasos::serve(
        Arc::new(Fixed(ring.clone())),
        listener,
        stop.clone(),
    ));
    (base, ring, stop)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn devices_are_sent_to_their_ring_owner() {
    let talarias = [
        "http://talaria-0:6200",
        "http://talaria-1:6200",
        "http://talaria-2:6200",
    ];
    let (base, ring, _stop) = start(&talarias).await;
    let mut owners = std::collections::BTreeSet::new();
    for i in 0..60u32 {
        let id = format!("mac:{i:012x}");
        let r = client()
            .get(format!("{base}/api/v2/device?x=1"))
            .header(
                "X-Webpa-Device-Name",
                id.to_uppercase().replace("MAC", "mac"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 307);
        let owner = ring.owner(id.as_bytes()).unwrap();
        owners.insert(owner.to_string());
        assert_eq!(
            r.headers()["location"],
            format!("{owner}/api/v2/device?x=1")
        );
        assert!(r.text().await.unwrap().contains("Temporary Redirect"));
    }
    assert_eq!(owners.len(), 3, "60 devices spread over all three talarias");

    // The compose README's example: mac:112233445566 goes to talaria-0 of two.
    let (base, _ring, _stop) = start(&talarias[..2]).await;
    let r = client()
        .post(format!("{base}/api/v3/device/send/"))
        .header("X-Webpa-Device-Name", "mac:11:22:33:44:55:66/config")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 307);
    assert_eq!(
        r.headers()["location"],
        "http://talaria-0:6200/api/v3/device/send"
    );
}

#[tokio::test]
async fn missing_invalid_and_unowned_devices_get_go_errors() {
    let (base, _ring, _stop) = start(&["http://talaria-0:6200"]).await;
    let r = client()
        .get(format!("{base}/api/v2/device"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.text().await.unwrap(), "missing device name header");
    let r = client()
        .get(format!("{base}/api/v2/device"))
        .header("X-Webpa-Device-Name", "mac:123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.text().await.unwrap(), "invalid device name");

    let (base, _ring, _stop) = start(&[]).await;
    let r = client()
        .get(format!("{base}/api/v2/device"))
        .header("X-Webpa-Device-Name", "mac:112233445566")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(
        client()
            .get(format!("{base}/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[test]
fn local_talarias_keep_the_host_a_remote_client_used() {
    let local = Instance::parse("http://127.0.0.1:6200", "http").unwrap();
    // From inside QEMU's user network the host is 10.0.2.2.
    assert_eq!(
        location(&local, Some("10.0.2.2"), "/api/v2/device"),
        "http://10.0.2.2:6200/api/v2/device"
    );
    assert_eq!(
        location(&local, Some("gateway.lan"), "/x"),
        "http://gateway.lan:6200/x"
    );
    // A local client can reach the local talaria as it is.
    assert_eq!(
        location(&local, Some("127.0.0.1"), "/x"),
        "http://127.0.0.1:6200/x"
    );
    assert_eq!(
        location(&local, Some("localhost"), "/x"),
        "http://127.0.0.1:6200/x"
    );
    // Remote talarias are never rewritten.
    let remote = Instance::parse("http://talaria-1:6200", "http").unwrap();
    assert_eq!(
        location(&remote, Some("10.0.2.2"), "/x/"),
        "http://talaria-1:6200/x"
    );
}

#[tokio::test]
async fn openapi_document_matches_the_router() {
    let (base, _ring, _stop) = start(&["http://talaria-0:6200"]).await;
    xmidt_common::openapi_check::Check {
        name: "petasos",
        package: "xmidt-petasos",
        base: &base,
        routes: &["/health", "/metrics", "/openapi.json", "/{path}"],
        basic: None,
        catch_all: Some("/{path}"),
    }
    .run()
    .await;
}
