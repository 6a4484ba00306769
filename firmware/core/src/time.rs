//! Time as the driver tells it. The core has no clock: every input carries "now", and
//! [`crate::Client::poll_timeout`] says when the driver must call back.

use core::ops::Add;
use core::time::Duration;

/// A point on the driver's monotonic clock, in milliseconds from any origin the driver likes
/// (boot, process start). Only differences matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    pub const fn from_millis(ms: u64) -> Self {
        Instant(ms)
    }

    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// The time from `earlier` to `self`; zero when `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

/// Saturating: a far-off deadline never wraps round to the past.
impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(ms))
    }
}

pub(crate) const fn secs(n: u32) -> Duration {
    Duration::from_secs(n as u64)
}
