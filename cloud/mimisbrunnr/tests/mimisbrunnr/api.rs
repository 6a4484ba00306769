//! The norn API: ownership, duplicates, validation and limits.

use crate::harness::{self, create, http_norn, send};

fn with_users(_: &str) -> xmidt_mimisbrunnr::Config {
    xmidt_mimisbrunnr::Config {
        api_auth: xmidt_auth::ApiAuthConfig {
            basic: vec!["alice:pw".into(), "bob:pw".into()],
            ..Default::default()
        },
        ..harness::config()
    }
}

#[tokio::test]
async fn norns_belong_to_their_owner_and_duplicates_update() {
    let service = harness::start(with_users).await;
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", service.url);
    let dest = "http://receiver.example/events";

    // Created, with its device id canonical and its secret hidden.
    let (status, made) = create(
        &service,
        Some("alice"),
        &http_norn("MAC:11-22-33-44-55-66", dest, "s3cret", 60),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let id = made["ID"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 64);
    assert_eq!(made["DeviceID"], "mac:112233445566");
    assert_eq!(made["Destination"]["HttpConfig"]["Secret"], "<obfuscated>");

    // The same device and destination again: the same norn, updated.
    let (status, updated) = create(
        &service,
        Some("alice"),
        &http_norn("mac:112233445566", dest, "other", 120),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["ID"], id.as_str());
    assert_eq!(updated["TTL"], 120);

    // Bob may not take it over, and cannot see, change or delete it.
    let (status, refused) = create(
        &service,
        Some("bob"),
        &http_norn("mac:112233445566", dest, "mine", 60),
    )
    .await;
    assert_eq!(status, 409, "{refused}");
    let norn_url = url(&format!("/norns/{id}"));
    assert_eq!(send(client.get(&norn_url), Some("bob")).await.0, 404);
    let put = client
        .put(&norn_url)
        .json(&http_norn("mac:112233445566", dest, "x", 60));
    assert_eq!(send(put, Some("bob")).await.0, 404);
    assert_eq!(send(client.delete(&norn_url), Some("bob")).await.0, 404);
    let (status, bobs) = send(client.get(url("/norns")), Some("bob")).await;
    assert_eq!((status, bobs), (200, serde_json::json!([])));

    // Alice sees it, once, as updated.
    let (status, alices) = send(client.get(url("/norns")), Some("alice")).await;
    assert_eq!(status, 200);
    assert_eq!(alices.as_array().unwrap().len(), 1, "{alices}");
    assert_eq!(alices[0]["ID"], id.as_str());
    assert_eq!(alices[0]["TTL"], 120);
    let (status, shown) = send(client.get(&norn_url), Some("alice")).await;
    assert_eq!((status, &shown["TTL"]), (200, &serde_json::json!(120)));

    // PUT changes what is not identity; device and destination are.
    let put = client
        .put(&norn_url)
        .json(&http_norn("mac:112233445566", dest, "s", 30));
    let (status, put_answer) = send(put, Some("alice")).await;
    assert_eq!((status, &put_answer["TTL"]), (200, &serde_json::json!(30)));
    let moved = client.put(&norn_url).json(&http_norn(
        "mac:112233445566",
        "http://elsewhere.example/",
        "s",
        30,
    ));
    let (status, error) = send(moved, Some("alice")).await;
    assert_eq!(status, 400);
    assert!(
        error["message"].as_str().unwrap().contains("cannot change"),
        "{error}"
    );

    // Unauthenticated callers are refused.
    assert_eq!(send(client.get(url("/norns")), None).await.0, 401);

    // Deleted: gone for its owner too.
    let (status, _) = send(client.delete(&norn_url), Some("alice")).await;
    assert_eq!(status, 200);
    assert_eq!(send(client.get(&norn_url), Some("alice")).await.0, 404);
    assert_eq!(send(client.delete(&norn_url), Some("alice")).await.0, 404);
}

#[tokio::test]
async fn bad_norns_are_refused_with_the_reason() {
    let service = harness::start(|_| xmidt_mimisbrunnr::Config {
        max_ttl: std::time::Duration::from_secs(3600),
        max_norns: 1,
        ..harness::config()
    })
    .await;
    let client = reqwest::Client::new();
    let post = |body: String| {
        client
            .post(format!("{}/norns", service.url))
            .header("content-type", "application/json")
            .body(body)
    };
    let cases = [
        ("not json".to_string(), 400, "invalid norn JSON"),
        (
            r#"{"DeviceId": "mac:112233445566"}"#.to_string(),
            400,
            "unknown field `DeviceId`",
        ),
        (
            http_norn("mac:112233445566", "http://r.example/", "", 3601).to_string(),
            400,
            "TTL 3601 is out of range: give 1 to 3600 seconds",
        ),
        (
            http_norn("uuid:", "http://r.example/", "", 60).to_string(),
            400,
            "is not a device id",
        ),
        (
            http_norn("mac:112233445566", "r.example", "", 60).to_string(),
            400,
            "Destination.HttpConfig.URL",
        ),
        (
            format!(r#"{{"DeviceID": "{}"}}"#, "x".repeat(5000)),
            413,
            "larger than 4096 bytes",
        ),
    ];
    for (body, status, message) in cases {
        let (got, answer) = send(post(body.clone()), None).await;
        assert_eq!(got, status, "{body:.80}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(message),
            "{body:.80}: {answer}"
        );
    }
    // Nothing was stored by any of them; the one norn allowed is still free.
    let (status, _) = create(
        &service,
        None,
        &http_norn("mac:112233445566", "http://r.example/", "", 60),
    )
    .await;
    assert_eq!(status, 201);
    let (status, full) = create(
        &service,
        None,
        &http_norn("mac:112233445567", "http://r.example/", "", 60),
    )
    .await;
    assert_eq!(status, 403, "{full}");
}
