//! Property tests of hold-and-rebase (src/core/remote.rs) against a model, on a virtual clock.
//!
//! One device runs the engine and the remote side, and keeps the app's local copy of the rows (what a Dexie
//! store would hold). Another device writes the model server directly. Interleaved at random: local edits
//! (upsert, patch, delete), the other device's writes, a batch sent and answered later (applied, failed
//! before commit, or lost after commit), catch-up pages one at a time (a page may fail on the network or
//! come back malformed), realtime messages, realtime dropping and coming back, reloads (the remote side
//! starts over from the cursor it stored; the queue and the app's copy are durable and stay), and the server
//! pruning its tombstones, which tells a reader behind them to start over (the app then drops its copy but for
//! records with a local change, as README says).
//!
//! Asserted throughout: a record with a local change the server has not settled keeps the app's own value
//! (no remote change overwrites it); per record, the app gets versions in increasing order only; a malformed
//! page is refused and moves no cursor. Asserted at the end, once the queue drains and a catch-up ran:
//! the app's copy equals the server's rows.

// Native tests. `wasm-pack test` builds every test target for wasm32 too, where proptest does not build.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::{BTreeMap, HashMap, VecDeque};

use proptest::prelude::*;
use record_sync::core::remote::{LocalChanges, PullOptions, Remote, RemoteOp, SavedCursor};
use record_sync::core::FastMap;
use record_sync::core::{
    Batch, Change, ChangeOutcome, Config, Conflict, ConflictReason, Engine, Op, Outcome, Priority, Resolution, Row,
};
use serde_json::{json, Value};

const IDS: [&str; 3] = ["a", "b", "c"];
const ME: &str = "me";
const PAGE: usize = 2;

#[derive(Clone, Debug)]
enum Step {
    LocalUpsert(usize, u8),
    LocalPatch(usize, u8),
    LocalDelete(usize),
    OtherUpsert(usize, u8),
    OtherPatch(usize, u8),
    OtherDelete(usize),
    Send,
    /// 0 applied, 1 failed before commit, 2 lost after commit.
    Answer(u8),
    PullPage,
    PullFails,
    MalformedPage,
    Realtime,
    RealtimeDrops,
    RealtimeBack,
    Reload,
    /// The server prunes every tombstone (they outlived the retention).
    Prune,
    Wait(u64),
}

fn step() -> impl Strategy<Value = Step> {
    let id = 0..IDS.len();
    prop_oneof![
        3 => (id.clone(), any::<u8>()).prop_map(|(i, v)| Step::LocalUpsert(i, v)),
        3 => (id.clone(), any::<u8>()).prop_map(|(i, v)| Step::LocalPatch(i, v)),
        1 => id.clone().prop_map(Step::LocalDelete),
        3 => (id.clone(), any::<u8>()).prop_map(|(i, v)| Step::OtherUpsert(i, v)),
        2 => (id.clone(), any::<u8>()).prop_map(|(i, v)| Step::OtherPatch(i, v)),
        1 => id.prop_map(Step::OtherDelete),
        3 => Just(Step::Send),
        3 => (0u8..3).prop_map(Step::Answer),
        4 => Just(Step::PullPage),
        1 => Just(Step::PullFails),
        1 => Just(Step::MalformedPage),
        3 => Just(Step::Realtime),
        1 => Just(Step::RealtimeDrops),
        1 => Just(Step::RealtimeBack),
        1 => Just(Step::Reload),
        1 => Just(Step::Prune),
        1 => (0u64..10_000).prop_map(Step::Wait),
    ]
}

/// The model server: rows and tombstones with the version of their last write, from one growing sequence.
#[derive(Default)]
struct Server {
    rows: BTreeMap<String, (Row, u64, &'static str)>,
    tombstones: BTreeMap<String, (u64, &'static str)>,
    version: u64,
    /// The newest version whose tombstone was pruned: a cursor before it may have missed a delete.
    pruned: u64,
    /// Realtime messages on their way while the socket is up: (id, row) of a write, or (id, None) of a delete.
    socket: Option<VecDeque<(String, Option<Row>)>>,
}

impl Server {
    fn write(&mut self, id: &str, op: Op, data: Option<&Row>, origin: &'static str) -> Outcome<Row> {
        let row = match (op, self.rows.get(id)) {
            (Op::Update, None) => return Outcome::Missing,
            (Op::Update, Some((row, _, _))) => {
                let mut row = row.clone();
                row.extend(data.cloned().unwrap_or_default());
                Some(row)
            }
            (Op::Delete, _) => None,
            (_, _) => data.cloned(),
        };
        self.version += 1;
        let version = self.version;
        match &row {
            Some(row) => {
                self.tombstones.remove(id);
                self.rows.insert(id.to_owned(), (row.clone(), version, origin));
            }
            None if self.rows.remove(id).is_some() => {
                self.tombstones.insert(id.to_owned(), (version, origin));
            }
            None => {}
        }
        if let Some(socket) = &mut self.socket {
            let message = row.map(|mut row| {
                row.insert("record_sync_version".into(), json!(version));
                row.insert("record_sync_origin".into(), json!(origin));
                row
            });
            socket.push_back((id.to_owned(), message));
        }
        Outcome::Applied
    }

    /// `record_sync_changes` over the model: each record's latest state after `since`, in version order.
    /// `restarted`: the read started over after a reset, and is not checked against the pruned horizon.
    fn page(&self, since: Option<&str>, restarted: bool) -> Value {
        let given: Option<u64> = since.and_then(|c| c.split_once('-')).map(|(_, v)| v.parse().unwrap());
        let since = given.unwrap_or(0);
        if !restarted && given.is_some_and(|since| since < self.pruned) {
            return json!({"changes": [], "cursor": null, "more": true, "reset": true});
        }
        let mut changes: Vec<(u64, Value)> = self
            .rows
            .iter()
            .filter(|(_, (_, v, _))| *v > since)
            .map(|(id, (row, v, origin))| {
                let mut row = row.clone();
                row.insert("record_sync_version".into(), json!(v));
                (*v, json!({"table": "t", "id": id, "op": "upsert", "row": row, "version": v, "origin": origin}))
            })
            .chain(self.tombstones.iter().filter(|(_, (v, _))| *v > since).map(|(id, (v, origin))| {
                (*v, json!({"table": "t", "id": id, "op": "delete", "row": null, "version": v, "origin": origin}))
            }))
            .collect();
        changes.sort_by_key(|(v, _)| *v);
        let more = changes.len() > PAGE;
        changes.truncate(PAGE);
        let cursor = changes.last().map(|(v, _)| format!("1-{v}"));
        let changes: Vec<Value> = changes.into_iter().map(|(_, c)| c).collect();
        // Nothing read: the cursor stays, and a first read gets the pruned horizon (as the feed answers it).
        let cursor = cursor.unwrap_or_else(|| format!("1-{}", since.max(self.pruned)));
        json!({"changes": changes, "cursor": cursor, "more": more})
    }
}

fn row(id: &str, a: u8, b: u8) -> Row {
    json!({"id": id, "a": a, "b": b}).as_object().cloned().unwrap()
}

struct World {
    server: Server,
    engine: Engine<Row>,
    remote: Remote<Row>,
    /// The app's local copy of the rows.
    app: BTreeMap<String, Row>,
    /// What the app last wrote for each record it edited (None: deleted).
    mine: HashMap<String, Option<Row>>,
    delivered: HashMap<String, u64>,
    /// The cursor the shell stored (it stores what `take_moved_cursor` gives after every page).
    stored: Option<SavedCursor>,
    /// A reload or a start-over happened: a version the app already has may come once more.
    reloaded: bool,
    /// This instance completed a catch-up: the shell opens the realtime socket only then (src/web/pull.rs).
    caught_up: bool,
    /// A read that started over after a reset is under way. The feed does not check it against prunes (it
    /// would reset again at every page): it is assumed to finish within the month before the next one.
    restarting: bool,
    flight: Option<Batch<Row>>,
    now: u64,
    conflicts: u64,
    missing: u64,
}

impl World {
    fn new() -> World {
        let config = Config { max_retries: 100, seed: 7, ..Config::default() };
        let options =
            PullOptions { tables: vec!["t".into()], page_size: PAGE as u32, primary_keys: FastMap::default() };
        World {
            server: Server { socket: Some(VecDeque::new()), ..Server::default() },
            engine: Engine::new(config).unwrap(),
            remote: Remote::new(ME, options),
            app: BTreeMap::new(),
            mine: HashMap::new(),
            delivered: HashMap::new(),
            stored: None,
            reloaded: false,
            caught_up: false,
            restarting: false,
            flight: None,
            now: 0,
            conflicts: 0,
            missing: 0,
        }
    }

    fn local(&mut self, id: &str, op: Op, data: Option<Row>) {
        let change = Change::new("t", id, op, data.clone(), Priority::High).unwrap();
        if self.engine.enqueue(change, self.now).is_err() {
            return;
        }
        match op {
            Op::Delete => {
                self.app.remove(id);
            }
            Op::Update => {
                if let Some(row) = self.app.get_mut(id) {
                    row.extend(data.unwrap_or_default());
                }
            }
            _ => {
                self.app.insert(id.to_owned(), data.unwrap_or_default());
            }
        }
        self.mine.insert(id.to_owned(), self.app.get(id).cloned());
    }

    fn step(&mut self, step: Step) {
        match step {
            Step::LocalUpsert(i, v) => self.local(IDS[i], Op::Upsert, Some(row(IDS[i], v, v))),
            Step::LocalPatch(i, v) if self.app.contains_key(IDS[i]) => {
                self.local(IDS[i], Op::Update, json!({"a": v}).as_object().cloned())
            }
            Step::LocalDelete(i) if self.app.contains_key(IDS[i]) => self.local(IDS[i], Op::Delete, None),
            Step::LocalPatch(..) | Step::LocalDelete(_) => {}
            Step::OtherUpsert(i, v) => {
                self.server.write(IDS[i], Op::Upsert, Some(&row(IDS[i], v, 255 - v)), "other");
            }
            Step::OtherPatch(i, v) => {
                self.server.write(IDS[i], Op::Update, json!({"b": v}).as_object(), "other");
            }
            Step::OtherDelete(i) => {
                self.server.write(IDS[i], Op::Delete, None, "other");
            }
            Step::Send if self.flight.is_none() => {
                if let Some(at) = self.engine.poll_timeout() {
                    self.now = self.now.max(at);
                }
                self.flight = self.engine.poll_batch(self.now);
            }
            Step::Send => {}
            Step::Answer(fault) => self.answer(fault),
            Step::PullPage => self.pull_page(),
            Step::PullFails if self.remote.is_pulling() => self.remote.pull_failed("network"),
            Step::PullFails => {}
            Step::MalformedPage => {
                if self.remote.is_pulling() || self.remote.begin_pull().is_some() {
                    let before = self.remote.cursor().map(str::to_owned);
                    let bad = json!({"changes": [{"table": "t", "op": "upsert", "row": {"a": 1}, "version": 1}],
                                     "cursor": "1-999", "more": false});
                    assert!(self.remote.on_page(&bad.to_string(), &self.engine, self.now).is_err());
                    assert_eq!(self.remote.cursor().map(str::to_owned), before);
                }
            }
            Step::Realtime => self.realtime(),
            Step::RealtimeDrops => self.server.socket = None,
            Step::RealtimeBack if self.server.socket.is_none() => {
                self.server.socket = Some(VecDeque::new());
                // What the socket missed comes by catch-up.
                self.remote.request_pull();
            }
            Step::RealtimeBack => {}
            Step::Reload => {
                // What was in flight goes again as pending; what was held or on the socket is gone.
                if let Some(batch) = self.flight.take() {
                    self.engine.on_batch_failed(batch.id, "reload", None, self.now).unwrap();
                }
                let options =
                    PullOptions { tables: vec!["t".into()], page_size: PAGE as u32, primary_keys: FastMap::default() };
                self.remote = Remote::new(ME, options);
                self.remote.restore_cursor(self.stored.clone());
                self.server.socket = self.server.socket.take().map(|_| VecDeque::new());
                self.reloaded = true;
                self.caught_up = false;
                self.restarting = false;
            }
            Step::Prune if self.restarting => {}
            Step::Prune => {
                // Tombstones are pruned a month after their delete: what was on its way on the socket then has
                // long arrived (or, before this instance's first catch-up opened the socket, never came).
                while self.server.socket.as_ref().is_some_and(|queue| !queue.is_empty()) {
                    if !self.caught_up {
                        self.server.socket = Some(VecDeque::new());
                    }
                    self.realtime();
                }
                if let Some(newest) = self.server.tombstones.values().map(|(v, _)| *v).max() {
                    self.server.pruned = self.server.pruned.max(newest);
                }
                self.server.tombstones.clear();
            }
            Step::Wait(ms) => self.now += ms,
        }
        self.settle();
    }

    /// The next realtime message, once this instance has caught up (the shell opens the socket only then).
    fn realtime(&mut self) {
        if !self.caught_up {
            return;
        }
        if let Some((_, message)) = self.server.socket.as_mut().and_then(VecDeque::pop_front) {
            match message {
                Some(row) => self.remote.on_realtime_row("t", &row, &self.engine).unwrap(),
                None => self.remote.on_realtime_other(None),
            }
        }
    }

    fn answer(&mut self, fault: u8) {
        let Some(batch) = self.flight.take() else { return };
        let outcomes: Vec<ChangeOutcome<Row>> = batch
            .changes
            .iter()
            .map(|c| {
                let outcome =
                    if fault == 1 { Outcome::Applied } else { self.server.write(&c.id, c.op, c.data.as_ref(), ME) };
                if outcome == Outcome::Missing && fault == 0 {
                    self.missing += 1;
                }
                ChangeOutcome { seq: c.seq, outcome }
            })
            .collect();
        if fault == 0 {
            self.engine.on_batch_result(batch.id, outcomes, self.now).unwrap();
        } else {
            self.engine.on_batch_failed(batch.id, "network", None, self.now).unwrap();
        }
        let conflicts = self.engine.take_conflicts();
        self.conflicts += conflicts.len() as u64;
        server_stands(&mut self.remote, &self.engine, conflicts);
    }

    fn pull_page(&mut self) {
        if !self.remote.is_pulling() && self.remote.begin_pull().is_none() {
            return;
        }
        let request: Value = serde_json::from_str(&self.remote.page_request()).unwrap();
        let page = self.server.page(self.remote.cursor(), request["restarted"] == true);
        let more = self.remote.on_page(&page.to_string(), &self.engine, self.now).unwrap();
        self.caught_up |= !more;
        self.restarting &= more;
        if let Some(cursor) = self.remote.take_moved_cursor() {
            self.stored = cursor;
        }
    }

    /// What the shell does after every event: settle held records, deliver what is ready, and check that no
    /// record with an unsettled local change was touched.
    fn settle(&mut self) {
        self.remote.settle(&self.engine);
        if self.remote.take_reset() {
            // README's recipe: drop the copy of the pulled tables, but for records with a change still pending.
            let engine = &self.engine;
            self.app.retain(|id, _| engine.has_local_change("t", id));
            self.reloaded = true;
            self.restarting = true;
        }
        for change in self.remote.take_ready() {
            let last = self.delivered.get(&change.id).copied();
            self.delivered.insert(change.id.clone(), last.unwrap_or(0).max(change.version));
            // The server's row after a conflict it won comes again (the app's copy held the refused write); a
            // missing row this instance never saw a version of comes as a delete of version 0.
            let again = |v: u64| {
                (self.reloaded || change.conflict) && v == change.version
                    || change.conflict && change.version == 0 && change.op == RemoteOp::Delete
            };
            assert!(last.is_none_or(|v| v < change.version || again(v)), "{} delivered out of order", change.id);
            assert!(!self.engine.has_local_change("t", &change.id), "{} delivered over a local change", change.id);
            match change.op {
                RemoteOp::Upsert => {
                    let row = change.row.unwrap();
                    assert!(row.keys().all(|k| !k.starts_with("record_sync_")));
                    self.app.insert(change.id, row);
                }
                RemoteOp::Delete => {
                    self.app.remove(&change.id);
                }
            }
        }
        for id in IDS {
            if self.engine.has_local_change("t", id) {
                assert_eq!(self.app.get(id), self.mine.get(id).and_then(Option::as_ref), "{id} lost its local edit");
            }
        }
    }

    /// Everything sent and answered, then catch-up until nothing is held or wanted.
    fn drain(&mut self) {
        for _ in 0..200 {
            self.step(Step::Answer(0));
            self.step(Step::Send);
            if self.flight.is_none() && self.engine.stats().pending == 0 {
                break;
            }
        }
        assert_eq!(self.engine.stats().pending, 0, "the queue drains");
        for _ in 0..50 {
            if !self.remote.is_pulling() && !self.remote.wants_pull() && self.remote.held_count() == 0 {
                break;
            }
            self.step(Step::PullPage);
        }
        // One full catch-up more, so that anything the socket dropped is read.
        self.remote.request_pull();
        for _ in 0..50 {
            self.step(Step::PullPage);
            if !self.remote.is_pulling() {
                break;
            }
        }
        assert_eq!(self.remote.held_count(), 0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn local_edits_win_until_settled_and_every_device_converges(steps in proptest::collection::vec(step(), 1..80)) {
        let mut world = World::new();
        for step in steps {
            world.step(step);
        }
        world.drain();
        let server: BTreeMap<String, Row> =
            world.server.rows.iter().map(|(id, (row, _, _))| (id.clone(), row.clone())).collect();
        prop_assert_eq!(&world.app, &server);
        // An update that met a row another device deleted is a conflict the app hears of.
        prop_assert_eq!(world.conflicts, world.missing);
    }
}

/// What the shell does with the engine's conflicts (src/web/conflicts.rs): where the server's row stands
/// (lastWriterWins, the default here), the remote side delivers it again.
fn server_stands(remote: &mut Remote<Row>, engine: &Engine<Row>, conflicts: Vec<Conflict<Row>>) {
    for conflict in conflicts {
        if conflict.resolution == Resolution::ServerWins {
            remote.on_server_stands(&conflict.table, &conflict.id, conflict.server_row.as_ref(), engine);
        }
    }
}

/// Clock skew (QA s12): the app has the other device's row, then writes the record with a clock behind; the
/// server keeps its row ("newer", lastWriterWins). The feed has nothing newer than what the app saw, so only
/// the conflict brings the app back to the server's row; with another local change pending, it waits.
#[test]
fn a_write_the_server_refused_as_older_brings_the_app_back_to_the_servers_row() {
    let options = PullOptions { tables: vec!["t".into()], page_size: 10, primary_keys: FastMap::default() };
    let mut remote = Remote::new(ME, options);
    let mut engine = Engine::new(Config::default()).unwrap();
    let theirs = json!({"id": "a", "x": "B", "record_sync_version": 5, "record_sync_origin": "other"});
    let page = json!({"changes": [{"table": "t", "id": "a", "op": "upsert", "row": theirs, "version": 5,
                                   "origin": "other"}], "cursor": "1-5", "more": false});
    remote.begin_pull();
    remote.on_page(&page.to_string(), &engine, 0).unwrap();
    assert_eq!(remote.take_ready().len(), 1);
    let stripped = json!({"id": "a", "x": "B"}).as_object().cloned();
    for pending_edit in [false, true] {
        let mine = json!({"id": "a", "x": "A"}).as_object().cloned();
        engine.enqueue(Change::new("t", "a", Op::Upsert, mine.clone(), Priority::High).unwrap(), 0).unwrap();
        let batch = engine.poll_batch(u64::MAX / 2).unwrap();
        if pending_edit {
            engine.enqueue(Change::new("t", "a", Op::Upsert, mine, Priority::Low).unwrap(), 1).unwrap();
        }
        let server_row = theirs.as_object().cloned();
        let outcomes =
            vec![ChangeOutcome { seq: batch.changes[0].seq, outcome: Outcome::Conflict { row: server_row } }];
        engine.on_batch_result(batch.id, outcomes, 2).unwrap();
        let conflicts = engine.take_conflicts();
        assert_eq!(conflicts[0].reason, ConflictReason::Newer);
        server_stands(&mut remote, &engine, conflicts);
        remote.settle(&engine);
        if pending_edit {
            assert!(remote.take_ready().is_empty(), "held while another local change is pending");
            assert_eq!(remote.held_count(), 1);
            let batch = engine.poll_batch(u64::MAX / 2).unwrap();
            let outcomes = vec![ChangeOutcome {
                seq: batch.changes[0].seq,
                outcome: Outcome::Conflict { row: theirs.as_object().cloned() },
            }];
            engine.on_batch_result(batch.id, outcomes, 3).unwrap();
            let conflicts = engine.take_conflicts();
            server_stands(&mut remote, &engine, conflicts);
            remote.settle(&engine);
            remote.begin_pull();
            remote.on_page(&json!({"changes": [], "cursor": null, "more": false}).to_string(), &engine, 4).unwrap();
        }
        let ready = remote.take_ready();
        assert_eq!(ready.len(), 1, "the server's row comes again");
        assert_eq!(
            (ready[0].op, ready[0].version, ready[0].conflict, ready[0].own),
            (RemoteOp::Upsert, 5, true, false)
        );
        assert_eq!(ready[0].row, stripped);
    }
    // A "missing" row: the app gets a delete.
    engine
        .enqueue(Change::new("t", "b", Op::Update, json!({"x": 1}).as_object().cloned(), Priority::High).unwrap(), 5)
        .unwrap();
    let batch = engine.poll_batch(u64::MAX / 2).unwrap();
    let outcomes = vec![ChangeOutcome { seq: batch.changes[0].seq, outcome: Outcome::Missing }];
    engine.on_batch_result(batch.id, outcomes, 6).unwrap();
    let conflicts = engine.take_conflicts();
    server_stands(&mut remote, &engine, conflicts);
    remote.settle(&engine);
    let ready = remote.take_ready();
    assert_eq!(
        ready.iter().map(|c| (c.id.as_str(), c.op, c.conflict)).collect::<Vec<_>>(),
        [("b", RemoteOp::Delete, true)]
    );
}

/// A remote delete held against a pending local update: the update meets a gone row (a conflict), and the
/// delete reaches the app after the catch-up that follows.
#[test]
fn a_remote_delete_of_a_record_with_a_pending_update_is_a_conflict_then_a_delete() {
    let mut w = World::new();
    w.step(Step::LocalUpsert(0, 1));
    w.step(Step::Send);
    w.step(Step::Answer(0));
    w.drain();
    w.step(Step::LocalPatch(0, 9));
    w.step(Step::OtherDelete(0));
    w.step(Step::Realtime); // the upsert's echo
    w.step(Step::Realtime); // the delete: a catch-up is asked for
    w.step(Step::PullPage);
    assert_eq!(w.app.get("a").and_then(|r| r.get("a")), Some(&json!(9)), "held while the update is pending");
    w.step(Step::Send);
    w.step(Step::Answer(0));
    assert_eq!((w.conflicts, w.missing), (1, 1));
    assert!(w.app.contains_key("a"), "still held until a catch-up after the update settled");
    w.drain();
    assert!(!w.app.contains_key("a"));
}

/// A remote delete held against a pending local update, then a reload before the update is sent: the stored
/// cursor had not passed the held delete, so the new instance reads it again and the app gets it after the
/// update's conflict. (Stored past it, the app would keep the row the server deleted.)
#[test]
fn a_change_held_when_the_page_reloads_is_read_again_by_the_next_instance() {
    let mut w = World::new();
    w.step(Step::LocalUpsert(0, 1));
    w.step(Step::Send);
    w.step(Step::Answer(0));
    w.drain();
    w.step(Step::LocalPatch(0, 9));
    w.step(Step::OtherDelete(0));
    w.step(Step::RealtimeDrops);
    w.remote.request_pull();
    w.step(Step::PullPage);
    assert!(w.app.contains_key("a"), "held while the update is pending");
    w.step(Step::Reload);
    w.step(Step::Send);
    w.step(Step::Answer(0));
    assert_eq!((w.conflicts, w.missing), (1, 1));
    w.drain();
    assert!(!w.app.contains_key("a"), "the delete reached the app after the reload");
}

/// A restored queue sends its writes under the ids of the pages that queued them: rows coming back with those
/// origins, in a page or from realtime, are this client's own, and no others are.
#[test]
fn rows_written_under_an_earlier_pages_id_are_own_once_it_is_restored() {
    let options = PullOptions { tables: vec!["t".into()], page_size: 10, primary_keys: FastMap::default() };
    let mut remote: Remote<Row> = Remote::new(ME, options);
    let engine: Engine<Row> = Engine::new(Config::default()).unwrap();
    remote.also_own("earlier-page");
    let change = |id: &str, v: u64, origin: &str| {
        let row = json!({"id": id, "record_sync_version": v, "record_sync_origin": origin});
        json!({"table": "t", "id": id, "op": "upsert", "row": row, "version": v, "origin": origin})
    };
    let page = json!({"changes": [change("a", 1, "earlier-page"), change("b", 2, ME), change("c", 3, "other")],
                      "cursor": "1-3", "more": false});
    remote.begin_pull();
    remote.on_page(&page.to_string(), &engine, 0).unwrap();
    let own: Vec<(String, bool)> = remote.take_ready().into_iter().map(|c| (c.id, c.own)).collect();
    assert_eq!(own, [("a".to_owned(), true), ("b".to_owned(), true), ("c".to_owned(), false)]);
}

/// Away longer than the feed keeps tombstones, a reader is told to start over: the app hears of it once, before
/// the rows that follow, and every current row comes again (the app may have dropped its copy), while a
/// delayed older version is still dropped. Once that catch-up completes, duplicates are dropped again.
#[test]
fn a_reset_is_told_once_and_brings_every_current_row_again_but_never_an_older_one() {
    let options = PullOptions { tables: vec!["t".into()], page_size: 10, primary_keys: FastMap::default() };
    let mut remote: Remote<Row> = Remote::new(ME, options);
    let engine: Engine<Row> = Engine::new(Config::default()).unwrap();
    let row = |id: &str, v: u64| json!({"id": id, "record_sync_version": v}).as_object().cloned().unwrap();
    let change = |id: &str, v: u64| json!({"table": "t", "id": id, "op": "upsert", "row": row(id, v), "version": v});
    let ready = |remote: &mut Remote<Row>| -> Vec<(String, u64)> {
        remote.take_ready().into_iter().map(|c| (c.id, c.version)).collect()
    };
    remote.begin_pull();
    let first = json!({"changes": [change("b", 2), change("a", 3)], "cursor": "1-3", "more": false});
    assert!(!remote.on_page(&first.to_string(), &engine, 0).unwrap());
    assert_eq!(ready(&mut remote), [("b".to_owned(), 2), ("a".to_owned(), 3)]);
    assert!(!remote.take_reset());

    remote.request_pull();
    remote.begin_pull();
    let reset = json!({"changes": [], "cursor": null, "more": true, "reset": true});
    assert!(remote.on_page(&reset.to_string(), &engine, 1).unwrap(), "the catch-up goes on from the start");
    assert!(remote.take_reset(), "told");
    assert!(!remote.take_reset(), "told once");
    assert_eq!(remote.resets(), 1);
    remote.on_realtime_row("t", &row("a", 2), &engine).unwrap();
    assert_eq!(ready(&mut remote), [], "an older version than seen is still dropped");
    // b was deleted in the pruned gap: the feed has no tombstone of it, only a's current row.
    let again = json!({"changes": [change("a", 3)], "cursor": "1-3", "more": false});
    assert!(!remote.on_page(&again.to_string(), &engine, 2).unwrap());
    assert_eq!(ready(&mut remote), [("a".to_owned(), 3)], "the version seen comes again");

    remote.on_realtime_row("t", &row("a", 3), &engine).unwrap();
    assert_eq!(ready(&mut remote), [], "after the catch-up completed, a duplicate is dropped again");
    assert!(!remote.take_reset());
}
