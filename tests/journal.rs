//! The durable queue's journal: whatever the engine goes through, replaying the stored records gives back the
//! queue the engine holds (the shell touches the records each step touched, as src/web does); an unreadable
//! stored record is left out with a reason, one of a newer format is refused, and the formats before read.

// Native tests. `wasm-pack test` builds every test target for wasm32 too, where proptest does not build.
#![cfg(not(target_arch = "wasm32"))]

use proptest::prelude::*;
use record_sync::core::journal::{replay, Journal, StoredRecord, Written, COMPACT_EVERY};
use record_sync::core::wire::WireConfig;
use record_sync::core::{Change, ChangeOutcome, Config, Engine, Op, Outcome, Priority, Row};
use serde_json::json;

#[derive(Clone, Debug)]
enum Step {
    Queue { record: u8, op: u8, priority: u8 },
    Send,
    Answer { how: u8 },
    Retry,
    Discard,
    Advance(u32),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u8..6, 0u8..4, 0u8..4).prop_map(|(record, op, priority)| Step::Queue { record, op, priority }),
        2 => Just(Step::Send),
        2 => (0u8..4).prop_map(|how| Step::Answer { how }),
        1 => Just(Step::Retry),
        1 => Just(Step::Discard),
        1 => (0u32..400_000).prop_map(Step::Advance),
    ]
}

/// The shell's engine carries the instance's client id, the one the journal's records are written under.
fn config() -> Config {
    Config { wire: WireConfig { client_id: "client-1".into(), ..WireConfig::default() }, ..Config::default() }
}

/// The record as a store gives it back: the text and copies of the rows (the browser's structured clone).
fn kept(written: &Written<'_, Row>) -> StoredRecord<Row> {
    StoredRecord { text: Ok(written.text.clone()), rows: written.rows.iter().map(|row| Some((*row).clone())).collect() }
}

fn texts(texts: &[&str]) -> Vec<StoredRecord<Row>> {
    texts.iter().map(|text| StoredRecord::text(*text)).collect()
}

fn stored_equals_engine(records: &[StoredRecord<Row>], engine: &Engine<Row>) {
    let copies = records.iter().map(|r| StoredRecord { text: r.text.clone(), rows: r.rows.clone() }).collect();
    let stored = replay(copies).unwrap().expect("something was stored");
    assert_eq!(stored.snapshot, engine.export());
    assert!(Engine::restore(Config::default(), stored.snapshot).is_ok(), "the stored queue restores");
    assert_eq!(stored.client_id.as_deref(), Some("client-1"));
    assert_eq!(stored.owner.as_deref(), Some("user-a"));
}

proptest! {
    #[test]
    fn replaying_the_stored_records_gives_the_engine_queue(steps in prop::collection::vec(step(), 1..120)) {
        let mut engine = Engine::new(config()).unwrap();
        let mut journal = Journal::default();
        let mut records: Vec<StoredRecord<Row>> = Vec::new();
        let mut now = 1_000u64;
        let mut flight = None;
        for step in steps {
            match step {
                Step::Queue { record, op, priority } => {
                    let op = [Op::Insert, Op::Update, Op::Upsert, Op::Delete][op as usize];
                    let id = format!("r{record}");
                    let data = if op == Op::Delete { None } else { json!({"id": id, "v": now}).as_object().cloned() };
                    let change = Change::new("items", &id, op, data, Priority::from_index(priority.into()).unwrap()).unwrap();
                    if engine.enqueue(change, now).is_ok() {
                        journal.touch("items", &id);
                    }
                }
                Step::Send => {
                    if let Some(batch) = engine.poll_batch(now) {
                        for c in &batch.changes {
                            journal.touch(&c.table, &c.id);
                        }
                        flight = Some(batch);
                    }
                }
                Step::Answer { how } => {
                    if let Some(batch) = flight.take() {
                        let outcome = match how {
                            0 => Outcome::Applied,
                            1 => Outcome::Conflict { row: None },
                            2 => Outcome::Permanent { code: Some("23505".into()), message: "dup".into() },
                            _ => Outcome::Transient { message: "503".into(), retry_after_ms: None },
                        };
                        let outcomes = batch.changes.iter().map(|c| ChangeOutcome { seq: c.seq, outcome: outcome.clone() }).collect();
                        engine.on_batch_result(batch.id, outcomes, now).unwrap();
                        for c in &batch.changes {
                            journal.touch(&c.table, &c.id);
                        }
                    }
                }
                Step::Retry => {
                    engine.retry_failed(None, now);
                    journal.touch_all();
                }
                Step::Discard => {
                    engine.discard_failed(None);
                    journal.touch_all();
                }
                Step::Advance(ms) => now += u64::from(ms),
            }
            if let Some(written) = journal.take(&engine, "client-1", Some("user-a")) {
                if written.replace {
                    records.clear();
                }
                records.push(kept(&written));
                stored_equals_engine(&records, &engine);
            }
        }
    }
}

#[test]
fn a_restored_queue_resumes_with_its_seqs_and_deadlines() {
    let mut engine = Engine::new(config()).unwrap();
    let mut journal = Journal::default();
    let data = json!({"id": "a", "v": 1}).as_object().cloned();
    let seq = engine.enqueue(Change::new("items", "a", Op::Insert, data, Priority::Low).unwrap(), 1_000).unwrap();
    journal.touch("items", "a");
    let written = journal.take(&engine, "client-1", None).unwrap();
    assert!(!written.replace, "a tick's record is a log record");
    assert!(!written.text.contains("\"v\":1}"), "the row is stored beside the text, not in it: {}", written.text);
    assert_eq!(written.rows.len(), 1);
    let stored = replay::<Row>(vec![kept(&written)]).unwrap().unwrap();
    assert_eq!(stored.client_id.as_deref(), Some("client-1"));
    let mut restored = Engine::restore(Config::default(), stored.snapshot).unwrap();
    assert_eq!(restored.poll_timeout(), Some(1_000 + 300_000), "the original deadline");
    let batch = restored.poll_batch(301_000).unwrap();
    assert_eq!(batch.changes[0].seq, seq, "the same replay identity");
    assert_eq!(batch.changes[0].client.as_deref(), Some("client-1"), "under the client id it was queued under");
    let next = restored.enqueue(Change::new("items", "b", Op::Delete, None, Priority::Low).unwrap(), 2_000).unwrap();
    assert!(next > seq, "new changes number after the restored ones");
    let pending = restored.pending_changes();
    assert_eq!(
        pending.iter().find(|p| p.write.seq == next).map(|p| p.write.client.clone()),
        Some(None),
        "and go under the restoring engine's"
    );
}

/// A write carried behind a restored queue (`Engine::carry`: a tab's own write, sent before it took the queue
/// over) is stored with its seq, older than its order, and the next page restores it so and sends it with it.
#[test]
fn a_carried_write_is_stored_and_restored_with_its_seq_older_than_its_order() {
    let mut memory = Engine::new(config()).unwrap();
    let sent = memory.enqueue(Change::new("items", "a", Op::Delete, None, Priority::Critical).unwrap(), 0).unwrap();
    let batch = memory.poll_batch(0).unwrap();
    let outcome = ChangeOutcome {
        seq: sent,
        outcome: Outcome::Transient { message: "Failed to fetch".into(), retry_after_ms: None },
    };
    memory.on_batch_result(batch.id, vec![outcome], 1).unwrap();
    // The queue taken over: four writes confirmed, one left, whose order is above the carried write's seq.
    let mut held = Engine::new(config()).unwrap();
    for n in 0..5 {
        let data = json!({"id": format!("b{n}")}).as_object().cloned();
        held.enqueue(Change::new("items", &format!("b{n}"), Op::Upsert, data, Priority::Low).unwrap(), 0).unwrap();
        if n == 3 {
            held.flush_all(0);
            let batch = held.poll_batch(0).unwrap();
            let applied = batch.changes.iter().map(|c| ChangeOutcome { seq: c.seq, outcome: Outcome::Applied });
            held.on_batch_result(batch.id, applied.collect(), 0).unwrap();
        }
    }
    held.carry(memory.export().entries);
    let mut journal = Journal::default();
    journal.touch_all();
    let written = journal.take(&held, "client-1", Some("user-a")).unwrap();
    let records = vec![kept(&written)];
    stored_equals_engine(&records, &held);
    let stored = replay::<Row>(records).unwrap().unwrap();
    let carried = stored.snapshot.entries.iter().find(|e| e.id == "a").unwrap();
    assert_eq!((carried.seq, carried.order, carried.attempts), (sent, 6, 1), "its seq, a new place, its attempt");
    let wire = WireConfig { client_id: "client-2".into(), ..WireConfig::default() };
    let mut next = Engine::restore(Config { wire, ..Config::default() }, stored.snapshot).unwrap();
    let batch = next.poll_batch(400_000).unwrap();
    let resent = batch.changes.iter().find(|c| c.id == "a").unwrap();
    assert_eq!((resent.seq, resent.client.as_deref()), (sent, Some("client-1")));
    assert!(batch.low_water <= sent, "low_water {} passes the seq sent again", batch.low_water);
}

#[test]
fn every_so_often_a_record_replaces_the_log() {
    let mut engine = Engine::new(config()).unwrap();
    let mut journal = Journal::default();
    let mut replaced = 0;
    for i in 0..(COMPACT_EVERY * 2 + 2) {
        let id = format!("r{i}");
        let data = json!({"id": id}).as_object().cloned();
        engine.enqueue(Change::new("items", &id, Op::Upsert, data, Priority::Low).unwrap(), 0).unwrap();
        journal.touch("items", &id);
        replaced += u32::from(journal.take(&engine, "c", None).unwrap().replace);
    }
    assert_eq!(replaced, 2);
    assert!(journal.take(&engine, "c", None).is_none(), "nothing touched, nothing written");
}

#[test]
fn the_previous_format_is_read_as_a_whole_queue() {
    let mut engine = Engine::new(config()).unwrap();
    let data = json!({"id": "a"}).as_object().cloned();
    engine.enqueue(Change::new("items", "a", Op::Upsert, data, Priority::High).unwrap(), 5).unwrap();
    let v1 = serde_json::to_string(&engine.export()).unwrap();
    assert!(v1.contains("\"version\":1"));
    let stored = replay(texts(&[&v1])).unwrap().unwrap();
    assert_eq!(stored.snapshot, engine.export());
    assert_eq!(stored.client_id, None, "format 1 kept no client id");
}

/// Format 2, as record-sync wrote it before rows were stored beside the text: a log record and a replacing one.
#[test]
fn format_2_records_are_read() {
    let entry = |id: &str, seq: u32, state: &str| {
        format!(
            r#"{{"table":"items","id":"{id}","op":"upsert","data":{{"id":"{id}","n":{seq}}},"lastChanged":"2026-01-01T00:00:00Z","priority":"low","order":{seq},"seq":{seq},"queuedAt":5,"deadline":300005,"attempts":0,"changes":2,"state":{state}}}"#
        )
    };
    let replacing = format!(
        r#"{{"v":2,"c":"client-9","o":"user-a","n":3,"r":true,"w":[{{"t":"items","i":"a","e":[{}]}},{{"t":"items","i":"b","e":[{}]}}]}}"#,
        entry("a", 1, r#"{"kind":"pending"}"#),
        entry("b", 2, r#"{"kind":"failed","failure":{"message":"no","permanent":true},"failed_at":9}"#)
    );
    let log = r#"{"v":2,"c":"client-9","o":"user-a","n":3,"r":false,"w":[{"t":"items","i":"a","e":[]}]}"#;
    let stored = replay::<Row>(texts(&[&replacing, log])).unwrap().unwrap();
    assert!(stored.skipped.is_empty(), "{:?}", stored.skipped);
    assert_eq!(stored.client_id.as_deref(), Some("client-9"));
    assert_eq!(stored.snapshot.next_seq, 3);
    let [b] = &stored.snapshot.entries[..] else { panic!("{:?}", stored.snapshot.entries) };
    assert_eq!((b.id.as_str(), b.seq, b.changes), ("b", 2, 2));
    assert_eq!(b.data.as_ref().and_then(|d| d.get("n")), Some(&json!(2)));
    assert_eq!(b.last_changed.as_deref(), Some("2026-01-01T00:00:00Z"));
    assert!(matches!(b.state, record_sync::core::SavedState::Failed { failed_at: 9, .. }));
}

#[test]
fn newer_records_are_refused_and_unreadable_ones_skipped_with_a_reason() {
    for (text, why) in [
        ("{\"v\":4,\"c\":\"x\",\"n\":1,\"w\":[]}", "newer record-sync"),
        ("{\"version\":7,\"nextSeq\":1,\"entries\":[]}", "format version 7"),
    ] {
        let error = String::from(replay::<Row>(texts(&[text])).unwrap_err());
        assert!(error.contains(why), "{text}: {error}");
    }
    for (text, why) in [
        ("{not json", "not JSON"),
        ("{\"hello\":1}", "not a record-sync queue record"),
        ("{\"v\":2,\"c\":\"x\",\"n\":1,\"w\":[{\"t\":\"a\"}]}", "not a queue record"),
        ("[]", "not a record-sync queue record"),
    ] {
        let stored = replay::<Row>(texts(&[text])).unwrap().unwrap();
        assert_eq!(stored.skipped.len(), 1, "{text}");
        assert_eq!(stored.skipped[0].index, 0);
        assert!(String::from(&stored.skipped[0]).contains(why), "{text}: {:?}", stored.skipped);
        assert!(stored.snapshot.entries.is_empty());
    }
    assert_eq!(replay::<Row>(Vec::new()).unwrap(), None);
    // The typed reasons read as the texts the app saw when they were written with `format!`.
    let message = |text: &str| match replay::<Row>(texts(&[text])) {
        Err(error) => error.to_string(),
        Ok(stored) => String::from(&stored.unwrap().skipped[0]),
    };
    assert_eq!(
        message("{\"v\":4,\"c\":\"x\",\"n\":1,\"w\":[]}"),
        "stored record 1 of 1: written by a newer record-sync (format 4; this one reads up to 3)"
    );
    assert_eq!(
        message("{\"version\":7,\"nextSeq\":1,\"entries\":[]}"),
        "stored record 1 of 1: format version 7 is not known"
    );
    assert_eq!(message("{\"hello\":1}"), "stored record 1 of 1: not a record-sync queue record");
    assert_eq!(
        message("{\"v\":2,\"c\":\"x\",\"n\":1,\"w\":[{\"t\":\"a\"}]}"),
        "stored record 1 of 1: not a queue record (record.w[].i is missing or not a string)"
    );
    assert_eq!(
        message("{\"version\":1}"),
        "stored record 1 of 1: not a queue (snapshot.entries is missing or not an array)"
    );
}

/// Format 3: an entry whose row the store did not give back (not an object, or missing) makes its record
/// unreadable, never a write without its row.
#[test]
fn a_record_whose_row_is_missing_is_skipped() {
    let mut engine = Engine::new(config()).unwrap();
    let mut journal = Journal::default();
    let data = json!({"id": "a"}).as_object().cloned();
    engine.enqueue(Change::new("items", "a", Op::Upsert, data, Priority::Low).unwrap(), 0).unwrap();
    journal.touch("items", "a");
    let written = journal.take(&engine, "c", None).unwrap();
    for rows in [vec![None], vec![]] {
        let stored = replay::<Row>(vec![StoredRecord { text: Ok(written.text.clone()), rows }]).unwrap().unwrap();
        assert_eq!(stored.skipped.len(), 1);
        let why = String::from(&stored.skipped[0]);
        assert!(why.contains("names no row stored with the record"), "{:?}", stored.skipped);
        assert!(stored.snapshot.entries.is_empty());
    }
}

#[test]
fn an_unreadable_record_between_readable_ones_costs_only_itself() {
    let mut engine = Engine::new(config()).unwrap();
    let mut journal = Journal::default();
    let mut records = Vec::new();
    for id in ["a", "b"] {
        let change = Change::new("t", id, Op::Upsert, json!({ "id": id }).as_object().cloned(), Priority::Low).unwrap();
        engine.enqueue(change, 1_000).unwrap();
        journal.touch("t", id);
        records.push(kept(&journal.take(&engine, "client-1", Some("user-a")).unwrap()));
        if id == "a" {
            records.push(StoredRecord::text("{not json"));
        }
    }
    let stored = replay(records).unwrap().unwrap();
    assert_eq!(stored.skipped.len(), 1);
    assert_eq!(stored.skipped[0].index, 1);
    assert!(String::from(&stored.skipped[0]).starts_with("stored record 2 of 3: not JSON"), "{:?}", stored.skipped);
    assert_eq!(stored.snapshot, engine.export());
}

/// Issue 11: the remote feed's cursor is stored with the queue, kept across a replacing record, and records
/// without one (older ones) still read.
#[test]
fn the_remote_cursor_is_stored_with_the_queue() {
    use record_sync::core::remote::SavedCursor;
    let engine = Engine::<Row>::new(config()).unwrap();
    let mut journal = Journal::default();
    let mut texts = Vec::new();
    journal.touch_all();
    texts.push(journal.take(&engine, "client-1", Some("user-a")).unwrap().text);
    let replay = |texts: &[String]| replay::<Row>(texts.iter().map(StoredRecord::text).collect());
    assert_eq!(replay(&texts).unwrap().unwrap().remote_cursor, None, "a record without a cursor reads");
    let at = |cursor: &str| Some(SavedCursor { tables: "exercises,sessions".into(), cursor: cursor.into() });
    journal.set_remote_cursor(at("10-4"));
    let moved = journal.take(&engine, "client-1", Some("user-a")).expect("a moved cursor is written");
    assert!(!moved.replace);
    texts.push(moved.text);
    assert!(journal.take(&engine, "client-1", Some("user-a")).is_none(), "nothing moved since");
    assert_eq!(replay(&texts).unwrap().unwrap().remote_cursor, at("10-4"));
    journal.touch_all();
    let replacing = journal.take(&engine, "client-1", Some("user-a")).unwrap();
    assert!(replacing.replace);
    // The replacing record is stored alone: it carries the cursor itself.
    assert_eq!(replay(&[replacing.text]).unwrap().unwrap().remote_cursor, at("10-4"));
}
