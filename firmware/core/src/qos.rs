//! The upstream QoS queue (client-spec §7.6, §8.3; cloud-spec §4.7): events with qos >= 25 are
//! kept, encoded, in a fixed byte buffer until the cloud acknowledges them, across reconnects.
//!
//! Policy when full: the message of the lowest QoS level goes first, the oldest of that level
//! first; a new message never displaces one of a higher level (it is refused instead). Messages
//! also expire as in xmidt-agent and parodus's RBUS queue: medium after 20 minutes, high 25,
//! critical 30.

use core::time::Duration;

use wrp_nostd::{Message, QosLevel};

use crate::client::ConnId;
use crate::error::Error;
use crate::time::Instant;

/// How long a message of `level` stays queued without an ack.
pub(crate) fn expiry(level: QosLevel) -> Duration {
    Duration::from_secs(60)
        * match level {
            QosLevel::Low => 15,
            QosLevel::Medium => 20,
            QosLevel::High => 25,
            QosLevel::Critical => 30,
        }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    start: u32,
    len: u32,
    level: QosLevel,
    queued_at: Instant,
    /// The connection it was last sent on, and when.
    sent: Option<(ConnId, Instant)>,
}

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Larger than the whole buffer.
    TooLarge,
    /// Everything queued ranks above it and nothing can be displaced.
    Full,
    /// Writing the message failed.
    Write(Error),
}

pub(crate) struct QosQueue<const BYTES: usize, const MSGS: usize> {
    buf: [u8; BYTES],
    used: usize,
    entries: heapless::Vec<Entry, MSGS>,
}

impl<const BYTES: usize, const MSGS: usize> QosQueue<BYTES, MSGS> {
    pub const fn new() -> Self {
        QosQueue {
            buf: [0; BYTES],
            used: 0,
            entries: heapless::Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    fn range(e: &Entry) -> core::ops::Range<usize> {
        e.start as usize..(e.start + e.len) as usize
    }

    /// Queues a `len`-byte message of `level`, written by `write`, displacing lower- or
    /// equal-level messages (lowest level, then oldest, first) when needed. Nothing is removed
    /// when the message cannot fit. Returns how many were displaced.
    pub fn enqueue(
        &mut self,
        len: usize,
        level: QosLevel,
        now: Instant,
        write: impl FnOnce(&mut [u8]) -> Result<usize, Error>,
    ) -> Result<usize, Refused> {
        if len > BYTES || MSGS == 0 {
            return Err(Refused::TooLarge);
        }
        let fits = |bytes: usize, count: usize| bytes + len <= BYTES && count < MSGS;
        // Plan first: walk the candidates in displacement order until the message fits.
        let mut bytes = self.used;
        let mut count = self.entries.len();
        let mut victims = 0;
        for l in [
            QosLevel::Low,
            QosLevel::Medium,
            QosLevel::High,
            QosLevel::Critical,
        ] {
            if fits(bytes, count) || l > level {
                break;
            }
            for e in self.entries.iter().filter(|e| e.level == l) {
                if fits(bytes, count) {
                    break;
                }
                bytes -= e.len as usize;
                count -= 1;
                victims += 1;
            }
        }
        if !fits(bytes, count) {
            return Err(Refused::Full);
        }
        for _ in 0..victims {
            let lowest = self.entries.iter().map(|e| e.level).min();
            if let Some(i) = self.entries.iter().position(|e| Some(e.level) == lowest) {
                self.remove(i);
            }
        }
        let start = self.used;
        let dst = self.buf.get_mut(start..start + len).ok_or(Refused::Full)?;
        let written = write(dst).map_err(Refused::Write)?;
        let entry = Entry {
            start: start as u32,
            len: written as u32,
            level,
            queued_at: now,
            sent: None,
        };
        self.entries.push(entry).map_err(|_| Refused::Full)?;
        self.used += written;
        Ok(victims)
    }

    fn remove(&mut self, i: usize) {
        let e = self.entries.remove(i);
        let r = Self::range(&e);
        self.buf.copy_within(r.end..self.used, r.start);
        self.used -= r.len();
        for later in self.entries.iter_mut().filter(|l| l.start > e.start) {
            later.start -= e.len;
        }
    }

    /// Removes the message whose transaction_uuid is `uuid`; whether there was one.
    pub fn ack(&mut self, uuid: &str) -> bool {
        let found = self.entries.iter().position(|e| {
            Message::decode(&self.buf[Self::range(e)]).is_ok_and(|m| m.transaction_uuid == uuid)
        });
        if let Some(i) = found {
            self.remove(i);
        }
        found.is_some()
    }

    /// Drops the messages that have expired by `now`; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut n = 0;
        while let Some(i) = self
            .entries
            .iter()
            .position(|e| e.queued_at + expiry(e.level) <= now)
        {
            self.remove(i);
            n += 1;
        }
        n
    }

    pub fn next_expiry(&self) -> Option<Instant> {
        self.entries
            .iter()
            .map(|e| e.queued_at + expiry(e.level))
            .min()
    }

    /// The oldest message to send on `conn` now: never sent on it, or unacknowledged for
    /// `ack_timeout`. It is marked sent; the second value says whether it is a retransmission.
    pub fn next_to_send(
        &mut self,
        conn: ConnId,
        now: Instant,
        ack_timeout: Duration,
    ) -> Option<(&[u8], bool)> {
        let i = self.entries.iter().position(|e| match e.sent {
            Some((c, at)) => c != conn || at + ack_timeout <= now,
            None => true,
        })?;
        let e = &mut self.entries[i];
        let resend = e.sent.is_some();
        e.sent = Some((conn, now));
        let r = Self::range(e);
        Some((&self.buf[r], resend))
    }

    /// When the first unacknowledged message sent on `conn` is due again.
    pub fn next_resend(&self, conn: ConnId, ack_timeout: Duration) -> Option<Instant> {
        self.entries
            .iter()
            .filter_map(|e| match e.sent {
                Some((c, at)) if c == conn => Some(at + ack_timeout),
                _ => None,
            })
            .min()
    }
}
