//! The API: /device/send end to end, its errors, /devices and /stat, and the control API.

mod common;

use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use wrp_nostd::{MessageType, OwnedMessage};

const ID: &str = "mac:112233445566";

fn request(uuid: &str) -> OwnedMessage {
    OwnedMessage::builder(MessageType::SimpleRequestResponse)
        .source("dns:tests")
        .dest(format!("{ID}/config"))
        .transaction_uuid(uuid)
        .content_type("application/json")
        .metadata("/kept", "yes")
        .payload(br#"{"command":"GET","names":["x"]}"#.to_vec())
        .build()
}

async fn post(
    addr: std::net::SocketAddr,
    content_type: &str,
    accept: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut r = reqwest::Client::new()
        .post(format!("http://{addr}/api/v2/device/send"))
        .header("Content-Type", content_type)
        .body(body);
    if !accept.is_empty() {
        r = r.header("Accept", accept);
    }
    r.send().await.expect("talaria answers")
}

/// Runs a device that answers every request with status 200 and its payload reversed.
fn answering(mut ws: DeviceSocket) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let m = next_wrp(&mut ws).await;
            let mut answer = m.clone();
            std::mem::swap(&mut answer.source, &mut answer.dest);
            answer.status = Some(200);
            answer.payload.reverse();
            send_wrp(&mut ws, &answer).await;
        }
    })
}

#[tokio::test]
async fn request_reaches_the_device_and_its_answer_comes_back_in_either_format() {
    let t = start(|_| {}).await;
    let _device = answering(device(t.addr, ID).await);

    let r = post(
        t.addr,
        "application/msgpack",
        "application/msgpack",
        request("t-1").to_msgpack().unwrap(),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/msgpack");
    let answer = OwnedMessage::decode(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(answer.transaction_uuid, "t-1");
    assert_eq!(answer.status, Some(200));
    let mut reversed = request("t-1").payload;
    reversed.reverse();
    assert_eq!(answer.payload, reversed);
    assert!(answer.metadata.contains_key("/xmidt-timestamp"));
    assert_eq!(answer.metadata["/kept"], "yes");
    assert_eq!(answer.partner_ids, ["unknown"], "replaced by talaria");
    assert_eq!(answer.content_type, "application/json");

    let r = post(
        t.addr,
        "application/json",
        "application/json",
        request("t-2").to_json(),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let answer = OwnedMessage::from_json(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(answer.transaction_uuid, "t-2");

    // curl's default Accept.
    let r = post(t.addr, "application/json", "*/*", request("t-3").to_json()).await;
    assert_eq!(r.headers()["content-type"], "application/msgpack");
}

#[tokio::test]
async fn send_errors_have_the_go_statuses_and_bodies() {
    let t = start(|c| c.api.request_timeout = Duration::from_millis(300)).await;
    let r = post(
        t.addr,
        "application/msgpack",
        "",
        request("x").to_msgpack().unwrap(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        r.headers()["x-xmidt-message-error"],
        "the device does not exist"
    );
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], 404);
    assert_eq!(
        body["message"],
        "Could not process device request: the device does not exist"
    );

    assert_eq!(
        post(t.addr, "application/msgpack", "", vec![0x81, 0xc1])
            .await
            .status(),
        400
    );
    assert_eq!(
        post(t.addr, "application/json", "", b"{".to_vec())
            .await
            .status(),
        400
    );
    assert_eq!(
        post(t.addr, "text/plain", "", b"x".to_vec()).await.status(),
        415
    );
    assert_eq!(
        post(
            t.addr,
            "application/msgpack",
            "text/html",
            request("x").to_msgpack().unwrap()
        )
        .await
        .status(),
        400
    );
    let no_uuid = OwnedMessage {
        transaction_uuid: String::new(),
        ..request("")
    };
    assert_eq!(
        post(
            t.addr,
            "application/msgpack",
            "",
            no_uuid.to_msgpack().unwrap()
        )
        .await
        .status(),
        400
    );
    let bad_dest = OwnedMessage {
        dest: "nonsense".into(),
        ..request("y")
    };
    assert_eq!(
        post(
            t.addr,
            "application/msgpack",
            "",
            bad_dest.to_msgpack().unwrap()
        )
        .await
        .status(),
        400
    );
    let huge = OwnedMessage {
        payload: vec![7; 2 * 1024 * 1024],
        ..request("z")
    };
    assert_eq!(
        post(
            t.addr,
            "application/msgpack",
            "",
            huge.to_msgpack().unwrap()
        )
        .await
        .status(),
        413
    );

    // A device that never answers: 504, and the transaction id is free again afterwards.
    let _silent = device(t.addr, ID).await;
    let r = post(
        t.addr,
        "application/msgpack",
        "",
        request("slow").to_msgpack().unwrap(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::GATEWAY_TIMEOUT);
    let device = t.talaria.registry.get(ID).unwrap();
    assert!(device.expect_answer("slow").is_ok());
}

#[tokio::test]
async fn a_duplicate_in_flight_transaction_is_refused() {
    let t = start(|c| c.api.request_timeout = Duration::from_secs(2)).await;
    let _silent = device(t.addr, ID).await;
    let first = tokio::spawn(post(
        t.addr,
        "application/msgpack",
        "",
        request("dup").to_msgpack().unwrap(),
    ));
    let device = loop {
        if let Some(d) = t.talaria.registry.get(ID) {
            if d.expect_answer("dup").is_err() {
                break d;
            }
            d.forget("dup");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    drop(device);
    let second = post(
        t.addr,
        "application/msgpack",
        "",
        request("dup").to_msgpack().unwrap(),
    )
    .await;
    assert_eq!(second.status(), 400);
    assert_eq!(
        second.headers()["x-xmidt-message-error"],
        "that transaction is already registered"
    );
    assert_eq!(first.await.unwrap().status(), 504);
}

#[tokio::test]
async fn events_sent_to_a_device_return_once_written() {
    let t = start(|_| {}).await;
    let mut ws = device(t.addr, ID).await;
    let event = OwnedMessage::builder(MessageType::SimpleEvent)
        .source("dns:tests")
        .dest(ID)
        .payload(b"hi".to_vec())
        .build();
    let r = post(
        t.addr,
        "application/msgpack",
        "",
        event.to_msgpack().unwrap(),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().is_empty());
    assert_eq!(next_wrp(&mut ws).await.payload, b"hi");
}

#[tokio::test]
async fn devices_and_stat_describe_connections() {
    let t = start(|c| c.api.devices_cache = Duration::ZERO).await;
    let _a = device(t.addr, ID).await;
    let _b = device(t.addr, "serial:ABC123").await;
    let list: serde_json::Value = reqwest::get(format!("http://{}/api/v2/devices", t.addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut ids: Vec<_> = list["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, [ID, "serial:ABC123"]);
    let stat: serde_json::Value = reqwest::get(format!(
        "http://{}/api/v3/device/serial:ABC123/stat",
        t.addr
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(stat["pending"], 0);
    assert!(stat["statistics"]["upTime"]
        .as_str()
        .unwrap()
        .ends_with('s'));
    assert!(stat["statistics"]["connectedAt"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    let missing = reqwest::get(format!(
        "http://{}/api/v2/device/mac:aabbccddeeff/stat",
        t.addr
    ))
    .await
    .unwrap();
    assert_eq!(missing.status(), 404);
    let bad = reqwest::get(format!("http://{}/api/v2/device/bogus/stat", t.addr))
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn the_gate_refuses_new_devices_while_closed() {
    let t = start(|_| {}).await;
    let client = reqwest::Client::new();
    let gate = format!("http://{}/api/v3/device/gate", t.control);
    let r = client
        .post(format!("{gate}?open=false"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        client
            .post(format!("{gate}?open=false"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let state: serde_json::Value = client
        .get(&gate)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["open"], false);
    let refused = connect(t.addr, &[("X-Webpa-Device-Name", ID)])
        .await
        .unwrap_err();
    assert!(matches!(refused, tokio_tungstenite::tungstenite::Error::Http(r) if r.status() == 503));
    client
        .post(format!("{gate}?open=true"))
        .send()
        .await
        .unwrap();
    let _ok = device(t.addr, ID).await;
    assert_eq!(
        client.post(&gate).send().await.unwrap().status(),
        400,
        "open= is required"
    );
}

#[tokio::test]
async fn drain_disconnects_devices_at_the_given_rate() {
    let mut t = start(|_| {}).await;
    let mut sockets = Vec::new();
    for i in 0..4 {
        sockets.push(device(t.addr, &format!("mac:00000000000{i}")).await);
    }
    let client = reqwest::Client::new();
    let drain = format!("http://{}/api/v2/device/drain", t.control);
    let r = client
        .post(format!("{drain}?count=3&rate=1&tick=50ms"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        client.post(&drain).send().await.unwrap().status(),
        429,
        "one drain at a time"
    );
    for _ in 0..3 {
        let offline = event_ending(&mut t.events, "/offline").await;
        let payload: serde_json::Value = serde_json::from_slice(&offline.payload).unwrap();
        assert_eq!(payload["reason-for-closure"], "drained");
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let state: serde_json::Value = client
            .get(&drain)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if state["active"] == false {
            assert_eq!(state["progress"]["drained"], 3);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "drain finishes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(t.talaria.registry.len(), 1);
    assert_eq!(
        client.delete(&drain).send().await.unwrap().status(),
        429,
        "nothing to cancel"
    );
}
