//! What workers tell the run: one `stat` line of counters at a time, and `error` lines.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A worker's counters, as shared by its device tasks.
#[derive(Default)]
pub struct Counters {
    pub connected: AtomicU64,
    pub connects: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
    pub answered: AtomicU64,
    pub events: AtomicU64,
    pub acks: AtomicU64,
    /// Wall clock (µs since the epoch) of the first and the latest successful connect, so the
    /// run can compute the connect rate across workers.
    pub first_connect: AtomicU64,
    pub last_connect: AtomicU64,
}

impl Counters {
    pub fn connected(&self) {
        let now = epoch_micros();
        let _ = self
            .first_connect
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        self.last_connect.fetch_max(now, Ordering::Relaxed);
        self.connects.fetch_add(1, Ordering::Relaxed);
        self.connected.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            connected: get(&self.connected),
            connects: get(&self.connects),
            failed: get(&self.failed),
            dropped: get(&self.dropped),
            answered: get(&self.answered),
            events: get(&self.events),
            acks: get(&self.acks),
            first_connect: get(&self.first_connect),
            last_connect: get(&self.last_connect),
        }
    }
}

pub fn epoch_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// A snapshot of one worker's counters (or their sum over workers).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Connections open now.
    pub connected: u64,
    /// Successful connects so far.
    pub connects: u64,
    /// Connects that failed (refused, HTTP error, timeout).
    pub failed: u64,
    /// Connections that ended before the run stopped them.
    pub dropped: u64,
    /// Requests the devices answered.
    pub answered: u64,
    pub events: u64,
    /// QoS acks received from talaria.
    pub acks: u64,
    pub first_connect: u64,
    pub last_connect: u64,
}

const STAT: &str = "stat";

impl Stats {
    pub fn to_line(self) -> String {
        format!(
            "{STAT} {} {} {} {} {} {} {} {} {}",
            self.connected,
            self.connects,
            self.failed,
            self.dropped,
            self.answered,
            self.events,
            self.acks,
            self.first_connect,
            self.last_connect
        )
    }

    /// Reads a `stat` line; `None` for anything else.
    pub fn parse(line: &str) -> Option<Stats> {
        let mut words = line.split_ascii_whitespace();
        if words.next()? != STAT {
            return None;
        }
        let mut n = || words.next()?.parse::<u64>().ok();
        let stats = Stats {
            connected: n()?,
            connects: n()?,
            failed: n()?,
            dropped: n()?,
            answered: n()?,
            events: n()?,
            acks: n()?,
            first_connect: n()?,
            last_connect: n()?,
        };
        Some(stats)
    }

    /// Adds another worker's counters; connect times take the earliest first and latest last.
    pub fn add(&mut self, o: &Stats) {
        self.connected += o.connected;
        self.connects += o.connects;
        self.failed += o.failed;
        self.dropped += o.dropped;
        self.answered += o.answered;
        self.events += o.events;
        self.acks += o.acks;
        if o.first_connect != 0 {
            self.first_connect = match self.first_connect {
                0 => o.first_connect,
                f => f.min(o.first_connect),
            };
        }
        self.last_connect = self.last_connect.max(o.last_connect);
    }

    /// Connects per second between the first and the latest successful connect.
    pub fn connect_rate(&self) -> f64 {
        let span = self.last_connect.saturating_sub(self.first_connect);
        if self.connects < 2 || span == 0 {
            return 0.0;
        }
        (self.connects - 1) as f64 / (span as f64 / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_sums_keep_the_connect_span() {
        let a = Stats {
            connected: 3,
            connects: 3,
            first_connect: 1_000_000,
            last_connect: 2_000_000,
            ..Stats::default()
        };
        assert_eq!(Stats::parse(&a.to_line()), Some(a));
        assert_eq!(Stats::parse("stat 1 2"), None);
        assert_eq!(Stats::parse("error x"), None);
        let b = Stats {
            connects: 2,
            first_connect: 500_000,
            last_connect: 1_500_000,
            ..Stats::default()
        };
        let mut sum = Stats::default();
        sum.add(&a);
        sum.add(&b);
        assert_eq!((sum.first_connect, sum.last_connect), (500_000, 2_000_000));
        assert!((sum.connect_rate() - 4.0 / 1.5).abs() < 1e-9);
    }
}
