//! Capability checks (bascule `basculecaps`): `<prefix><url-regex>:<method>`.
//!
//! A capability grants a request when
//! - it starts with one of the configured prefixes (literal or regex), and what follows is
//!   `<url-regex>:<method>` (the method is after the *last* colon, so URL patterns may hold
//!   colons);
//! - the method is the all-token (default `all`) or equals the request method in lower case;
//! - the URL regex matches the request path **from its start**: it is compiled as
//!   `^(?:<url-regex>)` and tried on the path with a leading `/` and on the path without it,
//!   so `device/.*` and `/device/.*` are the same grant. It is **not anchored at the end**, as
//!   in bascule: `/device` also grants `/device/x/stat` (write `/device$` for one path). A path
//!   starting with `//` is tried only as it is, so `/admin` does not grant `//admin`.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use regex::{Regex, RegexBuilder};
use tracing::info;

use crate::config::{CapabilityConfig, CheckMode};
use crate::error::{AuthError, ConfigError};
use crate::principal::{Principal, PrincipalKind};

/// Compiled-size cap for URL patterns, which come from tokens: enough for any sane pattern,
/// small enough that a hostile one costs little.
const URL_REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// Checks principals' capabilities against requests.
#[derive(Debug)]
pub struct CapabilityChecker {
    matchers: Vec<Regex>,
    all_method: String,
    strip_prefixes: Vec<String>,
    mode: CheckMode,
    basic_bypass: bool,
    cache: Mutex<UrlCache>,
}

impl CapabilityChecker {
    /// Compiles the prefixes. Refuses an invalid prefix regex, an empty `all_method` and a
    /// zero `cache_size`.
    pub fn new(config: &CapabilityConfig) -> Result<CapabilityChecker, ConfigError> {
        let matchers = config
            .prefixes
            .iter()
            .map(|prefix| {
                // The group keeps a top-level `|` in the prefix inside the anchor; the URL and
                // method are the last two groups whatever groups the prefix has.
                Regex::new(&format!("^(?:{prefix})(.+):(.+?)$")).map_err(|e| {
                    ConfigError::CapabilityPrefix {
                        prefix: prefix.clone(),
                        source: Box::new(e),
                    }
                })
            })
            .collect::<Result<_, _>>()?;
        if config.all_method.is_empty() {
            return Err(ConfigError::Invalid {
                field: "capabilities.all_method",
                reason: "must not be empty".to_owned(),
            });
        }
        if config.cache_size == 0 {
            return Err(ConfigError::Invalid {
                field: "capabilities.cache_size",
                reason: "must be positive".to_owned(),
            });
        }
        Ok(CapabilityChecker {
            matchers,
            all_method: config.all_method.clone(),
            strip_prefixes: config
                .strip_path_prefixes
                .iter()
                .map(|p| p.trim_end_matches('/').to_owned())
                .filter(|p| !p.is_empty())
                .collect(),
            mode: config.mode,
            basic_bypass: config.basic_bypass,
            cache: Mutex::new(UrlCache::new(config.cache_size)),
        })
    }

    /// Whether any of `capabilities` grants `method` on `path` (the request path, before
    /// `strip_path_prefixes`, which this applies).
    pub fn allows(&self, capabilities: &[String], method: &str, path: &str) -> bool {
        let path = self.strip(path);
        let method = method.to_ascii_lowercase();
        self.matchers.iter().any(|matcher| {
            capabilities.iter().any(|capability| {
                let Some(groups) = matcher.captures(capability) else {
                    return false;
                };
                let n = groups.len();
                let (Some(url), Some(cap_method)) = (groups.get(n - 2), groups.get(n - 1)) else {
                    return false;
                };
                let cap_method = cap_method.as_str();
                (cap_method == self.all_method || cap_method == method)
                    && self.url_matches(url.as_str(), path)
            })
        })
    }

    /// The check the API layer runs: `Ok` when allowed (or when the mode is monitor, after
    /// logging), else [`AuthError::Forbidden`]. Basic principals pass when `basic_bypass`.
    pub fn check(&self, principal: &Principal, method: &str, path: &str) -> Result<(), AuthError> {
        if principal.kind == PrincipalKind::Basic && self.basic_bypass {
            return Ok(());
        }
        if self.allows(&principal.capabilities, method, path) {
            return Ok(());
        }
        let reason = if principal.capabilities.is_empty() {
            "no capabilities in credentials"
        } else {
            "no capability grants this request"
        };
        match self.mode {
            CheckMode::Monitor => {
                info!(subject = %principal.subject, method, path, reason,
                    "capability check failed (monitor mode: allowed)");
                Ok(())
            }
            CheckMode::Enforce => Err(AuthError::Forbidden(format!("{reason}: {method} {path}"))),
        }
    }

    fn strip<'a>(&self, path: &'a str) -> &'a str {
        for prefix in &self.strip_prefixes {
            if let Some(rest) = path.strip_prefix(prefix.as_str()) {
                if rest.starts_with('/') {
                    return rest;
                }
            }
        }
        path
    }

    fn url_matches(&self, pattern: &str, path: &str) -> bool {
        let Some(re) = self.compile(pattern) else {
            return false;
        };
        let rooted = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        let unrooted = &rooted[1..];
        re.is_match(&rooted) || (!unrooted.starts_with('/') && re.is_match(unrooted))
    }

    fn compile(&self, pattern: &str) -> Option<Regex> {
        if let Some(entry) = self.cache_lock().get(pattern) {
            return entry;
        }
        // Compiled outside the lock; two requests may compile one pattern, which is harmless.
        let compiled = RegexBuilder::new(&format!("^(?:{pattern})"))
            .size_limit(URL_REGEX_SIZE_LIMIT)
            .build()
            .ok();
        self.cache_lock().insert(pattern, compiled.clone());
        compiled
    }

    fn cache_lock(&self) -> std::sync::MutexGuard<'_, UrlCache> {
        // The cache is consistent after every call, so a poisoned lock is still usable.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Compiled capability URL patterns, first in first out. Failed compilations are kept too, so
/// a bad pattern is not recompiled on every request.
#[derive(Debug)]
struct UrlCache {
    max: usize,
    entries: HashMap<String, Option<Regex>>,
    order: VecDeque<String>,
}

impl UrlCache {
    fn new(max: usize) -> UrlCache {
        UrlCache {
            max,
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn get(&self, pattern: &str) -> Option<Option<Regex>> {
        self.entries.get(pattern).cloned()
    }

    fn insert(&mut self, pattern: &str, regex: Option<Regex>) {
        if self.entries.contains_key(pattern) {
            return;
        }
        while self.entries.len() >= self.max {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.entries.remove(&oldest);
                }
                None => break,
            }
        }
        self.entries.insert(pattern.to_owned(), regex);
        self.order.push_back(pattern.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn checker(prefixes: &[&str]) -> CapabilityChecker {
        CapabilityChecker::new(&CapabilityConfig {
            prefixes: prefixes.iter().map(|s| (*s).to_owned()).collect(),
            ..CapabilityConfig::default()
        })
        .unwrap()
    }

    fn caps(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn literal_prefix_and_method_all() {
        let c = checker(&["x1:webpa:api:"]);
        let grant = caps(&["x1:webpa:api:.*:all"]);
        assert!(c.allows(&grant, "GET", "/api/v3/device/mac:112233445566/stat"));
        assert!(c.allows(&grant, "POST", "/anything"));
        assert!(!c.allows(&caps(&["x1:other:api:.*:all"]), "GET", "/x"));
        // The prefix must start the capability.
        assert!(!c.allows(&caps(&["zz:x1:webpa:api:.*:all"]), "GET", "/x"));
    }

    #[test]
    fn method_must_match_lowercase() {
        let c = checker(&["x1:webpa:api:"]);
        let get_only = caps(&["x1:webpa:api:device/.*/stat:get"]);
        assert!(c.allows(&get_only, "GET", "/device/mac:1/stat"));
        assert!(c.allows(&get_only, "get", "/device/mac:1/stat"));
        assert!(!c.allows(&get_only, "POST", "/device/mac:1/stat"));
        // Capability methods are lower case; "GET" in a capability matches nothing.
        assert!(!c.allows(&caps(&["x1:webpa:api:.*:GET"]), "GET", "/x"));
    }

    #[test]
    fn custom_all_method() {
        let c = CapabilityChecker::new(&CapabilityConfig {
            prefixes: caps(&["p:"]),
            all_method: "any".to_owned(),
            ..CapabilityConfig::default()
        })
        .unwrap();
        assert!(c.allows(&caps(&["p:.*:any"]), "DELETE", "/x"));
        assert!(!c.allows(&caps(&["p:.*:all"]), "DELETE", "/x"));
    }

    #[test]
    fn regex_prefixes_with_and_without_groups() {
        let c = checker(&["x1:(webpa|xmidt):api:", "mac:[0-9a-f]+:"]);
        assert!(c.allows(&caps(&["x1:xmidt:api:hook:post"]), "POST", "/hook"));
        assert!(c.allows(&caps(&["x1:webpa:api:hook:post"]), "POST", "/hook"));
        assert!(c.allows(&caps(&["mac:abc123:hook:all"]), "GET", "/hook"));
        assert!(!c.allows(&caps(&["x1:other:api:hook:post"]), "POST", "/hook"));
        // A top-level alternation in a prefix stays inside the anchor.
        let alt = checker(&["a:|b:"]);
        assert!(alt.allows(&caps(&["b:x:all"]), "GET", "/x"));
        assert!(!alt.allows(&caps(&["zb:x:all"]), "GET", "/x"));
    }

    #[test]
    fn anchored_at_start_not_at_end() {
        let c = checker(&["x1:webpa:api:"]);
        let device = caps(&["x1:webpa:api:/device:all"]);
        assert!(c.allows(&device, "GET", "/device"));
        assert!(c.allows(&device, "GET", "/device/mac:1/stat"));
        assert!(
            c.allows(&device, "GET", "/devices"),
            "not anchored at the end, as bascule"
        );
        assert!(
            !c.allows(&device, "GET", "/api/device"),
            "anchored at the start"
        );
        let exact = caps(&["x1:webpa:api:/device$:all"]);
        assert!(!c.allows(&exact, "GET", "/device/x"));
        // An alternation in the URL pattern cannot escape the start anchor.
        let alt = caps(&["x1:webpa:api:/a|/b:all"]);
        assert!(c.allows(&alt, "GET", "/b/c"));
        assert!(!c.allows(&alt, "GET", "/c/b"));
    }

    #[test]
    fn leading_slash_normalisation() {
        let c = checker(&["x1:webpa:api:"]);
        for pattern in [
            "x1:webpa:api:device/.*/config:all",
            "x1:webpa:api:/device/.*/config:all",
        ] {
            let grant = caps(&[pattern]);
            assert!(
                c.allows(&grant, "GET", "/device/DEADBEEF/config"),
                "{pattern}"
            );
            assert!(
                c.allows(&grant, "GET", "device/DEADBEEF/config"),
                "{pattern}"
            );
        }
        // "//admin" is tried only as written.
        assert!(!c.allows(&caps(&["x1:webpa:api:/admin:all"]), "GET", "//admin"));
        assert!(c.allows(&caps(&["x1:webpa:api://admin:all"]), "GET", "//admin"));
    }

    #[test]
    fn url_pattern_with_colons() {
        let c = checker(&["x1:webpa:api:"]);
        let grant = caps(&["x1:webpa:api:/device/mac:112233445566/stat:get"]);
        assert!(c.allows(&grant, "GET", "/device/mac:112233445566/stat"));
        assert!(!c.allows(&grant, "GET", "/device/mac:665544332211/stat"));
    }

    #[test]
    fn strip_path_prefixes() {
        let c = CapabilityChecker::new(&CapabilityConfig {
            prefixes: caps(&["x1:webpa:api:"]),
            strip_path_prefixes: caps(&["/api/v3", "/api/v2/"]),
            ..CapabilityConfig::default()
        })
        .unwrap();
        let grant = caps(&["x1:webpa:api:device/.*/stat:get"]);
        assert!(c.allows(&grant, "GET", "/api/v3/device/mac:1/stat"));
        assert!(c.allows(&grant, "GET", "/api/v2/device/mac:1/stat"));
        assert!(!c.allows(&grant, "GET", "/api/v33/device/mac:1/stat"));
    }

    #[test]
    fn bad_patterns_never_match_and_are_cached() {
        let c = checker(&["p:"]);
        let bad = caps(&["p:([:all"]);
        assert!(!c.allows(&bad, "GET", "/("));
        assert!(!c.allows(&bad, "GET", "/("));
        assert_eq!(c.cache_lock().entries.len(), 1);
        // Empty URL pattern: the grammar needs at least one character.
        assert!(!c.allows(&caps(&["p::all"]), "GET", "/"));
    }

    #[test]
    fn cache_is_bounded() {
        let c = CapabilityChecker::new(&CapabilityConfig {
            prefixes: caps(&["p:"]),
            cache_size: 3,
            ..CapabilityConfig::default()
        })
        .unwrap();
        for i in 0..10 {
            c.allows(&[format!("p:/x{i}:all")], "GET", "/y");
        }
        assert_eq!(c.cache_lock().entries.len(), 3);
        assert_eq!(c.cache_lock().order.len(), 3);
    }

    #[test]
    fn no_prefixes_grants_nothing() {
        let c = checker(&[]);
        assert!(!c.allows(&caps(&[".*:all"]), "GET", "/"));
    }

    #[test]
    fn bad_config() {
        assert!(CapabilityChecker::new(&CapabilityConfig {
            prefixes: caps(&["x1:(:"]),
            ..CapabilityConfig::default()
        })
        .is_err());
        assert!(CapabilityChecker::new(&CapabilityConfig {
            all_method: String::new(),
            ..CapabilityConfig::default()
        })
        .is_err());
    }

    fn principal(kind: PrincipalKind, capabilities: &[&str]) -> Principal {
        let claims = json!({"sub": "s", "capabilities": capabilities});
        let mut p = Principal::from_claims(
            kind,
            "s".into(),
            claims.as_object().cloned().unwrap_or_default(),
        );
        if kind == PrincipalKind::Basic {
            p.capabilities.clear();
        }
        p
    }

    #[test]
    fn check_modes_and_basic_bypass() {
        let enforce = checker(&["x1:webpa:api:"]);
        let jwt = principal(PrincipalKind::Jwt, &["x1:webpa:api:/device:get"]);
        assert!(enforce.check(&jwt, "GET", "/device/x").is_ok());
        let err = enforce.check(&jwt, "POST", "/device/x").unwrap_err();
        assert_eq!(err.status(), http::StatusCode::FORBIDDEN);

        let basic = principal(PrincipalKind::Basic, &[]);
        assert!(enforce.check(&basic, "POST", "/device/x").is_ok());
        let strict = CapabilityChecker::new(&CapabilityConfig {
            prefixes: caps(&["x1:webpa:api:"]),
            basic_bypass: false,
            ..CapabilityConfig::default()
        })
        .unwrap();
        assert!(strict.check(&basic, "GET", "/device").is_err());

        let monitor = CapabilityChecker::new(&CapabilityConfig {
            prefixes: caps(&["x1:webpa:api:"]),
            mode: CheckMode::Monitor,
            ..CapabilityConfig::default()
        })
        .unwrap();
        assert!(monitor.check(&jwt, "POST", "/device/x").is_ok());
    }
}
