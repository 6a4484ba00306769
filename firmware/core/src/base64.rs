//! Standard base64 (padded, no line breaks) written as it streams, so the convey JSON never needs
//! a buffer of its own: the JSON writer feeds this encoder, which fills the caller's slice.

use core::fmt;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub(crate) struct Encoder<'b> {
    out: &'b mut [u8],
    len: usize,
    pending: [u8; 3],
    npending: usize,
}

impl<'b> Encoder<'b> {
    pub fn new(out: &'b mut [u8]) -> Self {
        Encoder {
            out,
            len: 0,
            pending: [0; 3],
            npending: 0,
        }
    }

    fn emit(&mut self, group: [u8; 4]) -> fmt::Result {
        let dst = self.out.get_mut(self.len..self.len + 4).ok_or(fmt::Error)?;
        dst.copy_from_slice(&group);
        self.len += 4;
        Ok(())
    }

    fn encode_group(bytes: [u8; 3], n: usize) -> [u8; 4] {
        let v = u32::from(bytes[0]) << 16 | u32::from(bytes[1]) << 8 | u32::from(bytes[2]);
        let sextet = |shift: u32| ALPHABET[((v >> shift) & 0x3f) as usize];
        [
            sextet(18),
            sextet(12),
            if n > 1 { sextet(6) } else { b'=' },
            if n > 2 { sextet(0) } else { b'=' },
        ]
    }

    /// Writes the last partial group with its padding; returns the encoded length.
    pub fn finish(mut self) -> Result<usize, fmt::Error> {
        if self.npending > 0 {
            let mut last = [0u8; 3];
            last[..self.npending].copy_from_slice(&self.pending[..self.npending]);
            let group = Self::encode_group(last, self.npending);
            self.emit(group)?;
        }
        Ok(self.len)
    }
}

impl fmt::Write for Encoder<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            self.pending[self.npending] = b;
            self.npending += 1;
            if self.npending == 3 {
                self.npending = 0;
                let group = Self::encode_group(self.pending, 3);
                self.emit(group)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    fn encode(parts: &[&str]) -> Option<heapless::String<64>> {
        let mut buf = [0u8; 64];
        let mut e = Encoder::new(&mut buf);
        for p in parts {
            e.write_str(p).ok()?;
        }
        let n = e.finish().ok()?;
        let mut s = heapless::String::new();
        s.push_str(core::str::from_utf8(&buf[..n]).ok()?).ok()?;
        Some(s)
    }

    #[test]
    fn rfc4648_vectors_in_any_split() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, b64) in vectors {
            assert_eq!(encode(&[plain]).as_deref(), Some(b64));
            for cut in 0..=plain.len() {
                let (a, b) = plain.split_at(cut);
                assert_eq!(encode(&[a, b]).as_deref(), Some(b64));
            }
        }
    }

    #[test]
    fn full_buffer_is_an_error() {
        let mut buf = [0u8; 4];
        let mut e = Encoder::new(&mut buf);
        assert!(e.write_str("foo").is_ok());
        assert!(e.write_str("b").is_ok());
        assert!(e.finish().is_err());
    }
}
