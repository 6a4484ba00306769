//! MessagePack → [`Message`], borrowing from the input.

use crate::message::{read_span_field, Message, MessageType, Metadata, Spans, StrList};
use crate::msgpack::{utf8, Reader, MAX_DEPTH};
use crate::{DecodeError, ValueKind};

impl<'a> Message<'a> {
    /// Decodes one message that fills `bytes` exactly.
    ///
    /// Strings, the payload and the lists borrow from `bytes`; nothing is copied or allocated.
    /// Every string is checked for UTF-8 here, so the lazy lists never fail later. Unknown keys
    /// are skipped at any depth, any msgpack integer/string/map/array width is accepted, the
    /// payload may be binary or a string, and nil means absent. `msg_type` must be 2..=11; the
    /// per-type field rules are checked separately by [`crate::validate`].
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let (message, used) = Self::decode_prefix(bytes)?;
        if used == bytes.len() {
            Ok(message)
        } else {
            Err(DecodeError::TrailingBytes { at: used })
        }
    }

    /// Decodes the message at the start of `bytes`, returning it and how many bytes it took.
    #[inline]
    pub fn decode_prefix(bytes: &'a [u8]) -> Result<(Self, usize), DecodeError> {
        let mut r = Reader::new(bytes);
        if r.peek_kind()? != ValueKind::Map {
            return Err(DecodeError::NotAMap);
        }
        let mut m = Message::new(MessageType::Unknown);
        let mut msg_type = None;
        for _ in 0..r.read_map_len()? {
            if !r.next_is_str() {
                // A key WRP cannot have: skip the pair.
                r.skip(MAX_DEPTH)?;
                r.skip(MAX_DEPTH)?;
                continue;
            }
            // Compared as bytes: a field's name is ASCII, so only a key that names no field needs
            // the UTF-8 check (invalid UTF-8 stays an error wherever it is).
            let key_at = r.position();
            let key = r.read_str_bytes()?;
            if r.eat_nil() {
                if key == b"msg_type" {
                    msg_type = None;
                }
                utf8(key_at, key)?;
                continue;
            }
            match key {
                b"msg_type" => {
                    let t = r.read_int()?;
                    msg_type =
                        Some(MessageType::from_i64(t).ok_or(DecodeError::UnknownMessageType(t))?);
                }
                b"source" => m.source = r.read_str()?,
                b"dest" => m.dest = r.read_str()?,
                b"transaction_uuid" => m.transaction_uuid = r.read_str()?,
                b"content_type" => m.content_type = r.read_str()?,
                b"accept" => m.accept = r.read_str()?,
                b"status" => m.status = Some(r.read_int()?),
                b"rdr" => m.rdr = Some(r.read_int()?),
                b"headers" => m.headers = read_str_list(&mut r)?,
                b"metadata" => m.metadata = read_metadata(&mut r)?,
                b"path" => m.path = r.read_str()?,
                b"payload" => m.payload = r.read_bytes()?,
                b"service_name" => m.service_name = r.read_str()?,
                b"url" => m.url = r.read_str()?,
                b"partner_ids" => m.partner_ids = read_str_list(&mut r)?,
                b"session_id" => m.session_id = r.read_str()?,
                b"qos" => m.qos = r.read_int()?,
                b"msg_id" => m.msg_id = r.read_str()?,
                b"spans" => m.spans = read_spans(&mut r)?,
                b"include_spans" => m.include_spans = r.read_bool()?,
                _ => {
                    utf8(key_at, key)?;
                    r.skip(MAX_DEPTH)?;
                }
            }
        }
        m.msg_type = msg_type.ok_or(DecodeError::MissingMessageType)?;
        Ok((m, r.position()))
    }
}

fn read_str_list<'a>(r: &mut Reader<'a>) -> Result<StrList<'a>, DecodeError> {
    let len = r.read_array_len()?;
    let start = r.position();
    for _ in 0..len {
        r.read_str()?;
    }
    Ok(StrList::from_wire(r.since(start), len))
}

fn read_metadata<'a>(r: &mut Reader<'a>) -> Result<Metadata<'a>, DecodeError> {
    let len = r.read_map_len()?;
    let start = r.position();
    for _ in 0..len {
        r.read_str()?;
        if !r.eat_nil() {
            r.read_str()?;
        }
    }
    Ok(Metadata::from_wire(r.since(start), len))
}

fn read_spans<'a>(r: &mut Reader<'a>) -> Result<Spans<'a>, DecodeError> {
    let len = r.read_array_len()?;
    let start = r.position();
    for _ in 0..len {
        for _ in 0..r.read_array_len()? {
            read_span_field(r)?;
        }
    }
    Ok(Spans::from_wire(r.since(start), len))
}
