//! Reading a stored snapshot back and restoring it: what is wrong with one that cannot be read or restored is a
//! typed error, and the message the app sees (in the journal's account of a record it left out, or the reason
//! the stored queue is refused) is the one it saw when these were strings.

// Native tests. `wasm-pack test` builds every test target for wasm32 too.
#![cfg(not(target_arch = "wasm32"))]

use record_sync::core::json::{Json, JsonError};
use record_sync::core::{
    ArgumentError, Change, Config, Engine, EngineError, Op, Priority, RestoreError, Row, SavedEntry, SavedState,
    Snapshot, SnapshotError,
};
use serde_json::{json, Value};

fn entry(changes: Value) -> Value {
    let mut entry = json!({
        "table": "plans", "id": "p", "op": "upsert", "data": {"id": "p"}, "priority": "high", "order": 1, "seq": 1,
        "queuedAt": 0, "deadline": 5000, "attempts": 0, "changes": 1, "state": {"kind": "pending"}
    });
    for (key, value) in changes.as_object().unwrap() {
        entry[key] = value.clone();
    }
    entry
}

fn snapshot(entries: Vec<Value>) -> String {
    json!({ "version": 1, "nextSeq": 2, "entries": entries }).to_string()
}

fn parse(text: &str) -> Result<Snapshot<Row>, SnapshotError> {
    Snapshot::parse(text)
}

#[test]
fn a_snapshot_that_cannot_be_read_says_why_in_a_typed_error() {
    assert!(parse(&snapshot(vec![entry(json!({}))])).is_ok());
    let cases = [
        ("{\"version\":1", SnapshotError::Json(JsonError { what: "an object without , or }", at: 12 })),
        (&snapshot(vec![entry(json!({ "op": "merge" }))]), SnapshotError::Op("merge".into())),
        (&snapshot(vec![entry(json!({ "priority": "urgent" }))]), SnapshotError::Priority("urgent".into())),
        (&snapshot(vec![entry(json!({ "state": { "kind": "lost" } }))]), SnapshotError::State("lost".into())),
    ];
    for (text, error) in cases {
        assert_eq!(parse(text), Err(error), "{text}");
    }
    assert!(matches!(parse("{\"version\":1}"), Err(SnapshotError::Field(_))));
}

#[test]
fn a_snapshot_that_cannot_be_read_keeps_its_message() {
    let message = |text: &str| parse(text).map(|_| ()).map_err(|e| e.to_string());
    let cases = [
        ("[]", "snapshot is not an object"),
        ("{\"version\":1", "not JSON (an object without , or } at byte 12)"),
        ("{\"version\":1}", "snapshot.entries is missing or not an array"),
        (&snapshot(vec![json!(7)]), "entry is not an object"),
        (&snapshot(vec![entry(json!({ "op": "merge" }))]), "entry.op merge is not an op"),
        (&snapshot(vec![entry(json!({ "priority": "urgent" }))]), "entry.priority urgent is not a priority"),
        (
            &snapshot(vec![entry(json!({ "attempts": 5_000_000_000u64 }))]),
            "entry.attempts is missing or not a 32-bit number",
        ),
        (&snapshot(vec![entry(json!({ "data": [1] }))]), "entry.data is missing or not an object"),
        (&snapshot(vec![entry(json!({ "state": { "kind": "lost" } }))]), "unknown state lost"),
        (&snapshot(vec![entry(json!({ "state": { "kind": "failed" } }))]), "entry.state.failure is not an object"),
        (
            &snapshot(vec![entry(json!({ "state": { "kind": "failed", "failure": { "message": "m" } } }))]),
            "entry.state.failure.permanent is missing or not true or false",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(message(text), Err(expected.to_owned()), "{text}");
    }
    // Natively, serde reads a snapshot through the same reader, and says the same.
    let error = serde_json::from_str::<Snapshot<Row>>(&snapshot(vec![entry(json!({ "op": "merge" }))])).unwrap_err();
    assert_eq!(error.to_string(), "entry.op merge is not an op");
}

#[test]
fn a_compact_entry_whose_row_is_not_there_is_refused() {
    let value =
        json!({ "o": "upsert", "d": 1, "p": "high", "q": 1, "s": 1, "a": 0, "e": 0, "n": 0, "c": 1 }).to_string();
    let value = Json::parse(&value).unwrap();
    let mut rows: Vec<Option<Row>> = vec![json!({"id": "p"}).as_object().cloned()];
    let read = SavedEntry::read_compact(&value, "plans", "p", &mut rows);
    assert_eq!(read, Err(SnapshotError::NoRow));
    assert_eq!(String::from(SnapshotError::NoRow), "entry.d names no row stored with the record");
}

#[test]
fn a_snapshot_that_does_not_fit_together_is_refused_with_its_reason() {
    let mut engine: Engine<Row> = Engine::new(Config::default()).unwrap();
    let data = json!({"id": "p"}).as_object().cloned();
    engine.enqueue(Change::new("plans", "p", Op::Upsert, data, Priority::Low).unwrap(), 0).unwrap();
    let good = engine.export();
    assert!(Engine::restore(Config::default(), good.clone()).is_ok());

    let mut wrong_version = good.clone();
    wrong_version.version = 99;
    let mut out_of_sequence = good.clone();
    out_of_sequence.next_seq = 0;
    let mut blocked = good.clone();
    blocked.entries.push(good.entries[0].clone());
    blocked.entries[1].order += 1;
    blocked.entries[1].seq += 1;
    blocked.next_seq += 1;
    // Blocked behind a failed write of its record, and there is none.
    blocked.entries[1].state = SavedState::Blocked;
    let mut bad_table = good.clone();
    bad_table.entries[0].table = String::new();
    let order = good.entries[0].order;
    let cases = [
        (wrong_version, RestoreError::Version(99), "version 99 is not 1".to_owned()),
        (out_of_sequence, RestoreError::OutOfSequence(order), format!("entry {order} is out of sequence")),
        (blocked, RestoreError::Conflicts(order + 1), format!("entry {} conflicts", order + 1)),
    ];
    for (snapshot, error, message) in cases {
        let refused = Engine::restore(Config::default(), snapshot).err().expect("refused");
        assert_eq!(refused.to_string(), format!("cannot restore the snapshot: {message}"));
        assert_eq!(refused, EngineError::BadSnapshot(error));
    }
    let refused = Engine::restore(Config::default(), bad_table).err().expect("refused");
    let Some(EngineError::BadSnapshot(RestoreError::Entry(at, ArgumentError { argument: "table", .. }))) =
        Some(&refused)
    else {
        panic!("{refused:?}")
    };
    assert_eq!(*at, order);
    assert!(
        refused.to_string().starts_with(&format!("cannot restore the snapshot: entry {order}: table ")),
        "{refused}"
    );
}
