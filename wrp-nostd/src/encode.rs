//! [`Message`] → MessagePack, into a caller's buffer.

use crate::message::{Message, Metadata, SpanField, Spans, StrList};
use crate::msgpack::{CountSink, Sink, SliceSink, Writer};
use crate::EncodeError;

/// One map entry to write. Listing the present fields once keeps the map header's count and
/// the entries written in agreement.
enum Field<'m> {
    Str(&'m str),
    Int(i64),
    Bin(&'m [u8]),
    Bool(bool),
    List(StrList<'m>),
    Map(Metadata<'m>),
    Spans(Spans<'m>),
}

/// A map key as msgpack, built at compile time: the fixstr marker (0xa0 | length), then the
/// bytes. Writing a key is then one copy.
macro_rules! fixstr {
    ($key:literal) => {{
        const KEY: &[u8] = $key.as_bytes();
        const ENCODED: [u8; KEY.len() + 1] = {
            assert!(KEY.len() < 32, "a fixstr holds at most 31 bytes");
            let mut out = [0xa0 | KEY.len() as u8; KEY.len() + 1];
            let mut i = 0;
            while i < KEY.len() {
                out[i + 1] = KEY[i];
                i += 1;
            }
            out
        };
        &ENCODED
    }};
}

impl<'m> Message<'m> {
    /// Calls `f` with each present field, in wire order: msg_type first, then wrp-go's struct
    /// order, then the wrp-c extras. `qos` is always written, as wrp-go v5 does. Listing the
    /// fields once keeps the map header's count and the entries written in agreement; a visitor
    /// rather than an array, so the counting pass compiles down to the presence checks.
    #[inline]
    fn for_each_field(
        &self,
        mut f: impl FnMut(&'static [u8], Field<'m>) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        let mut emit = |key, field: Option<Field<'m>>| field.map_or(Ok(()), |v| f(key, v));
        let s = |v: &'m str| (!v.is_empty()).then_some(Field::Str(v));
        emit(
            fixstr!("msg_type"),
            Some(Field::Int(self.msg_type.as_i64())),
        )?;
        emit(fixstr!("source"), s(self.source))?;
        emit(fixstr!("dest"), s(self.dest))?;
        emit(fixstr!("transaction_uuid"), s(self.transaction_uuid))?;
        emit(fixstr!("content_type"), s(self.content_type))?;
        emit(fixstr!("accept"), s(self.accept))?;
        emit(fixstr!("status"), self.status.map(Field::Int))?;
        emit(fixstr!("rdr"), self.rdr.map(Field::Int))?;
        emit(
            fixstr!("headers"),
            (!self.headers.is_empty()).then_some(Field::List(self.headers)),
        )?;
        emit(
            fixstr!("metadata"),
            (!self.metadata.is_empty()).then_some(Field::Map(self.metadata)),
        )?;
        emit(fixstr!("path"), s(self.path))?;
        emit(
            fixstr!("payload"),
            (!self.payload.is_empty()).then_some(Field::Bin(self.payload)),
        )?;
        emit(fixstr!("service_name"), s(self.service_name))?;
        emit(fixstr!("url"), s(self.url))?;
        emit(
            fixstr!("partner_ids"),
            (!self.partner_ids.is_empty()).then_some(Field::List(self.partner_ids)),
        )?;
        emit(fixstr!("session_id"), s(self.session_id))?;
        emit(fixstr!("qos"), Some(Field::Int(self.qos)))?;
        emit(fixstr!("msg_id"), s(self.msg_id))?;
        emit(
            fixstr!("spans"),
            (!self.spans.is_empty()).then_some(Field::Spans(self.spans)),
        )?;
        emit(
            fixstr!("include_spans"),
            self.include_spans.then_some(Field::Bool(true)),
        )
    }

    fn write_to<S: Sink>(&self, w: &mut Writer<S>) -> Result<(), EncodeError> {
        let mut count = 0;
        self.for_each_field(|_, _| {
            count += 1;
            Ok(())
        })?;
        w.map(count)?;
        self.for_each_field(|key, field| {
            w.raw(key)?;
            match field {
                Field::Str(v) => w.str(v)?,
                Field::Int(v) => w.int(v)?,
                Field::Bin(v) => w.bin(v)?,
                Field::Bool(v) => w.bool(v)?,
                Field::List(list) => {
                    w.array(list.len())?;
                    for v in list {
                        w.str(v)?;
                    }
                }
                Field::Map(map) => {
                    w.map(map.len())?;
                    for (k, v) in map {
                        w.str(k)?;
                        w.str(v)?;
                    }
                }
                Field::Spans(spans) => {
                    w.array(spans.len())?;
                    for span in spans.iter() {
                        w.array(span.len())?;
                        for f in span.fields() {
                            match f {
                                SpanField::Str(v) => w.str(v)?,
                                SpanField::Int(v) => w.int(v)?,
                            }
                        }
                    }
                }
            }
            Ok(())
        })
    }

    /// The exact number of bytes [`Message::encode`] writes.
    pub fn encoded_len(&self) -> Result<usize, EncodeError> {
        let mut w = Writer(CountSink(0));
        self.write_to(&mut w)?;
        Ok(w.0 .0)
    }

    /// Encodes into `buf`, returning the number of bytes written. Nothing is allocated; a buffer
    /// shorter than [`Message::encoded_len`] gives [`EncodeError::BufferTooSmall`].
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut w = Writer(SliceSink { buf, len: 0 });
        self.write_to(&mut w)?;
        Ok(w.0.len)
    }

    /// Encodes into a new vector of exactly the encoded length.
    #[cfg(feature = "alloc")]
    pub fn to_vec(&self) -> Result<alloc::vec::Vec<u8>, EncodeError> {
        let mut out = alloc::vec![0u8; self.encoded_len()?];
        self.encode(&mut out)?;
        Ok(out)
    }
}
