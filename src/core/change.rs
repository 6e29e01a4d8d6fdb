//! One change to one record, validated on the way in so that nothing malformed ever reaches the queue.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::ArgumentError;

/// A row or a patch: column name to JSON value.
pub type Row = serde_json::Map<String, Value>;

/// Postgres truncates identifiers longer than this, so a longer table or column name can only be a mistake.
const MAX_IDENTIFIER_BYTES: usize = 63;
/// Generous for any real key (uuid, slug, composite) while keeping URLs and the queue bounded.
const MAX_ID_BYTES: usize = 1024;
/// The column that carries a row's last-writer-wins timestamp.
pub const LAST_CHANGED: &str = "last_changed";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Create a row that must not exist yet.
    Insert,
    /// Patch the given columns of an existing row.
    Update,
    /// Write the full row, whether or not it exists.
    Upsert,
    /// Remove the row.
    Delete,
}

impl Op {
    pub fn parse(name: &str) -> Option<Op> {
        match name {
            "insert" => Some(Op::Insert),
            "update" => Some(Op::Update),
            "upsert" => Some(Op::Upsert),
            "delete" => Some(Op::Delete),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Insert => "insert",
            Op::Update => "update",
            Op::Upsert => "upsert",
            Op::Delete => "delete",
        }
    }
}

/// Lower is more urgent; the derived order is therefore "most urgent first".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Critical = 0,
    High = 1,
    Medium = 2,
    Low = 3,
}

impl Priority {
    pub const ALL: [Priority; 4] = [Priority::Critical, Priority::High, Priority::Medium, Priority::Low];

    /// The name as serialized (`critical`, `high`, `medium`, `low`).
    pub fn parse(name: &str) -> Option<Priority> {
        Priority::ALL.into_iter().find(|p| p.name() == name)
    }

    pub fn name(self) -> &'static str {
        ["critical", "high", "medium", "low"][self.index()]
    }

    pub fn from_index(index: u32) -> Option<Priority> {
        Priority::ALL.get(index as usize).copied()
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// A validated change. `data` is `None` only for deletes; `last_changed` is lifted out of the data so that a
/// delete can still carry one.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub table: String,
    pub id: String,
    pub op: Op,
    pub data: Option<Row>,
    pub priority: Priority,
    pub last_changed: Option<Value>,
    /// Skip the server's last-writer-wins check: a conflict resolved for the client (`clientWins`, or a merge
    /// function's result).
    pub force: bool,
}

impl Change {
    /// Checks every argument and names the first bad one. A delete may carry data, of which only
    /// `last_changed` is kept (it lets the server refuse a delete older than the stored row).
    pub fn new(table: &str, id: &str, op: Op, data: Option<Row>, priority: Priority) -> Result<Change, ArgumentError> {
        check_identifier("table", table)?;
        if id.is_empty() || id.len() > MAX_ID_BYTES || id.contains('\0') {
            return Err(ArgumentError::new(
                "id",
                format!("must be a non-empty string or number of at most {MAX_ID_BYTES} bytes without NUL"),
            ));
        }
        if let Some(row) = &data {
            for column in row.keys() {
                check_identifier("data", column)
                    .map_err(|_| ArgumentError::new("data", format!("has an invalid column name {column:?}")))?;
            }
        }
        let last_changed = data.as_ref().and_then(|row| row.get(LAST_CHANGED)).filter(|v| !v.is_null()).cloned();
        let data = match (op, data) {
            (Op::Delete, _) => None,
            (Op::Update, Some(row)) if row.is_empty() => {
                return Err(ArgumentError::new("data", "an update needs at least one column"));
            }
            (_, None) => {
                return Err(ArgumentError::new("data", format!("is required for {}", op.as_str())));
            }
            (_, data) => data,
        };
        Ok(Change { table: table.to_owned(), id: id.to_owned(), op, data, priority, last_changed, force: false })
    }
}

fn check_identifier(argument: &'static str, name: &str) -> Result<(), ArgumentError> {
    if name.is_empty() || name.len() > MAX_IDENTIFIER_BYTES || name.contains('\0') {
        return Err(ArgumentError::new(
            argument,
            format!("must be a non-empty name of at most {MAX_IDENTIFIER_BYTES} bytes without NUL"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(value: Value) -> Option<Row> {
        value.as_object().cloned()
    }

    #[test]
    fn rejects_each_bad_argument_by_name() {
        let cases = [
            Change::new("", "1", Op::Upsert, row(json!({"a": 1})), Priority::High),
            Change::new(&"t".repeat(64), "1", Op::Upsert, row(json!({"a": 1})), Priority::High),
            Change::new("t", "", Op::Upsert, row(json!({"a": 1})), Priority::High),
            Change::new("t", "a\0b", Op::Upsert, row(json!({"a": 1})), Priority::High),
            Change::new("t", "1", Op::Insert, None, Priority::High),
            Change::new("t", "1", Op::Update, row(json!({})), Priority::High),
            Change::new("t", "1", Op::Upsert, row(json!({"": 1})), Priority::High),
        ];
        let names: Vec<_> = cases.into_iter().map(|c| c.unwrap_err().argument).collect();
        assert_eq!(names, ["table", "table", "id", "id", "data", "data", "data"]);
    }

    #[test]
    fn delete_keeps_only_last_changed() {
        let change =
            Change::new("t", "1", Op::Delete, row(json!({"last_changed": "2026-01-01", "x": 1})), Priority::Low)
                .unwrap();
        assert_eq!(change.data, None);
        assert_eq!(change.last_changed, Some(json!("2026-01-01")));
    }

    #[test]
    fn op_and_priority_names_round_trip() {
        for op in [Op::Insert, Op::Update, Op::Upsert, Op::Delete] {
            assert_eq!(Op::parse(op.as_str()), Some(op));
        }
        assert_eq!(Op::parse("merge"), None);
        assert_eq!(Priority::from_index(2), Some(Priority::Medium));
        assert_eq!(Priority::from_index(4), None);
    }
}
