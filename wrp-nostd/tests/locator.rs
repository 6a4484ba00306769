//! Locators and canonical device ids (cloud-spec §2.5).

use std::collections::HashSet;

use wrp_nostd::{DeviceId, Locator, LocatorError, Scheme};

fn canonical(name: &str) -> Result<String, LocatorError> {
    DeviceId::parse(name).map(|id| id.to_string())
}

#[test]
fn device_ids_follow_webpa_common() {
    let cases = [
        // The spec's examples.
        ("MAC:11-22-33-44-55-66/config/x", "mac:112233445566"),
        ("serial:ABC123/parodus", "serial:ABC123"),
        // Every mac separator, mixed case hex.
        ("mac:11:22:33:44:55:66", "mac:112233445566"),
        ("mac:1122.3344.5566", "mac:112233445566"),
        ("mac:11,22,33,44,55,66", "mac:112233445566"),
        ("mac:AABBCCDDEEFF", "mac:aabbccddeeff"),
        ("Mac:aAbB-cCdD-eEfF/svc", "mac:aabbccddeeff"),
        // uuid, serial and dns ids keep their case; the scheme is lower-cased.
        ("UUID:AbC-123", "uuid:AbC-123"),
        ("Serial:xYz", "serial:xYz"),
        ("DNS:Device.Example.com/api/v2", "dns:Device.Example.com"),
    ];
    for (name, want) in cases {
        assert_eq!(canonical(name).as_deref(), Ok(want), "{name}");
        let id = DeviceId::parse(name).expect("parses");
        assert_eq!(id.canonical_len(), want.len(), "{name}");
        assert_eq!(
            format!("{}:{}", id.scheme(), id.id()),
            want,
            "{name}: scheme and id"
        );
    }
}

#[test]
fn device_ids_that_are_not_valid() {
    let cases = [
        // The spec's example: 10 hex digits.
        ("mac:1122334455", LocatorError::InvalidMac),
        ("mac:11223344556677", LocatorError::InvalidMac),
        ("mac:11223344556g", LocatorError::InvalidMac),
        ("mac:11 22 33 44 55 66", LocatorError::InvalidMac),
        ("mac:", LocatorError::EmptyAuthority),
        ("serial:/parodus", LocatorError::EmptyAuthority),
        // webpa-common knows neither self nor event device ids.
        ("self:", LocatorError::UnknownScheme),
        ("event:device-status", LocatorError::UnknownScheme),
        ("ftp:host", LocatorError::UnknownScheme),
        ("112233445566", LocatorError::UnknownScheme),
        ("", LocatorError::UnknownScheme),
    ];
    for (name, want) in cases {
        assert_eq!(canonical(name), Err(want), "{name}");
    }
}

#[test]
fn every_spelling_of_a_mac_is_the_same_routing_key() {
    let ids: HashSet<DeviceId<'_>> = [
        "mac:112233445566",
        "MAC:11-22-33-44-55-66",
        "mac:11:22:33:44:55:66/config",
        "Mac:1122.3344.5566/a/b",
    ]
    .into_iter()
    .map(|n| DeviceId::parse(n).expect("parses"))
    .collect();
    assert_eq!(ids.len(), 1);
    // Case matters for the other schemes.
    assert_ne!(
        DeviceId::parse("serial:abc").expect("parses"),
        DeviceId::parse("serial:ABC").expect("parses")
    );
}

#[test]
fn locators_split_into_scheme_authority_service_and_ignored() {
    let cases = [
        (
            "mac:112233445566/config/x",
            (Scheme::Mac, "112233445566", "config", "/x"),
        ),
        (
            "MAC:11-22-33-44-55-66/config/x",
            (Scheme::Mac, "11-22-33-44-55-66", "config", "/x"),
        ),
        (
            "dns:talaria.example.com/api/v2/device",
            (Scheme::Dns, "talaria.example.com", "api", "/v2/device"),
        ),
        ("dns:host", (Scheme::Dns, "host", "", "")),
        ("uuid:abc/svc", (Scheme::Uuid, "abc", "svc", "")),
        ("Serial:ABC/parodus", (Scheme::Serial, "ABC", "parodus", "")),
        ("self:", (Scheme::Own, "", "", "")),
        ("SELF:/parodus/tag", (Scheme::Own, "", "parodus", "/tag")),
        // An event type is everything up to the first slash; the service folds into ignored.
        (
            "event:device-status/mac:112233445566/online",
            (
                Scheme::Event,
                "device-status",
                "",
                "/mac:112233445566/online",
            ),
        ),
        ("EVENT:node-change", (Scheme::Event, "node-change", "", "")),
        // Surrounding white space is trimmed from each part.
        (" dns : host /svc ", (Scheme::Dns, "host", "svc", "")),
    ];
    for (text, (scheme, authority, service, ignored)) in cases {
        let l = Locator::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(
            (l.scheme, l.authority, l.service, l.ignored),
            (scheme, authority, service, ignored),
            "{text}"
        );
    }
}

#[test]
fn event_locators_give_their_event_type() {
    let l = Locator::parse("event:device-status/mac:112233445566/online").expect("parses");
    assert_eq!(l.event_type(), Some("device-status"));
    assert_eq!(l.device_id(), None);
    let l = Locator::parse("mac:112233445566/config").expect("parses");
    assert_eq!(l.event_type(), None);
}

#[test]
fn locators_that_are_not_valid() {
    let cases = [
        ("dns:", LocatorError::EmptyAuthority),
        ("dns:/svc", LocatorError::EmptyAuthority),
        ("dns:  /svc", LocatorError::EmptyAuthority),
        ("event:", LocatorError::EmptyAuthority),
        ("event:/mac:112233445566", LocatorError::EmptyAuthority),
        ("uuid:", LocatorError::EmptyAuthority),
        ("serial:/x", LocatorError::EmptyAuthority),
        ("self:device", LocatorError::SelfWithAuthority),
        ("self:x/parodus", LocatorError::SelfWithAuthority),
        ("mac:1122334455/config", LocatorError::InvalidMac),
        ("mac:", LocatorError::InvalidMac),
        ("http://example.com", LocatorError::UnknownScheme),
        ("no-scheme", LocatorError::UnknownScheme),
        ("", LocatorError::UnknownScheme),
    ];
    for (text, want) in cases {
        assert_eq!(Locator::parse(text), Err(want), "{text}");
    }
}

#[test]
fn a_locator_names_its_device_in_canonical_form() {
    let cases = [
        ("MAC:11-22-33-44-55-66/config/x", Some("mac:112233445566")),
        ("serial:ABC123/parodus", Some("serial:ABC123")),
        ("uuid:u-1", Some("uuid:u-1")),
        ("dns:host/svc", Some("dns:host")),
        ("self:/parodus", None),
        ("event:x/y", None),
    ];
    for (text, want) in cases {
        let l = Locator::parse(text).expect("parses");
        assert_eq!(
            l.device_id().map(|id| id.to_string()).as_deref(),
            want,
            "{text}"
        );
    }
}

#[test]
fn schemes_print_lower_case() {
    let names: Vec<String> = [
        Scheme::Mac,
        Scheme::Uuid,
        Scheme::Serial,
        Scheme::Dns,
        Scheme::Event,
        Scheme::Own,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(names, ["mac", "uuid", "serial", "dns", "event", "self"]);
    for e in [
        LocatorError::UnknownScheme,
        LocatorError::EmptyAuthority,
        LocatorError::SelfWithAuthority,
        LocatorError::InvalidMac,
    ] {
        assert!(!e.to_string().is_empty());
    }
}
