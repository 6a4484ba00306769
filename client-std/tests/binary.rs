//! The `parodus` binary itself: signals in every state, the close reason file, the health
//! file, `--help` and bad command lines.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, Command};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message as Ws;

/// How long a signalled parodus may take to exit.
const PROMPT: Duration = Duration::from_secs(2);

fn parodus(args: &[String]) -> (Child, Lines<BufReader<ChildStderr>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_parodus"))
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    (child, lines)
}

fn args(url: &str, extra: &[&str]) -> Vec<String> {
    let mut a = vec![
        "--hw-mac=11:22:33:44:55:66".to_string(),
        format!("--webpa-url={url}"),
        "--parodus-local-url=tcp://127.0.0.1:0".to_string(),
        "--notify-ready-file=".to_string(),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// Reads the log until a line contains `needle`.
async fn log_until(lines: &mut Lines<BufReader<ChildStderr>>, needle: &str) {
    tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains(needle) {
                return;
            }
        }
        panic!("the log ended before {needle:?}");
    })
    .await
    .unwrap_or_else(|_| panic!("no {needle:?} in the log"));
}

fn signal(child: &Child, name: &str) {
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args([name, &pid])
        .status()
        .unwrap()
        .success());
}

/// The next frame must be a close frame; it is answered, as a server does.
async fn close_reason(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
) -> (CloseCode, String) {
    let frame = match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
        Some(Ok(Ws::Close(Some(f)))) => (f.code, f.reason.to_string()),
        other => panic!("expected a close frame, got {other:?}"),
    };
    // Polling on sends tungstenite's automatic close reply.
    let _ = tokio::time::timeout(WAIT, ws.next()).await;
    frame
}

/// Waits for the exit, which must come within `PROMPT`.
async fn exits_promptly(child: &mut Child) -> std::process::ExitStatus {
    let at = Instant::now();
    let status = tokio::time::timeout(PROMPT, child.wait())
        .await
        .expect("parodus exits promptly")
        .unwrap();
    assert!(at.elapsed() < PROMPT);
    status
}

#[tokio::test]
async fn sigterm_during_backoff_exits_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let health = dir.path().join("health");
    let url = format!("http://127.0.0.1:{}", free_port());
    let (mut child, mut log) = parodus(&args(
        &url,
        &[
            "--webpa-backoff-max=9",
            &format!("--connection-health-file={}", health.display()),
        ],
    ));
    log_until(&mut log, "backing off").await;
    let text = std::fs::read_to_string(&health).unwrap();
    assert!(
        text.starts_with("{START=") && text.ends_with("}\n"),
        "{text}"
    );
    // The C parodus hung here and needed SIGKILL.
    signal(&child, "-TERM");
    assert!(exits_promptly(&mut child).await.success());
}

#[tokio::test]
async fn sigterm_while_connecting_and_sigint_while_connected_exit_promptly() {
    // A server that accepts TCP and never answers the upgrade.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let (mut child, mut log) = parodus(&args(&url, &[]));
    log_until(&mut log, "connecting").await;
    let _held = silent.accept().await.unwrap();
    signal(&child, "-TERM");
    assert!(exits_promptly(&mut child).await.success());

    let mut server = bare(|_| Reply::Accept).await;
    let (mut child, mut log) = parodus(&args(&server.url(), &[]));
    let (_, mut ws) = server.accepted().await;
    log_until(&mut log, "connected to the cloud").await;
    signal(&child, "-INT");
    assert_eq!(
        close_reason(&mut ws).await,
        (CloseCode::Normal, "parodus_stopping".into())
    );
    assert!(exits_promptly(&mut child).await.success());
}

#[tokio::test]
async fn sigterm_while_connected_closes_with_the_reason_file() {
    let dir = tempfile::tempdir().unwrap();
    let reason = dir.path().join("reason");
    std::fs::write(&reason, "maintenance window\n").unwrap();
    let health = dir.path().join("health");
    let mut server = bare(|_| Reply::Accept).await;
    let (mut child, mut log) = parodus(&args(
        &server.url(),
        &[
            &format!("--close-reason-file={}", reason.display()),
            &format!("--connection-health-file={}", health.display()),
        ],
    ));
    let (_, mut ws) = server.accepted().await;
    log_until(&mut log, "connected to the cloud").await;
    tokio::time::timeout(WAIT, async {
        while !std::fs::read_to_string(&health)
            .unwrap()
            .starts_with("{STOP=")
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("{STOP=...} once online");

    signal(&child, "-TERM");
    // The file's text, its newline trimmed.
    assert_eq!(
        close_reason(&mut ws).await,
        (CloseCode::Normal, "maintenance window".into())
    );
    assert!(exits_promptly(&mut child).await.success());
}

#[tokio::test]
async fn help_and_bad_command_lines() {
    let out = Command::new(env!("CARGO_BIN_EXE_parodus"))
        .arg("--help")
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--hw-model",
        "--hw-mac",
        "--webpa-url",
        "--webpa-ping-timeout",
        "--webpa-backoff-max",
        "--parodus-local-url",
        "--partner-id",
        "--ssl-cert-path",
        "--force-ipv4",
        "--token-server-url",
        "--crud-config-file",
        "--close-reason-file",
    ] {
        assert!(help.contains(flag), "--help lists {flag}");
    }

    // No --webpa-url: refused (parodus aborted).
    let out = Command::new(env!("CARGO_BIN_EXE_parodus"))
        .arg("--hw-mac=112233445566")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    // A mac that is not 12 hex digits: refused with the reason.
    let out = Command::new(env!("CARGO_BIN_EXE_parodus"))
        .args([
            "--hw-mac=11:22:33:44:55:zz",
            "--webpa-url=http://127.0.0.1:1",
        ])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("hw-mac"));
}
