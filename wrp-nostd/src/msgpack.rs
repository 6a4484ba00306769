//! The slice of MessagePack that WRP needs, without an allocator.
//!
//! Written by hand because `rmp` links `alloc` unconditionally (see docs/embedded.md §1.3) and the
//! no-alloc alternatives do not borrow strings out of the input. Only what WRP uses is here: maps,
//! arrays, strings, binary, integers, booleans and nil, plus skipping of any other value.

use crate::error::{DecodeError, EncodeError};

/// Nesting a decoder follows before giving up; WRP itself never nests deeper than 3
/// (message map → spans array → span array), so this only bounds hostile input.
pub const MAX_DEPTH: u8 = 16;

pub use crate::error::ValueKind;

fn kind_of(marker: u8) -> Option<ValueKind> {
    Some(match marker {
        0x00..=0x7f | 0xe0..=0xff | 0xcc..=0xd3 => ValueKind::Int,
        0x80..=0x8f | 0xde | 0xdf => ValueKind::Map,
        0x90..=0x9f | 0xdc | 0xdd => ValueKind::Array,
        0xa0..=0xbf | 0xd9..=0xdb => ValueKind::Str,
        0xc0 => ValueKind::Nil,
        0xc2 | 0xc3 => ValueKind::Bool,
        0xc4..=0xc6 => ValueKind::Bin,
        0xc7..=0xc9 | 0xd4..=0xd8 => ValueKind::Ext,
        0xca | 0xcb => ValueKind::Float,
        // 0xc1 is the one byte MessagePack never uses.
        0xc1 => return None,
    })
}

/// `bytes` as text, or `InvalidUtf8` pointing at the string's marker `at`.
///
/// WRP text is nearly always ASCII, and the word-at-a-time ASCII check is several times cheaper
/// than full UTF-8 validation, which was 40 % of decoding (BENCHMARKS.md). This is the crate's
/// one `unsafe`.
#[allow(unsafe_code)]
#[inline]
pub fn utf8(at: usize, bytes: &[u8]) -> Result<&str, DecodeError> {
    if bytes.is_ascii() {
        // SAFETY: every ASCII byte sequence is valid UTF-8.
        Ok(unsafe { core::str::from_utf8_unchecked(bytes) })
    } else {
        core::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8 { at })
    }
}

/// A cursor over borrowed MessagePack bytes. Every read checks bounds; nothing panics.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or(DecodeError::Truncated { at: self.pos })?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    #[inline]
    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    #[inline]
    fn be<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// A length field of `width` bytes, checked against what is left so a forged length fails
    /// here rather than as a huge loop.
    #[inline]
    fn len(&mut self, width: usize) -> Result<usize, DecodeError> {
        let n = match width {
            1 => u64::from(self.byte()?),
            2 => u64::from(u16::from_be_bytes(self.be()?)),
            _ => u64::from(u32::from_be_bytes(self.be()?)),
        };
        usize::try_from(n).map_err(|_| DecodeError::LengthPastEnd { at: self.pos })
    }

    #[inline]
    pub fn peek_kind(&self) -> Result<ValueKind, DecodeError> {
        let marker = *self
            .buf
            .get(self.pos)
            .ok_or(DecodeError::Truncated { at: self.pos })?;
        kind_of(marker).ok_or(DecodeError::InvalidMarker { at: self.pos })
    }

    /// Whether a string is next, without reading it: cheaper than [`Reader::peek_kind`] for the
    /// check done on every map key.
    #[inline]
    pub fn next_is_str(&self) -> bool {
        matches!(self.buf.get(self.pos), Some(0xa0..=0xbf | 0xd9..=0xdb))
    }

    /// Consumes a nil if one is next.
    #[inline]
    pub fn eat_nil(&mut self) -> bool {
        if self.buf.get(self.pos) == Some(&0xc0) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn wrong_type(&self, at: usize, expected: ValueKind) -> DecodeError {
        DecodeError::WrongType { at, expected }
    }

    pub fn read_map_len(&mut self) -> Result<usize, DecodeError> {
        let at = self.pos;
        let n = match self.byte()? {
            m @ 0x80..=0x8f => usize::from(m & 0x0f),
            0xde => self.len(2)?,
            0xdf => self.len(4)?,
            _ => return Err(self.wrong_type(at, ValueKind::Map)),
        };
        // Each pair takes at least two bytes.
        if n > (self.buf.len() - self.pos) / 2 {
            return Err(DecodeError::LengthPastEnd { at });
        }
        Ok(n)
    }

    pub fn read_array_len(&mut self) -> Result<usize, DecodeError> {
        let at = self.pos;
        let n = match self.byte()? {
            m @ 0x90..=0x9f => usize::from(m & 0x0f),
            0xdc => self.len(2)?,
            0xdd => self.len(4)?,
            _ => return Err(self.wrong_type(at, ValueKind::Array)),
        };
        // Each element takes at least one byte.
        if n > self.buf.len() - self.pos {
            return Err(DecodeError::LengthPastEnd { at });
        }
        Ok(n)
    }

    #[inline]
    fn sized(&mut self, at: usize, n: usize) -> Result<&'a [u8], DecodeError> {
        self.take(n).map_err(|_| DecodeError::LengthPastEnd { at })
    }

    #[inline]
    pub fn read_str(&mut self) -> Result<&'a str, DecodeError> {
        let at = self.pos;
        let bytes = self.read_str_bytes()?;
        utf8(at, bytes)
    }

    /// A string's bytes, not yet checked for UTF-8: map keys are compared as bytes, and only a key
    /// that matches no field needs the check.
    #[inline]
    pub fn read_str_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let at = self.pos;
        let n = match self.byte()? {
            m @ 0xa0..=0xbf => usize::from(m & 0x1f),
            0xd9 => self.len(1)?,
            0xda => self.len(2)?,
            0xdb => self.len(4)?,
            _ => return Err(self.wrong_type(at, ValueKind::Str)),
        };
        self.sized(at, n)
    }

    /// Binary data; a string is accepted too, as wrp-go and wrp-c both write payloads either way.
    pub fn read_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let at = self.pos;
        let n = match self.byte()? {
            m @ 0xa0..=0xbf => usize::from(m & 0x1f),
            0xc4 | 0xd9 => self.len(1)?,
            0xc5 | 0xda => self.len(2)?,
            0xc6 | 0xdb => self.len(4)?,
            _ => return Err(self.wrong_type(at, ValueKind::Bin)),
        };
        self.sized(at, n)
    }

    /// Any integer encoding that fits an `i64`.
    #[inline]
    pub fn read_int(&mut self) -> Result<i64, DecodeError> {
        let at = self.pos;
        let v = match self.byte()? {
            m @ 0x00..=0x7f => i64::from(m),
            m @ 0xe0..=0xff => i64::from(m as i8),
            0xcc => i64::from(self.byte()?),
            0xcd => i64::from(u16::from_be_bytes(self.be()?)),
            0xce => i64::from(u32::from_be_bytes(self.be()?)),
            0xcf => i64::try_from(u64::from_be_bytes(self.be()?))
                .map_err(|_| DecodeError::IntegerOverflow { at })?,
            0xd0 => i64::from(self.byte()? as i8),
            0xd1 => i64::from(i16::from_be_bytes(self.be()?)),
            0xd2 => i64::from(i32::from_be_bytes(self.be()?)),
            0xd3 => i64::from_be_bytes(self.be()?),
            _ => return Err(self.wrong_type(at, ValueKind::Int)),
        };
        Ok(v)
    }

    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        let at = self.pos;
        match self.byte()? {
            0xc2 => Ok(false),
            0xc3 => Ok(true),
            _ => Err(self.wrong_type(at, ValueKind::Bool)),
        }
    }

    /// Skips one value of any kind, following at most `depth` levels of nesting. Iterative over
    /// siblings and recursive only in depth, so the stack use is bounded by `MAX_DEPTH`.
    pub fn skip(&mut self, depth: u8) -> Result<(), DecodeError> {
        let at = self.pos;
        let depth = depth.checked_sub(1).ok_or(DecodeError::TooDeep { at })?;
        match self.peek_kind()? {
            ValueKind::Nil | ValueKind::Bool => {
                self.pos += 1;
            }
            ValueKind::Int => {
                self.read_int().or_else(|e| match e {
                    // Out of i64 range still is a well-formed value to skip.
                    DecodeError::IntegerOverflow { .. } => Ok(0),
                    e => Err(e),
                })?;
            }
            ValueKind::Float => {
                let width = if self.byte()? == 0xca { 4 } else { 8 };
                self.take(width)?;
            }
            ValueKind::Str | ValueKind::Bin => {
                self.read_bytes()?;
            }
            ValueKind::Array => {
                for _ in 0..self.read_array_len()? {
                    self.skip(depth)?;
                }
            }
            ValueKind::Map => {
                for _ in 0..self.read_map_len()? {
                    self.skip(depth)?;
                    self.skip(depth)?;
                }
            }
            ValueKind::Ext => {
                let n = match self.byte()? {
                    0xd4 => 1,
                    0xd5 => 2,
                    0xd6 => 4,
                    0xd7 => 8,
                    0xd8 => 16,
                    0xc7 => self.len(1)?,
                    0xc8 => self.len(2)?,
                    _ => self.len(4)?,
                };
                // The type byte, then the data.
                self.take(1)?;
                self.sized(at, n)?;
            }
        }
        Ok(())
    }

    /// The bytes between `start` and the current position.
    pub fn since(&self, start: usize) -> &'a [u8] {
        self.buf.get(start..self.pos).unwrap_or_default()
    }
}

/// Where encoded bytes go: a slice, or a counter that only measures.
pub trait Sink {
    fn put(&mut self, bytes: &[u8]) -> Result<(), EncodeError>;
}

/// Writes into a caller's buffer.
pub struct SliceSink<'b> {
    pub buf: &'b mut [u8],
    pub len: usize,
}

impl Sink for SliceSink<'_> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        let end = self.len + bytes.len();
        let dst = self
            .buf
            .get_mut(self.len..end)
            .ok_or(EncodeError::BufferTooSmall)?;
        dst.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
}

/// Counts what would be written, for `encoded_len`.
pub struct CountSink(pub usize);

impl Sink for CountSink {
    #[inline]
    fn put(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        self.0 += bytes.len();
        Ok(())
    }
}

/// Smallest-width MessagePack writers, as wrp-go and wrp-c write them.
pub struct Writer<S>(pub S);

impl<S: Sink> Writer<S> {
    /// A length header: the fix form when `fix` allows it, else the narrowest of 8/16/32 bits.
    #[inline]
    fn header(
        &mut self,
        fix: Option<(u8, usize)>,
        m8: Option<u8>,
        m16: u8,
        m32: u8,
        n: usize,
    ) -> Result<(), EncodeError> {
        if let Some((fix, fix_max)) = fix {
            if n <= fix_max {
                return self.0.put(&[fix | n as u8]);
            }
        }
        if let (Some(m8), Ok(n)) = (m8, u8::try_from(n)) {
            return self.0.put(&[m8, n]);
        }
        if let Ok(n) = u16::try_from(n) {
            let b = n.to_be_bytes();
            return self.0.put(&[m16, b[0], b[1]]);
        }
        let n = u32::try_from(n).map_err(|_| EncodeError::TooLong)?;
        let b = n.to_be_bytes();
        self.0.put(&[m32, b[0], b[1], b[2], b[3]])
    }

    pub fn map(&mut self, n: usize) -> Result<(), EncodeError> {
        self.header(Some((0x80, 15)), None, 0xde, 0xdf, n)
    }

    pub fn array(&mut self, n: usize) -> Result<(), EncodeError> {
        self.header(Some((0x90, 15)), None, 0xdc, 0xdd, n)
    }

    #[inline]
    pub fn str(&mut self, s: &str) -> Result<(), EncodeError> {
        self.header(Some((0xa0, 31)), Some(0xd9), 0xda, 0xdb, s.len())?;
        self.0.put(s.as_bytes())
    }

    pub fn bin(&mut self, b: &[u8]) -> Result<(), EncodeError> {
        self.header(None, Some(0xc4), 0xc5, 0xc6, b.len())?;
        self.0.put(b)
    }

    /// Bytes that are already msgpack.
    #[inline]
    pub fn raw(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        self.0.put(bytes)
    }

    pub fn bool(&mut self, v: bool) -> Result<(), EncodeError> {
        self.0.put(&[if v { 0xc3 } else { 0xc2 }])
    }

    pub fn int(&mut self, v: i64) -> Result<(), EncodeError> {
        if (0..=0x7f).contains(&v) || (-32..0).contains(&v) {
            return self.0.put(&[v as u8]);
        }
        if v > 0 {
            if let Ok(v) = u8::try_from(v) {
                return self.0.put(&[0xcc, v]);
            }
            if let Ok(v) = u16::try_from(v) {
                let b = v.to_be_bytes();
                return self.0.put(&[0xcd, b[0], b[1]]);
            }
            if let Ok(v) = u32::try_from(v) {
                let b = v.to_be_bytes();
                return self.0.put(&[0xce, b[0], b[1], b[2], b[3]]);
            }
            self.0.put(&[0xcf])?;
            return self.0.put(&(v as u64).to_be_bytes());
        }
        if let Ok(v) = i8::try_from(v) {
            return self.0.put(&[0xd0, v as u8]);
        }
        if let Ok(v) = i16::try_from(v) {
            let b = v.to_be_bytes();
            return self.0.put(&[0xd1, b[0], b[1]]);
        }
        if let Ok(v) = i32::try_from(v) {
            let b = v.to_be_bytes();
            return self.0.put(&[0xd2, b[0], b[1], b[2], b[3]]);
        }
        self.0.put(&[0xd3])?;
        self.0.put(&v.to_be_bytes())
    }
}
