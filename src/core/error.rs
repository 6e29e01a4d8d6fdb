//! Errors the engine returns instead of panicking: a panic in wasm poisons the module for the whole page.

use std::fmt;

/// A bad argument, naming it so the JS shell can throw a `TypeError` that says which one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgumentError {
    pub argument: &'static str,
    pub message: String,
}

impl ArgumentError {
    pub fn new(argument: &'static str, message: impl Into<String>) -> Self {
        ArgumentError { argument, message: message.into() }
    }
}

impl fmt::Display for ArgumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.argument, self.message)
    }
}

impl std::error::Error for ArgumentError {}

/// For an error whose message its `From<&T> for String` builds (without `format!`, whose machinery costs wasm):
/// the owned conversion, `Display` and `Error`, all through that one message.
macro_rules! message_error {
    ($error:ty) => {
        impl From<$error> for String {
            fn from(e: $error) -> String {
                String::from(&e)
            }
        }

        impl std::fmt::Display for $error {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&String::from(self))
            }
        }

        impl std::error::Error for $error {}
    };
}
pub(crate) use message_error;

/// A call the engine refuses in its current state. Nothing is changed when one is returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineError {
    Argument(ArgumentError),
    /// An insert for a record the queue already holds as existing; queue an upsert instead.
    RecordExists {
        table: String,
        id: String,
    },
    /// A result for a batch that is not in flight (already settled, or from before a reload).
    UnknownBatch(u64),
    /// An answer to a request that is not on its way (already answered, or from before a reload).
    UnknownRequest(u64),
    /// A snapshot that cannot be restored (wrong version, or inconsistent content).
    BadSnapshot(RestoreError),
}

impl From<ArgumentError> for EngineError {
    fn from(e: ArgumentError) -> Self {
        EngineError::Argument(e)
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Argument(e) => e.fmt(f),
            EngineError::RecordExists { table, id } => write!(
                f,
                "cannot insert {table}/{id}: the queue already holds it as existing (queue an upsert instead)"
            ),
            EngineError::UnknownBatch(id) => write!(f, "no batch {id} is in flight"),
            EngineError::UnknownRequest(id) => write!(f, "no request {id} is on its way"),
            EngineError::BadSnapshot(why) => write!(f, "cannot restore the snapshot: {why}"),
        }
    }
}

impl std::error::Error for EngineError {}

/// Why a snapshot is refused; nothing of it is restored. An entry is named by its send order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestoreError {
    /// A snapshot version this record-sync does not know.
    Version(u32),
    /// An entry that is not a change a caller could have queued.
    Entry(u64, ArgumentError),
    /// An entry out of send order, or whose seq is not between its order and the snapshot's next seq.
    OutOfSequence(u64),
    /// An entry that cannot stand beside the entries of its record before it.
    Conflicts(u64),
    /// A next seq no queue reaches (past 2^53).
    NextSeq(u64),
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreError::Version(version) => write!(f, "version {version} is not {}", crate::core::snapshot::VERSION),
            RestoreError::Entry(order, e) => write!(f, "entry {order}: {e}"),
            RestoreError::OutOfSequence(order) => write!(f, "entry {order} is out of sequence"),
            RestoreError::Conflicts(order) => write!(f, "entry {order} conflicts"),
            RestoreError::NextSeq(next) => write!(f, "next seq {next} is past 2^53"),
        }
    }
}

impl std::error::Error for RestoreError {}
