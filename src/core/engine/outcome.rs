//! What crosses between the engine and the shell: writes going out, the server's answers, conflicts, and the
//! views of pending and failed writes.

use std::rc::Rc;

use serde::Serialize;

use crate::core::change::{Op, Priority};
use crate::core::queue::Entry;

/// A write on its way to the server.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutgoingChange<P> {
    /// Unique per client; the server recognises a replay by it.
    pub seq: u64,
    pub table: String,
    pub id: String,
    pub op: Op,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<P>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_changed: Option<String>,
    pub priority: Priority,
    /// Skip the last-writer-wins condition (the client won a conflict).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
    /// The client id `seq` belongs to, when not the engine's own (a write restored from an earlier page).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<Rc<str>>,
}

/// Writes to send in one request, in the order they must be applied.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Batch<P> {
    pub id: u64,
    pub changes: Vec<OutgoingChange<P>>,
    /// Every seq below this will never be sent again, so the server may forget it.
    pub low_water: u64,
}

/// What the server did with one write.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum Outcome<P> {
    Applied,
    /// The server's row is newer; nothing was written.
    Conflict {
        row: Option<P>,
    },
    /// The write touched no row: the row is absent or hidden from the user (row-level security). Nothing was
    /// written.
    Missing,
    /// The server refused the write and will again (validation, constraint, permission).
    Permanent {
        code: Option<String>,
        message: String,
    },
    /// It may work later (network, timeout, 408, 429, 5xx); `retry_after_ms` from `Retry-After`.
    Transient {
        message: String,
        retry_after_ms: Option<u64>,
    },
    /// The server refused a request carrying this write alone as too large (413): it goes to the failed list
    /// and is only ever sent alone again.
    TooLarge {
        message: String,
    },
}

/// The failure code of a write refused as too large.
pub const TOO_LARGE: &str = "413";
/// The failure code of a write the client won a conflict for, but whose row is gone or hidden.
pub const MISSING: &str = "missing";

/// A write the server did not take, as the app hears of it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Conflict<P> {
    pub seq: u64,
    pub table: String,
    pub id: String,
    pub op: Op,
    pub data: Option<P>,
    pub last_changed: Option<String>,
    /// The server's row (`None` when it is missing).
    pub server_row: Option<P>,
    pub reason: ConflictReason,
    pub resolution: Resolution,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ConflictReason {
    /// The server's row is newer.
    Newer,
    /// The row is absent or hidden from the user.
    Missing,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Resolution {
    /// The server's row stands (last writer wins); the write is dropped.
    ServerWins,
    /// The write was queued again, forced.
    Resent,
    /// The client was to win but there is no row to write over: the write is on the failed list.
    Failed,
    /// Left to the app's merge function (run by the shell); the write is dropped.
    Merge,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ChangeOutcome<P> {
    pub seq: u64,
    pub outcome: Outcome<P>,
}

/// A pending write as the caller sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingView<P> {
    #[serde(flatten)]
    pub write: OutgoingChange<P>,
    pub queued_at: u64,
    pub due_at: u64,
    pub attempts: u32,
    pub in_flight: bool,
    /// Waiting behind a failed write of the same record until that one is retried or discarded.
    pub blocked: bool,
}

/// A write on the failed list.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedView<P> {
    #[serde(flatten)]
    pub write: OutgoingChange<P>,
    /// Seq of the first change this write stands for: it covers its record's changes from here to `seq`.
    pub first_seq: u64,
    pub attempts: u32,
    pub error: Failure,
    pub failed_at: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    pub message: String,
    /// False when it failed by running out of retries: it may have been written, and retrying is safe.
    pub permanent: bool,
}

pub(crate) struct FailedEntry<P> {
    pub entry: Entry<P>,
    pub failure: Failure,
    pub failed_at: u64,
    /// The later writes of its record, merged, waiting until it is retried or discarded.
    pub blocked: Option<Entry<P>>,
}
