//! Ring lookup and build cost: `cargo bench -p xmidt-ring --bench lookup`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use xmidt_ring::{Ring, RingOptions};

fn instances(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("http://talaria-{i}:6200"))
        .collect()
}

/// Device ids of the usual length, varied so lookups hit the whole ring.
fn keys() -> Vec<String> {
    (0..1024u64)
        .map(|i| format!("mac:{:012x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 16))
        .collect()
}

fn lookup(c: &mut Criterion) {
    let keys = keys();
    let mut group = c.benchmark_group("owner");
    group.throughput(Throughput::Elements(1));
    for members in [3, 50] {
        let ring = match Ring::new(instances(members), &RingOptions::default()) {
            Ok(ring) => ring,
            Err(e) => panic!("benchmark ring: {e}"),
        };
        group.bench_with_input(BenchmarkId::from_parameter(members), &ring, |b, ring| {
            let mut next = keys.iter().cycle();
            b.iter(|| {
                let key = next.next().map_or(&[][..], |k| k.as_bytes());
                black_box(ring.owner(black_box(key)).is_ok())
            });
        });
    }
    group.finish();
}

fn build(c: &mut Criterion) {
    let mut group = c.benchmark_group("build");
    for members in [3, 50] {
        let list = instances(members);
        group.bench_with_input(BenchmarkId::from_parameter(members), &list, |b, list| {
            b.iter(|| black_box(Ring::new(list, &RingOptions::default()).map(|r| r.len())));
        });
    }
    group.finish();
}

criterion_group!(benches, lookup, build);
criterion_main!(benches);
