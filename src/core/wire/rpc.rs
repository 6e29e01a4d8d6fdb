//! `rpc` mode: the whole batch in one call of `record_sync_apply(changes jsonb, low_water bigint)`, which
//! applies the writes in order, each in its own savepoint, and answers one result per write.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::Value;

use super::encode;
use super::response::{decode_result, not_json};
use super::HttpRequest;
use crate::core::change::{Op, Row};
use crate::core::engine::{Batch, ChangeOutcome, OutgoingChange};

#[derive(Serialize)]
struct Body<'a> {
    changes: Vec<WireChange<'a>>,
    low_water: u64,
}

#[derive(Serialize)]
struct WireChange<'a> {
    client_id: &'a str,
    seq: u64,
    table: &'a str,
    id: &'a str,
    op: Op,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Row>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_changed: Option<&'a Value>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    force: bool,
}

/// The call for some of the batch's writes (all of them, or a part after the whole was refused).
pub(super) fn request(batch: &Batch, members: &[usize], function: &str, client_id: &str) -> HttpRequest {
    let changes = members.iter().filter_map(|&i| batch.changes.get(i)).map(|c: &OutgoingChange| WireChange {
        client_id,
        seq: c.seq,
        table: &c.table,
        id: &c.id,
        op: c.op,
        data: c.data.as_ref(),
        last_changed: c.last_changed.as_ref(),
        force: c.force,
    });
    let body = Body { changes: changes.collect(), low_water: batch.low_water };
    HttpRequest {
        method: "POST",
        path: format!("/rpc/{}", encode::path_segment(function)),
        headers: vec![("Content-Type", "application/json".to_owned())],
        body: Some(serde_json::to_string(&body).unwrap_or_default()),
    }
}

/// One outcome per result the server gave for a write of the call; writes it did not answer are left out
/// (the engine counts them as transient failures).
pub(super) fn outcomes(batch: &Batch, members: &[usize], body: &str) -> Result<Vec<ChangeOutcome>, String> {
    let unreadable = |why: String| format!("unreadable answer from the sync function: {why}");
    let results = match serde_json::from_str::<Value>(body) {
        Ok(Value::Array(results)) => results,
        Ok(_) => return Err(unreadable("not an array".into())),
        Err(e) => return Err(unreadable(not_json(&e))),
    };
    let sent: HashSet<u64> = members.iter().filter_map(|&i| batch.changes.get(i)).map(|c| c.seq).collect();
    let mut outcomes = Vec::with_capacity(results.len());
    for result in &results {
        let outcome = decode_result(result).map_err(unreadable)?;
        if sent.contains(&outcome.seq) {
            outcomes.push(outcome);
        }
    }
    Ok(outcomes)
}
