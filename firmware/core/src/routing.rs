//! Addressing rules: which service a `dest` names, whether it names this device, and the
//! partner-id check (client-spec §5.1, §5.3).

use wrp_nostd::{DeviceId, Locator, Scheme, StrList};

use crate::services::MAX_SERVICE_NAME;

/// parodus's service of a `dest`: the second `/` segment (`mac:112233445566/config/x` →
/// `config`), or the whole dest when it has no `/`, cut to 31 bytes.
pub(crate) fn service_of(dest: &str) -> &str {
    let service = match dest.split_once('/') {
        Some((_, rest)) => rest.split('/').next().unwrap_or_default(),
        None => dest,
    };
    let mut end = service.len().min(MAX_SERVICE_NAME);
    while !service.is_char_boundary(end) {
        end -= 1;
    }
    &service[..end]
}

/// Whether `dest` names this device: `self:`, or a device id equal to ours once canonical
/// (`MAC:11-22-...` is `mac:1122...`).
pub(crate) fn is_for(dest: &str, device_name: &str) -> bool {
    let Ok(locator) = Locator::parse(dest) else {
        return false;
    };
    if locator.scheme == Scheme::Own {
        return true;
    }
    match (locator.device_id(), DeviceId::parse(device_name)) {
        (Some(theirs), Ok(ours)) => theirs == ours,
        _ => false,
    }
}

/// The `/` segments of a path, empty ones skipped (as strtok splits CRUD paths).
pub(crate) fn segments(dest: &str) -> impl Iterator<Item = &str> {
    dest.split('/').filter(|s| !s.is_empty())
}

/// Whether any of the message's partner ids is one of the device's (case-insensitive, exact;
/// parodus has no wildcard).
pub(crate) fn partner_match(message: StrList<'_>, device: &[&str]) -> bool {
    message
        .iter()
        .any(|p| device.iter().any(|d| d.eq_ignore_ascii_case(p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_segment() {
        assert_eq!(service_of("mac:112233445566/config/some/path"), "config");
        assert_eq!(service_of("mac:112233445566/config"), "config");
        assert_eq!(service_of("mac:112233445566"), "mac:112233445566");
        assert_eq!(service_of("mac:112233445566/"), "");
        assert_eq!(service_of("config"), "config");
        assert_eq!(
            service_of("mac:1/abcdefghijklmnopqrstuvwxyz0123456789"),
            "abcdefghijklmnopqrstuvwxyz01234"
        );
        // 30 ASCII bytes then a 2-byte character straddling byte 31.
        let dest = "mac:1/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaé";
        assert_eq!(service_of(dest), "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    }

    #[test]
    fn own_device() {
        let me = "mac:112233445566";
        assert!(is_for("mac:112233445566/config", me));
        assert!(is_for("MAC:11-22-33-44-55-66/config", me));
        assert!(is_for("self:/config", me));
        assert!(!is_for("mac:665544332211/config", me));
        assert!(!is_for("uuid:112233445566/config", me));
        assert!(!is_for("config", me));
        assert!(!is_for("", me));
    }

    #[test]
    fn partners() {
        let device = ["comcast", "cox"];
        assert!(partner_match(StrList::from_strs(&["Comcast"]), &device));
        assert!(partner_match(StrList::from_strs(&["x", "COX"]), &device));
        assert!(!partner_match(StrList::from_strs(&["charter"]), &device));
        assert!(!partner_match(StrList::from_strs(&["*"]), &device));
        assert!(!partner_match(StrList::EMPTY, &device));
    }
}
