//! parodus's reconnect backoff, exactly (client-spec §3.8), with the driver's random numbers in
//! place of `random()`.
//!
//! Per connect cycle the state starts at `count = 1, delay = 1`. Before each wait, while
//! `count < max`, `count += 1` and `delay = 2 * delay + 1` (3, 7, 15, ... 2^c - 1). The wait is
//! 3 s when `delay <= 3`; otherwise `r1 & delay` seconds (plus 3 when that is under 3) and a
//! sub-second part from `r2` as parodus computes its nanoseconds. So: 3 s first, then uniform-ish
//! in [3, 2^c - 1] s, capped at 2^max - 1 s (max 0 gives a fixed 3 s).

use core::time::Duration;

use crate::random::Random;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    count: u32,
    delay: u32,
    max: u32,
}

impl Backoff {
    pub fn new(max: u8) -> Self {
        Backoff {
            count: 1,
            delay: 1,
            max: u32::from(max),
        }
    }

    /// A new connect cycle: after a successful connection, or a deliberate reconnect.
    pub fn reset(&mut self) {
        *self = Backoff::new(self.max as u8);
    }

    pub fn next_wait(&mut self, rng: &mut impl Random) -> Duration {
        if self.count < self.max {
            self.count += 1;
            // max <= 31 (validated), so delay stays within 2^31 - 1.
            self.delay = self.delay * 2 + 1;
        }
        if self.delay <= 3 {
            return Duration::from_secs(3);
        }
        let mut secs = rng.next_u32() & self.delay;
        if secs < 3 {
            secs += 3;
        }
        // parodus: random() (31 bits) >> 1, folded below 10^9. A u32 >> 2 is the same range.
        let mut nanos = rng.next_u32() >> 2;
        if nanos >= 1_000_000_000 {
            nanos -= 1_000_000_000;
        }
        Duration::new(u64::from(secs), nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parodus_schedule() {
        // The random numbers are all ones: every wait is its cap, the fraction 0.073741823 s.
        let mut ones = || u32::MAX;
        let mut b = Backoff::new(4);
        let waits: [u64; 5] = core::array::from_fn(|_| b.next_wait(&mut ones).as_millis() as u64);
        assert_eq!(waits, [3_000, 7_073, 15_073, 15_073, 15_073]);
        b.reset();
        assert_eq!(b.next_wait(&mut ones), Duration::from_secs(3));

        // Small random seconds are lifted to 3.
        let mut zeros = || 0u32;
        let mut b = Backoff::new(9);
        b.next_wait(&mut zeros);
        assert_eq!(b.next_wait(&mut zeros), Duration::from_secs(3));

        // backoff-max 0 and 1: a fixed 3 s.
        for max in [0, 1] {
            let mut b = Backoff::new(max);
            for _ in 0..5 {
                assert_eq!(b.next_wait(&mut ones), Duration::from_secs(3));
            }
        }

        // The cap of backoff-max 31 is 2^31 - 1 s.
        let mut b = Backoff::new(31);
        let last = (0..40).map(|_| b.next_wait(&mut ones)).last();
        assert_eq!(last.map(|d| d.as_secs()), Some((1 << 31) - 1));
    }
}
