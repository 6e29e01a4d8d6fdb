//! `rpc` mode: the whole batch in one call of `record_sync_apply(changes jsonb, low_water bigint)`, which
//! applies the writes in order, each in its own savepoint, and answers one result per write.

use super::encode;
use super::response::{decode_results, AnswerError};
use super::HttpRequest;
use crate::core::engine::{Batch, ChangeOutcome};
use crate::core::json::ObjectWriter;
use crate::core::payload::Payload;

/// The call for some of the batch's writes (all of them, or a part after the whole was refused).
pub(super) fn request<P: Payload>(batch: &Batch<P>, members: &[usize], function: &str, client_id: &str) -> HttpRequest {
    let mut body = String::new();
    let mut o = ObjectWriter::new(&mut body);
    let changes: Vec<_> = members.iter().filter_map(|&i| batch.changes.get(i)).collect();
    crate::core::json::write_array(o.key("changes"), &changes, |c, out| {
        let mut w = ObjectWriter::new(out);
        // A write restored from an earlier page goes under the client id its seq belongs to (its replay).
        w.str("client_id", c.client.as_deref().unwrap_or(client_id))
            .u64("seq", c.seq)
            .str("table", &c.table)
            .str("id", &c.id);
        w.str("op", c.op.as_str());
        if let Some(data) = &c.data {
            data.write_json(w.key("data"));
        }
        if let Some(stamp) = &c.last_changed {
            w.str("last_changed", stamp);
        }
        if c.force {
            w.bool("force", true);
        }
        w.end();
    });
    o.u64("low_water", batch.low_water).end();
    HttpRequest {
        method: "POST",
        path: format!("/rpc/{}", encode::path_segment(function)),
        headers: vec![("Content-Type", "application/json".to_owned())],
        body: Some(body),
    }
}

/// One outcome per result the server gave for a write of the call; writes it did not answer are left out
/// (the engine counts them as transient failures), and so are results for writes it was not sent.
pub(super) fn outcomes<P: Payload>(
    batch: &Batch<P>,
    members: &[usize],
    body: &str,
) -> Result<Vec<ChangeOutcome<P>>, AnswerError> {
    let mut outcomes = decode_results(body).map_err(AnswerError::Function)?;
    // A map to itself, not a set: the scheduler's type, so no hash table's code of its own in the wasm.
    let sent: crate::core::hash::FastMap<u64, u64> =
        members.iter().filter_map(|&i| batch.changes.get(i)).map(|c| (c.seq, c.seq)).collect();
    outcomes.retain(|outcome| sent.contains_key(&outcome.seq));
    Ok(outcomes)
}
