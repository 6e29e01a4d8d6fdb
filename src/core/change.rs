//! One change to one record, validated on the way in so that nothing malformed ever reaches the queue.

use serde::{Deserialize, Serialize};

use super::error::ArgumentError;
use super::payload::{Column, Payload};

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
pub struct Change<P> {
    pub table: String,
    pub id: String,
    pub op: Op,
    pub data: Option<P>,
    pub priority: Priority,
    pub last_changed: Option<String>,
    /// Skip the server's last-writer-wins check: a conflict resolved for the client (`clientWins`, or a merge
    /// function's result).
    pub force: bool,
}

impl<P: Payload> Change<P> {
    /// Checks every argument and names the first bad one. A delete may carry data, of which only
    /// `last_changed` is kept (it lets the server refuse a delete older than the stored row).
    pub fn new(table: &str, id: &str, op: Op, data: Option<P>, priority: Priority) -> Result<Change<P>, ArgumentError> {
        Self::owning(table.to_owned(), id.to_owned(), op, data, priority)
    }

    /// [`Change::new`] for a caller that has the table and id as strings of its own already (the shell reads
    /// them out of JS values): they become the change's without a copy.
    pub fn owning(
        table: String,
        id: String,
        op: Op,
        data: Option<P>,
        priority: Priority,
    ) -> Result<Change<P>, ArgumentError> {
        check_identifier("table", &table)?;
        if id.is_empty() || id.len() > MAX_ID_BYTES || id.contains('\0') {
            return Err(ArgumentError::new(
                "id",
                format!("must be a non-empty string or number of at most {MAX_ID_BYTES} bytes without NUL"),
            ));
        }
        if let Some(column) = data.as_ref().and_then(Payload::invalid_column) {
            let mut message = String::from("has an invalid column name ");
            super::json::write_str(&mut message, &column);
            return Err(ArgumentError::new("data", message));
        }
        let last_changed = match data.as_ref().map_or(Column::Absent, |row| row.column(LAST_CHANGED)) {
            Column::Absent | Column::Null => None,
            Column::Text(stamp) if is_timestamp(&stamp) => Some(stamp),
            stamp => {
                let mut message = String::from("has last_changed ");
                match stamp {
                    Column::Text(text) => super::json::write_str(&mut message, &text),
                    Column::Other(json) => message.push_str(&json),
                    Column::Absent | Column::Null => {}
                }
                message.push_str(
                    ": it must be an ISO 8601 date-time string such as \"2026-11-25T10:00:00.000Z\" \
                     (new Date().toISOString()), or null",
                );
                return Err(ArgumentError::new("data", message));
            }
        };
        let data = match (op, data) {
            (Op::Delete, _) => None,
            (Op::Update, Some(row)) if Payload::is_empty(&row) => {
                return Err(ArgumentError::new("data", "needs at least one column for an update"));
            }
            (_, None) => {
                return Err(ArgumentError::new("data", format!("is required for {}", op.as_str())));
            }
            (_, data) => data,
        };
        Ok(Change { table, id, op, data, priority, last_changed, force: false })
    }
}

/// An ISO 8601 date, or date and time with an optional fraction and offset (`Z`, `+hh`, `+hh:mm`, `+hhmm`):
/// what Postgres reads as a `timestamptz` the same way on every server. Words it also reads (`now`,
/// `infinity`, `yesterday`) are refused: `infinity` would make a row that no later write can replace, and the
/// others mean a different time on every retry.
fn is_timestamp(text: &str) -> bool {
    timestamp_micros(text).is_some()
}

/// Microseconds since 1970-01-01 UTC of such a timestamp (no offset: UTC, as `record_sync_apply` reads it), so
/// that stamps written differently (`Z` or `+00:00`, milliseconds or microseconds) compare by time.
pub(crate) fn timestamp_micros(text: &str) -> Option<i64> {
    fn digits(bytes: &[u8], at: usize, n: usize) -> Option<i64> {
        let part = bytes.get(at..at + n)?;
        part.iter().all(u8::is_ascii_digit).then(|| part.iter().fold(0, |v, d| v * 10 + i64::from(d - b'0')))
    }
    let b = text.as_bytes();
    let (year, month, day) = (digits(b, 0, 4)?, digits(b, 5, 2)?, digits(b, 8, 2)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    // Postgres refuses a day the month does not have; refused here, it is the app's TypeError, not a write that fails.
    let month_days = match month {
        2 => 28 + i64::from(leap),
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    let date_ok =
        b[4] == b'-' && b[7] == b'-' && year >= 1 && (1..=12).contains(&month) && (1..=month_days).contains(&day);
    date_ok.then_some(())?;
    // Days from the civil date (Howard Hinnant's algorithm), exact for the proleptic Gregorian calendar.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    if b.len() == 10 {
        return Some(days * 86_400_000_000);
    }
    let (hour, minute) = (digits(b, 11, 2)?, digits(b, 14, 2)?);
    ((b[10] == b'T' || b[10] == b' ') && b[13] == b':' && hour <= 24 && minute <= 59).then_some(())?;
    let (mut at, mut second, mut micros) = (16, 0, 0);
    if b.get(at) == Some(&b':') {
        second = digits(b, at + 1, 2).filter(|&s| s <= 60)?;
        at += 3;
        if b.get(at) == Some(&b'.') {
            let fraction = b[at + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            (fraction > 0).then_some(())?;
            micros = b[at + 1..at + 1 + fraction.min(6)].iter().fold(0, |v, d| v * 10 + i64::from(d - b'0'))
                * 10_i64.pow(6 - fraction.min(6) as u32);
            at += 1 + fraction;
        }
    }
    let offset_minutes = match &b[at..] {
        [] | [b'Z'] => 0,
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let hours = digits(rest, 0, 2).filter(|&h| h <= 15)?;
            let minutes = match rest.len() {
                2 => 0,
                4 => digits(rest, 2, 2)?,
                5 if rest[2] == b':' => digits(rest, 3, 2)?,
                _ => return None,
            };
            (minutes <= 59).then_some(())?;
            let offset = hours * 60 + minutes;
            if *sign == b'-' {
                -offset
            } else {
                offset
            }
        }
        _ => return None,
    };
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000_000 + micros)
}

/// A table or column name Postgres keeps as written: not empty, not truncated, no NUL.
pub fn is_identifier(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_IDENTIFIER_BYTES && !name.contains('\0')
}

fn check_identifier(argument: &'static str, name: &str) -> Result<(), ArgumentError> {
    if !is_identifier(name) {
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
    use crate::core::Row;
    use serde_json::{json, Value};

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
    fn last_changed_must_be_an_iso_timestamp() {
        for good in [
            "2026-01-01",
            "2026-11-25T10:00:00.000Z",
            "2026-11-25T10:00:00Z",
            "2026-11-25 10:00:00+02",
            "2026-11-25T10:00:00.123456+05:30",
            "2026-11-25T10:00-0800",
            "2026-11-25T10:00:00",
            "2024-02-29",
            "2000-02-29T00:00:00Z",
        ] {
            let data = row(json!({ "last_changed": good }));
            assert!(Change::new("t", "1", Op::Upsert, data, Priority::Low).is_ok(), "{good}");
        }
        for bad in [
            json!("infinity"),
            json!("-infinity"),
            json!("now"),
            json!("yesterday"),
            json!("2026"),
            json!("2026-13-01"),
            json!("2024-02-30"),
            json!("2026-02-29"),
            json!("1900-02-29"),
            json!("2026-04-31T10:00:00Z"),
            json!("2026-01-01T25:00:00Z"),
            json!("2026-01-01T10:00:00.Z"),
            json!("2026-01-01T10:00:00+1"),
            json!("2026-01-01T10:00:00 UTC"),
            json!(12345),
            json!(true),
        ] {
            let data = row(json!({ "last_changed": bad }));
            let error = Change::new("t", "1", Op::Upsert, data, Priority::Low).unwrap_err();
            assert_eq!(error.argument, "data", "{bad}");
            assert!(error.message.contains("last_changed"), "{bad}: {}", error.message);
        }
        let at = |text: &str| timestamp_micros(text).unwrap();
        assert_eq!(at("1970-01-01"), 0);
        assert_eq!(at("2026-11-25T10:00:00.000Z"), at("2026-11-25T10:00:00+00:00"));
        assert_eq!(at("2026-11-25T12:00:00+02"), at("2026-11-25T10:00:00Z"));
        assert_eq!(at("2026-11-25T10:00:00.5Z") - at("2026-11-25T10:00:00Z"), 500_000);
        assert_eq!(at("2026-03-01T00:00:00Z") - at("2026-02-28T00:00:00Z"), 86_400_000_000);
        assert!(at("2026-11-25T10:00:00.123456+00:00") > at("2026-11-25T10:00:00.123Z"));
        let null = row(json!({ "last_changed": null }));
        assert!(Change::new("t", "1", Op::Upsert, null, Priority::Low).is_ok());
    }

    #[test]
    fn delete_keeps_only_last_changed() {
        let change =
            Change::new("t", "1", Op::Delete, row(json!({"last_changed": "2026-01-01", "x": 1})), Priority::Low)
                .unwrap();
        assert_eq!(change.data, None);
        assert_eq!(change.last_changed.as_deref(), Some("2026-01-01"));
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
