//! Delivery: bodies, headers and both signatures (checked here with our own HMACs), matching,
//! retries, alt_urls, cut-off, and isolation between webhooks.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};
use wrp_nostd::OwnedMessage;

use crate::common::{black_hole, config, event, hook, refused, sample, start, Receiver, Reply};

const WAIT: Duration = Duration::from_secs(5);

fn hmac_sha1_hex(key: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn hmac_sha256_b64(key: &[u8], content: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(content);
    BASE64.encode(mac.finalize().into_bytes())
}

/// Checks the Standard Webhooks headers of `r` against `key`.
fn verify_standard(r: &crate::common::Received, key: &[u8]) {
    let h = |name: &str| r.headers[name].to_str().unwrap().to_string();
    let (id, timestamp) = (h("webhook-id"), h("webhook-timestamp"));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let sent: u64 = timestamp.parse().unwrap();
    assert!(now.abs_diff(sent) <= 5, "timestamp {sent} vs now {now}");
    let mut content = format!("{id}.{timestamp}.").into_bytes();
    content.extend_from_slice(&r.body);
    assert_eq!(
        h("webhook-signature"),
        format!("v1,{}", hmac_sha256_b64(key, &content))
    );
}

#[tokio::test]
async fn bodies_headers_and_signatures() {
    let cad = start(config()).await;
    let (payload_rx, wrp_rx, json_rx, plain_rx) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    let whsec_key = b"0123456789abcdef0123456789abcdef";
    let whsec = format!("whsec_{}", BASE64.encode(whsec_key));
    for (rx, content_type, secret) in [
        (&payload_rx, "application/json", "s3cr3t".to_string()),
        (&wrp_rx, "wrp", whsec.clone()),
        (&json_rx, "application/wrp+json", "s3cr3t".to_string()),
        (&plain_rx, "", String::new()),
    ] {
        let body = json!({
            "config": {"url": rx.url, "content_type": content_type, "secret": secret},
            "events": ["device-status"],
            "duration": 60,
        });
        assert_eq!(cad.register(&body).await.0, 200);
    }

    let mut msg = event("event:device-status/mac:112233445566/online", "dns:talaria");
    msg.metadata.insert("/hw-model".into(), "xb7".into());
    msg.session_id = "session-1".into();
    assert_eq!(cad.notify(&msg).await, 202);

    // The payload, as the event's content type, with every header.
    let r = &payload_rx.wait_for(1, WAIT).await[0];
    assert_eq!(&r.body[..], &msg.payload[..]);
    let h = |name: &str| r.headers[name].to_str().unwrap().to_string();
    assert_eq!(h("content-type"), "application/json");
    assert_eq!(h("x-webpa-event"), "device-status/mac:112233445566/online");
    assert_eq!(h("x-webpa-device-id"), "mac:112233445566");
    assert_eq!(h("x-webpa-device-name"), "mac:112233445566");
    assert_eq!(h("x-webpa-source"), "dns:talaria");
    assert_eq!(h("x-webpa-destination"), msg.dest);
    assert_eq!(h("x-webpa-transaction-id"), msg.transaction_uuid);
    assert_eq!(h("x-xmidt-transaction-uuid"), msg.transaction_uuid);
    assert_eq!(h("x-xmidt-message-type"), "SimpleEvent");
    assert_eq!(h("x-xmidt-source"), "dns:talaria");
    assert_eq!(h("x-xmidt-partner-id"), "comcast");
    assert_eq!(h("x-xmidt-metadata"), "/hw-model=xb7");
    assert_eq!(h("x-xmidt-session-id"), "session-1");
    assert_eq!(h("webhook-id"), format!("msg_{}", msg.transaction_uuid));
    assert_eq!(
        h("x-webpa-signature"),
        format!("sha1={}", hmac_sha1_hex(b"s3cr3t", &r.body))
    );
    verify_standard(r, b"s3cr3t");

    // The whole WRP as msgpack; the whsec_ secret's decoded key signs the Standard header,
    // the secret text the SHA-1 one.
    let r = &wrp_rx.wait_for(1, WAIT).await[0];
    assert_eq!(r.headers["content-type"], "application/msgpack");
    assert_eq!(OwnedMessage::decode(&r.body).unwrap(), msg);
    assert_eq!(
        r.headers["x-webpa-signature"].to_str().unwrap(),
        format!("sha1={}", hmac_sha1_hex(whsec.as_bytes(), &r.body))
    );
    verify_standard(r, whsec_key);

    // The whole WRP as JSON.
    let r = &json_rx.wait_for(1, WAIT).await[0];
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(OwnedMessage::from_json(&r.body).unwrap(), msg);
    verify_standard(r, b"s3cr3t");

    // No secret: no signatures, still an id and a timestamp.
    let r = &plain_rx.wait_for(1, WAIT).await[0];
    assert!(r.headers.get("x-webpa-signature").is_none());
    assert!(r.headers.get("webhook-signature").is_none());
    assert!(r.headers.contains_key("webhook-id"));
    assert!(r.headers.contains_key("webhook-timestamp"));
}

#[tokio::test]
async fn missing_fields_are_filled_in() {
    let cad = start(config()).await;
    let rx = Receiver::start().await;
    cad.register(&hook(&rx.url)).await;
    let mut msg = event("event:iot", "mac:112233445566");
    msg.content_type.clear();
    msg.transaction_uuid.clear();
    assert_eq!(cad.notify(&msg).await, 202);
    let r = &rx.wait_for(1, WAIT).await[0];
    assert_eq!(r.headers["content-type"], "application/json");
    let uuid = r.headers["x-webpa-transaction-id"].to_str().unwrap();
    assert_eq!(uuid.len(), 36, "{uuid}");
    let metrics = cad.metrics().await;
    assert!(
        sample(
            &metrics,
            "xmidt_caduceus_modified_wrp_count",
            &[("reason", "empty_uuid_and_content_type")]
        )
        .is_some(),
        "{metrics}"
    );
}

#[tokio::test]
async fn matching_rules() {
    let cad = start(config()).await;
    let rx = Receiver::start().await;
    let register = |path: &str, events: Value, devices: Value, partners: &'static str| {
        let body = json!({
            "config": {"url": format!("{}/{path}", rx.url)},
            "events": events,
            "matcher": {"device_id": devices},
            "duration": 60,
        });
        let cad = &cad;
        async move {
            let (status, answer) = cad.register_as(&body, Some(partners)).await;
            assert_eq!(status, 200, "{answer}");
        }
    };
    register("type", json!(["device-status"]), json!([]), "comcast").await;
    // Anchored: a fragment of an event type matches nothing.
    register("fragment", json!(["status"]), json!([]), "comcast").await;
    register("path", json!([".*/online"]), json!([]), "comcast").await;
    register(
        "device",
        json!([".*"]),
        json!(["mac:112233445566"]),
        "comcast",
    )
    .await;
    register("prefix", json!([".*"]), json!(["mac:aabbcc.*"]), "comcast").await;
    register("other-partner", json!([".*"]), json!([]), "sky").await;
    register("any-partner", json!([".*"]), json!([]), "*").await;

    // From talaria: the device is in the path, the source is talaria.
    let online = event("event:device-status/mac:112233445566/online", "dns:talaria");
    assert_eq!(cad.caduceus.submit(online).unwrap().matched, 4);
    let mut paths: Vec<String> = rx
        .wait_for(4, WAIT)
        .await
        .iter()
        .map(|r| r.headers["x-webpa-event"].to_str().unwrap().to_string())
        .collect();
    paths.dedup();
    assert_eq!(paths, ["device-status/mac:112233445566/online"]);

    // From a device, its id written loosely: canonicalised before matching.
    let iot = event("event:iot", "MAC:AA-BB-CC-DD-EE-FF/service");
    assert_eq!(cad.caduceus.submit(iot).unwrap().matched, 2); // prefix, any-partner

    // Another partner's event reaches only its own and the wildcard webhook.
    let mut sky = event("event:iot", "mac:112233445566");
    sky.partner_ids = vec!["sky".into()];
    assert_eq!(cad.caduceus.submit(sky).unwrap().matched, 2);

    // No partner ids and no custom ones: only the wildcard webhook.
    let mut none = event("event:iot", "mac:112233445566");
    none.partner_ids.clear();
    assert_eq!(cad.caduceus.submit(none).unwrap().matched, 1);
    rx.wait_for(9, WAIT).await;
    rx.expect_no_more_than(9, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn partner_ids_can_be_disabled_or_assumed() {
    let mut c = config();
    c.delivery.custom_partner_ids = vec!["comcast".into()];
    let cad = start(c).await;
    cad.register(&hook("http://127.0.0.1:9/x")).await;
    let mut none = event("event:iot", "mac:112233445566");
    none.partner_ids.clear();
    assert_eq!(cad.caduceus.submit(none.clone()).unwrap().matched, 1);

    let mut c = config();
    c.delivery.disable_partner_ids = true;
    let cad = start(c).await;
    // With partner ids off, a registration needs none.
    assert_eq!(
        cad.register_as(&hook("http://127.0.0.1:9/y"), None).await.0,
        200
    );
    let mut sky = none;
    sky.partner_ids = vec!["sky".into()];
    assert_eq!(cad.caduceus.submit(sky).unwrap().matched, 1);
}

#[tokio::test]
async fn retries_honour_retry_after_and_back_off() {
    let cad = start(config()).await;
    let rx = Receiver::start().await;
    cad.register(&hook(&rx.url)).await;

    rx.script([Reply::status(429).header("retry-after", "1")]);
    cad.notify(&event("event:iot", "mac:112233445566")).await;
    let got = rx.wait_for(2, WAIT).await;
    let gap = got[1].at - got[0].at;
    assert!(gap >= Duration::from_millis(950), "{gap:?}");
    assert_eq!(got[0].headers["webhook-id"], got[1].headers["webhook-id"]);

    // Without Retry-After: exponential backoff (20 ms base here), and 503 is retried too.
    rx.script([Reply::status(503), Reply::status(502)]);
    cad.notify(&event("event:iot", "mac:112233445566")).await;
    let got = rx.wait_for(5, WAIT).await;
    assert!(got[4].at - got[2].at < Duration::from_millis(500));

    // A final answer is not retried.
    rx.script([Reply::status(400)]);
    cad.notify(&event("event:iot", "mac:112233445566")).await;
    rx.wait_for(6, WAIT).await;
    rx.expect_no_more_than(6, Duration::from_millis(300)).await;

    let metrics = cad.metrics().await;
    let count = |outcome| {
        sample(
            &metrics,
            "xmidt_caduceus_delivery_count",
            &[("url", &rx.url), ("outcome", outcome)],
        )
    };
    assert_eq!(count("delivered"), Some(2.0), "{metrics}");
    assert_eq!(count("rejected"), Some(1.0), "{metrics}");
    assert_eq!(
        sample(
            &metrics,
            "xmidt_caduceus_delivery_retry_count",
            &[("url", &rx.url)]
        ),
        Some(3.0)
    );
}

#[tokio::test]
async fn alt_urls_take_turns_and_retries_move_on() {
    let cad = start(config()).await;
    let (a, b) = (Receiver::start().await, Receiver::start().await);
    let body =
        json!({"config": {"url": a.url, "alt_urls": [b.url]}, "events": [".*"], "duration": 60});
    cad.register(&body).await;
    for _ in 0..6 {
        cad.notify(&event("event:iot", "mac:112233445566")).await;
    }
    a.wait_for(3, WAIT).await;
    b.wait_for(3, WAIT).await;
    a.expect_no_more_than(3, Duration::from_millis(100)).await;
    assert_eq!(b.received().len(), 3);

    // `a` fails: every event still arrives, at `b`, each at most one attempt later.
    a.otherwise(Reply::status(503));
    for _ in 0..4 {
        cad.notify(&event("event:iot", "mac:112233445566")).await;
    }
    b.wait_for(7, WAIT).await;
}

#[tokio::test]
async fn spent_retries_cut_off_and_notify() {
    let mut c = config();
    c.delivery.max_retries = 1;
    let cad = start(c).await;
    let (rx, failures) = (Receiver::start().await, Receiver::start().await);
    rx.otherwise(Reply::status(500));
    let body = json!({
        "config": {"url": rx.url, "secret": "s3cr3t"},
        "failure_url": failures.url,
        "events": [".*"],
        "duration": 60,
    });
    cad.register(&body).await;
    cad.notify(&event("event:iot", "mac:112233445566")).await;

    let notice = &failures.wait_for(1, WAIT).await[0];
    assert_eq!(rx.received().len(), 2, "one attempt and one retry");
    assert_eq!(
        notice.headers["x-webpa-signature"].to_str().unwrap(),
        format!("sha1={}", hmac_sha1_hex(b"s3cr3t", &notice.body))
    );
    verify_standard(notice, b"s3cr3t");
    let text: Value = serde_json::from_slice(&notice.body).unwrap();
    assert_eq!(text["reason"], "retries_exhausted");
    assert_eq!(text["cut_off_period"], "600ms");
    assert_eq!(
        text["webhook_registration"]["config"]["url"],
        rx.url.as_str()
    );
    assert_eq!(
        text["webhook_registration"]["config"]["secret"],
        "<obfuscated>"
    );
    assert!(text["text"].as_str().is_some_and(|t| !t.is_empty()));

    // During the cut-off events are counted, not sent.
    rx.otherwise(Reply::status(200));
    for _ in 0..3 {
        assert_eq!(
            cad.notify(&event("event:iot", "mac:112233445566")).await,
            202
        );
    }
    rx.expect_no_more_than(2, Duration::from_millis(100)).await;
    let metrics = cad.metrics().await;
    let labels = [("url", rx.url.as_str()), ("reason", "cut_off")];
    assert_eq!(
        sample(
            &metrics,
            "xmidt_caduceus_slow_consumer_dropped_message_count",
            &labels
        ),
        Some(3.0)
    );
    let labels = [("url", rx.url.as_str()), ("outcome", "retries_exhausted")];
    assert_eq!(
        sample(&metrics, "xmidt_caduceus_delivery_count", &labels),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &metrics,
            "xmidt_caduceus_slow_consumer_cut_off_count",
            &[("url", &rx.url)]
        ),
        Some(1.0)
    );

    // After the cut-off period, delivery resumes.
    tokio::time::sleep(Duration::from_millis(700)).await;
    cad.notify(&event("event:iot", "mac:112233445566")).await;
    rx.wait_for(3, WAIT).await;
}

#[tokio::test]
async fn overflow_cuts_off_and_empties_the_queue() {
    let mut c = config();
    c.delivery.queue_size = 3;
    c.delivery.workers = 1;
    let cad = start(c).await;
    let (slow, failures) = (Receiver::start().await, Receiver::start().await);
    slow.otherwise(Reply::status(200).delay(Duration::from_millis(500)));
    let body = json!({"config": {"url": slow.url}, "failure_url": failures.url, "events": [".*"], "duration": 60});
    cad.register(&body).await;

    // One in flight, three queued, the fifth overflows: cut off, the three queued dropped,
    // and the rest dropped during the cut-off. Nothing goes uncounted.
    let submit = || {
        cad.caduceus
            .submit(event("event:iot", "mac:112233445566"))
            .unwrap()
    };
    submit();
    slow.wait_for(1, WAIT).await;
    for _ in 0..9 {
        submit();
    }
    let notice: Value = serde_json::from_slice(&failures.wait_for(1, WAIT).await[0].body).unwrap();
    assert_eq!(notice["reason"], "queue_full");
    assert_eq!(notice["dropped_events"], 3);
    assert_eq!(notice["queue_size"], 3);
    tokio::time::sleep(Duration::from_millis(600)).await;

    let metrics = cad.metrics().await;
    let dropped = |reason| {
        let labels = [("url", slow.url.as_str()), ("reason", reason)];
        sample(
            &metrics,
            "xmidt_caduceus_slow_consumer_dropped_message_count",
            &labels,
        )
        .unwrap_or(0.0)
    };
    let delivered = sample(
        &metrics,
        "xmidt_caduceus_delivery_count",
        &[("url", slow.url.as_str()), ("outcome", "delivered")],
    )
    .unwrap_or(0.0);
    assert_eq!(delivered, 1.0, "{metrics}");
    assert_eq!(dropped("queue_full"), 1.0);
    assert_eq!(dropped("cut_off"), 8.0);
    assert_eq!(slow.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_receivers_do_not_delay_healthy_ones() {
    let mut c = config();
    c.delivery.request_timeout = Duration::from_secs(3);
    c.delivery.workers = 8;
    let cad = start(c).await;
    let healthy = Receiver::start().await;
    for url in [black_hole().await, refused().await, healthy.url.clone()] {
        cad.register(&hook(&url)).await;
    }
    let started = Instant::now();
    for _ in 0..200 {
        let matched = cad
            .caduceus
            .submit(event("event:iot", "mac:112233445566"))
            .unwrap()
            .matched;
        assert_eq!(matched, 3);
    }
    let intake = started.elapsed();
    let got = healthy.wait_for(200, Duration::from_secs(3)).await;
    let last = got.iter().map(|r| r.at).max().unwrap() - started;
    assert!(intake < Duration::from_secs(1), "intake took {intake:?}");
    // Were the dead receivers in the way, the healthy one would wait out the black hole's 3 s
    // request timeout.
    assert!(
        last < Duration::from_secs(2),
        "healthy receiver done after {last:?}"
    );
}
