//! What the core needs of a row: the engine is generic over it, so that in the browser rows stay JavaScript
//! objects (merged by property assignment, serialized once by `JSON.stringify` when sent) and natively, in
//! tests, they are `serde_json` maps.

use std::rc::Rc;

/// A row or a patch: column name to value. `Clone` must copy as far as this trait can tell (a change made
/// through it to one copy must not show in the other): the engine clones a pending write to send it while it
/// keeps it.
pub trait Payload: Clone + Default {
    /// Later columns win: `changes` written over `self`.
    fn patch(&mut self, changes: Self);

    fn is_empty(&self) -> bool;

    /// Column names, in the payload's order.
    fn columns(&self) -> Vec<String>;

    /// The first column name that is not a valid identifier, by [`super::change::is_identifier`]. A payload
    /// type that checks its names when a row is made may answer `None`.
    fn invalid_column(&self) -> Option<String>;

    /// One column's value, as far as the core reads values: `last_changed` and primary keys.
    fn column(&self, name: &str) -> Column;

    /// Leaves a column out (the catch-up feed's own columns, before a remote row reaches the app).
    fn remove_column(&mut self, name: &str);

    /// Appends the row as a JSON object.
    fn write_json(&self, out: &mut String);

    /// A row from the text of a JSON object (a stored record, a server's answer). `None` if it is not one.
    fn from_json(text: &str) -> Option<Self>;
}

/// A payload shared until written, as the browser's rows are (the shell's row type holds an `Rc` of the
/// JS object): a copy for a batch is a count, and a patch copies the row only if a batch still holds it.
///
/// Every `&mut self` method here must go through `Rc::make_mut`: that is what keeps copies apart.
impl<P: Payload> Payload for Rc<P> {
    fn patch(&mut self, changes: Self) {
        Rc::make_mut(self).patch(Rc::unwrap_or_clone(changes));
    }

    fn is_empty(&self) -> bool {
        P::is_empty(self)
    }

    fn columns(&self) -> Vec<String> {
        P::columns(self)
    }

    fn invalid_column(&self) -> Option<String> {
        P::invalid_column(self)
    }

    fn column(&self, name: &str) -> Column {
        P::column(self, name)
    }

    fn remove_column(&mut self, name: &str) {
        Rc::make_mut(self).remove_column(name);
    }

    fn write_json(&self, out: &mut String) {
        P::write_json(self, out);
    }

    fn from_json(text: &str) -> Option<Self> {
        P::from_json(text).map(Rc::new)
    }
}

/// A column's value as the core sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Column {
    Absent,
    Null,
    Text(String),
    /// Any other value, as JSON text (`7`, `true`, `{"a":1}`).
    Other(String),
}

impl Column {
    /// The value as a record id: strings as they are, numbers as written (`7` names the record `"7"`).
    pub fn id_text(&self) -> Option<&str> {
        match self {
            Column::Text(text) | Column::Other(text) => Some(text),
            Column::Absent | Column::Null => None,
        }
    }
}

/// The payload natively: a `serde_json` map (tests, benches, property tests against a model server).
#[cfg(any(test, not(target_arch = "wasm32")))]
mod native {
    use serde_json::{Map, Value};

    use super::{Column, Payload};

    pub type Row = Map<String, Value>;

    impl Payload for Row {
        fn patch(&mut self, changes: Self) {
            self.extend(changes);
        }

        fn is_empty(&self) -> bool {
            Map::is_empty(self)
        }

        fn columns(&self) -> Vec<String> {
            self.keys().cloned().collect()
        }

        fn invalid_column(&self) -> Option<String> {
            self.keys().find(|k| !crate::core::change::is_identifier(k)).cloned()
        }

        fn column(&self, name: &str) -> Column {
            match self.get(name) {
                None => Column::Absent,
                Some(Value::Null) => Column::Null,
                Some(Value::String(s)) => Column::Text(s.clone()),
                Some(other) => Column::Other(other.to_string()),
            }
        }

        fn remove_column(&mut self, name: &str) {
            self.remove(name);
        }

        fn write_json(&self, out: &mut String) {
            out.push_str(&serde_json::to_string(self).unwrap_or_default());
        }

        fn from_json(text: &str) -> Option<Self> {
            serde_json::from_str(text).ok()
        }
    }
}

#[cfg(any(test, not(target_arch = "wasm32")))]
pub use native::Row;

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use serde_json::json;

    use super::{Column, Payload, Row};

    fn row(value: serde_json::Value) -> Rc<Row> {
        Rc::new(value.as_object().cloned().unwrap_or_default())
    }

    /// A batch holds a copy of a pending row while the app patches the record again: the copy must not move.
    #[test]
    fn a_shared_row_is_copied_when_written() {
        let mut pending = row(json!({ "id": "a", "name": "Squat", "series": 5 }));
        let in_batch = pending.clone();
        pending.patch(row(json!({ "name": "Front squat" })));
        pending.remove_column("series");
        assert_eq!(in_batch.column("name"), Column::Text("Squat".into()));
        assert_eq!(in_batch.column("series"), Column::Other("5".into()));
        assert_eq!(pending.column("name"), Column::Text("Front squat".into()));
        assert_eq!(pending.column("series"), Column::Absent);
        let mut alone = row(json!({ "id": "b" }));
        let before = Rc::as_ptr(&alone);
        alone.patch(row(json!({ "x": 1 })));
        assert_eq!(Rc::as_ptr(&alone), before, "a row nothing else holds is written in place");
        assert_eq!(Payload::columns(&alone), ["id", "x"]);
    }
}
