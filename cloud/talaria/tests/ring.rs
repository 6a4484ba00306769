//! The ring check: devices connecting to the wrong talaria are redirected or refused, and a ring
//! change moves devices to their new owner.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_util::sync::CancellationToken;
use xmidt_discovery::{DiscoveryConfig, HealthConfig};
use xmidt_ring::{Ring, RingOptions};
use xmidt_talaria::config::{RingCheckConfig, RingMode};
use xmidt_talaria::Talaria;

const WAIT: Duration = Duration::from_secs(15);

struct Node {
    url: String,
    addr: SocketAddr,
    talaria: Arc<Talaria>,
    _stop: CancellationToken,
}

async fn node(listener: TcpListener, members: &[String], mode: RingMode, health: bool) -> Node {
    let addr = listener.local_addr().unwrap();
    let url = format!("http://{addr}");
    let stop = CancellationToken::new();
    let mut config = xmidt_talaria::Config::default();
    config.outbound.event_endpoints.clear();
    let talaria = Talaria::new(config, stop.clone()).unwrap();
    let ring = RingCheckConfig {
        self_url: url.clone(),
        discovery: DiscoveryConfig {
            fixed: members.to_vec(),
            default_scheme: "http".into(),
            health: health.then(|| HealthConfig {
                interval: Duration::from_millis(100),
                timeout: Duration::from_millis(300),
                failure_threshold: 1,
                ..HealthConfig::default()
            }),
            ..DiscoveryConfig::default()
        },
        mode,
        rehash: true,
    };
    talaria.follow_ring(&ring).await.unwrap();
    tokio::spawn(xmidt_talaria::serve(
        talaria.clone(),
        listener,
        None,
        stop.clone(),
    ));
    Node {
        url,
        addr,
        talaria,
        _stop: stop,
    }
}

async fn connect(addr: SocketAddr, id: &str) -> Result<(), u16> {
    let mut request = format!("ws://{addr}/api/v2/device")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("X-Webpa-Device-Name", id.parse().unwrap());
    match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .unwrap()
    {
        Ok((ws, _)) => {
            // Keep the connection open for the rest of the test.
            tokio::spawn(async move {
                let mut ws = ws;
                use futures_util::StreamExt;
                while let Some(Ok(_)) = ws.next().await {}
            });
            Ok(())
        }
        Err(WsError::Http(r)) => Err(r.status().as_u16()),
        Err(e) => panic!("{e}"),
    }
}

/// A device id owned by `owner` in `ring`.
fn owned_by(ring: &Ring, owner: &str) -> String {
    (0u64..)
        .map(|i| format!("mac:{i:012x}"))
        .find(|id| ring.owner(id.as_bytes()).unwrap().as_str() == owner)
        .unwrap()
}

async fn listeners(ips: &[&str]) -> (Vec<TcpListener>, Vec<String>) {
    let mut ls = Vec::new();
    for ip in ips {
        ls.push(TcpListener::bind(format!("{ip}:0")).await.unwrap());
    }
    let urls = ls
        .iter()
        .map(|l| format!("http://{}", l.local_addr().unwrap()))
        .collect();
    (ls, urls)
}

#[tokio::test]
async fn the_wrong_talaria_redirects_or_refuses() {
    let (mut ls, urls) = listeners(&["127.0.0.12", "127.0.0.13"]).await;
    let ring = Ring::new(&urls, &RingOptions::default()).unwrap();
    let b = node(ls.pop().unwrap(), &urls, RingMode::Refuse, false).await;
    let a = node(ls.pop().unwrap(), &urls, RingMode::Redirect, false).await;
    let for_b = owned_by(&ring, &b.url);
    let for_a = owned_by(&ring, &a.url);

    let mut request = format!("ws://{}/api/v2/device", a.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("X-Webpa-Device-Name", for_b.parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(WsError::Http(r)) => {
            assert_eq!(r.status(), 307);
            assert_eq!(r.headers()["location"], format!("{}/api/v2/device", b.url));
        }
        other => panic!("expected a redirect, got {other:?}"),
    }
    assert_eq!(connect(b.addr, &for_a).await, Err(410));
    assert_eq!(connect(b.addr, &for_b).await, Ok(()));
    assert_eq!(connect(a.addr, &for_a).await, Ok(()));
    assert!(b.talaria.registry.get(&for_b).is_some());
}

#[tokio::test]
async fn a_new_talaria_takes_its_devices_from_the_others() {
    let (mut ls, urls) = listeners(&["127.0.0.14", "127.0.0.15", "127.0.0.16"]).await;
    // The third talaria is not up yet: health checks keep it out of the ring.
    let late = ls.pop().unwrap();
    let late_addr = late.local_addr().unwrap();
    drop(late);
    let b = node(ls.pop().unwrap(), &urls, RingMode::Redirect, true).await;
    let a = node(ls.pop().unwrap(), &urls, RingMode::Redirect, true).await;

    let two = Ring::new(&urls[..2], &RingOptions::default()).unwrap();
    let three = Ring::new(&urls, &RingOptions::default()).unwrap();
    // Devices that live on a or b now and belong to the third talaria once it is up.
    let movers: Vec<String> = (0u64..2000)
        .map(|i| format!("mac:{i:012x}"))
        .filter(|id| three.owner(id.as_bytes()).unwrap().as_str() == urls[2])
        .take(4)
        .collect();
    let stayer = (0u64..)
        .map(|i| format!("mac:{i:012x}"))
        .find(|id| three.owner(id.as_bytes()).unwrap().as_str() == a.url)
        .unwrap();
    for id in movers.iter().chain([&stayer]) {
        let home = if two.owner(id.as_bytes()).unwrap().as_str() == a.url {
            a.addr
        } else {
            b.addr
        };
        // Until each talaria has seen the other pass a health check, it may redirect.
        let deadline = tokio::time::Instant::now() + WAIT;
        while connect(home, id).await == Err(307) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "both talarias agree on the ring"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let connected = |n: &Node, id: &str| n.talaria.registry.get(id).is_some();
    assert!(movers
        .iter()
        .all(|id| connected(&a, id) || connected(&b, id)));

    let _c = node(
        TcpListener::bind(late_addr).await.unwrap(),
        &urls,
        RingMode::Redirect,
        true,
    )
    .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while movers
        .iter()
        .any(|id| connected(&a, id) || connected(&b, id))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "devices owned by the new talaria are let go"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(connected(&a, &stayer), "devices still owned here stay");
}
