//! Registrations over time: expiry, restarts on the embedded store, replicas sharing
//! PostgreSQL.

use std::time::Duration;

use serde_json::json;

use crate::common::{config, event, hook, start, Receiver};

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn registrations_expire() {
    let cad = start(config()).await;
    let rx = Receiver::start().await;
    let body = json!({"config": {"url": rx.url}, "events": [".*"], "duration": "1s"});
    assert_eq!(cad.register(&body).await.0, 200);
    cad.notify(&event("event:iot", "mac:112233445566")).await;
    rx.wait_for(1, WAIT).await;

    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Expired: not delivered, not listed; after the next reload, not matched at all.
    cad.notify(&event("event:iot", "mac:112233445566")).await;
    assert!(cad.hooks("comcast").await.is_empty());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        cad.caduceus
            .submit(event("event:iot", "mac:112233445566"))
            .unwrap()
            .matched,
        0
    );
    rx.expect_no_more_than(1, Duration::from_millis(100)).await;
}

#[tokio::test]
async fn webhooks_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config();
    c.data_dir = dir.path().join("data");
    let rx = Receiver::start().await;

    let first = start(c.clone()).await;
    assert_eq!(first.register(&hook(&rx.url)).await.0, 200);
    first.stop();

    let second = start(c).await;
    let listed = second.hooks("comcast").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["config"]["url"], rx.url.as_str());
    assert_eq!(
        second.notify(&event("event:iot", "mac:112233445566")).await,
        202
    );
    rx.wait_for(1, WAIT).await;
}

#[tokio::test]
async fn replicas_share_webhooks_through_postgres() {
    let mut c = config();
    c.database_url = Some(xmidt_store::testing::postgres().create_database().await);
    let (a, b) = (start(c.clone()).await, start(c).await);
    let rx = Receiver::start().await;

    // Registered at A; B picks it up at its next reload.
    assert_eq!(a.register(&hook(&rx.url)).await.0, 200);
    assert_eq!(b.hooks("comcast").await.len(), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let via_b = b
        .caduceus
        .submit(event("event:iot", "mac:112233445566"))
        .unwrap();
    assert_eq!(via_b.matched, 1);
    rx.wait_for(1, WAIT).await;

    // Deleted at B; A stops delivering after its next reload.
    let id = b.hooks("comcast").await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let deleted = b
        .http
        .delete(format!("{}/hook/{id}", b.base))
        .header(crate::common::PARTNERS, "comcast")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let via_a = a
        .caduceus
        .submit(event("event:iot", "mac:112233445566"))
        .unwrap();
    assert_eq!(via_a.matched, 0);
}
