//! The little JSON the client needs, without an allocator: compact writing with cJSON's escapes
//! (convey, CRUD answers), and reading one string field from a flat object (cloud-disconnect).

use core::fmt::{self, Write};

/// Writes `s` as a JSON string, escaping as cJSON does: `"` `\` and the control characters.
pub(crate) fn write_str(w: &mut impl Write, s: &str) -> fmt::Result {
    w.write_char('"')?;
    let mut plain_from = 0;
    for (i, c) in s.char_indices() {
        let escape = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\u{8}' => "\\b",
            '\u{c}' => "\\f",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if u32::from(c) < 0x20 => "",
            _ => continue,
        };
        w.write_str(&s[plain_from..i])?;
        if escape.is_empty() {
            write!(w, "\\u{:04x}", u32::from(c))?;
        } else {
            w.write_str(escape)?;
        }
        plain_from = i + c.len_utf8();
    }
    w.write_str(&s[plain_from..])?;
    w.write_char('"')
}

/// `{"key":"value"}`.
pub(crate) fn write_object_str(w: &mut impl Write, key: &str, value: &str) -> fmt::Result {
    w.write_char('{')?;
    write_str(w, key)?;
    w.write_char(':')?;
    write_str(w, value)?;
    w.write_char('}')
}

/// `{"key":number}`.
pub(crate) fn write_object_num(w: &mut impl Write, key: &str, value: u64) -> fmt::Result {
    w.write_char('{')?;
    write_str(w, key)?;
    write!(w, ":{value}}}")
}

/// A `fmt::Write` into a byte slice that fails, rather than truncates, when the slice is full.
pub(crate) struct SliceWriter<'b> {
    pub buf: &'b mut [u8],
    pub len: usize,
}

impl Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        self.buf
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The input is not a flat JSON object of scalar values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotFlatObject;

/// The value of `key` in a flat JSON object (string, number, boolean or null values only), when
/// it is a string without escapes. `Ok(None)`: the key is absent, or its value is not such a
/// string. Nesting, trailing bytes and malformed input are errors.
pub(crate) fn flat_str_field<'a>(
    json: &'a [u8],
    key: &str,
) -> Result<Option<&'a str>, NotFlatObject> {
    let mut p = Parser { s: json, at: 0 };
    let mut found = None;
    p.expect(b'{')?;
    if !p.eat(b'}') {
        loop {
            let k = p.string()?;
            p.expect(b':')?;
            let v = p.scalar()?;
            if k == Some(key) {
                found = v;
            }
            if p.eat(b'}') {
                break;
            }
            p.expect(b',')?;
        }
    }
    p.skip_ws();
    if p.at != json.len() {
        return Err(NotFlatObject);
    }
    Ok(found)
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl<'a> Parser<'a> {
    fn skip_ws(&mut self) {
        while matches!(self.s.get(self.at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        self.skip_ws();
        if self.s.get(self.at) == Some(&b) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, b: u8) -> Result<(), NotFlatObject> {
        self.eat(b).then_some(()).ok_or(NotFlatObject)
    }

    /// A string; `Some` when it has no escapes (only those can be compared or returned).
    fn string(&mut self) -> Result<Option<&'a str>, NotFlatObject> {
        self.expect(b'"')?;
        let start = self.at;
        let mut escaped = false;
        loop {
            match self.s.get(self.at).copied().ok_or(NotFlatObject)? {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    self.at += 2;
                }
                c if c < 0x20 => return Err(NotFlatObject),
                _ => self.at += 1,
            }
        }
        let text = self.s.get(start..self.at).ok_or(NotFlatObject)?;
        self.at += 1;
        let text = core::str::from_utf8(text).map_err(|_| NotFlatObject)?;
        Ok((!escaped).then_some(text))
    }

    /// A scalar value: `Some` only for a plain string.
    fn scalar(&mut self) -> Result<Option<&'a str>, NotFlatObject> {
        self.skip_ws();
        match self.s.get(self.at).copied().ok_or(NotFlatObject)? {
            b'"' => self.string(),
            b'-' | b'0'..=b'9' => {
                while matches!(
                    self.s.get(self.at),
                    Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                ) {
                    self.at += 1;
                }
                Ok(None)
            }
            _ => {
                for word in [&b"true"[..], b"false", b"null"] {
                    if self.s[self.at..].starts_with(word) {
                        self.at += word.len();
                        return Ok(None);
                    }
                }
                Err(NotFlatObject)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(f: impl FnOnce(&mut SliceWriter<'_>) -> fmt::Result) -> heapless::String<128> {
        let mut buf = [0u8; 128];
        let mut w = SliceWriter {
            buf: &mut buf,
            len: 0,
        };
        f(&mut w).expect("fits");
        let len = w.len;
        let mut s = heapless::String::new();
        s.push_str(core::str::from_utf8(&buf[..len]).expect("utf-8"))
            .expect("fits");
        s
    }

    #[test]
    fn escapes_like_cjson() {
        let s = written(|w| write_str(w, "a\"b\\c\nd\u{1}é\t"));
        assert_eq!(s, r#""a\"b\\c\nd\u0001é\t""#);
        assert_eq!(
            written(|w| write_object_num(w, "boot-time", 1_700_000_000)),
            r#"{"boot-time":1700000000}"#
        );
        assert_eq!(
            written(|w| write_object_str(w, "cloud-status", "online")),
            r#"{"cloud-status":"online"}"#
        );
    }

    #[test]
    fn slice_writer_refuses_to_truncate() {
        let mut buf = [0u8; 4];
        let mut w = SliceWriter {
            buf: &mut buf,
            len: 0,
        };
        assert!(w.write_str("abc").is_ok());
        assert!(w.write_str("de").is_err());
        assert_eq!(w.len, 3);
    }

    #[test]
    fn reads_one_field_of_a_flat_object() {
        fn get(j: &str) -> Result<Option<&str>, NotFlatObject> {
            flat_str_field(j.as_bytes(), "disconnection-reason")
        }
        assert_eq!(
            get(r#"{"disconnection-reason":"maint 1"}"#),
            Ok(Some("maint 1"))
        );
        assert_eq!(
            get(" { \"a\" : 1 , \"b\":true,\"c\":null, \"disconnection-reason\" : \"x\" } "),
            Ok(Some("x"))
        );
        assert_eq!(get(r#"{"other":"x"}"#), Ok(None));
        assert_eq!(get(r#"{}"#), Ok(None));
        assert_eq!(get(r#"{"disconnection-reason":5}"#), Ok(None));
        assert_eq!(get(r#"{"disconnection-reason":"a\"b"}"#), Ok(None));
        for bad in [
            "",
            "{",
            r#"{"a":{"b":1}}"#,
            r#"{"a":[1]}"#,
            r#"{"a":"x"} x"#,
            r#"{"a" "x"}"#,
            r#"{"a":"x",}"#,
            r#"{"a":"unterminated}"#,
            r#"{"a":"\"#,
            "{\"a\":\"\u{1}\"}",
            r#"{"a":tru}"#,
        ] {
            assert_eq!(get(bad), Err(NotFlatObject), "{bad:?}");
        }
    }
}
