//! Time as the Go services write and read it, so JSON and YAML consumers see the same text:
//! durations (`"5m0s"`, `"1.5s"`) and RFC 3339 timestamps.

use std::time::{Duration, SystemTime};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Go's `time.RFC3339Nano` in UTC: fractional seconds with trailing zeros trimmed.
pub fn rfc3339_nano(t: SystemTime) -> String {
    // Rfc3339 writes only the sub-second digits needed, like Go's "999999999" layout.
    OffsetDateTime::from(t).format(&Rfc3339).unwrap_or_default()
}

/// Parses a Go duration string; negative durations are refused.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?}");
    let text = s.strip_prefix('+').unwrap_or(s);
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() || text.starts_with('-') {
        return Err(bad());
    }
    let mut rest = text;
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let number: f64 = rest[..number_end].parse().map_err(|_| bad())?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per_unit = match &rest[..unit_end] {
            "ns" => 1e0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += number * nanos_per_unit;
        rest = &rest[unit_end..];
    }
    // Go's limit (about 290 years) keeps the value meaningful.
    if !total.is_finite() || total > i64::MAX as f64 {
        return Err(bad());
    }
    Ok(Duration::from_nanos(total as u64))
}

/// Formats like Go's `time.Duration.String`: `"5m0s"`, `"1h0m0s"`, `"1.5s"`, `"300ms"`, `"0s"`.
pub fn format_duration(d: Duration) -> String {
    fn decimal(whole: u128, frac: u128, frac_digits: usize) -> String {
        let frac = format!("{frac:0frac_digits$}");
        let frac = frac.trim_end_matches('0');
        if frac.is_empty() {
            whole.to_string()
        } else {
            format!("{whole}.{frac}")
        }
    }
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", decimal(nanos / 1_000, nanos % 1_000, 3));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", decimal(nanos / 1_000_000, nanos % 1_000_000, 6));
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let s = decimal(u128::from(s), u128::from(d.subsec_nanos()), 9);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m{s}s"),
        (h, m) => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse() {
        let ok = |s: &str, d: Duration| assert_eq!(parse_duration(s), Ok(d), "{s}");
        ok("0", Duration::ZERO);
        ok("5m", Duration::from_secs(300));
        ok("1h30m", Duration::from_secs(5400));
        ok("1.5s", Duration::from_millis(1500));
        ok("300ms", Duration::from_millis(300));
        ok("2µs", Duration::from_micros(2));
        ok("5m0s", Duration::from_secs(300));
        for bad in ["", "5", "-5m", "5x", "m", "1.2.3s", "9999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_print_as_go_does() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_secs(300), "5m0s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_secs(90061), "25h1m1s"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_millis(300), "300ms"),
            (Duration::from_nanos(1500), "1.5µs"),
            (Duration::from_nanos(7), "7ns"),
        ];
        for (d, s) in cases {
            assert_eq!(format_duration(d), s);
            assert_eq!(parse_duration(s), Ok(d), "round trip of {s}");
        }
    }

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
            assert_eq!(format_duration(d), want, "{d:?}");
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
