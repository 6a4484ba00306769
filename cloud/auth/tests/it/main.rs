//! Integration tests over real keys, real tokens and real sockets on 127.0.0.1. One binary
//! (modules below) so the workspace links one test executable for this crate, not five.

mod common;
mod config;
mod jwt;
mod layer;
mod remote_keys;
mod separation;
