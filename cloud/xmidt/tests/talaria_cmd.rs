//! `xmidt talaria` as an operator runs it: a config file, environment overrides, bad config
//! refused with the key named, and a clean stop on SIGTERM.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn(config: &str, env: &[(&str, &str)]) -> (Child, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("xmidt.yaml");
    std::fs::write(&path, config).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_xmidt"))
        .args(["talaria", "--config"])
        .arg(&path)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, dir)
}

fn wait_healthy(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(r) = reqwest::blocking::get(format!("http://127.0.0.1:{port}/health")) {
            if r.status().is_success() {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("talaria did not come up on {port}");
}

#[test]
fn runs_from_a_config_file_with_env_overrides_and_stops_on_sigterm() {
    let (primary, control, overridden) = (free_port(), free_port(), free_port());
    let config = format!(
        "talaria:\n  address: 127.0.0.1:{primary}\n  control_address: 127.0.0.1:{control}\n  device:\n    ping_period: 10s\n"
    );
    // The environment wins over the file.
    let (mut child, _dir) = spawn(
        &config,
        &[("XMIDT_TALARIA__ADDRESS", &format!("127.0.0.1:{overridden}"))],
    );
    wait_healthy(overridden);
    let devices: serde_json::Value =
        reqwest::blocking::get(format!("http://127.0.0.1:{overridden}/api/v2/devices"))
            .unwrap()
            .json()
            .unwrap();
    assert_eq!(devices["devices"], serde_json::json!([]));
    let gate: serde_json::Value =
        reqwest::blocking::get(format!("http://127.0.0.1:{control}/api/v2/device/gate"))
            .unwrap()
            .json()
            .unwrap();
    assert_eq!(gate["open"], true);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "talaria did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "clean exit: {status:?}");
}

#[test]
fn bad_config_fails_at_start_naming_the_key() {
    for (config, says) in [
        (
            "talaria:\n  device:\n    ping_period: often\n",
            "ping_period",
        ),
        ("talaria:\n  adress: 127.0.0.1:1\n", "adress"),
        ("talaria:\n  address: [\n", "xmidt.yaml"),
    ] {
        let (child, _dir) = spawn(config, &[]);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{config}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err} should name {says}");
    }
}
