//! Every request shape of the wire plan, and how answers become outcomes, through the public `Exchange`.

// Native tests. `wasm-pack test` builds every test target for wasm32 too, where proptest does not build.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::HashMap;

use record_sync::core::json::{Json, JsonError};
use record_sync::core::wire::{
    decode_result, AnswerError, Exchange, HttpRequest, HttpResponse, ResultsError, WireConfig, WireMode, MALFORMED,
    MAX_IN_FLIGHT,
};
use record_sync::core::FastMap;
use record_sync::core::{Batch, ChangeOutcome, Op, Outcome, OutgoingChange, Priority, Row};
use serde_json::{json, Value};

#[path = "common/mod.rs"]
mod common;
use common::postgrest::Postgrest;

fn row(value: Value) -> Option<Row> {
    value.as_object().cloned()
}

fn change(seq: u64, table: &str, id: &str, op: Op, data: Option<Row>) -> OutgoingChange<Row> {
    let last_changed = data.as_ref().and_then(|d| d.get("last_changed")?.as_str()).map(str::to_owned);
    OutgoingChange {
        seq,
        table: table.into(),
        id: id.into(),
        op,
        data,
        last_changed,
        priority: Priority::High,
        force: false,
        client: None,
    }
}

fn batch(changes: Vec<OutgoingChange<Row>>) -> Batch<Row> {
    Batch { id: 7, changes, low_water: 3 }
}

fn rest() -> WireConfig {
    let primary_keys = FastMap::from_iter([("odd".to_owned(), "key col".to_owned())]);
    WireConfig { mode: WireMode::Rest { primary_keys }, client_id: "c1".into() }
}

fn rpc() -> WireConfig {
    WireConfig { mode: WireMode::Rpc { function: "record_sync_apply".into() }, client_id: "c1".into() }
}

/// An answer that returns no rows.
fn ok() -> HttpResponse {
    HttpResponse { status: 200, retry_after: None, body: "[]".into() }
}

fn status(status: u16, body: &str) -> HttpResponse {
    HttpResponse { status, retry_after: None, body: body.into() }
}

/// Runs the exchange, answering each request with the next response, and returns the requests and outcomes.
fn run(
    batch: &Batch<Row>,
    config: &WireConfig,
    mut answers: Vec<HttpResponse>,
) -> (Vec<HttpRequest>, Vec<ChangeOutcome<Row>>) {
    let mut exchange = Exchange::new(batch, config);
    let mut requests = Vec::new();
    answers.reverse();
    while let Some(request) = exchange.next_request(0) {
        requests.push(request);
        exchange.on_response(0, answers.pop().unwrap_or_else(ok));
    }
    (requests, exchange.finish())
}

/// Runs the exchange against the model PostgREST (primary key `id`).
fn against(batch: &Batch<Row>, server: &mut Postgrest) -> (Vec<HttpRequest>, HashMap<u64, Outcome<Row>>) {
    let mut exchange = Exchange::new(batch, &rest());
    let mut requests = Vec::new();
    while let Some(request) = exchange.next_request(0) {
        exchange.on_response(0, server.handle(&request, "id"));
        requests.push(request);
    }
    (requests, exchange.finish().into_iter().map(|o| (o.seq, o.outcome)).collect())
}

fn shapes(requests: &[HttpRequest]) -> Vec<(&str, &str)> {
    requests.iter().map(|r| (r.method, r.path.as_str())).collect()
}

fn header<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a str> {
    request.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
}

fn key(id: &str) -> (String, String) {
    ("plans".to_owned(), id.to_owned())
}

#[test]
fn rest_bulk_insert_per_table_and_column_set_returns_what_it_wrote() {
    let b = batch(vec![
        change(1, "plans", "p1", Op::Insert, row(json!({"name": "A"}))),
        change(2, "plans", "p2", Op::Upsert, row(json!({"id": "p2", "name": "B"}))),
        change(3, "plans", "p3", Op::Upsert, row(json!({"id": "p3", "name": "C", "weeks": 4}))),
        change(4, "sessions", "s1", Op::Upsert, row(json!({"id": "s1", "plan_id": "p1"}))),
    ]);
    let mut server = Postgrest::default();
    let (requests, outcomes) = against(&b, &mut server);
    assert_eq!(
        shapes(&requests),
        [
            ("POST", "/plans?on_conflict=id&columns=id,name&select=id"),
            ("POST", "/plans?on_conflict=id&columns=id,name,weeks&select=id"),
            ("POST", "/sessions?on_conflict=id&columns=id,plan_id&select=id"),
        ],
        "no request beyond one per group when every row is new"
    );
    assert_eq!(header(&requests[0], "Prefer"), Some("resolution=ignore-duplicates,return=representation"));
    assert_eq!(header(&requests[0], "Content-Type"), Some("application/json"));
    let body: Value = serde_json::from_str(requests[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(body, json!([{"id": "p1", "name": "A"}, {"id": "p2", "name": "B"}]), "missing pk filled from the id");
    assert!(requests.iter().all(|r| r.headers.iter().all(|(n, _)| *n != "Authorization" && *n != "apikey")));
    assert_eq!(outcomes.len(), 4);
    assert!(outcomes.values().all(|o| *o == Outcome::Applied));
    assert_eq!(server.rows.len(), 4);
}

#[test]
fn rest_upsert_of_an_existing_row_is_a_conditional_patch_and_a_newer_row_wins() {
    let mut server = Postgrest::default();
    server.rows.insert(key("old"), row(json!({"id": "old", "name": "x", "last_changed": "2026-01-01"})).unwrap());
    server.rows.insert(key("new"), row(json!({"id": "new", "name": "x", "last_changed": "2026-12-31"})).unwrap());
    let b = batch(vec![
        change(1, "plans", "old", Op::Upsert, row(json!({"id": "old", "name": "A", "last_changed": "2026-06-01"}))),
        change(2, "plans", "new", Op::Upsert, row(json!({"id": "new", "name": "B", "last_changed": "2026-06-01"}))),
        change(3, "plans", "fresh", Op::Upsert, row(json!({"id": "fresh", "name": "C", "last_changed": "2026-06-01"}))),
    ]);
    let (requests, outcomes) = against(&b, &mut server);
    assert_eq!(
        shapes(&requests),
        [
            ("POST", "/plans?on_conflict=id&columns=id,last_changed,name&select=id"),
            ("PATCH", "/plans?id=in.(%22old%22)&or=(last_changed.is.null,last_changed.lte.%222026-06-01%22)&select=id"),
            ("PATCH", "/plans?id=in.(%22new%22)&or=(last_changed.is.null,last_changed.lte.%222026-06-01%22)&select=id"),
            ("GET", "/plans?id=in.(%22new%22)&select=*"),
        ],
        "extra requests only for the rows that existed, a read only for the one that did not land"
    );
    assert_eq!(outcomes[&1], Outcome::Applied);
    assert_eq!(
        outcomes[&2],
        Outcome::Conflict { row: row(json!({"id": "new", "name": "x", "last_changed": "2026-12-31"})) }
    );
    assert_eq!(outcomes[&3], Outcome::Applied);
    assert_eq!(server.rows[&key("new")]["name"], json!("x"), "the newer row stands");
    assert_eq!(server.rows[&key("old")]["name"], json!("A"));
    assert!(server.regressions.is_empty());
}

#[test]
fn rest_update_of_a_deleted_or_hidden_row_is_missing_never_applied() {
    let mut server = Postgrest::default();
    server.rows.insert(key("theirs"), row(json!({"id": "theirs", "name": "x"})).unwrap());
    server.hidden.insert(key("theirs"));
    let b = batch(vec![
        change(1, "plans", "gone", Op::Update, row(json!({"name": "A"}))),
        change(2, "plans", "theirs", Op::Update, row(json!({"name": "B"}))),
        change(3, "plans", "theirs", Op::Upsert, row(json!({"id": "theirs", "name": "C"}))),
    ]);
    let (_, outcomes) = against(&b, &mut server);
    assert_eq!(outcomes[&1], Outcome::Missing);
    assert_eq!(outcomes[&2], Outcome::Missing);
    assert_eq!(outcomes[&3], Outcome::Missing, "an upsert over a hidden row writes nothing");
    assert_eq!(server.rows[&key("theirs")]["name"], json!("x"));
}

#[test]
fn rest_forced_write_is_unconditional_and_a_readable_unwritable_row_is_refused() {
    let mut server = Postgrest::default();
    server.rows.insert(key("p"), row(json!({"id": "p", "name": "x", "last_changed": "2027-01-01"})).unwrap());
    let mut forced = change(1, "plans", "p", Op::Update, row(json!({"name": "A", "last_changed": "2026-01-01"})));
    forced.force = true;
    let (requests, outcomes) = against(&batch(vec![forced.clone()]), &mut server);
    assert_eq!(shapes(&requests), [("PATCH", "/plans?id=in.(%22p%22)&select=id")]);
    assert_eq!(outcomes[&1], Outcome::Applied);
    // A row the user can read but row-level security keeps from being updated: answered with no rows.
    let mut exchange = Exchange::new(&batch(vec![forced]), &rest());
    exchange.next_request(0).unwrap();
    exchange.on_response(0, ok());
    exchange.next_request(0).unwrap();
    exchange.on_response(0, status(200, r#"[{"id":"p","name":"x"}]"#));
    assert!(matches!(&exchange.finish()[0].outcome, Outcome::Permanent { code: Some(c), .. } if c == "42501"));
}

#[test]
fn rest_deletes_are_conditional_grouped_by_stamp_and_idempotent() {
    let mut server = Postgrest::default();
    server.rows.insert(key("a"), row(json!({"id": "a", "last_changed": "2026-01-01"})).unwrap());
    server.rows.insert(key("newer"), row(json!({"id": "newer", "last_changed": "2027-01-01"})).unwrap());
    server.rows.insert(key("c"), row(json!({"id": "c"})).unwrap());
    let stamped = |seq, id: &str| {
        let mut c = change(seq, "plans", id, Op::Delete, None);
        c.last_changed = Some("2026-06-01".to_owned());
        c
    };
    let b = batch(vec![
        stamped(1, "a"),
        stamped(2, "newer"),
        stamped(3, "absent"),
        change(4, "plans", "c", Op::Delete, None),
    ]);
    let (requests, outcomes) = against(&b, &mut server);
    assert_eq!(
        shapes(&requests),
        [
            (
                "DELETE",
                "/plans?id=in.(%22a%22,%22newer%22,%22absent%22)&or=(last_changed.is.null,last_changed.lte.%222026-06-01%22)&select=id"
            ),
            ("GET", "/plans?id=in.(%22newer%22,%22absent%22)&select=*"),
            ("DELETE", "/plans?id=in.(%22c%22)&select=id"),
        ]
    );
    assert_eq!(header(&requests[0], "Prefer"), Some("return=representation"));
    assert_eq!(outcomes[&1], Outcome::Applied);
    assert!(matches!(&outcomes[&2], Outcome::Conflict { row: Some(r) } if r["last_changed"] == json!("2027-01-01")));
    assert_eq!(outcomes[&3], Outcome::Applied, "deleting an absent row is done");
    assert_eq!(outcomes[&4], Outcome::Applied);
    assert_eq!(server.rows.keys().collect::<Vec<_>>(), [&key("newer")]);
}

#[test]
fn rest_2xx_that_is_not_the_rows_asked_for_is_transient() {
    let b = batch(vec![
        change(1, "plans", "p1", Op::Upsert, row(json!({"id": "p1"}))),
        change(2, "sessions", "s1", Op::Upsert, row(json!({"id": "s1"}))),
    ]);
    for body in ["<html><body>Sign in</body></html>", "", "{}", "[1]", "null"] {
        let (requests, outcomes) = run(&b, &rest(), vec![status(200, body)]);
        assert_eq!(requests.len(), 1, "{body:?}: the rest of the batch waits");
        assert!(
            matches!(
                &outcomes[..],
                [
                    ChangeOutcome { seq: 1, outcome: Outcome::Transient { .. } },
                    ChangeOutcome { seq: 2, outcome: Outcome::Transient { .. } }
                ]
            ),
            "{body:?}: {outcomes:?}"
        );
    }
}

/// The message every write of a batch failed with, after one answer to its first request.
fn failed_with(b: &Batch<Row>, config: &WireConfig, body: &str) -> String {
    let (_, outcomes) = run(b, config, vec![status(200, body)]);
    let messages: Vec<&str> = outcomes
        .iter()
        .map(|o| match &o.outcome {
            Outcome::Transient { message, retry_after_ms: None } => message.as_str(),
            other => panic!("{body:?}: expected a transient failure, got {other:?}"),
        })
        .collect();
    assert!(!messages.is_empty() && messages.iter().all(|m| *m == messages[0]), "{body:?}: {messages:?}");
    messages[0].to_owned()
}

#[test]
fn answers_that_are_not_what_was_asked_keep_their_messages_in_every_mode() {
    let b = batch(vec![
        change(1, "plans", "p1", Op::Upsert, row(json!({"id": "p1"}))),
        change(2, "plans", "p2", Op::Delete, None),
    ]);
    let not_rows = "the server answered 2xx with something other than the rows asked for: ";
    assert_eq!(failed_with(&b, &rest(), " <p \"a\">\n</p> "), format!("{not_rows}\"<p \\\"a\\\">\\n</p>\""));
    let long = "é".repeat(100);
    assert_eq!(failed_with(&b, &rest(), &long), format!("{not_rows}\"{}\"", "é".repeat(80)));

    let function = "unreadable answer from the sync function: ";
    assert_eq!(failed_with(&b, &rpc(), "[1,2 x"), format!("{function}not JSON (an array without , or ] at byte 5)"));
    assert_eq!(failed_with(&b, &rpc(), "{}"), format!("{function}not an array"));
    assert_eq!(
        failed_with(&b, &rpc(), r#"[{"status":"applied"}]"#),
        format!("{function}a result without a numeric seq")
    );
    assert_eq!(failed_with(&b, &rpc(), r#"[{"seq":1}]"#), format!("{function}a result without a string status"));
    // A result for a write the call did not carry is left out, but one that cannot be read fails the call.
    let unsent = r#"[{"seq":1,"status":"applied"},{"seq":2,"status":"applied"},{"seq":99}]"#;
    assert_eq!(failed_with(&b, &rpc(), unsent), format!("{function}a result without a string status"));

    let custom = WireConfig { mode: WireMode::Custom, client_id: "c1".into() };
    assert!(MALFORMED.starts_with("transport.send must resolve to an array of { seq, status: "));
    assert_eq!(failed_with(&b, &custom, "not json"), format!("{MALFORMED}not a JSON array"));
    assert_eq!(failed_with(&b, &custom, "{}"), format!("{MALFORMED}not a JSON array"));
    assert_eq!(
        failed_with(&b, &custom, r#"[{"seq":"one","status":7}]"#),
        format!("{MALFORMED}a result without a numeric seq")
    );
    assert_eq!(
        failed_with(&b, &custom, r#"[{"seq":1,"status":7}]"#),
        format!("{MALFORMED}a result without a string status")
    );
}

#[test]
fn unreadable_results_are_typed_errors_whose_text_is_the_message() {
    let decode = |text: &str| decode_result::<Row>(&Json::parse(text).unwrap()).map(|o| o.seq);
    assert_eq!(decode(r#"{"seq":1,"status":"applied"}"#), Ok(1));
    assert_eq!(decode(r#"{"seq":-1,"status":"applied"}"#), Err(ResultsError::NoSeq));
    assert_eq!(decode(r#"{"seq":1,"status":null}"#), Err(ResultsError::NoStatus));
    let not_json = JsonError { what: "no value", at: 0 };
    let cases = [
        (AnswerError::NotRows("<html>".into()), "the server answered 2xx with something other than the rows asked for: \"<html>\""),
        (AnswerError::Function(ResultsError::NotJson(not_json)), "unreadable answer from the sync function: not JSON (no value at byte 0)"),
        (AnswerError::Function(ResultsError::NotAnArray), "unreadable answer from the sync function: not an array"),
        (AnswerError::Function(ResultsError::NoSeq), "unreadable answer from the sync function: a result without a numeric seq"),
        (AnswerError::Send(ResultsError::NotJson(not_json)), "transport.send must resolve to an array of { seq, status: \"applied\" | \"conflict\" | \"missing\" | \"error\", ... }: not a JSON array"),
        (AnswerError::Send(ResultsError::NoStatus), "transport.send must resolve to an array of { seq, status: \"applied\" | \"conflict\" | \"missing\" | \"error\", ... }: a result without a string status"),
    ];
    for (error, message) in cases {
        assert_eq!(error.to_string(), message);
        assert_eq!(String::from(error), message);
    }
}

#[test]
fn custom_sends_the_batch_as_send_receives_it() {
    let mut forced = change(2, "plans", "p2", Op::Delete, None);
    forced.force = true;
    let b = batch(vec![
        change(1, "plans", "p1", Op::Upsert, row(json!({"id": "p1", "last_changed": "2026-01-01"}))),
        forced,
    ]);
    let custom = WireConfig { mode: WireMode::Custom, client_id: "c1".into() };
    let (requests, _) =
        run(&b, &custom, vec![status(200, r#"[{"seq":1,"status":"applied"},{"seq":2,"status":"applied"}]"#)]);
    assert_eq!(requests.len(), 1);
    let body: Value = serde_json::from_str(requests[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({
            "id": 7, "clientId": "c1", "lowWater": 3,
            "changes": [
                {
                    "seq": 1, "table": "plans", "id": "p1", "op": "upsert",
                    "data": {"id": "p1", "last_changed": "2026-01-01"}, "lastChanged": "2026-01-01", "priority": "high"
                },
                {"seq": 2, "table": "plans", "id": "p2", "op": "delete", "priority": "high", "force": true}
            ]
        })
    );
}

#[test]
fn rest_odd_table_names_are_encoded() {
    let b = batch(vec![change(1, "Order Items/x", "1", Op::Upsert, row(json!({"id": "1", "a b": 1})))]);
    let (requests, _) = run(&b, &rest(), vec![]);
    assert_eq!(requests[0].path, "/Order%20Items%2Fx?on_conflict=id&columns=%22a%20b%22,id&select=id");
    let b = batch(vec![change(1, "odd", "1", Op::Delete, None)]);
    let (requests, _) = run(&b, &rest(), vec![]);
    assert_eq!(requests[0].path, "/odd?%22key%20col%22=in.(%221%22)&select=%22key%20col%22");
}

#[test]
fn rest_large_deletes_are_split_to_keep_urls_short() {
    let ids: Vec<String> = (0..200).map(|i| format!("{i:0>40}")).collect();
    let b = batch(ids.iter().enumerate().map(|(i, id)| change(i as u64 + 1, "t", id, Op::Delete, None)).collect());
    let (requests, outcomes) = against(&b, &mut Postgrest::default());
    assert!(requests.len() > 2 && requests.iter().all(|r| r.path.len() < 4_200));
    assert_eq!(outcomes.len(), 200);
    assert!(outcomes.values().all(|o| *o == Outcome::Applied));
}

#[test]
fn rest_refused_bulk_write_is_halved_to_find_the_bad_row() {
    let b = batch(
        (1..=4)
            .map(|i| change(i, "plans", &format!("p{i}"), Op::Upsert, row(json!({"id": format!("p{i}"), "n": i}))))
            .collect(),
    );
    let refusal = r#"{"code":"23514","message":"violates check constraint","details":null,"hint":null}"#;
    let rows = |ids: &[&str]| status(201, &Value::Array(ids.iter().map(|id| json!({"id": id})).collect()).to_string());
    // [1 2 3 4] refused, [1 2] fine, [3 4] refused, [3] refused alone, [4] fine.
    let answers =
        vec![status(400, refusal), rows(&["p1", "p2"]), status(400, refusal), status(400, refusal), rows(&["p4"])];
    let (requests, outcomes) = run(&b, &rest(), answers);
    let sizes: Vec<usize> = requests.iter().map(|r| r.body.as_deref().unwrap().matches("\"id\"").count()).collect();
    assert_eq!(sizes, [4, 2, 2, 1, 1]);
    let by_seq: HashMap<u64, &Outcome<Row>> = outcomes.iter().map(|o| (o.seq, &o.outcome)).collect();
    assert_eq!((by_seq[&1], by_seq[&2], by_seq[&4]), (&Outcome::Applied, &Outcome::Applied, &Outcome::Applied));
    assert!(matches!(by_seq[&3], Outcome::Permanent { code: Some(c), .. } if c == "23514"));
}

#[test]
fn too_large_is_halved_until_the_big_write_is_alone_in_both_modes() {
    let big = "x".repeat(1000);
    let b = batch(vec![
        change(1, "plans", "p1", Op::Upsert, row(json!({"id": "p1", "n": ""}))),
        change(2, "plans", "p2", Op::Upsert, row(json!({"id": "p2", "n": big}))),
        change(3, "plans", "p3", Op::Upsert, row(json!({"id": "p3", "n": ""}))),
    ]);
    let limit = |request: &HttpRequest| request.body.as_deref().is_some_and(|b| b.len() > 500);
    let too_large = || status(413, r#"{"code":"PGRST413","message":"Payload Too Large","details":null,"hint":null}"#);
    for config in [rest(), rpc()] {
        let mut exchange = Exchange::new(&b, &config);
        let mut sent = 0;
        while let Some(request) = exchange.next_request(0) {
            sent += 1;
            let answer = if limit(&request) {
                too_large()
            } else if matches!(config.mode, WireMode::Rpc { .. }) {
                let body: Value = serde_json::from_str(request.body.as_deref().unwrap()).unwrap();
                let results: Vec<Value> = body["changes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| json!({"seq": c["seq"], "status": "applied"}))
                    .collect();
                status(200, &Value::Array(results).to_string())
            } else {
                let body: Value = serde_json::from_str(request.body.as_deref().unwrap()).unwrap();
                let ids: Vec<Value> = body.as_array().unwrap().iter().map(|r| json!({"id": r["id"]})).collect();
                status(201, &Value::Array(ids).to_string())
            };
            exchange.on_response(0, answer);
        }
        let by_seq: HashMap<u64, Outcome<Row>> = exchange.finish().into_iter().map(|o| (o.seq, o.outcome)).collect();
        assert_eq!((&by_seq[&1], &by_seq[&3]), (&Outcome::Applied, &Outcome::Applied), "{config:?}");
        assert!(matches!(&by_seq[&2], Outcome::TooLarge { .. }), "{config:?}: {:?}", by_seq[&2]);
        assert!(sent <= 5, "{config:?}: {sent} requests");
    }
}

#[test]
fn rest_transient_failure_stops_the_rest_of_the_batch() {
    let b = batch(vec![
        change(1, "plans", "p1", Op::Upsert, row(json!({"id": "p1"}))),
        change(2, "sessions", "s1", Op::Upsert, row(json!({"id": "s1", "plan_id": "p1"}))),
    ]);
    let mut exchange = Exchange::new(&b, &rest());
    assert!(exchange.next_request(0).is_some());
    assert!(exchange.next_request(0).is_none(), "one request at a time");
    exchange.on_response(0, HttpResponse { status: 503, retry_after: Some("2".into()), body: String::new() });
    assert!(exchange.next_request(0).is_none(), "the child must not overtake its failed parent");
    // The child was not sent: it fails for its parent's reason, and waits as long.
    let failed = Outcome::Transient { message: "HTTP 503".into(), retry_after_ms: Some(2_000) };
    assert_eq!(
        exchange.finish(),
        [ChangeOutcome { seq: 1, outcome: failed.clone() }, ChangeOutcome { seq: 2, outcome: failed }]
    );
}

/// The exchange of `updates_then_insert` with its first `n` PATCHes out, under ids `0..n`.
fn patches_out(n: u64) -> Exchange<Row> {
    let mut exchange = Exchange::new(&updates_then_insert(), &rest());
    for id in 0..n {
        exchange.next_request(id).unwrap();
    }
    exchange
}

/// Updates of five records, then an insert: the updates' PATCHes are independent of one another.
fn updates_then_insert() -> Batch<Row> {
    let mut changes: Vec<OutgoingChange<Row>> =
        (1..=5).map(|i| change(i, "plans", &format!("p{i}"), Op::Update, row(json!({"name": "x"})))).collect();
    changes.push(change(6, "sessions", "s1", Op::Insert, row(json!({"id": "s1", "plan_id": "p1"}))));
    batch(changes)
}

/// The exchange's outcomes as (seq, outcome), in seq order: requests out together are answered in any order.
fn by_seq(exchange: Exchange<Row>) -> Vec<(u64, Outcome<Row>)> {
    let mut outcomes: Vec<(u64, Outcome<Row>)> = exchange.finish().into_iter().map(|o| (o.seq, o.outcome)).collect();
    outcomes.sort_by_key(|o| o.0);
    outcomes
}

fn all_applied(writes: u64) -> Vec<(u64, Outcome<Row>)> {
    (1..=writes).map(|seq| (seq, Outcome::Applied)).collect()
}

fn touched(id: &str) -> HttpResponse {
    status(200, &format!(r#"[{{"id":"{id}"}}]"#))
}

#[test]
fn rest_patches_of_distinct_records_go_out_together_and_what_follows_waits_for_all() {
    let b = updates_then_insert();
    let mut exchange = Exchange::new(&b, &rest());
    let out: Vec<HttpRequest> = (10..).map_while(|id| exchange.next_request(id)).collect();
    assert_eq!(out.len(), MAX_IN_FLIGHT, "a run of PATCHes goes out up to the limit at once");
    assert!(out.iter().all(|r| r.method == "PATCH"));
    // Answered out of order: the fifth PATCH goes as soon as one is answered, the insert only after all.
    assert!(exchange.on_response(12, touched("p3")));
    let fifth = exchange.next_request(14).expect("the fifth PATCH takes the free place");
    assert_eq!((fifth.method, fifth.path.starts_with("/plans?id=in.(%22p5%22)")), ("PATCH", true), "{fifth:?}");
    for (id, record) in [(10, "p1"), (14, "p5"), (11, "p2")] {
        assert!(exchange.on_response(id, touched(record)));
        assert!(exchange.next_request(20).is_none(), "the insert waits while a PATCH is out");
    }
    assert!(!exchange.on_response(99, touched("p4")), "an id that is not out is refused");
    assert!(exchange.on_response(13, touched("p4")));
    assert_eq!(exchange.next_request(20).map(|r| r.method), Some("POST"));
    assert!(exchange.on_response(20, touched("s1")));
    assert!(exchange.is_done());
    assert_eq!(by_seq(exchange), all_applied(6));
}

#[test]
fn rest_a_transient_failure_beside_other_patches_keeps_their_answers_and_sends_nothing_more() {
    let mut exchange = patches_out(4);
    assert!(exchange.on_network_error(1, "Failed to fetch"));
    assert!(exchange.next_request(4).is_none(), "nothing more goes after a transient failure");
    assert!(!exchange.is_done(), "three PATCHes are still out");
    assert!(exchange.on_response(0, touched("p1")));
    // p3's PATCH touched nothing: the GET that would say why does not go, and the write fails as the batch did.
    assert!(exchange.on_response(2, ok()));
    assert!(exchange.next_request(5).is_none());
    assert!(exchange.on_response(3, touched("p4")));
    assert!(exchange.is_done());
    let failed = Outcome::Transient { message: "Failed to fetch".into(), retry_after_ms: None };
    let outcomes = by_seq(exchange);
    assert_eq!(
        outcomes,
        [
            (1, Outcome::Applied),
            (2, failed.clone()),
            (3, failed.clone()),
            (4, Outcome::Applied),
            (5, failed.clone()),
            (6, failed)
        ]
    );
}

/// The record a PATCH of `updates_then_insert` names.
fn patched(request: &HttpRequest) -> &'static str {
    ["p1", "p2", "p3", "p4", "p5"].into_iter().find(|r| request.path.contains(r)).unwrap_or("s1")
}

#[test]
fn rest_a_patch_refused_beside_others_goes_again_alone_before_the_rest_and_only_then_fails() {
    let unique = || status(409, r#"{"code":"23505","message":"duplicate key value violates unique constraint"}"#);
    let mut exchange = patches_out(4);
    // p2's new value is one that p1's PATCH frees: refused while p1's was out beside it.
    assert!(exchange.on_response(1, unique()));
    for (id, record) in [(0, "p1"), (2, "p3"), (3, "p4")] {
        assert!(exchange.next_request(4).is_none(), "p2 goes again once nothing is out, before p5");
        assert!(exchange.on_response(id, touched(record)));
    }
    let again = exchange.next_request(4).expect("p2's PATCH again");
    assert_eq!((again.method, patched(&again)), ("PATCH", "p2"));
    assert!(exchange.next_request(5).is_none(), "nothing beside it");
    // Refused alone too: that is the write's own fault.
    assert!(exchange.on_response(4, unique()));
    let mut id = 5;
    while let Some(request) = exchange.next_request(id) {
        assert!(exchange.on_response(id, touched(patched(&request))));
        id += 1;
    }
    assert_eq!(id, 7, "p5's PATCH and the insert");
    let outcomes = by_seq(exchange);
    assert!(
        matches!(&outcomes[1], (2, Outcome::Permanent { code: Some(code), .. }) if code == "23505"),
        "{outcomes:?}"
    );
    assert!(outcomes.iter().filter(|o| o.0 != 2).all(|o| o.1 == Outcome::Applied), "{outcomes:?}");
}

#[test]
fn rest_a_patch_refused_beside_others_lands_when_sent_again_alone() {
    let mut exchange = patches_out(2);
    assert!(exchange.on_response(0, status(409, r#"{"code":"23505","message":"duplicate key"}"#)));
    assert!(exchange.on_response(1, touched("p2")));
    let again = exchange.next_request(2).unwrap();
    assert_eq!(patched(&again), "p1", "p1 again, before the rest of the run");
    assert!(exchange.next_request(3).is_none(), "alone");
    assert!(exchange.on_response(2, touched("p1")));
    let mut id = 3;
    while let Some(request) = exchange.next_request(id) {
        assert!(exchange.on_response(id, touched(patched(&request))));
        id += 1;
    }
    assert_eq!(by_seq(exchange), all_applied(6));
}

#[test]
fn network_error_is_transient() {
    let b = batch(vec![change(1, "plans", "p1", Op::Delete, None)]);
    let mut exchange = Exchange::new(&b, &rest());
    exchange.next_request(0).unwrap();
    exchange.on_network_error(0, "Failed to fetch");
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
    let mut forced = change(6, "plans", "p2", Op::Delete, None);
    forced.force = true;
    let b = batch(vec![
        change(5, "plans", "p1", Op::Upsert, row(json!({"id": "p1", "last_changed": "2026-11-24T10:00:00Z"}))),
        forced,
    ]);
    let mut exchange = Exchange::new(&b, &rpc());
    let request = exchange.next_request(0).unwrap();
    assert_eq!((request.method, request.path.as_str()), ("POST", "/rpc/record_sync_apply"));
    let body: Value = serde_json::from_str(request.body.as_deref().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({
            "changes": [
                {"client_id": "c1", "seq": 5, "table": "plans", "id": "p1", "op": "upsert",
                 "data": {"id": "p1", "last_changed": "2026-11-24T10:00:00Z"}, "last_changed": "2026-11-24T10:00:00Z"},
                {"client_id": "c1", "seq": 6, "table": "plans", "id": "p2", "op": "delete", "force": true}
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
        change(6, "t", "f", Op::Update, row(json!({"x": 1}))),
    ]);
    let answer = json!([
        {"seq": 1, "status": "applied"},
        {"seq": 2, "status": "applied", "replayed": true},
        {"seq": 3, "status": "conflict", "row": {"id": "c", "last_changed": "2030-01-01"}},
        {"seq": 4, "status": "error", "code": "23503", "message": "fk"},
        {"seq": 5, "status": "error", "code": "40001", "message": "serialization"},
        {"seq": 6, "status": "missing"},
        {"seq": 99, "status": "applied"}
    ]);
    let (_, outcomes) = run(&b, &rpc(), vec![status(200, &answer.to_string())]);
    let expected = vec![
        Outcome::Applied,
        Outcome::Applied,
        Outcome::Conflict { row: row(json!({"id": "c", "last_changed": "2030-01-01"})) },
        Outcome::Permanent { code: Some("23503".into()), message: "fk".into() },
        Outcome::Transient { message: "serialization".into(), retry_after_ms: None },
        Outcome::Missing,
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
    let (requests, outcomes) = run(&b, &rpc(), vec![status(404, missing), status(404, missing), status(404, missing)]);
    assert_eq!(requests.len(), 3, "a refusal naming no write is halved until each write is alone");
    assert!(outcomes.iter().all(|o| matches!(o.outcome, Outcome::Permanent { .. })));
    let (requests, outcomes) = run(&b, &rpc(), vec![status(503, "")]);
    assert_eq!(requests.len(), 1, "a transient failure is not split");
    assert!(outcomes.iter().all(|o| matches!(o.outcome, Outcome::Transient { .. })));
}

#[test]
fn rest_a_row_written_by_someone_else_between_the_write_and_the_read_is_no_conflict_unless_newer() {
    // The conditional PATCH touched nothing (no row then); before the follow-up read, another device wrote the
    // row. Only a row newer than the write is a conflict; an older one means: try again.
    let update =
        change(1, "plans", "p", Op::Update, row(json!({"name": "A", "last_changed": "2028-01-01T00:00:00.000Z"})));
    let read_after_patch = |stored: &str| {
        let mut exchange = Exchange::new(&batch(vec![update.clone()]), &rest());
        assert_eq!(exchange.next_request(0).unwrap().method, "PATCH");
        exchange.on_response(0, ok());
        assert_eq!(exchange.next_request(0).unwrap().method, "GET");
        exchange.on_response(0, status(200, &format!(r#"[{{"id":"p","name":"B","last_changed":{stored}}}]"#)));
        exchange.finish().remove(0).outcome
    };
    assert!(matches!(read_after_patch(r#""2026-01-01T00:00:00+00:00""#), Outcome::Transient { .. }));
    assert!(matches!(read_after_patch("null"), Outcome::Transient { .. }));
    // Same instant written another way: not newer.
    assert!(matches!(read_after_patch(r#""2028-01-01T01:00:00+01:00""#), Outcome::Transient { .. }));
    assert!(matches!(read_after_patch(r#""2028-01-01T00:00:00.001+00:00""#), Outcome::Conflict { row: Some(_) }));
    assert!(matches!(read_after_patch(r#""not a time""#), Outcome::Conflict { row: Some(_) }));
}
