//! API credentials for the operator commands (`send`, `hooks`): Basic or a bearer token.

use anyhow::{Context, Result};
use clap::Args;

#[derive(Args)]
pub struct Credentials {
    /// Basic credentials, USER:PASS.
    #[arg(long, env = "XMIDT_BASIC_AUTH", conflicts_with = "token")]
    basic_auth: Option<String>,
    /// A bearer token.
    #[arg(long, env = "XMIDT_TOKEN")]
    token: Option<String>,
}

impl Credentials {
    /// Adds the credentials given, if any, to `request`.
    pub fn apply(
        &self,
        mut request: reqwest::blocking::RequestBuilder,
    ) -> Result<reqwest::blocking::RequestBuilder> {
        if let Some(basic) = &self.basic_auth {
            let (user, pass) = basic.split_once(':').context("--basic-auth is USER:PASS")?;
            request = request.basic_auth(user, Some(pass));
        }
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        Ok(request)
    }
}
