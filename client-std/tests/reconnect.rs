//! The cloud connection against a bare WebSocket server that misbehaves on purpose: the
//! handshake, every redirect status, refusals, 403 and the token, missing pings, closes, drops.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as Ws;

#[tokio::test]
async fn handshake_carries_parodus_headers() {
    let mut server = bare(|_| Reply::Accept).await;
    let (device, _stop) = spawn(config(&server.url()));
    let up = server.next().await;
    assert_eq!(up.path, "/api/v2/device");
    let h = &up.headers;
    assert_eq!(h["x-webpa-device-name"], DEVICE);
    assert_eq!(h["x-webpa-device-protocols"], "wrp-0.11,getset-0.1");
    let ua = h["user-agent"].to_str().unwrap();
    assert!(ua.starts_with("PARODUS-2.0-"), "{ua}");
    assert!(ua.ends_with(" (TG1682_DEV_test; TG1682/ARRIS;)"), "{ua}");
    assert!(h.get("authorization").is_none(), "no token, no header");
    let c = convey(h);
    assert_eq!(c["hw-model"], "TG1682");
    assert_eq!(c["boot-time"], 1_700_000_000);
    assert_eq!(c["webpa-last-reconnect-reason"], "webpa_process_starts");
    assert!(c.get("boot-time-retry-wait").is_none());
    status_until(&device, "online", |s| s.online).await;
}

#[tokio::test]
async fn redirects_of_every_kind_are_followed_and_their_paths_ignored() {
    // 301 -> 302 -> 303 -> 307 -> 308 -> accept, each hop on its own server.
    let mut last = bare(|_| Reply::Accept).await;
    let mut next = last.url();
    let mut hops = Vec::new();
    for status in [308, 307, 303, 302, 301] {
        let location = format!("{next}/somewhere/else?x=1");
        let hop = bare(move |_| Reply::Refuse(status, Some(location.clone()))).await;
        next = hop.url();
        hops.push(hop);
    }
    let (device, _stop) = spawn(config(&next));
    let up = last.next().await;
    assert_eq!(up.path, "/api/v2/device", "the redirect's path is not used");
    assert!(up.ws.is_some());
    let s = status_until(&device, "online", |s| s.online).await;
    assert_eq!(s.stats.redirects, 5);
    assert_eq!(s.stats.connect_failures, 0);
    for hop in &hops {
        assert_eq!(hop.count.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}

#[tokio::test]
async fn refused_connections_back_off_then_connect() {
    // Nothing listens on the port at first.
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let (device, _stop) = spawn(config(&url));
    let started = Instant::now();
    status_until(&device, "two failures", |s| s.stats.connect_failures >= 2).await;
    // backoff-max 0: parodus retries every 3 s.
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let mut server = bare_on(listener, |_| Reply::Accept);
    server.accepted().await;
    status_until(&device, "online", |s| s.online).await;
}

#[tokio::test]
async fn a_503_backs_off_and_retries_the_configured_url() {
    let mut server = bare(|n| {
        if n == 0 {
            Reply::Refuse(503, None)
        } else {
            Reply::Accept
        }
    })
    .await;
    let (device, _stop) = spawn(config(&server.url()));
    let first = server.next().await;
    assert!(first.ws.is_none());
    let at = Instant::now();
    server.accepted().await;
    assert!(
        at.elapsed() >= Duration::from_millis(2900),
        "{:?}",
        at.elapsed()
    );
    let s = status_until(&device, "online", |s| s.online).await;
    assert_eq!(s.stats.connect_failures, 1);
}

#[tokio::test]
async fn a_403_fetches_a_new_token_at_once() {
    let issuer = themis(|n| (200, format!("tok-{n}"))).await;
    let mut server = bare(|n| {
        if n == 0 {
            Reply::Refuse(403, None)
        } else {
            Reply::Accept
        }
    })
    .await;
    let mut cfg = config(&server.url());
    cfg.token_server_url = issuer.url.clone();
    cfg.interface_used = "lo".into();
    cfg.boot_time_retry_wait = 7;
    let (device, _stop) = spawn(cfg);

    let first = server.next().await;
    assert_eq!(first.headers["authorization"], "Bearer tok-0");
    let at = Instant::now();
    let (second, _ws) = server.accepted().await;
    assert!(
        at.elapsed() < Duration::from_secs(2),
        "no backoff after a 403"
    );
    assert_eq!(second["authorization"], "Bearer tok-1");
    let s = status_until(&device, "online", |s| s.online).await;
    assert_eq!(s.stats.token_refreshes, 1);

    let requests = issuer.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    let h = &requests[0];
    assert_eq!(h["x-midt-mac-address"], "112233445566");
    assert_eq!(h["x-midt-serial-number"], "SER123456");
    assert_eq!(h["x-midt-partner-id"], "comcast,cox");
    assert_eq!(h["x-midt-hardware-model"], "TG1682");
    assert_eq!(h["x-midt-hardware-manufacturer"], "ARRIS");
    assert_eq!(h["x-midt-firmware-name"], "TG1682_DEV_test");
    assert_eq!(h["x-midt-interface-used"], "lo");
    assert_eq!(h["x-midt-last-reboot-reason"], "unknown");
    assert_eq!(h["x-midt-last-reconnect-reason"], "webpa_process_starts");
    assert_eq!(h["x-midt-boot-retry-wait"], "7");
    assert!(h["x-midt-protocol"]
        .to_str()
        .unwrap()
        .starts_with("PARODUS-2.0-"));
    let uuids: Vec<_> = requests.iter().map(|h| h["x-midt-uuid"].clone()).collect();
    assert_ne!(uuids[0], uuids[1], "a fresh uuid per request");
}

#[tokio::test]
async fn a_failing_token_server_means_connecting_without_a_token() {
    let issuer = themis(|_| (500, "no".into())).await;
    let mut server = bare(|_| Reply::Accept).await;
    let mut cfg = config(&server.url());
    cfg.token_server_url = issuer.url.clone();
    let (_device, _stop) = spawn(cfg);
    let (headers, _ws) = server.accepted().await;
    assert!(headers.get("authorization").is_none());
    assert_eq!(
        issuer.requests.lock().unwrap().len(),
        1,
        "a 500 is not retried"
    );
}

#[tokio::test]
async fn a_token_is_refreshed_before_it_expires() {
    // The first token expired long ago, so its refresh comes at the 10 s floor.
    let b64 =
        |s: &str| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, s);
    let issuer = themis(move |n| {
        let claims = if n == 0 {
            r#"{"iat":1,"exp":2}"#.to_string()
        } else {
            r#"{"iat":1,"exp":99999999999}"#.to_string()
        };
        (
            200,
            format!("{}.{}.sig{n}", b64(r#"{"alg":"none"}"#), b64(&claims)),
        )
    })
    .await;
    let mut server = bare(|_| Reply::Accept).await;
    let mut cfg = config(&server.url());
    cfg.token_server_url = issuer.url.clone();
    let (_device, _stop) = spawn(cfg);
    let (first, mut ws) = server.accepted().await;
    assert!(first["authorization"].to_str().unwrap().ends_with(".sig0"));
    // The refresh happens while connected; the new token is used at the next connect.
    tokio::time::timeout(Duration::from_secs(14), async {
        while issuer.requests.lock().unwrap().len() < 2 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("a refresh within the 10 s floor");
    let refresh = issuer.requests.lock().unwrap()[1].clone();
    assert!(refresh.contains_key("x-midt-mac-address"));
    // The refreshed token is used from the next connect on (once its answer has arrived).
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        ws.close(None).await.unwrap();
        let (next, next_ws) = server.accepted().await;
        if next["authorization"].to_str().unwrap().ends_with(".sig1") {
            assert_eq!(
                issuer.requests.lock().unwrap().len(),
                2,
                "reconnects fetch no token"
            );
            return;
        }
        ws = next_ws;
    }
    panic!("the refreshed token was never used");
}

#[tokio::test]
async fn ping_miss_closes_and_reconnects_at_once() {
    let mut server = bare(|_| Reply::Accept).await;
    let mut cfg = config(&server.url());
    cfg.ping_timeout_secs = 1;
    let (device, _stop) = spawn(cfg);
    let (_, mut ws) = server.accepted().await;
    // Never ping: the device gives up after a second and says why.
    let close = tokio::time::timeout(WAIT, ws.next()).await.unwrap();
    match close {
        Some(Ok(Ws::Close(Some(frame)))) => {
            assert_eq!(frame.code, CloseCode::Normal);
            assert_eq!(frame.reason, "parodus_stopping");
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
    let at = Instant::now();
    let (headers, _ws) = server.accepted().await;
    assert!(
        at.elapsed() < Duration::from_secs(2),
        "the first reconnect is immediate"
    );
    assert_eq!(convey(&headers)["webpa-last-reconnect-reason"], "Ping_Miss");
    let s = status_until(&device, "online again", |s| {
        s.online && s.stats.connects == 2
    })
    .await;
    assert_eq!(s.stats.ping_misses, 1);
}

#[tokio::test]
async fn server_pings_keep_the_connection() {
    let mut server = bare(|_| Reply::Accept).await;
    let mut cfg = config(&server.url());
    cfg.ping_timeout_secs = 1;
    let (device, _stop) = spawn(cfg);
    let (_, mut ws) = server.accepted().await;
    let until = Instant::now() + Duration::from_millis(2500);
    let mut pongs = 0;
    while Instant::now() < until {
        ws.send(Ws::Ping(b"p".to_vec().into())).await.unwrap();
        if let Ok(Some(Ok(Ws::Pong(p)))) =
            tokio::time::timeout(Duration::from_millis(300), ws.next()).await
        {
            assert_eq!(&p[..], b"p");
            pongs += 1;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(pongs >= 5, "pongs: {pongs}");
    let s = *device.status().borrow();
    assert!(s.online);
    assert_eq!((s.stats.connects, s.stats.ping_misses), (1, 0));
}

#[tokio::test]
async fn a_server_close_is_echoed_and_reconnected_with_reason_unknown() {
    let mut server = bare(|_| Reply::Accept).await;
    let (device, _stop) = spawn(config(&server.url()));
    let (_, mut ws) = server.accepted().await;
    ws.send(Ws::Close(Some(CloseFrame {
        code: CloseCode::Away,
        reason: "rehash".into(),
    })))
    .await
    .unwrap();
    // The device answers the close (parodus did not: talaria saw 1006).
    match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
        Some(Ok(Ws::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::Away),
        other => panic!("expected the echoed close, got {other:?}"),
    }
    let (headers, _ws) = server.accepted().await;
    assert_eq!(convey(&headers)["webpa-last-reconnect-reason"], "Unknown");
    status_until(&device, "online again", |s| {
        s.online && s.stats.connects == 2
    })
    .await;
}

#[tokio::test]
async fn a_dropped_socket_reconnects_with_reason_ssl_socket_close() {
    let mut server = bare(|_| Reply::Accept).await;
    let (_device, _stop) = spawn(config(&server.url()));
    let (_, ws) = server.accepted().await;
    drop(ws.into_inner());
    let (headers, _ws) = server.accepted().await;
    assert_eq!(
        convey(&headers)["webpa-last-reconnect-reason"],
        "SSL_Socket_Close"
    );
}
