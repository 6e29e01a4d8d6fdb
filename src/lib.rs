//! record-sync: queues individual record changes, merges repeated changes to the same record, and sends them to
//! a PostgREST (Supabase) backend in batches by priority deadline.
//!
//! [`core`] is the sans-IO engine: pure Rust, no clock, no I/O, testable natively. The browser shell that owns
//! timers, `fetch` and storage is compiled only for wasm32.

pub mod core;
/// The JSON views JS sees of the core's types, in its camelCase names (compiled natively too, for the tests).
mod views;

/// The browser shell: the `RecordSync` class exported to JS (public so the wasm-bindgen tests can drive it).
#[cfg(all(target_arch = "wasm32", feature = "web"))]
pub mod web;

/// The wasm's allocator (Cargo.toml says why talc). Natively the system's.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
