//! `xmidt send` against a real scytale and talaria with a websocket device behind them.

use std::process::Command;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_util::sync::CancellationToken;
use wrp_nostd::OwnedMessage;

const ID: &str = "mac:112233445566";

/// Talaria with one device that answers with its payload upper-cased, and scytale in front.
async fn cluster(stop: &CancellationToken) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let talaria_url = format!("http://{}", listener.local_addr().unwrap());
    let mut config = xmidt_talaria::Config::default();
    config.outbound.event_endpoints.clear();
    let talaria = xmidt_talaria::Talaria::new(config, stop.clone()).unwrap();
    tokio::spawn(xmidt_talaria::serve(talaria, listener, None, stop.clone()));

    let mut request = format!("{}/api/v2/device", talaria_url.replace("http", "ws"))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("X-Webpa-Device-Name", ID.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    tokio::spawn(async move {
        while let Some(Ok(frame)) = ws.next().await {
            if let Ws::Binary(b) = frame {
                let mut m = OwnedMessage::decode(&b).unwrap();
                std::mem::swap(&mut m.source, &mut m.dest);
                m.status = Some(200);
                m.payload = m.payload.to_ascii_uppercase();
                let _ = ws.send(Ws::Binary(m.to_msgpack().unwrap().into())).await;
            }
        }
    });

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scytale_url = format!("http://{}", listener.local_addr().unwrap());
    let scytale = xmidt_scytale::Scytale::new(
        xmidt_scytale::Config::default(),
        xmidt_scytale::Targets::Fixed(vec![talaria_url]),
    )
    .unwrap();
    tokio::spawn(xmidt_scytale::serve(scytale, listener, stop.clone()));
    scytale_url
}

/// Runs the binary off the runtime's threads, so the in-process servers keep answering.
async fn xmidt(args: &[&str]) -> std::process::Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_xmidt"))
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_prints_the_device_answer_as_json() {
    let stop = CancellationToken::new();
    let scytale = cluster(&stop).await;
    let args = [
        "send",
        ID,
        "--scytale",
        &scytale,
        "--payload",
        r#"{"names":["x"]}"#,
        "--transaction-uuid",
        "cli-1",
    ];
    let out = xmidt(&args).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["msg_type"], 3);
    assert_eq!(answer["status"], 200);
    assert_eq!(answer["transaction_uuid"], "cli-1");
    assert_eq!(answer["source"], format!("{ID}/config"));
    assert_eq!(answer["payload_text"], r#"{"NAMES":["X"]}"#);

    let unknown = ["send", "mac:aabbccddeeff", "--scytale", &scytale];
    let out = xmidt(&unknown).await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("404") && err.contains("the device does not exist"),
        "{err}"
    );

    let bad_type = ["send", ID, "--type", "nonsense"];
    let out = xmidt(&bad_type).await;
    assert_eq!(out.status.code(), Some(2), "clap refuses the type");
    stop.cancel();
}
