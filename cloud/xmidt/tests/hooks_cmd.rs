//! `xmidt hooks` against a real `xmidt caduceus` process with Basic auth.

use std::net::TcpListener;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

const CREDENTIALS: &str = "ops:pw";

struct Caduceus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Caduceus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_caduceus() -> Caduceus {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("caduceus.yaml");
    std::fs::write(
        &config,
        format!(
            "caduceus:\n  address: 127.0.0.1:{port}\n  data_dir: {}\n  registration: {{allow_loopback: true, resolve_hosts: false}}\n  api_auth: {{basic: [\"{CREDENTIALS}\"]}}\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_xmidt"))
        .args(["caduceus", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::blocking::get(format!("{url}/health")).is_err() {
        assert!(Instant::now() < deadline, "caduceus did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Caduceus {
        child,
        url,
        _dir: dir,
    }
}

fn hooks(caduceus: &Caduceus, args: &[&str], credentials: bool) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xmidt"));
    command
        .arg("hooks")
        .args(args)
        .args(["--caduceus", &caduceus.url, "--partner-id", "comcast"])
        .env_remove("XMIDT_BASIC_AUTH")
        .env_remove("XMIDT_TOKEN");
    if credentials {
        command.env("XMIDT_BASIC_AUTH", CREDENTIALS);
    }
    command.output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn failed(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "expected a failure");
    String::from_utf8(out.stderr.clone()).unwrap()
}

#[test]
fn hooks_are_added_listed_and_removed() {
    let caduceus = start_caduceus();
    let receiver = "http://127.0.0.1:9/events";
    let id = xmidt_caduceus::webhook_id(receiver);

    let err = failed(&hooks(&caduceus, &["list"], false));
    assert!(err.contains("401"), "{err}");

    let added = ok(&hooks(
        &caduceus,
        &[
            "add",
            receiver,
            "--event",
            "device-status/.*",
            "--device-id",
            "mac:11.*",
            "--secret",
            "s3cret",
            "--duration",
            "1h",
        ],
        true,
    ));
    assert!(added.starts_with(&format!("{id} until 20")), "{added}");

    let listed = ok(&hooks(&caduceus, &["list"], true));
    assert_eq!(
        listed.lines().count(),
        1,
        "one webhook is registered: {listed}"
    );
    assert!(
        listed.starts_with(&format!(
            "{id} {receiver} events=device-status/.* devices=mac:11.* until=20"
        )),
        "{listed}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&hooks(&caduceus, &["list", "--json"], true))).unwrap();
    assert_eq!(json[0]["config"]["url"], receiver);
    assert_eq!(json[0]["partner_ids"], serde_json::json!(["comcast"]));
    assert_eq!(json[0]["duration"], "1h0m0s");
    assert_ne!(
        json[0]["config"]["secret"], "s3cret",
        "the secret is hidden"
    );

    let err = failed(&hooks(
        &caduceus,
        &["add", "http://127.0.0.1:9/other", "--event", "("],
        true,
    ));
    assert!(err.contains("400"), "a bad regex is refused: {err}");

    assert_eq!(
        ok(&hooks(&caduceus, &["rm", receiver], true)).trim(),
        format!("{id} deleted")
    );
    assert_eq!(ok(&hooks(&caduceus, &["list"], true)), "");
    let err = failed(&hooks(&caduceus, &["rm", &id], true));
    assert!(err.contains("404"), "{err}");

    let other = "http://127.0.0.1:9/by-id";
    ok(&hooks(&caduceus, &["add", other, "--event", ".*"], true));
    let other_id = xmidt_caduceus::webhook_id(other);
    assert_eq!(
        ok(&hooks(&caduceus, &["rm", &other_id], true)).trim(),
        format!("{other_id} deleted")
    );
    assert_eq!(ok(&hooks(&caduceus, &["list"], true)), "");
}
