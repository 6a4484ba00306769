//! The libparodus IPC against the real nanomsg library: a C service (tests/peer.c, built here
//! with `cc -lnanomsg`) registers, receives downstream messages byte for byte and keep-alives,
//! sends upstream, and is removed once it dies. Also the IPC's limits, with raw sockets.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdin, ChildStdout};
use wrp_nostd::{MessageType, OwnedMessage};
use xmidt_client_core::{AUTH_OK, SERVICE_ALIVE};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// Builds the C peer once per run.
fn peer_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("nanomsg-peer");
        let built = std::process::Command::new("cc")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peer.c"))
            .arg("-o")
            .arg(&out)
            .arg("-lnanomsg")
            .status()
            .expect("a C compiler (cc)");
        assert!(built.success(), "building the peer needs libnanomsg-dev");
        out
    })
    .clone()
}

/// A running C service.
struct Peer {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Peer {
    fn start(parodus_url: &str, own_url: &str, name: &str) -> Peer {
        let registration = OwnedMessage::builder(MessageType::ServiceRegistration)
            .service_name(name)
            .url(own_url)
            .build();
        let mut child = tokio::process::Command::new(peer_binary())
            .args([parodus_url, own_url, &hex(&encode(&registration))])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Peer {
            child,
            stdin,
            lines,
        }
    }

    /// The next message the service received.
    async fn recv(&mut self) -> Vec<u8> {
        let line = tokio::time::timeout(WAIT, self.lines.next_line())
            .await
            .expect("a message in time")
            .unwrap()
            .expect("the peer is running");
        unhex(line.strip_prefix("RECV ").expect("a RECV line"))
    }

    /// The next message that is not a keep-alive.
    async fn recv_message(&mut self) -> Vec<u8> {
        loop {
            let m = self.recv().await;
            if m != SERVICE_ALIVE {
                return m;
            }
        }
    }

    async fn send(&mut self, m: &OwnedMessage) {
        let line = format!("{}\n", hex(&encode(m)));
        self.stdin.write_all(line.as_bytes()).await.unwrap();
    }
}

fn crud(t: MessageType, source: &str, path: &str, tuuid: &str) -> OwnedMessage {
    OwnedMessage::builder(t)
        .source(source)
        .dest(format!("{DEVICE}/parodus/{path}"))
        .transaction_uuid(tuuid)
        .build()
}

#[tokio::test]
async fn registration_routing_and_upstream_with_nanomsg() {
    let mut cloud = bare(|_| Reply::Accept).await;
    let mut cfg = config(&cloud.url());
    cfg.service_alive_secs = 30;
    let (device, _stop) = spawn(cfg);
    let (_, mut ws) = cloud.accepted().await;
    let parodus = format!("tcp://{}", device.ipc_addr().unwrap());
    let mut peer = Peer::start(&parodus, &format!("tcp://127.0.0.1:{}", free_port()), "iot");

    // parodus's exact answer to a registration.
    assert_eq!(peer.recv().await, AUTH_OK);

    // Downstream: the cloud's bytes, unchanged.
    let req = request(&format!("{DEVICE}/iot/some/path"), "t-1");
    let bytes = encode(&req);
    futures_util::SinkExt::send(
        &mut ws,
        tokio_tungstenite::tungstenite::Message::Binary(bytes.clone().into()),
    )
    .await
    .unwrap();
    assert_eq!(peer.recv_message().await, bytes);

    // An event without partner ids (it crashed the C parodus) is delivered too.
    let event = OwnedMessage::builder(MessageType::SimpleEvent)
        .source("dns:cloud")
        .dest(format!("{DEVICE}/iot"))
        .build();
    send_wrp(&mut ws, &event).await;
    assert_eq!(decode(&peer.recv_message().await), event);

    // A request for partners the device does not serve: 403.
    let mut foreign = request(&format!("{DEVICE}/iot"), "t-p");
    foreign.partner_ids = vec!["charter".into()];
    send_wrp(&mut ws, &foreign).await;
    let answer = next_wrp(&mut ws).await;
    assert_eq!(
        answer.payload,
        br#"{"statusCode":403,"message":"Invalid partner_id"}"#
    );

    // Unknown service: 531 from the device.
    send_wrp(&mut ws, &request(&format!("{DEVICE}/nobody"), "t-2")).await;
    let answer = next_wrp(&mut ws).await;
    assert_eq!(answer.transaction_uuid, "t-2");
    assert_eq!(
        answer.payload,
        br#"{"statusCode":531,"message":"Service Unavailable"}"#
    );

    // Upstream: the service's answer goes to the cloud with the metadata merged in.
    let response = OwnedMessage::builder(MessageType::SimpleRequestResponse)
        .source(format!("{DEVICE}/iot"))
        .dest("dns:scytale")
        .transaction_uuid("t-1")
        .payload(b"done".to_vec())
        .metadata("svc", "iot")
        .build();
    peer.send(&response).await;
    let up = next_wrp(&mut ws).await;
    assert_eq!(
        (up.source.as_str(), up.payload.as_slice()),
        ("mac:112233445566/iot", &b"done"[..])
    );
    assert_eq!(metadata(&up, "svc"), Some("iot"));
    assert_eq!(metadata(&up, "hw-model"), Some("TG1682"));

    // An event without partner ids gets the device's (§5.3), and keeps its own fields.
    let event = OwnedMessage::builder(MessageType::SimpleEvent)
        .source(format!("{DEVICE}/iot"))
        .dest("event:iot-status")
        .transaction_uuid("e-1")
        .build();
    peer.send(&event).await;
    let up = next_wrp(&mut ws).await;
    assert_eq!(up.dest, "event:iot-status");
    assert_eq!(up.partner_ids, ["comcast", "cox"]);
    assert_eq!(up.transaction_uuid, "e-1");

    // CRUD for the device is answered locally, back to the service.
    peer.send(&crud(
        MessageType::Retrieve,
        &format!("{DEVICE}/iot"),
        "cloud-status",
        "t-3",
    ))
    .await;
    let local = decode(&peer.recv_message().await);
    assert_eq!(
        (local.status, local.payload.as_slice()),
        (Some(200), &br#"{"cloud-status":"online"}"#[..])
    );
}

#[tokio::test]
async fn keep_alives_and_removal_of_a_dead_service_over_ipc() {
    let dir = tempfile::tempdir().unwrap();
    let mut cloud = bare(|_| Reply::Accept).await;
    let mut cfg = config(&cloud.url());
    let parodus = format!("ipc://{}", dir.path().join("parodus.ipc").display());
    cfg.local_url = Some(parodus.clone());
    let (_device, _stop) = spawn(cfg);
    let (_, mut ws) = cloud.accepted().await;
    let own = format!("ipc://{}", dir.path().join("svc.ipc").display());
    let mut peer = Peer::start(&parodus, &own, "svc");
    assert_eq!(peer.recv().await, AUTH_OK);
    // Keep-alives every second (the test's setting; parodus: 30 s).
    let at = Instant::now();
    assert_eq!(peer.recv().await, SERVICE_ALIVE);
    assert_eq!(peer.recv().await, SERVICE_ALIVE);
    assert!(
        at.elapsed() < Duration::from_millis(2500),
        "{:?}",
        at.elapsed()
    );

    let status = |n: u32| {
        crud(
            MessageType::Retrieve,
            "dns:scytale",
            "service-status/svc",
            &format!("s-{n}"),
        )
    };
    send_wrp(&mut ws, &status(0)).await;
    assert_eq!(
        next_wrp(&mut ws).await.payload,
        br#"{"service-status":"online"}"#
    );

    // The service dies; the next keep-alive finds it gone and parodus removes it.
    peer.child.kill().await.unwrap();
    let killed = Instant::now();
    let mut n = 1;
    loop {
        send_wrp(&mut ws, &status(n)).await;
        if next_wrp(&mut ws).await.payload == br#"{"service-status":"offline"}"# {
            break;
        }
        assert!(
            killed.elapsed() < WAIT,
            "the dead service was never removed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        n += 1;
    }
    // Within one keep-alive period plus the send timeout.
    assert!(
        killed.elapsed() < Duration::from_secs(3),
        "{:?}",
        killed.elapsed()
    );
    send_wrp(&mut ws, &request(&format!("{DEVICE}/svc"), "t-9")).await;
    assert_eq!(
        next_wrp(&mut ws).await.payload,
        br#"{"statusCode":531,"message":"Service Unavailable"}"#
    );
}

#[tokio::test]
async fn a_second_registration_replaces_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut cloud = bare(|_| Reply::Accept).await;
    let mut cfg = config(&cloud.url());
    cfg.service_alive_secs = 30;
    let (device, _stop) = spawn(cfg);
    let (_, mut ws) = cloud.accepted().await;
    let parodus = format!("tcp://{}", device.ipc_addr().unwrap());
    let url = |n: &str| format!("ipc://{}", dir.path().join(n).display());
    let mut first = Peer::start(&parodus, &url("a.ipc"), "svc");
    assert_eq!(first.recv().await, AUTH_OK);
    let mut second = Peer::start(&parodus, &url("b.ipc"), "svc");
    assert_eq!(second.recv().await, AUTH_OK);
    let req = request(&format!("{DEVICE}/svc"), "t-1");
    send_wrp(&mut ws, &req).await;
    assert_eq!(decode(&second.recv_message().await), req);
    // The first one's connection was closed: it gets nothing more.
    first.child.kill().await.unwrap();
    send_wrp(&mut ws, &request(&format!("{DEVICE}/svc"), "t-2")).await;
    assert_eq!(decode(&second.recv_message().await).transaction_uuid, "t-2");
}

/// Connects a raw PUSH socket to the device's PULL and pairs.
async fn raw_push(device: &client_std::Device) -> TcpStream {
    let mut s = TcpStream::connect(device.ipc_addr().unwrap())
        .await
        .unwrap();
    s.write_all(&[0, 0x53, 0x50, 0, 0, 0x50, 0, 0])
        .await
        .unwrap();
    let mut theirs = [0u8; 8];
    s.read_exact(&mut theirs).await.unwrap();
    assert_eq!(theirs, [0, 0x53, 0x50, 0, 0, 0x51, 0, 0]);
    s
}

/// Whether the device closed `s` (EOF within the wait).
async fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 8];
    matches!(
        tokio::time::timeout(WAIT, s.read(&mut b)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn ipc_limits() {
    let mut cloud = bare(|_| Reply::Accept).await;
    let mut cfg = config(&cloud.url());
    cfg.max_ipc_connections = 2;
    let (device, _stop) = spawn(cfg);
    let (_, mut ws) = cloud.accepted().await;

    // A message over 256 KiB ends its connection.
    let mut big = raw_push(&device).await;
    big.write_all(&((client_std::MAX_MESSAGE as u64) + 1).to_be_bytes())
        .await
        .unwrap();
    assert!(closed(&mut big).await);

    // Two connections at most; a third is closed at once.
    let mut a = raw_push(&device).await;
    let _b = raw_push(&device).await;
    let mut third = TcpStream::connect(device.ipc_addr().unwrap())
        .await
        .unwrap();
    assert!(closed(&mut third).await);

    // The ones kept work: an event sent on one reaches the cloud.
    let event = OwnedMessage::builder(MessageType::SimpleEvent)
        .source(DEVICE)
        .dest("event:raw")
        .build();
    let bytes = encode(&event);
    a.write_all(&(bytes.len() as u64).to_be_bytes())
        .await
        .unwrap();
    a.write_all(&bytes).await.unwrap();
    assert_eq!(next_wrp(&mut ws).await.dest, "event:raw");
}
