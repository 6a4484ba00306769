//! Mimisbrunnr end to end: real sockets, real receivers, a real caduceus, PostgreSQL and an
//! SQS-compatible server (moto).

mod api;
mod caduceus;
mod delivery;
mod harness;
mod openapi;
mod sqs;
