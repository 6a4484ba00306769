//! Time rendered as the Go services render it, so JSON consumers see the same text.

use std::time::{Duration, SystemTime};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Go's `time.RFC3339Nano` in UTC: fractional seconds with trailing zeros trimmed.
pub fn rfc3339_nano(t: SystemTime) -> String {
    // Rfc3339 writes only the sub-second digits needed, like Go's "999999999" layout.
    OffsetDateTime::from(t).format(&Rfc3339).unwrap_or_default()
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `1.5s`, `250ms`, `0s`.
pub fn go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000_000_000 {
        let (unit, scale) = match nanos {
            0..1_000 => ("ns", 1),
            1_000..1_000_000 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        return format!("{}{unit}", decimal(nanos, scale));
    }
    let secs = nanos / 1_000_000_000;
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&decimal(
        s * 1_000_000_000 + nanos % 1_000_000_000,
        1_000_000_000,
    ));
    out.push('s');
    out
}

/// `value / scale` with the fraction written out and its trailing zeros trimmed.
fn decimal(value: u128, scale: u128) -> String {
    let whole = value / scale;
    let frac = value % scale;
    if frac == 0 {
        return whole.to_string();
    }
    let width = scale.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_go() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(1), "1ns"),
            (Duration::from_nanos(1_500), "1.5µs"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_micros(1_250), "1.25ms"),
            (Duration::from_millis(1_500), "1.5s"),
            (Duration::from_secs(61), "1m1s"),
            (Duration::from_millis(70_100), "1m10.1s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_secs(3 * 3600 + 5), "3h0m5s"),
            (
                Duration::from_nanos(72 * 3_600_000_000_000 + 3 * 60_000_000_000 + 500_000_000),
                "72h3m0.5s",
            ),
        ];
        for (d, want) in cases {
            assert_eq!(go_duration(d), want, "{d:?}");
        }
    }

    #[test]
    fn timestamps_trim_trailing_zeros() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_700_000_000_120_000_000);
        assert_eq!(rfc3339_nano(t), "2023-11-14T22:13:20.12Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(rfc3339_nano(t), "2023-11-14T22:13:20Z");
    }
}
