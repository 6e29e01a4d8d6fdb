//! The second direction (issue 11): other devices' changes on their way to the app, from catch-up pages of
//! `record_sync_changes` (sql/record_sync_feed.sql) and from realtime messages. Sans-IO like the engine: the
//! shell hands in what the server said and `now`, and takes out what to deliver and whether to pull.
//!
//! **Hold and rebase.** A remote change to a record with a local change the server has not settled (queued,
//! in flight, or blocked behind a failed write: [`LocalChanges`]) is held, the newest one only, so the app's
//! own edit is never overwritten on screen. When the local change settles, the record waits for one more
//! catch-up that began after that: the server's feed then holds the newer of the two writes (the version is
//! the server's, from one sequence, and grows with every write of a row), and the newest change held for the
//! record is delivered. Delivering at settlement instead would show the other device's older row for a
//! moment before the echo of the local write replaced it.
//!
//! **Own writes are marked, not suppressed** (`own: true`). Their echo is the server's row after the write,
//! which differs from the app's copy when another device wrote the record in between and that write was
//! never seen (overwritten before any catch-up read it): suppressing it would leave the app on a row the
//! server never had. Applying an own change is always safe.
//!
//! A remote delete of a record with a pending local update is held like any change; the update then reaches
//! a row that is gone and the server answers "missing", which the engine reports as a conflict under the
//! table's strategy (`onConflict`, `conflicts()`), and the delete is delivered after the next catch-up.
//!
//! Bad input is refused whole, before any of it is used: a page that is not the feed's shape, a change of a
//! table not asked for, a row without its key, a cursor that goes back, or a record whose versions go back
//! within the page. A refused page moves no cursor and lands in `last_error`. Duplicates (a change seen by
//! realtime and again by catch-up) and changes older than one already seen are dropped quietly: that is the
//! race between the two paths, not bad input.

use super::engine::Engine;
use super::hash::FastMap;
use super::json::{write_array, write_str, Json, JsonError, ObjectWriter};
use super::payload::{Column, Payload};
use super::read::{FieldError, Fields};
use super::wire::id_text;

/// Columns the feed's trigger adds to every table; the app never sees them.
pub const FEED_COLUMNS: [&str; 3] = ["record_sync_version", "record_sync_xid", "record_sync_origin"];
/// `record_sync_changes` refuses larger pages.
pub const MAX_PAGE_SIZE: u32 = 1000;
pub const DEFAULT_PAGE_SIZE: u32 = 500;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoteOp {
    Upsert,
    Delete,
}

/// One remote change as the app's `onRemoteChanges` listeners get it.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteChange<P> {
    pub table: String,
    pub id: String,
    pub op: RemoteOp,
    /// The whole row without the feed's columns; `None` for a delete.
    pub row: Option<P>,
    pub version: u64,
    /// Written by this client (its own write coming back).
    pub own: bool,
    /// The server's row (or its absence) delivered again after a conflict it won: the app's copy holds the
    /// local write the server did not take ([`Remote::on_server_stands`]).
    pub conflict: bool,
}

/// The version the feed's trigger wrote in a row (a number, or text for a bigint).
pub fn feed_version<P: Payload>(row: &P) -> Option<u64> {
    match row.column("record_sync_version") {
        Column::Text(text) | Column::Other(text) => whole_number(&text),
        Column::Absent | Column::Null => None,
    }
}

/// Removes the feed's columns, which the app never sees.
pub fn strip_feed_columns<P: Payload>(row: &mut P) {
    for column in FEED_COLUMNS {
        row.remove_column(column);
    }
}

/// Why the remote side refused what it was handed. The app reads it as a message ([`String::from`], also what
/// `last_error` holds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteError {
    /// A catch-up page arrived with no catch-up under way.
    NoPull,
    /// A catch-up page was refused whole: nothing of it was used.
    Page(BadInput),
    /// A realtime message was refused; a catch-up is asked for instead.
    Message(BadInput),
}

/// What was wrong with a page or a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadInput {
    Json(JsonError),
    Field(FieldError),
    /// A realtime row of a table not asked for.
    TableNotAskedFor(String),
    /// A catch-up change of a table not asked for.
    ChangeNotAskedFor(String),
    /// A row without its primary-key column: the table and the column.
    RowWithoutKey(String, String),
    /// A realtime row of this table without `record_sync_version`.
    RowWithoutVersion(String),
    ResetWithChanges,
    ChangesWithoutCursor,
    NotACursor(String),
    /// From the cursor held to the page's.
    CursorWentBack(String, String),
    EmptyPageSaysMore,
    /// The record (table, id) whose versions go back within the page.
    VersionWentBack(String, String),
    ZeroVersion,
    /// A change of this table without its key.
    ChangeWithoutKey(String),
    /// An upsert of (table, id) without its row.
    UpsertWithoutRow(String, String),
    /// An upsert of (table, id) whose row has another key.
    UpsertOfAnotherKey(String, String, String),
    UnknownOp(String),
}

impl From<JsonError> for BadInput {
    fn from(e: JsonError) -> BadInput {
        BadInput::Json(e)
    }
}

impl From<FieldError> for BadInput {
    fn from(e: FieldError) -> BadInput {
        BadInput::Field(e)
    }
}

/// The app's message. Written without `format!`, like [`JsonError`]'s and [`FieldError`]'s: each refusal is a
/// few pieces of text, the names it quotes marked.
impl From<&RemoteError> for String {
    fn from(e: &RemoteError) -> String {
        use Piece::{Quoted as Q, Text as T};
        let (prefix, bad) = match e {
            RemoteError::NoPull => return "a catch-up page arrived with no catch-up under way".into(),
            RemoteError::Page(bad) => ("refused a catch-up page: ", bad),
            RemoteError::Message(bad) => ("refused a realtime message: ", bad),
        };
        let mut m = String::from(prefix);
        let pieces: [Piece<'_>; 5] = match bad {
            BadInput::Json(e) => return m + &String::from(*e),
            BadInput::Field(e) => return m + &String::from(*e),
            BadInput::TableNotAskedFor(table) => [T("table "), Q(table), T(" was not asked for"), T(""), T("")],
            BadInput::ChangeNotAskedFor(table) => {
                [T("a change of table "), Q(table), T(", which was not asked for"), T(""), T("")]
            }
            BadInput::RowWithoutKey(table, key) => [T("a row of "), T(table), T(" without its key "), T(key), T("")],
            BadInput::RowWithoutVersion(table) => {
                [T("a row of "), T(table), T(" without record_sync_version (is its feed enabled?)"), T(""), T("")]
            }
            BadInput::ResetWithChanges => [T("a reset page with changes"), T(""), T(""), T(""), T("")],
            BadInput::ChangesWithoutCursor => [T("changes without a cursor"), T(""), T(""), T(""), T("")],
            BadInput::NotACursor(text) => [T("cursor "), Q(text), T(" is not a feed cursor"), T(""), T("")],
            BadInput::CursorWentBack(from, to) => [T("the cursor went back from "), Q(from), T(" to "), Q(to), T("")],
            BadInput::EmptyPageSaysMore => [T("an empty page that says more follow"), T(""), T(""), T(""), T("")],
            BadInput::VersionWentBack(table, id) => {
                [T("the version of "), T(table), T("/"), T(id), T(" went back within the page")]
            }
            BadInput::ZeroVersion => [T("change.version is 0"), T(""), T(""), T(""), T("")],
            BadInput::ChangeWithoutKey(table) => [T("a change of "), T(table), T(" without its key"), T(""), T("")],
            BadInput::UpsertWithoutRow(table, id) => {
                [T("an upsert of "), T(table), T("/"), T(id), T(" without its row")]
            }
            BadInput::UpsertOfAnotherKey(table, id, key) => {
                m.push_str("an upsert of ");
                [T(table), T("/"), T(id), T(" whose row has the key "), Q(key)]
            }
            BadInput::UnknownOp(op) => {
                [T("change.op "), Q(op), T(" is neither \"upsert\" nor \"delete\""), T(""), T("")]
            }
        };
        for piece in pieces {
            match piece {
                Piece::Text(text) => m.push_str(text),
                Piece::Quoted(name) => write_str(&mut m, name),
            }
        }
        m
    }
}

crate::core::error::message_error!(RemoteError);

/// A piece of a message: text as it is, or a name quoted as JSON quotes it.
enum Piece<'a> {
    Text(&'a str),
    Quoted(&'a str),
}

/// Whether a record has a local change the server has not settled. The engine answers it; a tab that mirrors
/// a shared queue may answer it from the mirror.
pub trait LocalChanges {
    fn has_local_change(&self, table: &str, id: &str) -> bool;
}

impl<P: Payload> LocalChanges for Engine<P> {
    fn has_local_change(&self, table: &str, id: &str) -> bool {
        let Some(key) = self.existing_key(table, id) else { return false };
        self.queued_entry(&key).is_some()
            || self.blocked_entry(&key).is_some()
            || self.in_flight_entries().any(|e| e.key == key)
    }
}

/// A position in the feed: `record_sync_changes` writes it as `"<xid>-<version>"`, in cursor order.
fn cursor_position(text: &str) -> Option<(u64, u64)> {
    let (xid, version) = text.split_once('-')?;
    let number = |s: &str| (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten();
    Some((number(xid)?, number(version)?))
}

/// A version written as a JSON number or as text (a bigint): digits only.
fn whole_number(text: &str) -> Option<u64> {
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.parse().ok()).flatten()
}

/// Where a cursor (`None`: the feed's start) is, for comparing; one that is not a feed cursor sorts first.
fn position(cursor: &Option<String>) -> Option<(u64, u64)> {
    cursor.as_deref().and_then(cursor_position)
}

/// The stored cursor: valid only for the table list it was read with (a table added later starts from the
/// beginning).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedCursor {
    pub tables: String,
    pub cursor: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PullOptions {
    pub tables: Vec<String>,
    pub page_size: u32,
    /// Primary-key column per table where it is not `id`.
    pub primary_keys: FastMap<String, String>,
}

struct Held<P> {
    change: RemoteChange<P>,
    /// The pull count when the record's local change settled: delivered once a pull begun after it ends.
    settled_at: Option<u64>,
    /// The cursor a catch-up reads this record's change again from (the cursor before the page that brought
    /// it, or the cursor when realtime did): held changes live in memory only, so the stored cursor stays here
    /// until it is delivered.
    since: Option<String>,
}

/// The held changes, one per record, in a vector found through a map of the key and value type of `known`:
/// the wasm holds one hash table's code for both, where a map from record to `Held` was another (0.4 KB gzip).
struct HeldRecords<P> {
    index: FastMap<(String, String), u64>,
    held: Vec<Held<P>>,
}

impl<P> Default for HeldRecords<P> {
    fn default() -> Self {
        HeldRecords { index: FastMap::default(), held: Vec::new() }
    }
}

impl<P> HeldRecords<P> {
    fn get_mut(&mut self, key: &(String, String)) -> Option<&mut Held<P>> {
        let at = *self.index.get(key)?;
        self.held.get_mut(at as usize)
    }

    /// Holds `change` for its record; `since` unless the record held an older one, whose cursor reads this too.
    fn hold(&mut self, key: (String, String), change: RemoteChange<P>, since: &Option<String>) {
        match self.get_mut(&key) {
            Some(held) => *held = Held { change, settled_at: None, since: held.since.take() },
            None => {
                self.index.insert(key, self.held.len() as u64);
                self.held.push(Held { change, settled_at: None, since: since.clone() });
            }
        }
    }

    /// Takes the record's held change out; the last one takes its place in the vector.
    fn remove(&mut self, key: &(String, String)) -> Option<Held<P>> {
        let at = self.index.remove(key)? as usize;
        if at >= self.held.len() {
            return None;
        }
        let removed = self.held.swap_remove(at);
        if let Some(moved) = self.held.get(at) {
            self.index.insert((moved.change.table.clone(), moved.change.id.clone()), at as u64);
        }
        Some(removed)
    }

    fn clear(&mut self) {
        self.index.clear();
        self.held.clear();
    }
}

/// A page read whole before any of it is used.
struct Page<P> {
    changes: Vec<RemoteChange<P>>,
    cursor: Option<String>,
    more: bool,
    reset: bool,
}

/// The cursor before every change: what [`Remote::take_moved_cursor`] stores for a reader held back to the start.
const START: &str = "0-0";

pub struct Remote<P> {
    client_id: String,
    /// Client ids of earlier pages whose writes this one's queue restored and sends under them: their rows
    /// coming back are this client's own too.
    earlier_ids: Vec<String>,
    options: PullOptions,
    /// Sorted table names joined by commas: what the cursor belongs to.
    tables_key: String,
    cursor: Option<String>,
    /// The cursor last handed out to be stored ([`Remote::take_moved_cursor`]).
    stored: Option<String>,
    /// Highest version seen per record, to drop duplicates and stale changes.
    known: FastMap<(String, String), u64>,
    /// Not a `BTreeMap` (the wasm's only BTree of this key and value was 6 KB of code, docs/measurements.md,
    /// h22-size) nor a hash map of its own ([`HeldRecords`]). [`Remote::release`] puts what it delivers in feed
    /// order itself.
    held: HeldRecords<P>,
    ready: Vec<RemoteChange<P>>,
    /// The number of the pull under way.
    running: Option<u64>,
    pulls_started: u64,
    wants_pull: bool,
    last_error: Option<String>,
    received: u64,
    last_pull_at: Option<u64>,
    version: u64,
    /// The feed told this reader to start over (its tombstones past the cursor were pruned), and no catch-up
    /// has completed since: its pages deliver the version of a record already seen again, because an app that
    /// heard of the reset may have cleared its copy (an older version is still dropped), and say `restarted`.
    resetting: bool,
    /// Starts over that the app has not been told of yet ([`Remote::take_reset`]), and all of them so far.
    reset_untold: bool,
    resets: u64,
}

impl<P: Payload> Remote<P> {
    pub fn new(client_id: &str, mut options: PullOptions) -> Remote<P> {
        // The one small sort of names (src/core/sort.rs): `sort()` would link the standard stable sort (3.6 KB of wasm).
        super::sort::sort_names(&mut options.tables);
        options.tables.dedup();
        options.page_size = options.page_size.clamp(1, MAX_PAGE_SIZE);
        Remote {
            client_id: client_id.to_owned(),
            earlier_ids: Vec::new(),
            tables_key: options.tables.join(","),
            options,
            cursor: None,
            stored: None,
            known: FastMap::default(),
            held: HeldRecords::default(),
            ready: Vec::new(),
            running: None,
            pulls_started: 0,
            wants_pull: true,
            last_error: None,
            received: 0,
            last_pull_at: None,
            version: 0,
            resetting: false,
            reset_untold: false,
            resets: 0,
        }
    }

    /// A restored queue sends writes under `client_id` (an earlier page's): rows with that origin are own.
    pub fn also_own(&mut self, client_id: &str) {
        if client_id != self.client_id && !self.earlier_ids.iter().any(|c| c == client_id) {
            self.earlier_ids.push(client_id.to_owned());
        }
    }

    /// The client ids this client's writes go under: its own, then those of earlier pages.
    pub fn own_ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.client_id.as_str()).chain(self.earlier_ids.iter().map(String::as_str))
    }

    fn is_own(&self, origin: &str) -> bool {
        origin == self.client_id || self.earlier_ids.iter().any(|c| c == origin)
    }

    /// Changes whenever something the stats show changes.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Where catch-up starts after a reload. A cursor stored for another table list is ignored.
    pub fn restore_cursor(&mut self, saved: Option<SavedCursor>) {
        if let Some(saved) = saved.filter(|s| s.tables == self.tables_key && cursor_position(&s.cursor).is_some()) {
            if self.cursor.is_none() {
                self.stored = Some(saved.cursor.clone());
                self.cursor = Some(saved.cursor);
            }
        }
    }

    /// The cursor to store, once it moved since the last call. It never passes a held change: a reload loses
    /// what is held, and the next instance must read it again (its local change may end in a conflict, and
    /// then no echo brings the record back).
    pub fn take_moved_cursor(&mut self) -> Option<Option<SavedCursor>> {
        let safe = self.held.held.iter().map(|h| &h.since).chain([&self.cursor]).min_by_key(|c| position(c)).cloned();
        // Held back to the start by a change of the first read: a reader that has read rows stores the start as
        // a cursor, which reads everything too but which the feed checks against its pruned horizon (with no
        // cursor, the next instance could not be told of deletes pruned meanwhile).
        let safe = safe.flatten().or_else(|| (!self.known.is_empty()).then(|| START.to_owned()));
        (safe != self.stored).then(|| {
            self.stored.clone_from(&safe);
            safe.map(|cursor| SavedCursor { tables: self.tables_key.clone(), cursor })
        })
    }

    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// Asks for a catch-up (start, reconnect, a realtime delete, `pull()`): [`Remote::begin_pull`] follows.
    pub fn request_pull(&mut self) {
        self.wants_pull = true;
    }

    /// Whether a pull should begin now: one was asked for and none is under way.
    pub fn wants_pull(&self) -> bool {
        self.wants_pull && self.running.is_none()
    }

    pub fn is_pulling(&self) -> bool {
        self.running.is_some()
    }

    /// Starts a catch-up and returns its number, or `None` while one is under way (the request is kept and
    /// another follows it).
    pub fn begin_pull(&mut self) -> Option<u64> {
        if self.running.is_some() {
            self.wants_pull = true;
            return None;
        }
        self.wants_pull = false;
        self.pulls_started += 1;
        self.running = Some(self.pulls_started);
        Some(self.pulls_started)
    }

    /// The JSON body of the next page's `POST /rpc/record_sync_changes`.
    pub fn page_request(&self) -> String {
        let mut body = String::new();
        let mut o = ObjectWriter::new(&mut body);
        o.opt_str("since", self.cursor.as_deref());
        write_array(o.key("tables"), &self.options.tables, |t, out| write_str(out, t));
        o.u64("page_size", self.options.page_size.into());
        // Sent only then, so that a server with the feed's first signature still answers every other read.
        if self.resetting {
            o.bool("restarted", true);
        }
        o.end();
        body
    }

    /// A page's answer. `Ok(true)`: more pages follow (request the next with [`Remote::page_request`]);
    /// `Ok(false)`: the catch-up is complete. `Err`: refused, nothing used, the pull ends, `last_error` says why.
    pub fn on_page(&mut self, answer: &str, local: &impl LocalChanges, now: u64) -> Result<bool, RemoteError> {
        if self.running.is_none() {
            return Err(RemoteError::NoPull);
        }
        let page = match Json::parse(answer).map_err(BadInput::from).and_then(|answer| self.read_page(&answer)) {
            Ok(page) => page,
            Err(bad) => {
                let error = RemoteError::Page(bad);
                self.pull_failed(&String::from(&error));
                return Err(error);
            }
        };
        let before = self.cursor.clone();
        if page.reset {
            // Tombstones past the cursor were pruned: start over. Every current row comes again, and the app is
            // told first, so that it can drop rows deleted in the pruned gap. What was held is from before the
            // gap and may be of a row deleted in it: the catch-up reads each record's current row again (and
            // holds it anew while a local change is pending), or nothing for a row that is gone.
            self.cursor = None;
            self.held.clear();
            self.resetting = true;
            self.reset_untold = true;
            self.resets += 1;
        } else if page.cursor.is_some() {
            self.cursor = page.cursor;
        }
        // A read started over brings each record's current row, read now: again, even if its version was seen.
        let again = self.resetting;
        for change in page.changes {
            self.ingest(change, &before, again, local);
        }
        self.version += 1;
        if page.more {
            return Ok(true);
        }
        let number = self.running.take().unwrap_or(0);
        self.last_pull_at = Some(now);
        self.resetting = false;
        // A whole catch-up went through: an earlier refusal or listener error is behind us.
        self.last_error = None;
        self.release(number, local);
        Ok(false)
    }

    /// The catch-up could not go on (network, HTTP error, no token): the cursor stays where the last good page
    /// left it.
    pub fn pull_failed(&mut self, why: &str) {
        self.running = None;
        self.last_error = Some(why.to_owned());
        self.version += 1;
    }

    /// A realtime INSERT or UPDATE of `table` with its whole row. A row that says nothing of its version (a
    /// table without the feed) cannot be ordered: it is refused and a catch-up asked for.
    pub fn on_realtime_row(&mut self, table: &str, row: &P, local: &impl LocalChanges) -> Result<(), RemoteError> {
        let change = self.read_realtime(table, row).map_err(RemoteError::Message).inspect_err(|error| {
            self.last_error = Some(String::from(error));
            self.wants_pull = true;
            self.version += 1;
        })?;
        let since = self.cursor.clone();
        self.ingest(change, &since, false, local);
        self.version += 1;
        Ok(())
    }

    /// A realtime message this client cannot use as it stands (a delete carries only the key; a message of the
    /// wrong shape): the feed is read instead. `why` is set for a bad message.
    pub fn on_realtime_other(&mut self, why: Option<&str>) {
        if let Some(why) = why {
            self.last_error = Some(["refused a realtime message: ", why].concat());
            self.version += 1;
        }
        self.wants_pull = true;
    }

    /// A conflict the server won: its row stands (`server_row`, with the feed's columns if it has them), or
    /// the row is missing (`None`). The app's copy holds the local write the server did not take, and the
    /// server's version was delivered before that write (or never, when it raced it), so the feed brings
    /// nothing new: the server's row is delivered again, marked `conflict`, under the same hold rule (a record
    /// with another local change pending waits for it). A newer change already seen of the record wins.
    pub fn on_server_stands(&mut self, table: &str, id: &str, server_row: Option<&P>, local: &impl LocalChanges) {
        if !self.asked_for(table) {
            return;
        }
        let key = (table.to_owned(), id.to_owned());
        let seen = self.known.get(&key).copied();
        let version = server_row.and_then(feed_version).or(seen).unwrap_or(0);
        if seen.is_some_and(|seen| version < seen) {
            return;
        }
        self.known.insert(key.clone(), version);
        let row = server_row.cloned().map(|mut row| {
            strip_feed_columns(&mut row);
            row
        });
        let op = if row.is_some() { RemoteOp::Upsert } else { RemoteOp::Delete };
        let change =
            RemoteChange { table: key.0.clone(), id: key.1.clone(), op, row, version, own: false, conflict: true };
        self.version += 1;
        if local.has_local_change(table, id) {
            self.held.hold(key, change, &self.cursor);
        } else if let Some(held) = self.held.get_mut(&key) {
            held.change = change;
        } else {
            self.deliver(change);
        }
    }

    /// After the engine moved: held records whose local change settled wait for the next catch-up, and one is
    /// asked for; a record edited again waits for that edit instead.
    pub fn settle(&mut self, local: &impl LocalChanges) {
        let started = self.pulls_started;
        let mut asks = false;
        for held in &mut self.held.held {
            if local.has_local_change(&held.change.table, &held.change.id) {
                held.settled_at = None;
            } else if held.settled_at.is_none() {
                held.settled_at = Some(started);
                asks = true;
            }
        }
        self.wants_pull |= asks;
    }

    /// Changes ready for the app, in the order they arrived (so in version order per record).
    pub fn take_ready(&mut self) -> Vec<RemoteChange<P>> {
        std::mem::take(&mut self.ready)
    }

    /// Whether the feed told this reader to start over since the last call: the app hears of it before the
    /// changes that follow (those of the reset page's catch-up are all after it).
    pub fn take_reset(&mut self) -> bool {
        std::mem::take(&mut self.reset_untold)
    }

    /// How many times the feed told this reader to start over.
    pub fn resets(&self) -> u64 {
        self.resets
    }

    pub fn held_count(&self) -> usize {
        self.held.held.len()
    }

    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Changes handed to the app so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    pub fn last_pull_at(&self) -> Option<u64> {
        self.last_pull_at
    }

    /// `since`: a cursor from which the feed holds this change (or a newer one of its record). `again`: the
    /// version seen is delivered once more (a read that started over; never a realtime row, which may be late).
    fn ingest(&mut self, change: RemoteChange<P>, since: &Option<String>, again: bool, local: &impl LocalChanges) {
        let key = (change.table.clone(), change.id.clone());
        if self.known.get(&key).is_some_and(|&seen| change.version < seen || (change.version == seen && !again)) {
            return;
        }
        self.known.insert(key.clone(), change.version);
        if local.has_local_change(&change.table, &change.id) {
            // A change held before is older: the cursor that reads it reads this one too.
            self.held.hold(key, change, since);
        } else if let Some(held) = self.held.get_mut(&key) {
            // Settled, waiting for its catch-up: the newer change waits with it.
            held.change = change;
        } else {
            self.deliver(change);
        }
    }

    /// Delivers held records whose local change settled before pull `number` began, in the feed's order.
    fn release(&mut self, number: u64, local: &impl LocalChanges) {
        let mut due: Vec<(u64, (String, String))> = self
            .held
            .held
            .iter()
            .filter(|h| h.settled_at.is_some_and(|at| at < number))
            .map(|h| (h.change.version, (h.change.table.clone(), h.change.id.clone())))
            .collect();
        super::sort::sort_by_key(&mut due, |&(version, _)| [version, 0, 0]);
        for (_, key) in due {
            if local.has_local_change(&key.0, &key.1) {
                if let Some(held) = self.held.get_mut(&key) {
                    held.settled_at = None;
                }
            } else if let Some(held) = self.held.remove(&key) {
                self.deliver(held.change);
            }
        }
    }

    fn deliver(&mut self, change: RemoteChange<P>) {
        self.received += 1;
        self.ready.push(change);
    }

    fn primary_key(&self, table: &str) -> &str {
        self.options.primary_keys.get(table).map_or("id", String::as_str)
    }

    fn asked_for(&self, table: &str) -> bool {
        self.options.tables.binary_search_by(|t| t.as_str().cmp(table)).is_ok()
    }

    /// The row as the app gets it, with its id read from the primary-key column.
    fn app_row(&self, table: &str, mut row: P) -> Result<(String, P), BadInput> {
        let pk = self.primary_key(table);
        let id = match row.column(pk) {
            Column::Text(key) => key,
            Column::Other(number) if number.starts_with(|c: char| c == '-' || c.is_ascii_digit()) => number,
            _ => return Err(BadInput::RowWithoutKey(table.to_owned(), pk.to_owned())),
        };
        strip_feed_columns(&mut row);
        Ok((id, row))
    }

    fn read_realtime(&self, table: &str, row: &P) -> Result<RemoteChange<P>, BadInput> {
        if !self.asked_for(table) {
            return Err(BadInput::TableNotAskedFor(table.to_owned()));
        }
        let version = feed_version(row).ok_or_else(|| BadInput::RowWithoutVersion(table.to_owned()))?;
        let own = matches!(row.column("record_sync_origin"), Column::Text(origin) if self.is_own(&origin));
        let (id, row) = self.app_row(table, row.clone())?;
        Ok(RemoteChange {
            table: table.to_owned(),
            id,
            op: RemoteOp::Upsert,
            row: Some(row),
            version,
            own,
            conflict: false,
        })
    }

    fn read_page(&self, answer: &Json<'_>) -> Result<Page<P>, BadInput> {
        let page = Fields::of(answer, "page")?;
        let more = page.required_flag("more")?;
        let reset = page.flag("reset")?;
        let cursor = page.opt_str("cursor")?;
        let raw = page.array("changes")?;
        if reset {
            return match raw.is_empty() {
                true => Ok(Page { changes: Vec::new(), cursor: None, more: true, reset }),
                false => Err(BadInput::ResetWithChanges),
            };
        }
        let since = self.cursor.as_deref().and_then(cursor_position);
        let at = match cursor.as_deref() {
            None if raw.is_empty() => None,
            None => return Err(BadInput::ChangesWithoutCursor),
            Some(text) => Some(cursor_position(text).ok_or_else(|| BadInput::NotACursor(text.to_owned()))?),
        };
        if let (Some(since), Some(at)) = (since, at) {
            if at < since || (at == since && !raw.is_empty()) {
                let (from, to) = (self.cursor.clone().unwrap_or_default(), cursor.unwrap_or_default());
                return Err(BadInput::CursorWentBack(from, to));
            }
        }
        if more && raw.is_empty() {
            // Would ask for the same page again and again.
            return Err(BadInput::EmptyPageSaysMore);
        }
        let mut changes = Vec::with_capacity(raw.len());
        // The key type of `known`: one hash table's code for both (a key of its own was one more).
        let mut versions: FastMap<(String, String), u64> = FastMap::default();
        for value in raw {
            let change = self.read_change(value)?;
            let last = versions.entry((change.table.clone(), change.id.clone())).or_insert(0);
            if change.version <= *last {
                return Err(BadInput::VersionWentBack(change.table, change.id));
            }
            *last = change.version;
            changes.push(change);
        }
        Ok(Page { changes, cursor, more, reset })
    }

    fn read_change(&self, value: &Json<'_>) -> Result<RemoteChange<P>, BadInput> {
        let change = Fields::of(value, "change")?;
        let table = change.str("table")?;
        if !self.asked_for(table) {
            return Err(BadInput::ChangeNotAskedFor(table.to_owned()));
        }
        let version = change.u64("version")?;
        if version == 0 {
            return Err(BadInput::ZeroVersion);
        }
        let id = match change.get("id") {
            Some(key @ (Json::String(_) | Json::Number(_))) => id_text(key),
            _ => return Err(BadInput::ChangeWithoutKey(table.to_owned())),
        };
        let own = change.opt_str("origin")?.is_some_and(|origin| self.is_own(&origin));
        let (op, row) = match change.str("op")? {
            "upsert" => {
                let Some(row) = change.row("row")? else {
                    return Err(BadInput::UpsertWithoutRow(table.to_owned(), id));
                };
                let (row_id, row) = self.app_row(table, row)?;
                if row_id != id {
                    return Err(BadInput::UpsertOfAnotherKey(table.to_owned(), id, row_id));
                }
                (RemoteOp::Upsert, Some(row))
            }
            "delete" => (RemoteOp::Delete, None),
            other => return Err(BadInput::UnknownOp(other.to_owned())),
        };
        Ok(RemoteChange { table: table.to_owned(), id, op, row, version, own, conflict: false })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Row;
    use serde_json::{json, Value};
    use std::collections::HashSet;

    #[derive(Default)]
    struct Local(HashSet<(String, String)>);

    impl LocalChanges for Local {
        fn has_local_change(&self, table: &str, id: &str) -> bool {
            self.0.contains(&(table.to_owned(), id.to_owned()))
        }
    }

    fn remote() -> Remote<Row> {
        let options = PullOptions { tables: vec!["t".into()], page_size: 500, primary_keys: FastMap::default() };
        Remote::new("me", options)
    }

    fn upsert(id: &str, version: u64, origin: Option<&str>) -> Value {
        json!({"table": "t", "id": id, "op": "upsert", "row": {"id": id, "x": version, "record_sync_version": version},
               "version": version, "origin": origin})
    }

    #[test]
    fn refused_pages_move_no_cursor_and_deliver_nothing() {
        let local = Local::default();
        let mut r = remote();
        r.begin_pull();
        assert_eq!(
            r.on_page(
                &json!({"changes": [upsert("a", 5, None)], "cursor": "10-5", "more": false}).to_string(),
                &local,
                1
            ),
            Ok(false)
        );
        assert_eq!(r.take_ready().len(), 1);
        let bad = [
            json!(null),
            json!({"changes": [], "cursor": "10-5"}),
            json!({"changes": [upsert("b", 7, None)], "cursor": "9-7", "more": false}),
            json!({"changes": [upsert("b", 7, None)], "cursor": "10-5", "more": false}),
            json!({"changes": [upsert("b", 7, None)], "cursor": "x", "more": false}),
            json!({"changes": [upsert("b", 7, None)], "cursor": null, "more": false}),
            json!({"changes": [], "cursor": "11-1", "more": true}),
            json!({"changes": [{"table": "t", "op": "upsert", "row": {"x": 1}, "version": 8}], "cursor": "11-8", "more": false}),
            json!({"changes": [{"table": "t", "id": "c", "op": "upsert", "row": {"x": 1}, "version": 8}], "cursor": "11-8", "more": false}),
            json!({"changes": [{"table": "u", "id": "c", "op": "delete", "version": 8}], "cursor": "11-8", "more": false}),
            json!({"changes": [{"table": "t", "id": "c", "op": "merge", "version": 8}], "cursor": "11-8", "more": false}),
            json!({"changes": [{"table": "t", "id": "c", "op": "delete", "version": -1}], "cursor": "11-8", "more": false}),
            json!({"changes": [upsert("b", 9, None), upsert("b", 8, None)], "cursor": "12-8", "more": false}),
        ];
        for page in bad {
            r.begin_pull();
            assert!(r.on_page(&page.to_string(), &local, 2).is_err(), "{page}");
            assert_eq!(r.cursor(), Some("10-5"), "{page}");
            assert!(r.take_ready().is_empty(), "{page}");
            assert!(r.last_error().is_some_and(|e| e.starts_with("refused a catch-up page")));
        }
    }

    /// The typed refusals read as the texts the app saw when they were written with `format!`.
    #[test]
    fn refusals_read_as_before() {
        let local = Local::default();
        let mut r = remote();
        let page = |r: &mut Remote<Row>, page: Value| {
            r.begin_pull();
            String::from(r.on_page(&page.to_string(), &local, 1).expect_err(&page.to_string()))
        };
        let change = |v: Value| json!({"changes": [v], "cursor": "11-8", "more": false});
        for (bad, why) in [
            (json!({"changes": [], "cursor": "11-1", "more": true}), "an empty page that says more follow"),
            (
                json!({"changes": [upsert("b", 7, None)], "cursor": "x", "more": false}),
                "cursor \"x\" is not a feed cursor",
            ),
            (json!({"changes": [upsert("b", 7, None)], "cursor": null, "more": false}), "changes without a cursor"),
            (json!({"changes": [], "reset": true, "more": true, "cursor": null}), "{\"changes\""),
            (
                change(json!({"table": "u", "id": "c", "op": "delete", "version": 8})),
                "a change of table \"u\", which was not asked for",
            ),
            (
                change(json!({"table": "t", "id": "c", "op": "merge", "version": 8})),
                "change.op \"merge\" is neither \"upsert\" nor \"delete\"",
            ),
            (change(json!({"table": "t", "id": "c", "op": "delete", "version": 0})), "change.version is 0"),
            (change(json!({"table": "t", "op": "delete", "version": 3})), "a change of t without its key"),
            (
                change(json!({"table": "t", "id": "c", "op": "upsert", "version": 3})),
                "an upsert of t/c without its row",
            ),
            (
                change(json!({"table": "t", "id": "c", "op": "upsert", "row": {"x": 1}, "version": 3})),
                "a row of t without its key id",
            ),
            (
                change(json!({"table": "t", "id": "c", "op": "upsert", "row": {"id": "d"}, "version": 3})),
                "an upsert of t/c whose row has the key \"d\"",
            ),
            (
                json!({"changes": [upsert("b", 9, None), upsert("b", 8, None)], "cursor": "12-8", "more": false}),
                "the version of t/b went back within the page",
            ),
            (json!({"changes": [], "more": "yes"}), "page.more is missing or not true or false"),
        ] {
            if why.starts_with('{') {
                continue; // a reset page is read: no refusal to compare
            }
            assert_eq!(page(&mut r, bad), ["refused a catch-up page: ", why].concat());
        }
        assert!(page(&mut r, json!(1)).starts_with("refused a catch-up page: page is not an object"));
        assert!(page(&mut r, Value::Null).starts_with("refused a catch-up page: page is not an object"));
        r.begin_pull();
        r.on_page(&json!({"changes": [], "cursor": "20-1", "more": false}).to_string(), &local, 1).unwrap();
        assert_eq!(
            page(&mut r, json!({"changes": [upsert("b", 7, None)], "cursor": "19-7", "more": false})),
            "refused a catch-up page: the cursor went back from \"20-1\" to \"19-7\""
        );
        assert_eq!(
            String::from(r.on_page("{}", &local, 1).unwrap_err()),
            "a catch-up page arrived with no catch-up under way"
        );
        r.begin_pull();
        assert_eq!(
            String::from(r.on_page("{", &local, 1).unwrap_err()),
            "refused a catch-up page: not JSON (an object key that is not a string at byte 1)"
        );
        let row = |v: Value| v.as_object().cloned().unwrap();
        let message =
            |r: &mut Remote<Row>, table, v| String::from(r.on_realtime_row(table, &row(v), &local).unwrap_err());
        assert_eq!(
            message(&mut r, "u", json!({"id": "a", "record_sync_version": 3})),
            "refused a realtime message: table \"u\" was not asked for"
        );
        assert_eq!(
            message(&mut r, "t", json!({"id": "a"})),
            "refused a realtime message: a row of t without record_sync_version (is its feed enabled?)"
        );
        assert_eq!(
            r.last_error(),
            Some("refused a realtime message: a row of t without record_sync_version (is its feed enabled?)")
        );
    }

    #[test]
    fn realtime_rows_that_cannot_be_ordered_are_refused_and_ask_for_a_catch_up() {
        let local = Local::default();
        let mut r = remote();
        r.begin_pull();
        r.on_page(&json!({"changes": [], "cursor": null, "more": false}).to_string(), &local, 1).unwrap();
        assert!(!r.wants_pull());
        let row = |v: Value| v.as_object().cloned().unwrap();
        for (table, bad) in [
            ("t", row(json!({"id": "a", "x": 1}))),
            ("t", row(json!({"x": 1, "record_sync_version": 3}))),
            ("t", row(json!({"id": null, "record_sync_version": 3}))),
            ("u", row(json!({"id": "a", "record_sync_version": 3}))),
        ] {
            assert!(r.on_realtime_row(table, &bad, &local).is_err(), "{bad:?}");
            assert!(r.wants_pull());
            assert!(r.last_error().is_some_and(|e| e.starts_with("refused a realtime message")));
            assert!(r.take_ready().is_empty());
        }
        // A version as text (bigint) is read; a duplicate of it is dropped.
        let good = row(json!({"id": 7, "record_sync_version": "12", "record_sync_origin": "other"}));
        r.on_realtime_row("t", &good, &local).unwrap();
        r.on_realtime_row("t", &good, &local).unwrap();
        assert_eq!(r.take_ready().iter().map(|c| (c.id.as_str(), c.version)).collect::<Vec<_>>(), [("7", 12)]);
    }

    #[test]
    fn feed_columns_are_stripped_and_own_writes_marked() {
        let local = Local::default();
        let mut r = remote();
        r.begin_pull();
        let page = json!({"changes": [upsert("a", 1, Some("me")), upsert("b", 2, Some("other"))], "cursor": "3-2", "more": false});
        r.on_page(&page.to_string(), &local, 1).unwrap();
        let ready = r.take_ready();
        assert_eq!(ready.iter().map(|c| c.own).collect::<Vec<_>>(), [true, false]);
        assert!(ready.iter().all(|c| c.row.as_ref().unwrap().keys().all(|k| !k.starts_with("record_sync_"))));
        assert_eq!(r.take_moved_cursor(), Some(Some(SavedCursor { tables: "t".into(), cursor: "3-2".into() })));
        assert_eq!(r.take_moved_cursor(), None);
    }

    #[test]
    fn a_held_change_waits_for_the_catch_up_after_the_local_change_settles() {
        let mut local = Local::default();
        local.0.insert(("t".into(), "a".into()));
        let mut r = remote();
        let row = upsert("a", 4, Some("other"))["row"].as_object().cloned().unwrap();
        r.on_realtime_row("t", &row, &local).unwrap();
        assert!(r.take_ready().is_empty());
        r.settle(&local);
        local.0.clear();
        r.begin_pull();
        r.settle(&local);
        // The pull under way began before the local change settled: it does not release the record.
        r.on_page(&json!({"changes": [], "cursor": null, "more": false}).to_string(), &local, 1).unwrap();
        assert!(r.take_ready().is_empty());
        assert!(r.wants_pull());
        r.begin_pull();
        r.on_page(&json!({"changes": [], "cursor": null, "more": false}).to_string(), &local, 2).unwrap();
        assert_eq!(r.take_ready().iter().map(|c| c.version).collect::<Vec<_>>(), [4]);
        assert_eq!(r.held_count(), 0);
    }
}
