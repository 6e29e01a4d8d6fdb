//! `npm run bench:core` (`cargo bench --bench core`): the engine's costs, measured side by side in one run.
//!
//! - enqueue and take-due cost per change with 10k, 100k and 1M writes pending, with rows shared as the
//!   browser's are, and take-due again with rows deep-copied into each batch;
//! - bytes per pending write beyond its payload, by counting allocations;
//! - the `Fill` policies on an editing workload: requests and writes with each;
//! - the same on the editing trace `npm run bench` replays in the browser (bench/traces/editing.json), with
//!   deadline misses.
//!
//! With `--machine`, every figure is printed once more as a line `#bench {"figure": ..., "value": ...}`, which
//! `npm run bench` (bench/core.mjs) reads.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::time::Instant;

use std::rc::Rc;

use record_sync::core::{Change, ChangeOutcome, Config, Engine, Fill, Op, Outcome, Payload, Priority, Row};
use serde_json::{json, Value};

/// Counts live heap bytes while `COUNTING` is on, for [`overhead_bytes`] only: an atomic add on every
/// allocation and free would weigh on the timed loops (a take-due does a score of them).
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

fn count(bytes: isize) {
    if COUNTING.load(Ordering::Relaxed) {
        LIVE_BYTES.fetch_add(bytes, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const MEASURED: usize = 10_000;

/// The row as the browser holds it: shared, copied on write (its `JsRow` is an `Rc` of the JS object), so a
/// batch's copy of a pending row is a count. The same figures with [`Row`] itself, deep-copied into each batch,
/// are printed beside them.
type Shared = Rc<Row>;

fn payload<P: From<Row>>(i: usize) -> P {
    json!({ "id": format!("rec-{i:08}"), "name": "Back squat", "series": 5 })
        .as_object()
        .cloned()
        .unwrap_or_default()
        .into()
}

fn change<P: Payload + From<Row>>(i: usize, priority: Priority) -> Change<P> {
    Change::new("selected_exercises", &format!("rec-{i:08}"), Op::Upsert, Some(payload(i)), priority)
        .expect("valid change")
}

/// An engine holding `n` low-priority writes that are not due yet.
fn filled<P: Payload + From<Row>>(n: usize) -> Engine<P> {
    let mut engine = Engine::new(Config::default()).expect("valid config");
    for i in 0..n {
        engine.enqueue(change(i, Priority::Low), 0).expect("enqueue");
    }
    engine
}

fn ns_per(start: Instant, count: usize) -> f64 {
    start.elapsed().as_nanos() as f64 / count as f64
}

/// Rounds of `MEASURED` changes each figure is the median of: one round at 1M pending is a few milliseconds,
/// and a page-fault storm or another process in one of them moved the figure by half.
const ROUNDS: usize = 5;

fn median(mut rounds: Vec<f64>) -> f64 {
    rounds.sort_by(f64::total_cmp);
    rounds[rounds.len() / 2]
}

fn enqueue_cost<P: Payload + From<Row>>(pending: usize) -> f64 {
    let mut engine = filled::<P>(pending);
    let mut next = pending;
    let rounds = (0..ROUNDS).map(|_| {
        let changes: Vec<Change<P>> = (next..next + MEASURED).map(|i| change(i, Priority::Low)).collect();
        next += MEASURED;
        let start = Instant::now();
        for c in changes {
            black_box(engine.enqueue(c, 1).expect("enqueue"));
        }
        ns_per(start, MEASURED)
    });
    median(rounds.collect())
}

/// Takes `MEASURED` due writes out of a queue of `pending` (the due ones among many that are not) and
/// confirms them, as the shell would; the rows are freed as they are confirmed.
fn take_due_cost<P: Payload + From<Row>>(pending: usize) -> f64 {
    let mut engine = filled::<P>(pending);
    let mut next = pending;
    let rounds = (0..ROUNDS).map(|_| {
        for i in next..next + MEASURED {
            engine.enqueue(change(i, Priority::High), 0).expect("enqueue");
        }
        next += MEASURED;
        let start = Instant::now();
        let mut taken = 0;
        while let Some(batch) = engine.poll_batch(5_000) {
            taken += batch.changes.len();
            let outcomes =
                batch.changes.iter().map(|c| ChangeOutcome { seq: c.seq, outcome: Outcome::Applied }).collect();
            engine.on_batch_result(batch.id, outcomes, 5_000).expect("result");
        }
        assert_eq!(taken, MEASURED, "only the due writes are taken");
        ns_per(start, MEASURED)
    });
    median(rounds.collect())
}

/// Milliseconds to list every pending write in send order, as the journal's compaction and a full save do,
/// with one batch in flight (its writes come first, then the queue's).
fn export_ms(pending: usize) -> f64 {
    let mut engine = filled::<Shared>(pending);
    engine.flush_all(0);
    let batch = engine.poll_batch(0).expect("a batch");
    let start = Instant::now();
    let listed = black_box(engine.export_refs()).len();
    let ms = start.elapsed().as_secs_f64() * 1e3;
    assert_eq!(listed, pending, "every write is listed");
    black_box(batch);
    ms
}

/// Heap bytes per pending write, minus what its payload and change alone occupy. Everything it measures is
/// allocated and freed while it counts.
fn overhead_bytes(n: usize) -> f64 {
    COUNTING.store(true, Ordering::Relaxed);
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    let changes: Vec<Change<Shared>> = (0..n).map(|i| change(i, Priority::Low)).collect();
    let payload_bytes =
        LIVE_BYTES.load(Ordering::Relaxed) - before - (n * std::mem::size_of::<Change<Shared>>()) as isize;
    let mut engine = Engine::new(Config::default()).expect("valid config");
    let start = LIVE_BYTES.load(Ordering::Relaxed);
    for c in changes {
        engine.enqueue(c, 0).expect("enqueue");
    }
    let engine_bytes = LIVE_BYTES.load(Ordering::Relaxed) - start + payload_bytes;
    let overhead = (engine_bytes - payload_bytes) as f64 / n as f64;
    black_box(engine);
    COUNTING.store(false, Ordering::Relaxed);
    overhead
}

/// A person editing a plan for ten minutes: creates exercises (critical), types names in bursts (high),
/// tweaks properties (medium) and weeks (low). Returns (requests, writes sent) with an instant server.
fn editing_workload(fill: Fill) -> (u64, u64) {
    let config = Config { fill, seed: 1, ..Config::default() };
    let mut engine = Engine::new(config).expect("valid config");
    let mut rng = fastrand::Rng::with_seed(7);
    let mut writes = 0u64;
    let mut now = 0u64;
    let mut created = 0usize;
    while now < 600_000 {
        now += rng.u64(200..2_000);
        let (table, id, op, priority, data) = match rng.u8(0..20) {
            0 => {
                created += 1;
                ("selected_exercises", created, Op::Insert, Priority::Critical, json!({"id": created, "name": ""}))
            }
            1..=11 if created > 0 => {
                let id = rng.usize(1..=created);
                ("selected_exercises", id, Op::Update, Priority::High, json!({"name": rng.u32(..)}))
            }
            12..=16 if created > 0 => {
                let id = rng.usize(1..=created);
                ("progressions", id, Op::Upsert, Priority::Medium, json!({"id": id, "load": rng.u32(..100)}))
            }
            _ => ("training_plans", 1, Op::Upsert, Priority::Low, json!({"id": 1, "weeks": rng.u8(1..20)})),
        };
        let data: Option<Row> = data.as_object().cloned();
        let change = Change::new(table, &id.to_string(), op, data, priority).expect("valid change");
        let _ = engine.enqueue(change, now);
        while let Some(due) = engine.poll_timeout().filter(|&due| due <= now) {
            let batch = engine.poll_batch(due.max(now)).expect("due batch");
            writes += batch.changes.len() as u64;
            let outcomes =
                batch.changes.iter().map(|c| ChangeOutcome { seq: c.seq, outcome: Outcome::Applied }).collect();
            engine.on_batch_result(batch.id, outcomes, now).expect("result");
        }
    }
    let watermark = engine.flush_all(now);
    while let Some(batch) = engine.poll_batch(now) {
        writes += batch.changes.len() as u64;
        let outcomes = batch.changes.iter().map(|c| ChangeOutcome { seq: c.seq, outcome: Outcome::Applied }).collect();
        engine.on_batch_result(batch.id, outcomes, now).expect("result");
    }
    assert!(engine.is_settled_through(watermark));
    (engine.stats().requests, writes)
}

/// Requests, writes sent and deadline misses of the editing trace replayed with an instant server.
struct TraceRun {
    requests: u64,
    writes: u64,
    misses: u64,
    max_late_ms: u64,
}

/// Replays bench/traces/editing.json (the browser replay's trace) on a virtual clock: each change is queued at
/// its time, each batch is sent when the engine's timer says and answered at once. A change misses its deadline
/// when the write that carries it leaves later than its time plus its priority's interval.
fn replay_trace(trace: &Value, fill: Fill) -> TraceRun {
    let parents = trace["parents"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    let list = v.as_array().map(|a| a.iter().filter_map(|p| p.as_str().map(String::from)).collect());
                    (k.clone(), list.unwrap_or_default())
                })
                .collect()
        })
        .unwrap_or_default();
    let config = Config { fill, parents, seed: 1, ..Config::default() };
    let intervals = config.intervals_ms;
    let mut engine = Engine::new(config).expect("valid config");
    let mut run = TraceRun { requests: 0, writes: 0, misses: 0, max_late_ms: 0 };
    // Per record: the deadlines of its changes not yet sent.
    let mut waiting: HashMap<(String, String), Vec<u64>> = HashMap::new();
    fn send_due(
        engine: &mut Engine<Row>,
        upto: u64,
        run: &mut TraceRun,
        waiting: &mut HashMap<(String, String), Vec<u64>>,
    ) {
        while let Some(at) = engine.poll_timeout().filter(|&at| at <= upto) {
            let Some(batch) = engine.poll_batch(at) else { break };
            run.requests += 1;
            run.writes += batch.changes.len() as u64;
            for c in &batch.changes {
                for deadline in waiting.remove(&(c.table.clone(), c.id.clone())).unwrap_or_default() {
                    if at > deadline {
                        run.misses += 1;
                        run.max_late_ms = run.max_late_ms.max(at - deadline);
                    }
                }
            }
            let outcomes =
                batch.changes.iter().map(|c| ChangeOutcome { seq: c.seq, outcome: Outcome::Applied }).collect();
            engine.on_batch_result(batch.id, outcomes, at).expect("result");
        }
    }
    let mut end = 0;
    for action in trace["actions"].as_array().into_iter().flatten() {
        for c in action["changes"].as_array().into_iter().flatten() {
            let at = c["t"].as_u64().unwrap_or(0);
            send_due(&mut engine, at, &mut run, &mut waiting);
            let priority = Priority::from_index(c["priority"].as_u64().unwrap_or(3) as u32).unwrap_or(Priority::Low);
            let op = Op::parse(c["op"].as_str().unwrap_or("")).expect("trace op");
            let (table, id) = (c["table"].as_str().unwrap_or(""), c["id"].as_str().unwrap_or(""));
            let change = Change::new(table, id, op, c["data"].as_object().cloned(), priority).expect("trace change");
            engine.enqueue(change, at).expect("enqueue");
            waiting.entry((table.to_string(), id.to_string())).or_default().push(at + intervals[priority.index()]);
            end = at;
        }
        if action["flush"].as_bool() == Some(true) {
            engine.flush_all(end);
        }
    }
    // Then the person stops editing: everything still queued leaves by its deadline.
    send_due(&mut engine, u64::MAX, &mut run, &mut waiting);
    assert!(waiting.values().all(Vec::is_empty), "every change of the trace was sent");
    run
}

/// The batching policies compared (the default is the idle one).
const POLICIES: [(&str, Fill); 3] =
    [("due only", Fill::DueOnly), ("fill all", Fill::All), ("idle 1 s", Fill::Idle { idle_ms: 1_000 })];

static MACHINE: AtomicBool = AtomicBool::new(false);

/// One figure for `npm run bench`, as a JSON line (with `--machine` only).
fn machine(figure: &str, value: f64, extra: Value) {
    if !MACHINE.load(Ordering::Relaxed) {
        return;
    }
    let mut line = json!({ "figure": figure, "value": value });
    if let (Some(line), Some(extra)) = (line.as_object_mut(), extra.as_object()) {
        line.extend(extra.clone());
    }
    println!("#bench {line}");
}

fn main() {
    // `npm run bench:core -- --quick` measures the smallest size only.
    let quick = std::env::args().any(|a| a == "--quick");
    MACHINE.store(std::env::args().any(|a| a == "--machine"), Ordering::Relaxed);
    let sizes: &[usize] = if quick { &[10_000] } else { &[10_000, 100_000, 1_000_000] };

    println!("record-sync core benchmark (median of {ROUNDS} rounds of {MEASURED} changes per figure)\n");
    println!(
        "{:>10} | {:>16} | {:>18} | {:>22} | {:>22}",
        "pending", "enqueue ns/chg", "take-due ns/chg", "take-due, rows copied", "overhead bytes/write"
    );
    println!("{:-<10}-+-{:-<16}-+-{:-<18}-+-{:-<22}-+-{:-<22}", "", "", "", "", "");
    let mut rows = HashMap::new();
    for &n in sizes {
        let row = (enqueue_cost::<Shared>(n), take_due_cost::<Shared>(n), overhead_bytes(n));
        let copied = take_due_cost::<Row>(n);
        println!("{n:>10} | {:>16.0} | {:>18.0} | {copied:>22.0} | {:>22.0}", row.0, row.1, row.2);
        machine("enqueue_ns", row.0, json!({ "pending": n }));
        machine("take_due_ns", row.1, json!({ "pending": n }));
        machine("take_due_copied_ns", copied, json!({ "pending": n }));
        machine("overhead_bytes", row.2, json!({ "pending": n }));
        rows.insert(n, row);
    }
    let exports: Vec<String> = sizes
        .iter()
        .map(|&n| {
            let ms = export_ms(n);
            machine("export_ms", ms, json!({ "pending": n }));
            format!("{n}: {ms:.1} ms")
        })
        .collect();
    println!("\nEvery pending write listed in send order (compaction, full save): {}", exports.join(", "));
    if let (Some(small), Some(large)) = (rows.get(&10_000), rows.get(&1_000_000)) {
        println!(
            "\n1M vs 10k pending: enqueue x{:.2}, take-due x{:.2} (O(log n) predicts about x1.5)",
            large.0 / small.0,
            large.1 / small.1
        );
    }

    println!("\nFill policies on a 10-minute editing workload (instant server):");
    println!("{:>14} | {:>9} | {:>7}", "policy", "requests", "writes");
    for (policy, fill) in POLICIES {
        let (requests, writes) = editing_workload(fill);
        println!("{policy:>14} | {requests:>9} | {writes:>7}");
    }

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/traces/editing.json");
    match std::fs::read_to_string(path).map(|text| serde_json::from_str::<Value>(&text)) {
        Ok(Ok(trace)) => {
            println!("\nbench/traces/editing.json replayed on a virtual clock (instant server, rpc batches):");
            println!(
                "{:>14} | {:>9} | {:>7} | {:>15} | {:>11}",
                "policy", "requests", "writes", "deadline misses", "max late ms"
            );
            for (policy, fill) in POLICIES {
                let run = replay_trace(&trace, fill);
                println!(
                    "{policy:>14} | {:>9} | {:>7} | {:>15} | {:>11}",
                    run.requests, run.writes, run.misses, run.max_late_ms
                );
                let extra = json!({ "fill": policy });
                machine("trace_requests", run.requests as f64, extra.clone());
                machine("trace_writes", run.writes as f64, extra.clone());
                machine("trace_deadline_misses", run.misses as f64, extra);
            }
        }
        _ => println!("\n{path} not found or not JSON: trace replay skipped"),
    }
}
