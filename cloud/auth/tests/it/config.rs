//! The README's YAML example and the config defaults.

use std::time::Duration;

use serde::Deserialize;
use xmidt_auth::{
    Algorithm, ApiAuth, ApiAuthConfig, CheckMode, DeviceAuthConfig, DeviceTokenValidator,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceConfig {
    api: ApiAuthConfig,
    device: DeviceAuthConfig,
}

/// The YAML block after the `config-example` marker in README.md.
fn readme_example() -> &'static str {
    let readme = include_str!("../../README.md");
    let after_marker = readme
        .split_once("<!-- config-example -->")
        .map(|(_, rest)| rest)
        .expect("README has the config-example marker");
    let body = after_marker
        .split_once("```yaml\n")
        .map(|(_, rest)| rest)
        .expect("a yaml block follows the marker");
    body.split_once("```")
        .map(|(yaml, _)| yaml)
        .expect("block closed")
}

#[test]
fn readme_example_parses() {
    let config: ServiceConfig = serde_yaml_ng::from_str(readme_example()).expect("README YAML");
    let api = &config.api;
    assert_eq!(api.basic.len(), 2);
    let jwt = api.jwt.as_ref().expect("api jwt");
    assert_eq!(jwt.algorithms, [Algorithm::RS256, Algorithm::ES256]);
    assert_eq!(jwt.leeway, Duration::from_secs(5));
    assert_eq!(jwt.keys.refresh_interval, Duration::from_secs(3600));
    assert_eq!(jwt.keys.pem_files.len(), 1);
    let caps = api.capabilities.as_ref().expect("capabilities");
    assert_eq!(caps.mode, CheckMode::Enforce);
    assert_eq!(caps.prefixes, ["x1:webpa:api:", "x1:xmidt:api:"]);
    assert!(!api.is_open());
    // Basic credentials stay out of debug output.
    assert!(!format!("{api:?}").contains("dXNlcjpwYXNz"));

    let device = &config.device;
    assert!(!device.allow_missing);
    let djwt = device.jwt.as_ref().expect("device jwt");
    assert_eq!(djwt.default_kid.as_deref(), Some("current"));
    assert_eq!(
        djwt.keys.key_url_template.as_deref(),
        Some("http://themis:6500/keys/{keyID}")
    );
    // The device part needs no files and no runtime, so it builds as written.
    assert!(DeviceTokenValidator::from_config(device).is_ok());
}

#[test]
fn empty_config_means_auth_off() {
    let config: ServiceConfig = serde_yaml_ng::from_str("api: {}\ndevice: {}\n").unwrap();
    assert!(config.api.is_open());
    assert_eq!(config.api.realm, "xmidt");
    assert!(!ApiAuth::from_config(&config.api).unwrap().is_enabled());
}

#[test]
fn typos_and_bad_values_are_refused() {
    for yaml in [
        "api: {basics: [a]}\ndevice: {}\n",
        "api: {jwt: {leeway: soon}}\ndevice: {}\n",
        "api: {jwt: {algorithms: [none]}}\ndevice: {}\n",
        "api: {capabilities: {mode: sometimes}}\ndevice: {}\n",
    ] {
        assert!(
            serde_yaml_ng::from_str::<ServiceConfig>(yaml).is_err(),
            "{yaml}"
        );
    }
}
