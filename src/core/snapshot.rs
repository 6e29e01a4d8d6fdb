//! The engine's durable state as plain data, so the shell can persist it and a reload resumes where it
//! stopped. Session counters (stats) are not part of it.
//!
//! A write in flight when the snapshot is taken is saved as pending: its request may or may not have reached
//! the server, so an insert among them is saved as an upsert, and its seq is kept so that the server answers
//! a replay as applied. A write carried from another engine behind this one's ([`Engine::carry`]) keeps its
//! seq too, with a newer place in the send order: its seq may be older than its order.

use std::rc::Rc;

use serde::Serialize;

use super::change::{Change, Op, Priority};
use super::config::Config;
use super::engine::{Engine, Failure, MAX_SEQ};
use super::error::{EngineError, RestoreError};
use super::json::{Json, JsonError, ObjectWriter};
use super::payload::Payload;
use super::queue::{Entry, TableId};
use super::read::{FieldError, Fields};
use super::sort::{permute, sort_by_key, sort_keys, SortKey};

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
    /// When its last change was made (`queued_at` in records written before it was stored).
    pub touched_at: u64,
    pub deadline: u64,
    pub attempts: u32,
    pub changes: u32,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub solo: bool,
    pub state: SavedState,
    /// The client id its seq belongs to (see [`crate::core::queue::Entry`]'s); `None`: the restoring engine's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
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
    /// No writes, new seqs from `next_seq` on: what an emptied queue, or one with nothing stored, restores from.
    pub fn empty(next_seq: u64) -> Snapshot<P> {
        Snapshot { version: VERSION, next_seq, entries: Vec::new() }
    }

    /// Reads a snapshot from its JSON text.
    pub fn parse(text: &str) -> Result<Snapshot<P>, SnapshotError> {
        Snapshot::read(&Json::parse(text)?)
    }

    /// Reads a snapshot as [`Snapshot`] serializes it (the one reader; see [`Fields`]).
    pub fn read(value: &Json<'_>) -> Result<Snapshot<P>, SnapshotError> {
        let f = Fields::of(value, "snapshot")?;
        let entries = f.array("entries")?.iter().map(SavedEntry::read).collect::<Result<_, _>>()?;
        Ok(Snapshot { version: f.u32("version")?, next_seq: f.u64("nextSeq")?, entries })
    }
}

/// Why a stored snapshot or entry cannot be read. The app reads it as a message ([`String::from`], or
/// `Display`), inside the journal's account of the record it left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotError {
    Json(JsonError),
    Field(FieldError),
    /// A compact entry's `d` names no row stored with its record (or one another entry took).
    NoRow,
    /// An `op` this record-sync does not know.
    Op(String),
    /// A `priority` this record-sync does not know.
    Priority(String),
    /// A state `kind` this record-sync does not know.
    State(String),
}

impl From<JsonError> for SnapshotError {
    fn from(e: JsonError) -> SnapshotError {
        SnapshotError::Json(e)
    }
}

impl From<FieldError> for SnapshotError {
    fn from(e: FieldError) -> SnapshotError {
        SnapshotError::Field(e)
    }
}

/// The app's message. Written without `format!`, like [`JsonError`]'s.
impl From<&SnapshotError> for String {
    fn from(e: &SnapshotError) -> String {
        let (before, value, after) = match e {
            SnapshotError::Json(e) => return String::from(*e),
            SnapshotError::Field(e) => return String::from(*e),
            SnapshotError::NoRow => return String::from("entry.d names no row stored with the record"),
            SnapshotError::Op(op) => ("entry.op ", op, " is not an op"),
            SnapshotError::Priority(priority) => ("entry.priority ", priority, " is not a priority"),
            SnapshotError::State(kind) => ("unknown state ", kind, ""),
        };
        let mut m = String::from(before);
        m.push_str(value);
        m.push_str(after);
        m
    }
}

crate::core::error::message_error!(SnapshotError);

/// Native callers (tests, tools) read snapshots through serde; it goes through [`Snapshot::read`].
/// Natively, tests read snapshots with serde_json: through the one reader.
#[cfg(any(test, not(target_arch = "wasm32")))]
impl<'de, P: Payload> serde::Deserialize<'de> for Snapshot<P> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Snapshot<P>, D::Error> {
        let text = serde_json::Value::deserialize(deserializer)?.to_string();
        Snapshot::parse(&text).map_err(<D::Error as serde::de::Error>::custom)
    }
}

/// The names an entry's fields are stored under: formats 1 and 2 (serde's camelCase names, the record's table,
/// id and row inline) and format 3 (one letter each; table and id are the record's, the row is stored beside
/// the text).
struct Names {
    op: &'static str,
    last_changed: &'static str,
    priority: &'static str,
    order: &'static str,
    seq: &'static str,
    queued_at: &'static str,
    touched_at: &'static str,
    deadline: &'static str,
    attempts: &'static str,
    changes: &'static str,
    force: &'static str,
    solo: &'static str,
    state: &'static str,
    client_id: &'static str,
}

const LONG: Names = Names {
    op: "op",
    last_changed: "lastChanged",
    priority: "priority",
    order: "order",
    seq: "seq",
    queued_at: "queuedAt",
    touched_at: "touchedAt",
    deadline: "deadline",
    attempts: "attempts",
    changes: "changes",
    force: "force",
    solo: "solo",
    state: "state",
    client_id: "clientId",
};

const SHORT: Names = Names {
    op: "o",
    last_changed: "l",
    priority: "p",
    order: "q",
    seq: "s",
    queued_at: "a",
    touched_at: "t",
    deadline: "e",
    attempts: "n",
    changes: "c",
    force: "f",
    solo: "x",
    state: "k",
    client_id: "w",
};

impl<P: Payload> SavedEntry<P> {
    /// An entry of format 1 or 2: its table, id and row inline.
    pub fn read(value: &Json<'_>) -> Result<SavedEntry<P>, SnapshotError> {
        let f = Fields::of(value, "entry")?;
        let (table, id) = (f.str("table")?.to_owned(), f.str("id")?.to_owned());
        SavedEntry::read_fields(&f, &LONG, table, id, f.row("data")?)
    }

    /// An entry of format 3 of the record `table`/`id`: its row, if any, is the `d`th of `rows` (the rows
    /// stored beside the record's text), taken out of it.
    pub fn read_compact(
        value: &Json<'_>,
        table: &str,
        id: &str,
        rows: &mut [Option<P>],
    ) -> Result<SavedEntry<P>, SnapshotError> {
        let f = Fields::of(value, "entry")?;
        let data = match f.get("d") {
            None => None,
            Some(d) => {
                let row = d.as_u64().and_then(|d| rows.get_mut(usize::try_from(d).ok()?)).and_then(Option::take);
                Some(row.ok_or(SnapshotError::NoRow)?)
            }
        };
        SavedEntry::read_fields(&f, &SHORT, table.to_owned(), id.to_owned(), data)
    }

    fn read_fields(
        f: &Fields<'_, '_>,
        n: &Names,
        table: String,
        id: String,
        data: Option<P>,
    ) -> Result<Self, SnapshotError> {
        let op = f.str(n.op)?;
        let priority = f.str(n.priority)?;
        let queued_at = f.u64(n.queued_at)?;
        Ok(SavedEntry {
            table,
            id,
            op: Op::parse(op).ok_or_else(|| SnapshotError::Op(op.to_owned()))?,
            data,
            last_changed: f.opt_str(n.last_changed)?,
            priority: Priority::parse(priority).ok_or_else(|| SnapshotError::Priority(priority.to_owned()))?,
            order: f.u64(n.order)?,
            seq: f.u64(n.seq)?,
            queued_at,
            touched_at: f.opt_u64(n.touched_at)?.unwrap_or(queued_at),
            deadline: f.u64(n.deadline)?,
            attempts: f.u32(n.attempts)?,
            changes: f.u32(n.changes)?,
            force: f.flag(n.force)?,
            solo: f.flag(n.solo)?,
            // Format 3 leaves a pending write's state out.
            state: f.get(n.state).map_or(Ok(SavedState::Pending), SavedState::read)?,
            client_id: f.opt_str(n.client_id)?,
        })
    }
}

impl SavedState {
    /// `{ kind: "pending" | "blocked" }` or `{ kind: "failed", failure, failed_at }` (the field names serde's
    /// tagged form gives a struct variant).
    fn read(value: &Json<'_>) -> Result<SavedState, SnapshotError> {
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
            kind => Err(SnapshotError::State(kind.to_owned())),
        }
    }
}

impl Failure {
    /// `{ code?, message, permanent }`: as a failed write's state is stored (and as the failed list shows it).
    pub fn write_json(&self, out: &mut String) {
        let mut o = ObjectWriter::new(out);
        if let Some(code) = &self.code {
            o.str("code", code);
        }
        o.str("message", &self.message).bool("permanent", self.permanent).end();
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
    pub touched_at: u64,
    pub deadline: u64,
    pub attempts: u32,
    pub changes: u32,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub solo: bool,
    pub state: SavedState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<&'a str>,
}

impl<P: Payload> SavedRef<'_, P> {
    /// Appends the entry as format 3 stores it ([`SavedEntry::read_compact`]): `row` is the index of its row
    /// among those stored beside the record's text.
    pub fn write_compact(&self, out: &mut String, row: Option<usize>) {
        let n = &SHORT;
        let mut o = ObjectWriter::new(out);
        o.str(n.op, self.op.as_str());
        if let Some(row) = row {
            o.u64("d", row as u64);
        }
        if let Some(stamp) = self.last_changed {
            o.str(n.last_changed, stamp);
        }
        o.str(n.priority, self.priority.name()).u64(n.order, self.order).u64(n.seq, self.seq);
        o.u64(n.queued_at, self.queued_at);
        if self.touched_at != self.queued_at {
            o.u64(n.touched_at, self.touched_at);
        }
        o.u64(n.deadline, self.deadline);
        o.u64(n.attempts, self.attempts.into()).u64(n.changes, self.changes.into());
        if self.force {
            o.bool(n.force, true);
        }
        if self.solo {
            o.bool(n.solo, true);
        }
        if let Some(client_id) = self.client_id {
            o.str(n.client_id, client_id);
        }
        if !matches!(self.state, SavedState::Pending) {
            let mut s = ObjectWriter::new(o.key(n.state));
            match &self.state {
                SavedState::Pending => {}
                SavedState::Blocked => {
                    s.str("kind", "blocked");
                }
                SavedState::Failed { failure, failed_at } => {
                    s.str("kind", "failed");
                    failure.write_json(s.key("failure"));
                    s.u64("failed_at", *failed_at);
                }
            }
            s.end();
        }
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
            touched_at: self.touched_at,
            deadline: self.deadline,
            attempts: self.attempts,
            changes: self.changes,
            force: self.force,
            solo: self.solo,
            state: self.state.clone(),
            client_id: self.client_id.map(str::to_owned),
        }
    }
}

impl<P: Payload> Engine<P> {
    /// Every write, each with the client id its seq belongs to (this engine's own named too, so that another
    /// engine restoring the snapshot under its own id sends them as the writes they were).
    pub fn export(&self) -> Snapshot<P> {
        let own = &self.config().wire.client_id;
        let entries = self
            .export_refs()
            .iter()
            .map(|e| SavedEntry { client_id: Some(e.client_id.unwrap_or(own).to_owned()), ..e.to_owned() })
            .collect();
        Snapshot { version: VERSION, next_seq: self.next_seq(), entries }
    }

    /// Every write, in send order, as [`Engine::export`] saves them.
    pub fn export_refs(&self) -> Vec<SavedRef<'_, P>> {
        // Sized up front: grown push by push, a million entries would be copied a score of times and held twice.
        let mut entries: Vec<SavedRef<'_, P>> = Vec::with_capacity(self.write_count());
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
            touched_at: entry.touched_at,
            deadline: entry.deadline,
            attempts: entry.attempts,
            changes: entry.changes,
            force: entry.force,
            solo: entry.solo,
            state,
            // `None` for the engine's own: the journal's record names its id once for all of them.
            client_id: entry.client.as_deref(),
        }
    }

    /// A new engine holding the snapshot's writes. Every entry is checked as a fresh change would be; a
    /// snapshot that does not fit together is refused whole. A write's seq may be older than its order: one
    /// carried from another engine behind this one's ([`Engine::carry`]) keeps the seq it may have been sent with.
    pub fn restore(config: Config, snapshot: Snapshot<P>) -> Result<Engine<P>, EngineError> {
        Self::restore_with(Rc::new(config), snapshot)
    }

    /// [`Engine::restore`] with another engine's config ([`Engine::shared_config`]), which is not copied.
    pub fn restore_with(config: Rc<Config>, snapshot: Snapshot<P>) -> Result<Engine<P>, EngineError> {
        let bad = EngineError::BadSnapshot;
        if snapshot.version != VERSION {
            return Err(bad(RestoreError::Version(snapshot.version)));
        }
        if snapshot.next_seq > MAX_SEQ {
            return Err(bad(RestoreError::NextSeq(snapshot.next_seq)));
        }
        let mut engine = Engine::with_config(config)?;
        let mut last_order = 0;
        for saved in snapshot.entries {
            let order = saved.order;
            if order == 0
                || order <= last_order
                || order >= snapshot.next_seq
                || saved.seq == 0
                || saved.seq >= snapshot.next_seq
            {
                return Err(bad(RestoreError::OutOfSequence(order)));
            }
            last_order = order;
            let entry = engine.entry_of(&saved, order).map_err(|e| bad(RestoreError::Entry(order, e)))?;
            engine.restore_entry(entry, saved.state).map_err(|_| bad(RestoreError::Conflicts(order)))?;
        }
        engine.set_next_seq(snapshot.next_seq);
        Ok(engine)
    }

    /// Places another engine's writes (in their send order, as [`Engine::export`] gives them) behind this one's,
    /// each keeping its seq, client id, attempts and state: a write that may have reached the server (sent, its
    /// answer lost) goes again as the write it was, and `rpc` mode's replay log answers it instead of applying
    /// it twice. Only the writes of records that have no write here are placed; the others are returned, for
    /// the caller to queue as new changes merged into this queue's (their composition goes under a new seq, as
    /// any write merged after an uncertain attempt does). New seqs go on past the carried ones.
    pub fn carry(&mut self, mut entries: Vec<SavedEntry<P>>) -> Vec<SavedEntry<P>> {
        self.carry_order(&mut entries);
        // A seq past MAX_SEQ (a damaged store) is not carried: its write is queued again as a new change.
        let carried = |e: &SavedEntry<P>| e.seq != 0 && e.seq < MAX_SEQ;
        let past = entries.iter().filter(|e| carried(e)).map(|e| e.seq + 1).max().unwrap_or(0);
        let start = self.next_seq().max(past);
        self.set_next_seq(start);
        let mut others = Vec::new();
        for saved in entries {
            let order = self.next_seq();
            let placed = carried(&saved)
                && order < MAX_SEQ
                && !self.holds_record_apart(&saved, start)
                && self.entry_of(&saved, order).is_ok_and(|e| self.restore_entry(e, saved.state.clone()).is_ok());
            if placed {
                self.set_next_seq(order + 1);
            } else {
                others.push(saved);
            }
        }
        others
    }

    /// Another engine's writes in the order [`Engine::carry`] places them: its send order, except that a write
    /// goes after the writes of its ancestor tables (of the same page) that it was queued after, as a batch's
    /// send order ranks them. The parent rule sees a carried write at its order here ([`Entry::latest`]): its
    /// seq counts in the other engine's numbering. A child created before its parent and then pointed at it
    /// would otherwise stand before the parent.
    fn carry_order(&self, entries: &mut [SavedEntry<P>]) {
        let ancestors = |table: u64| self.ancestors_of(table as TableId);
        // Parents before children (a table has more ancestors than any of its ancestors), each with its table.
        let mut keyed: Vec<(SortKey, usize)> = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            let table = self.table_id(&e.table).map_or(u64::MAX, u64::from);
            keyed.push(([ancestors(table).len() as u64, e.order, table], i));
        }
        if keyed.iter().all(|(key, _)| key[0] == 0) {
            return;
        }
        sort_keys(&mut keyed);
        let mut rank: Vec<u64> = entries.iter().map(|e| e.order).collect();
        for &([_, _, table], i) in keyed.iter().filter(|(key, _)| key[0] > 0) {
            for &([_, order, parent_table], j) in &keyed {
                if order < entries[i].seq
                    && ancestors(table).contains(&(parent_table as TableId))
                    && entries[j].client_id == entries[i].client_id
                {
                    rank[i] = rank[i].max(rank[j]);
                }
            }
        }
        for (key, i) in &mut keyed {
            let blocked = matches!(entries[*i].state, SavedState::Blocked) as u64;
            *key = [rank[*i], key[0], key[1].saturating_mul(2) + blocked];
        }
        // Whether this sort moved anything says nothing of the first one: the permutation is always applied.
        sort_keys(&mut keyed);
        permute(entries, &keyed);
    }

    /// Whether `saved` must not be folded into the writes its record has here: one placed before `start`
    /// (pending, in flight, failed or blocked), or one carried in the same call from another page (another
    /// client id). Folded into either, it would take a (client, seq) the server may know for another write.
    fn holds_record_apart(&self, saved: &SavedEntry<P>, start: u64) -> bool {
        let Some(key) = self.existing_key(&saved.table, &saved.id) else { return false };
        let client = self.client_of(saved);
        let apart = |e: &Entry<P>| e.order < start || e.client.as_deref() != client;
        self.queued_entry(&key).is_some_and(apart)
            || self.failed_entry(&key).is_some_and(|(e, ..)| apart(e))
            || self.blocked_entry(&key).is_some_and(apart)
            || self.in_flight_entries().any(|e| e.key == key)
    }

    /// A saved write as the entry it was, at `order` in this engine's send order; checked as a fresh change.
    fn entry_of(&mut self, saved: &SavedEntry<P>, order: u64) -> Result<Entry<P>, crate::core::ArgumentError> {
        let data = if saved.op == Op::Delete { None } else { saved.data.clone() };
        Change::new(&saved.table, &saved.id, saved.op, data.clone(), saved.priority)?;
        Ok(Entry {
            key: self.key_for(&saved.table, &saved.id),
            op: saved.op,
            data,
            last_changed: saved.last_changed.clone(),
            priority: saved.priority,
            order,
            seq: saved.seq,
            queued_at: saved.queued_at,
            touched_at: saved.touched_at,
            deadline: saved.deadline,
            attempts: saved.attempts,
            changes: saved.changes.max(1),
            force: saved.force,
            solo: saved.solo,
            client: self.client_of(saved).map(Rc::from),
        })
    }

    /// A saved write's client id as its entry holds it: `None` for this engine's own (a snapshot of its own,
    /// restored, is its own again).
    fn client_of<'s>(&self, saved: &'s SavedEntry<P>) -> Option<&'s str> {
        saved.client_id.as_deref().filter(|c| *c != self.config().wire.client_id)
    }
}

/// Send order, a blocked write after the failed one of its record.
pub fn sort_saved<P>(entries: &mut [SavedEntry<P>]) {
    sort_by_key(entries, |e| [e.order, matches!(e.state, SavedState::Blocked) as u64, 0]);
}

fn sort_refs<P>(entries: &mut [SavedRef<'_, P>]) {
    sort_by_key(entries, |e| [e.order, matches!(e.state, SavedState::Blocked) as u64, 0]);
}
