//! `xmidt health URL`: the containers' health check.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A server on loopback that answers every connection with `status` (or never, for `None`).
fn server(status: Option<&'static str>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/health", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            match status {
                Some(status) => {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                    );
                }
                // Keep the connection open and silent.
                None => held.push(stream),
            }
        }
    });
    url
}

fn health(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xmidt"))
        .arg("health")
        .args(args)
        .output()
        .unwrap()
}

fn one_line_error(out: &Output, expected: &str) {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("xmidt: ") && stderr.contains(expected),
        "{stderr}"
    );
}

#[test]
fn success_on_2xx() {
    let out = health(&[&server(Some("200 OK"))]);
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
    assert!(health(&[&server(Some("204 No Content"))]).status.success());
}

#[test]
fn failure_on_other_statuses() {
    one_line_error(&health(&[&server(Some("503 Service Unavailable"))]), "503");
    // A redirect is not healthy either.
    one_line_error(&health(&[&server(Some("307 Temporary Redirect"))]), "307");
}

#[test]
fn failure_when_nothing_listens() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    one_line_error(
        &health(&[&format!("http://127.0.0.1:{port}/health")]),
        "GET",
    );
}

#[test]
fn failure_after_the_timeout() {
    let url = server(None);
    let start = Instant::now();
    let out = health(&[&url, "--timeout", "300ms"]);
    one_line_error(&out, &url);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}
