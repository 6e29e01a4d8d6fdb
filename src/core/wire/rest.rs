//! PostgREST `rest` mode: consecutive inserts/upserts of a table with the same columns become one bulk
//! `POST ... ?on_conflict=pk&columns=...` with `resolution=merge-duplicates`, each update one `PATCH`,
//! consecutive deletes of a table one `DELETE ... ?pk=in.(...)`. Requests keep the batch's order, which is
//! what keeps parents before children.

use std::collections::HashMap;

use serde_json::Value;

use super::encode;
use super::HttpRequest;
use crate::core::change::{Op, Row};
use crate::core::engine::OutgoingChange;

/// Keeps a bulk delete's URL well under the 8 KB that common proxies accept.
const MAX_DELETE_QUERY_BYTES: usize = 4_000;

/// The writes of the batch one request carries, by index, all of one table.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Group {
    pub kind: Kind,
    /// The table's primary-key column.
    pub pk: String,
    pub members: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Kind {
    /// Insert or upsert rows that all have these columns.
    Write {
        columns: Vec<String>,
    },
    /// Patch one row.
    Patch,
    Delete,
}

impl Group {
    /// The same request for one of its writes alone.
    pub fn single(&self, member: usize) -> Group {
        Group { kind: self.kind.clone(), pk: self.pk.clone(), members: vec![member] }
    }
}

fn primary_key<'a>(keys: &'a HashMap<String, String>, table: &str) -> &'a str {
    keys.get(table).map_or("id", String::as_str)
}

/// The row a bulk write sends: the data, with the primary key filled from the id when the data lacks it.
fn row_with_key(change: &OutgoingChange, pk: &str) -> Row {
    let mut row = change.data.clone().unwrap_or_default();
    row.entry(pk.to_owned()).or_insert_with(|| Value::String(change.id.clone()));
    row
}

/// Splits a batch into requests, in order.
pub(super) fn plan(changes: &[OutgoingChange], keys: &HashMap<String, String>) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for (index, change) in changes.iter().enumerate() {
        let pk = primary_key(keys, &change.table);
        let kind = match change.op {
            Op::Insert | Op::Upsert => Kind::Write { columns: row_with_key(change, pk).keys().cloned().collect() },
            Op::Update => Kind::Patch,
            Op::Delete => Kind::Delete,
        };
        if let Some(last) = groups.last_mut() {
            let same_table = changes[last.members[0]].table == change.table;
            let joins = match (&last.kind, &kind) {
                (Kind::Write { columns: a }, Kind::Write { columns: b }) => same_table && a == b,
                (Kind::Delete, Kind::Delete) => {
                    let ids = last.members.iter().chain([&index]).map(|&i| changes[i].id.as_str());
                    same_table && encode::in_list(ids).len() <= MAX_DELETE_QUERY_BYTES
                }
                _ => false,
            };
            if joins {
                last.members.push(index);
                continue;
            }
        }
        groups.push(Group { kind, pk: pk.to_owned(), members: vec![index] });
    }
    groups
}

pub(super) fn request(group: &Group, changes: &[OutgoingChange]) -> HttpRequest {
    let first = &changes[group.members[0]];
    let pk = group.pk.as_str();
    let table = encode::path_segment(&first.table);
    let minimal = || ("Prefer", "return=minimal".to_owned());
    let json = || ("Content-Type", "application/json".to_owned());
    match &group.kind {
        Kind::Write { columns } => {
            let rows: Vec<Value> =
                group.members.iter().map(|&i| Value::Object(row_with_key(&changes[i], pk))).collect();
            HttpRequest {
                method: "POST",
                path: format!(
                    "/{table}?on_conflict={}&columns={}",
                    encode::column(pk),
                    encode::columns(columns.iter().map(String::as_str))
                ),
                headers: vec![json(), ("Prefer", "resolution=merge-duplicates,return=minimal".to_owned())],
                body: Some(Value::Array(rows).to_string()),
            }
        }
        Kind::Patch => HttpRequest {
            method: "PATCH",
            path: format!("/{table}?{}={}", encode::column(pk), encode::in_list([first.id.as_str()])),
            headers: vec![json(), minimal()],
            body: Some(Value::Object(first.data.clone().unwrap_or_default()).to_string()),
        },
        Kind::Delete => HttpRequest {
            method: "DELETE",
            path: format!(
                "/{table}?{}={}",
                encode::column(pk),
                encode::in_list(group.members.iter().map(|&i| changes[i].id.as_str()))
            ),
            headers: vec![minimal()],
            body: None,
        },
    }
}
