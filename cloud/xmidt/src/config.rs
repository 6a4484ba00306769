//! The one configuration file every command reads: a YAML document with a section per service,
//! overridden by `XMIDT_<SECTION>__<KEY>__...` environment variables (double underscores
//! separate levels, e.g. `XMIDT_TALARIA__DEVICE__PING_PERIOD=30s`). Unknown keys are errors, so a
//! typo fails at start with the key named, not later.

use std::path::Path;

use anyhow::{anyhow, Result};
use figment::providers::{Env, Format, Yaml};
use figment::Figment;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    pub caduceus: xmidt_caduceus::Config,
    pub mimisbrunnr: xmidt_mimisbrunnr::Config,
    pub petasos: xmidt_petasos::Config,
    pub scytale: xmidt_scytale::Config,
    pub talaria: xmidt_talaria::Config,
}

pub fn load(path: Option<&Path>) -> Result<FileConfig> {
    let mut figment = Figment::new();
    if let Some(path) = path {
        figment = figment.merge(Yaml::file_exact(path));
    }
    // Only variables with a level separator are config; XMIDT_URL and the like are not.
    let env = Env::prefixed("XMIDT_")
        .filter(|key| key.as_str().contains("__"))
        .split("__");
    figment
        .merge(env)
        .extract()
        .map_err(|e| anyhow!("bad configuration: {}", e.to_string().replace('\n', "; ")))
}
