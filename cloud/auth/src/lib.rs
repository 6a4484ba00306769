//! Authentication and authorization shared by the Xmidt cloud services, as bascule does it.
//!
//! - [`ApiAuth`] guards API routes: HTTP Basic against configured users and/or bearer JWTs
//!   (RS256/ES256 by default) with keys from PEM files, JWKS files, a JWKS URL or a themis-style
//!   key URL; then optional capability checks ([`CapabilityChecker`]). [`ApiAuth::layer`] is a
//!   tower layer for axum routers; [`Principal`] is an extractor.
//! - [`DeviceTokenValidator`] checks device tokens on talaria's connect route, with its own
//!   config and keys, so device and API tokens never cross (talaria#568).
//! - [`check_wrp_partners`] is scytale's WRP partner rule.
//!
//! ```no_run
//! # async fn example() -> Result<(), xmidt_auth::ConfigError> {
//! use axum::{routing::get, Router};
//! use xmidt_auth::{ApiAuth, ApiAuthConfig, Principal};
//!
//! let config = ApiAuthConfig {
//!     basic: vec!["dXNlcjpwYXNz".to_owned()],
//!     ..ApiAuthConfig::default()
//! };
//! let auth = ApiAuth::from_config(&config)?;
//! let app: Router = Router::new()
//!     .route("/api/v3/devices", get(|p: Principal| async move { p.subject }))
//!     .layer(auth.layer());
//! # Ok(())
//! # }
//! ```

mod api;
mod basic;
mod caps;
mod config;
mod error;
mod http;
mod jwt;
mod keys;
mod partners;
mod principal;

pub use api::{ApiAuth, DeviceTokenValidator};
pub use caps::CapabilityChecker;
pub use config::{
    ApiAuthConfig, CapabilityConfig, CheckMode, DeviceAuthConfig, JwtConfig, KeysConfig,
};
pub use error::{AuthError, ConfigError, KeyFetchError, TokenError};
pub use http::{json_error, ApiAuthLayer, ApiAuthService};
pub use jsonwebtoken::Algorithm;
pub use partners::{
    check_wrp_partners, PartnerAction, PartnerDecision, PartnerError, PartnerReason,
};
pub use principal::{Principal, PrincipalKind, PARTNER_ID_CLAIM};
