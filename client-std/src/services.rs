//! Local services behind one trait: an IPC service is a PUSH connection, an in-process one a
//! channel; the driver only hands each a message and removes those that are gone. Messages
//! from either come back to the driver the same way (`Event::Local`).

use std::collections::HashMap;

use tokio::sync::mpsc;
use xmidt_client_core::SERVICE_ALIVE;

use crate::config::MAX_MESSAGE;
use crate::device::Event;
use crate::error::Error;

/// The service can take no more messages: it is unregistered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

/// Where messages for a local service go.
pub trait ServiceSink: Send + 'static {
    /// Takes one WRP message (msgpack) for the service without waiting.
    fn deliver(&mut self, message: &[u8]) -> Result<(), Gone>;
}

/// The registered services' sinks, by name. Ids tell one registration of a name from the next.
#[derive(Default)]
pub(crate) struct Sinks {
    entries: HashMap<String, (u64, Box<dyn ServiceSink>)>,
    next_id: u64,
}

impl Sinks {
    /// The id the next `insert` will use.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// Adds or replaces `name`'s sink; the old one is dropped (which closes an IPC connection).
    pub fn insert(&mut self, name: &str, sink: Box<dyn ServiceSink>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.entries.insert(name.to_string(), (id, sink));
        id
    }

    pub fn deliver(&mut self, name: &str, message: &[u8]) -> Result<(), Gone> {
        match self.entries.get_mut(name) {
            Some((_, sink)) => sink.deliver(message),
            None => Err(Gone),
        }
    }

    /// Removes `name` if it is still registration `id` (any registration when `None`).
    pub fn remove(&mut self, name: &str, id: Option<u64>) -> bool {
        match self.entries.get(name) {
            Some((current, _)) if id.is_none_or(|id| id == *current) => {
                self.entries.remove(name);
                true
            }
            _ => false,
        }
    }
}

/// An in-process service's inbox.
struct ChannelSink(mpsc::Sender<Vec<u8>>);

impl ServiceSink for ChannelSink {
    fn deliver(&mut self, message: &[u8]) -> Result<(), Gone> {
        // A keep-alive only asks whether the service is still there; queueing it would fill
        // the channel of a service that never reads.
        if message == SERVICE_ALIVE {
            return if self.0.is_closed() {
                Err(Gone)
            } else {
                Ok(())
            };
        }
        self.0.try_send(message.to_vec()).map_err(|_| Gone)
    }
}

/// An in-process local service, what a libparodus client is to the C parodus: it receives the
/// messages whose `dest` names it and sends messages upstream. It is unregistered when dropped
/// (found at the next keep-alive round or delivery) or when it falls `service_queue` messages
/// behind.
pub struct LocalService {
    name: String,
    messages: mpsc::Receiver<Vec<u8>>,
    inbox: mpsc::Sender<Event>,
}

impl LocalService {
    pub(crate) fn new(
        name: &str,
        queue: usize,
        inbox: mpsc::Sender<Event>,
    ) -> (Self, Box<dyn ServiceSink>) {
        let (tx, messages) = mpsc::channel(queue.max(1));
        let service = LocalService {
            name: name.to_string(),
            messages,
            inbox,
        };
        (service, Box::new(ChannelSink(tx)))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The next WRP message (msgpack bytes, exactly as the cloud sent it) for this service;
    /// `None` once the service was removed or the device stopped. Keep-alives never come
    /// here.
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        self.messages.recv().await
    }

    /// Sends a WRP message (msgpack) upstream, as a libparodus client's `send` does: events
    /// and requests go to the cloud with the device metadata, CRUD for this device is
    /// answered locally.
    pub async fn send(&self, wrp: Vec<u8>) -> Result<(), Error> {
        send_local(&self.inbox, wrp).await
    }
}

pub(crate) async fn send_local(inbox: &mpsc::Sender<Event>, wrp: Vec<u8>) -> Result<(), Error> {
    // The IPC refuses these too; here the caller hears why.
    if wrp.len() > MAX_MESSAGE {
        return Err(Error::Core(xmidt_client_core::Error::MessageTooLarge {
            len: wrp.len(),
            capacity: MAX_MESSAGE,
        }));
    }
    inbox
        .send(Event::Local(wrp))
        .await
        .map_err(|_| Error::Stopped)
}
