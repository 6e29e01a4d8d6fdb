//! The engine's durable state as plain data, so the shell can persist it and a reload resumes where it
//! stopped. Session counters (stats) are not part of it.
//!
//! A write in flight when the snapshot is taken is saved as pending: its request may or may not have reached
//! the server, so an insert among them is saved as an upsert, and its seq is kept so that the server answers
//! a replay as applied.

use serde::Serialize;

use super::change::{Change, Op, Priority};
use super::config::Config;
use super::engine::{Engine, Failure};
use super::error::EngineError;
use super::json::{Json, ObjectWriter};
use super::payload::Payload;
use super::queue::Entry;
use super::read::Fields;
use super::sort::sort_by_key;

pub const VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot<P> {
    pub version: u32,
    pub next_seq: u64,
    /// In send order.
    pub entries: Vec<SavedEntry<P>>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedEntry<P> {
    pub table: String,
    pub id: String,
    pub op: Op,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<P>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_changed: Option<String>,
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

impl<P: Payload> Snapshot<P> {
    /// Reads a snapshot from its JSON text.
    pub fn parse(text: &str) -> Result<Snapshot<P>, String> {
        Snapshot::read(&Json::parse(text)?)
    }

    /// Reads a snapshot as [`Snapshot`] serializes it (the one reader; see [`Fields`]).
    pub fn read(value: &Json<'_>) -> Result<Snapshot<P>, String> {
        let f = Fields::of(value, "snapshot")?;
        let entries = f.array("entries")?.iter().map(SavedEntry::read).collect::<Result<_, _>>()?;
        Ok(Snapshot { version: f.u32("version")?, next_seq: f.u64("nextSeq")?, entries })
    }
}

/// Native callers (tests, tools) read snapshots through serde; it goes through [`Snapshot::read`].
/// Natively, tests read snapshots with serde_json: through the one reader.
#[cfg(any(test, not(target_arch = "wasm32")))]
impl<'de, P: Payload> serde::Deserialize<'de> for Snapshot<P> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Snapshot<P>, D::Error> {
        let text = serde_json::Value::deserialize(deserializer)?.to_string();
        Snapshot::parse(&text).map_err(<D::Error as serde::de::Error>::custom)
    }
}

impl<P: Payload> SavedEntry<P> {
    pub fn read(value: &Json<'_>) -> Result<SavedEntry<P>, String> {
        let f = Fields::of(value, "entry")?;
        let op = f.str("op")?;
        let priority = f.str("priority")?;
        Ok(SavedEntry {
            table: f.str("table")?.to_owned(),
            id: f.str("id")?.to_owned(),
            op: Op::parse(op).ok_or_else(|| format!("entry.op {op} is not an op"))?,
            data: f.row("data")?,
            last_changed: match f.get("lastChanged") {
                None => None,
                Some(stamp) => Some(stamp.as_str().ok_or("entry.lastChanged is not a string")?.to_owned()),
            },
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
            state: SavedState::read(f.get("state").unwrap_or(&Json::Null))?,
        })
    }
}

impl SavedState {
    /// `{ kind: "pending" | "blocked" }` or `{ kind: "failed", failure, failed_at }` (the field names serde's
    /// tagged form gives a struct variant).
    fn read(value: &Json<'_>) -> Result<SavedState, String> {
        let f = Fields::of(value, "entry.state")?;
        match f.str("kind")? {
            "pending" => Ok(SavedState::Pending),
            "blocked" => Ok(SavedState::Blocked),
            "failed" => {
                let failure = Fields::of(f.get("failure").unwrap_or(&Json::Null), "entry.state.failure")?;
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
pub struct SavedRef<'a, P> {
    pub table: &'a str,
    pub id: &'a str,
    pub op: Op,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<&'a P>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_changed: Option<&'a str>,
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

impl<P: Payload> SavedRef<'_, P> {
    /// Appends the entry as JSON, as [`SavedEntry::read`] reads it (the fields and order serde gave it, so
    /// that records written before and after read the same).
    pub fn write_json(&self, out: &mut String) {
        let mut o = ObjectWriter::new(out);
        o.str("table", self.table).str("id", self.id).str("op", self.op.as_str());
        if let Some(data) = self.data {
            data.write_json(o.key("data"));
        }
        if let Some(stamp) = self.last_changed {
            o.str("lastChanged", stamp);
        }
        o.str("priority", self.priority.name()).u64("order", self.order).u64("seq", self.seq);
        o.u64("queuedAt", self.queued_at).u64("deadline", self.deadline);
        o.u64("attempts", self.attempts.into()).u64("changes", self.changes.into());
        if self.force {
            o.bool("force", true);
        }
        if self.solo {
            o.bool("solo", true);
        }
        let state = o.key("state");
        let mut s = ObjectWriter::new(state);
        match &self.state {
            SavedState::Pending => s.str("kind", "pending"),
            SavedState::Blocked => s.str("kind", "blocked"),
            SavedState::Failed { failure, failed_at } => {
                s.str("kind", "failed");
                failure.write_json(s.key("failure"));
                s.u64("failed_at", *failed_at)
            }
        }
        .end();
        o.end();
    }

    pub fn to_owned(&self) -> SavedEntry<P> {
        SavedEntry {
            table: self.table.to_owned(),
            id: self.id.to_owned(),
            op: self.op,
            data: self.data.cloned(),
            last_changed: self.last_changed.map(str::to_owned),
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

impl<P: Payload> Engine<P> {
    pub fn export(&self) -> Snapshot<P> {
        let entries = self.export_refs().iter().map(SavedRef::to_owned).collect();
        Snapshot { version: VERSION, next_seq: self.next_seq(), entries }
    }

    /// Every write, in send order, as [`Engine::export`] saves them.
    pub fn export_refs(&self) -> Vec<SavedRef<'_, P>> {
        let mut entries: Vec<SavedRef<'_, P>> = Vec::new();
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
    pub fn export_record(&self, table: &str, id: &str) -> Vec<SavedRef<'_, P>> {
        let Some(key) = self.existing_key(table, id) else { return Vec::new() };
        let mut entries: Vec<SavedRef<'_, P>> = Vec::new();
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
    fn saved<'a>(&'a self, entry: &'a Entry<P>, in_flight: bool, state: SavedState) -> SavedRef<'a, P> {
        let op = if in_flight && entry.op == Op::Insert { Op::Upsert } else { entry.op };
        SavedRef {
            table: self.table_name(entry),
            id: &entry.key.1,
            op,
            data: entry.data.as_ref(),
            last_changed: entry.last_changed.as_deref(),
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
    pub fn restore(config: Config, snapshot: Snapshot<P>) -> Result<Engine<P>, EngineError> {
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
pub fn sort_saved<P>(entries: &mut Vec<SavedEntry<P>>) {
    sort_by_key(entries, |e| [e.order, matches!(e.state, SavedState::Blocked) as u64, 0]);
}

fn sort_refs<P>(entries: &mut Vec<SavedRef<'_, P>>) {
    sort_by_key(entries, |e| [e.order, matches!(e.state, SavedState::Blocked) as u64, 0]);
}
