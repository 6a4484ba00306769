//! What the core has decided and the driver has not yet taken: a FIFO of pending actions, and
//! one byte buffer for the messages they carry. The buffer is reused from the start each time
//! the FIFO empties, so a driver that drains after every input needs room for one message.

use crate::client::ConnId;
use crate::error::Error;

/// Pending actions kept at once. One input makes at most three.
const PENDING: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    /// `parodus_stopping`: ping miss, cloud-disconnect, abandoned attempt.
    ParodusStopping,
    /// The text given to `Client::shutdown`.
    Shutdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pending {
    FetchToken,
    Connect(ConnId),
    Disconnect {
        conn: ConnId,
        code: u16,
        reason: CloseReason,
    },
    /// A frame for the cloud, made on `conn` (dropped if `conn` ends before it is taken).
    Send {
        conn: ConnId,
        start: usize,
        len: usize,
    },
    /// A message for a local service: the name, then the message.
    Deliver {
        start: usize,
        name_len: usize,
        len: usize,
    },
}

pub(crate) struct Outbox<const N: usize> {
    data: [u8; N],
    used: usize,
    pending: heapless::Deque<Pending, PENDING>,
}

impl<const N: usize> Outbox<N> {
    pub const fn new() -> Self {
        Outbox {
            data: [0; N],
            used: 0,
            pending: heapless::Deque::new(),
        }
    }

    pub fn push(&mut self, p: Pending) -> Result<(), Error> {
        self.pending
            .push_back(p)
            .map_err(|_| Error::TooManyPendingActions)
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn pop(&mut self) -> Option<Pending> {
        self.pending.pop_front()
    }

    pub fn bytes(&self, start: usize, len: usize) -> &[u8] {
        self.data.get(start..start + len).unwrap_or_default()
    }

    /// Drops pending actions that match `f` (superseded connects, for one).
    pub fn retain(&mut self, mut f: impl FnMut(&Pending) -> bool) {
        for _ in 0..self.pending.len() {
            if let Some(p) = self.pending.pop_front() {
                if f(&p) {
                    // Re-queueing what was just taken out always fits.
                    let _ = self.pending.push_back(p);
                }
            }
        }
    }

    /// Runs `write` on the free space after `prefix`, then records the result with `make`.
    fn write(
        &mut self,
        prefix: &[u8],
        write: impl FnOnce(&mut [u8]) -> Result<usize, Error>,
        make: impl FnOnce(usize, usize) -> Pending,
    ) -> Result<(), Error> {
        if self.pending.is_full() {
            return Err(Error::TooManyPendingActions);
        }
        if self.pending.is_empty() {
            self.used = 0;
        }
        let start = self.used;
        let free = &mut self.data[start..];
        let Some(name) = free.get_mut(..prefix.len()) else {
            return Err(Error::OutboxFull);
        };
        name.copy_from_slice(prefix);
        let len = match write(&mut free[prefix.len()..]) {
            // Only an empty outbox tells whether the message could ever fit.
            Err(Error::MessageTooLarge { len, .. }) if start > 0 && len + prefix.len() <= N => {
                return Err(Error::OutboxFull)
            }
            Err(Error::MessageTooLarge { len, .. }) => {
                return Err(Error::MessageTooLarge {
                    len,
                    capacity: N - prefix.len(),
                })
            }
            r => r?,
        };
        self.used = start + prefix.len() + len;
        self.push(make(start, len))
    }

    pub fn send(
        &mut self,
        conn: ConnId,
        write: impl FnOnce(&mut [u8]) -> Result<usize, Error>,
    ) -> Result<(), Error> {
        self.write(&[], write, |start, len| Pending::Send { conn, start, len })
    }

    pub fn deliver(
        &mut self,
        service: &str,
        write: impl FnOnce(&mut [u8]) -> Result<usize, Error>,
    ) -> Result<(), Error> {
        let name_len = service.len();
        self.write(service.as_bytes(), write, |start, len| Pending::Deliver {
            start,
            name_len,
            len,
        })
    }
}
