//! Carrying one batch to the server: PostgREST through `fetch` (executing the core's wire plan), or the
//! caller's own `send(batch)`. Nothing here touches the engine; the shell reports what came back.

use js_sys::Function;
use wasm_bindgen::prelude::*;

use super::js::{self, error_message};
use super::options::HttpTransport;
use super::request::{self, Purpose, Reply};
use super::row::JsRow;
use super::{timeout, Batch, Shared};
use crate::core::json::{write_array, Json, ObjectWriter};
use crate::core::wire::{decode_result, Exchange};

type ChangeOutcome = crate::core::ChangeOutcome<JsRow>;

/// The whole batch failed before any write was answered.
pub struct BatchFailure {
    pub message: String,
    pub retry_after_ms: Option<u64>,
}

impl BatchFailure {
    fn new(message: impl Into<String>) -> Self {
        BatchFailure { message: message.into(), retry_after_ms: None }
    }
}

/// What became of a batch.
pub enum Sent {
    Answered(Vec<ChangeOutcome>),
    /// The whole batch failed before any write was answered.
    Failed(BatchFailure),
    /// No token to send with (or the server refused it): the writes without an outcome go back unsent
    /// (`needsAuth` and the next ask for a token are [`request`]'s).
    Unauthorized {
        outcomes: Vec<ChangeOutcome>,
        reason: String,
    },
    /// No token to send with: nothing went out.
    Unsent {
        reason: String,
    },
}

/// Runs the batch through the core's [`Exchange`]: one request after another, each under
/// [`request::send`]'s token rule (a refresh after a 401 is not reported to the engine: it costs no attempt).
pub async fn http(shared: &Shared, http: &HttpTransport, batch: &Batch) -> Sent {
    let mut token = match request::token(shared, http, Purpose::Writes).await {
        Ok(token) => token,
        Err(reason) => return Sent::Unsent { reason },
    };
    let mut exchange = Exchange::new(batch, &http.wire);
    while let Some(next) = exchange.next_request() {
        // Durable queue (H3): while the page is hidden, a request small enough for the keepalive budget outlives it.
        let hidden = shared.try_borrow().is_ok_and(|s| s.durable.hidden);
        let keepalive = hidden && next.body.as_ref().map_or(0, String::len) <= super::lifecycle::KEEPALIVE_BODY_BYTES;
        match request::send(shared, http, Purpose::Writes, &mut token, &next, keepalive).await {
            Reply::Answer(response) => exchange.on_response(response),
            Reply::Failed(message) => exchange.on_network_error(&message),
            Reply::Unauthorized(reason) => return Sent::Unauthorized { outcomes: exchange.finish(), reason },
        }
    }
    Sent::Answered(exchange.finish())
}

/// The caller's own `send(batch)`. What comes before and after its one await is in plain functions: a nested
/// async function would be a state machine of its own in the wasm.
pub async fn custom(send: &Function, this: &JsValue, timeout_ms: u32, client_id: &str, batch: &Batch) -> Sent {
    let returned = match send.call1(this, &custom_payload(client_id, batch)) {
        Ok(returned) => returned,
        Err(e) => return Sent::Failed(BatchFailure::new(format!("transport.send threw: {}", error_message(&e)))),
    };
    let settled = timeout::within(&returned, timeout_ms).await;
    match custom_results(settled, timeout_ms) {
        Ok(outcomes) => Sent::Answered(outcomes),
        Err(failure) => Sent::Failed(failure),
    }
}

/// What a custom `send` receives: `{ id, clientId, lowWater, changes }`.
fn custom_payload(client_id: &str, batch: &Batch) -> JsValue {
    js::view(|out| {
        let mut o = ObjectWriter::new(out);
        o.u64("id", batch.id).str("clientId", client_id).u64("lowWater", batch.low_water);
        write_array(o.key("changes"), &batch.changes, |c, out| c.write_json(out));
        o.end();
    })
}

/// What the custom `send`'s promise settled to (`None`: not within `timeout_ms`), as outcomes.
fn custom_results(
    settled: Option<Result<JsValue, JsValue>>,
    timeout_ms: u32,
) -> Result<Vec<ChangeOutcome>, BatchFailure> {
    let resolved = match settled {
        None => {
            return Err(BatchFailure::new(format!(
                "transport.send did not settle within {timeout_ms} ms (transport.timeoutMs)"
            )))
        }
        Some(Err(e)) => return Err(BatchFailure::new(format!("transport.send rejected: {}", error_message(&e)))),
        Some(Ok(value)) => value,
    };
    let malformed = |why: String| {
        BatchFailure::new(format!(
            "transport.send must resolve to an array of {{ seq, status: \"applied\" | \"conflict\" | \"missing\" | \"error\", ... }}: {why}"
        ))
    };
    if !js_sys::Array::is_array(&resolved) {
        return Err(malformed(format!("got {}", js::describe(&resolved))));
    }
    let json = js::json_text(&resolved).map_err(malformed)?;
    let Ok(Json::Array(results)) = Json::parse(&json) else {
        return Err(malformed("not a JSON array".into()));
    };
    results.iter().map(decode_result).collect::<Result<_, _>>().map_err(malformed)
}
