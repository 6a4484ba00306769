//! The client side of RFC 6455 without allocation: the upgrade request and its answer, frame
//! headers, and the reassembly of received messages inside one buffer.
//!
//! Everything here is synchronous and works on byte slices, so the I/O code stays small and
//! these rules are tested on the host without a network.

use core::fmt::{self, Write as _};

use embedded_io_async::Write;

/// The GUID RFC 6455 appends to the key before hashing.
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// The longest header: 2 bytes, a 64-bit length, a mask key.
const MAX_HEADER: usize = 14;
/// The largest control frame payload (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xa;

/// Close codes this client sends.
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
pub const CLOSE_TOO_BIG: u16 = 1009;

/// A `Sec-WebSocket-Key`: base64 of 16 random bytes.
pub struct Key([u8; 24]);

impl Key {
    pub fn new(random: [u8; 16]) -> Self {
        let mut text = [0; 24];
        base64(&random, &mut text);
        Key(text)
    }

    pub fn as_str(&self) -> &str {
        // base64 is ASCII.
        core::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The `Sec-WebSocket-Accept` a server must answer with.
    fn accept(&self) -> [u8; 28] {
        let mut sha = sha1_smol::Sha1::new();
        sha.update(&self.0);
        sha.update(ACCEPT_GUID);
        let mut out = [0; 28];
        base64(&sha.digest().bytes(), &mut out);
        out
    }
}

/// Standard padded base64; `out` is exactly `input.len().div_ceil(3) * 4` long.
fn base64(input: &[u8], out: &mut [u8]) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (chunk, quad) in input.chunks(3).zip(out.chunks_mut(4)) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for (i, c) in quad.iter_mut().enumerate() {
            *c = if i <= chunk.len() {
                ALPHABET[(n >> (18 - 6 * i) & 0x3f) as usize]
            } else {
                b'='
            };
        }
    }
}

/// The upgrade request did not fit the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, defmt::Format)]
pub struct RequestTooLong;

/// `fmt::Write` into a byte slice.
struct Cursor<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl fmt::Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Writes `GET /api/v2/device` for `host:port` with the upgrade headers and then `headers` (the
/// core's, in parodus's order). `Host` carries the port when it is not the scheme's default.
pub fn write_request<'n, 'v>(
    out: &mut [u8],
    host: &str,
    port: u16,
    secure: bool,
    key: &Key,
    headers: impl Iterator<Item = (&'n str, &'v str)>,
) -> Result<usize, RequestTooLong> {
    let mut w = Cursor { buf: out, len: 0 };
    let write = || -> fmt::Result {
        write!(
            w,
            "GET {} HTTP/1.1\r\nHost: ",
            xmidt_client_core::DEVICE_PATH
        )?;
        if host.contains(':') {
            write!(w, "[{host}]")?;
        } else {
            w.write_str(host)?;
        }
        if port != if secure { 443 } else { 80 } {
            write!(w, ":{port}")?;
        }
        write!(
            w,
            "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n",
            key.as_str()
        )?;
        for (name, value) in headers {
            write!(w, "{name}: {value}\r\n")?;
        }
        w.write_str("\r\n")
    };
    write().map_err(|_| RequestTooLong)?;
    Ok(w.len)
}

/// The head of the server's answer to the upgrade request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// 101 with `Upgrade: websocket`, `Connection: Upgrade` and the right accept value.
    pub upgraded: bool,
    pub status: u16,
    /// Where `Location`'s value lies in the buffer (redirects).
    location: Option<(usize, usize)>,
    /// The length of the head; what follows it already belongs to the WebSocket (RFC 6455 lets
    /// the first frames arrive in the same read).
    pub len: usize,
}

impl Head {
    /// The `Location` header of the answer parsed from `buf`.
    pub fn location<'a>(&self, buf: &'a [u8]) -> Option<&'a str> {
        let (start, end) = self.location?;
        core::str::from_utf8(buf.get(start..end)?).ok()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, defmt::Format)]
pub enum HttpError {
    /// Not an HTTP/1.x response.
    Malformed,
    /// 101, but not a valid WebSocket upgrade of this key.
    BadUpgrade,
    /// The headers do not fit the receive buffer.
    TooLarge,
}

/// Parses the answer at the start of `buf`: `Ok(None)` while its head is incomplete (`full`:
/// the buffer cannot take more).
pub fn parse_response(buf: &[u8], key: &Key, full: bool) -> Result<Option<Head>, HttpError> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if full {
            Err(HttpError::TooLarge)
        } else {
            Ok(None)
        };
    };
    let head = core::str::from_utf8(&buf[..end]).map_err(|_| HttpError::Malformed)?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return Err(HttpError::Malformed);
    }
    let status: u16 = code.parse().map_err(|_| HttpError::Malformed)?;
    let (mut location, mut upgrade, mut connection, mut accepted) = (None, false, false, false);
    let expected = key.accept();
    for line in lines {
        let (name, value) = line.split_once(':').ok_or(HttpError::Malformed)?;
        let value = value.trim_matches([' ', '\t']);
        let name = name.trim_end_matches([' ', '\t']);
        if name.eq_ignore_ascii_case("location") {
            // `value` is a slice of `head`, itself the start of `buf`.
            let start = value.as_ptr() as usize - buf.as_ptr() as usize;
            location = Some((start, start + value.len()));
        } else if name.eq_ignore_ascii_case("upgrade") {
            upgrade = value.eq_ignore_ascii_case("websocket");
        } else if name.eq_ignore_ascii_case("connection") {
            connection = value
                .split(',')
                .any(|t| t.trim_matches([' ', '\t']).eq_ignore_ascii_case("upgrade"));
        } else if name.eq_ignore_ascii_case("sec-websocket-accept") {
            accepted = value.as_bytes() == expected;
        }
    }
    let upgraded = status == 101;
    if upgraded && !(upgrade && connection && accepted) {
        return Err(HttpError::BadUpgrade);
    }
    Ok(Some(Head {
        upgraded,
        status,
        location,
        len: end + 4,
    }))
}

/// Why the connection must be closed: the close code to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, defmt::Format)]
pub struct Violation(pub u16);

/// One frame header from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FrameHeader {
    fin: bool,
    opcode: u8,
    len: usize,
    /// Bytes of the header itself.
    size: usize,
}

/// Parses a server frame header; `Ok(None)` when more bytes are needed.
fn parse_header(b: &[u8]) -> Result<Option<FrameHeader>, Violation> {
    let [b0, b1, ..] = *b else {
        return Ok(None);
    };
    let fin = b0 & 0x80 != 0;
    let opcode = b0 & 0x0f;
    // No extension was negotiated, and servers never mask (RFC 6455 §5.1, §5.2).
    if b0 & 0x70 != 0 || b1 & 0x80 != 0 {
        return Err(Violation(CLOSE_PROTOCOL_ERROR));
    }
    let (len, size) = match b1 & 0x7f {
        126 => match b.get(2..4) {
            Some(l) => (u64::from(u16::from_be_bytes([l[0], l[1]])), 4),
            None => return Ok(None),
        },
        127 => match b.get(2..10) {
            Some(l) => {
                let mut be = [0; 8];
                be.copy_from_slice(l);
                (u64::from_be_bytes(be), 10)
            }
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    match opcode {
        OP_CONTINUATION | OP_TEXT | OP_BINARY => {}
        OP_CLOSE | OP_PING | OP_PONG => {
            if !fin || len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(Violation(CLOSE_PROTOCOL_ERROR));
            }
        }
        _ => return Err(Violation(CLOSE_PROTOCOL_ERROR)),
    }
    let len = usize::try_from(len).map_err(|_| Violation(CLOSE_TOO_BIG))?;
    Ok(Some(FrameHeader {
        fin,
        opcode,
        len,
        size,
    }))
}

/// What the server sent, borrowed from the [`Inbox`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// A whole data message (binary or text: parodus decodes both), fragments joined.
    Message(&'a [u8]),
    Ping(&'a [u8]),
    Pong,
    /// A close frame and its status code, if it had one.
    Close(Option<u16>),
}

/// The receive buffer. Raw frames are appended at the end; fragments of a message are joined in
/// place at the front, so a message may use the whole buffer less one frame header.
///
/// Layout: `[0, assembled)` joined payload of an unfinished message, `[assembled, filled)` bytes
/// not yet parsed. `consumed` is what the last returned item occupied, dropped on the next call.
pub struct Inbox<'b> {
    buf: &'b mut [u8],
    assembled: usize,
    filled: usize,
    consumed: (usize, usize),
    in_message: bool,
}

impl<'b> Inbox<'b> {
    pub fn new(buf: &'b mut [u8]) -> Self {
        Inbox {
            buf,
            assembled: 0,
            filled: 0,
            consumed: (0, 0),
            in_message: false,
        }
    }

    /// Keeps `buf[start..end]` as the first received frame bytes (what followed the 101).
    pub fn keep(&mut self, start: usize, end: usize) {
        self.buf.copy_within(start..end, 0);
        self.assembled = 0;
        self.filled = end - start;
        self.consumed = (0, 0);
        self.in_message = false;
    }

    /// Free space to read into.
    pub fn space(&mut self) -> &mut [u8] {
        self.drop_consumed();
        &mut self.buf[self.filled..]
    }

    /// `n` bytes were read into [`Inbox::space`].
    pub fn commit(&mut self, n: usize) {
        self.filled = (self.filled + n).min(self.buf.len());
    }

    fn drop_consumed(&mut self) {
        let (start, end) = self.consumed;
        if end > start {
            self.buf.copy_within(end..self.filled, start);
            self.filled -= end - start;
        }
        self.consumed = (0, 0);
    }

    /// The next complete item, `Ok(None)` when more bytes are needed.
    pub fn next(&mut self) -> Result<Option<Incoming<'_>>, Violation> {
        self.drop_consumed();
        loop {
            let at = self.assembled;
            let Some(h) = parse_header(&self.buf[at..self.filled])? else {
                return self.need_more(at);
            };
            // The frame must fit behind what is already joined, or it never will.
            if h.len > self.buf.len() - at - h.size {
                return Err(Violation(CLOSE_TOO_BIG));
            }
            if self.filled - at < h.size + h.len {
                return Ok(None);
            }
            let payload = at + h.size..at + h.size + h.len;
            match h.opcode {
                OP_PING | OP_PONG | OP_CLOSE => {
                    self.consumed = (at, payload.end);
                    let p = &self.buf[payload];
                    return Ok(Some(match h.opcode {
                        OP_PING => Incoming::Ping(p),
                        OP_PONG => Incoming::Pong,
                        _ => match *p {
                            [] => Incoming::Close(None),
                            [hi, lo, ..] => Incoming::Close(Some(u16::from_be_bytes([hi, lo]))),
                            [_] => return Err(Violation(CLOSE_PROTOCOL_ERROR)),
                        },
                    }));
                }
                op => {
                    // A new message while one is unfinished, or a continuation of nothing.
                    if (op == OP_CONTINUATION) != self.in_message {
                        return Err(Violation(CLOSE_PROTOCOL_ERROR));
                    }
                    // Join: remove the header so the payload follows the assembled part.
                    self.buf.copy_within(payload.start..self.filled, at);
                    self.filled -= h.size;
                    self.assembled += h.len;
                    if h.fin {
                        let len = self.assembled;
                        self.assembled = 0;
                        self.in_message = false;
                        self.consumed = (0, len);
                        return Ok(Some(Incoming::Message(&self.buf[..len])));
                    }
                    self.in_message = true;
                }
            }
        }
    }

    fn need_more(&self, at: usize) -> Result<Option<Incoming<'_>>, Violation> {
        if self.filled == self.buf.len() && at < self.filled {
            // Full, yet not even a whole header past the joined part.
            return Err(Violation(CLOSE_TOO_BIG));
        }
        Ok(None)
    }
}

/// Writes one masked frame (`opcode`, FIN set) and flushes.
pub async fn send<W: Write>(
    w: &mut W,
    opcode: u8,
    payload: &[u8],
    mask: [u8; 4],
) -> Result<(), W::Error> {
    let mut head = [0u8; MAX_HEADER];
    head[0] = 0x80 | opcode;
    let len = payload.len();
    let mut at = if len < 126 {
        head[1] = 0x80 | len as u8;
        2
    } else if let Ok(l) = u16::try_from(len) {
        head[1] = 0x80 | 126;
        head[2..4].copy_from_slice(&l.to_be_bytes());
        4
    } else {
        head[1] = 0x80 | 127;
        head[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    head[at..at + 4].copy_from_slice(&mask);
    at += 4;
    w.write_all(&head[..at]).await?;
    // Masking needs a copy; a small one on the stack, chunk by chunk.
    let mut chunk = [0u8; 128];
    for (i, part) in payload.chunks(chunk.len()).enumerate() {
        let offset = i * chunk.len();
        for (j, (out, b)) in chunk.iter_mut().zip(part).enumerate() {
            *out = b ^ mask[(offset + j) % 4];
        }
        w.write_all(&chunk[..part.len()]).await?;
    }
    w.flush().await
}

/// The payload of a close frame: the code, then as much of `reason` as fits 125 bytes.
pub fn close_payload(code: u16, reason: &str, out: &mut [u8; MAX_CONTROL_PAYLOAD]) -> usize {
    out[..2].copy_from_slice(&code.to_be_bytes());
    let mut n = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    // Never cut a UTF-8 character.
    while !reason.is_char_boundary(n) {
        n -= 1;
    }
    out[2..2 + n].copy_from_slice(&reason.as_bytes()[..n]);
    2 + n
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    #[test]
    fn rfc6455_accept_example() {
        // RFC 6455 §1.3: the key of 16 bytes "the sample nonce" and its accept value.
        let key = Key::new(*b"the sample nonce");
        assert_eq!(key.as_str(), "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(&key.accept(), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn base64_padding() {
        let mut out = [0; 4];
        base64(b"a", &mut out);
        assert_eq!(&out, b"YQ==");
        base64(b"ab", &mut out);
        assert_eq!(&out, b"YWI=");
        base64(b"abc", &mut out);
        assert_eq!(&out, b"YWJj");
    }

    #[test]
    fn request_has_host_port_and_core_headers() {
        let key = Key::new([0; 16]);
        let mut out = [0; 512];
        let headers = [("X-WebPA-Device-Name", "mac:525400123456")];
        let n = write_request(&mut out, "10.0.2.2", 6400, false, &key, headers.into_iter())
            .expect("fits");
        let text = core::str::from_utf8(&out[..n]).unwrap();
        assert_eq!(
            text,
            "GET /api/v2/device HTTP/1.1\r\nHost: 10.0.2.2:6400\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n\
             Sec-WebSocket-Version: 13\r\nX-WebPA-Device-Name: mac:525400123456\r\n\r\n"
        );
        let n = write_request(&mut out, "::1", 443, true, &key, [].into_iter()).expect("fits");
        assert!(core::str::from_utf8(&out[..n])
            .unwrap()
            .contains("\r\nHost: [::1]\r\n"));
        let mut small = [0; 40];
        assert_eq!(
            write_request(&mut small, "h", 80, false, &key, [].into_iter()),
            Err(RequestTooLong)
        );
    }

    fn upgrade_answer(key: &Key) -> Vec<u8> {
        let accept = key.accept();
        let mut r = Vec::new();
        r.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Accept: ");
        r.extend_from_slice(&accept);
        r.extend_from_slice(b"\r\n\r\n");
        r
    }

    #[test]
    fn upgrade_answer_and_following_bytes() {
        let key = Key::new([7; 16]);
        let mut answer = upgrade_answer(&key);
        let head = answer.len();
        answer.extend_from_slice(&[0x82, 0x01, 0xaa]);
        let parsed = parse_response(&answer, &key, false).unwrap().unwrap();
        assert!(parsed.upgraded);
        assert_eq!(
            (parsed.status, parsed.len, parsed.location(&answer)),
            (101, head, None)
        );
        assert_eq!(parse_response(&answer[..head - 1], &key, false), Ok(None));
        assert_eq!(
            parse_response(&answer[..head - 1], &key, true),
            Err(HttpError::TooLarge)
        );
        // Someone else's key.
        assert_eq!(
            parse_response(&answer, &Key::new([8; 16]), false),
            Err(HttpError::BadUpgrade)
        );
    }

    #[test]
    fn redirects_and_failures() {
        let key = Key::new([0; 16]);
        let r = b"HTTP/1.1 307 Temporary Redirect\r\nlocation:  https://10.0.2.2:6200/api/v2/device \r\ncontent-length: 0\r\n\r\n";
        let parsed = parse_response(r, &key, false).unwrap().unwrap();
        assert!(!parsed.upgraded);
        assert_eq!(parsed.status, 307);
        assert_eq!(parsed.len, r.len());
        assert_eq!(
            parsed.location(r),
            Some("https://10.0.2.2:6200/api/v2/device")
        );
        let r = b"HTTP/1.0 503 Service Unavailable\r\n\r\n";
        let parsed = parse_response(r, &key, false).unwrap().unwrap();
        assert_eq!(
            (parsed.upgraded, parsed.status, parsed.location(r)),
            (false, 503, None)
        );
        for bad in [
            &b"SSH-2.0-OpenSSH\r\n\r\n"[..],
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 20x OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: \xff\r\n\r\n",
        ] {
            assert_eq!(
                parse_response(bad, &key, false),
                Err(HttpError::Malformed),
                "{bad:?}"
            );
        }
    }

    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = std::vec![(if fin { 0x80 } else { 0 }) | opcode];
        match payload.len() {
            n if n < 126 => f.push(n as u8),
            n if n <= 0xffff => {
                f.push(126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(payload);
        f
    }

    fn feed(inbox: &mut Inbox<'_>, bytes: &[u8]) {
        let space = inbox.space();
        space[..bytes.len()].copy_from_slice(bytes);
        inbox.commit(bytes.len());
    }

    #[test]
    fn messages_fragments_and_interleaved_control_frames() {
        let mut buf = [0u8; 64];
        let mut inbox = Inbox::new(&mut buf);
        let mut wire = frame(true, OP_BINARY, b"one");
        wire.extend(frame(false, OP_TEXT, b"tw"));
        wire.extend(frame(true, OP_PING, b"p"));
        wire.extend(frame(false, OP_CONTINUATION, b"o-"));
        wire.extend(frame(true, OP_CONTINUATION, b"parts"));
        wire.extend(frame(true, OP_PONG, b""));
        wire.extend(frame(true, OP_CLOSE, &1001u16.to_be_bytes()));
        // Byte by byte: every split point of every frame.
        let mut got = Vec::new();
        for b in &wire {
            feed(&mut inbox, &[*b]);
            while let Some(item) = inbox.next().expect("valid") {
                got.push(std::format!("{item:?}"));
            }
        }
        assert_eq!(
            got,
            [
                "Message([111, 110, 101])",
                "Ping([112])",
                "Message([116, 119, 111, 45, 112, 97, 114, 116, 115])",
                "Pong",
                "Close(Some(1001))"
            ]
        );
    }

    #[test]
    fn a_message_may_fill_the_buffer_less_one_header() {
        let mut buf = [0u8; 300];
        let mut inbox = Inbox::new(&mut buf);
        let payload: Vec<u8> = (0..296u16).map(|i| i as u8).collect();
        feed(&mut inbox, &frame(true, OP_BINARY, &payload));
        assert_eq!(inbox.next(), Ok(Some(Incoming::Message(&payload[..]))));
        assert_eq!(inbox.next(), Ok(None));
        // The space is whole again.
        assert_eq!(inbox.space().len(), 300);
    }

    #[test]
    fn violations() {
        let too_big = [0x82, 100]; // 100 bytes cannot fit a 64-byte buffer
        let cases: [(&[u8], u16); 7] = [
            (&[0x82, 0x81, 1, 2, 3, 4, 0], CLOSE_PROTOCOL_ERROR), // masked by the server
            (&[0xc2, 0x00], CLOSE_PROTOCOL_ERROR),                // RSV1 without an extension
            (&[0x83, 0x00], CLOSE_PROTOCOL_ERROR),                // reserved opcode
            (&[0x09, 0x00], CLOSE_PROTOCOL_ERROR),                // fragmented ping
            (&[0x80, 0x00], CLOSE_PROTOCOL_ERROR),                // continuation of nothing
            (&[0x88, 0x01, 0x03], CLOSE_PROTOCOL_ERROR),          // one-byte close payload
            (&too_big, CLOSE_TOO_BIG),
        ];
        for (wire, code) in cases {
            let mut buf = [0u8; 64];
            let mut inbox = Inbox::new(&mut buf);
            feed(&mut inbox, wire);
            assert_eq!(inbox.next(), Err(Violation(code)), "{wire:02x?}");
        }
        // A second message starting inside a fragmented one.
        let mut buf = [0u8; 64];
        let mut inbox = Inbox::new(&mut buf);
        feed(&mut inbox, &frame(false, OP_BINARY, b"a"));
        feed(&mut inbox, &frame(true, OP_BINARY, b"b"));
        assert_eq!(inbox.next(), Err(Violation(CLOSE_PROTOCOL_ERROR)));
        // A length beyond any buffer (64-bit).
        let mut buf = [0u8; 64];
        let mut inbox = Inbox::new(&mut buf);
        feed(&mut inbox, &[0x82, 127, 0xff, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(inbox.next(), Err(Violation(CLOSE_TOO_BIG)));
    }

    #[test]
    fn kept_bytes_are_the_first_frames() {
        let mut buf = [0u8; 64];
        buf[..5].copy_from_slice(b"HEAD:");
        buf[5..8].copy_from_slice(&[0x82, 0x01, 0x2a]);
        let mut inbox = Inbox::new(&mut buf);
        inbox.keep(5, 8);
        assert_eq!(inbox.next(), Ok(Some(Incoming::Message(&[0x2a]))));
    }

    /// Collects what a frame writer sends.
    struct Sink(Vec<u8>);

    impl embedded_io::ErrorType for Sink {
        type Error = core::convert::Infallible;
    }

    impl Write for Sink {
        async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
            self.0.extend_from_slice(buf);
            Ok(buf.len())
        }

        async fn flush(&mut self) -> Result<(), Self::Error> {
            Ok(())
        }
    }

    fn block_on<F: core::future::Future>(f: F) -> F::Output {
        let mut f = core::pin::pin!(f);
        let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
        loop {
            if let core::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    #[test]
    fn sent_frames_are_masked_with_the_right_length_form() {
        let mask = [1, 2, 3, 4];
        for len in [0usize, 125, 126, 300, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut sink = Sink(Vec::new());
            block_on(send(&mut sink, OP_BINARY, &payload, mask)).unwrap();
            let wire = sink.0;
            assert_eq!(wire[0], 0x82);
            assert_eq!(wire[1] & 0x80, 0x80, "client frames are masked");
            let (len_field, at) = match wire[1] & 0x7f {
                126 => (u16::from_be_bytes([wire[2], wire[3]]) as usize, 4),
                127 => (
                    u64::from_be_bytes(wire[2..10].try_into().unwrap()) as usize,
                    10,
                ),
                n => (n as usize, 2),
            };
            assert_eq!(len_field, len);
            assert_eq!(&wire[at..at + 4], &mask);
            let unmasked: Vec<u8> = wire[at + 4..]
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4])
                .collect();
            assert_eq!(unmasked, payload);
        }
    }

    #[test]
    fn close_payload_keeps_whole_characters() {
        let mut out = [0; MAX_CONTROL_PAYLOAD];
        let n = close_payload(1000, "parodus_stopping", &mut out);
        assert_eq!(&out[..n], b"\x03\xe8parodus_stopping");
        let long = "é".repeat(100);
        let n = close_payload(1000, &long, &mut out);
        assert_eq!(n, 2 + 122);
        assert!(core::str::from_utf8(&out[2..n]).is_ok());
    }
}
