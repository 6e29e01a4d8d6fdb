//! The sync engine, free of any browser or clock: every call takes `now` in milliseconds, and
//! [`Engine::poll_timeout`] says when to call back (the quinn-proto / str0m model).

mod backoff;
mod change;
mod config;
mod engine;
mod error;
mod hash;
pub mod journal;
pub mod json;
mod merge;
pub mod owner;
mod payload;
mod queue;
mod read;
pub mod remote;
mod snapshot;
mod sort;
mod stats;
pub mod wire;

pub use backoff::Backoff;
pub use change::{Change, Op, Priority};
pub use config::{Config, ConflictStrategy, Fill, DEFAULT_INTERVALS_MS};
pub use engine::{
    Batch, ChangeOutcome, Conflict, ConflictReason, Engine, Event, FailedView, Failure, Outcome, OutgoingChange,
    Output, PendingView, Resolution, Transmit,
};
pub use error::{ArgumentError, EngineError, RestoreError};
pub use hash::{FastMap, FoldHasher};
pub use merge::{merge, InsertOfExisting, Merged};
#[cfg(any(test, not(target_arch = "wasm32")))]
pub use payload::Row;
pub use payload::{Column, Payload};
pub use snapshot::{SavedEntry, SavedState, Snapshot, SnapshotError};
pub use stats::{Latency, PendingByPriority, Stats};
