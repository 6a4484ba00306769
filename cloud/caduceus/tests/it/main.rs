//! Caduceus over real sockets on 127.0.0.1: one test binary, so the PostgreSQL server the
//! harness starts is shared.

mod common;
mod delivery;
mod intake;
mod lifecycle;
mod openapi;
mod registration;
