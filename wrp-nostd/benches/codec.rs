//! wrp-nostd against rmp-serde on the same bytes, side by side in one run.
//!
//! Inputs are the wrp-c conformance vectors test_01 (a request with every field) and test_04 (an
//! event with every field). The baseline is what a Rust service would write without this crate:
//! `#[derive(Deserialize, Serialize)]` into owned fields, decoded with `rmp_serde::from_slice` and
//! encoded with `rmp_serde::to_vec_named` (or into a reused `Vec` with a struct-map serializer).
//! Since wrp-nostd reads lists lazily, "decode+iterate" also walks every list and string, so the
//! comparison is not won by deferring work.
//!
//! Run: `cargo bench -p wrp-nostd --bench codec` (results in BENCHMARKS.md). For instruction
//! counts, see `main`.

use std::collections::HashMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, Criterion};
use serde::{Deserialize, Serialize};
use wrp_nostd::{Message, Metadata, StrList};

/// The same fields as wrp-go's `Message`, with its omit-empty rules.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
struct SerdeWrp {
    msg_type: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    source: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    dest: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    transaction_uuid: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    content_type: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    accept: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rdr: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    headers: Vec<String>,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    metadata: HashMap<String, String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    path: String,
    #[serde(with = "serde_bytes", skip_serializing_if = "Vec::is_empty")]
    payload: Vec<u8>,
    #[serde(skip_serializing_if = "String::is_empty")]
    service_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    url: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    partner_ids: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    session_id: String,
    qos: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    msg_id: String,
}

/// A vector's msgpack bytes. A missing shared/ folder is an error, not an empty benchmark.
fn vector_bytes(name: &str) -> Vec<u8> {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/vectors/wrp-c"
    ))
    .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e} (is shared/ beside the repo?)",
            path.display()
        )
    });
    let json: serde_json::Value = serde_json::from_str(&text).expect("vector JSON");
    let hex = json["msgpack_hex"].as_str().expect("msgpack_hex");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Reads every field, walking every lazy list, and returns something that depends on all of it.
fn touch_all(m: &Message<'_>) -> usize {
    let mut n = m.source.len() + m.dest.len() + m.transaction_uuid.len() + m.payload.len();
    n += m.content_type.len() + m.accept.len() + m.session_id.len() + m.msg_id.len();
    n += m.path.len() + m.service_name.len() + m.url.len();
    n += m.headers.iter().map(str::len).sum::<usize>();
    n += m.partner_ids.iter().map(str::len).sum::<usize>();
    n += m
        .metadata
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum::<usize>();
    n += m.spans.iter().map(|s| s.fields().count()).sum::<usize>();
    n + m.status.unwrap_or(0) as usize + m.rdr.unwrap_or(0) as usize
}

/// One benchmark case: its id (`group/name`, as criterion names it) and its routine.
struct Case {
    group: String,
    name: &'static str,
    run: Box<dyn FnMut()>,
}

/// Every case, defined once for criterion and for the instruction-count loop in `main`. The
/// inputs live for the whole run, so they are leaked to give the routines `'static` borrows.
fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut add = |group: &str, name, run: Box<dyn FnMut()>| {
        cases.push(Case {
            group: group.to_string(),
            name,
            run,
        })
    };
    for vector in ["test_01", "test_04"] {
        let bytes: &'static [u8] = vector_bytes(vector).leak();
        let group = format!("decode/{vector}");
        add(
            &group,
            "wrp-nostd",
            Box::new(move || {
                black_box(Message::decode(black_box(bytes)).expect("decodes"));
            }),
        );
        add(
            &group,
            "wrp-nostd+iterate",
            Box::new(move || {
                black_box(touch_all(
                    &Message::decode(black_box(bytes)).expect("decodes"),
                ));
            }),
        );
        add(
            &group,
            "rmp-serde",
            Box::new(move || {
                black_box(rmp_serde::from_slice::<SerdeWrp>(black_box(bytes)).expect("decodes"));
            }),
        );

        let decoded = Message::decode(bytes).expect("decodes");
        let serde_msg: &'static SerdeWrp =
            Box::leak(Box::new(rmp_serde::from_slice(bytes).expect("decodes")));
        // The message as an application builds it: borrowed strings and slices.
        let headers: &'static [&str] = decoded.headers.iter().collect::<Vec<_>>().leak();
        let partner_ids: &'static [&str] = decoded.partner_ids.iter().collect::<Vec<_>>().leak();
        let metadata: &'static [(&str, &str)] = decoded.metadata.iter().collect::<Vec<_>>().leak();
        let built = Message {
            headers: StrList::from_strs(headers),
            partner_ids: StrList::from_strs(partner_ids),
            metadata: Metadata::from_pairs(metadata),
            ..decoded
        };
        // Fairness: both sides write the same message.
        let theirs = rmp_serde::to_vec_named(serde_msg).expect("encodes");
        assert_eq!(
            Message::decode(&theirs).expect("rmp-serde output decodes"),
            built
        );

        let group = format!("encode/{vector}");
        let mut buf = vec![0u8; 1024];
        add(
            &group,
            "wrp-nostd",
            Box::new(move || {
                black_box(black_box(&built).encode(&mut buf).expect("fits"));
            }),
        );
        let mut buf = vec![0u8; 1024];
        add(
            &group,
            "wrp-nostd len+encode",
            Box::new(move || {
                let m = black_box(&built);
                let len = m.encoded_len().expect("measures");
                black_box(m.encode(&mut buf[..len]).expect("fits"));
            }),
        );
        let mut buf = vec![0u8; 1024];
        add(
            &group,
            "wrp-nostd decoded view",
            Box::new(move || {
                black_box(black_box(&decoded).encode(&mut buf).expect("fits"));
            }),
        );
        add(
            &group,
            "rmp-serde to_vec_named",
            Box::new(move || {
                black_box(rmp_serde::to_vec_named(black_box(serde_msg)).expect("encodes"));
            }),
        );
        let mut vec_buf: Vec<u8> = Vec::with_capacity(1024);
        add(
            &group,
            "rmp-serde reused Vec",
            Box::new(move || {
                vec_buf.clear();
                let mut ser = rmp_serde::Serializer::new(&mut vec_buf).with_struct_map();
                black_box(serde_msg).serialize(&mut ser).expect("encodes");
                black_box(vec_buf.len());
            }),
        );
    }
    cases
}

fn codec(c: &mut Criterion) {
    let mut cases = cases();
    let mut i = 0;
    while i < cases.len() {
        let group_name = cases[i].group.clone();
        let mut group = c.benchmark_group(&group_name);
        while i < cases.len() && cases[i].group == group_name {
            let case = &mut cases[i];
            group.bench_function(case.name, |b| b.iter(&mut case.run));
            i += 1;
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(4));
    targets = codec
}

fn main() {
    // `WRP_BENCH_LOOP=<group/name>:<n>` runs one case n times and exits, to count instructions
    // under valgrind: on a shared machine they are steadier than timings (see BENCHMARKS.md).
    if let Ok(spec) = std::env::var("WRP_BENCH_LOOP") {
        let (id, n) = spec
            .rsplit_once(':')
            .expect("WRP_BENCH_LOOP=<group/name>:<n>");
        let n: u64 = n.parse().expect("a loop count");
        let mut case = cases()
            .into_iter()
            .find(|c| format!("{}/{}", c.group, c.name) == id)
            .unwrap_or_else(|| panic!("no case {id}"));
        for _ in 0..n {
            (case.run)();
        }
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
