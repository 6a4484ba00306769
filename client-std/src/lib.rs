//! `client-std`: the Xmidt device client for Linux, a drop-in replacement for the C parodus.
//!
//! The protocol is [`xmidt_client_core`]'s (sans-IO, shared with the firmware); this crate
//! drives it with tokio: the cloud WebSocket (tokio-tungstenite, rustls), token fetches
//! (reqwest), the libparodus IPC (nanomsg SP over TCP or ipc, written here), CRUD tags in a
//! JSON file, and parodus's health files. The `parodus` binary takes parodus's command line.
//!
//! # Embedding
//!
//! [`Device::spawn`] starts a device on its own thread. In-process services are registered
//! with [`Device::register`] and work exactly like IPC services: both are a [`ServiceSink`]
//! for downstream messages, and both send upstream through the same path.
//!
//! ```no_run
//! # async fn demo() -> Result<(), client_std::Error> {
//! use client_std::{Config, Device};
//! use tokio_util::sync::CancellationToken;
//!
//! let mut config = Config::new("11:22:33:44:55:66", "http://127.0.0.1:6400");
//! config.local_url = None; // in-process services only
//! let device = Device::spawn(config, CancellationToken::new())?;
//! let mut config_service = device.register("config").await?;
//! while let Some(request) = config_service.recv().await {
//!     // decode `request` (WRP msgpack), answer with `config_service.send(answer)`
//! #   let _ = request;
//! }
//! device.shutdown("demo_done");
//! device.join().await
//! # }
//! ```

mod cloud;
mod config;
mod device;
mod error;
mod health;
mod ipc;
mod services;
mod tags;
mod tls;
mod token;

pub mod cli;

pub use config::{Config, IpFamily, DEFAULT_LOCAL_URL, MAX_MESSAGE};
pub use device::{Device, Status};
pub use error::Error;
pub use services::{Gone, LocalService, ServiceSink};
pub use xmidt_client_core::Stats;
