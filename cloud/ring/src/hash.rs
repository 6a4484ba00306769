//! The ring's hash function.

/// MurmurHash3 x64_128 with seed 0, first 64 bits (`h1`).
///
/// This is Go's `murmur3.Sum64` from spaolacci/murmur3, the hash billhathaway/consistentHash
/// uses both for vnode tokens and for lookup keys.
#[inline]
pub fn sum64(data: &[u8]) -> u64 {
    mur3::murmurhash3_x64_128(data, 0).0
}

#[cfg(test)]
mod tests {
    use super::sum64;

    #[test]
    fn matches_go_murmur3_reference_table() {
        // The seed-0 rows of spaolacci/murmur3's own test table (h64_1 column).
        let table: [(&str, u64); 5] = [
            ("", 0x0000_0000_0000_0000),
            ("hello", 0xcbd8_a7b3_41bd_9b02),
            ("hello, world", 0x342f_ac62_3a5e_bc8e),
            ("19 Jan 2038 at 3:14:07 AM", 0xb89e_5988_b737_affc),
            (
                "The quick brown fox jumps over the lazy dog.",
                0xcd99_481f_9ee9_02c9,
            ),
        ];
        for (input, expected) in table {
            assert_eq!(sum64(input.as_bytes()), expected, "input {input:?}");
        }
    }
}
