//! Locators (`scheme:authority/service/ignored`) and canonical device ids.

use core::fmt;

/// Locator schemes, matched case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scheme {
    Mac,
    Uuid,
    Serial,
    Dns,
    Event,
    /// `self:` — the device itself (its authority is always empty).
    Own,
}

impl Scheme {
    fn parse(s: &str) -> Option<Self> {
        [
            Scheme::Mac,
            Scheme::Uuid,
            Scheme::Serial,
            Scheme::Dns,
            Scheme::Event,
            Scheme::Own,
        ]
        .into_iter()
        .find(|scheme| scheme.as_str().eq_ignore_ascii_case(s))
    }

    /// The lower-case name, as written in a canonical locator.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Mac => "mac",
            Scheme::Uuid => "uuid",
            Scheme::Serial => "serial",
            Scheme::Dns => "dns",
            Scheme::Event => "event",
            Scheme::Own => "self",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a locator or device id does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocatorError {
    /// No `scheme:` prefix, or a scheme WRP does not define.
    UnknownScheme,
    /// `dns:` and `event:` need an authority; device ids need an id.
    EmptyAuthority,
    /// `self:` must have an empty authority.
    SelfWithAuthority,
    /// A mac id that is not exactly 12 hex digits once `:-.,` separators are removed.
    InvalidMac,
}

impl fmt::Display for LocatorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LocatorError::UnknownScheme => {
                "expected one of the schemes mac, uuid, serial, dns, event, self"
            }
            LocatorError::EmptyAuthority => "the locator has an empty authority",
            LocatorError::SelfWithAuthority => "a self: locator must not have an authority",
            LocatorError::InvalidMac => "a mac device id must be 12 hex digits",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for LocatorError {}

/// A parsed locator, borrowing from its text. Surrounding white space is trimmed from each part
/// (as wrp-go does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locator<'a> {
    pub scheme: Scheme,
    /// The device id, the DNS name, or the event type.
    pub authority: &'a str,
    /// The service, without slashes; always empty for `event:` (folded into `ignored`).
    pub service: &'a str,
    /// The rest, starting with `/` when present.
    pub ignored: &'a str,
}

impl<'a> Locator<'a> {
    pub fn parse(s: &'a str) -> Result<Self, LocatorError> {
        let (scheme, rest) = s.split_once(':').ok_or(LocatorError::UnknownScheme)?;
        let scheme = Scheme::parse(scheme.trim()).ok_or(LocatorError::UnknownScheme)?;
        let (authority, rest) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
        // A service is one non-empty segment; anything else after the authority is ignored.
        let (mut service, mut ignored) = match rest.strip_prefix('/') {
            Some(after) if !after.is_empty() && !after.starts_with('/') => {
                let end = after.find('/').unwrap_or(after.len());
                (&after[..end], &after[end..])
            }
            _ => ("", rest),
        };
        let authority = authority.trim();
        match scheme {
            Scheme::Dns | Scheme::Event | Scheme::Uuid | Scheme::Serial if authority.is_empty() => {
                return Err(LocatorError::EmptyAuthority)
            }
            Scheme::Own if !authority.is_empty() => return Err(LocatorError::SelfWithAuthority),
            Scheme::Mac => {
                DeviceId::mac(authority)?;
            }
            Scheme::Event => {
                // An event type is everything up to the first slash; the rest is the event's own.
                ignored = rest;
                service = "";
            }
            _ => {}
        }
        Ok(Locator {
            scheme,
            authority,
            service: service.trim(),
            ignored: ignored.trim(),
        })
    }

    /// The device this locator names, when its scheme names devices (mac, uuid, serial, dns).
    pub fn device_id(&self) -> Option<DeviceId<'a>> {
        match self.scheme {
            Scheme::Mac => DeviceId::mac(self.authority).ok(),
            Scheme::Uuid | Scheme::Serial | Scheme::Dns => Some(DeviceId(IdRepr::Verbatim {
                scheme: self.scheme,
                id: self.authority,
            })),
            Scheme::Event | Scheme::Own => None,
        }
    }

    /// For `event:` locators, the event type (the authority).
    pub fn event_type(&self) -> Option<&'a str> {
        (self.scheme == Scheme::Event).then_some(self.authority)
    }
}

/// A device id in talaria's canonical form (webpa-common `device.ParseID`): the scheme
/// lower-cased; for `mac`, the separators `:-.,` removed and the 12 hex digits lower-cased; for
/// `uuid`, `serial` and `dns` the id kept verbatim (case included). Routing, hashing and the
/// device registry all key on this form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceId<'a>(IdRepr<'a>);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum IdRepr<'a> {
    Mac([u8; 12]),
    Verbatim { scheme: Scheme, id: &'a str },
}

impl<'a> DeviceId<'a> {
    /// Parses a device name such as `MAC:11-22-33-44-55-66/config/x` (→ `mac:112233445566`).
    /// Only `scheme:id` and an optional `/service` are looked at; anything after is ignored.
    pub fn parse(name: &'a str) -> Result<Self, LocatorError> {
        let (scheme, rest) = name.split_once(':').ok_or(LocatorError::UnknownScheme)?;
        let scheme = match Scheme::parse(scheme) {
            Some(s @ (Scheme::Mac | Scheme::Uuid | Scheme::Serial | Scheme::Dns)) => s,
            _ => return Err(LocatorError::UnknownScheme),
        };
        let id = rest.split('/').next().unwrap_or_default();
        if id.is_empty() {
            return Err(LocatorError::EmptyAuthority);
        }
        if scheme == Scheme::Mac {
            return Self::mac(id);
        }
        Ok(DeviceId(IdRepr::Verbatim { scheme, id }))
    }

    fn mac(id: &str) -> Result<Self, LocatorError> {
        let mut digits = [0u8; 12];
        let mut n = 0;
        for b in id.bytes() {
            match b {
                b':' | b'-' | b'.' | b',' => {}
                b if b.is_ascii_hexdigit() => {
                    *digits.get_mut(n).ok_or(LocatorError::InvalidMac)? = b.to_ascii_lowercase();
                    n += 1;
                }
                _ => return Err(LocatorError::InvalidMac),
            }
        }
        if n == 12 {
            Ok(DeviceId(IdRepr::Mac(digits)))
        } else {
            Err(LocatorError::InvalidMac)
        }
    }

    pub fn scheme(&self) -> Scheme {
        match self.0 {
            IdRepr::Mac(_) => Scheme::Mac,
            IdRepr::Verbatim { scheme, .. } => scheme,
        }
    }

    /// The part after `scheme:`.
    pub fn id(&self) -> &str {
        match &self.0 {
            // Always ASCII hex digits, so the conversion cannot fail.
            IdRepr::Mac(digits) => core::str::from_utf8(digits).unwrap_or_default(),
            IdRepr::Verbatim { id, .. } => id,
        }
    }

    /// The length of the canonical text, `scheme:id`.
    pub fn canonical_len(&self) -> usize {
        self.scheme().as_str().len() + 1 + self.id().len()
    }
}

/// Writes the canonical text, `scheme:id`.
impl fmt::Display for DeviceId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.scheme(), self.id())
    }
}
