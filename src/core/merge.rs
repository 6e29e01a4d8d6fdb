//! How a new change folds into the pending change of the same record.
//!
//! Each op is a function on the stored row (`None` = no row): insert(A) writes A where there is no row,
//! update(U) patches an existing row and does nothing to a missing one, upsert(B) makes the row B (it carries
//! the full row), delete removes it. A merged entry is the composition of the two, so that sending it once
//! leaves the server exactly where sending both in order would. The table (pending down, new across):
//!
//! | pending \ new | update               | upsert     | delete         | insert       |
//! |---------------|----------------------|------------|----------------|--------------|
//! | insert(A)     | insert(A + U)        | insert(B)  | nothing sent   | RecordExists |
//! | update(U1)    | update(U1 + U2)      | upsert(B)  | delete         | RecordExists |
//! | upsert(A)     | upsert(A + U)        | upsert(B)  | delete         | upsert(B)    |
//! | delete        | delete (no-op patch) | upsert(B)  | delete         | upsert(B)    |
//!
//! `+` is "later fields win". Choices in the open cells: an insert after an update is refused, because the
//! update says the row exists and a silent upsert could overwrite a row the caller did not mean to; an update
//! after a delete is dropped, because on the server it would patch nothing; an insert after a delete or upsert
//! becomes an upsert, because the row may exist on the server and the caller wants it to be B.
//!
//! "Nothing sent" holds only because a pending insert has never left the client: an insert that may have
//! reached the server (its request failed without an answer) is turned into an upsert before it re-enters the
//! queue, and upsert + delete is a delete. And only while no earlier write of the record is in flight or on the
//! failed list: such a write may leave a row behind (a delete that fails), so there the pair is sent as a delete
//! (see `Entry::then`).

use super::change::Op;
use super::payload::Payload;

/// The result of folding a new change into a pending one.
#[derive(Clone, Debug, PartialEq)]
pub enum Merged<P> {
    /// One change that has the effect of both.
    Into(Op, Option<P>),
    /// The two cancel out: the record never reached the server and should not.
    Cancelled,
}

/// The one refused cell of the table above: an insert for a record that exists (pending insert or update). The
/// caller turns it into an error naming the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InsertOfExisting;

/// Whether [`merge`] refuses `new` after `pending`: callers check this before they give up the pending write.
pub fn refuses(pending: Op, new: Op) -> bool {
    matches!((pending, new), (Op::Insert | Op::Update, Op::Insert))
}

/// The merge table above. Takes the pending columns by value: a patch extends them in place, without a copy.
pub fn merge<P: Payload>(
    pending: Op,
    pending_data: Option<P>,
    new: Op,
    new_data: Option<P>,
) -> Result<Merged<P>, InsertOfExisting> {
    use Op::*;
    if refuses(pending, new) {
        return Err(InsertOfExisting);
    }
    let merged = match (pending, new) {
        (Insert, Delete) => Merged::Cancelled,
        (Insert, Update) => Merged::Into(Insert, Some(patch(pending_data, new_data))),
        (Upsert, Update) => Merged::Into(Upsert, Some(patch(pending_data, new_data))),
        (Update, Update) => Merged::Into(Update, Some(patch(pending_data, new_data))),
        (Delete, Update) => Merged::Into(Delete, None),
        (Insert, Upsert) => Merged::Into(Insert, new_data),
        (Update | Upsert | Delete, Upsert) | (Upsert | Delete, Insert) => Merged::Into(Upsert, new_data),
        (_, Delete) => Merged::Into(Delete, None),
        (Insert | Update, Insert) => return Err(InsertOfExisting),
    };
    Ok(merged)
}

/// The pending columns overwritten by the new ones.
fn patch<P: Payload>(base: Option<P>, changes: Option<P>) -> P {
    match (base, changes) {
        (Some(mut row), Some(changes)) => {
            row.patch(changes);
            row
        }
        (row, changes) => row.or(changes).unwrap_or_default(),
    }
}

/// The later of two `last_changed` stamps: a merged change speaks for its newest part.
pub(crate) fn newer_stamp(pending: Option<String>, new: Option<String>) -> Option<String> {
    new.or(pending)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Row;
    use serde_json::{json, Value};

    fn row(value: Value) -> Row {
        value.as_object().cloned().unwrap()
    }

    fn cell(pending: Op, new: Op) -> Result<Merged<Row>, InsertOfExisting> {
        let pending_data = match pending {
            Op::Delete => None,
            _ => Some(row(json!({"id": "1", "a": 1, "b": 1}))),
        };
        let new_data = match new {
            Op::Delete => None,
            _ => Some(row(json!({"b": 2, "c": 2}))),
        };
        merge(pending, pending_data, new, new_data)
    }

    fn into(op: Op, data: Value) -> Result<Merged<Row>, InsertOfExisting> {
        Ok(Merged::Into(op, Some(row(data))))
    }

    const PATCHED: fn() -> Value = || json!({"id": "1", "a": 1, "b": 2, "c": 2});
    const NEW: fn() -> Value = || json!({"b": 2, "c": 2});

    #[test]
    fn pending_insert() {
        assert_eq!(cell(Op::Insert, Op::Update), into(Op::Insert, PATCHED()));
        assert_eq!(cell(Op::Insert, Op::Upsert), into(Op::Insert, NEW()));
        assert_eq!(cell(Op::Insert, Op::Delete), Ok(Merged::Cancelled));
        assert_eq!(cell(Op::Insert, Op::Insert), Err(InsertOfExisting));
    }

    #[test]
    fn pending_update() {
        assert_eq!(cell(Op::Update, Op::Update), into(Op::Update, PATCHED()));
        assert_eq!(cell(Op::Update, Op::Upsert), into(Op::Upsert, NEW()));
        assert_eq!(cell(Op::Update, Op::Delete), Ok(Merged::Into(Op::Delete, None)));
        assert_eq!(cell(Op::Update, Op::Insert), Err(InsertOfExisting));
    }

    #[test]
    fn pending_upsert() {
        assert_eq!(cell(Op::Upsert, Op::Update), into(Op::Upsert, PATCHED()));
        assert_eq!(cell(Op::Upsert, Op::Upsert), into(Op::Upsert, NEW()));
        assert_eq!(cell(Op::Upsert, Op::Delete), Ok(Merged::Into(Op::Delete, None)));
        assert_eq!(cell(Op::Upsert, Op::Insert), into(Op::Upsert, NEW()));
    }

    #[test]
    fn pending_delete() {
        assert_eq!(cell(Op::Delete, Op::Update), Ok(Merged::Into(Op::Delete, None)));
        assert_eq!(cell(Op::Delete, Op::Upsert), into(Op::Upsert, NEW()));
        assert_eq!(cell(Op::Delete, Op::Delete), Ok(Merged::Into(Op::Delete, None)));
        assert_eq!(cell(Op::Delete, Op::Insert), into(Op::Upsert, NEW()));
    }

    #[test]
    fn later_stamp_wins_and_absent_keeps_earlier() {
        let stamp = |s: &str| Some(s.to_owned());
        assert_eq!(newer_stamp(stamp("1"), stamp("2")), stamp("2"));
        assert_eq!(newer_stamp(stamp("1"), None), stamp("1"));
    }
}
