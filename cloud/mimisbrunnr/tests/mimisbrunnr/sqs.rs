//! Delivery to SQS, against moto's SQS-compatible server with request signatures enforced.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use wrp_nostd::OwnedMessage;

use crate::harness::{self, create, event, post_event};

/// Requests moto serves before it starts checking signatures: the setup below.
const SETUP_REQUESTS: usize = 4;

/// A moto server on a free loopback port, stopped when dropped.
struct Moto {
    endpoint: String,
    child: Child,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_moto() -> Moto {
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let mut child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        // IAM authentication on: every request after the setup must be correctly signed.
        .env("INITIAL_NO_AUTH_ACTION_COUNT", SETUP_REQUESTS.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run moto_server ({e}): the SQS tests need moto's server. Run \
                 ./scripts/test-all, which installs it, or pip install 'moto[server]'"
            )
        });
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("moto_server exited with {status}");
        }
        assert!(Instant::now() < deadline, "moto_server did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    Moto {
        endpoint: format!("http://127.0.0.1:{port}"),
        child,
    }
}

impl Moto {
    /// A query-protocol call made during setup, unsigned (moto routes it by the scope).
    async fn setup_call(&self, service: &str, params: &[(&str, &str)]) -> String {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        let scope = format!("Credential=setup/20240101/us-east-1/{service}/aws4_request");
        let response = reqwest::Client::new()
            .post(&self.endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .header(
                "authorization",
                format!("AWS4-HMAC-SHA256 {scope}, SignedHeaders=host, Signature=0"),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{params:?}");
        response.text().await.unwrap()
    }

    /// An SQS JSON-protocol call signed with `key`/`secret`.
    async fn sqs_call(
        &self,
        key: &str,
        secret: &str,
        action: &str,
        body: serde_json::Value,
    ) -> serde_json::Value {
        let body = body.to_string();
        let target = format!("AmazonSQS.{action}");
        let headers = [
            ("content-type", "application/x-amz-json-1.0"),
            ("x-amz-target", target.as_str()),
        ];
        let identity = Credentials::new(key, secret, None, None, "test").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("sqs")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let url = format!("{}/", self.endpoint);
        let signable = SignableRequest::new(
            "POST",
            &url,
            headers.iter().copied(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        let mut request = reqwest::Client::new().post(&url).body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        for (name, value) in instructions.headers() {
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{action}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }
}

fn xml_field<'a>(xml: &'a str, tag: &str) -> &'a str {
    let start = xml.find(&format!("<{tag}>")).unwrap() + tag.len() + 2;
    let end = xml[start..].find(&format!("</{tag}>")).unwrap() + start;
    &xml[start..end]
}

#[tokio::test]
async fn events_reach_an_sqs_queue_signed() {
    let moto = start_moto();
    // A user whose key may use SQS, and a queue: the unsigned setup requests.
    moto.setup_call(
        "iam",
        &[
            ("Action", "CreateUser"),
            ("UserName", "mimisbrunnr"),
            ("Version", "2010-05-08"),
        ],
    )
    .await;
    let key = moto
        .setup_call(
            "iam",
            &[
                ("Action", "CreateAccessKey"),
                ("UserName", "mimisbrunnr"),
                ("Version", "2010-05-08"),
            ],
        )
        .await;
    let (key, secret) = (
        xml_field(&key, "AccessKeyId").to_owned(),
        xml_field(&key, "SecretAccessKey").to_owned(),
    );
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sqs:*","Resource":"*"}]}"#;
    moto.setup_call(
        "iam",
        &[
            ("Action", "PutUserPolicy"),
            ("UserName", "mimisbrunnr"),
            ("PolicyName", "sqs"),
            ("PolicyDocument", policy),
            ("Version", "2010-05-08"),
        ],
    )
    .await;
    let queue = moto
        .setup_call(
            "sqs",
            &[
                ("Action", "CreateQueue"),
                ("QueueName", "norns"),
                ("Version", "2012-11-05"),
            ],
        )
        .await;
    let queue_url = xml_field(&queue, "QueueUrl").to_owned();

    let service = harness::start(|_| harness::config()).await;
    let sqs_norn = |device: &str, secret: &str| {
        serde_json::json!({
            "DeviceID": device, "TTL": 60,
            "Destination": {"AWSConfig": {"AccessKey": key, "SecretKey": secret,
                "Sqs": {"QueueURL": queue_url, "Region": "us-east-1", "DelaySeconds": 0}}}
        })
    };
    let (status, made) = create(&service, None, &sqs_norn("mac:112233445566", &secret)).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(
        made["Destination"]["AWSConfig"]["SecretKey"],
        "<obfuscated>"
    );
    // A norn whose signatures are wrong: moto refuses its sends.
    let (status, _) = create(&service, None, &sqs_norn("mac:aabbccddeeff", "wrong")).await;
    assert_eq!(status, 201);

    let (sent, msgpack) = event("mac:112233445566", "event:iot/temp", "to-sqs");
    assert_eq!(post_event(&service, msgpack).await.status(), 200);
    let (_, msgpack) = event("mac:aabbccddeeff", "event:iot/temp", "badly-signed");
    assert_eq!(post_event(&service, msgpack).await.status(), 200);

    let receive = || async {
        let received = moto
            .sqs_call(
                &key,
                &secret,
                "ReceiveMessage",
                serde_json::json!({"QueueUrl": queue_url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 1}),
            )
            .await;
        received["Messages"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| m["Body"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut bodies = Vec::new();
    while bodies.is_empty() {
        assert!(Instant::now() < deadline, "nothing arrived in the queue");
        bodies.extend(receive().await);
    }
    // One more look, so that a badly signed message that got through would be seen.
    bodies.extend(receive().await);
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert_eq!(OwnedMessage::from_json(bodies[0].as_bytes()).unwrap(), sent);
}
