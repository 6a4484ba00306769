//! Delivery to HTTP receivers: signatures, routing by device, retries, overflow, expiry.

use std::time::Duration;

use wrp_nostd::OwnedMessage;

use crate::harness::{self, create, event, hmac_sha1, http_norn, post_event, Receiver};

#[tokio::test]
async fn events_reach_only_their_devices_norns_signed() {
    let service = harness::start(|_| harness::config()).await;
    let (a, b) = (Receiver::start().await, Receiver::start().await);
    let (status, _) = create(
        &service,
        None,
        &http_norn("mac:112233445566", &a.url, "a-secret", 60),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = create(
        &service,
        None,
        &http_norn("mac:aabbccddeeff", &b.url, "", 60),
    )
    .await;
    assert_eq!(status, 201);

    // A device event, from the device spelt another way; a status event talaria sends about it;
    // events of other devices in between.
    let sent = [
        event("mac:11-22-33-44-55-66/config", "event:iot/temp", "one"),
        event("mac:aabbccddeeff", "event:iot/temp", "for-b"),
        event("mac:000000000001", "event:iot/temp", "nobody"),
        event(
            "dns:talaria",
            "event:device-status/mac:112233445566/online",
            "two",
        ),
        event(
            "dns:talaria",
            "event:device-status/mac:000000000001/offline",
            "nobody-either",
        ),
    ];
    for (_, msgpack) in &sent {
        assert_eq!(post_event(&service, msgpack.clone()).await.status(), 200);
    }

    for expected in [&sent[0].0, &sent[3].0] {
        let got = a.next().await;
        assert_eq!(got.header("content-type"), "application/json");
        // The signature is over the exact body (Go signed an empty buffer).
        assert_eq!(
            got.header("x-codex-signature"),
            hmac_sha1("a-secret", &got.body)
        );
        let delivered = OwnedMessage::from_json(&got.body).unwrap();
        assert_eq!(&delivered, expected);
    }
    let got = b.next().await;
    assert_eq!(
        OwnedMessage::from_json(&got.body).unwrap().transaction_uuid,
        "for-b"
    );
    assert!(got.headers.get("x-codex-signature").is_none());
    a.nothing_within(Duration::from_millis(300)).await;
    b.nothing_within(Duration::from_millis(1)).await;
}

#[tokio::test]
async fn bad_events_are_refused() {
    let service = harness::start(|_| harness::config()).await;
    let cases = [
        (b"\x81\xa8msg_type".to_vec(), 400, "not a WRP message"),
        (vec![0xc1], 400, "not a WRP message"),
        (
            wrp_nostd::OwnedMessage::builder(wrp_nostd::MessageType::SimpleRequestResponse)
                .source("mac:112233445566")
                .dest("dns:x")
                .transaction_uuid("t")
                .build()
                .to_msgpack()
                .unwrap(),
            400,
            "not an event",
        ),
        (vec![0; 64 * 1024 + 1], 413, "larger than"),
    ];
    for (body, status, message) in cases {
        let response = post_event(&service, body).await;
        assert_eq!(response.status(), status);
        let answer: serde_json::Value = response.json().await.unwrap();
        assert!(
            answer["message"].as_str().unwrap().contains(message),
            "{answer}"
        );
    }
}

#[tokio::test]
async fn failed_deliveries_are_retried() {
    let service = harness::start(|_| harness::config()).await;
    let receiver = Receiver::start().await;
    receiver.respond(&[503, 429]);
    create(
        &service,
        None,
        &http_norn("mac:112233445566", &receiver.url, "", 60),
    )
    .await;
    let (_, msgpack) = event("mac:112233445566", "event:iot", "retried");
    post_event(&service, msgpack).await;
    // Refused twice, accepted the third time; each attempt carries the same event.
    for _ in 0..3 {
        let got = receiver.next().await;
        assert_eq!(
            OwnedMessage::from_json(&got.body).unwrap().transaction_uuid,
            "retried"
        );
    }
    receiver.nothing_within(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_full_buffer_drops_and_tells_the_failure_url_without_delaying_others() {
    let service = harness::start(|_| xmidt_mimisbrunnr::Config {
        buffer_size: 1,
        ..harness::config()
    })
    .await;
    let (slow, failure, fast) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    slow.delay(Duration::from_secs(3));
    let norn = serde_json::json!({
        "DeviceID": "mac:112233445566", "TTL": 60,
        "Destination": {"HttpConfig": {"URL": slow.url, "Secret": "k", "FailureURL": failure.url}}
    });
    let (status, made) = create(&service, None, &norn).await;
    assert_eq!(status, 201);
    create(
        &service,
        None,
        &http_norn("mac:112233445566", &fast.url, "", 60),
    )
    .await;

    // The first event is in flight at the slow receiver, the second waits in the buffer, the
    // rest overflow.
    for n in 0..5 {
        let (_, msgpack) = event("mac:112233445566", "event:iot", &format!("e{n}"));
        assert_eq!(post_event(&service, msgpack).await.status(), 200);
        if n == 0 {
            slow.next().await;
        }
    }
    // The other norn of the same device gets all five at once.
    for n in 0..5 {
        let got = fast.next().await;
        let uuid = OwnedMessage::from_json(&got.body).unwrap().transaction_uuid;
        assert_eq!(uuid, format!("e{n}"));
    }
    // One notice for the overflow, signed like deliveries, naming the norn.
    let notice = failure.next().await;
    assert_eq!(
        notice.header("x-codex-signature"),
        hmac_sha1("k", &notice.body)
    );
    assert_eq!(notice.header("content-type"), "application/json");
    let notice = notice.json();
    assert!(
        notice["text"].as_str().unwrap().contains("is full"),
        "{notice}"
    );
    assert_eq!(notice["ID"], made["ID"]);
    failure.nothing_within(Duration::from_millis(200)).await;

    let metrics = reqwest::get(format!("{}/metrics", service.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dropped = metrics
        .lines()
        .find(|l| l.starts_with("xmidt_mimisbrunnr_dropped_event_count{reason=\"buffer_full\"}"))
        .unwrap_or_else(|| panic!("no buffer_full count in {metrics}"));
    let count: f64 = dropped.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 3.0, "{dropped}");
}

/// On PostgreSQL, shared by two replicas: a norn made at one is served by the other, and a
/// norn that expires stops everywhere and is purged.
#[tokio::test]
async fn expired_norns_stop_receiving_and_disappear_on_shared_postgres() {
    let url = xmidt_store::testing::postgres().create_database().await;
    let store = xmidt_store::open(&xmidt_store::StoreConfig {
        database_url: Some(url),
        ..Default::default()
    })
    .await
    .unwrap();
    let one = harness::start_with(|_| harness::config(), Some(store.clone())).await;
    let two = harness::start_with(|_| harness::config(), Some(store.clone())).await;
    let (short, long) = (Receiver::start().await, Receiver::start().await);
    let (status, made) = create(
        &one,
        None,
        &http_norn("mac:112233445566", &short.url, "", 2),
    )
    .await;
    assert_eq!(status, 201);
    let id = made["ID"].as_str().unwrap().to_owned();
    create(
        &one,
        None,
        &http_norn("mac:112233445566", &long.url, "", 60),
    )
    .await;

    // The other replica picks both up at its next reload.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, msgpack) = event("mac:112233445566", "event:iot", "before");
    assert_eq!(post_event(&two, msgpack).await.status(), 200);
    short.next().await;
    long.next().await;

    // Well past the short norn's two seconds.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    for replica in [&one, &two] {
        let (_, msgpack) = event("mac:112233445566", "event:iot", "after");
        post_event(replica, msgpack).await;
        long.next().await;
    }
    short.nothing_within(Duration::from_millis(300)).await;
    let client = reqwest::Client::new();
    let got = client
        .get(format!("{}/norns/{id}", two.url))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 404);
    let listed: serde_json::Value = client
        .get(format!("{}/norns", one.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    // The purgers have already removed the expired record.
    assert_eq!(store.purge_expired().await.unwrap(), 0);
}

#[tokio::test]
async fn in_process_events_share_the_intake_queue() {
    let service = harness::start(|_| xmidt_mimisbrunnr::Config {
        intake: xmidt_mimisbrunnr::config::IntakeConfig {
            queue_size: 1,
            ..Default::default()
        },
        ..harness::config()
    })
    .await;
    let receiver = Receiver::start().await;
    create(
        &service,
        None,
        &http_norn("mac:112233445566", &receiver.url, "", 60),
    )
    .await;
    let m = &service.mimisbrunnr;
    // This test's runtime has one thread: nothing drains the queue between these two calls.
    let (_, first) = event("mac:112233445566", "event:iot", "first");
    let (_, second) = event("mac:112233445566", "event:iot", "second");
    m.accept_event(&first).unwrap();
    assert!(matches!(
        m.accept_event(&second),
        Err(xmidt_mimisbrunnr::EventError::Full)
    ));
    let got = receiver.next().await;
    assert_eq!(
        OwnedMessage::from_json(&got.body).unwrap().transaction_uuid,
        "first"
    );
    // Drained: taken again.
    m.accept_event(&second).unwrap();
    let got = receiver.next().await;
    assert_eq!(
        OwnedMessage::from_json(&got.body).unwrap().transaction_uuid,
        "second"
    );
    assert!(matches!(
        m.accept_event(b"\x00"),
        Err(xmidt_mimisbrunnr::EventError::Invalid(_))
    ));
}
