//! Randomness comes from the driver (a hardware RNG, the OS): the core only asks for `u32`s.

/// The driver's source of random numbers. Closures `FnMut() -> u32` implement it.
pub trait Random {
    fn next_u32(&mut self) -> u32;
}

impl<F: FnMut() -> u32> Random for F {
    fn next_u32(&mut self) -> u32 {
        self()
    }
}

/// A version-4 UUID in its canonical lower-case text form (`8-4-4-4-12`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Uuid([u8; 36]);

impl Uuid {
    pub fn new_v4(rng: &mut impl Random) -> Self {
        let mut bytes = [0u8; 16];
        for chunk in bytes.chunks_exact_mut(4) {
            chunk.copy_from_slice(&rng.next_u32().to_be_bytes());
        }
        // RFC 9562: version 4 in the high nibble of byte 6, variant 10 in the top bits of byte 8.
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [b'-'; 36];
        let mut at = 0;
        for (i, b) in bytes.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                at += 1;
            }
            text[at] = HEX[usize::from(b >> 4)];
            text[at + 1] = HEX[usize::from(b & 0x0f)];
            at += 2;
        }
        Uuid(text)
    }

    pub fn as_str(&self) -> &str {
        // Always ASCII hex digits and dashes.
        core::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl core::fmt::Debug for Uuid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_layout() {
        let mut words = [0xffff_ffffu32, 0, 0x1234_5678, 0x9abc_def0].into_iter();
        let u = Uuid::new_v4(&mut || words.next().unwrap_or(0));
        assert_eq!(u.as_str(), "ffffffff-0000-4000-9234-56789abcdef0");
        let mut zero = || 0u32;
        assert_eq!(
            Uuid::new_v4(&mut zero).as_str(),
            "00000000-0000-4000-8000-000000000000"
        );
    }
}
