//! # inhouse-tracker
//!
//! Durable event tracking for Chrome Manifest V3 extensions, sending to the Inhouse API
//! (`POST {base}/chrome/events/track` with the `x-inhouse-*` headers).
//!
//! - [`core`]: pure Rust — validation, the durable queue, retry policy, response
//!   classification. No I/O; tested on the host.
//! - `web` (wasm32 only): the browser edge — `chrome.storage.local`, `fetch`, timers and
//!   `chrome.alarms`, `chrome.runtime`.
//! - `api` (wasm32 only): the `#[wasm_bindgen]` class the npm package's loader wraps.
#![deny(missing_debug_implementations)]

pub mod core;

#[cfg(target_arch = "wasm32")]
pub mod api;
#[cfg(target_arch = "wasm32")]
pub mod web;

pub use crate::core::error::{Error, ErrorCode};

/// Talc instead of the default dlmalloc: a maintained allocator that makes the wasm ~7 KB
/// (~2.8 KB gzipped) smaller.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
