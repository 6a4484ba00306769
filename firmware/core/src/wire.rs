//! Writing the messages the core sends: wrp-nostd encodes the message, then the core appends
//! the fields it merges (metadata, partner ids) and fixes the map header's count, widening the
//! header when the count grows past a fixmap. parodus appended a second `metadata` key and only
//! handled fixmaps (client-spec §5.5); this writes exactly one, for any map width.

use wrp_nostd::{EncodeError, Message, Metadata, StrList};

use crate::error::Error;

/// The most metadata entries a message may carry into the merge (the merge is quadratic in it).
pub const MAX_METADATA_ENTRIES: usize = 256;

/// Fields the core writes itself, after the message's own. The message passed along must have
/// these fields empty.
#[derive(Clone, Copy, Default)]
pub(crate) struct Extras<'x> {
    /// `metadata`: the message's own entries, without repeats (the last one wins, as a decoder
    /// reading a map would) and without the keys the device sets, then the device's entries.
    pub metadata: Option<(Metadata<'x>, &'x [(&'x str, &'x str)])>,
    /// `partner_ids`: the first list, then the second.
    pub partner_ids: Option<(StrList<'x>, &'x [&'x str])>,
}

trait Sink {
    fn put(&mut self, bytes: &[u8]) -> Result<(), EncodeError>;
}

struct Count(usize);

impl Sink for Count {
    fn put(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        self.0 += bytes.len();
        Ok(())
    }
}

struct Slice<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl Sink for Slice<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        let end = self.len + bytes.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(EncodeError::BufferTooSmall)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
}

/// A msgpack length header: the fix form up to `fix_max`, else 16 or 32 bits.
fn header(
    fix: u8,
    fix_max: usize,
    m16: u8,
    m32: u8,
    n: usize,
) -> Result<([u8; 5], usize), EncodeError> {
    if n <= fix_max {
        // n fits the low bits of the fix marker.
        return Ok(([fix | n as u8, 0, 0, 0, 0], 1));
    }
    if let Ok(n) = u16::try_from(n) {
        let b = n.to_be_bytes();
        return Ok(([m16, b[0], b[1], 0, 0], 3));
    }
    let b = u32::try_from(n)
        .map_err(|_| EncodeError::TooLong)?
        .to_be_bytes();
    Ok(([m32, b[0], b[1], b[2], b[3]], 5))
}

fn put_header<S: Sink>(s: &mut S, h: ([u8; 5], usize)) -> Result<(), EncodeError> {
    s.put(&h.0[..h.1])
}

fn put_str<S: Sink>(s: &mut S, v: &str) -> Result<(), EncodeError> {
    let h = if v.len() <= 31 {
        ([0xa0 | v.len() as u8, 0, 0, 0, 0], 1)
    } else if let Ok(n) = u8::try_from(v.len()) {
        ([0xd9, n, 0, 0, 0], 2)
    } else {
        // Past 255 bytes: str16 or str32 (the fix form never applies here).
        header(0, 0, 0xda, 0xdb, v.len())?
    };
    put_header(s, h)?;
    s.put(v.as_bytes())
}

/// The message's own metadata entries to keep: not a key the device sets, and the last of any
/// repeated key.
fn kept<'x, 'd>(
    own: Metadata<'x>,
    device: &'d [(&'d str, &'d str)],
) -> impl Iterator<Item = (&'x str, &'x str)> + 'd
where
    'x: 'd,
{
    own.iter()
        .enumerate()
        .filter(move |&(i, (k, _))| {
            !device.iter().any(|(d, _)| *d == k)
                && !own.iter().skip(i + 1).any(|(later, _)| later == k)
        })
        .map(|(_, kv)| kv)
}

/// Writes the extra fields; returns how many map entries they add.
fn put_extras<S: Sink>(s: &mut S, x: &Extras<'_>) -> Result<usize, EncodeError> {
    let mut fields = 0;
    if let Some((own, device)) = x.metadata {
        put_str(s, "metadata")?;
        let n = kept(own, device).count() + device.len();
        put_header(s, header(0x80, 15, 0xde, 0xdf, n)?)?;
        for (k, v) in kept(own, device).chain(device.iter().copied()) {
            put_str(s, k)?;
            put_str(s, v)?;
        }
        fields += 1;
    }
    if let Some((first, then)) = x.partner_ids {
        put_str(s, "partner_ids")?;
        put_header(s, header(0x90, 15, 0xdc, 0xdd, first.len() + then.len())?)?;
        for p in first.iter().chain(then.iter().copied()) {
            put_str(s, p)?;
        }
        fields += 1;
    }
    Ok(fields)
}

fn map_header(first: u8, bytes: &[u8]) -> Option<(usize, usize)> {
    Some(match first {
        0x80..=0x8f => (usize::from(first & 0x0f), 1),
        0xde => (
            usize::from(u16::from_be_bytes([*bytes.get(1)?, *bytes.get(2)?])),
            3,
        ),
        0xdf => {
            let b = bytes.get(1..5)?;
            (u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize, 5)
        }
        _ => return None,
    })
}

/// The number of fields wrp-nostd writes for `base`, read from the map header it starts with:
/// encoding into 3 bytes fails right after the header (a `msg_type` key always follows).
fn base_fields(base: &Message<'_>) -> usize {
    let mut probe = [0u8; 3];
    let _ = base.encode(&mut probe);
    map_header(probe[0], &probe).map_or(0, |(n, _)| n)
}

fn check(base: &Message<'_>, x: &Extras<'_>) -> Result<(), Error> {
    let own = x.metadata.map_or(0, |(own, _)| own.len());
    if own.max(base.metadata.len()) > MAX_METADATA_ENTRIES {
        return Err(Error::TooManyMetadataEntries);
    }
    Ok(())
}

/// The exact length [`encode`] writes.
pub(crate) fn encoded_len(base: &Message<'_>, x: &Extras<'_>) -> Result<usize, Error> {
    check(base, x)?;
    let base_len = base.encoded_len().map_err(Error::Encode)?;
    let mut extra = Count(0);
    let added = put_extras(&mut extra, x).map_err(Error::Encode)?;
    let fields = base_fields(base);
    let old = header(0x80, 15, 0xde, 0xdf, fields)
        .map_err(Error::Encode)?
        .1;
    let new = header(0x80, 15, 0xde, 0xdf, fields + added)
        .map_err(Error::Encode)?
        .1;
    Ok(base_len + extra.0 + new - old)
}

/// Encodes `base` and the extras into `out`; returns the length. Too small a buffer gives
/// [`Error::MessageTooLarge`] and leaves nothing useful in `out`.
pub(crate) fn encode(base: &Message<'_>, x: &Extras<'_>, out: &mut [u8]) -> Result<usize, Error> {
    let total = encoded_len(base, x)?;
    if total > out.len() {
        return Err(Error::MessageTooLarge {
            len: total,
            capacity: out.len(),
        });
    }
    let n = base.encode(out).map_err(Error::Encode)?;
    let (count, old_len) = map_header(out[0], out).ok_or(Error::Encode(EncodeError::TooLong))?;
    let mut extra = Count(0);
    let added = put_extras(&mut extra, x).map_err(Error::Encode)?;
    if added == 0 {
        return Ok(n);
    }
    let (h, new_len) = header(0x80, 15, 0xde, 0xdf, count + added).map_err(Error::Encode)?;
    out.copy_within(old_len..n, new_len);
    out[..new_len].copy_from_slice(&h[..new_len]);
    let mut s = Slice {
        buf: out,
        len: n + new_len - old_len,
    };
    put_extras(&mut s, x).map_err(Error::Encode)?;
    Ok(s.len)
}
