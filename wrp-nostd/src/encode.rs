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

impl Message<'_> {
    /// The fields to write, in wire order: msg_type first, then wrp-go's struct order, then the
    /// wrp-c extras. Absent fields are `None`. `qos` is always written, as wrp-go v5 does.
    fn fields(&self) -> [(&'static str, Option<Field<'_>>); 20] {
        fn s(v: &str) -> Option<Field<'_>> {
            (!v.is_empty()).then_some(Field::Str(v))
        }
        [
            ("msg_type", Some(Field::Int(self.msg_type.as_i64()))),
            ("source", s(self.source)),
            ("dest", s(self.dest)),
            ("transaction_uuid", s(self.transaction_uuid)),
            ("content_type", s(self.content_type)),
            ("accept", s(self.accept)),
            ("status", self.status.map(Field::Int)),
            ("rdr", self.rdr.map(Field::Int)),
            (
                "headers",
                (!self.headers.is_empty()).then_some(Field::List(self.headers)),
            ),
            (
                "metadata",
                (!self.metadata.is_empty()).then_some(Field::Map(self.metadata)),
            ),
            ("path", s(self.path)),
            (
                "payload",
                (!self.payload.is_empty()).then_some(Field::Bin(self.payload)),
            ),
            ("service_name", s(self.service_name)),
            ("url", s(self.url)),
            (
                "partner_ids",
                (!self.partner_ids.is_empty()).then_some(Field::List(self.partner_ids)),
            ),
            ("session_id", s(self.session_id)),
            ("qos", Some(Field::Int(self.qos))),
            ("msg_id", s(self.msg_id)),
            (
                "spans",
                (!self.spans.is_empty()).then_some(Field::Spans(self.spans)),
            ),
            (
                "include_spans",
                self.include_spans.then_some(Field::Bool(true)),
            ),
        ]
    }

    fn write_to<S: Sink>(&self, w: &mut Writer<S>) -> Result<(), EncodeError> {
        let fields = self.fields();
        w.map(fields.iter().filter(|(_, f)| f.is_some()).count())?;
        for (key, field) in fields {
            let Some(field) = field else { continue };
            w.str(key)?;
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
        }
        Ok(())
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
