//! The WRP message as a borrowed view, and its lazily read lists.

use core::fmt;

use crate::msgpack::Reader;

/// WRP message types. 0 and 1 are deprecated and never valid, so they have no variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum MessageType {
    Authorization = 2,
    SimpleRequestResponse = 3,
    SimpleEvent = 4,
    Create = 5,
    Retrieve = 6,
    Update = 7,
    Delete = 8,
    ServiceRegistration = 9,
    ServiceAlive = 10,
    Unknown = 11,
}

impl MessageType {
    /// Every type, in numeric order.
    pub const ALL: [MessageType; 10] = [
        MessageType::Authorization,
        MessageType::SimpleRequestResponse,
        MessageType::SimpleEvent,
        MessageType::Create,
        MessageType::Retrieve,
        MessageType::Update,
        MessageType::Delete,
        MessageType::ServiceRegistration,
        MessageType::ServiceAlive,
        MessageType::Unknown,
    ];

    /// The type with this wire number, if there is one.
    pub fn from_i64(v: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|t| *t as i64 == v)
    }

    pub fn as_i64(self) -> i64 {
        self as i64
    }

    /// wrp-go's friendly name, as written in the `X-Xmidt-Message-Type` header.
    pub fn friendly_name(self) -> &'static str {
        match self {
            MessageType::Authorization => "Authorization",
            MessageType::SimpleRequestResponse => "SimpleRequestResponse",
            MessageType::SimpleEvent => "SimpleEvent",
            MessageType::Create => "Create",
            MessageType::Retrieve => "Retrieve",
            MessageType::Update => "Update",
            MessageType::Delete => "Delete",
            MessageType::ServiceRegistration => "ServiceRegistration",
            MessageType::ServiceAlive => "ServiceAlive",
            MessageType::Unknown => "Unknown",
        }
    }

    /// Parses a header value as wrp-go does: the decimal number, the friendly name, the Go
    /// constant name (friendly name + "MessageType"), or the alias "event".
    pub fn parse(s: &str) -> Option<Self> {
        if s == "event" {
            return Some(MessageType::SimpleEvent);
        }
        if let Ok(n) = s.parse::<i64>() {
            // wrp-go registers only 3..=11 by number, and looks the exact text up in a map, so
            // "+3" and "03" are not numbers it knows.
            if s.starts_with(['+', '0']) {
                return None;
            }
            return Self::from_i64(n).filter(|t| *t != MessageType::Authorization);
        }
        let name = s.strip_suffix("MessageType").unwrap_or(s);
        Self::ALL.into_iter().find(|t| t.friendly_name() == name)
    }

    /// Whether messages of this type carry a transaction_uuid (request/response and CRUD).
    pub fn requires_transaction(self) -> bool {
        matches!(
            self,
            MessageType::SimpleRequestResponse
                | MessageType::Create
                | MessageType::Retrieve
                | MessageType::Update
                | MessageType::Delete
        )
    }

    /// Whether this type is routed by source and dest.
    pub fn is_routable(self) -> bool {
        self.requires_transaction() || self == MessageType::SimpleEvent
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.friendly_name())
    }
}

/// The QoS level a `qos` value falls in (WRP spec: 0-24 low, 25-49 medium, 50-74 high,
/// 75-99 critical).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QosLevel {
    Low,
    Medium,
    High,
    Critical,
}

impl QosLevel {
    /// The level of `qos`, or `None` outside 0..=99.
    pub fn from_value(qos: i64) -> Option<Self> {
        Some(match qos {
            0..=24 => QosLevel::Low,
            25..=49 => QosLevel::Medium,
            50..=74 => QosLevel::High,
            75..=99 => QosLevel::Critical,
            _ => return None,
        })
    }

    /// Medium and above: the agent keeps the message until the cloud acknowledges it.
    pub fn needs_ack(self) -> bool {
        self >= QosLevel::Medium
    }
}

/// A list of strings (`headers`, `partner_ids`): read lazily from the wire, or given by the caller.
#[derive(Clone, Copy)]
pub struct StrList<'a>(StrListRepr<'a>);

#[derive(Clone, Copy)]
enum StrListRepr<'a> {
    /// Array elements as msgpack strings, already checked by the decoder.
    Wire {
        bytes: &'a [u8],
        len: usize,
    },
    Strs(&'a [&'a str]),
    #[cfg(feature = "alloc")]
    Strings(&'a [alloc::string::String]),
}

impl<'a> StrList<'a> {
    pub const EMPTY: StrList<'static> = StrList(StrListRepr::Strs(&[]));

    pub fn from_strs(strs: &'a [&'a str]) -> Self {
        StrList(StrListRepr::Strs(strs))
    }

    #[cfg(feature = "alloc")]
    pub fn from_strings(strings: &'a [alloc::string::String]) -> Self {
        StrList(StrListRepr::Strings(strings))
    }

    pub(crate) fn from_wire(bytes: &'a [u8], len: usize) -> Self {
        StrList(StrListRepr::Wire { bytes, len })
    }

    pub fn len(&self) -> usize {
        match self.0 {
            StrListRepr::Wire { len, .. } => len,
            StrListRepr::Strs(s) => s.len(),
            #[cfg(feature = "alloc")]
            StrListRepr::Strings(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(&self) -> StrIter<'a> {
        StrIter(match self.0 {
            StrListRepr::Wire { bytes, len } => StrIterRepr::Wire(Reader::new(bytes), len),
            StrListRepr::Strs(s) => StrIterRepr::Strs(s.iter()),
            #[cfg(feature = "alloc")]
            StrListRepr::Strings(s) => StrIterRepr::Strings(s.iter()),
        })
    }
}

impl<'a> IntoIterator for StrList<'a> {
    type Item = &'a str;
    type IntoIter = StrIter<'a>;
    fn into_iter(self) -> StrIter<'a> {
        self.iter()
    }
}

impl PartialEq for StrList<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl fmt::Debug for StrList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Iterator over a [`StrList`].
pub struct StrIter<'a>(StrIterRepr<'a>);

enum StrIterRepr<'a> {
    Wire(Reader<'a>, usize),
    Strs(core::slice::Iter<'a, &'a str>),
    #[cfg(feature = "alloc")]
    Strings(core::slice::Iter<'a, alloc::string::String>),
}

impl<'a> Iterator for StrIter<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        match &mut self.0 {
            StrIterRepr::Wire(r, left) => {
                *left = left.checked_sub(1)?;
                // The decoder checked these bytes; a failure here would end the list early.
                r.read_str().ok()
            }
            StrIterRepr::Strs(it) => it.next().copied(),
            #[cfg(feature = "alloc")]
            StrIterRepr::Strings(it) => it.next().map(|s| s.as_str()),
        }
    }
}

/// The `metadata` map, read lazily. A nil value on the wire reads as "" (as wrp-c does). When a
/// key repeats, the last value counts, as in wrp-go's map decoding.
#[derive(Clone, Copy)]
pub struct Metadata<'a>(MetadataRepr<'a>);

#[derive(Clone, Copy)]
enum MetadataRepr<'a> {
    Wire {
        bytes: &'a [u8],
        len: usize,
    },
    Pairs(&'a [(&'a str, &'a str)]),
    #[cfg(feature = "alloc")]
    Map(&'a alloc::collections::BTreeMap<alloc::string::String, alloc::string::String>),
}

impl<'a> Metadata<'a> {
    pub const EMPTY: Metadata<'static> = Metadata(MetadataRepr::Pairs(&[]));

    pub fn from_pairs(pairs: &'a [(&'a str, &'a str)]) -> Self {
        Metadata(MetadataRepr::Pairs(pairs))
    }

    #[cfg(feature = "alloc")]
    pub fn from_map(
        map: &'a alloc::collections::BTreeMap<alloc::string::String, alloc::string::String>,
    ) -> Self {
        Metadata(MetadataRepr::Map(map))
    }

    pub(crate) fn from_wire(bytes: &'a [u8], len: usize) -> Self {
        Metadata(MetadataRepr::Wire { bytes, len })
    }

    /// The number of entries as stored (a repeated key counts each time).
    pub fn len(&self) -> usize {
        match self.0 {
            MetadataRepr::Wire { len, .. } => len,
            MetadataRepr::Pairs(p) => p.len(),
            #[cfg(feature = "alloc")]
            MetadataRepr::Map(m) => m.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(&self) -> MetadataIter<'a> {
        MetadataIter(match self.0 {
            MetadataRepr::Wire { bytes, len } => MetadataIterRepr::Wire(Reader::new(bytes), len),
            MetadataRepr::Pairs(p) => MetadataIterRepr::Pairs(p.iter()),
            #[cfg(feature = "alloc")]
            MetadataRepr::Map(m) => MetadataIterRepr::Map(m.iter()),
        })
    }

    /// The value of `key` (the last one, if the key repeats).
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.iter()
            .filter(|(k, _)| *k == key)
            .last()
            .map(|(_, v)| v)
    }
}

impl<'a> IntoIterator for Metadata<'a> {
    type Item = (&'a str, &'a str);
    type IntoIter = MetadataIter<'a>;
    fn into_iter(self) -> MetadataIter<'a> {
        self.iter()
    }
}

/// Map equality: the same keys with the same values, whatever the order.
impl PartialEq for Metadata<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().all(|(k, _)| self.get(k) == other.get(k))
            && other.iter().all(|(k, _)| self.get(k) == other.get(k))
    }
}

impl fmt::Debug for Metadata<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Iterator over [`Metadata`] entries.
pub struct MetadataIter<'a>(MetadataIterRepr<'a>);

enum MetadataIterRepr<'a> {
    Wire(Reader<'a>, usize),
    Pairs(core::slice::Iter<'a, (&'a str, &'a str)>),
    #[cfg(feature = "alloc")]
    Map(alloc::collections::btree_map::Iter<'a, alloc::string::String, alloc::string::String>),
}

impl<'a> Iterator for MetadataIter<'a> {
    type Item = (&'a str, &'a str);
    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        match &mut self.0 {
            MetadataIterRepr::Wire(r, left) => {
                *left = left.checked_sub(1)?;
                let key = r.read_str().ok()?;
                let value = if r.eat_nil() { "" } else { r.read_str().ok()? };
                Some((key, value))
            }
            MetadataIterRepr::Pairs(it) => it.next().copied(),
            #[cfg(feature = "alloc")]
            MetadataIterRepr::Map(it) => it.next().map(|(k, v)| (k.as_str(), v.as_str())),
        }
    }
}

/// One field of a span. wrp-go v3 writes spans as strings; wrp-c 1.x writes
/// `[name, start, duration]` with integer times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanField<'a> {
    Str(&'a str),
    Int(i64),
}

impl fmt::Display for SpanField<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpanField::Str(s) => f.write_str(s),
            SpanField::Int(n) => write!(f, "{n}"),
        }
    }
}

pub(crate) fn read_span_field<'a>(r: &mut Reader<'a>) -> Result<SpanField<'a>, crate::DecodeError> {
    if r.peek_kind()? == crate::ValueKind::Int {
        r.read_int().map(SpanField::Int)
    } else {
        r.read_str().map(SpanField::Str)
    }
}

/// The deprecated `spans` list: arrays of fields.
#[derive(Clone, Copy)]
pub struct Spans<'a>(SpansRepr<'a>);

#[derive(Clone, Copy)]
enum SpansRepr<'a> {
    Wire {
        bytes: &'a [u8],
        len: usize,
    },
    Slices(&'a [&'a [SpanField<'a>]]),
    #[cfg(feature = "alloc")]
    Strings(&'a [alloc::vec::Vec<alloc::string::String>]),
}

impl<'a> Spans<'a> {
    pub const EMPTY: Spans<'static> = Spans(SpansRepr::Slices(&[]));

    pub fn from_slices(spans: &'a [&'a [SpanField<'a>]]) -> Self {
        Spans(SpansRepr::Slices(spans))
    }

    #[cfg(feature = "alloc")]
    pub fn from_strings(spans: &'a [alloc::vec::Vec<alloc::string::String>]) -> Self {
        Spans(SpansRepr::Strings(spans))
    }

    pub(crate) fn from_wire(bytes: &'a [u8], len: usize) -> Self {
        Spans(SpansRepr::Wire { bytes, len })
    }

    pub fn len(&self) -> usize {
        match self.0 {
            SpansRepr::Wire { len, .. } => len,
            SpansRepr::Slices(s) => s.len(),
            #[cfg(feature = "alloc")]
            SpansRepr::Strings(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(&self) -> SpansIter<'a> {
        SpansIter(match self.0 {
            SpansRepr::Wire { bytes, len } => SpansIterRepr::Wire(Reader::new(bytes), len),
            SpansRepr::Slices(s) => SpansIterRepr::Slices(s.iter()),
            #[cfg(feature = "alloc")]
            SpansRepr::Strings(s) => SpansIterRepr::Strings(s.iter()),
        })
    }
}

impl PartialEq for Spans<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl fmt::Debug for Spans<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Iterator over [`Spans`].
pub struct SpansIter<'a>(SpansIterRepr<'a>);

enum SpansIterRepr<'a> {
    Wire(Reader<'a>, usize),
    Slices(core::slice::Iter<'a, &'a [SpanField<'a>]>),
    #[cfg(feature = "alloc")]
    Strings(core::slice::Iter<'a, alloc::vec::Vec<alloc::string::String>>),
}

impl<'a> Iterator for SpansIter<'a> {
    type Item = Span<'a>;
    fn next(&mut self) -> Option<Span<'a>> {
        match &mut self.0 {
            SpansIterRepr::Wire(r, left) => {
                *left = left.checked_sub(1)?;
                let len = r.read_array_len().ok()?;
                let start = r.position();
                for _ in 0..len {
                    read_span_field(r).ok()?;
                }
                Some(Span(SpanRepr::Wire {
                    bytes: r.since(start),
                    len,
                }))
            }
            SpansIterRepr::Slices(it) => it.next().map(|s| Span(SpanRepr::Slice(s))),
            #[cfg(feature = "alloc")]
            SpansIterRepr::Strings(it) => it.next().map(|s| Span(SpanRepr::Strings(s))),
        }
    }
}

/// One span: its fields, in order.
#[derive(Clone, Copy)]
pub struct Span<'a>(SpanRepr<'a>);

#[derive(Clone, Copy)]
enum SpanRepr<'a> {
    Wire {
        bytes: &'a [u8],
        len: usize,
    },
    Slice(&'a [SpanField<'a>]),
    #[cfg(feature = "alloc")]
    Strings(&'a [alloc::string::String]),
}

impl<'a> Span<'a> {
    pub fn len(&self) -> usize {
        match self.0 {
            SpanRepr::Wire { len, .. } => len,
            SpanRepr::Slice(s) => s.len(),
            #[cfg(feature = "alloc")]
            SpanRepr::Strings(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn fields(&self) -> SpanFields<'a> {
        SpanFields(match self.0 {
            SpanRepr::Wire { bytes, len } => SpanFieldsRepr::Wire(Reader::new(bytes), len),
            SpanRepr::Slice(s) => SpanFieldsRepr::Slice(s.iter()),
            #[cfg(feature = "alloc")]
            SpanRepr::Strings(s) => SpanFieldsRepr::Strings(s.iter()),
        })
    }
}

/// Iterator over a [`Span`]'s fields.
pub struct SpanFields<'a>(SpanFieldsRepr<'a>);

enum SpanFieldsRepr<'a> {
    Wire(Reader<'a>, usize),
    Slice(core::slice::Iter<'a, SpanField<'a>>),
    #[cfg(feature = "alloc")]
    Strings(core::slice::Iter<'a, alloc::string::String>),
}

impl<'a> Iterator for SpanFields<'a> {
    type Item = SpanField<'a>;
    fn next(&mut self) -> Option<SpanField<'a>> {
        match &mut self.0 {
            SpanFieldsRepr::Wire(r, left) => {
                *left = left.checked_sub(1)?;
                read_span_field(r).ok()
            }
            SpanFieldsRepr::Slice(it) => it.next().copied(),
            #[cfg(feature = "alloc")]
            SpanFieldsRepr::Strings(it) => it.next().map(|s| SpanField::Str(s)),
        }
    }
}

impl PartialEq for Span<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.fields().eq(other.fields())
    }
}

impl fmt::Debug for Span<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.fields()).finish()
    }
}

/// A WRP message that borrows every string and byte field from somewhere else: from the decoded
/// input (see [`Message::decode`]) or from the caller (to encode without allocating).
///
/// Strings follow wrp-go's omit-empty rule: `""` means absent, and so does an empty list or map.
/// `status` and `rdr` are nullable as in wrp-go; `qos` is always present (0 by default).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Message<'a> {
    pub msg_type: MessageType,
    pub source: &'a str,
    pub dest: &'a str,
    pub transaction_uuid: &'a str,
    pub content_type: &'a str,
    pub accept: &'a str,
    pub status: Option<i64>,
    pub rdr: Option<i64>,
    pub headers: StrList<'a>,
    pub metadata: Metadata<'a>,
    pub path: &'a str,
    pub payload: &'a [u8],
    pub service_name: &'a str,
    pub url: &'a str,
    pub partner_ids: StrList<'a>,
    pub session_id: &'a str,
    pub qos: i64,
    /// wrp-c's message id.
    pub msg_id: &'a str,
    /// Deprecated (wrp-go v3, wrp-c 1.x).
    pub spans: Spans<'a>,
    /// Deprecated (wrp-go v3, wrp-c 1.x).
    pub include_spans: bool,
}

impl<'a> Message<'a> {
    /// A message of `msg_type` with every other field absent.
    pub const fn new(msg_type: MessageType) -> Self {
        Message {
            msg_type,
            source: "",
            dest: "",
            transaction_uuid: "",
            content_type: "",
            accept: "",
            status: None,
            rdr: None,
            headers: StrList::EMPTY,
            metadata: Metadata::EMPTY,
            path: "",
            payload: &[],
            service_name: "",
            url: "",
            partner_ids: StrList::EMPTY,
            session_id: "",
            qos: 0,
            msg_id: "",
            spans: Spans::EMPTY,
            include_spans: false,
        }
    }

    /// The QoS level of `qos`, `None` when it is outside 0..=99.
    pub fn qos_level(&self) -> Option<QosLevel> {
        QosLevel::from_value(self.qos)
    }

    /// wrp-go's "transaction part": the type needs one and transaction_uuid is set.
    pub fn is_transaction(&self) -> bool {
        self.msg_type.requires_transaction() && !self.transaction_uuid.is_empty()
    }
}
