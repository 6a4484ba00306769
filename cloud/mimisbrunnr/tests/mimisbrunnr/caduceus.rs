//! Event intake from caduceus: mimisbrunnr keeps its webhook registered there, and events
//! posted to caduceus reach norns through it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use xmidt_caduceus::Caduceus;
use xmidt_mimisbrunnr::config::RegistrationConfig;

use crate::harness::{self, create, event, http_norn, post_event, Receiver};

/// A real caduceus on a loopback port that admits loopback receivers.
async fn start_caduceus(dir: &std::path::Path, shutdown: &CancellationToken) -> String {
    let mut config = xmidt_caduceus::Config {
        data_dir: dir.to_path_buf(),
        ..Default::default()
    };
    config.registration.allow_loopback = true;
    let caduceus: Arc<Caduceus> = Caduceus::new(config, shutdown.clone()).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(xmidt_caduceus::serve(
        listener,
        caduceus.router(),
        caduceus.config.intake.read_timeout,
        shutdown.clone(),
    ));
    url
}

fn registration(caduceus: &str, own: &str) -> RegistrationConfig {
    RegistrationConfig {
        url: format!("{caduceus}/hook"),
        events_url: format!("{own}/events"),
        events: vec![".*".into()],
        interval: Duration::from_millis(300),
        duration: Duration::from_secs(2),
        secret: None,
        basic: None,
        bearer: None,
        partner_ids: vec!["*".into()],
        timeout: Duration::from_secs(1),
    }
}

/// Caduceus' view of mimisbrunnr's webhook: its `until`, once registered.
async fn registered_until(caduceus: &str, events_url: &str) -> Option<String> {
    let hooks: serde_json::Value = reqwest::Client::new()
        .get(format!("{caduceus}/hooks"))
        .header("x-xmidt-partner-ids", "*")
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    hooks
        .as_array()?
        .iter()
        .find(|h| h["config"]["url"] == events_url)
        .map(|h| h["until"].as_str().unwrap_or_default().to_owned())
}

async fn wait_for<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut probe: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn events_come_from_a_real_caduceus_through_a_renewed_signed_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let caduceus = start_caduceus(dir.path(), &shutdown).await;
    let service = harness::start(|own| xmidt_mimisbrunnr::Config {
        caduceus: Some(RegistrationConfig {
            secret: Some("caduceus-signs-with-this".into()),
            basic: Some("mimisbrunnr:pw".into()),
            ..registration(&caduceus, own)
        }),
        ..harness::config()
    })
    .await;
    let events_url = format!("{}/events", service.url);
    let first = wait_for("registration", || registered_until(&caduceus, &events_url)).await;

    let receiver = Receiver::start().await;
    create(
        &service,
        None,
        &http_norn("mac:112233445566", &receiver.url, "", 60),
    )
    .await;
    let (sent, msgpack) = event("mac:112233445566", "event:iot/temp", "via-caduceus");
    let accepted = reqwest::Client::new()
        .post(format!("{caduceus}/api/v4/notify"))
        .header("content-type", "application/msgpack")
        .body(msgpack.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 202);
    let got = receiver.next().await;
    assert_eq!(wrp_nostd::OwnedMessage::from_json(&got.body).unwrap(), sent);

    // With a secret registered, only caduceus' signed posts are taken.
    assert_eq!(post_event(&service, msgpack).await.status(), 403);
    receiver.nothing_within(Duration::from_millis(200)).await;

    // Renewed: caduceus' expiry for the webhook moves on.
    wait_for("renewal", || async {
        registered_until(&caduceus, &events_url)
            .await
            .filter(|until| *until != first)
    })
    .await;
}

#[tokio::test]
async fn registration_sends_credentials_and_retries_after_failures() {
    let stand_in = Receiver::start().await;
    stand_in.respond(&[500]);
    let service = harness::start(|own| xmidt_mimisbrunnr::Config {
        caduceus: Some(RegistrationConfig {
            bearer: Some("token-for-caduceus".into()),
            partner_ids: vec!["comcast".into(), "sky".into()],
            ..registration(&stand_in.url, own)
        }),
        ..harness::config()
    })
    .await;
    // The first attempt is refused and retried after 250 ms; once registered, renewals come
    // at the interval (300 ms).
    let mut arrivals = Vec::new();
    for _ in 0..3 {
        let got = stand_in.next().await;
        arrivals.push(Instant::now());
        assert_eq!(got.path, "/hook");
        assert_eq!(got.header("authorization"), "Bearer token-for-caduceus");
        assert_eq!(got.header("x-xmidt-partner-ids"), "comcast,sky");
        assert_eq!(
            got.json(),
            serde_json::json!({
                "config": {
                    "url": format!("{}/events", service.url),
                    "content_type": "application/msgpack",
                    "secret": "",
                },
                "events": [".*"],
                "duration": 2,
            })
        );
    }
    let retry = arrivals[1] - arrivals[0];
    let renewal = arrivals[2] - arrivals[1];
    assert!(retry >= Duration::from_millis(240), "{retry:?}");
    assert!(renewal >= Duration::from_millis(290), "{renewal:?}");
}
