//! The library API as `xmidt up --demo` uses it: in-process services, shutdown, status, and the
//! files parodus keeps for other processes.

mod common;

use std::time::Duration;

use client_std::Error;
use common::*;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message as Ws;
use wrp_nostd::{MessageType, OwnedMessage};

fn crud(source: &str, path: &str, tuuid: &str) -> OwnedMessage {
    OwnedMessage::builder(MessageType::Retrieve)
        .source(source)
        .dest(format!("{DEVICE}/parodus/{path}"))
        .transaction_uuid(tuuid)
        .build()
}

#[tokio::test]
async fn in_process_services_register_answer_and_go_away() {
    let mut cloud = bare(|_| Reply::Accept).await;
    let (device, _stop) = spawn(config(&cloud.url()));
    let (_, mut ws) = cloud.accepted().await;
    assert_eq!(device.device_id(), DEVICE);

    // The in-process `parodus` service cannot be taken over; names follow parodus's rules.
    for bad in ["parodus", "", "a/b"] {
        assert!(
            matches!(device.register(bad).await, Err(Error::Core(_))),
            "{bad:?}"
        );
    }

    let mut svc = device.register("svc").await.unwrap();
    assert_eq!(svc.name(), "svc");
    let too_big = vec![0x80; client_std::MAX_MESSAGE + 1];
    assert!(matches!(svc.send(too_big).await, Err(Error::Core(_))));
    let req = request(&format!("{DEVICE}/svc/x"), "t-1");
    send_wrp(&mut ws, &req).await;
    // Keep-alives (every second here) never reach an in-process service.
    let got = tokio::time::timeout(WAIT, svc.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, encode(&req));

    // CRUD to the device from the service is answered to the service.
    svc.send(encode(&crud(
        &format!("{DEVICE}/svc"),
        "hw-serial-number",
        "t-2",
    )))
    .await
    .unwrap();
    let answer = decode(
        &tokio::time::timeout(WAIT, svc.recv())
            .await
            .unwrap()
            .unwrap(),
    );
    assert_eq!(answer.payload, br#"{"hw-serial-number":"SER123456"}"#);

    // A dropped service is found gone at the next keep-alive.
    drop(svc);
    let mut n = 0;
    loop {
        send_wrp(
            &mut ws,
            &crud("dns:scytale", "service-status/svc", &format!("s-{n}")),
        )
        .await;
        if next_wrp(&mut ws).await.payload == br#"{"service-status":"offline"}"# {
            break;
        }
        n += 1;
        assert!(n < 100, "the dropped service was never removed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn at_most_32_services() {
    let cloud = bare(|_| Reply::Accept).await;
    let (device, _stop) = spawn(config(&cloud.url()));
    let mut kept = Vec::new();
    for i in 0..32 {
        kept.push(device.register(&format!("s{i}")).await.unwrap());
    }
    assert!(matches!(
        device.register("one-more").await,
        Err(Error::Core(_))
    ));
    // Registering a known name again replaces it and takes no new slot.
    kept.push(device.register("s0").await.unwrap());
}

#[tokio::test]
async fn shutdown_closes_with_its_reason_and_join_returns() {
    let mut cloud = bare(|_| Reply::Accept).await;
    let (device, _stop) = spawn(config(&cloud.url()));
    let (_, mut ws) = cloud.accepted().await;
    status_until(&device, "online", |s| s.online).await;
    let status = device.status();
    device.shutdown("demo_done");
    match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
        Some(Ok(Ws::Close(Some(f)))) => assert_eq!(f.reason, "demo_done"),
        other => panic!("expected a close frame, got {other:?}"),
    }
    let _ = ws.next().await;
    tokio::time::timeout(WAIT, device.join())
        .await
        .unwrap()
        .unwrap();
    assert!(status.has_changed().is_err(), "the device is gone");

    // The embedder's token alone stops it too, with parodus's reason.
    let mut cloud = bare(|_| Reply::Accept).await;
    let (device, stop) = spawn(config(&cloud.url()));
    let (_, mut ws) = cloud.accepted().await;
    status_until(&device, "online", |s| s.online).await;
    stop.cancel();
    match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
        Some(Ok(Ws::Close(Some(f)))) => assert_eq!(f.reason, "parodus_stopping"),
        other => panic!("expected a close frame, got {other:?}"),
    }
    let _ = ws.next().await;
    // Once stopped, requests to it fail.
    let mut status = device.status();
    tokio::time::timeout(WAIT, async { while status.changed().await.is_ok() {} })
        .await
        .unwrap();
    assert!(matches!(device.send(vec![0x80]).await, Err(Error::Stopped)));
    assert!(matches!(device.register("late").await, Err(Error::Stopped)));
    tokio::time::timeout(WAIT, device.join())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn the_notify_file_appears_on_reconnects_only() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("webpanotifyready");
    let mut cloud = bare(|_| Reply::Accept).await;
    let mut cfg = config(&cloud.url());
    cfg.notify_ready_file = Some(ready.clone());
    let (device, _stop) = spawn(cfg);
    let (_, mut ws) = cloud.accepted().await;
    status_until(&device, "online", |s| s.online).await;
    assert!(!ready.exists(), "parodus creates it on reconnects only");
    ws.close(None).await.unwrap();
    let (_, _ws) = cloud.accepted().await;
    status_until(&device, "online again", |s| {
        s.online && s.stats.connects == 2
    })
    .await;
    assert!(ready.exists());
}

#[tokio::test]
async fn a_service_that_only_sends_is_not_dropped_by_keep_alives() {
    let mut cloud = bare(|_| Reply::Accept).await;
    let mut cfg = config(&cloud.url());
    cfg.service_queue = 1;
    let (device, _stop) = spawn(cfg);
    let (_, mut ws) = cloud.accepted().await;
    let _quiet = device.register("quiet").await.unwrap();
    // Three keep-alive rounds with room for one message: none of them may use it.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    send_wrp(&mut ws, &crud("dns:scytale", "service-status/quiet", "s-1")).await;
    assert_eq!(
        next_wrp(&mut ws).await.payload,
        br#"{"service-status":"online"}"#
    );
}
