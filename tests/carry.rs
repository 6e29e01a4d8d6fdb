//! Property test of a take-over (src/web/storage.rs `restore`): the writes of a page that worked in memory and
//! of a dead page's early entries, carried into the stored queue another page left ([`Engine::carry`]), against
//! a model of `record_sync_apply` (sql/record_sync.sql) on a virtual clock.
//!
//! Three pages edit a parent and a child table (a child row refers to its parent once its page has created it)
//! over overlapping records, and their requests reach the server, or are lost before it, or after it committed.
//! Then the page in memory takes the stored queue over as the shell does and goes on editing. Asserted: no
//! (client id, seq) is applied twice (the server forgets a client's replays below the batch's `low_water`, so
//! a write sent again under a new seq, or a `low_water` past a carried seq, shows), no child row reaches the
//! server before the parent it refers to, everything settles, and each record only one page wrote ends as that
//! page's changes in order.

// Native tests. `wasm-pack test` builds every test target for wasm32 too, where proptest does not build.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::{BTreeMap, HashMap, HashSet};

use proptest::prelude::*;
use record_sync::core::wire::{HttpResponse, WireConfig, WireMode};
use record_sync::core::FastMap;
use record_sync::core::{Change, Config, Engine, Fill, Op, Output, Priority, Row, SavedEntry, Snapshot};
use serde_json::{json, Value};

const PARENT: &str = "plans";
const CHILD: &str = "sessions";
type Key = (String, String);

/// The pages: 0 left the stored queue, 1 works in memory and takes it over, 2 died leaving early entries.
const CLIENTS: [&str; 3] = ["stored", "memory", "orphan"];
/// The records each page edits (ids of both tables): every pair of pages shares one.
const IDS: [&[&str]; 3] = [&["a", "b", "d"], &["b", "c", "d"], &["a", "c"]];

// ---------------------------------------------------------------------------------------------------------
// The model server: record_sync_apply's replay log and low_water, and a foreign key from child to parent.

#[derive(Default)]
struct Server {
    rows: BTreeMap<Key, Row>,
    /// The replay log: (client id, seq).
    log: HashSet<(String, u64)>,
    /// Every (client id, seq) ever applied, never forgotten.
    ever: HashSet<(String, u64)>,
    violations: Vec<String>,
}

impl Server {
    /// One call: its results, as the sync function answers them.
    fn call(&mut self, body: &str) -> String {
        let body: Value = serde_json::from_str(body).unwrap();
        let changes = body["changes"].as_array().unwrap();
        let low_water = body["low_water"].as_u64().unwrap();
        let clients: HashSet<&str> = changes.iter().map(|c| c["client_id"].as_str().unwrap()).collect();
        self.log.retain(|(client, seq)| !(clients.contains(client.as_str()) && *seq < low_water));
        let mut results = Vec::new();
        for c in changes {
            let replay = (c["client_id"].as_str().unwrap().to_owned(), c["seq"].as_u64().unwrap());
            if self.log.contains(&replay) {
                results.push(json!({ "seq": replay.1, "status": "applied" }));
                continue;
            }
            if !self.ever.insert(replay.clone()) {
                self.violations.push(format!("{replay:?} applied twice"));
            }
            self.log.insert(replay.clone());
            let key = (c["table"].as_str().unwrap().to_owned(), c["id"].as_str().unwrap().to_owned());
            let op = Op::parse(c["op"].as_str().unwrap()).unwrap();
            apply(&mut self.rows, &key, op, c["data"].as_object());
            if let Some(plan) = self.rows.get(&key).and_then(|row| row.get("plan")).and_then(Value::as_str) {
                if !self.rows.contains_key(&(PARENT.to_owned(), plan.to_owned())) {
                    self.violations.push(format!("{key:?} ({replay:?}) written before its parent {plan}"));
                }
            }
            results.push(json!({ "seq": replay.1, "status": "applied" }));
        }
        Value::Array(results).to_string()
    }
}

fn apply(rows: &mut BTreeMap<Key, Row>, key: &Key, op: Op, data: Option<&Row>) {
    match op {
        Op::Insert | Op::Upsert => {
            rows.insert(key.clone(), data.cloned().unwrap_or_default());
        }
        Op::Update => {
            if let Some(row) = rows.get_mut(key) {
                row.extend(data.cloned().unwrap_or_default());
            }
        }
        Op::Delete => {
            rows.remove(key);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Scenarios.

#[derive(Clone, Copy, Debug)]
enum Fault {
    None,
    /// No answer, and nothing reached the server.
    LostBefore,
    /// The server committed the call; its answer never came back.
    LostAfter,
}

#[derive(Clone, Debug)]
enum Step {
    /// A page's change: which page, table, record (of the page's), op and priority.
    Change {
        page: usize,
        child: bool,
        id: usize,
        op: u8,
        priority: u8,
    },
    Advance(u64),
    /// A page sends what is due, each request meeting the fault.
    Send {
        page: usize,
        fault: Fault,
    },
}

fn step(pages: usize) -> impl Strategy<Value = Step> {
    let change = (0..pages, any::<bool>(), 0..3usize, 0..4u8, 0..4u8)
        .prop_map(|(page, child, id, op, priority)| Step::Change { page, child, id, op, priority });
    let fault = prop_oneof![2 => Just(Fault::None), 1 => Just(Fault::LostBefore), 2 => Just(Fault::LostAfter)];
    let send = (0..pages, fault).prop_map(|(page, fault)| Step::Send { page, fault });
    prop_oneof![5 => change, 2 => (0..8_000u64).prop_map(Step::Advance), 3 => send]
}

#[derive(Clone, Debug)]
struct Scenario {
    batch_size: usize,
    fill: Fill,
    /// Before the take-over, by all three pages.
    before: Vec<Step>,
    /// After it, by the page that took the queue over (page 1).
    after: Vec<Step>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let fill =
        prop_oneof![Just(Fill::DueOnly), Just(Fill::All), (0..3_000u64).prop_map(|ms| Fill::Idle { idle_ms: ms })];
    (1..5usize, fill, proptest::collection::vec(step(3), 0..60), proptest::collection::vec(step(1), 0..12))
        .prop_map(|(batch_size, fill, before, after)| Scenario { batch_size, fill, before, after })
}

fn config(s: &Scenario, client: &str) -> Config {
    Config {
        intervals_ms: [0, 1_000, 5_000, 20_000],
        batch_size: s.batch_size,
        // Lost requests are the point here, not the failed list.
        max_retries: 100,
        parents: FastMap::from_iter([(CHILD.to_owned(), vec![PARENT.to_owned()])]),
        fill: s.fill,
        wire: WireConfig { mode: WireMode::Rpc { function: "record_sync_apply".into() }, client_id: client.into() },
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------------------------------------
// The harness.

struct Harness {
    pages: Vec<Engine<Row>>,
    server: Server,
    now: u64,
    /// Each page's accepted changes, in order: (record, op, data).
    accepted: [Vec<(Key, Op, Option<Row>)>; 3],
    /// The parents each page has created: its child rows refer to them from then on.
    created: [HashSet<String>; 3],
}

impl Harness {
    fn change(&mut self, page: usize, child: bool, id: usize, op: u8, priority: u8) {
        let id = IDS[page][id % IDS[page].len()];
        let table = if child { CHILD } else { PARENT };
        let key: Key = (table.to_owned(), id.to_owned());
        // Parents are never deleted: a child row may refer to one (the schema's foreign key).
        let op = match op {
            0 | 1 => Op::Upsert,
            2 => Op::Update,
            _ if child => Op::Delete,
            _ => Op::Update,
        };
        let v = json!(self.now);
        let mut data = match op {
            Op::Delete => None,
            Op::Update => json!({ "v": v }).as_object().cloned(),
            _ => json!({ "id": id, "v": v }).as_object().cloned(),
        };
        if let (Some(row), true) = (&mut data, child && self.created[page].contains(id)) {
            row.insert("plan".into(), json!(id));
        }
        let priority = Priority::from_index(u32::from(priority)).unwrap();
        let change = Change::new(table, id, op, data.clone(), priority).unwrap();
        self.pages[page].enqueue(change, self.now).unwrap();
        if !child && op == Op::Upsert {
            self.created[page].insert(id.to_owned());
        }
        self.accepted[page].push((key, op, data));
    }

    /// Every request the page has to send now, each meeting `fault`.
    fn send(&mut self, page: usize, fault: Fault) {
        for _ in 0..1_000 {
            let engine = &mut self.pages[page];
            engine.handle_timeout(self.now);
            match engine.poll_output() {
                Output::Transmit(t) => {
                    let body = t.request.body.as_deref().unwrap();
                    match fault {
                        Fault::None => {
                            let answer = self.server.call(body);
                            let response = HttpResponse { status: 200, retry_after: None, body: answer };
                            self.pages[page].handle_response(t.id, response, self.now).unwrap();
                        }
                        Fault::LostBefore => {
                            self.pages[page].handle_failure(t.id, "Failed to fetch", self.now).unwrap()
                        }
                        Fault::LostAfter => {
                            self.server.call(body);
                            self.pages[page].handle_failure(t.id, "Failed to fetch", self.now).unwrap();
                        }
                    }
                }
                Output::Event(_) => {}
                Output::Timeout(_) => return,
            }
        }
        panic!("page {page} kept sending at one instant");
    }

    fn run(&mut self, steps: &[Step], page_of: impl Fn(usize) -> usize) {
        for step in steps {
            match *step {
                Step::Change { page, child, id, op, priority } => self.change(page_of(page), child, id, op, priority),
                Step::Advance(ms) => self.now += ms,
                Step::Send { page, fault } => self.send(page_of(page), fault),
            }
        }
    }

    /// The take-over as src/web/storage.rs `restore` does it: the stored queue restored under the memory page's
    /// config, past the seqs that page used; the orphan's writes carried, then the page's own; the writes of
    /// records the queue already holds queued again as new changes.
    fn take_over(&mut self, s: &Scenario) {
        let stored = serde_json::to_string(&self.pages[0].export()).unwrap();
        let mut stored: Snapshot<Row> = serde_json::from_str(&stored).unwrap();
        let memory = self.pages[1].export();
        stored.next_seq = stored.next_seq.max(memory.next_seq);
        let mut engine = Engine::restore(config(s, CLIENTS[1]), stored).unwrap();
        for entries in [self.pages[2].export().entries, memory.entries] {
            for saved in engine.carry(entries) {
                enqueue_again(&mut engine, &saved);
            }
        }
        self.pages[1] = engine;
        // The stored queue is now the memory page's: its accepted changes go on after the stored page's (each
        // record's final state below is only checked where one page wrote it).
    }

    /// Sends everything, with a healthy server, jumping the clock to each deadline.
    fn settle(&mut self) {
        self.pages[1].flush_all(self.now);
        for _ in 0..1_000 {
            self.send(1, Fault::None);
            match self.pages[1].poll_timeout() {
                Some(at) => self.now = self.now.max(at),
                None => return,
            }
        }
        panic!("the queue never settled");
    }
}

/// As src/web/storage.rs `enqueue_again`: a saved write queued as a new change; an insert of a record the queue
/// already writes becomes an upsert.
fn enqueue_again(engine: &mut Engine<Row>, saved: &SavedEntry<Row>) {
    let again = |op: Op| Change::new(&saved.table, &saved.id, op, saved.data.clone(), saved.priority);
    let queued = again(saved.op).ok().and_then(|c| engine.enqueue(c, saved.queued_at).ok());
    if queued.is_none() && saved.op != Op::Delete {
        let _ = again(Op::Upsert).ok().and_then(|c| engine.enqueue(c, saved.queued_at).ok());
    }
}

fn harness(s: &Scenario) -> Harness {
    let pages = CLIENTS.iter().map(|client| Engine::new(config(s, client)).unwrap()).collect();
    Harness { pages, server: Server::default(), now: 1_000, accepted: Default::default(), created: Default::default() }
}

fn check(s: &Scenario) {
    let mut h = harness(s);
    h.run(&s.before, |page| page);
    h.take_over(s);
    h.run(&s.after, |_| 1);
    h.settle();

    assert!(h.server.violations.is_empty(), "{:?}", h.server.violations);
    let stats = h.pages[1].stats();
    assert_eq!((stats.pending, stats.failed_syncs), (0, 0), "everything settles, nothing fails");
    let mut writers: HashMap<&Key, HashSet<usize>> = HashMap::new();
    for (page, accepted) in h.accepted.iter().enumerate() {
        for (key, ..) in accepted {
            writers.entry(key).or_default().insert(page);
        }
    }
    for (key, pages) in writers.iter().filter(|(_, pages)| pages.len() == 1) {
        let page = *pages.iter().next().unwrap();
        let mut expected = BTreeMap::new();
        for (k, op, data) in h.accepted[page].iter().filter(|(k, ..)| k == *key) {
            apply(&mut expected, k, *op, data.as_ref());
        }
        assert_eq!(h.server.rows.get(*key), expected.get(*key), "{key:?}, written by page {page} alone");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_048, ..ProptestConfig::default() })]

    #[test]
    fn a_take_over_applies_each_write_once_parents_first_and_loses_nothing(s in scenario()) {
        check(&s);
    }
}

/// A directed case: `steps` by the pages, then the take-over and everything sent. The child row of `id` must
/// end on the server pointing at its parent, with no write applied twice or before its parent.
fn child_points_at_parent_after_take_over(id: &str, steps: impl FnOnce(&mut Harness)) {
    let s = Scenario { batch_size: 4, fill: Fill::DueOnly, before: Vec::new(), after: Vec::new() };
    let mut h = harness(&s);
    steps(&mut h);
    let last_child = h.accepted[1].iter().rev().find(|(key, ..)| key.0 == CHILD).and_then(|(_, _, data)| data.clone());
    assert_eq!(
        last_child.as_ref().and_then(|row| row.get("plan")),
        Some(&json!(id)),
        "the page points it at the parent"
    );
    h.take_over(&s);
    h.settle();
    assert!(h.server.violations.is_empty(), "{:?}", h.server.violations);
    assert_eq!(h.server.rows.get(&(CHILD.to_owned(), id.to_owned())).and_then(|r| r.get("plan")), Some(&json!(id)));
}

/// What the property test found: the page in memory creates a child, then its parent, then points the child at
/// the parent. Carried, the child's write (older) stood before the parent's, and the parent rule compared the
/// parent's order here with the child's seq from the other page: the child went first.
#[test]
fn a_carried_child_pointed_at_a_parent_created_after_it_goes_after_that_parent() {
    child_points_at_parent_after_take_over("c", |h| {
        h.change(1, true, 1, 0, 0);
        h.change(1, false, 1, 0, 0);
        h.change(1, true, 1, 0, 0);
    });
}

/// The case a review raised: the stored queue holds a child's write, and the page in memory creates the parent
/// and points the child at it. The child's change merges into the stored write, older than the parent's, under
/// a new seq: it goes after the parent.
#[test]
fn a_child_merged_into_an_older_stored_write_goes_after_the_parent_created_in_memory() {
    child_points_at_parent_after_take_over("b", |h| {
        // The stored page's child write (of record "b", without a parent), not yet sent.
        h.change(0, true, 1, 0, 3);
        // The page in memory creates parent "b" and points child "b" at it; its request is lost before the server.
        h.change(1, false, 0, 0, 0);
        h.change(1, true, 0, 0, 0);
        h.send(1, Fault::LostBefore);
    });
}
