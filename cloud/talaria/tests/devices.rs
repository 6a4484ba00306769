//! Device connections: the handshake, events, answers, acks, duplicates, limits and timeouts.

mod common;

use std::time::Duration;

use base64::Engine;
use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as Ws;
use wrp_nostd::{MessageType, OwnedMessage};

const ID: &str = "mac:112233445566";

fn http_status(e: tokio_tungstenite::tungstenite::Error) -> u16 {
    match e {
        tokio_tungstenite::tungstenite::Error::Http(r) => r.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

#[tokio::test]
async fn handshake_needs_a_valid_device_name() {
    let t = start(|_| {}).await;
    assert_eq!(http_status(connect(t.addr, &[]).await.unwrap_err()), 400);
    let bad = connect(t.addr, &[("X-Webpa-Device-Name", "mac:1122334455")]).await;
    assert_eq!(http_status(bad.unwrap_err()), 400);
    let body = reqwest::get(format!("http://{}/api/v2/device", t.addr))
        .await
        .unwrap();
    assert_eq!(body.status(), 400);
    let json: serde_json::Value = body.json().await.unwrap();
    assert_eq!(json["code"], 400);
    assert!(json["message"]
        .as_str()
        .unwrap()
        .contains("missing device name header"));
}

#[tokio::test]
async fn online_event_carries_convey_metadata_and_a_transaction_uuid() {
    let mut t = start(|_| {}).await;
    let convey = base64::engine::general_purpose::STANDARD
        .encode(r#"{"hw-model":"TG1682","hw-manufacturer":"ARRIS","fw-name":"fw1","boot-time":1700000000,"webpa-protocol":"PARODUS-2.0"}"#);
    let _ws = connect(
        t.addr,
        &[
            ("X-WebPA-Device-Name", "MAC:11-22-33-44-55-66/config"),
            ("X-WebPA-Convey", &convey),
        ],
    )
    .await
    .unwrap();
    let online = event_ending(&mut t.events, "/online").await;
    assert_eq!(online.msg_type, MessageType::SimpleEvent);
    assert_eq!(online.dest, format!("event:device-status/{ID}/online"));
    assert!(!online.transaction_uuid.is_empty());
    assert_eq!(online.metadata["/hw-model"], "TG1682");
    assert_eq!(online.metadata["/boot-time"], "1700000000");
    assert_eq!(online.metadata["/protocol"], "PARODUS-2.0");
    assert_eq!(online.metadata["/compliance"], "full");
    assert_eq!(online.metadata["/hw-deviceid"], ID);
    assert_eq!(online.partner_ids, ["unknown"]);
    let payload: serde_json::Value = serde_json::from_slice(&online.payload).unwrap();
    assert_eq!(payload["id"], ID);
    assert!(!online.session_id.is_empty());
}

#[tokio::test]
async fn device_events_are_enriched_and_forwarded_and_acked() {
    let mut t = start(|_| {}).await;
    let mut ws = device(t.addr, ID).await;
    let online = event_ending(&mut t.events, "/online").await;
    let event = OwnedMessage::builder(MessageType::SimpleEvent)
        .source(format!("{ID}/telemetry"))
        .dest("event:telemetry/stats")
        .transaction_uuid("ev-1")
        .partner_id("spoofed")
        .qos(50)
        .payload(b"{}".to_vec())
        .build();
    send_wrp(&mut ws, &event).await;
    let got = event_ending(&mut t.events, "telemetry/stats").await;
    assert_eq!(
        got.partner_ids,
        ["unknown"],
        "partner ids come from the token, not the device"
    );
    assert_eq!(got.session_id, online.session_id);
    assert_eq!(got.content_type, "application/octet-stream");
    assert!(got.metadata.contains_key("/xmidt-timestamp"));
    assert_eq!(got.payload, b"{}");

    let ack = next_wrp(&mut ws).await;
    assert_eq!(ack.msg_type, MessageType::SimpleEvent);
    assert_eq!(ack.dest, format!("{ID}/telemetry"));
    assert_eq!(ack.transaction_uuid, "ev-1");
    assert_eq!(ack.qos, 50);
    assert_eq!(ack.rdr, Some(0));
    assert!(ack.payload.is_empty());

    // Low QoS: forwarded, not acked. The next frame the device sees is the answer to a ping-free
    // stat round trip, so check by sending an event and then an API message.
    let low = OwnedMessage {
        qos: 10,
        transaction_uuid: "ev-2".into(),
        ..event
    };
    send_wrp(&mut ws, &low).await;
    event_ending(&mut t.events, "telemetry/stats").await;
    let probe = OwnedMessage::builder(MessageType::SimpleEvent)
        .source("dns:test")
        .dest(ID)
        .build();
    let sent = reqwest::Client::new()
        .post(format!("http://{}/api/v3/device/send", t.addr))
        .header("Content-Type", "application/msgpack")
        .body(probe.to_msgpack().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
    assert_eq!(
        next_wrp(&mut ws).await.source,
        "dns:test",
        "no ack came before the probe"
    );
}

#[tokio::test]
async fn foreign_source_is_dropped_when_enforced() {
    let mut t =
        start(|c| c.device.source_check = xmidt_talaria::config::SourceCheck::Enforce).await;
    let mut ws = device(t.addr, ID).await;
    event_ending(&mut t.events, "/online").await;
    let spoof = OwnedMessage::builder(MessageType::SimpleEvent)
        .source("mac:aabbccddeeff")
        .dest("event:spoof")
        .build();
    send_wrp(&mut ws, &spoof).await;
    let real = OwnedMessage::builder(MessageType::SimpleEvent)
        .source(ID)
        .dest("event:real")
        .build();
    send_wrp(&mut ws, &real).await;
    let next = tokio::time::timeout(WAIT, t.events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.dest, "event:real", "the spoofed event never arrives");
}

#[tokio::test]
async fn a_second_connection_replaces_the_first() {
    let mut t = start(|_| {}).await;
    let mut first = device(t.addr, ID).await;
    event_ending(&mut t.events, "/online").await;
    let _second = device(t.addr, ID).await;
    let closed = loop {
        match tokio::time::timeout(WAIT, first.next()).await.unwrap() {
            Some(Ok(Ws::Close(frame))) => break frame.expect("close frame").reason.to_string(),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(closed, "duplicate");
    let offline = event_ending(&mut t.events, "/offline").await;
    let payload: serde_json::Value = serde_json::from_slice(&offline.payload).unwrap();
    assert_eq!(payload["reason-for-closure"], "duplicate");
    let stat: serde_json::Value =
        reqwest::get(format!("http://{}/api/v2/device/{ID}/stat", t.addr))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(stat["id"], ID);
    assert_eq!(stat["statistics"]["duplications"], 1);
    assert_eq!(t.talaria.registry.len(), 1);
}

#[tokio::test]
async fn device_limit_refuses_new_ids_but_not_reconnects() {
    let t = start(|c| c.device.max_devices = 1).await;
    let _a = device(t.addr, ID).await;
    let refused = connect(t.addr, &[("X-Webpa-Device-Name", "mac:aabbccddeeff")]).await;
    assert_eq!(http_status(refused.unwrap_err()), 503);
    let _again = device(t.addr, ID).await;
}

#[tokio::test]
async fn silent_device_is_dropped_after_the_idle_period_and_pings_keep_it() {
    let mut t = start(|c| {
        c.device.ping_period = Duration::from_millis(100);
        c.device.idle_period = Duration::from_millis(400);
    })
    .await;
    // This device reads (so the library answers pings) for well past the idle period.
    let mut alive = device(t.addr, ID).await;
    let reader = tokio::spawn(async move {
        let until = tokio::time::Instant::now() + Duration::from_millis(1200);
        while let Ok(Some(Ok(_))) = tokio::time::timeout_at(until, alive.next()).await {}
        alive
    });
    // This one never reads, so never answers a ping.
    let _silent = device(t.addr, "mac:aabbccddeeff").await;
    let offline = event_ending(&mut t.events, "aabbccddeeff/offline").await;
    let payload: serde_json::Value = serde_json::from_slice(&offline.payload).unwrap();
    assert_eq!(payload["reason-for-closure"], "idle-timeout");
    let _alive = reader.await.unwrap();
    assert!(
        t.talaria.registry.get(ID).is_some(),
        "the answering device is still connected"
    );
}

#[tokio::test]
async fn text_and_garbage_frames_are_skipped_without_closing() {
    let mut t = start(|_| {}).await;
    let mut ws = device(t.addr, ID).await;
    event_ending(&mut t.events, "/online").await;
    ws.send(Ws::Text("hello".into())).await.unwrap();
    ws.send(Ws::Binary(vec![0xc1, 0x00].into())).await.unwrap();
    let real = OwnedMessage::builder(MessageType::SimpleEvent)
        .source(ID)
        .dest("event:after")
        .build();
    send_wrp(&mut ws, &real).await;
    assert_eq!(
        event_ending(&mut t.events, "after").await.dest,
        "event:after"
    );
    let stat: serde_json::Value =
        reqwest::get(format!("http://{}/api/v2/device/{ID}/stat", t.addr))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(stat["statistics"]["messagesReceived"], 3);
}

#[tokio::test]
async fn oversized_frames_close_the_connection() {
    let mut t = start(|c| c.device.max_message_size = 1024).await;
    let mut ws = device(t.addr, ID).await;
    event_ending(&mut t.events, "/online").await;
    let _ = ws.send(Ws::Binary(vec![0u8; 4096].into())).await;
    let offline = event_ending(&mut t.events, "/offline").await;
    let payload: serde_json::Value = serde_json::from_slice(&offline.payload).unwrap();
    assert_eq!(payload["reason-for-closure"], "readerror");
}

/// Connects `n` devices at once, drops them all, and counts the online and offline events a
/// slow receiver (20 ms an event) got, with one outbound worker and room for one event.
async fn status_events_of_a_burst(n: usize, queue_wait: Duration) -> (usize, usize) {
    let (tx, mut received) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/notify",
        axum::routing::post(move |body: axum::body::Bytes| {
            let tx = tx.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                if let Ok(m) = OwnedMessage::decode(&body) {
                    let _ = tx.send(m.dest);
                }
                axum::http::StatusCode::ACCEPTED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/notify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let t = start(|c| {
        c.outbound.event_endpoints = [("default".to_string(), vec![url])].into();
        c.outbound.queue_size = 1;
        c.outbound.workers = 1;
        c.outbound.queue_wait = queue_wait;
    })
    .await;
    let devices = futures_util::future::join_all(
        (0..n).map(|i| async move { device(t.addr, &format!("mac:0000000000{i:02x}")).await }),
    )
    .await;
    drop(devices);
    let (mut online, mut offline) = (0, 0);
    // Every event is in within n * 2 * 20 ms plus slack; then nothing more comes.
    while let Ok(Some(dest)) = tokio::time::timeout(Duration::from_secs(2), received.recv()).await {
        if dest.ends_with("/online") {
            online += 1;
        } else if dest.ends_with("/offline") {
            offline += 1;
        }
    }
    (online, offline)
}

#[tokio::test]
async fn a_burst_of_status_events_waits_for_room_instead_of_being_lost() {
    assert_eq!(
        status_events_of_a_burst(20, Duration::from_secs(10)).await,
        (20, 20)
    );
    // The same burst overflows the queue: without the wait (Go's way) events are lost.
    let (online, offline) = status_events_of_a_burst(20, Duration::ZERO).await;
    assert!(online + offline < 40, "{online} online, {offline} offline");
}

#[tokio::test]
async fn a_qos_event_is_acked_once_delivered_and_answers_do_not_wait_for_it() {
    // A receiver that holds device events until let go (status events pass at once).
    let release = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let app = axum::Router::new().route(
        "/notify",
        axum::routing::post({
            let release = release.clone();
            move |body: axum::body::Bytes| {
                let release = release.clone();
                async move {
                    let held = OwnedMessage::decode(&body)
                        .is_ok_and(|m| m.dest.starts_with("event:telemetry"));
                    if held {
                        if let Ok(permit) = release.acquire().await {
                            permit.forget();
                        }
                    }
                    axum::http::StatusCode::ACCEPTED
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/notify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let t =
        start(|c| c.outbound.event_endpoints = [("default".to_string(), vec![url])].into()).await;
    let mut ws = device(t.addr, ID).await;
    let event = OwnedMessage::builder(MessageType::SimpleEvent)
        .source(format!("{ID}/telemetry"))
        .dest("event:telemetry/stats")
        .transaction_uuid("ev-held")
        .qos(50)
        .build();
    send_wrp(&mut ws, &event).await;

    // While the receiver holds the event, a request to the device is delivered and answered:
    // the device's reads go on.
    let request = OwnedMessage::builder(MessageType::SimpleRequestResponse)
        .source("dns:test")
        .dest(ID)
        .transaction_uuid("t-meanwhile")
        .build();
    let api = tokio::spawn({
        let addr = t.addr;
        async move {
            reqwest::Client::new()
                .post(format!("http://{addr}/api/v3/device/send"))
                .header("Content-Type", "application/msgpack")
                .body(request.to_msgpack().unwrap())
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    let asked = next_wrp(&mut ws).await;
    assert_eq!(
        asked.transaction_uuid, "t-meanwhile",
        "no ack before delivery"
    );
    let answer = OwnedMessage {
        source: ID.into(),
        dest: "dns:test".into(),
        ..asked
    };
    send_wrp(&mut ws, &answer).await;
    assert_eq!(api.await.unwrap(), 200);

    // Nothing more comes until the receiver takes the event; then the ack does.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), next_wrp(&mut ws))
            .await
            .is_err(),
        "an ack came before the event was delivered"
    );
    release.add_permits(1);
    let ack = next_wrp(&mut ws).await;
    assert_eq!(ack.transaction_uuid, "ev-held");
    assert_eq!(ack.rdr, Some(0));
}
