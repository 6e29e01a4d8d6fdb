//! Property tests of the engine against a model server on a virtual clock that jumps to `poll_timeout()`.
//!
//! Random changes over a few records of a parent and a child table (so merges and parent pulls happen),
//! random batch faults (transient, lost after commit, permanent, reload with or without the write applied),
//! offline periods and configurations. Asserted: convergence (the server ends as applying, in order, every
//! change not discarded), per-record order, parents before children, and, with a healthy server, deadlines.
//!
//! In `rest` mode the batches go through the real wire plan ([`Exchange`]) to a model PostgREST
//! (tests/common/postgrest.rs), with faults of its own: 2xx HTML pages in place of any request's answer, and
//! another device or user changing the rows a batch is about to write (a newer row, a deleted row, a row
//! hidden by row-level security). Asserted after every batch: nothing reported applied is absent from the
//! server, a conflict is reported only against a newer row, and no write ever lowers a row's `last_changed`.

// Native tests. `wasm-pack test` builds every test target for wasm32 too, where proptest does not build.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::{BTreeMap, HashMap, HashSet};

use proptest::prelude::*;
use record_sync::core::wire::{Exchange, HttpRequest, HttpResponse, WireConfig, WireMode};
use record_sync::core::FastMap;
use record_sync::core::{
    Backoff, Batch, Change, ChangeOutcome, Config, Engine, EngineError, Event, Fill, Op, Outcome, OutgoingChange,
    Output, Priority, Row, Transmit,
};
use serde_json::{json, Value};

#[path = "common/mod.rs"]
mod common;
use common::postgrest::Postgrest;

const TABLES: [&str; 2] = ["plans", "sessions"];
const IDS: [&str; 3] = ["a", "b", "c"];
type Key = (String, String);

// ---------------------------------------------------------------------------------------------------------
// The model server: rows, exactly-once by seq, and a log of what it wrote.

#[derive(Default)]
struct Server {
    rows: BTreeMap<Key, Row>,
    applied: HashSet<u64>,
    /// Seqs written per record, in the order written.
    writes: HashMap<Key, Vec<u64>>,
}

/// The semantics of each op, shared by the server and the reference: insert only where there is no row,
/// update patches an existing row, upsert replaces (it carries the full row), delete removes.
fn apply(rows: &mut BTreeMap<Key, Row>, key: &Key, op: Op, data: Option<&Row>) -> bool {
    match op {
        Op::Insert if rows.contains_key(key) => return false,
        Op::Insert | Op::Upsert => {
            rows.insert(key.clone(), data.cloned().unwrap_or_default());
        }
        Op::Update => {
            if let Some(row) = rows.get_mut(key) {
                for (column, value) in data.cloned().unwrap_or_default() {
                    row.insert(column, value);
                }
            }
        }
        Op::Delete => {
            rows.remove(key);
        }
    }
    true
}

impl Server {
    fn write(&mut self, change: &OutgoingChange<Row>) -> Outcome<Row> {
        if self.applied.contains(&change.seq) {
            return Outcome::Applied;
        }
        let key = (change.table.clone(), change.id.clone());
        if !apply(&mut self.rows, &key, change.op, change.data.as_ref()) {
            return Outcome::Permanent { code: Some("23505".into()), message: "duplicate key".into() };
        }
        self.applied.insert(change.seq);
        self.writes.entry(key).or_default().push(change.seq);
        Outcome::Applied
    }
}

// ---------------------------------------------------------------------------------------------------------
// Scenarios.

#[derive(Clone, Debug)]
enum Step {
    Change { table: usize, id: usize, op: u8, priority: u8, value: u8, full: bool },
    Advance(u64),
    Online(bool),
    Reload,
}

#[derive(Clone, Debug)]
enum Fault {
    None,
    Transient {
        retry_after_ms: Option<u64>,
    },
    LostAfterCommit,
    /// Writes whose position in the batch has its bit set are refused.
    Permanent {
        mask: u8,
    },
    ReloadBeforeAnswer {
        committed: bool,
    },
    /// `rest`: the `at`-th request of the batch is answered with a 2xx HTML page (even `at`) or lost on its way
    /// (odd `at`, a network error); nothing done either way, and the requests out beside it still answered.
    Html {
        at: usize,
    },
    /// `rest`: before the batch lands, another device or user changes the row of one of its writes.
    Foreign {
        what: Foreign,
        write: usize,
    },
}

#[derive(Clone, Copy, Debug)]
enum Foreign {
    Newer,
    Deleted,
    Hidden,
}

#[derive(Clone, Debug)]
struct Scenario {
    rest: bool,
    batch_size: usize,
    max_retries: u32,
    fill: Fill,
    intervals_ms: [u64; 4],
    steps: Vec<Step>,
    faults: Vec<Fault>,
    /// Picks which of the requests out at once is answered first (`rest` mode's runs of one-record requests).
    answer_order: u64,
}

fn step(faulty: bool) -> impl Strategy<Value = Step> {
    let change = (0..2usize, 0..3usize, 0..8u8, 0..4u8, 0..4u8, any::<bool>())
        .prop_map(|(table, id, op, priority, value, full)| Step::Change { table, id, op, priority, value, full });
    let advance = prop_oneof![0..50u64, 0..3_000u64, 0..400_000u64].prop_map(Step::Advance);
    if faulty {
        prop_oneof![6 => change, 3 => advance, 1 => any::<bool>().prop_map(Step::Online), 1 => Just(Step::Reload)]
            .boxed()
    } else {
        prop_oneof![6 => change, 3 => advance].boxed()
    }
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        8 => Just(Fault::None),
        2 => proptest::option::of(0..20_000u64).prop_map(|retry_after_ms| Fault::Transient { retry_after_ms }),
        2 => Just(Fault::LostAfterCommit),
        1 => any::<u8>().prop_map(|mask| Fault::Permanent { mask }),
        1 => any::<bool>().prop_map(|committed| Fault::ReloadBeforeAnswer { committed }),
    ]
}

/// `rest` mode's faults; with `foreign`, other writers too.
fn rest_fault(foreign: bool) -> impl Strategy<Value = Fault> {
    let what = prop_oneof![Just(Foreign::Newer), Just(Foreign::Deleted), Just(Foreign::Hidden)];
    let foreign_weight = if foreign { 2 } else { 0 };
    prop_oneof![
        8 => Just(Fault::None),
        2 => proptest::option::of(0..20_000u64).prop_map(|retry_after_ms| Fault::Transient { retry_after_ms }),
        2 => Just(Fault::LostAfterCommit),
        2 => (0..4usize).prop_map(|at| Fault::Html { at }),
        1 => any::<bool>().prop_map(|committed| Fault::ReloadBeforeAnswer { committed }),
        foreign_weight => (what, 0..6usize).prop_map(|(what, write)| Fault::Foreign { what, write }),
    ]
}

fn scenario(faulty: bool) -> impl Strategy<Value = Scenario> {
    scenario_with(false, if faulty { fault().boxed() } else { Just(Fault::None).boxed() }, faulty)
}

fn scenario_with(rest: bool, fault: BoxedStrategy<Fault>, faulty: bool) -> impl Strategy<Value = Scenario> {
    let intervals = [Just(0u64).boxed(), (0..6_000u64).boxed(), (0..40_000u64).boxed(), (0..400_000u64).boxed()];
    let faults = proptest::collection::vec(fault, 1..30);
    let steps = proptest::collection::vec(step(faulty), 1..80);
    (1..6usize, 0..4u32, fill(), intervals, steps, faults, any::<u64>()).prop_map(
        move |(batch_size, max_retries, fill, [i0, i1, i2, i3], steps, faults, answer_order)| {
            // Intervals grow with lower priority, as any sensible configuration has them.
            let mut intervals_ms = [i0, i1, i2, i3];
            intervals_ms.sort_unstable();
            Scenario { rest, batch_size, max_retries, fill, intervals_ms, steps, faults, answer_order }
        },
    )
}

fn fill() -> impl Strategy<Value = Fill> {
    prop_oneof![Just(Fill::DueOnly), Just(Fill::All), (0..5_000u64).prop_map(|idle_ms| Fill::Idle { idle_ms })]
}

fn config(s: &Scenario) -> Config {
    Config {
        intervals_ms: s.intervals_ms,
        batch_size: s.batch_size,
        max_retries: s.max_retries,
        backoff: Backoff { base_ms: 100, max_ms: 5_000 },
        parents: FastMap::from_iter([("sessions".to_owned(), vec!["plans".to_owned()])]),
        fill: s.fill,
        seed: 42,
        on_conflict: FastMap::default(),
        wire: if s.rest {
            rest_wire()
        } else {
            WireConfig { mode: WireMode::Rpc { function: "record_sync_apply".into() }, client_id: "c".into() }
        },
    }
}

// ---------------------------------------------------------------------------------------------------------
// The harness: drives the engine on a virtual clock and checks each batch as it goes out.

struct Accepted {
    seq: u64,
    key: Key,
    op: Op,
    data: Option<Row>,
}

struct Harness {
    config: Config,
    engine: Engine<Row>,
    server: Server,
    now: u64,
    faults: Vec<Fault>,
    next_fault: usize,
    /// Every change the engine accepted, in order.
    accepted: Vec<Accepted>,
    /// Changes of the parent table not yet written, nor cancelled, nor refused.
    outstanding_parents: BTreeMap<u64, Key>,
    /// Accepted changes not yet in any sent batch, with their deadlines.
    unsent: HashMap<Key, Vec<(u64, u64)>>,
    /// Records whose write the server applied without the engine hearing of it.
    uncertain: HashSet<Key>,
    /// (record, first seq, last seq) of discarded writes.
    discarded: Vec<(Key, u64, u64)>,
    check_deadlines: bool,
    reloads: u32,
    /// `rest` mode: the model PostgREST the wire plan's requests go to.
    rest: Option<Postgrest>,
    /// Another writer changed rows: the server no longer ends as the changes alone describe.
    foreign_writes: bool,
    /// `Event::StateChanged`s the engine gave: a deadline that came must move the state.
    state_changes: u64,
    /// The generator that picks which request out is answered next.
    answer_order: u64,
}

/// The sync function's answer: one result per write, as `record_sync_apply` gives them.
fn rpc_answer(outcomes: &[ChangeOutcome<Row>]) -> HttpResponse {
    let results: Vec<Value> = outcomes
        .iter()
        .map(|o| match &o.outcome {
            Outcome::Applied => json!({ "seq": o.seq, "status": "applied" }),
            Outcome::Conflict { row } => json!({ "seq": o.seq, "status": "conflict", "row": row }),
            Outcome::Missing => json!({ "seq": o.seq, "status": "missing" }),
            Outcome::Permanent { code, message } => {
                json!({ "seq": o.seq, "status": "error", "code": code, "message": message })
            }
            Outcome::TooLarge { message } => {
                json!({ "seq": o.seq, "status": "error", "code": "413", "message": message })
            }
            Outcome::Transient { message, retry_after_ms } => json!({
                "seq": o.seq, "status": "error", "transient": true, "message": message, "retryAfterMs": retry_after_ms
            }),
        })
        .collect();
    HttpResponse { status: 200, retry_after: None, body: Value::Array(results).to_string() }
}

/// A 503, with `Retry-After` in seconds (to the millisecond) when given.
fn unavailable(retry_after_ms: Option<u64>) -> HttpResponse {
    let retry_after = retry_after_ms.map(|ms| format!("{}.{:03}", ms / 1_000, ms % 1_000));
    HttpResponse { status: 503, retry_after, body: String::new() }
}

fn rest_wire() -> WireConfig {
    WireConfig { mode: WireMode::Rest { primary_keys: FastMap::default() }, client_id: "c".into() }
}

/// A `last_changed` stamp that orders as the virtual clock does.
/// An ISO 8601 stamp for a virtual time (ms), whose text order is its time order (fixed width, UTC).
fn stamp_at(now: u64) -> String {
    let (days, ms) = (now / 86_400_000, now % 86_400_000);
    let (hours, minutes, seconds, millis) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1_000 % 60, ms % 1_000);
    format!("2026-{:02}-{:02}T{hours:02}:{minutes:02}:{seconds:02}.{millis:03}Z", 1 + days / 28 % 12, 1 + days % 28)
}

fn key_of(change: &OutgoingChange<Row>) -> Key {
    (change.table.clone(), change.id.clone())
}

impl Harness {
    fn new(s: &Scenario, check_deadlines: bool) -> Harness {
        let config = config(s);
        Harness {
            engine: Engine::new(config.clone()).unwrap(),
            config,
            server: Server::default(),
            now: 1_000,
            faults: s.faults.clone(),
            next_fault: 0,
            accepted: Vec::new(),
            outstanding_parents: BTreeMap::new(),
            unsent: HashMap::new(),
            uncertain: HashSet::new(),
            discarded: Vec::new(),
            check_deadlines,
            reloads: 0,
            rest: s.rest.then(Postgrest::default),
            foreign_writes: false,
            state_changes: 0,
            answer_order: s.answer_order | 1,
        }
    }

    /// What the caller's own view says the record looks like: every accepted change applied in order.
    fn exists(&self, key: &Key) -> bool {
        let mut rows = BTreeMap::new();
        for a in self.accepted.iter().filter(|a| &a.key == key) {
            apply(&mut rows, &a.key, a.op, a.data.as_ref());
        }
        rows.contains_key(key)
    }

    fn change(&mut self, table: usize, id: usize, op: u8, priority: u8, value: u8, full: bool) {
        let key: Key = (TABLES[table].to_owned(), IDS[id].to_owned());
        let exists = self.exists(&key);
        let op = match (exists, op % 4) {
            (false, 0 | 1) => Op::Insert,
            (true, 0 | 1) => Op::Update,
            (_, 2) => Op::Upsert,
            _ if op >= 6 => Op::Update,
            _ => Op::Delete,
        };
        let v = json!(value);
        let mut data: Option<Row> = match op {
            Op::Delete => None,
            Op::Update if !full => json!({ "a": v }).as_object().cloned(),
            _ => json!({ "id": key.1, "a": v, "b": self.now }).as_object().cloned(),
        };
        if let (Some(row), true) = (&mut data, self.rest.is_some()) {
            row.insert("last_changed".into(), json!(stamp_at(self.now)));
        }
        let priority = Priority::from_index(priority as u32).unwrap();
        let change = Change::new(&key.0, &key.1, op, data.clone(), priority).unwrap();
        match self.engine.enqueue(change, self.now) {
            Ok(seq) => {
                self.accepted.push(Accepted { seq, key: key.clone(), op, data });
                if key.0 == TABLES[0] {
                    self.outstanding_parents.insert(seq, key.clone());
                }
                let deadline = self.now + self.config.interval(priority);
                self.unsent.entry(key.clone()).or_default().push((seq, deadline));
                self.forget_if_cancelled(&key);
            }
            Err(EngineError::RecordExists { .. }) => {}
            Err(e) => panic!("unexpected refusal: {e}"),
        }
    }

    /// An insert cancelled by a delete leaves nothing to send.
    fn forget_if_cancelled(&mut self, key: &Key) {
        let queued = self.engine.pending_changes().iter().any(|p| (&p.write.table, &p.write.id) == (&key.0, &key.1));
        if !queued {
            self.unsent.remove(key);
            self.outstanding_parents.retain(|_, k| k != key);
        }
    }

    /// A new page: the stored queue restored under an id of the page's own, as the shell does. Its restored
    /// writes keep the ids they were queued under, and go in batches of one id.
    fn reload(&mut self) {
        let snapshot = self.engine.export();
        let json = serde_json::to_string(&snapshot).unwrap();
        let online = self.engine.is_online();
        let mut config = self.config.clone();
        config.wire.client_id = format!("page-{}", self.reloads);
        self.engine = Engine::restore(config, serde_json::from_str(&json).unwrap()).unwrap();
        self.engine.set_online(online);
    }

    /// Sends every batch due now through the engine's own output ([`Engine::poll_output`]), answering each with
    /// the next fault.
    fn drain(&mut self) {
        for _ in 0..10_000 {
            self.engine.handle_timeout(self.now);
            match self.engine.poll_output() {
                Output::Transmit(transmit) => {
                    let batch = self.engine.in_flight_batch().expect("a request belongs to a batch").clone();
                    self.check_batch(&batch);
                    let fault = self.faults[self.next_fault % self.faults.len()].clone();
                    self.next_fault += 1;
                    self.answer(batch, transmit, fault);
                }
                Output::Event(Event::Conflict(_)) => {}
                Output::Event(Event::StateChanged) => self.state_changes += 1,
                Output::Timeout(_) => return self.check_due(),
            }
        }
        panic!("the engine kept producing batches at one instant");
    }

    /// `rpc` mode: the sync function's answer (one result per write) to the batch's one request.
    fn answer(&mut self, batch: Batch<Row>, transmit: Transmit, fault: Fault) {
        if self.rest.is_some() {
            return self.answer_rest(batch, transmit, fault);
        }
        assert_eq!(transmit.request.path, "/rpc/record_sync_apply");
        let now = self.now;
        let id = transmit.id;
        match fault {
            Fault::None => {
                let outcomes = self.write_all(&batch, false);
                self.engine.handle_response(id, rpc_answer(&outcomes), now).unwrap();
            }
            Fault::Transient { retry_after_ms } => {
                self.engine.handle_response(id, unavailable(retry_after_ms), now).unwrap();
            }
            Fault::LostAfterCommit => {
                self.write_all(&batch, true);
                self.engine.handle_failure(id, "connection reset", now).unwrap();
            }
            Fault::Permanent { mask } => {
                let mut outcomes = Vec::new();
                for (i, change) in batch.changes.iter().enumerate() {
                    let key = key_of(change);
                    let outcome = if mask & (1 << (i % 8)) != 0 && !self.uncertain.contains(&key) {
                        self.outstanding_parents.retain(|&seq, k| !(k == &key && seq <= change.seq));
                        Outcome::Permanent { code: Some("23514".into()), message: "check violation".into() }
                    } else {
                        self.write_one(change, false)
                    };
                    outcomes.push(ChangeOutcome { seq: change.seq, outcome });
                }
                self.engine.handle_response(id, rpc_answer(&outcomes), now).unwrap();
            }
            // A reload forgets the backoff, so at one instant it could repeat forever; a real page reloads rarely.
            Fault::ReloadBeforeAnswer { .. } if self.reloads >= 20 => self.answer(batch, transmit, Fault::None),
            Fault::ReloadBeforeAnswer { committed } => {
                self.reloads += 1;
                if committed {
                    self.write_all(&batch, true);
                }
                self.reload();
                let late = rpc_answer(&[]);
                assert_eq!(self.engine.handle_response(id, late, now), Err(EngineError::UnknownRequest(id)));
            }
            Fault::Html { .. } | Fault::Foreign { .. } => self.answer(batch, transmit, Fault::None),
        }
    }

    /// `rest` mode: the engine's requests go to the model PostgREST one by one, each checked against a second
    /// run of the same wire plan whose outcomes are checked against what the server then holds.
    fn answer_rest(&mut self, batch: Batch<Row>, transmit: Transmit, fault: Fault) {
        let now = self.now;
        let id = transmit.id;
        match fault {
            Fault::Transient { retry_after_ms } => {
                self.engine.handle_response(id, unavailable(retry_after_ms), now).unwrap();
            }
            Fault::LostAfterCommit => {
                self.exchange(&batch, None, None);
                self.engine.handle_failure(id, "connection reset", now).unwrap();
            }
            Fault::ReloadBeforeAnswer { .. } if self.reloads >= 20 => self.answer_rest(batch, transmit, Fault::None),
            Fault::ReloadBeforeAnswer { committed } => {
                self.reloads += 1;
                if committed {
                    self.exchange(&batch, None, None);
                }
                self.reload();
                let late = HttpResponse { status: 201, retry_after: None, body: "[]".into() };
                assert_eq!(self.engine.handle_response(id, late, now), Err(EngineError::UnknownRequest(id)));
            }
            Fault::Html { at } => {
                self.exchange(&batch, Some(at), Some(transmit));
            }
            Fault::Foreign { what, write } => {
                self.foreign(&batch, what, write);
                self.exchange(&batch, None, Some(transmit));
            }
            Fault::None | Fault::Permanent { .. } => {
                self.exchange(&batch, None, Some(transmit));
            }
        }
    }

    /// Another device or user changes the row of one of the batch's writes just before it lands.
    fn foreign(&mut self, batch: &Batch<Row>, what: Foreign, write: usize) {
        let key = key_of(&batch.changes[write % batch.changes.len()]);
        let row = |a: u8, stamp: &str| json!({ "id": key.1, "a": a, "b": 0, "last_changed": stamp });
        let server = self.rest.as_mut().unwrap();
        self.foreign_writes = true;
        match what {
            Foreign::Newer => {
                server.rows.insert(key.clone(), row(99, "999999999999").as_object().cloned().unwrap());
                server.hidden.remove(&key);
            }
            Foreign::Deleted => {
                server.rows.remove(&key);
                server.hidden.remove(&key);
            }
            Foreign::Hidden => {
                server.rows.insert(key.clone(), row(98, &stamp_at(0)).as_object().cloned().unwrap());
                server.hidden.insert(key);
            }
        }
    }

    /// Runs the batch through the wire plan against the model PostgREST (the `html_at`-th request answered
    /// with a portal page instead), and checks every outcome against what the server holds. Of the requests
    /// out at once, a seeded pick is answered first. With `engine`, the engine's own requests for the batch
    /// (the first already handed out) are the ones sent, each equal to this plan's under the same id, and each
    /// answer goes back to the engine too.
    fn exchange(&mut self, batch: &Batch<Row>, html_at: Option<usize>, engine: Option<Transmit>) {
        let now = self.now;
        let mut exchange = Exchange::new(batch, &rest_wire());
        let drives_engine = engine.is_some();
        let mut handed: Vec<Transmit> = engine.into_iter().collect();
        let mut out: Vec<(u64, HttpRequest)> = Vec::new();
        let mut next_id = handed.first().map_or(0, |t| t.id);
        let mut sent = 0;
        loop {
            if drives_engine {
                while self.engine.in_flight_batch().is_some_and(|b| b.id == batch.id) {
                    match self.engine.poll_output() {
                        Output::Transmit(next) => handed.push(next),
                        Output::Event(Event::StateChanged) => self.state_changes += 1,
                        Output::Timeout(None) => break,
                        other => panic!("batch {} unfinished, yet the engine gave {other:?}", batch.id),
                    }
                }
                for transmit in handed.drain(..) {
                    let request = exchange.next_request(transmit.id);
                    assert_eq!(
                        Some(&transmit.request),
                        request.as_ref(),
                        "the engine's request {} of batch {}",
                        transmit.id,
                        batch.id
                    );
                    out.extend(request.map(|r| (transmit.id, r)));
                }
                assert!(
                    exchange.next_request(u64::MAX).is_none(),
                    "the plan had more requests of batch {} to send than the engine",
                    batch.id
                );
            } else {
                while let Some(request) = exchange.next_request(next_id) {
                    out.push((next_id, request));
                    next_id += 1;
                }
            }
            if out.is_empty() {
                break;
            }
            // A child's write goes out beside a write of the parent table only when both are PATCHes: each needs
            // its row to exist already, so neither can be the parent the other refers to.
            let writes = |table: &str| {
                let prefix = format!("/{table}?");
                out.iter().filter(move |(_, r)| r.method != "GET" && r.path.starts_with(&prefix)).map(|(_, r)| r.method)
            };
            let mixed = writes(TABLES[0]).chain(writes(TABLES[1])).any(|method| method != "PATCH");
            assert!(
                writes(TABLES[0]).next().is_none() || writes(TABLES[1]).next().is_none() || !mixed,
                "a child write went out beside its parent's: {out:?}"
            );
            self.answer_order ^= self.answer_order << 13;
            self.answer_order ^= self.answer_order >> 7;
            self.answer_order ^= self.answer_order << 17;
            let (id, request) = out.swap_remove((self.answer_order % out.len() as u64) as usize);
            if html_at == Some(sent) && sent % 2 == 1 {
                if drives_engine {
                    self.engine.handle_failure(id, "Failed to fetch", now).unwrap();
                }
                assert!(exchange.on_network_error(id, "Failed to fetch"));
                sent += 1;
                continue;
            }
            let answer = if html_at == Some(sent) {
                HttpResponse {
                    status: 200,
                    retry_after: None,
                    body: "<html><body>Sign in to Wi-Fi</body></html>".into(),
                }
            } else {
                self.rest.as_mut().unwrap().handle(&request, "id")
            };
            if drives_engine {
                self.engine.handle_response(id, answer.clone(), now).unwrap();
            }
            assert!(exchange.on_response(id, answer));
            sent += 1;
        }
        let server = self.rest.as_mut().unwrap();
        assert!(
            !drives_engine || self.engine.in_flight_batch().is_none_or(|b| b.id != batch.id),
            "batch {} still in flight after its last answer",
            batch.id
        );
        let outcomes = exchange.finish();
        for outcome in &outcomes {
            let change = batch.changes.iter().find(|c| c.seq == outcome.seq).expect("an outcome for a sent write");
            let key = key_of(change);
            let visible = server.rows.get(&key).filter(|_| !server.hidden.contains(&key));
            match &outcome.outcome {
                Outcome::Applied if change.op == Op::Delete => {
                    assert!(visible.is_none(), "delete {} reported applied, row still there", change.seq);
                }
                Outcome::Applied => {
                    let row = visible.unwrap_or_else(|| panic!("write {} reported applied, row absent", change.seq));
                    for (column, value) in change.data.iter().flatten() {
                        assert_eq!(
                            row.get(column),
                            Some(value),
                            "write {} reported applied, {column} differs",
                            change.seq
                        );
                    }
                }
                Outcome::Conflict { row } => {
                    let theirs = row.as_ref().and_then(|r| r.get("last_changed")).and_then(Value::as_str);
                    let mine = change.last_changed.as_deref();
                    assert!(
                        theirs.zip(mine).is_some_and(|(theirs, mine)| theirs > mine),
                        "conflict for write {} against a row that is not newer: {row:?}",
                        change.seq
                    );
                }
                _ => {}
            }
        }
        assert!(server.regressions.is_empty(), "a write lowered last_changed: {:?}", server.regressions);
    }

    fn write_all(&mut self, batch: &Batch<Row>, unheard: bool) -> Vec<ChangeOutcome<Row>> {
        batch.changes.iter().map(|c| ChangeOutcome { seq: c.seq, outcome: self.write_one(c, unheard) }).collect()
    }

    fn write_one(&mut self, change: &OutgoingChange<Row>, unheard: bool) -> Outcome<Row> {
        let key = key_of(change);
        if change.table == TABLES[1] {
            let failed: HashSet<Key> =
                self.engine.failed_changes().into_iter().map(|f| (f.write.table, f.write.id)).collect::<HashSet<_>>();
            let waiting: Vec<_> = self
                .outstanding_parents
                .range(..change.seq)
                .filter(|(_, k)| !failed.contains(*k))
                .map(|(&seq, k)| (seq, k.clone()))
                .collect();
            assert!(waiting.is_empty(), "child {} written before parent changes {waiting:?}", change.seq);
        }
        let outcome = self.server.write(change);
        match (&outcome, unheard) {
            (Outcome::Applied, true) => {
                self.uncertain.insert(key.clone());
            }
            (Outcome::Applied, false) => {
                self.uncertain.remove(&key);
            }
            _ => {}
        }
        if matches!(outcome, Outcome::Applied) || matches!(outcome, Outcome::Permanent { .. }) {
            self.outstanding_parents.retain(|&seq, k| !(k == &key && seq <= change.seq));
        }
        outcome
    }

    fn check_batch(&mut self, batch: &Batch<Row>) {
        assert!(!batch.changes.is_empty() && batch.changes.len() <= self.config.batch_size);
        let keys: HashSet<Key> = batch.changes.iter().map(key_of).collect();
        assert_eq!(keys.len(), batch.changes.len(), "one write per record per batch");
        assert!(batch.changes.iter().all(|c| c.client == batch.changes[0].client), "one client id per batch");
        for change in &batch.changes {
            if let Some(unsent) = self.unsent.get_mut(&key_of(change)) {
                unsent.retain(|&(seq, _)| seq > change.seq);
            }
        }
    }

    /// With a healthy server, nothing is still unsent past its deadline.
    fn check_due(&self) {
        if !self.check_deadlines {
            return;
        }
        for (key, unsent) in &self.unsent {
            for &(seq, deadline) in unsent {
                assert!(deadline > self.now, "change {seq} of {key:?} due at {deadline} unsent at {}", self.now);
            }
        }
    }

    /// Jumps the clock from deadline to deadline up to `until`.
    fn run_until(&mut self, until: u64) {
        self.drain();
        for _ in 0..10_000 {
            match self.engine.poll_timeout() {
                Some(due) if due <= until => {
                    self.now = self.now.max(due);
                    let before = self.state_changes;
                    self.drain();
                    assert!(
                        self.state_changes != before || self.engine.poll_timeout() != Some(due),
                        "poll_timeout {due} promised work that poll_batch did not give"
                    );
                }
                _ => {
                    self.now = self.now.max(until);
                    return self.drain();
                }
            }
        }
        panic!("the clock did not advance");
    }

    /// Heals the network and the server, then settles the failed list the way a user would: retry what ran
    /// out of retries, discard what the server refused.
    fn finish(&mut self) {
        self.faults = vec![Fault::None];
        self.next_fault = 0;
        self.engine.set_online(true);
        for _ in 0..50 {
            self.run_until(self.now + 3_600_000);
            let failed = self.engine.failed_changes();
            if failed.is_empty() && self.engine.pending_changes().is_empty() {
                return;
            }
            for f in failed {
                if f.error.permanent {
                    self.discarded.push(((f.write.table.clone(), f.write.id.clone()), f.first_seq, f.write.seq));
                    assert_eq!(self.engine.discard_failed(Some(f.write.seq)), 1);
                } else {
                    assert_eq!(self.engine.retry_failed(Some(f.write.seq), self.now), 1);
                }
            }
        }
        panic!("the queue never drained: {:?}", self.engine.pending_changes());
    }

    fn check_converged(&self) {
        let stats = self.engine.stats();
        assert_eq!((stats.pending, stats.in_flight), (0, 0));
        if let Some(server) = &self.rest {
            assert!(self.discarded.is_empty(), "nothing in rest mode's faults is permanent: {:?}", self.discarded);
            if self.foreign_writes {
                return;
            }
            let mut expected = BTreeMap::new();
            for a in &self.accepted {
                apply(&mut expected, &a.key, a.op, a.data.as_ref());
            }
            assert_eq!(server.rows, expected, "server rows differ from the changes applied in order");
            return;
        }
        let mut expected = BTreeMap::new();
        for a in &self.accepted {
            let discarded = self.discarded.iter().any(|(k, lo, hi)| k == &a.key && (*lo..=*hi).contains(&a.seq));
            if !discarded {
                apply(&mut expected, &a.key, a.op, a.data.as_ref());
            }
        }
        assert_eq!(self.server.rows, expected, "server rows differ from the changes applied in order");
        for (key, seqs) in &self.server.writes {
            assert!(seqs.windows(2).all(|w| w[0] < w[1]), "writes of {key:?} out of order: {seqs:?}");
        }
        let stats = self.engine.stats();
        assert_eq!((stats.pending, stats.in_flight), (0, 0));
    }
}

fn run(s: &Scenario, check_deadlines: bool) -> Harness {
    let mut h = Harness::new(s, check_deadlines);
    for step in &s.steps {
        match *step {
            Step::Change { table, id, op, priority, value, full } => {
                h.change(table, id, op, priority, value, full);
                h.drain();
            }
            Step::Advance(ms) => h.run_until(h.now + ms),
            Step::Online(online) => {
                h.engine.set_online(online);
                h.drain();
            }
            Step::Reload => {
                h.reload();
                h.drain();
            }
        }
    }
    h.finish();
    h.check_converged();
    h
}

/// 1,000 cases in `npm test`; `PROPTEST_CASES=100000` for a longer hunt.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(1_000).max(1_000)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn converges_under_faults_offline_periods_and_reloads(s in scenario(true)) {
        run(&s, false);
    }

    #[test]
    fn rest_mode_converges_through_the_wire_plan_under_faults(s in scenario_with(true, rest_fault(false).boxed(), true)) {
        run(&s, false);
    }

    #[test]
    fn rest_mode_reports_only_what_the_server_holds_and_the_newer_row_wins(
        s in scenario_with(true, rest_fault(true).boxed(), true)
    ) {
        run(&s, false);
    }

    #[test]
    fn meets_every_deadline_with_a_healthy_server(s in scenario(false)) {
        let h = run(&s, true);
        prop_assert_eq!(h.engine.stats().failed_syncs, 0);
    }
}
