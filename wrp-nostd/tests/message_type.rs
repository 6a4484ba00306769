//! Message types (cloud-spec §2.1) and QoS levels (§2.4).

use wrp_nostd::{Message, MessageType, QosLevel};

const NAMES: [(MessageType, &str, i64); 10] = [
    (MessageType::Authorization, "Authorization", 2),
    (
        MessageType::SimpleRequestResponse,
        "SimpleRequestResponse",
        3,
    ),
    (MessageType::SimpleEvent, "SimpleEvent", 4),
    (MessageType::Create, "Create", 5),
    (MessageType::Retrieve, "Retrieve", 6),
    (MessageType::Update, "Update", 7),
    (MessageType::Delete, "Delete", 8),
    (MessageType::ServiceRegistration, "ServiceRegistration", 9),
    (MessageType::ServiceAlive, "ServiceAlive", 10),
    (MessageType::Unknown, "Unknown", 11),
];

#[test]
fn numbers_names_and_display() {
    assert_eq!(
        MessageType::ALL.map(|t| t.as_i64()),
        [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
    );
    for (t, name, n) in NAMES {
        assert_eq!(MessageType::from_i64(n), Some(t));
        assert_eq!(t.as_i64(), n);
        assert_eq!(t.friendly_name(), name);
        assert_eq!(t.to_string(), name);
    }
    for n in [i64::MIN, -1, 0, 1, 12, 99, i64::MAX] {
        assert_eq!(MessageType::from_i64(n), None, "{n}");
    }
}

#[test]
fn parse_accepts_numbers_3_to_11_friendly_and_go_names_and_event() {
    for (t, name, n) in NAMES {
        assert_eq!(MessageType::parse(name), Some(t), "{name}");
        let go_name = format!("{name}MessageType");
        assert_eq!(MessageType::parse(&go_name), Some(t), "{go_name}");
        // wrp-go registers only 3..=11 by number.
        let want = (n != 2).then_some(t);
        assert_eq!(MessageType::parse(&n.to_string()), want, "{n}");
    }
    assert_eq!(
        MessageType::parse("SimpleRequestResponseMessageType"),
        Some(MessageType::SimpleRequestResponse)
    );
    assert_eq!(MessageType::parse("event"), Some(MessageType::SimpleEvent));
}

#[test]
fn parse_rejects_everything_else() {
    for s in [
        "2",
        "0",
        "1",
        "12",
        "99",
        "-3",
        // wrp-go looks the exact text up in a map: no sign, no leading zero, no spaces.
        "+3",
        "03",
        " 3",
        "3 ",
        "",
        "MessageType",
        "Event",
        "EVENT",
        "simpleevent",
        "SimpleEventMessageTypeMessageType",
        "Invalid0",
        "LastMessageType",
        "garbage",
        "99999999999999999999999",
    ] {
        assert_eq!(MessageType::parse(s), None, "{s:?}");
    }
}

#[test]
fn which_types_need_a_transaction_and_are_routed() {
    use MessageType::*;
    for t in MessageType::ALL {
        let crud_or_srr = matches!(
            t,
            SimpleRequestResponse | Create | Retrieve | Update | Delete
        );
        assert_eq!(t.requires_transaction(), crud_or_srr, "{t}");
        assert_eq!(t.is_routable(), crud_or_srr || t == SimpleEvent, "{t}");
    }
}

#[test]
fn transaction_part_needs_the_type_and_a_uuid() {
    let mut m = Message::new(MessageType::Retrieve);
    assert!(!m.is_transaction());
    m.transaction_uuid = "t-1";
    assert!(m.is_transaction());
    m.msg_type = MessageType::SimpleEvent;
    assert!(!m.is_transaction());
}

#[test]
fn qos_levels_at_their_boundaries() {
    let cases = [
        (i64::MIN, None),
        (-1, None),
        (0, Some(QosLevel::Low)),
        (24, Some(QosLevel::Low)),
        (25, Some(QosLevel::Medium)),
        (49, Some(QosLevel::Medium)),
        (50, Some(QosLevel::High)),
        (74, Some(QosLevel::High)),
        (75, Some(QosLevel::Critical)),
        (99, Some(QosLevel::Critical)),
        (100, None),
        (i64::MAX, None),
    ];
    for (qos, level) in cases {
        assert_eq!(QosLevel::from_value(qos), level, "{qos}");
        let m = Message {
            qos,
            ..Message::new(MessageType::SimpleEvent)
        };
        assert_eq!(m.qos_level(), level, "{qos}");
    }
    assert!(!QosLevel::Low.needs_ack());
    assert!(QosLevel::Medium.needs_ack());
    assert!(QosLevel::High.needs_ack());
    assert!(QosLevel::Critical.needs_ack());
}
