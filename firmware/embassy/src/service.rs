//! What applications plug in: services (Rust handlers for cloud messages) and events (messages
//! they publish through a channel).

use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::channel::Channel;
use wrp_nostd::{EncodeError, Message};

/// The largest answer a service may give to one message.
pub const REPLY_CAPACITY: usize = 512;
/// The largest event (an encoded WRP message).
pub const EVENT_CAPACITY: usize = 512;

/// A local service: the firmware's counterpart of a parodus client process.
///
/// Cloud messages whose `dest` names this device and this service (`mac:…/<name>/…`) are
/// delivered to [`Service::handle`]; so are local answers meant for it. The `parodus` name is
/// the client's own (RETRIEVE of `hw-model`, `cloud-status`, …) and cannot be taken.
pub trait Service {
    /// The second segment of the `dest` it answers to; at most 31 bytes.
    fn name(&self) -> &str;

    /// One message for this service. To answer, call [`Reply::answer`] or [`Reply::send`]
    /// before returning; the answer goes to the cloud (or to a local service, as its `dest`
    /// says) with the device's metadata merged in.
    fn handle(&mut self, message: &Message<'_>, reply: &mut Reply<'_>);
}

/// Where a service writes its answer.
pub struct Reply<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> Reply<'b> {
    pub(crate) fn new(buf: &'b mut [u8]) -> Self {
        Reply { buf, len: 0 }
    }

    /// Sends `message` (encoded now), replacing an answer given before.
    pub fn send(&mut self, message: &Message<'_>) -> Result<(), EncodeError> {
        self.len = 0;
        self.len = message.encode(self.buf)?;
        Ok(())
    }

    /// The usual answer to `request`: the same type and transaction, source and dest swapped,
    /// the CRUD `path` kept, with `status`, `content_type` and `payload`.
    pub fn answer(
        &mut self,
        request: &Message<'_>,
        status: i64,
        content_type: &str,
        payload: &[u8],
    ) -> Result<(), EncodeError> {
        self.send(&Message {
            source: request.dest,
            dest: request.source,
            transaction_uuid: request.transaction_uuid,
            path: request.path,
            status: Some(status),
            content_type,
            payload,
            ..Message::new(request.msg_type)
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// A message an application sends on its own, usually a `SimpleEvent`: one encoded WRP message.
/// Events with `qos` ≥ 25 wait in the client's queue until talaria acknowledges them.
#[derive(Debug, Clone)]
pub struct Event(heapless::Vec<u8, EVENT_CAPACITY>);

impl Event {
    pub fn new(message: &Message<'_>) -> Result<Self, EncodeError> {
        let mut bytes = heapless::Vec::new();
        // Resizing to the capacity cannot fail.
        let _ = bytes.resize(EVENT_CAPACITY, 0);
        let n = message.encode(&mut bytes)?;
        bytes.truncate(n);
        Ok(Event(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// The channel applications publish [`Event`]s on; the client takes them while it runs (and
/// sends them when online: events are dropped offline unless their QoS keeps them).
pub type Events<const DEPTH: usize> = Channel<CriticalSectionRawMutex, Event, DEPTH>;

#[cfg(test)]
mod tests {
    use wrp_nostd::MessageType;

    use super::*;

    #[test]
    fn answer_swaps_and_keeps_the_transaction() {
        let request = Message {
            source: "dns:scytale",
            dest: "mac:525400123456/config",
            transaction_uuid: "t-1",
            path: "/x",
            ..Message::new(MessageType::Retrieve)
        };
        let mut buf = [0u8; REPLY_CAPACITY];
        let mut reply = Reply::new(&mut buf);
        reply
            .answer(&request, 200, "application/json", b"{}")
            .expect("fits");
        let n = reply.len();
        let m = Message::decode(&buf[..n]).expect("valid");
        assert_eq!(m.msg_type, MessageType::Retrieve);
        assert_eq!((m.source, m.dest), (request.dest, request.source));
        assert_eq!((m.transaction_uuid, m.path), ("t-1", "/x"));
        assert_eq!(
            (m.status, m.content_type, m.payload),
            (Some(200), "application/json", &b"{}"[..])
        );
    }

    #[test]
    fn too_large_is_an_error_not_a_truncation() {
        let big = [0u8; REPLY_CAPACITY];
        let m = Message {
            payload: &big,
            ..Message::new(MessageType::SimpleEvent)
        };
        assert!(Event::new(&m).is_err());
        let mut buf = [0u8; REPLY_CAPACITY];
        let mut reply = Reply::new(&mut buf);
        assert!(reply.send(&m).is_err());
        assert_eq!(reply.len(), 0, "a failed answer sends nothing");
    }
}
