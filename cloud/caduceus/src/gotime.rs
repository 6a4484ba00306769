//! The registration's time fields in the forms Go clients write and read: `duration` as whole
//! seconds or a Go duration string (`"5m"`, `"1h30m"`, `"1.5s"`), written back as Go prints
//! durations (`"5m0s"`); `until` as RFC 3339, where Go's zero time means "not set".

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

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

/// RFC 3339 in UTC with whole seconds, as Go marshals a `time.Time` set from a registration.
pub fn format_time(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(0))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// `None` for Go's zero time (year 1) and for times before 1970, which cannot be a future
/// expiry anyway.
fn parse_time(s: &str) -> Result<Option<SystemTime>, String> {
    let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|e| format!("invalid time {s:?}: {e}"))?;
    let secs = t.unix_timestamp();
    if secs <= 0 {
        return Ok(None);
    }
    let nanos = u64::from(t.nanosecond());
    Ok(Some(
        UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs()) + Duration::from_nanos(nanos),
    ))
}

/// Serde for `duration`: whole seconds or a Go duration string in, a Go string out.
pub mod duration {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("whole seconds or a duration string such as \"5m\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                Ok(Duration::from_secs(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                u64::try_from(v)
                    .map(Duration::from_secs)
                    .map_err(|_| E::custom("duration must not be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                parse_duration(v).map_err(E::custom)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Duration, E> {
                Ok(Duration::ZERO)
            }
        }
        d.deserialize_any(V)
    }
}

/// Serde for `until`: RFC 3339 (or null, or Go's zero time, both meaning unset) in; RFC 3339
/// UTC out, omitted when unset.
pub mod until {
    use super::*;

    pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&format_time(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) if s.is_empty() => Ok(None),
            Some(s) => parse_time(&s).map_err(de::Error::custom),
        }
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
    fn times_parse_and_print() {
        let t = parse_time("2026-01-02T15:04:05Z").unwrap().unwrap();
        assert_eq!(format_time(t), "2026-01-02T15:04:05Z");
        // Offsets are honoured and printed back in UTC.
        let t = parse_time("2026-01-02T10:04:05-05:00").unwrap().unwrap();
        assert_eq!(format_time(t), "2026-01-02T15:04:05Z");
        assert_eq!(parse_time("0001-01-01T00:00:00Z"), Ok(None));
        assert!(parse_time("tomorrow").is_err());
    }
}
