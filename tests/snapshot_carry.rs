//! A page's own writes taken into a restored queue (a tab that worked in memory, then took the stored queue
//! over): each keeps its seq and client id, so that a write whose answer was lost is sent again as the write it
//! was and the server's replay log answers it; and `low_water` never passes a seq still to be sent.

// Native tests. `wasm-pack test` builds every test target for wasm32 too.
#![cfg(not(target_arch = "wasm32"))]

use record_sync::core::wire::{HttpResponse, WireConfig, WireMode};
use record_sync::core::{Change, Config, Engine, Event, Fill, Op, Output, Priority, Row, Snapshot, Transmit};
use serde_json::{json, Value};

fn config(client_id: &str) -> Config {
    let wire = WireConfig { mode: WireMode::Rpc { function: "record_sync_apply".into() }, client_id: client_id.into() };
    Config { fill: Fill::DueOnly, wire, ..Config::default() }
}

fn change(id: &str, op: Op, data: Option<Value>, priority: Priority) -> Change<Row> {
    Change::new("plans", id, op, data.and_then(|d| d.as_object().cloned()), priority).unwrap()
}

fn transmit(e: &mut Engine<Row>) -> Transmit {
    loop {
        match e.poll_output() {
            Output::Event(Event::StateChanged) => {}
            Output::Transmit(t) => return t,
            other => panic!("expected a request, got {other:?}"),
        }
    }
}

fn ok(body: Value) -> HttpResponse {
    HttpResponse { status: 200, retry_after: None, body: body.to_string() }
}

/// A write as sent: (client_id, seq, id, op).
type Write = (String, u64, String, String);

/// The batch's writes, and its low_water.
fn sent(t: &Transmit) -> (Vec<Write>, u64) {
    let body: Value = serde_json::from_str(t.request.body.as_deref().unwrap()).unwrap();
    let writes = body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap().to_owned();
            (s("client_id"), c["seq"].as_u64().unwrap(), s("id"), s("op"))
        })
        .collect();
    (writes, body["low_water"].as_u64().unwrap())
}

/// The stored queue another page left: one low-priority write, numbered past the memory tab's seqs (that page
/// ran longer), so the smallest order alive is above the seqs the memory tab sent.
fn stored() -> Snapshot<Row> {
    let mut first = Engine::new(config("c1")).unwrap();
    first.enqueue(change("kept", Op::Upsert, Some(json!({ "id": "kept" })), Priority::Low), 0).unwrap();
    let mut snapshot = first.export();
    snapshot.entries[0].order = 20;
    snapshot.entries[0].seq = 20;
    snapshot.next_seq = 21;
    snapshot
}

/// A tab working in memory (client c2) sends a delete and an update; the answer is lost.
fn memory_tab() -> (Engine<Row>, Vec<Write>) {
    let mut memory = Engine::new(config("c2")).unwrap();
    memory.enqueue(change("gone", Op::Delete, None, Priority::Critical), 0).unwrap();
    memory
        .enqueue(change("edited", Op::Update, Some(json!({ "id": "edited", "n": 1 })), Priority::Critical), 0)
        .unwrap();
    let t = transmit(&mut memory);
    let (first, _) = sent(&t);
    assert_eq!(first.len(), 2);
    memory.handle_failure(t.id, "Failed to fetch", 1).unwrap();
    (memory, first)
}

#[test]
fn a_write_sent_before_a_take_over_goes_again_with_its_seq_and_low_water_keeps_its_replay() {
    let (memory, first) = memory_tab();
    let mut taken = Engine::restore(config("c2"), stored()).unwrap();
    let others = taken.carry(memory.export().entries);
    assert!(others.is_empty(), "no record of the stored queue: every write keeps its identity");
    taken.handle_timeout(10);
    let t = transmit(&mut taken);
    let (again, low_water) = sent(&t);
    assert_eq!(again, first, "the same (client id, seq) as the attempt whose answer was lost");
    // The server forgets this client's replays below low_water before it looks the batch up.
    assert!(again.iter().all(|(_, seq, ..)| *seq >= low_water), "low_water {low_water} passes a seq sent again");
    let answers: Vec<Value> =
        again.iter().map(|(_, seq, ..)| json!({ "seq": seq, "status": "applied", "replayed": true })).collect();
    taken.handle_response(t.id, ok(json!(answers)), 11).unwrap();
    let stats = taken.stats();
    assert_eq!((stats.successful_syncs, stats.pending), (2, 1));

    // The stored write goes too (under its own page's id).
    taken.flush_all(12);
    taken.handle_timeout(12);
    let t = transmit(&mut taken);
    let (writes, _) = sent(&t);
    assert_eq!(writes, vec![("c1".into(), 20, "kept".into(), "upsert".into())]);
    taken.handle_response(t.id, ok(json!([{ "seq": 20, "status": "applied" }])), 13).unwrap();

    // A new change goes under a seq no earlier write of this client had; with the carried writes gone,
    // low_water is the smallest order again.
    let new = taken.enqueue(change("new", Op::Upsert, Some(json!({ "id": "new" })), Priority::Critical), 14).unwrap();
    assert!(new > 22, "{new}");
    taken.handle_timeout(14);
    let (writes, low_water) = sent(&transmit(&mut taken));
    assert_eq!(writes, vec![("c2".into(), new, "new".into(), "upsert".into())]);
    assert_eq!(low_water, new);
}

#[test]
fn a_carried_write_stored_and_restored_by_the_next_page_keeps_its_seq_and_low_water() {
    let (memory, first) = memory_tab();
    let mut taken = Engine::restore(config("c2"), stored()).unwrap();
    taken.carry(memory.export().entries);
    // The page reloads before the writes go: the next page restores what this one stored.
    let mut next = Engine::restore(config("c3"), taken.export()).expect("a write whose seq is older than its order");
    next.handle_timeout(10);
    let (again, low_water) = sent(&transmit(&mut next));
    assert_eq!(again, first);
    assert!(again.iter().all(|(_, seq, ..)| *seq >= low_water), "low_water {low_water} passes a seq sent again");
}

#[test]
fn a_write_of_a_record_the_stored_queue_holds_is_merged_into_it_under_a_new_seq() {
    let mut memory = Engine::new(config("c2")).unwrap();
    memory.enqueue(change("kept", Op::Update, Some(json!({ "id": "kept", "n": 2 })), Priority::Critical), 0).unwrap();
    let t = transmit(&mut memory);
    memory.handle_failure(t.id, "Failed to fetch", 1).unwrap();
    let mut taken = Engine::restore(config("c2"), stored()).unwrap();
    let others = taken.carry(memory.export().entries);
    assert_eq!(others.iter().map(|e| (e.id.as_str(), e.seq)).collect::<Vec<_>>(), vec![("kept", 1)]);
    // What the shell does with them (src/web/storage.rs `enqueue_again`): a new change, merged.
    for saved in others {
        let data = saved.data.clone().map(Value::Object);
        let seq = taken.enqueue(change(&saved.id, saved.op, data, saved.priority), saved.queued_at).unwrap();
        assert!(seq > 20, "the composition goes under a seq never sent");
    }
    taken.handle_timeout(10);
    let (writes, low_water) = sent(&transmit(&mut taken));
    assert_eq!(writes.len(), 1);
    assert!(writes[0].1 > 20 && writes[0].3 == "upsert" && low_water <= writes[0].1, "{writes:?} {low_water}");
}

/// Two dead pages' writes of one record carried in one call (a restore's orphans): each keeps its own client
/// id. Folded into page a's, page b's insert was refused and page a's write was lost with it; now b's write is
/// handed back to be queued as a new change, and a's stays carried as it was.
#[test]
fn writes_of_one_record_from_two_pages_are_not_folded_together() {
    let mut a = Engine::new(config("a")).unwrap();
    a.enqueue(change("x", Op::Update, Some(json!({ "note": "from a" })), Priority::Low), 0).unwrap();
    let mut b = Engine::new(config("b")).unwrap();
    b.enqueue(change("x", Op::Insert, Some(json!({ "id": "x", "name": "b" })), Priority::Low), 0).unwrap();
    let mut entries = a.export().entries;
    entries.extend(b.export().entries);
    let mut c = Engine::new(config("c")).unwrap();
    let others = c.carry(entries);
    let kept: Vec<_> = c.export().entries.into_iter().map(|e| (e.client_id, e.seq, e.op)).collect();
    assert_eq!(kept, [(Some("a".to_owned()), 1, Op::Update)]);
    let others: Vec<_> = others.into_iter().map(|e| (e.client_id, e.op)).collect();
    assert_eq!(others, [(Some("b".to_owned()), Op::Insert)]);
}

/// A damaged store's seq past 2^53 is not carried (its write comes back to be queued anew), and new seqs go
/// on from where they were: nothing overflows.
#[test]
fn a_seq_no_queue_reaches_is_not_carried() {
    let mut a = Engine::new(config("a")).unwrap();
    a.enqueue(change("x", Op::Upsert, Some(json!({ "id": "x" })), Priority::Low), 0).unwrap();
    let mut entries = a.export().entries;
    entries[0].seq = u64::MAX;
    let mut c = Engine::new(config("c")).unwrap();
    let others = c.carry(entries);
    assert_eq!(others.len(), 1);
    assert_eq!(c.enqueue(change("y", Op::Upsert, Some(json!({ "id": "y" })), Priority::Low), 0).unwrap(), 1);
    let mut snapshot = c.export();
    snapshot.next_seq = u64::MAX;
    let refused = Engine::<Row>::restore(config("c"), snapshot).map(|_| ()).unwrap_err();
    assert!(refused.to_string().contains("past 2^53"), "{refused}");
}
