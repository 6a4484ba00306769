//! The handshake against the real parodus capture (client-spec §3.2), the token request
//! (§3.4.1), and config validation.

mod common;

use base64::Engine;
use common::{drain, Act, Seeded, TestClient};
use xmidt_client_core::{Config, ConfigError, Instant, UrlError, MAX_CONVEY};

/// Byte for byte from client-spec §3.2.
const CAPTURED_CONVEY: &str = "eyJody1tb2RlbCI6IlRHMTY4MiIsImh3LXNlcmlhbC1udW1iZXIiOiJTRVIxMjM0NTYiLCJody1tYW51ZmFjdHVyZXIiOiJBUlJJUyIsImZ3LW5hbWUiOiJURzE2ODJfREVWX3Rlc3QiLCJib290LXRpbWUiOjE3MDAwMDAwMDAsIndlYnBhLXByb3RvY29sIjoiUEFST0RVUy0yLjAtMi4wLjAtMTczLWc5MzI2ZjJjIiwid2VicGEtaW50ZXJmYWNlLXVzZWQiOiJsbyIsImh3LWxhc3QtcmVib290LXJlYXNvbiI6InVua25vd24iLCJ3ZWJwYS1sYXN0LXJlY29ubmVjdC1yZWFzb24iOiJ3ZWJwYV9wcm9jZXNzX3N0YXJ0cyIsImJvb3QtdGltZS1yZXRyeS13YWl0Ijo3LCJ3ZWJwYS1pbnRlcmZhY2UtbGFiZWwiOiJ3YW4iLCJ3YW4taXB2NC1hZGRyZXNzIjoiMTkyLjAuMi4xMCJ9";
const CAPTURED_JSON: &str = r#"{"hw-model":"TG1682","hw-serial-number":"SER123456","hw-manufacturer":"ARRIS","fw-name":"TG1682_DEV_test","boot-time":1700000000,"webpa-protocol":"PARODUS-2.0-2.0.0-173-g9326f2c","webpa-interface-used":"lo","hw-last-reboot-reason":"unknown","webpa-last-reconnect-reason":"webpa_process_starts","boot-time-retry-wait":7,"webpa-interface-label":"wan","wan-ipv4-address":"192.0.2.10"}"#;
const CAPTURED_TOKEN: &str = "eyJhbGciOiJub25lIn0.eyJmYWtlIjp0cnVlfQ.fake-signature";

fn captured_config() -> Config<'static> {
    Config {
        cloud_url: "http://127.0.0.1:18080",
        ..common::config()
    }
}

fn b64(s: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("standard padded base64");
    String::from_utf8(bytes).expect("utf-8 JSON")
}

fn first_connect(config: &Config<'static>, token: Option<&str>) -> Act {
    let mut c = TestClient::new(config, Seeded(1), Instant::from_millis(0)).expect("valid");
    c.handle_timeout(Instant::from_millis(0)).expect("starts");
    let acts = drain(&mut c);
    if let Some(token) = token {
        assert!(
            matches!(acts.as_slice(), [Act::FetchToken { .. }]),
            "{acts:?}"
        );
        c.handle_token(Instant::from_millis(5), token)
            .expect("token");
    } else {
        assert!(matches!(acts.as_slice(), [Act::Connect { .. }]), "{acts:?}");
        return acts[0].clone();
    }
    let acts = drain(&mut c);
    assert!(matches!(acts.as_slice(), [Act::Connect { .. }]), "{acts:?}");
    acts[0].clone()
}

#[test]
fn headers_match_the_parodus_capture_byte_for_byte() {
    let connect = first_connect(&captured_config(), Some(CAPTURED_TOKEN));
    let Act::Connect { url, headers, .. } = &connect else {
        unreachable!()
    };
    assert_eq!(url, "ws://127.0.0.1:18080/api/v2/device");
    let expected: Vec<(String, String)> = [
        ("Authorization", format!("Bearer {CAPTURED_TOKEN}")),
        ("X-WebPA-Device-Name", "mac:112233445566".into()),
        ("X-WebPA-Device-Protocols", "wrp-0.11,getset-0.1".into()),
        (
            "User-Agent",
            "PARODUS-2.0-2.0.0-173-g9326f2c (TG1682_DEV_test; TG1682/ARRIS;)".into(),
        ),
        ("X-WebPA-Convey", CAPTURED_CONVEY.into()),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_string(), v))
    .collect();
    assert_eq!(headers, &expected);
    assert_eq!(b64(CAPTURED_CONVEY), CAPTURED_JSON);
}

#[test]
fn no_token_no_authorization_header() {
    let config = Config {
        token_server_url: "",
        ..captured_config()
    };
    let connect = first_connect(&config, None);
    assert_eq!(connect.header("Authorization"), None);
    assert_eq!(connect.header("X-WebPA-Convey"), Some(CAPTURED_CONVEY));
}

#[test]
fn token_request_headers_match_the_capture() {
    let mut c =
        TestClient::new(&captured_config(), Seeded(9), Instant::from_millis(0)).expect("valid");
    c.handle_timeout(Instant::from_millis(0)).expect("starts");
    let acts = drain(&mut c);
    let [Act::FetchToken { url, headers }] = acts.as_slice() else {
        panic!("{acts:?}")
    };
    assert_eq!(url, "http://themis.example.com:6501/issue");
    let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "X-Midt-Mac-Address",
            "X-Midt-Serial-Number",
            "X-Midt-Uuid",
            "X-Midt-Partner-Id",
            "X-Midt-Hardware-Model",
            "X-Midt-Hardware-Manufacturer",
            "X-Midt-Firmware-Name",
            "X-Midt-Protocol",
            "X-Midt-Interface-Used",
            "X-Midt-Last-Reboot-Reason",
            "X-Midt-Last-Reconnect-Reason",
            "X-Midt-Boot-Retry-Wait",
        ]
    );
    let value = |n: &str| acts[0].header(n).unwrap_or_default().to_string();
    assert_eq!(value("X-Midt-Mac-Address"), "112233445566");
    assert_eq!(value("X-Midt-Serial-Number"), "SER123456");
    assert_eq!(value("X-Midt-Partner-Id"), "comcast,cox");
    assert_eq!(value("X-Midt-Hardware-Model"), "TG1682");
    assert_eq!(value("X-Midt-Hardware-Manufacturer"), "ARRIS");
    assert_eq!(value("X-Midt-Firmware-Name"), "TG1682_DEV_test");
    assert_eq!(value("X-Midt-Protocol"), "PARODUS-2.0-2.0.0-173-g9326f2c");
    assert_eq!(value("X-Midt-Interface-Used"), "lo");
    assert_eq!(value("X-Midt-Last-Reboot-Reason"), "unknown");
    assert_eq!(
        value("X-Midt-Last-Reconnect-Reason"),
        "webpa_process_starts"
    );
    assert_eq!(value("X-Midt-Boot-Retry-Wait"), "7");
    // A random v4 uuid from the driver's numbers.
    let uuid = value("X-Midt-Uuid");
    assert_eq!(uuid.len(), 36);
    assert_eq!(uuid.as_bytes()[14], b'4');
    assert!(matches!(uuid.as_bytes()[19], b'8' | b'9' | b'a' | b'b'));
    assert_eq!(
        uuid.split('-').map(str::len).collect::<Vec<_>>(),
        [8, 4, 4, 4, 12]
    );
}

#[test]
fn empty_values_follow_the_omission_rules() {
    let config = Config {
        protocol: "P",
        ..Config::new("aa:bb:cc:dd:ee:ff", "https://talaria.example.com")
    };
    let connect = first_connect(&config, None);
    assert_eq!(
        connect.header("User-Agent"),
        Some("P (unknown; unknown/unknown;)")
    );
    assert_eq!(
        connect.header("X-WebPA-Device-Name"),
        Some("mac:aabbccddeeff")
    );
    let Act::Connect { url, .. } = &connect else {
        unreachable!()
    };
    assert_eq!(url, "wss://talaria.example.com/api/v2/device");
    assert_eq!(
        b64(connect.header("X-WebPA-Convey").unwrap_or_default()),
        r#"{"boot-time":0,"webpa-protocol":"P","webpa-last-reconnect-reason":"webpa_process_starts"}"#
    );
}

#[test]
fn convey_extras_are_appended_and_escaped() {
    static EXTRAS: [(&str, &str); 3] = [
        ("interfaces-available", "erouter0,wan"),
        ("empty", ""),
        ("q", "a\"b\\c"),
    ];
    let config = Config {
        convey_extras: &EXTRAS,
        ..captured_config()
    };
    let connect = first_connect(&config, Some("t"));
    let json = b64(connect.header("X-WebPA-Convey").unwrap_or_default());
    let expected = format!(
        "{},\"interfaces-available\":\"erouter0,wan\",\"q\":\"a\\\"b\\\\c\"}}",
        CAPTURED_JSON.trim_end_matches('}')
    );
    assert_eq!(json, expected);
    let parsed: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(parsed["q"], "a\"b\\c");
}

#[test]
fn convey_over_1024_bytes_is_refused_not_truncated() {
    // Long fields bring the convey near parodus's 1024 bytes; the length of one extra sets it.
    let long: &'static str = Box::leak("r".repeat(127).into_boxed_str());
    let config = |n: usize| {
        let value: &'static str = Box::leak("v".repeat(n).into_boxed_str());
        let extras: &'static [(&str, &str)] = Box::leak(Box::new([("a", long), ("c", value)]));
        Config {
            convey_extras: extras,
            hw_last_reboot_reason: long,
            ..captured_config()
        }
    };
    let result = |n| TestClient::new(&config(n), Seeded(1), Instant::from_millis(0)).err();
    let edge = (0..=127)
        .rev()
        .find(|&n| result(n).is_none())
        .expect("some length fits");
    assert!(edge < 127, "the limit is reachable");
    assert_eq!(result(edge + 1), Some(ConfigError::ConveyTooLong));
    // At the edge the convey is whole, and there is room left for the longest reconnect reason
    // (64 bytes where `webpa_process_starts` takes 20).
    let connect = first_connect(&config(edge), Some("t"));
    let convey = connect.header("X-WebPA-Convey").unwrap_or_default();
    let json = b64(convey);
    let with_longest_reason = json.len() + 64 - "webpa_process_starts".len();
    assert!(with_longest_reason.div_ceil(3) * 4 <= MAX_CONVEY);
    assert!((with_longest_reason + 1).div_ceil(3) * 4 > MAX_CONVEY);
    let json: serde_json::Value = serde_json::from_str(&json).expect("complete JSON");
    assert_eq!(json["c"].as_str().map(str::len), Some(edge));
}

#[test]
fn config_validation() {
    let base = Config::new(common::MAC, common::PETASOS);
    let check = |c: Config<'static>| TestClient::new(&c, Seeded(1), Instant::from_millis(0)).err();
    assert_eq!(check(base), None);
    assert_eq!(
        check(Config {
            hw_mac: "11:22:33:44:55",
            ..base
        }),
        Some(ConfigError::InvalidMac)
    );
    assert_eq!(
        check(Config {
            hw_mac: "11:22:33:44:55:6g",
            ..base
        }),
        Some(ConfigError::InvalidMac)
    );
    assert_eq!(
        check(Config {
            hw_mac: "11:22:33:44:55:66:77",
            ..base
        }),
        Some(ConfigError::InvalidMac)
    );
    assert_eq!(
        check(Config {
            hw_mac: "112233445566",
            ..base
        }),
        None
    );
    assert_eq!(
        check(Config {
            hw_serial_number: "SER-1",
            ..base
        }),
        Some(ConfigError::InvalidSerialNumber)
    );
    assert_eq!(
        check(Config {
            cloud_url: "talaria:6200",
            ..base
        }),
        Some(ConfigError::InvalidCloudUrl(UrlError::UnsupportedScheme))
    );
    assert_eq!(
        check(Config {
            cloud_url: "http://host:99999",
            ..base
        }),
        Some(ConfigError::InvalidCloudUrl(UrlError::InvalidPort))
    );
    assert_eq!(
        check(Config {
            protocol: "",
            ..base
        }),
        Some(ConfigError::EmptyProtocol)
    );
    assert_eq!(
        check(Config {
            ping_timeout_secs: 0,
            ..base
        }),
        Some(ConfigError::ZeroTimeout("webpa-ping-timeout"))
    );
    assert_eq!(
        check(Config {
            connect_timeout_secs: 0,
            ..base
        }),
        Some(ConfigError::ZeroTimeout("connect-timeout"))
    );
    assert_eq!(
        check(Config {
            qos_ack_timeout_secs: 0,
            ..base
        }),
        Some(ConfigError::ZeroTimeout("qos-ack-timeout"))
    );
    assert_eq!(
        check(Config {
            backoff_max: 31,
            ..base
        }),
        None
    );
    assert_eq!(
        check(Config {
            backoff_max: 32,
            ..base
        }),
        Some(ConfigError::BackoffMaxTooLarge)
    );
    assert_eq!(
        check(Config {
            partner_ids: "a,b,c,d,e,f,g,h",
            ..base
        }),
        None
    );
    assert_eq!(
        check(Config {
            partner_ids: "a,b,c,d,e,f,g,h,i",
            ..base
        }),
        Some(ConfigError::TooManyPartners)
    );
    assert_eq!(
        check(Config {
            hw_model: "TG\r\nX-Evil: 1",
            ..base
        }),
        Some(ConfigError::ControlCharacter("hw-model"))
    );
    let long: &'static str = Box::leak("r".repeat(128).into_boxed_str());
    assert_eq!(
        check(Config {
            hw_last_reboot_reason: long,
            ..base
        }),
        Some(ConfigError::FieldTooLong("hw-last-reboot-reason"))
    );
    let protocol: &'static str = Box::leak("p".repeat(65).into_boxed_str());
    assert_eq!(
        check(Config { protocol, ..base }),
        Some(ConfigError::FieldTooLong("webpa-protocol"))
    );
    assert_eq!(
        check(Config {
            convey_extras: &[("hw-model", "x")],
            ..base
        }),
        Some(ConfigError::DuplicateConveyKey)
    );
    assert_eq!(
        check(Config {
            convey_extras: &[("a", "x"), ("a", "y")],
            ..base
        }),
        Some(ConfigError::DuplicateConveyKey)
    );
    assert_eq!(
        check(Config {
            convey_extras: &[("", "x")],
            ..base
        }),
        Some(ConfigError::InvalidConveyExtras)
    );
    let names: &'static str = Box::leak("n".repeat(127).into_boxed_str());
    assert_eq!(
        check(Config {
            fw_name: names,
            hw_model: names,
            ..base
        }),
        Some(ConfigError::UserAgentTooLong)
    );
}
