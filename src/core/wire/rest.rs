//! PostgREST `rest` mode. Every request asks PostgREST to return the primary keys it touched, so that only
//! rows it names count as written:
//! - consecutive inserts/upserts of a table with the same columns: one bulk `POST ... ?on_conflict=pk` with
//!   `resolution=ignore-duplicates`; a row not returned already existed and gets a conditional `PATCH` of its
//!   full row (the only extra request, and only for existing rows);
//! - each update: one `PATCH ...?pk=in.(id)&or=(last_changed.is.null,last_changed.lte."ts")`, so an older
//!   write never overwrites a newer row (last-writer-wins);
//! - consecutive deletes of a table with the same `last_changed`: one conditional `DELETE ...?pk=in.(...)`.
//!
//! A conditional write that touched nothing is followed by one `GET` of the rows it named: a row that is there
//! is a conflict (with that row), one that is not is missing (an update) or already gone (a delete). Requests
//! keep the batch's order, which is what keeps parents before children; only a run of one-record `PATCH`es and
//! `GET`s, whose order does not matter, may be out together (exchange.rs).

use crate::core::FastMap;

use super::encode;
use super::response::AnswerError;
use super::HttpRequest;
use crate::core::change::{Op, LAST_CHANGED};
use crate::core::engine::OutgoingChange;
use crate::core::json::{write_str, Json};
use crate::core::payload::{Column, Payload};
use crate::core::sort::sort_names;

/// Keeps a bulk delete's or read's URL well under the 8 KB that common proxies accept.
const MAX_ID_LIST_BYTES: usize = 4_000;

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
    /// Insert rows that all have these columns, leaving existing rows alone.
    Write { columns: Vec<String> },
    /// Patch one row with the write's data, if it is not newer than the write.
    Patch,
    /// Delete rows, those not newer than the writes (which share one `last_changed`).
    Delete,
    /// Read the rows, after a conditional write touched none of them; what an absent row means.
    Read { absent: Absent },
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Absent {
    /// An update or upsert found nothing to write over.
    Missing,
    /// A delete of a row that is not there is done (idempotent).
    Deleted,
}

impl Group {
    /// The same request for some of its writes.
    pub fn with(&self, members: &[usize]) -> Group {
        Group { kind: self.kind.clone(), pk: self.pk.clone(), members: members.to_vec() }
    }
}

pub(super) fn primary_key<'a>(keys: &'a FastMap<String, String>, table: &str) -> &'a str {
    keys.get(table).map_or("id", String::as_str)
}

/// The row a bulk write sends: the data, with the primary key filled from the id when the data lacks it.
fn columns_with_key<P: Payload>(change: &OutgoingChange<P>, pk: &str) -> Vec<String> {
    let mut columns = change.data.as_ref().map(Payload::columns).unwrap_or_default();
    if !columns.iter().any(|c| c == pk) {
        columns.push(pk.to_owned());
    }
    sort_names(&mut columns);
    columns
}

/// Appends the row, with the primary key set to the record's id where the row does not name it.
fn write_row_with_key<P: Payload>(out: &mut String, change: &OutgoingChange<P>, pk: &str) {
    let mut row = String::new();
    match &change.data {
        Some(data) => data.write_json(&mut row),
        None => row.push_str("{}"),
    }
    let has_key = change.data.as_ref().is_some_and(|data| data.column(pk) != Column::Absent);
    if has_key || !row.starts_with('{') {
        out.push_str(&row);
        return;
    }
    out.push('{');
    write_str(out, pk);
    out.push(':');
    write_str(out, &change.id);
    let rest = row.get(1..).unwrap_or_default();
    if !rest.trim_start().starts_with('}') {
        out.push(',');
    }
    out.push_str(rest);
}

/// Splits a batch into requests, in order.
pub(super) fn plan<P: Payload>(changes: &[OutgoingChange<P>], keys: &FastMap<String, String>) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for (index, change) in changes.iter().enumerate() {
        let pk = primary_key(keys, &change.table);
        let kind = match change.op {
            Op::Insert | Op::Upsert => Kind::Write { columns: columns_with_key(change, pk) },
            Op::Update => Kind::Patch,
            Op::Delete => Kind::Delete,
        };
        if let Some(last) = groups.last_mut() {
            let first = &changes[last.members[0]];
            let same_table = first.table == change.table;
            let joins = match (&last.kind, &kind) {
                (Kind::Write { columns: a }, Kind::Write { columns: b }) => same_table && a == b,
                (Kind::Delete, Kind::Delete) => {
                    let ids = last.members.iter().chain([&index]).map(|&i| changes[i].id.as_str());
                    same_table
                        && first.last_changed == change.last_changed
                        && first.force == change.force
                        && encode::in_list(ids).len() <= MAX_ID_LIST_BYTES
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

/// The last-writer-wins filter of a conditional write: the stored row has no stamp or one not newer.
fn unless_newer<P>(change: &OutgoingChange<P>) -> String {
    let stamp = match &change.last_changed {
        Some(_) if change.force => return String::new(),
        Some(stamp) => stamp,
        None => return String::new(),
    };
    let column = encode::column(LAST_CHANGED);
    format!("&or=({column}.is.null,{column}.lte.{})", encode::value(stamp))
}

pub(super) fn request<P: Payload>(group: &Group, changes: &[OutgoingChange<P>]) -> HttpRequest {
    let first = &changes[group.members[0]];
    let pk = encode::column(&group.pk);
    let table = encode::path_segment(&first.table);
    let ids = || encode::in_list(group.members.iter().map(|&i| changes[i].id.as_str()));
    let json = || ("Content-Type", "application/json".to_owned());
    let returning = || ("Prefer", "return=representation".to_owned());
    match &group.kind {
        Kind::Write { columns } => {
            let members: Vec<&OutgoingChange<P>> = group.members.iter().map(|&i| &changes[i]).collect();
            let mut rows = String::new();
            crate::core::json::write_array(&mut rows, &members, |change, out| {
                write_row_with_key(out, change, &group.pk)
            });
            HttpRequest {
                method: "POST",
                path: format!(
                    "/{table}?on_conflict={pk}&columns={}&select={pk}",
                    encode::columns(columns.iter().map(String::as_str))
                ),
                headers: vec![json(), ("Prefer", "resolution=ignore-duplicates,return=representation".to_owned())],
                body: Some(rows),
            }
        }
        Kind::Patch => HttpRequest {
            method: "PATCH",
            path: format!("/{table}?{pk}={}{}&select={pk}", ids(), unless_newer(first)),
            headers: vec![json(), returning()],
            body: Some(first.data.as_ref().map_or_else(
                || "{}".to_owned(),
                |data| {
                    let mut body = String::new();
                    data.write_json(&mut body);
                    body
                },
            )),
        },
        Kind::Delete => HttpRequest {
            method: "DELETE",
            path: format!("/{table}?{pk}={}{}&select={pk}", ids(), unless_newer(first)),
            headers: vec![returning()],
            body: None,
        },
        Kind::Read { .. } => HttpRequest {
            method: "GET",
            path: format!("/{table}?{pk}={}&select=*", ids()),
            headers: vec![],
            body: None,
        },
    }
}

/// The rows of a 2xx answer, or why it is not the JSON array of rows PostgREST gives when asked to return
/// them.
pub(super) fn returned_rows(body: &str) -> Result<Vec<Json<'_>>, AnswerError> {
    match Json::parse(body) {
        Ok(Json::Array(items)) if items.iter().all(|item| matches!(item, Json::Object(..))) => Ok(items),
        _ => Err(AnswerError::NotRows(body.trim().chars().take(80).collect())),
    }
}

/// The ids of `rows`, as the keys of a map whose values stay empty: the type of the primary keys' map, where a
/// set of strings was another hash table's code in the wasm.
pub(super) fn ids_of(rows: &[Json<'_>], pk: &str) -> FastMap<String, String> {
    rows.iter().filter_map(|row| row.get(pk)).map(|id| (id_text(id), String::new())).collect()
}

pub(super) fn row_with_id<'r, 't>(rows: &'r [Json<'t>], pk: &str, id: &str) -> Option<&'r Json<'t>> {
    rows.iter().find(|row| row.get(pk).is_some_and(|v| id_text(v) == id))
}

/// A key value as a record id: strings as they are, anything else as its JSON text (`7` is record "7").
pub fn id_text(value: &Json<'_>) -> String {
    match value {
        Json::String(s) => String::from(&**s),
        other => other.to_text(),
    }
}
