//! `POST /hook`, `GET /hooks`, `DELETE /hook`: validation as ancla does it, listing, renewal,
//! deletion.

use std::time::{Duration, SystemTime};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::common::{config, hook, start, PARTNERS};

#[tokio::test]
async fn registrations_are_validated() {
    let mut c = config();
    // The production policy, minus DNS (the test machine may have none).
    c.registration.allow_loopback = false;
    c.registration.max_body = 4096;
    let cad = start(c).await;
    let good = "https://events.comcast.net/hook";
    let soon = |secs: i64| {
        let offset = Duration::from_secs(secs.unsigned_abs());
        let now = SystemTime::now();
        rfc3339(if secs < 0 { now - offset } else { now + offset })
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"events": [".*"], "duration": 60}),
            "failed to JSON unmarshal",
        ),
        (hook("ftp://events.comcast.net/"), "scheme \\\"ftp\\\""),
        (hook("http://127.0.0.1:9000/"), "loopback"),
        (hook("http://localhost:9000/"), "loopback"),
        (hook("http://[::1]:9000/"), "loopback"),
        (hook("http://8.8.8.8/"), "IP addresses"),
        (hook("https://hooks.example/"), "special-use domain"),
        (hook("https://receiver.test/"), "special-use domain"),
        (hook("https://user:pw@events.comcast.net/"), "credentials"),
        (
            json!({"config": {"url": good, "alt_urls": ["http://10.0.0.1/"]}, "events": [".*"], "duration": 60}),
            "alt_urls",
        ),
        (
            json!({"config": {"url": good}, "failure_url": "http://localhost/", "events": [".*"], "duration": 60}),
            "failure_url",
        ),
        (
            json!({"config": {"url": good}, "events": [], "duration": 60}),
            "at least one",
        ),
        (
            json!({"config": {"url": good}, "duration": 60}),
            "at least one",
        ),
        (
            json!({"config": {"url": good}, "events": ["("], "duration": 60}),
            "events: pattern",
        ),
        (
            json!({"config": {"url": good}, "events": [".*"], "matcher": {"device_id": ["mac:["]}, "duration": 60}),
            "matcher.device_id: pattern",
        ),
        (
            json!({"config": {"url": good}, "events": [".*"]}),
            "duration or until",
        ),
        (
            json!({"config": {"url": good}, "events": [".*"], "duration": "48h"}),
            "exceeds the maximum",
        ),
        (
            json!({"config": {"url": good}, "events": [".*"], "duration": "soon"}),
            "invalid duration",
        ),
        (
            json!({"config": {"url": good}, "events": [".*"], "duration": -5}),
            "negative",
        ),
        (
            json!({"config": {"url": good}, "events": [".*"], "until": soon(-60)}),
            "in the past",
        ),
        (
            json!({"config": {"url": good}, "events": [".*"], "until": soon(3 * 86400)}),
            "from now",
        ),
        (
            json!({"config": {"url": good}, "events": [".*"], "duration": 60, "padding": "x".repeat(5000)}),
            "larger than 4096",
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = cad.register(&body).await;
        let message = answer.to_string();
        assert!(status == 400 || status == 413, "{body}: {status} {message}");
        assert!(
            message.contains(expected),
            "{body}: {message} lacks {expected}"
        );
    }

    // Partner ids come from the caller; without any, registration is refused.
    let (status, answer) = cad.register_as(&hook(good), None).await;
    assert_eq!(status, 400);
    assert!(answer.to_string().contains("partner"), "{answer}");

    let (status, answer) = cad.register(&hook(good)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["message"], "Success");
    assert_eq!(answer["id"], hex::encode(Sha256::digest(good.as_bytes())));
    assert_eq!(answer["created"], true);
}

/// RFC 3339 in UTC, as clients send `until`.
fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
    time::OffsetDateTime::from_unix_timestamp(secs)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[tokio::test]
async fn listing_renewal_and_deletion() {
    let cad = start(config()).await;
    let a = "http://127.0.0.1:9/a";
    let b = "http://127.0.0.1:9/b";
    let (status, first) = cad
        .register(&json!({
            "config": {"url": a, "secret": "s3cr3t", "content_type": "wrp"},
            "events": ["device-status"],
            "duration": 300,
        }))
        .await;
    assert_eq!(status, 200, "{first}");
    let (status, _) = cad.register_as(&hook(b), Some("sky, cox")).await;
    assert_eq!(status, 200);

    // Each caller sees its partners' webhooks; `*` sees all.
    let comcast = cad.hooks("comcast").await;
    assert_eq!(comcast.len(), 1);
    let shown = &comcast[0];
    assert_eq!(shown["id"], hex::encode(Sha256::digest(a.as_bytes())));
    assert_eq!(shown["config"]["secret"], "<obfuscated>");
    assert_eq!(shown["config"]["content_type"], "wrp");
    assert_eq!(shown["duration"], "5m0s");
    assert_eq!(shown["until"], first["until"]);
    assert_eq!(shown["partner_ids"], json!(["comcast"]));
    assert_eq!(shown["matcher"]["device_id"], json!([".*"]));
    assert!(shown["registered_from_address"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    assert_eq!(cad.hooks("cox").await.len(), 1);
    assert_eq!(cad.hooks("*").await.len(), 2);
    assert!(cad.hooks("nobody").await.is_empty());

    // Registering the same URL again renews it in place.
    let (status, renewed) = cad
        .register(&json!({"config": {"url": a}, "events": ["iot"], "duration": "10m"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(renewed["created"], false);
    assert_eq!(renewed["id"], first["id"]);
    let listed = cad.hooks("comcast").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["events"], json!(["iot"]));
    assert_eq!(listed[0]["duration"], "10m0s");

    // The same under /api/v3.
    let v3: Vec<Value> = cad
        .http
        .get(format!("{}/api/v3/hooks", cad.base))
        .header(PARTNERS, "*")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v3.len(), 2);

    // Deletion: another partner cannot; by id; by URL; twice is 404.
    let id = first["id"].as_str().unwrap();
    let delete = |path: String, partners: &'static str| {
        let request = cad.http.delete(format!("{}{path}", cad.base));
        async move {
            request
                .header(PARTNERS, partners)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(delete(format!("/hook/{id}"), "sky").await, 404);
    assert_eq!(delete(format!("/hook/{id}"), "comcast").await, 200);
    assert_eq!(delete(format!("/hook/{id}"), "comcast").await, 404);
    let by_url = format!("/api/v3/hook?url={}", url_encode(b));
    assert_eq!(delete(by_url.clone(), "cox").await, 200);
    assert_eq!(delete(by_url, "cox").await, 404);
    assert_eq!(delete("/hook".into(), "cox").await, 400);
    assert!(cad.hooks("*").await.is_empty());
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn webhook_limit() {
    let mut c = config();
    c.registration.max_webhooks = 2;
    let cad = start(c).await;
    for n in 0..2 {
        let (status, _) = cad
            .register(&hook(&format!("http://127.0.0.1:9/{n}")))
            .await;
        assert_eq!(status, 200);
    }
    let (status, answer) = cad.register(&hook("http://127.0.0.1:9/2")).await;
    assert_eq!(status, 403, "{answer}");
    // Renewing an existing one is still allowed.
    let (status, _) = cad.register(&hook("http://127.0.0.1:9/0")).await;
    assert_eq!(status, 200);
}
