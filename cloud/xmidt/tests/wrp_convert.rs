//! `xmidt wrp convert`, driven as a user would: the real binary, stdin in, stdout/stderr out.

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// The request from cloud-spec §2.2 (payload = base64 of a JSON command).
const REQUEST_JSON: &str = r#"{"msg_type":3,"source":"dns:me","dest":"mac:112233445566/config","transaction_uuid":"1234567890","content_type":"application/json","partner_ids":["comcast"],"payload":"eyJjb21tYW5kIjoiR0VUIiwibmFtZXMiOlsiU29tZXRoaW5nIl19"}"#;

fn convert(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xmidt"))
        .args(["wrp", "convert"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xmidt starts");
    let mut stdin = child.stdin.take().expect("stdin");
    // The child may exit before reading everything (oversized input): a broken pipe is fine.
    let _ = stdin.write_all(input);
    drop(stdin);
    child.wait_with_output().expect("xmidt runs")
}

fn ok(from: &str, to: &str, input: &[u8]) -> Vec<u8> {
    let out = convert(&["--from", from, "--to", to], input);
    assert!(
        out.status.success(),
        "{from} -> {to} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty());
    out.stdout
}

/// Exit status 1, nothing on stdout, one line on stderr that contains `says`.
fn fails(args: &[&str], input: &[u8], says: &str) {
    let out = convert(args, input);
    assert_eq!(out.status.code(), Some(1), "{args:?} should fail");
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).expect("utf-8 stderr");
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(
        err.starts_with("xmidt: ") && err.contains(says),
        "{err:?} should say {says:?}"
    );
    assert!(!err.contains("panicked"));
}

fn json_value(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).expect("valid JSON output")
}

#[test]
fn every_form_round_trips_through_every_other() {
    let forms = ["msgpack", "json", "http"];
    let expected = json_value(&ok("json", "json", REQUEST_JSON.as_bytes()));
    for via in forms {
        let encoded = ok("json", via, REQUEST_JSON.as_bytes());
        for to in forms {
            let hop = ok(via, to, &encoded);
            let back = ok(to, "json", &hop);
            assert_eq!(json_value(&back), expected, "json -> {via} -> {to} -> json");
        }
    }
}

#[test]
fn http_form_is_header_lines_blank_line_body() {
    let out = String::from_utf8(ok("json", "http", REQUEST_JSON.as_bytes())).expect("utf-8");
    assert_eq!(
        out,
        "X-Xmidt-Message-Type: SimpleRequestResponse\n\
         X-Xmidt-Transaction-Uuid: 1234567890\n\
         X-Xmidt-Source: dns:me\n\
         X-Webpa-Device-Name: mac:112233445566/config\n\
         Content-Type: application/json\n\
         X-Xmidt-Partner-Id: comcast\n\
         \n\
         {\"command\":\"GET\",\"names\":[\"Something\"]}"
    );
}

#[test]
fn http_form_input_accepts_names_numbers_and_deprecated_headers() {
    let input = b"X-Midt-Msg-Type: event\r\nX-Xmidt-Source: mac:112233445566\r\n\
X-Webpa-Device-Name: event:device-status/mac:112233445566/online\r\n\
X-Xmidt-Metadata: /boot-time=1, /hw-model=x\r\n\r\nhello";
    let json = json_value(&ok("http", "json", input));
    assert_eq!(json["msg_type"], 4);
    assert_eq!(json["source"], "mac:112233445566");
    assert_eq!(json["metadata"]["/hw-model"], "x");
    assert_eq!(json["content_type"], "application/octet-stream");
    assert_eq!(json["payload"], "aGVsbG8=");
}

#[test]
fn msgpack_output_is_what_the_codec_decodes() {
    let bytes = ok("json", "msgpack", REQUEST_JSON.as_bytes());
    let m = wrp_nostd::Message::decode(&bytes).expect("decodes");
    assert_eq!(m.dest, "mac:112233445566/config");
    assert_eq!(m.payload, br#"{"command":"GET","names":["Something"]}"#);
    assert_eq!(m.partner_ids.iter().collect::<Vec<_>>(), ["comcast"]);
}

#[test]
fn malformed_input_fails_with_one_line() {
    let msgpack = ["--from", "msgpack", "--to", "json"];
    fails(&msgpack, b"", "invalid msgpack WRP");
    fails(&msgpack, b"\xa7invalid", "map");
    fails(&msgpack, b"\x81\xa6source", "invalid msgpack WRP");
    fails(&msgpack, b"\x81\xa6source\xa1x", "no msg_type");
    fails(&msgpack, b"\x81\xa8msg_type\x0c", "unknown msg_type 12");
    fails(&msgpack, b"\x81\xa8msg_type\xc0", "no msg_type");
    let json = ["--from", "json", "--to", "msgpack"];
    fails(&json, b"{", "invalid JSON WRP");
    fails(&json, br#"{"source":"x"}"#, "msg_type");
    fails(&json, br#"{"msg_type":99}"#, "unknown msg_type 99");
    fails(&json, br#"{"msg_type":4,"payload":"!!"}"#, "base64");
    let http = ["--from", "http", "--to", "json"];
    fails(&http, b"X-Xmidt-Source: x\n\n", "X-Xmidt-Message-Type");
    fails(&http, b"X-Xmidt-Message-Type: Bogus\n\n", "Bogus");
    fails(&http, b"X-Xmidt-Message-Type: 4\n", "blank line");
    fails(
        &http,
        b"X-Xmidt-Message-Type: 4\nX-Xmidt-Status: high\n\n",
        "X-Xmidt-Status",
    );
}

#[test]
fn validate_flag_applies_the_type_rules() {
    let request_without_uuid = br#"{"msg_type":3,"source":"dns:me","dest":"mac:112233445566"}"#;
    assert!(
        convert(&["--from", "json", "--to", "json"], request_without_uuid)
            .status
            .success()
    );
    fails(
        &["--from", "json", "--to", "json", "--validate"],
        request_without_uuid,
        "transaction_uuid is required",
    );
    ok("json", "json", REQUEST_JSON.as_bytes());
    let out = convert(
        &["--from", "json", "--to", "json", "--validate"],
        REQUEST_JSON.as_bytes(),
    );
    assert!(out.status.success());
}

#[test]
fn oversized_input_is_refused() {
    fails(
        &["--from", "json", "--to", "json", "--max-bytes", "16"],
        REQUEST_JSON.as_bytes(),
        "larger than 16 bytes",
    );
}
