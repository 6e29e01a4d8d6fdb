//! The app's own transport (`{ send: async batch => results }`): the engine plans it like the other modes, as
//! one request whose body is the batch `send` receives and whose answer is the results it resolved to, read
//! by the one decoder of per-write results that the sync function's answers go through too.

use super::response::{decode_results, AnswerError};
use super::HttpRequest;
use crate::core::engine::{Batch, ChangeOutcome, OutgoingChange};
use crate::core::json::{write_array, ObjectWriter};
use crate::core::payload::Payload;

/// `{ id, clientId, lowWater, changes }`, as `send(batch)` receives it.
pub(super) fn request<P: Payload>(batch: &Batch<P>, client_id: &str) -> HttpRequest {
    let mut body = String::new();
    let mut o = ObjectWriter::new(&mut body);
    // A batch holds writes of one client id (the engine batches them so): a restored write's is its page's.
    let client_id = batch.changes.first().and_then(|c| c.client.as_deref()).unwrap_or(client_id);
    o.u64("id", batch.id).str("clientId", client_id).u64("lowWater", batch.low_water);
    write_array(o.key("changes"), &batch.changes, |c, out| {
        let mut w = ObjectWriter::new(out);
        write_change(&mut w, c);
        w.end();
    });
    o.end();
    HttpRequest { method: "POST", path: String::new(), headers: Vec::new(), body: Some(body) }
}

/// The members of a write as `send(batch)` receives it, without the braces: `seq, table, id, op, data?,
/// lastChanged?, priority, force?`. The shell's pending and failed lists show writes in this shape too, with
/// members of their own.
pub fn write_change<P: Payload>(o: &mut ObjectWriter<'_>, change: &OutgoingChange<P>) {
    o.u64("seq", change.seq).str("table", &change.table).str("id", &change.id).str("op", change.op.as_str());
    if let Some(data) = &change.data {
        data.write_json(o.key("data"));
    }
    if let Some(stamp) = &change.last_changed {
        o.str("lastChanged", stamp);
    }
    o.str("priority", change.priority.name());
    if change.force {
        o.bool("force", true);
    }
}

/// What a `send` that resolved to something other than results is told, before what was wrong.
pub const MALFORMED: &str =
    "transport.send must resolve to an array of { seq, status: \"applied\" | \"conflict\" | \"missing\" | \"error\", ... }: ";

/// One outcome per result `send` gave; a result that cannot be read fails the whole batch.
pub(super) fn outcomes<P: Payload>(body: &str) -> Result<Vec<ChangeOutcome<P>>, AnswerError> {
    decode_results(body).map_err(AnswerError::Send)
}
