//! The engine's durable state as plain data, so the shell can persist it and a reload resumes where it
//! stopped. Session counters (stats) are not part of it.
//!
//! A write in flight when the snapshot is taken is saved as pending: its request may or may not have reached
//! the server, so an insert among them is saved as an upsert, and its seq is kept so that the server answers
//! a replay as applied.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::change::{Change, Op, Priority, Row};
use super::config::Config;
use super::engine::{Engine, Failure};
use super::error::EngineError;
use super::queue::Entry;
use super::read::Fields;
use super::sort::sort_by_key;

pub const VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub version: u32,
    pub next_seq: u64,
    /// In send order.
    pub entries: Vec<SavedEntry>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedEntry {
    pub table: String,
    pub id: String,
    pub op: Op,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Row>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_changed: Option<Value>,
    pub priority: Priority,
    pub order: u64,
    pub seq: u64,
    pub queued_at: u64,
    pub deadline: u64,
    pub attempts: u32,
    pub changes: u32,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub solo: bool,
    pub state: SavedState,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum SavedState {
    Pending,
    /// Waiting behind the failed write of the same record.
    Blocked,
    Failed {
        failure: Failure,
        failed_at: u64,
    },
}

impl Snapshot {
    /// Reads a snapshot as [`Snapshot`] serializes it (the one reader; see [`Fields`]).
    pub fn read(value: &Value) -> Result<Snapshot, String> {
        let f = Fields::of(value, "snapshot")?;
        let entries = f.array("entries")?.iter().map(SavedEntry::read).collect::<Result<_, _>>()?;
        Ok(Snapshot { version: f.u32("version")?, next_seq: f.u64("nextSeq")?, entries })
    }
}

/// Native callers (tests, tools) read snapshots through serde; it goes through [`Snapshot::read`].
impl<'de> Deserialize<'de> for Snapshot {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Snapshot, D::Error> {
        Snapshot::read(&Value::deserialize(deserializer)?).map_err(D::Error::custom)
    }
}

impl SavedEntry {
    pub fn read(value: &Value) -> Result<SavedEntry, String> {
        let f = Fields::of(value, "entry")?;
        let op = f.str("op")?;
        let priority = f.str("priority")?;
        Ok(SavedEntry {
            table: f.str("table")?.to_owned(),
            id: f.str("id")?.to_owned(),
            op: Op::parse(op).ok_or_else(|| format!("entry.op {op} is not an op"))?,
            data: f.row("data")?,
            last_changed: f.get("lastChanged").cloned(),
            priority: Priority::parse(priority)
                .ok_or_else(|| format!("entry.priority {priority} is not a priority"))?,
            order: f.u64("order")?,
            seq: f.u64("seq")?,
            queued_at: f.u64("queuedAt")?,
            deadline: f.u64("deadline")?,
            attempts: f.u32("attempts")?,
            changes: f.u32("changes")?,
            force: f.flag("force")?,
            solo: f.flag("solo")?,
            state: SavedState::read(f.get("state").unwrap_or(&Value::Null))?,
        })
    }
}

impl SavedState {
    /// `{ kind: "pending" | "blocked" }` or `{ kind: "failed", failure, failed_at }` (the field names serde's
    /// tagged form gives a struct variant).
    fn read(value: &Value) -> Result<SavedState, String> {
        let f = Fields::of(value, "entry.state")?;
        match f.str("kind")? {
            "pending" => Ok(SavedState::Pending),
            "blocked" => Ok(SavedState::Blocked),
            "failed" => {
                let failure = Fields::of(f.get("failure").unwrap_or(&Value::Null), "entry.state.failure")?;
                let failure = Failure {
                    code: failure.opt_str("code")?,
                    message: failure.str("message")?.to_owned(),
                    permanent: failure.required_flag("permanent")?,
                };
                Ok(SavedState::Failed { failure, failed_at: f.u64("failed_at")? })
            }
            kind => Err(format!("unknown state {kind}")),
        }
    }
}

/// A write as [`SavedEntry`] serializes it, borrowed from the engine: the journal writes these every tick,
/// without copying rows.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedRef<'a> {
    pub table: &'a str,
    pub id: &'a str,
    pub op: Op,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<&'a Row>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_changed: Option<&'a Value>,
    pub priority: Priority,
    pub order: u64,
    pub seq: u64,
    pub queued_at: u64,
    pub deadline: u64,
    pub attempts: u32,
    pub changes: u32,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub solo: bool,
    pub state: SavedState,
}

impl SavedRef<'_> {
    pub fn to_owned(&self) -> SavedEntry {
        SavedEntry {
            table: self.table.to_owned(),
            id: self.id.to_owned(),
            op: self.op,
            data: self.data.cloned(),
            last_changed: self.last_changed.cloned(),
            priority: self.priority,
            order: self.order,
            seq: self.seq,
            queued_at: self.queued_at,
            deadline: self.deadline,
            attempts: self.attempts,
            changes: self.changes,
            force: self.force,
            solo: self.solo,
            state: self.state.clone(),
        }
    }
}

impl Engine {
    pub fn export(&self) -> Snapshot {
        let entries = self.export_refs().iter().map(SavedRef::to_owned).collect();
        Snapshot { version: VERSION, next_seq: self.next_seq(), entries }
    }

    /// Every write, in send order, as [`Engine::export`] saves them.
    pub fn export_refs(&self) -> Vec<SavedRef<'_>> {
        let mut entries: Vec<SavedRef<'_>> = Vec::new();
        for entry in self.in_flight_entries() {
            entries.push(self.saved(entry, true, SavedState::Pending));
        }
        for entry in self.queued_entries() {
            entries.push(self.saved(entry, false, SavedState::Pending));
        }
        for (entry, failure, failed_at) in self.failed_entries() {
            entries.push(self.saved(entry, false, SavedState::Failed { failure: failure.clone(), failed_at }));
        }
        for entry in self.blocked_entries() {
            entries.push(self.saved(entry, false, SavedState::Blocked));
        }
        sort_refs(&mut entries);
        entries
    }

    /// The writes of one record as [`Engine::export`] would save them (none once it is settled): what the
    /// journal persists for a record the last tick touched.
    pub fn export_record(&self, table: &str, id: &str) -> Vec<SavedRef<'_>> {
        let Some(key) = self.existing_key(table, id) else { return Vec::new() };
        let mut entries: Vec<SavedRef<'_>> = Vec::new();
        for entry in self.in_flight_entries().filter(|e| e.key == key) {
            entries.push(self.saved(entry, true, SavedState::Pending));
        }
        if let Some(entry) = self.queued_entry(&key) {
            entries.push(self.saved(entry, false, SavedState::Pending));
        }
        if let Some((entry, failure, failed_at)) = self.failed_entry(&key) {
            entries.push(self.saved(entry, false, SavedState::Failed { failure: failure.clone(), failed_at }));
        }
        if let Some(entry) = self.blocked_entry(&key) {
            entries.push(self.saved(entry, false, SavedState::Blocked));
        }
        sort_refs(&mut entries);
        entries
    }

    /// A write in flight is saved as pending: its request may or may not have reached the server, so an
    /// insert is saved as an upsert (see `Entry::after_uncertain_attempt`).
    fn saved<'a>(&'a self, entry: &'a Entry, in_flight: bool, state: SavedState) -> SavedRef<'a> {
        let op = if in_flight && entry.op == Op::Insert { Op::Upsert } else { entry.op };
        SavedRef {
            table: self.table_name(entry),
            id: &entry.key.1,
            op,
            data: entry.data.as_ref(),
            last_changed: entry.last_changed.as_ref(),
            priority: entry.priority,
            order: entry.order,
            seq: entry.seq,
            queued_at: entry.queued_at,
            deadline: entry.deadline,
            attempts: entry.attempts,
            changes: entry.changes,
            force: entry.force,
            solo: entry.solo,
            state,
        }
    }

    /// A new engine holding the snapshot's writes. Every entry is checked as a fresh change would be; a
    /// snapshot that does not fit together is refused whole.
    pub fn restore(config: Config, snapshot: Snapshot) -> Result<Engine, EngineError> {
        let bad = |why: String| EngineError::BadSnapshot(why);
        if snapshot.version != VERSION {
            return Err(bad(format!("version {} is not {VERSION}", snapshot.version)));
        }
        let mut engine = Engine::new(config)?;
        let mut last_order = 0;
        for saved in snapshot.entries {
            let data = if saved.op == Op::Delete { None } else { saved.data.clone() };
            Change::new(&saved.table, &saved.id, saved.op, data.clone(), saved.priority)
                .map_err(|e| bad(format!("entry {}: {e}", saved.order)))?;
            if saved.order == 0
                || saved.order <= last_order
                || saved.seq < saved.order
                || saved.seq >= snapshot.next_seq
            {
                return Err(bad(format!("entry {} is out of sequence", saved.order)));
            }
            last_order = saved.order;
            let entry = Entry {
                key: engine.key_for(&saved.table, &saved.id),
                op: saved.op,
                data,
                last_changed: saved.last_changed,
                priority: saved.priority,
                order: saved.order,
                seq: saved.seq,
                queued_at: saved.queued_at,
                touched_at: saved.queued_at,
                deadline: saved.deadline,
                attempts: saved.attempts,
                changes: saved.changes.max(1),
                force: saved.force,
                solo: saved.solo,
            };
            engine.restore_entry(entry, saved.state).map_err(|()| bad(format!("entry {} conflicts", saved.order)))?;
        }
        engine.set_next_seq(snapshot.next_seq);
        Ok(engine)
    }
}

/// Send order, a blocked write after the failed one of its record.
pub fn sort_saved(entries: &mut Vec<SavedEntry>) {
    sort_by_key(entries, |e| [e.order, matches!(e.state, SavedState::Blocked) as u64, 0]);
}

fn sort_refs(entries: &mut Vec<SavedRef<'_>>) {
    sort_by_key(entries, |e| [e.order, matches!(e.state, SavedState::Blocked) as u64, 0]);
}
