//! Helpers shared by the integration tests: the conformance vectors, a plain snapshot of a
//! message for field-by-field comparison, hand-built msgpack, the encode round trip and a
//! seeded PRNG.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::fs;
use std::path::PathBuf;

use base64::Engine;
use serde_json::Value;
use wrp_nostd::{
    DecodeError, EncodeError, Message, MessageType, Metadata, SpanField, Spans, StrList,
};

// ---------------------------------------------------------------------------------------------
// Conformance vectors (shared/vectors/wrp-c, beside the repository).

/// The wrp-c vectors. In CI the repository is cloned with `shared/` beside it.
pub fn vectors_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/vectors/wrp-c"
    ))
}

/// The files every run must find; a partial checkout fails instead of testing less.
pub const EXPECTED_VECTORS: [&str; 24] = [
    "simple_01",
    "simple_02",
    "simple_03",
    "simple_04",
    "simple_05",
    "simple_06",
    "test_00",
    "test_01",
    "test_02",
    "test_03",
    "test_04",
    "test_05",
    "test_06",
    "test_07",
    "test_08",
    "test_09",
    "test_10",
    "test_11",
    "test_12",
    "test_13",
    "test_err_00",
    "test_err_01",
    "test_err_02",
    "test_err_03",
];

#[derive(Debug, Clone)]
pub struct Vector {
    pub name: String,
    pub bytes: Vec<u8>,
    pub reencoded: Option<Vec<u8>>,
    /// The `expect` object; `None` for invalid vectors.
    pub expect: Option<serde_json::Map<String, Value>>,
    pub valid: bool,
}

pub fn hex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd-length hex {text:?}");
    (0..text.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&text[i..i + 2], 16)
                .unwrap_or_else(|e| panic!("bad hex at {i} in {text:?}: {e}"))
        })
        .collect()
}

/// Every vector file, sorted by name. A missing folder or file is a failure, never a skip.
pub fn load_vectors() -> Vec<Vector> {
    let dir = vectors_dir();
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "the WRP conformance vectors are missing: cannot read {} ({e}). \
             Clone the repository with shared/ beside it (shared/vectors/wrp-c).",
            dir.display()
        )
    });
    let mut vectors: Vec<Vector> = entries
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            let text = fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let json: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
            let field = |key: &str| {
                json.get(key)
                    .unwrap_or_else(|| panic!("{} has no {key:?}", path.display()))
            };
            let valid = field("valid").as_bool().expect("`valid` is a boolean");
            let expect = match field("expect") {
                Value::Object(map) => Some(map.clone()),
                Value::Null => None,
                other => panic!("{}: `expect` is {other}", path.display()),
            };
            assert_eq!(
                valid,
                expect.is_some(),
                "{}: valid vectors have an expect object, invalid ones null",
                path.display()
            );
            Vector {
                name: field("name")
                    .as_str()
                    .expect("`name` is a string")
                    .to_string(),
                bytes: hex(field("msgpack_hex").as_str().expect("hex string")),
                reencoded: json
                    .get("reencoded_msgpack_hex")
                    .map(|v| hex(v.as_str().expect("hex string"))),
                expect,
                valid,
            }
        })
        .collect();
    vectors.sort_by(|a, b| a.name.cmp(&b.name));
    let names: Vec<&str> = vectors.iter().map(|v| v.name.as_str()).collect();
    for name in EXPECTED_VECTORS {
        assert!(
            names.contains(&name),
            "vector {name} is missing from {} (found {names:?})",
            dir.display()
        );
    }
    vectors
}

pub fn valid_vectors() -> Vec<Vector> {
    load_vectors().into_iter().filter(|v| v.valid).collect()
}

pub fn vector(name: &str) -> Vector {
    load_vectors()
        .into_iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no vector {name}"))
}

// ---------------------------------------------------------------------------------------------
// A plain snapshot of a message, so decoded fields are compared one by one with std types and do
// not lean on the crate's own `PartialEq` (which is itself under test).

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlainField {
    Str(String),
    Int(i64),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plain {
    pub msg_type: i64,
    pub source: String,
    pub dest: String,
    pub transaction_uuid: String,
    pub content_type: String,
    pub accept: String,
    pub status: Option<i64>,
    pub rdr: Option<i64>,
    pub headers: Vec<String>,
    /// Every stored entry, sorted (a repeated key shows twice).
    pub metadata: Vec<(String, String)>,
    pub path: String,
    pub payload: Vec<u8>,
    pub service_name: String,
    pub url: String,
    pub partner_ids: Vec<String>,
    pub session_id: String,
    pub qos: i64,
    pub msg_id: String,
    pub spans: Vec<Vec<PlainField>>,
    pub include_spans: bool,
}

impl Plain {
    /// Reads every field, iterating every lazy list to its end.
    pub fn of(m: &Message<'_>) -> Self {
        let mut metadata: Vec<(String, String)> = m
            .metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(metadata.len(), m.metadata.len(), "metadata len vs entries");
        metadata.sort();
        let headers: Vec<String> = m.headers.iter().map(String::from).collect();
        assert_eq!(headers.len(), m.headers.len(), "headers len vs items");
        let partner_ids: Vec<String> = m.partner_ids.iter().map(String::from).collect();
        assert_eq!(
            partner_ids.len(),
            m.partner_ids.len(),
            "partner_ids len vs items"
        );
        let spans: Vec<Vec<PlainField>> = m
            .spans
            .iter()
            .map(|span| {
                let fields: Vec<PlainField> = span
                    .fields()
                    .map(|f| match f {
                        SpanField::Str(s) => PlainField::Str(s.to_string()),
                        SpanField::Int(n) => PlainField::Int(n),
                    })
                    .collect();
                assert_eq!(fields.len(), span.len(), "span len vs fields");
                fields
            })
            .collect();
        assert_eq!(spans.len(), m.spans.len(), "spans len vs items");
        Plain {
            msg_type: m.msg_type.as_i64(),
            source: m.source.into(),
            dest: m.dest.into(),
            transaction_uuid: m.transaction_uuid.into(),
            content_type: m.content_type.into(),
            accept: m.accept.into(),
            status: m.status,
            rdr: m.rdr,
            headers,
            metadata,
            path: m.path.into(),
            payload: m.payload.into(),
            service_name: m.service_name.into(),
            url: m.url.into(),
            partner_ids,
            session_id: m.session_id.into(),
            qos: m.qos,
            msg_id: m.msg_id.into(),
            spans,
            include_spans: m.include_spans,
        }
    }

    /// A vector's `expect` object: absent keys are empty, `payload` is base64, spans keep their
    /// JSON strings and integers. Any key this does not know fails, so none is silently ignored.
    pub fn from_expect(expect: &serde_json::Map<String, Value>) -> Self {
        let text = |key: &str| -> String {
            expect.get(key).map_or_else(String::new, |v| {
                v.as_str()
                    .unwrap_or_else(|| panic!("expect.{key} is {v}"))
                    .to_string()
            })
        };
        let int = |key: &str| {
            expect
                .get(key)
                .map(|v| v.as_i64().unwrap_or_else(|| panic!("expect.{key} is {v}")))
        };
        let list = |key: &str| -> Vec<String> {
            expect.get(key).map_or_else(Vec::new, |v| {
                v.as_array()
                    .unwrap_or_else(|| panic!("expect.{key} is {v}"))
                    .iter()
                    .map(|s| s.as_str().expect("a string item").to_string())
                    .collect()
            })
        };
        for key in expect.keys() {
            assert!(
                [
                    "msg_type",
                    "source",
                    "dest",
                    "transaction_uuid",
                    "content_type",
                    "accept",
                    "status",
                    "rdr",
                    "headers",
                    "metadata",
                    "path",
                    "payload",
                    "service_name",
                    "url",
                    "partner_ids",
                    "session_id",
                    "qos",
                    "msg_id",
                    "spans",
                    "include_spans",
                ]
                .contains(&key.as_str()),
                "expect has a key this test does not compare: {key}"
            );
        }
        let mut metadata: Vec<(String, String)> =
            expect.get("metadata").map_or_else(Vec::new, |v| {
                v.as_object()
                    .expect("metadata is an object")
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().expect("string value").to_string()))
                    .collect()
            });
        metadata.sort();
        let spans = expect.get("spans").map_or_else(Vec::new, |v| {
            v.as_array()
                .expect("spans is an array")
                .iter()
                .map(|span| {
                    span.as_array()
                        .expect("a span is an array")
                        .iter()
                        .map(|f| match f {
                            Value::String(s) => PlainField::Str(s.clone()),
                            Value::Number(n) => PlainField::Int(n.as_i64().expect("i64")),
                            other => panic!("span field {other}"),
                        })
                        .collect()
                })
                .collect()
        });
        Plain {
            msg_type: int("msg_type").expect("expect.msg_type"),
            source: text("source"),
            dest: text("dest"),
            transaction_uuid: text("transaction_uuid"),
            content_type: text("content_type"),
            accept: text("accept"),
            status: int("status"),
            rdr: int("rdr"),
            headers: list("headers"),
            metadata,
            path: text("path"),
            payload: base64::engine::general_purpose::STANDARD
                .decode(text("payload"))
                .expect("payload is standard base64"),
            service_name: text("service_name"),
            url: text("url"),
            partner_ids: list("partner_ids"),
            session_id: text("session_id"),
            qos: int("qos").unwrap_or(0),
            msg_id: text("msg_id"),
            spans,
            include_spans: expect
                .get("include_spans")
                .is_some_and(|v| v.as_bool().expect("include_spans is a boolean")),
        }
    }
}

impl Plain {
    /// Runs `f` on a borrowed view of this message, built from slices the way a no-alloc caller
    /// builds one (`from_strs`, `from_pairs`, `from_slices`).
    pub fn with_message<R>(&self, f: impl FnOnce(Message<'_>) -> R) -> R {
        let headers: Vec<&str> = self.headers.iter().map(String::as_str).collect();
        let partner_ids: Vec<&str> = self.partner_ids.iter().map(String::as_str).collect();
        let metadata: Vec<(&str, &str)> = self
            .metadata
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let fields: Vec<Vec<SpanField<'_>>> = self
            .spans
            .iter()
            .map(|span| {
                span.iter()
                    .map(|f| match f {
                        PlainField::Str(s) => SpanField::Str(s),
                        PlainField::Int(n) => SpanField::Int(*n),
                    })
                    .collect()
            })
            .collect();
        let spans: Vec<&[SpanField<'_>]> = fields.iter().map(Vec::as_slice).collect();
        f(Message {
            msg_type: MessageType::from_i64(self.msg_type).expect("a WRP type"),
            source: &self.source,
            dest: &self.dest,
            transaction_uuid: &self.transaction_uuid,
            content_type: &self.content_type,
            accept: &self.accept,
            status: self.status,
            rdr: self.rdr,
            headers: StrList::from_strs(&headers),
            metadata: Metadata::from_pairs(&metadata),
            path: &self.path,
            payload: &self.payload,
            service_name: &self.service_name,
            url: &self.url,
            partner_ids: StrList::from_strs(&partner_ids),
            session_id: &self.session_id,
            qos: self.qos,
            msg_id: &self.msg_id,
            spans: Spans::from_slices(&spans),
            include_spans: self.include_spans,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding.

/// Encodes `m` as a caller would (buffer sized by `encoded_len`), checks the length contract and
/// the short-buffer error, and checks the bytes decode back to the same message.
pub fn encode_checked(m: &Message<'_>) -> Vec<u8> {
    let len = m.encoded_len().expect("encoded_len");
    let mut buf = vec![0u8; len];
    assert_eq!(
        m.encode(&mut buf),
        Ok(len),
        "encode writes encoded_len bytes"
    );
    let mut short = vec![0u8; len - 1];
    assert_eq!(
        m.encode(&mut short),
        Err(EncodeError::BufferTooSmall),
        "a buffer one byte short"
    );
    let back = Message::decode(&buf).unwrap_or_else(|e| panic!("re-decode failed: {e}"));
    assert_eq!(
        Plain::of(&back),
        Plain::of(m),
        "fields after the round trip"
    );
    assert_eq!(back, *m, "Message's PartialEq after the round trip");
    buf
}

/// Decodes any input, which must never panic. When it decodes: every lazy list iterates to its
/// stated length, `decode_prefix` agrees, and the re-encoding decodes to the same message and
/// encodes to the same bytes again. Returns whether it decoded.
pub fn check_decode(bytes: &[u8]) -> bool {
    let prefix = Message::decode_prefix(bytes);
    match Message::decode(bytes) {
        Ok(m) => {
            assert_eq!(prefix, Ok((m, bytes.len())), "decode_prefix agrees");
            let ours = encode_checked(&m);
            let again = Message::decode(&ours).expect("our encoding decodes");
            assert_eq!(encode_checked(&again), ours, "re-encoding is stable");
            true
        }
        Err(DecodeError::TrailingBytes { at }) => {
            let (_, used) = prefix.expect("the prefix before trailing bytes decodes");
            assert_eq!(used, at);
            false
        }
        Err(e) => {
            assert_eq!(
                prefix.map(|_| ()),
                Err(e),
                "decode_prefix fails the same way"
            );
            false
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-built msgpack, so a test shows exactly which encoding it feeds the decoder.

/// A fixstr (up to 31 bytes).
pub fn fixstr(s: &str) -> Vec<u8> {
    assert!(s.len() < 32);
    let mut out = vec![0xa0 | s.len() as u8];
    out.extend_from_slice(s.as_bytes());
    out
}

/// A length header `marker` + big-endian `len` in `width` bytes, then `data`.
pub fn sized(marker: u8, width: usize, len: usize, data: &[u8]) -> Vec<u8> {
    assert!(
        (len as u64) >> (8 * width) == 0,
        "{len} does not fit {width} bytes"
    );
    let mut out = vec![marker];
    out.extend_from_slice(&(len as u64).to_be_bytes()[8 - width..]);
    out.extend_from_slice(data);
    out
}

/// A message map: `msg_type` = `msg_type`, then each key (a fixstr) with its raw value bytes.
pub fn wrp_map(msg_type: u8, fields: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = vec![0x80 | (fields.len() as u8 + 1)];
    out.extend(fixstr("msg_type"));
    out.push(msg_type);
    for (key, value) in fields {
        out.extend(fixstr(key));
        out.extend_from_slice(value);
    }
    out
}

/// Concatenates byte pieces.
pub fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

// ---------------------------------------------------------------------------------------------
// Deterministic randomness for the bounded fuzz tests (no dependency, fixed seed).

pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

// ---------------------------------------------------------------------------------------------
// The owned form.

#[cfg(feature = "alloc")]
impl Plain {
    /// The same message as an `OwnedMessage`, whose spans are strings (wrp-go v3's `[][]string`),
    /// so wrp-c's integer span times become decimal text.
    pub fn to_owned_message(&self) -> wrp_nostd::OwnedMessage {
        let text = |s: &String| s.clone();
        wrp_nostd::OwnedMessage {
            msg_type: wrp_nostd::MessageType::from_i64(self.msg_type).expect("a WRP type"),
            source: text(&self.source),
            dest: text(&self.dest),
            transaction_uuid: text(&self.transaction_uuid),
            content_type: text(&self.content_type),
            accept: text(&self.accept),
            status: self.status,
            rdr: self.rdr,
            headers: self.headers.clone(),
            metadata: self.metadata.iter().cloned().collect(),
            path: text(&self.path),
            payload: self.payload.clone(),
            service_name: text(&self.service_name),
            url: text(&self.url),
            partner_ids: self.partner_ids.clone(),
            session_id: text(&self.session_id),
            qos: self.qos,
            msg_id: text(&self.msg_id),
            spans: self
                .spans
                .iter()
                .map(|span| {
                    span.iter()
                        .map(|f| match f {
                            PlainField::Str(s) => s.clone(),
                            PlainField::Int(n) => n.to_string(),
                        })
                        .collect()
                })
                .collect(),
            include_spans: self.include_spans,
        }
    }
}
