//! A real talaria on loopback, an event receiver standing in for caduceus (a real HTTP server
//! that records what it gets), and websocket devices.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use wrp_nostd::OwnedMessage;
use xmidt_talaria::{Config, Talaria};

/// Every wait in these tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct Running {
    pub talaria: Arc<Talaria>,
    pub addr: SocketAddr,
    pub control: SocketAddr,
    pub events: mpsc::UnboundedReceiver<OwnedMessage>,
    pub shutdown: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Starts an event receiver and a talaria that sends it every event; `tune` adjusts the config.
pub async fn start(tune: impl FnOnce(&mut Config)) -> Running {
    let (tx, events) = mpsc::unbounded_channel();
    let receiver = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind receiver");
    let receiver_addr = receiver.local_addr().expect("addr");
    let app = Router::new().route(
        "/api/v4/notify",
        post(move |body: Bytes| {
            let tx = tx.clone();
            async move {
                match OwnedMessage::decode(&body) {
                    Ok(m) => {
                        let _ = tx.send(m);
                        StatusCode::ACCEPTED
                    }
                    Err(_) => StatusCode::BAD_REQUEST,
                }
            }
        }),
    );
    tokio::spawn(async move { axum::serve(receiver, app).await });

    let mut config = Config::default();
    config.outbound.event_endpoints.insert(
        "default".into(),
        vec![format!("http://{receiver_addr}/api/v4/notify")],
    );
    config.device.ping_period = Duration::from_secs(30);
    config.device.idle_period = Duration::from_secs(60);
    config.api.request_timeout = Duration::from_secs(5);
    tune(&mut config);
    let primary = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let control = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind control");
    let addr = primary.local_addr().expect("addr");
    let control_addr = control.local_addr().expect("addr");
    let shutdown = CancellationToken::new();
    let talaria = Talaria::new(config, shutdown.clone()).expect("valid config");
    tokio::spawn(xmidt_talaria::serve(
        talaria.clone(),
        primary,
        Some(control),
        shutdown.clone(),
    ));
    Running {
        talaria,
        addr,
        control: control_addr,
        events,
        shutdown,
    }
}

pub type DeviceSocket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Connects a device with the given headers (name, value).
pub async fn connect(
    addr: SocketAddr,
    headers: &[(&str, &str)],
) -> Result<DeviceSocket, tokio_tungstenite::tungstenite::Error> {
    let mut request = format!("ws://{addr}/api/v2/device").into_client_request()?;
    for (name, value) in headers {
        request.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
            value.parse().expect("value"),
        );
    }
    tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("connect in time")
        .map(|(ws, _)| ws)
}

pub async fn device(addr: SocketAddr, id: &str) -> DeviceSocket {
    connect(addr, &[("X-WebPA-Device-Name", id)])
        .await
        .expect("device connects")
}

/// The next WRP frame the device gets (pings are answered by the library).
pub async fn next_wrp(ws: &mut DeviceSocket) -> OwnedMessage {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("frame in time");
        match frame.expect("stream open").expect("frame ok") {
            Ws::Binary(b) => return OwnedMessage::decode(&b).expect("WRP frame"),
            Ws::Ping(_) | Ws::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

pub async fn send_wrp(ws: &mut DeviceSocket, m: &OwnedMessage) {
    ws.send(Ws::Binary(m.to_msgpack().expect("encode").into()))
        .await
        .expect("send");
}

/// The next event whose dest ends with `suffix`, skipping others.
pub async fn event_ending(
    events: &mut mpsc::UnboundedReceiver<OwnedMessage>,
    suffix: &str,
) -> OwnedMessage {
    loop {
        let m = tokio::time::timeout(WAIT, events.recv())
            .await
            .expect("event in time")
            .expect("receiver up");
        if m.dest.ends_with(suffix) {
            return m;
        }
    }
}
