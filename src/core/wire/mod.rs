//! The wire plan: pure functions from a batch to HTTP requests and from HTTP responses to per-write outcomes,
//! for PostgREST's plain REST API (`rest`) and for the `record_sync_apply` SQL function (`rpc`).
//! [`Exchange`] runs one batch through them as a sans-IO state machine, inside the engine
//! ([`crate::core::Engine::poll_output`]); the shell only moves bytes.

mod custom;
mod encode;
mod exchange;
mod response;
mod rest;
mod rpc;

use crate::core::FastMap;

pub use custom::{write_change, MALFORMED};
pub use encode::{column, columns, in_list, path_segment};
pub use exchange::{Exchange, MAX_IN_FLIGHT};
pub use response::{
    decode_result, failure_message, failure_outcome, is_transient_sqlstate, retry_after_ms, AnswerError, HttpResponse,
    ResultsError,
};
pub use rest::id_text;

#[derive(Clone, Debug, PartialEq)]
pub struct WireConfig {
    pub mode: WireMode,
    /// Identifies this client's writes to the server for exactly-once replay (`rpc`).
    pub client_id: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum WireMode {
    /// Plain PostgREST: bulk upserts, patches and deletes per table. `primary_keys` maps a table to its
    /// primary-key column where that is not `id`.
    Rest { primary_keys: FastMap<String, String> },
    /// One call of the named SQL function per batch.
    Rpc { function: String },
    /// The app's own `send(batch)`: the request's body is the batch it receives (`{ id, clientId, lowWater,
    /// changes }`), and the answer's body the JSON of the results it resolved to.
    Custom,
}

impl Default for WireConfig {
    fn default() -> Self {
        WireConfig { mode: WireMode::Rpc { function: DEFAULT_RPC_FUNCTION.to_owned() }, client_id: String::new() }
    }
}

pub const DEFAULT_RPC_FUNCTION: &str = "record_sync_apply";

/// One request, relative to the base URL. Authentication headers are the shell's: the core never sees a token.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpRequest {
    pub method: &'static str,
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<String>,
}
