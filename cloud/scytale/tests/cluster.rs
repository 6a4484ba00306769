//! A cluster on loopback: three real talarias on 127.0.0.2-4 behind petasos and scytale. Devices
//! land on their ring owner, API requests through scytale reach them, and when a talaria dies its
//! devices reconnect to the new owner.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as Ws};
use tokio_util::sync::CancellationToken;
use wrp_nostd::{MessageType, OwnedMessage};
use xmidt_discovery::{Discovery, DiscoveryConfig, HealthConfig};
use xmidt_scytale::{Config, Scytale, Targets};
use xmidt_talaria::Talaria;

const WAIT: Duration = Duration::from_secs(15);

struct Node {
    url: String,
    talaria: Arc<Talaria>,
    stop: CancellationToken,
}

async fn talaria(ip: &str) -> Node {
    let listener = TcpListener::bind(format!("{ip}:0")).await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let mut config = xmidt_talaria::Config::default();
    config.outbound.event_endpoints.clear();
    let talaria = Talaria::new(config, stop.clone()).expect("valid config");
    tokio::spawn(xmidt_talaria::serve(
        talaria.clone(),
        listener,
        None,
        stop.clone(),
    ));
    Node { url, talaria, stop }
}

fn discovery_config(nodes: &[Node]) -> DiscoveryConfig {
    DiscoveryConfig {
        fixed: nodes.iter().map(|n| n.url.clone()).collect(),
        default_scheme: "http".into(),
        health: Some(HealthConfig {
            interval: Duration::from_millis(100),
            timeout: Duration::from_millis(500),
            failure_threshold: 1,
            ..HealthConfig::default()
        }),
        ..DiscoveryConfig::default()
    }
}

/// A device that connects through petasos, follows the redirect, answers every request, and
/// reconnects (through petasos again) whenever its connection ends.
fn run_device(petasos: SocketAddr, id: String, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut url = format!("ws://{petasos}/api/v2/device");
        while !stop.is_cancelled() {
            let mut request = url.as_str().into_client_request().unwrap();
            request
                .headers_mut()
                .insert("X-Webpa-Device-Name", id.parse().unwrap());
            let mut ws = match tokio_tungstenite::connect_async(request).await {
                Ok((ws, _)) => ws,
                Err(WsError::Http(r)) if r.status() == 307 => {
                    let location = r.headers()["location"].to_str().unwrap();
                    url = location.replacen("http://", "ws://", 1);
                    continue;
                }
                Err(_) => {
                    // Back to petasos, after a pause.
                    url = format!("ws://{petasos}/api/v2/device");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            loop {
                let frame = tokio::select! {
                    () = stop.cancelled() => return,
                    f = ws.next() => f,
                };
                match frame {
                    Some(Ok(Ws::Binary(b))) => {
                        let m = OwnedMessage::decode(&b).unwrap();
                        let mut answer = m.clone();
                        std::mem::swap(&mut answer.source, &mut answer.dest);
                        answer.payload = format!("answered by {id}").into_bytes();
                        let _ = ws
                            .send(Ws::Binary(answer.to_msgpack().unwrap().into()))
                            .await;
                    }
                    Some(Ok(_)) => {}
                    _ => break,
                }
            }
            url = format!("ws://{petasos}/api/v2/device");
        }
    })
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn ask(
    client: &reqwest::Client,
    scytale: SocketAddr,
    id: &str,
    n: usize,
) -> reqwest::Response {
    let request = OwnedMessage::builder(MessageType::SimpleRequestResponse)
        .source("dns:cluster-test")
        .dest(format!("{id}/config"))
        .transaction_uuid(format!("{id}-{n}"))
        .build();
    client
        .post(format!("http://{scytale}/api/v3/device"))
        .header("Content-Type", "application/msgpack")
        .body(request.to_msgpack().unwrap())
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_land_on_their_owner_and_move_when_it_dies() {
    let nodes = vec![
        talaria("127.0.0.2").await,
        talaria("127.0.0.3").await,
        talaria("127.0.0.4").await,
    ];

    let petasos_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let petasos = petasos_listener.local_addr().unwrap();
    let petasos_ring = Arc::new(Discovery::start(discovery_config(&nodes)).await.unwrap());
    let stop = CancellationToken::new();
    tokio::spawn(xmidt_petasos::serve(
        petasos_ring.clone(),
        petasos_listener,
        stop.clone(),
    ));

    let scytale_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scytale = scytale_listener.local_addr().unwrap();
    let targets = Targets::Ring(Discovery::start(discovery_config(&nodes)).await.unwrap());
    tokio::spawn(xmidt_scytale::serve(
        Scytale::new(Config::default(), targets).unwrap(),
        scytale_listener,
        stop.clone(),
    ));

    let ids: Vec<String> = (1..=12u32)
        .map(|i| format!("mac:{:012x}", i * 7919))
        .collect();
    let devices: Vec<_> = ids
        .iter()
        .map(|id| run_device(petasos, id.clone(), stop.clone()))
        .collect();

    let owner_of = |id: &str| -> usize {
        let owner = petasos_ring
            .ring()
            .owner(id.as_bytes())
            .unwrap()
            .to_string();
        nodes.iter().position(|n| n.url == owner).unwrap()
    };
    eventually("every device on its owner", || {
        ids.iter()
            .all(|id| nodes[owner_of(id)].talaria.registry.get(id).is_some())
    })
    .await;
    let used: std::collections::BTreeSet<_> = ids.iter().map(|id| owner_of(id)).collect();
    assert!(used.len() >= 2, "the devices spread over several talarias");

    let client = reqwest::Client::new();
    for (n, id) in ids.iter().enumerate() {
        let r = ask(&client, scytale, id, n).await;
        assert_eq!(r.status(), 200, "request to {id}");
        let answer = OwnedMessage::decode(&r.bytes().await.unwrap()).unwrap();
        assert_eq!(answer.payload, format!("answered by {id}").into_bytes());
    }
    let header_form = client
        .post(format!("http://{scytale}/api/v3/device"))
        .header("X-Xmidt-Message-Type", "SimpleRequestResponse")
        .header("X-Xmidt-Source", "dns:cluster-test")
        .header("X-Xmidt-Transaction-Uuid", "header-form-1")
        .header("X-Webpa-Device-Name", format!("{}/config", ids[0]))
        .header("Content-Type", "application/json")
        .body(r#"{"command":"GET"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(header_form.status(), 200);

    // Kill the talaria holding the first device.
    let victim = owner_of(&ids[0]);
    let moved: Vec<&String> = ids.iter().filter(|id| owner_of(id) == victim).collect();
    nodes[victim].stop.cancel();
    eventually("petasos to drop the dead talaria", || {
        petasos_ring.ring().len() == 2
    })
    .await;
    eventually("moved devices on their new owners", || {
        moved.iter().all(|id| {
            let owner = owner_of(id);
            owner != victim && nodes[owner].talaria.registry.get(id).is_some()
        })
    })
    .await;
    // Scytale's own discovery catches up within a few health intervals.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = ask(&client, scytale, moved[0], 1000).await;
        if r.status() == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "scytale reaches the moved device"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let unknown = ask(&client, scytale, "mac:0000000000ff", 0).await;
    assert_eq!(unknown.status(), 404);

    stop.cancel();
    for d in devices {
        let _ = tokio::time::timeout(WAIT, d).await;
    }
}

#[tokio::test]
async fn fixed_endpoints_fan_out_and_merge_by_the_go_rules() {
    // Three endpoints: two talarias without the device (404) and one that is down (503).
    let a = talaria("127.0.0.5").await;
    let b = talaria("127.0.0.6").await;
    let dead = TcpListener::bind("127.0.0.7:0").await.unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let targets = Targets::Fixed(vec![a.url.clone(), b.url.clone(), dead_url]);
    tokio::spawn(xmidt_scytale::serve(
        Scytale::new(Config::default(), targets).unwrap(),
        listener,
        stop.clone(),
    ));
    let client = reqwest::Client::new();
    let r = ask(&client, addr, "mac:112233445566", 0).await;
    assert_eq!(r.status(), 503, "the highest failure status wins");

    let stat = client
        .get(format!("http://{addr}/api/v3/device/mac:112233445566/stat"))
        .send()
        .await
        .unwrap();
    assert_eq!(stat.status(), 503);
    let bad = client
        .get(format!("http://{addr}/api/v3/device/nonsense/stat"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let nowhere = client
        .get(format!("http://{addr}/api/v3/elsewhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(nowhere.status(), 400);
    let json: serde_json::Value = nowhere.json().await.unwrap();
    assert_eq!(json["message"], "Invalid endpoint");
    let garbage = client
        .post(format!("http://{addr}/api/v3/device"))
        .header("Content-Type", "application/msgpack")
        .body(vec![0x81])
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 400);
    stop.cancel();
    a.stop.cancel();
    b.stop.cancel();
}
