//! A bounded, seeded fuzz run inside the normal test suite: the conformance vectors are mutated
//! (bit flips, msgpack markers, truncations, corrupted length fields, splices) and every mutant
//! must decode without panicking; those that decode must re-encode stably (see `check_decode`).
//! The open-ended run is the cargo-fuzz target in `fuzz/`.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use common::{check_decode, load_vectors, SplitMix64};

const SEED: u64 = 0x5752_505f_6675_7a7a;
const ITERATIONS: usize = 60_000;

/// Bytes that mean something to a msgpack reader: nil, the unused 0xc1, bool, every length
/// marker and the fix-type boundaries.
const MARKERS: [u8; 26] = [
    0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc3, 0xc4, 0xc5, 0xc6, 0xc9, 0xcb,
    0xcf, 0xd3, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xff,
];

/// Overwrites the length field after a sized marker (or a fix type's count) with a nearby or an
/// extreme value.
fn corrupt_a_length(rng: &mut SplitMix64, b: &mut [u8]) {
    let sites: Vec<usize> = (0..b.len())
        .filter(|&i| matches!(b[i], 0x80..=0xbf | 0xc4..=0xc6 | 0xd9..=0xdf))
        .collect();
    if sites.is_empty() {
        return;
    }
    let at = sites[rng.below(sites.len())];
    let width = match b[at] {
        0xc4 | 0xd9 => 1,
        0xc5 | 0xda | 0xdc | 0xde => 2,
        0xc6 | 0xdb | 0xdd | 0xdf => 4,
        // A fix type: its count is in the marker's low bits.
        fix => {
            let mask = if fix >= 0xa0 { 0x1f } else { 0x0f };
            let count = (fix & mask).wrapping_add([1, 0xff, 5][rng.below(3)]) & mask;
            b[at] = (fix & !mask) | count;
            return;
        }
    };
    let choices = [0u64, 1, u64::MAX, rng.next_u64()];
    let value = choices[rng.below(choices.len())].to_be_bytes();
    for (i, byte) in value[8 - width..].iter().enumerate() {
        if let Some(slot) = b.get_mut(at + 1 + i) {
            *slot = *byte;
        }
    }
}

fn mutate(rng: &mut SplitMix64, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut b = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(3) {
        if b.is_empty() {
            break;
        }
        let i = rng.below(b.len());
        match rng.below(6) {
            0 => b[i] ^= 1 << rng.below(8),
            1 => b[i] = MARKERS[rng.below(MARKERS.len())],
            2 => b.truncate(i),
            3 => corrupt_a_length(rng, &mut b),
            4 => {
                // Splice in a piece of another vector.
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len());
                let to = from + rng.below(other.len() - from + 1);
                let end = (i + rng.below(8)).min(b.len());
                b.splice(i..end, other[from..to].iter().copied());
            }
            _ => {
                // Repeat or drop a short range.
                let end = (i + 1 + rng.below(8)).min(b.len());
                if rng.below(2) == 0 {
                    let piece = b[i..end].to_vec();
                    b.splice(i..i, piece);
                } else {
                    b.drain(i..end);
                }
            }
        }
    }
    b
}

#[test]
fn mutated_vectors_never_panic_and_reencode_stably() {
    let seeds: Vec<Vec<u8>> = load_vectors().into_iter().map(|v| v.bytes).collect();
    let mut rng = SplitMix64(SEED);
    let (mut decoded, mut refused) = (0usize, 0usize);
    for n in 0..ITERATIONS {
        let input = mutate(&mut rng, &seeds);
        match catch_unwind(AssertUnwindSafe(|| check_decode(&input))) {
            Ok(true) => decoded += 1,
            Ok(false) => refused += 1,
            Err(_) => panic!(
                "iteration {n} (seed {SEED:#x}) failed on input {}",
                input.iter().map(|b| format!("{b:02x}")).collect::<String>()
            ),
        }
    }
    // The mutator must reach both outcomes, or the run proves little.
    assert!(decoded > ITERATIONS / 50, "only {decoded} mutants decoded");
    assert!(
        refused > ITERATIONS / 5,
        "only {refused} mutants were refused"
    );
}
