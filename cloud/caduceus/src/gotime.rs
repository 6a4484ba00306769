//! The registration's time fields in the forms Go clients write and read: `duration` as whole
//! seconds or a Go duration string (`"5m"`, `"1h30m"`, `"1.5s"`), written back as Go prints
//! durations (`"5m0s"`); `until` as RFC 3339, where Go's zero time means "not set".

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use xmidt_common::gotime::{format_duration, parse_duration};

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

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
