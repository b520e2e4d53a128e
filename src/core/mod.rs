//! The pure core: no JavaScript, no I/O, tested with plain `cargo test` on the host.
//! The clock and randomness come in as arguments.

pub mod config;
pub mod engine;
pub mod error;
pub mod event;
pub mod exception;
pub mod handover;
pub mod json;
pub mod lifecycle;
pub mod origin;
pub mod plan;
pub mod policy;
pub mod profile;
pub mod props;
pub mod session;
pub mod tracker;
