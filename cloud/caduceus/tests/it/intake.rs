//! `POST /api/v4/notify` (and v3): the status codes talaria sees, and the in-process path.

use std::time::Duration;

use wrp_nostd::{MessageType, OwnedMessage};
use xmidt_caduceus::IntakeError;

use crate::common::{config, event, hook, start, Receiver};

#[tokio::test]
async fn notify_answers() {
    let mut c = config();
    c.intake.max_event_size = 2048;
    let cad = start(c).await;
    let post = |path: &'static str, content_types: &'static [&'static str], body: Vec<u8>| {
        let mut request = cad.http.post(format!("{}{path}", cad.base)).body(body);
        for ct in content_types {
            request = request.header("content-type", *ct);
        }
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let good = event("event:iot", "mac:112233445566").to_msgpack().unwrap();
    const MSGPACK: &[&str] = &["application/msgpack"];

    let (status, body) = post("/api/v4/notify", MSGPACK, good.clone()).await;
    assert_eq!(
        (status, body.as_str()),
        (202, "Request placed on to queue.\n")
    );
    assert_eq!(post("/api/v3/notify", MSGPACK, good.clone()).await.0, 202);

    for content_types in [
        &[][..],
        &["application/json"][..],
        &["application/msgpack", "application/msgpack"][..],
    ] {
        let (status, body) = post("/api/v4/notify", content_types, good.clone()).await;
        assert_eq!(status, 415, "{content_types:?}");
        assert!(body.contains("Expected application/msgpack"), "{body}");
    }

    let (status, body) = post("/api/v4/notify", MSGPACK, Vec::new()).await;
    assert_eq!((status, body.contains("Empty payload.")), (400, true));
    let (status, body) = post("/api/v4/notify", MSGPACK, b"\xc1garbage".to_vec()).await;
    assert_eq!(
        (status, body.contains("Invalid payload format.")),
        (400, true)
    );

    let request = OwnedMessage::builder(MessageType::SimpleRequestResponse)
        .source("dns:me")
        .dest("mac:112233445566")
        .transaction_uuid("t")
        .build();
    let (status, body) = post("/api/v4/notify", MSGPACK, request.to_msgpack().unwrap()).await;
    assert_eq!((status, body.contains("Invalid MessageType.")), (400, true));

    // {"msg_type": 4, "source": <invalid UTF-8>}
    let mut not_utf8 = vec![0x82, 0xa8];
    not_utf8.extend_from_slice(b"msg_type");
    not_utf8.push(0x04);
    not_utf8.push(0xa6);
    not_utf8.extend_from_slice(b"source");
    not_utf8.extend_from_slice(&[0xa2, 0xff, 0xfe]);
    let (status, body) = post("/api/v4/notify", MSGPACK, not_utf8).await;
    assert_eq!(
        (status, body.contains("Strings must be UTF-8.")),
        (400, true)
    );

    let mut big = event("event:iot", "mac:112233445566");
    big.payload = vec![b'x'; 4096];
    let (status, _) = post("/api/v4/notify", MSGPACK, big.to_msgpack().unwrap()).await;
    assert_eq!(status, 413);

    // Refusals are counted.
    let metrics = cad.metrics().await;
    for name in [
        "xmidt_caduceus_empty_request_body_count",
        "xmidt_caduceus_drops_due_to_invalid_payload",
        "xmidt_caduceus_error_request_body_count",
    ] {
        assert!(metrics.contains(name), "{name} missing");
    }
}

#[tokio::test]
async fn in_process_submission_takes_the_same_path() {
    let cad = start(config()).await;
    let receiver = Receiver::start().await;
    cad.register(&hook(&receiver.url)).await;

    let msg = event("event:iot", "mac:112233445566");
    let accepted = cad.caduceus.submit(msg.clone()).unwrap();
    assert_eq!(accepted.matched, 1);
    let bytes = msg.to_msgpack().unwrap();
    assert_eq!(
        cad.caduceus.submit_msgpack(bytes.into()).unwrap().matched,
        1
    );
    let got = receiver.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(&got[0].body[..], &msg.payload[..]);

    assert!(matches!(
        cad.caduceus.submit_msgpack(Vec::new().into()),
        Err(IntakeError::Empty)
    ));
    assert!(matches!(
        cad.caduceus.submit_msgpack(b"\x90".to_vec().into()),
        Err(IntakeError::Decode(_))
    ));
    let mut wrong = msg;
    wrong.msg_type = MessageType::Create;
    assert!(matches!(
        cad.caduceus.submit(wrong),
        Err(IntakeError::NotAnEvent(MessageType::Create))
    ));
}

#[tokio::test]
async fn slow_clients_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut c = config();
    c.intake.read_timeout = Duration::from_millis(300);
    let cad = start(c).await;
    let address = cad.base.trim_start_matches("http://").to_string();

    // Headers that never finish: the connection is closed.
    let mut slow_headers = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow_headers
        .write_all(b"POST /api/v4/notify HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        Duration::from_secs(3),
        slow_headers.read_to_end(&mut answer),
    )
    .await;
    assert!(read.is_ok(), "the connection stayed open");

    // A body that never finishes: 408.
    let mut slow_body = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow_body
        .write_all(
            b"POST /api/v4/notify HTTP/1.1\r\nhost: x\r\ncontent-type: application/msgpack\r\n\
              content-length: 100\r\n\r\n0123456789",
        )
        .await
        .unwrap();
    let mut answer = vec![0; 1024];
    let n = tokio::time::timeout(Duration::from_secs(3), slow_body.read(&mut answer))
        .await
        .expect("an answer within the timeout")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}
