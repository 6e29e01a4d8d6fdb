//! Every request shape of the wire plan, and how answers become outcomes, through the public `Exchange`.

// Native tests. `wasm-pack test` builds every test target for wasm32 too, where proptest does not build.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::HashMap;

use record_sync::core::wire::{Exchange, HttpRequest, HttpResponse, WireConfig, WireMode};
use record_sync::core::{Batch, ChangeOutcome, Op, Outcome, OutgoingChange, Priority, Row};
use serde_json::{json, Value};

fn row(value: Value) -> Option<Row> {
    value.as_object().cloned()
}

fn change(seq: u64, table: &str, id: &str, op: Op, data: Option<Row>) -> OutgoingChange {
    let last_changed = data.as_ref().and_then(|d| d.get("last_changed")).cloned();
    OutgoingChange { seq, table: table.into(), id: id.into(), op, data, last_changed, priority: Priority::High }
}

fn batch(changes: Vec<OutgoingChange>) -> Batch {
    Batch { id: 7, changes, low_water: 3 }
}

fn rest() -> WireConfig {
    let primary_keys = HashMap::from([("odd".to_owned(), "key col".to_owned())]);
    WireConfig { mode: WireMode::Rest { primary_keys }, client_id: "c1".into() }
}

fn rpc() -> WireConfig {
    WireConfig { mode: WireMode::Rpc { function: "record_sync_apply".into() }, client_id: "c1".into() }
}

fn ok() -> HttpResponse {
    HttpResponse { status: 201, retry_after: None, body: String::new() }
}

fn status(status: u16, body: &str) -> HttpResponse {
    HttpResponse { status, retry_after: None, body: body.into() }
}

/// Runs the exchange, answering each request with the next response, and returns the requests and outcomes.
fn run(batch: &Batch, config: &WireConfig, mut answers: Vec<HttpResponse>) -> (Vec<HttpRequest>, Vec<ChangeOutcome>) {
    let mut exchange = Exchange::new(batch, config);
    let mut requests = Vec::new();
    answers.reverse();
    while let Some(request) = exchange.next_request() {
        requests.push(request);
        exchange.on_response(answers.pop().unwrap_or_else(ok));
    }
    (requests, exchange.finish())
}

fn header<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a str> {
    request.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
}

#[test]
fn rest_bulk_upsert_per_table_and_column_set() {
    let b = batch(vec![
        change(1, "plans", "p1", Op::Insert, row(json!({"name": "A"}))),
        change(2, "plans", "p2", Op::Upsert, row(json!({"id": "p2", "name": "B"}))),
        change(3, "plans", "p3", Op::Upsert, row(json!({"id": "p3", "name": "C", "weeks": 4}))),
        change(4, "sessions", "s1", Op::Upsert, row(json!({"id": "s1", "plan_id": "p1"}))),
    ]);
    let (requests, outcomes) = run(&b, &rest(), vec![]);
    let shapes: Vec<(&str, &str)> = requests.iter().map(|r| (r.method, r.path.as_str())).collect();
    assert_eq!(
        shapes,
        [
            ("POST", "/plans?on_conflict=id&columns=id,name"),
            ("POST", "/plans?on_conflict=id&columns=id,name,weeks"),
            ("POST", "/sessions?on_conflict=id&columns=id,plan_id"),
        ]
    );
    assert_eq!(header(&requests[0], "Prefer"), Some("resolution=merge-duplicates,return=minimal"));
    assert_eq!(header(&requests[0], "Content-Type"), Some("application/json"));
    let body: Value = serde_json::from_str(requests[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(body, json!([{"id": "p1", "name": "A"}, {"id": "p2", "name": "B"}]), "missing pk filled from the id");
    assert!(requests.iter().all(|r| r.headers.iter().all(|(n, _)| *n != "Authorization" && *n != "apikey")));
    assert_eq!(outcomes.len(), 4);
    assert!(outcomes.iter().all(|o| o.outcome == Outcome::Applied));
}

#[test]
fn rest_patch_and_delete_with_quoted_ids() {
    let b = batch(vec![
        change(1, "plans", "a,b", Op::Update, row(json!({"weeks": 6}))),
        change(2, "plans", "x.y", Op::Delete, None),
        change(3, "plans", "he said \"hi\"", Op::Delete, None),
        change(4, "odd", "1", Op::Delete, None),
    ]);
    let (requests, _) = run(&b, &rest(), vec![]);
    let shapes: Vec<(&str, &str)> = requests.iter().map(|r| (r.method, r.path.as_str())).collect();
    assert_eq!(
        shapes,
        [
            ("PATCH", "/plans?id=in.(%22a%2Cb%22)"),
            ("DELETE", "/plans?id=in.(%22x.y%22,%22he%20said%20%5C%22hi%5C%22%22)"),
            ("DELETE", "/odd?%22key%20col%22=in.(%221%22)"),
        ]
    );
    assert_eq!(requests[0].body.as_deref(), Some(r#"{"weeks":6}"#));
    assert_eq!(header(&requests[1], "Prefer"), Some("return=minimal"));
    assert_eq!(requests[1].body, None);
}

#[test]
fn rest_odd_table_names_are_encoded() {
    let b = batch(vec![change(1, "Order Items/x", "1", Op::Upsert, row(json!({"id": "1", "a b": 1})))]);
    let (requests, _) = run(&b, &rest(), vec![]);
    assert_eq!(requests[0].path, "/Order%20Items%2Fx?on_conflict=id&columns=%22a%20b%22,id");
}

#[test]
fn rest_large_deletes_are_split_to_keep_urls_short() {
    let ids: Vec<String> = (0..200).map(|i| format!("{i:0>40}")).collect();
    let b = batch(ids.iter().enumerate().map(|(i, id)| change(i as u64 + 1, "t", id, Op::Delete, None)).collect());
    let (requests, outcomes) = run(&b, &rest(), vec![]);
    assert!(requests.len() > 1 && requests.iter().all(|r| r.path.len() < 4_100));
    assert_eq!(outcomes.len(), 200);
}

#[test]
fn rest_refused_bulk_write_is_split_to_find_the_bad_row() {
    let b = batch(vec![
        change(1, "plans", "p1", Op::Upsert, row(json!({"id": "p1", "name": "ok"}))),
        change(2, "plans", "p2", Op::Upsert, row(json!({"id": "p2", "name": "bad"}))),
        change(3, "plans", "p3", Op::Upsert, row(json!({"id": "p3", "name": "ok"}))),
    ]);
    let refusal = r#"{"code":"23514","message":"violates check constraint","details":null,"hint":null}"#;
    let (requests, outcomes) = run(&b, &rest(), vec![status(400, refusal), ok(), status(400, refusal), ok()]);
    let bodies: Vec<usize> = requests.iter().map(|r| r.body.as_deref().unwrap().matches("\"id\"").count()).collect();
    assert_eq!(bodies, [3, 1, 1, 1], "one bulk request, then one per row");
    let by_seq: HashMap<u64, &Outcome> = outcomes.iter().map(|o| (o.seq, &o.outcome)).collect();
    assert_eq!(by_seq[&1], &Outcome::Applied);
    assert!(matches!(by_seq[&2], Outcome::Permanent { code: Some(c), .. } if c == "23514"));
    assert_eq!(by_seq[&3], &Outcome::Applied);
}

#[test]
fn rest_transient_failure_stops_the_rest_of_the_batch() {
    let b = batch(vec![
        change(1, "plans", "p1", Op::Upsert, row(json!({"id": "p1"}))),
        change(2, "sessions", "s1", Op::Upsert, row(json!({"id": "s1", "plan_id": "p1"}))),
    ]);
    let mut exchange = Exchange::new(&b, &rest());
    assert!(exchange.next_request().is_some());
    assert!(exchange.next_request().is_none(), "one request at a time");
    exchange.on_response(HttpResponse { status: 503, retry_after: Some("2".into()), body: String::new() });
    assert!(exchange.next_request().is_none(), "the child must not overtake its failed parent");
    let outcomes = exchange.finish();
    assert_eq!(
        outcomes,
        [ChangeOutcome {
            seq: 1,
            outcome: Outcome::Transient { message: "HTTP 503".into(), retry_after_ms: Some(2_000) }
        }]
    );
}

#[test]
fn network_error_is_transient() {
    let b = batch(vec![change(1, "plans", "p1", Op::Delete, None)]);
    let mut exchange = Exchange::new(&b, &rest());
    exchange.next_request().unwrap();
    exchange.on_network_error("Failed to fetch");
    assert_eq!(
        exchange.finish(),
        [ChangeOutcome {
            seq: 1,
            outcome: Outcome::Transient { message: "Failed to fetch".into(), retry_after_ms: None }
        }]
    );
}

#[test]
fn rpc_sends_the_batch_in_one_call() {
    let b = batch(vec![
        change(5, "plans", "p1", Op::Upsert, row(json!({"id": "p1", "last_changed": "2026-11-24T10:00:00Z"}))),
        change(6, "plans", "p2", Op::Delete, None),
    ]);
    let mut exchange = Exchange::new(&b, &rpc());
    let request = exchange.next_request().unwrap();
    assert_eq!((request.method, request.path.as_str()), ("POST", "/rpc/record_sync_apply"));
    let body: Value = serde_json::from_str(request.body.as_deref().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({
            "changes": [
                {"client_id": "c1", "seq": 5, "table": "plans", "id": "p1", "op": "upsert",
                 "data": {"id": "p1", "last_changed": "2026-11-24T10:00:00Z"}, "last_changed": "2026-11-24T10:00:00Z"},
                {"client_id": "c1", "seq": 6, "table": "plans", "id": "p2", "op": "delete"}
            ],
            "low_water": 3
        })
    );
}

#[test]
fn rpc_results_become_outcomes() {
    let b = batch(vec![
        change(1, "t", "a", Op::Delete, None),
        change(2, "t", "b", Op::Delete, None),
        change(3, "t", "c", Op::Delete, None),
        change(4, "t", "d", Op::Delete, None),
        change(5, "t", "e", Op::Delete, None),
    ]);
    let answer = json!([
        {"seq": 1, "status": "applied"},
        {"seq": 2, "status": "applied", "replayed": true},
        {"seq": 3, "status": "conflict", "row": {"id": "c", "last_changed": "2030-01-01"}},
        {"seq": 4, "status": "error", "code": "23503", "message": "fk"},
        {"seq": 5, "status": "error", "code": "40001", "message": "serialization"},
        {"seq": 99, "status": "applied"}
    ]);
    let (_, outcomes) = run(&b, &rpc(), vec![status(200, &answer.to_string())]);
    let expected = vec![
        Outcome::Applied,
        Outcome::Applied,
        Outcome::Conflict { row: row(json!({"id": "c", "last_changed": "2030-01-01"})) },
        Outcome::Permanent { code: Some("23503".into()), message: "fk".into() },
        Outcome::Transient { message: "serialization".into(), retry_after_ms: None },
    ];
    assert_eq!(outcomes.into_iter().map(|o| o.outcome).collect::<Vec<_>>(), expected, "unknown seqs ignored");
}

#[test]
fn rpc_garbage_or_failure_is_handled_without_panic() {
    let b = batch(vec![change(1, "t", "a", Op::Delete, None), change(2, "t", "b", Op::Delete, None)]);
    let (_, outcomes) = run(&b, &rpc(), vec![status(200, "not json")]);
    assert!(outcomes
        .iter()
        .all(|o| matches!(&o.outcome, Outcome::Transient { message, .. } if message.contains("unreadable"))));
    let missing = r#"{"code":"PGRST202","message":"Could not find the function","details":null,"hint":null}"#;
    let (requests, outcomes) = run(&b, &rpc(), vec![status(404, missing)]);
    assert_eq!(requests.len(), 1, "an rpc batch is never split");
    assert!(outcomes.iter().all(|o| matches!(o.outcome, Outcome::Permanent { .. })));
}
