//! What the shell persists, and how a stored queue is read back. Sans-IO: the shell tells the journal which
//! records a tick touched and stores what [`Journal::take`] returns; [`replay`] turns the stored records,
//! oldest first, into a [`Snapshot`] for [`Engine::restore`].
//!
//! Layout (DESIGN.md, IndexedDB facts): one record per tick, holding the current writes of every queue record
//! the tick touched; every [`COMPACT_EVERY`] records (and after a failed write) a record that holds the whole
//! queue and replaces everything stored before it. Committing 1,000 changes is then one put, not 1,000 puts.
//!
//! Format 3 (this one): a record is a JSON text of the writes without their rows, and the rows beside it, as
//! the payload type stores them (in the browser, the JS objects themselves: IndexedDB's structured clone
//! copies them once, where JSON text cost a `JSON.stringify` per row and two crossings of the wasm boundary).
//! Format 2 held the rows inline in the text, under long field names; format 2 added the client id (the
//! replay identity the server knows the seqs by) and the owner to format 1, which is [`Snapshot`] as
//! `Engine::export` writes it, read as a replacing record without a client id. All three are read.

use super::engine::Engine;
use super::hash::FastMap;
use super::json::{write_u64, Json, JsonError, ObjectWriter};
use super::payload::Payload;
use super::read::Fields;
use super::remote::SavedCursor;
use super::snapshot::{sort_saved, SavedEntry, SavedRef, Snapshot, VERSION as SNAPSHOT_VERSION};

pub const FORMAT: u32 = 3;
/// Log records between two replacing ones.
pub const COMPACT_EVERY: u32 = 64;

/// A stored record's text, as [`replay`] reads it (field by field, see [`Fields`]): `v` the format, `c` the
/// client id, `o` the owner (user id) when known, `n` the next seq, `r` whether it replaces everything stored
/// before it, `w` the writes of each record touched, as they are now (none: settled).
///
/// As written: borrowed from the engine. The entries of one record, as a record stores them.
struct WritesOut<'w, 'a, P> {
    t: &'w str,
    i: &'w str,
    e: Vec<SavedRef<'a, P>>,
}

/// A record to store: its text, the rows its entries name by index (borrowed from the engine), and whether it
/// replaces everything stored so far for the queue.
#[derive(Debug, PartialEq)]
pub struct Written<'a, P> {
    pub text: String,
    pub rows: Vec<&'a P>,
    pub replace: bool,
}

/// A record as the store hands it back: its text and the rows stored beside it (none before format 3). A row
/// the store could not give back as one is `None`, and the entry naming it makes the record unreadable.
#[derive(Debug)]
pub struct StoredRecord<P> {
    /// The record's text, or why the store could not hand it over (a getter of an app's store threw).
    pub text: Result<String, String>,
    pub rows: Vec<Option<P>>,
}

impl<P> StoredRecord<P> {
    /// A record of format 1 or 2, or a text that is not a record at all.
    pub fn text(text: impl Into<String>) -> StoredRecord<P> {
        StoredRecord { text: Ok(text.into()), rows: Vec::new() }
    }
}

/// The records touched since the last [`Journal::take`].
#[derive(Default)]
pub struct Journal {
    /// Hashed, not ordered: a record's writes may be stored in any order, and a BTree of another key type is
    /// another copy of its code in the wasm.
    /// `table NUL id` (a table name holds no NUL): one allocation and one hash per record, where a pair of
    /// strings took two of each. A map whose values stay empty, not a set: it is the type of the primary keys'
    /// map, so that the wasm holds one hash table's code for both.
    touched: FastMap<String, String>,
    /// Where [`Journal::touch`] builds a key.
    key: String,
    replace: bool,
    since_replace: u32,
    /// The remote feed's cursor to store with the queue (issue 11), and whether it moved since the last take.
    remote: Option<SavedCursor>,
    remote_moved: bool,
}

impl Journal {
    pub fn touch(&mut self, table: &str, id: &str) {
        if !self.replace {
            // Built in a buffer kept for it: a record edited again in the same tick (typing) is found without
            // allocating its key.
            let key = &mut self.key;
            key.clear();
            key.push_str(table);
            key.push('\0');
            key.push_str(id);
            if !self.touched.contains_key(key.as_str()) {
                self.touched.insert(key.clone(), String::new());
            }
        }
    }

    /// The next record holds the whole queue (after a restore, a failed write, or a change of identity).
    pub fn touch_all(&mut self) {
        self.replace = true;
        self.touched.clear();
    }

    pub fn is_empty(&self) -> bool {
        !self.replace && self.touched.is_empty() && !self.remote_moved
    }

    /// The remote feed's cursor moved: the next record stores it.
    pub fn set_remote_cursor(&mut self, cursor: Option<SavedCursor>) {
        self.remote_moved |= self.remote != cursor;
        self.remote = cursor;
    }

    /// What to store now, or `None` when nothing was touched.
    pub fn take<'a, P: Payload>(
        &mut self,
        engine: &'a Engine<P>,
        client_id: &str,
        owner: Option<&str>,
    ) -> Option<Written<'a, P>> {
        if self.is_empty() {
            return None;
        }
        let replace = self.replace || self.since_replace >= COMPACT_EVERY;
        let touched = std::mem::take(&mut self.touched);
        let writes: Vec<WritesOut<'_, 'a, P>> = if replace {
            let mut writes: Vec<WritesOut<'_, 'a, P>> = Vec::new();
            let mut at: FastMap<(&str, &str), usize> = FastMap::default();
            for entry in engine.export_refs() {
                let index = *at.entry((entry.table, entry.id)).or_insert_with(|| {
                    writes.push(WritesOut { t: entry.table, i: entry.id, e: Vec::new() });
                    writes.len() - 1
                });
                writes[index].e.push(entry);
            }
            writes
        } else {
            touched
                .keys()
                .filter_map(|key| key.split_once('\0'))
                .map(|(t, i)| WritesOut { t, i, e: engine.export_record(t, i) })
                .collect()
        };
        self.replace = false;
        self.since_replace = if replace { 0 } else { self.since_replace + 1 };
        let remote = self.remote.as_ref().filter(|_| replace || self.remote_moved);
        self.remote_moved = false;
        let mut text = String::new();
        let mut o = ObjectWriter::new(&mut text);
        o.u64("v", FORMAT.into()).str("c", client_id);
        if let Some(owner) = owner {
            o.str("o", owner);
        }
        o.u64("n", engine.next_seq()).bool("r", replace);
        let mut rows: Vec<&'a P> = Vec::new();
        super::json::write_array(o.key("w"), &writes, |write, out| {
            let mut w = ObjectWriter::new(out);
            w.str("t", write.t).str("i", write.i);
            super::json::write_array(w.key("e"), &write.e, |entry, out| {
                let row = entry.data.map(|data| {
                    rows.push(data);
                    rows.len() - 1
                });
                entry.write_compact(out, row);
            });
            w.end();
        });
        // The remote feed's cursor (issue 11), when it moved or the record replaces everything; absent in older
        // records and where nothing is pulled.
        if let Some(remote) = remote {
            ObjectWriter::new(o.key("p")).str("t", &remote.tables).str("c", &remote.cursor).end();
        }
        o.end();
        Some(Written { text, rows, replace })
    }
}

/// A queue read back from storage.
#[derive(Debug, PartialEq)]
pub struct Stored<P> {
    pub snapshot: Snapshot<P>,
    /// `None` for a format-1 snapshot: the shell picks a new one.
    pub client_id: Option<String>,
    pub owner: Option<String>,
    /// Records that could not be read and were left out (their index among the texts, and why): one
    /// corrupt record costs its own writes, not the whole queue.
    pub skipped: Vec<RecordError>,
    /// Where catch-up of the remote feed had got to (issue 11).
    pub remote_cursor: Option<SavedCursor>,
}

/// A stored record that could not be read: its place among the records read (`index` from 0, of `count`)
/// and what was wrong. The app reads it as a message ([`String::from`], or `Display`).
#[derive(Clone, Debug, PartialEq)]
pub struct RecordError {
    pub index: usize,
    pub count: usize,
    pub problem: Unreadable,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Unreadable {
    NotJson(JsonError),
    /// A whole-queue snapshot (format 1) the snapshot reader refused, with its reason.
    NotAQueue(String),
    /// A snapshot of a version this record-sync does not know.
    SnapshotVersion(u32),
    /// Written by a newer record-sync, in this format: the stored queue is not read at all.
    Newer(u64),
    /// Not a record-sync queue record at all.
    NotOurs,
    /// A record whose fields or entries are not a queue record's, with the reader's reason.
    NotARecord(String),
    /// Writes filed under another record than theirs: the record's table and id.
    WrongRecord(String, String),
    /// The store could not hand the record over, with the reason it threw.
    Thrown(String),
}

/// The app's message. Written without `format!`, like [`JsonError`]'s.
impl From<&RecordError> for String {
    fn from(e: &RecordError) -> String {
        let mut m = String::from("stored record ");
        write_u64(&mut m, e.index as u64 + 1);
        m.push_str(" of ");
        write_u64(&mut m, e.count as u64);
        m.push_str(": ");
        let (before, why, after) = match &e.problem {
            Unreadable::NotJson(json) => return m + &String::from(*json),
            Unreadable::NotAQueue(why) => ("not a queue (", why.as_str(), ")"),
            Unreadable::SnapshotVersion(version) => {
                m.push_str("format version ");
                write_u64(&mut m, (*version).into());
                ("", "", " is not known")
            }
            Unreadable::Newer(format) => {
                m.push_str("written by a newer record-sync (format ");
                write_u64(&mut m, *format);
                m.push_str("; this one reads up to ");
                write_u64(&mut m, FORMAT.into());
                ("", "", ")")
            }
            Unreadable::NotOurs => ("not a record-sync queue record", "", ""),
            Unreadable::Thrown(why) => ("could not be read (", why.as_str(), ")"),
            Unreadable::NotARecord(why) => ("not a queue record (", why.as_str(), ")"),
            Unreadable::WrongRecord(table, id) => {
                m.push_str("writes filed under the wrong record ");
                m.push_str(table);
                ("/", id.as_str(), "")
            }
        };
        m.push_str(before);
        m.push_str(why);
        m.push_str(after);
        m
    }
}

crate::core::error::message_error!(RecordError);

/// Reads the stored records, oldest first. `Ok(None)`: nothing stored. A record that cannot be read (not
/// JSON, not ours) is left out and named in `skipped`; one in a newer format is an error naming it (a newer
/// record-sync's queue must not be overwritten), and the shell then leaves storage as it is.
pub fn replay<P: Payload>(stored: Vec<StoredRecord<P>>) -> Result<Option<Stored<P>>, RecordError> {
    if stored.is_empty() {
        return Ok(None);
    }
    let count = stored.len();
    // In any order: the entries are sorted by their send order below.
    let mut records = Records::default();
    let (mut next_seq, mut client_id, mut owner, mut skipped) = (1, None, None, Vec::new());
    let mut remote_cursor = None;
    for (index, StoredRecord { text, mut rows }) in stored.into_iter().enumerate() {
        let bad = |problem| RecordError { index, count, problem };
        let text = match text {
            Ok(text) => text,
            Err(why) => {
                skipped.push(bad(Unreadable::Thrown(why)));
                continue;
            }
        };
        let value = match Json::parse(&text) {
            Ok(value) => value,
            Err(e) => {
                skipped.push(bad(Unreadable::NotJson(e)));
                continue;
            }
        };
        if value.get("version").is_some() {
            let snapshot = match Snapshot::read(&value) {
                Ok(snapshot) => snapshot,
                Err(e) => {
                    skipped.push(bad(Unreadable::NotAQueue(e.into())));
                    continue;
                }
            };
            if snapshot.version != SNAPSHOT_VERSION {
                return Err(bad(Unreadable::SnapshotVersion(snapshot.version)));
            }
            records = Records::default();
            for entry in snapshot.entries {
                records.at(&entry.table, &entry.id).push(entry);
            }
            next_seq = snapshot.next_seq;
            client_id = None;
            continue;
        }
        let version = value.get("v").and_then(Json::as_u64);
        match version {
            Some(2 | 3) => {}
            Some(v) if v > u64::from(FORMAT) => return Err(bad(Unreadable::Newer(v))),
            _ => {
                skipped.push(bad(Unreadable::NotOurs));
                continue;
            }
        }
        let record = match read_record(&value, &mut rows) {
            Ok(record) => record,
            Err(problem) => {
                skipped.push(bad(problem));
                continue;
            }
        };
        if record.replace {
            records = Records::default();
        }
        for (table, id, entries) in record.writes {
            *records.at(&table, &id) = entries;
        }
        next_seq = next_seq.max(record.next_seq);
        client_id = Some(record.client_id);
        owner = record.owner.or(owner);
        remote_cursor = record.remote_cursor.or(remote_cursor);
    }
    let mut entries: Vec<SavedEntry<P>> = records.writes.into_iter().flatten().collect();
    sort_saved(&mut entries);
    Ok(Some(Stored {
        snapshot: Snapshot { version: SNAPSHOT_VERSION, next_seq, entries },
        client_id,
        owner,
        skipped,
        remote_cursor,
    }))
}

/// The writes of each record replayed so far (none: settled). Indexed through a map of the key and value
/// type of the remote feed's `known`, so the wasm holds one hash table's code for both, where a map of its own
/// from record to entries was another.
struct Records<P> {
    index: FastMap<(String, String), u64>,
    writes: Vec<Vec<SavedEntry<P>>>,
}

impl<P> Default for Records<P> {
    fn default() -> Self {
        Records { index: FastMap::default(), writes: Vec::new() }
    }
}

impl<P> Records<P> {
    fn at(&mut self, table: &str, id: &str) -> &mut Vec<SavedEntry<P>> {
        let next = self.writes.len() as u64;
        let at = *self.index.entry((table.to_owned(), id.to_owned())).or_insert(next);
        if at == next {
            self.writes.push(Vec::new());
        }
        &mut self.writes[at as usize]
    }
}

/// One stored record, read whole before any of it is applied, so that an unreadable one changes nothing.
struct ReadRecord<P> {
    replace: bool,
    writes: Vec<(String, String, Vec<SavedEntry<P>>)>,
    next_seq: u64,
    client_id: String,
    owner: Option<String>,
    remote_cursor: Option<SavedCursor>,
}

/// Format 2's entries hold their table, id and row; format 3's take the first two from their record and the row
/// from `rows`.
fn read_record<P: Payload>(value: &Json<'_>, rows: &mut [Option<P>]) -> Result<ReadRecord<P>, Unreadable> {
    fn not_a_record(e: impl Into<String>) -> Unreadable {
        Unreadable::NotARecord(e.into())
    }
    let record = Fields::of(value, "record").map_err(not_a_record)?;
    let compact = record.u64("v").map_err(not_a_record)? >= 3;
    let client_id = record.str("c").map_err(not_a_record)?;
    let mut writes = Vec::new();
    for w in record.array("w").map_err(not_a_record)? {
        let w = Fields::of(w, "record.w[]").map_err(not_a_record)?;
        let (table, id) = (w.str("t").map_err(not_a_record)?, w.str("i").map_err(not_a_record)?);
        // A loop, not `collect` into a `Result`: that adapter was 650 bytes of wasm of its own.
        let mut entries: Vec<SavedEntry<P>> = Vec::new();
        for e in w.array("e").map_err(not_a_record)? {
            let entry = if compact { SavedEntry::read_compact(e, table, id, rows) } else { SavedEntry::read(e) };
            let mut entry = entry.map_err(not_a_record)?;
            // The record names once the client id of the writes its page queued; others name their own.
            entry.client_id.get_or_insert_with(|| client_id.to_owned());
            entries.push(entry);
        }
        if entries.iter().any(|e| e.table != table || e.id != id) {
            return Err(Unreadable::WrongRecord(table.to_owned(), id.to_owned()));
        }
        writes.push((table.to_owned(), id.to_owned(), entries));
    }
    Ok(ReadRecord {
        replace: record.flag("r").map_err(not_a_record)?,
        writes,
        next_seq: record.u64("n").map_err(not_a_record)?,
        client_id: client_id.to_owned(),
        owner: record.opt_str("o").map_err(not_a_record)?,
        remote_cursor: match record.get("p") {
            None => None,
            Some(p) => {
                let p = Fields::of(p, "record.p").map_err(not_a_record)?;
                let (t, c) = (p.str("t").map_err(not_a_record)?, p.str("c").map_err(not_a_record)?);
                Some(SavedCursor { tables: t.to_owned(), cursor: c.to_owned() })
            }
        },
    })
}
