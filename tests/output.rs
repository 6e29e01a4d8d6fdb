//! The engine's wire surface, one rule at a time: `poll_output` hands out requests, events and the timeout;
//! answers come back by request id through `handle_response`, `handle_failure` and `handle_unauthorized`.

// Native tests. `wasm-pack test` builds every test target for wasm32 too.
#![cfg(not(target_arch = "wasm32"))]

use record_sync::core::wire::{HttpResponse, WireConfig, WireMode};
use record_sync::core::FastMap;
use record_sync::core::{
    Change, Config, ConflictReason, Engine, EngineError, Event, Fill, Op, Output, Priority, Row, Transmit,
};
use serde_json::{json, Value};

fn engine(mode: WireMode) -> Engine<Row> {
    let wire = WireConfig { mode, client_id: "c1".into() };
    Engine::new(Config { fill: Fill::DueOnly, wire, ..Config::default() }).unwrap()
}

fn rpc() -> WireMode {
    WireMode::Rpc { function: "record_sync_apply".into() }
}

fn rest() -> WireMode {
    WireMode::Rest { primary_keys: FastMap::default() }
}

fn queue(e: &mut Engine<Row>, id: &str, data: Value, now: u64) -> u64 {
    let change = Change::new("plans", id, Op::Upsert, data.as_object().cloned(), Priority::Critical).unwrap();
    e.enqueue(change, now).unwrap()
}

/// The next output that is not a state change (those have their own test).
fn next(e: &mut Engine<Row>) -> Output<Row> {
    loop {
        match e.poll_output() {
            Output::Event(Event::StateChanged) => {}
            other => return other,
        }
    }
}

fn transmit(e: &mut Engine<Row>) -> Transmit {
    match next(e) {
        Output::Transmit(t) => t,
        other => panic!("expected a request, got {other:?}"),
    }
}

/// When a failed batch goes again.
fn backoff(e: &mut Engine<Row>) -> u64 {
    match next(e) {
        Output::Timeout(Some(at)) => at,
        other => panic!("expected a backoff, got {other:?}"),
    }
}

fn ok(body: Value) -> HttpResponse {
    HttpResponse { status: 200, retry_after: None, body: body.to_string() }
}

#[test]
fn one_request_at_a_time_and_an_answer_by_its_id() {
    let mut e = engine(rpc());
    let seq = queue(&mut e, "p1", json!({ "id": "p1", "name": "a" }), 0);
    let t = transmit(&mut e);
    assert_eq!((t.request.method, t.request.path.as_str()), ("POST", "/rpc/record_sync_apply"));
    assert!(t.request.body.as_deref().unwrap().contains("\"client_id\":\"c1\""));
    queue(&mut e, "p2", json!({ "id": "p2" }), 1);
    assert_eq!(next(&mut e), Output::Timeout(None), "nothing more while a request is on its way");

    let stray = ok(json!([{ "seq": seq, "status": "applied" }]));
    assert_eq!(e.handle_response(t.id + 1, stray.clone(), 2), Err(EngineError::UnknownRequest(t.id + 1)));
    assert_eq!(e.stats().successful_syncs, 0, "an answer to another request confirms nothing");

    e.handle_response(t.id, stray.clone(), 2).unwrap();
    assert_eq!(e.stats().successful_syncs, 1);
    assert_eq!(e.handle_response(t.id, stray, 3), Err(EngineError::UnknownRequest(t.id)), "answered once");
    let next = transmit(&mut e);
    assert!(next.id > t.id && next.request.body.unwrap().contains("\"p2\""));
}

#[test]
fn a_2xx_that_is_not_the_servers_answer_confirms_nothing() {
    for (mode, body) in
        [(rpc(), "<html>Sign in to Wi-Fi</html>"), (rest(), "<html>Sign in to Wi-Fi</html>"), (rpc(), "{}")]
    {
        let mut e = engine(mode);
        queue(&mut e, "p1", json!({ "id": "p1" }), 0);
        let t = transmit(&mut e);
        e.handle_response(t.id, HttpResponse { status: 200, retry_after: None, body: body.into() }, 1).unwrap();
        let stats = e.stats();
        assert_eq!((stats.successful_syncs, stats.pending, stats.retries), (0, 1, 1), "{body}");
        assert!(matches!(next(&mut e), Output::Timeout(Some(at)) if at > 1), "retried after a backoff");
    }
}

#[test]
fn no_token_returns_the_writes_unsent_and_waits() {
    let mut e = engine(rest());
    queue(&mut e, "p1", json!({ "id": "p1" }), 0);
    let t = transmit(&mut e);
    e.handle_unauthorized(t.id, "no access token", 1).unwrap();
    let stats = e.stats();
    assert_eq!((stats.requests, stats.pending, stats.retries, stats.needs_auth), (0, 1, 0, true));
    assert_eq!(e.pending_changes()[0].attempts, 0, "waiting for a token costs no attempt");
    assert_eq!(next(&mut e), Output::Timeout(None), "nothing goes out until a token comes");
    e.set_needs_auth(None);
    assert_eq!(transmit(&mut e).request, t.request, "the same write goes again");
}

#[test]
fn a_refused_token_after_an_answer_keeps_what_was_answered() {
    // A delete and an upsert of another table: two requests in rest mode.
    let mut e = engine(rest());
    queue(&mut e, "p1", json!({ "id": "p1" }), 0);
    let change = Change::new("sessions", "s1", Op::Delete, None, Priority::Critical).unwrap();
    e.enqueue(change, 0).unwrap();
    let first = transmit(&mut e);
    e.handle_response(first.id, ok(json!([{ "id": "p1" }])), 1).unwrap();
    let second = transmit(&mut e);
    e.handle_unauthorized(second.id, "refused", 2).unwrap();
    let stats = e.stats();
    assert_eq!((stats.successful_syncs, stats.pending, stats.requests), (1, 1, 1));
}

#[test]
fn patches_go_out_together_and_a_refused_token_among_them_waits_for_the_others_before_the_next_batch() {
    let mut e = engine(rest());
    for id in ["p1", "p2", "p3"] {
        let change =
            Change::new("plans", id, Op::Update, json!({ "name": "b" }).as_object().cloned(), Priority::Critical);
        e.enqueue(change.unwrap(), 0).unwrap();
    }
    let out: Vec<Transmit> = (0..3).map(|_| transmit(&mut e)).collect();
    assert!(out.iter().all(|t| t.request.method == "PATCH"), "three PATCHes out at once: {out:?}");
    assert_eq!(next(&mut e), Output::Timeout(None));

    e.handle_response(out[1].id, ok(json!([{ "id": "p2" }])), 1).unwrap();
    e.handle_unauthorized(out[0].id, "refused", 2).unwrap();
    queue(&mut e, "p4", json!({ "id": "p4" }), 2);
    e.set_needs_auth(None);
    assert_eq!(next(&mut e), Output::Timeout(None), "no new batch while p3's PATCH is out");
    // The batch was given up: p3's answer is dropped, and its write goes again with p1's. p1's was refused (not
    // written, no attempt spent); p3's may have landed (an attempt, as with no answer).
    let late = ok(json!([{ "id": "p3" }]));
    assert_eq!(e.handle_response(out[2].id, late, 3), Err(EngineError::UnknownRequest(out[2].id)));
    let stats = e.stats();
    assert_eq!((stats.successful_syncs, stats.pending, stats.retries), (1, 3, 1));
    let attempts: Vec<(String, u32)> = e.pending_changes().into_iter().map(|p| (p.write.id, p.attempts)).collect();
    assert!(attempts.contains(&("p1".into(), 0)) && attempts.contains(&("p3".into(), 1)), "{attempts:?}");
    let again = transmit(&mut e);
    assert!(again.id > out[2].id, "ids go on");
}

#[test]
fn no_answer_is_a_transient_failure() {
    let mut e = engine(rpc());
    queue(&mut e, "p1", json!({ "id": "p1" }), 0);
    let t = transmit(&mut e);
    e.handle_failure(t.id, "Failed to fetch", 5).unwrap();
    let stats = e.stats();
    assert_eq!((stats.pending, stats.retries, stats.last_error.as_deref()), (1, 1, Some("Failed to fetch")));
}

#[test]
fn conflicts_come_out_as_events_before_the_next_request() {
    let mut e = engine(rpc());
    let seq = queue(&mut e, "p1", json!({ "id": "p1", "last_changed": "2026-01-01T00:00:00Z" }), 0);
    let t = transmit(&mut e);
    queue(&mut e, "p2", json!({ "id": "p2" }), 1);
    let server_row = json!({ "id": "p1", "last_changed": "2026-02-01T00:00:00Z" });
    e.handle_response(t.id, ok(json!([{ "seq": seq, "status": "conflict", "row": server_row }])), 2).unwrap();
    match next(&mut e) {
        Output::Event(Event::Conflict(c)) => {
            assert_eq!((c.seq, c.reason, c.server_row), (seq, ConflictReason::Newer, server_row.as_object().cloned()));
        }
        other => panic!("expected the conflict, got {other:?}"),
    }
    assert!(transmit(&mut e).request.body.unwrap().contains("\"p2\""));
}

#[test]
fn a_custom_transport_gets_the_batch_and_its_results_go_through_the_one_decoder() {
    let mut e = engine(WireMode::Custom);
    let seq = queue(&mut e, "p1", json!({ "id": "p1", "name": "a" }), 0);
    let t = transmit(&mut e);
    let batch: Value = serde_json::from_str(t.request.body.as_deref().unwrap()).unwrap();
    assert_eq!(batch["clientId"], "c1");
    assert_eq!(batch["changes"][0]["data"], json!({ "id": "p1", "name": "a" }));
    assert_eq!(batch["changes"][0]["seq"], seq);

    // Results that cannot be read fail the batch, transiently.
    e.handle_response(t.id, ok(json!([{ "status": "applied" }])), 1).unwrap();
    let stats = e.stats();
    assert_eq!((stats.successful_syncs, stats.pending), (0, 1));
    assert!(stats.last_error.unwrap().starts_with("transport.send must resolve to an array"));

    let at = backoff(&mut e);
    e.handle_timeout(at);
    let t = transmit(&mut e);
    e.handle_response(t.id, ok(json!([{ "seq": seq, "status": "applied" }])), at).unwrap();
    assert_eq!(e.stats().successful_syncs, 1);
}

#[test]
fn why_sending_waited_for_a_token_is_cleared_by_the_next_confirmed_write() {
    let mut e = engine(rpc());
    let seq = queue(&mut e, "p1", json!({ "id": "p1" }), 0);
    let t = transmit(&mut e);
    e.handle_unauthorized(t.id, "waiting for user A's sign-in", 1).unwrap();
    assert_eq!(e.stats().last_error.as_deref(), Some("waiting for user A's sign-in"));
    e.set_needs_auth(None);
    assert_eq!(e.stats().last_error.as_deref(), Some("waiting for user A's sign-in"), "kept until a write goes");
    let t = transmit(&mut e);
    e.handle_response(t.id, ok(json!([{ "seq": seq, "status": "applied" }])), 2).unwrap();
    assert_eq!(e.stats().last_error, None);

    // Any other error stays until something else replaces it.
    let seq = queue(&mut e, "p2", json!({ "id": "p2" }), 3);
    let t = transmit(&mut e);
    e.handle_failure(t.id, "Failed to fetch", 3).unwrap();
    let at = backoff(&mut e);
    e.handle_timeout(at);
    let t = transmit(&mut e);
    e.handle_response(t.id, ok(json!([{ "seq": seq, "status": "applied" }])), at).unwrap();
    assert_eq!(e.stats().last_error.as_deref(), Some("Failed to fetch"));
}

/// What a page that died left stored, and the next page restoring it under an id of its own.
fn next_page(first: &Engine<Row>, mode: WireMode, parents: FastMap<String, Vec<String>>) -> Engine<Row> {
    let wire = WireConfig { mode, client_id: "c2".into() };
    Engine::restore(Config { fill: Fill::DueOnly, wire, parents, ..Config::default() }, first.export()).unwrap()
}

#[test]
fn a_restored_write_goes_under_the_client_id_it_was_queued_under_and_new_ones_under_the_new_pages() {
    let mut first = engine(rpc());
    queue(&mut first, "kept", json!({ "id": "kept" }), 0);
    // The last queue the store committed: the write that held "sent" was lost with the page, after it went out.
    let mut second = next_page(&first, rpc(), FastMap::default());
    let sent = queue(&mut first, "sent", json!({ "id": "sent" }), 1);
    let body = transmit(&mut first).request.body.unwrap();
    assert!(body.contains(&format!(r#""client_id":"c1","seq":{sent},"table":"plans","id":"sent""#)), "{body}");

    let new = queue(&mut second, "new", json!({ "id": "new" }), 2);
    assert_eq!(new, sent, "the same seq as the change sent and forgotten...");
    // One id per call: the restored write first, in a batch of its own.
    let t = transmit(&mut second);
    let body = t.request.body.unwrap();
    assert!(body.contains(r#""client_id":"c1","seq":1,"table":"plans","id":"kept""#), "the replay identity: {body}");
    assert!(!body.contains("c2"), "{body}");
    second.handle_response(t.id, ok(json!([{ "seq": 1, "status": "applied" }])), 3).unwrap();
    let body = transmit(&mut second).request.body.unwrap();
    assert!(
        body.contains(&format!(r#""client_id":"c2","seq":{new},"table":"plans","id":"new""#)),
        "...under another id: {body}"
    );
}

#[test]
fn a_custom_send_gets_one_client_id_per_batch_and_a_parent_of_another_id_goes_first() {
    let parents = FastMap::from_iter([("sessions".to_owned(), vec!["plans".to_owned()])]);
    let mut first = Engine::new(Config {
        fill: Fill::DueOnly,
        wire: WireConfig { mode: WireMode::Custom, client_id: "c1".into() },
        parents: parents.clone(),
        ..Config::default()
    })
    .unwrap();
    queue(&mut first, "p1", json!({ "id": "p1" }), 0);
    let mut second = next_page(&first, WireMode::Custom, parents);
    // A child queued by the new page, of the parent the old one queued.
    let child = Change::new(
        "sessions",
        "s1",
        Op::Upsert,
        json!({ "id": "s1", "plan_id": "p1" }).as_object().cloned(),
        Priority::Critical,
    );
    let child = second.enqueue(child.unwrap(), 1).unwrap();
    let t = transmit(&mut second);
    let batch: Value = serde_json::from_str(t.request.body.as_deref().unwrap()).unwrap();
    assert_eq!(
        (batch["clientId"].as_str(), batch["changes"].as_array().map(Vec::len)),
        (Some("c1"), Some(1)),
        "{batch}"
    );
    assert_eq!(batch["changes"][0]["id"], "p1", "the parent first");
    second.handle_response(t.id, ok(json!([{ "seq": 1, "status": "applied" }])), 2).unwrap();
    let batch: Value = serde_json::from_str(transmit(&mut second).request.body.as_deref().unwrap()).unwrap();
    assert_eq!((batch["clientId"].as_str(), batch["changes"][0]["seq"].as_u64()), (Some("c2"), Some(child)), "{batch}");
}

#[test]
fn a_state_change_is_one_event_however_many_changes_came_before_it() {
    let mut e = engine(rpc());
    assert_eq!(e.poll_event(), None, "a new engine has nothing to report");
    queue(&mut e, "p1", json!({ "id": "p1" }), 0);
    queue(&mut e, "p2", json!({ "id": "p2" }), 0);
    assert_eq!(e.poll_event(), Some(Event::StateChanged), "coalesced");
    assert_eq!(e.poll_event(), None);
    assert_eq!(e.stats().in_flight, 0, "polling events sends nothing");

    // Taking the batch out is a change (pending moves to in flight); so is its answer.
    let t = match e.poll_output() {
        Output::Transmit(t) => t,
        other => panic!("expected the request, got {other:?}"),
    };
    assert_eq!(e.poll_output(), Output::Event(Event::StateChanged));
    assert_eq!(e.poll_output(), Output::Timeout(None));
    e.handle_response(t.id, ok(json!([{ "seq": 1, "status": "applied" }, { "seq": 2, "status": "applied" }])), 1)
        .unwrap();
    assert_eq!(e.poll_event(), Some(Event::StateChanged));
    assert_eq!(e.poll_event(), None);

    // A call that changes nothing reports nothing.
    e.handle_timeout(2);
    assert_eq!(e.poll_output(), Output::Timeout(None));
    assert_eq!(e.poll_event(), None);
}

#[test]
fn a_batch_begun_is_finished_by_poll_flight_which_never_starts_another() {
    // Two tables: two requests in rest mode.
    let mut e = engine(rest());
    queue(&mut e, "p1", json!({ "id": "p1" }), 0);
    let change =
        Change::new("sessions", "s1", Op::Upsert, json!({ "id": "s1" }).as_object().cloned(), Priority::Critical);
    e.enqueue(change.unwrap(), 0).unwrap();
    assert_eq!(e.poll_flight(), None, "nothing in flight: poll_flight starts nothing");
    let first = transmit(&mut e);
    assert_eq!(e.poll_flight(), None, "one request at a time");
    e.handle_response(first.id, ok(json!([{ "id": "p1" }])), 1).unwrap();
    queue(&mut e, "p2", json!({ "id": "p2" }), 1);

    let second = e.poll_flight().expect("the batch's second request");
    assert!(second.id > first.id && second.request.path.starts_with("/sessions"), "{:?}", second.request);
    e.handle_response(second.id, ok(json!([{ "id": "s1" }])), 2).unwrap();
    assert_eq!(e.stats().successful_syncs, 2);
    assert_eq!(e.poll_flight(), None, "the due change to p2 waits for poll_output");
    assert!(transmit(&mut e).request.body.unwrap().contains("\"p2\""));
}

#[test]
fn an_engine_that_follows_another_waits_for_its_request_and_never_takes_its_answer() {
    let mut old = engine(rest());
    queue(&mut old, "p1", json!({ "id": "p1", "name": "old" }), 0);
    let out = transmit(&mut old);

    // What the shell does when another tab clears the queue: an empty engine in its place, seqs going on.
    let config = old.config().clone();
    let mut snapshot = Engine::<Row>::new(config.clone()).unwrap().export();
    snapshot.next_seq = old.export().next_seq;
    let mut new = Engine::restore(config, snapshot).unwrap();
    new.follow(&old);
    queue(&mut new, "p1", json!({ "id": "p1", "name": "new" }), 1);
    assert_eq!(next(&mut new), Output::Timeout(None), "the old request is still out");

    // Its answer names p1, but it is not an answer to the new write.
    let answer = ok(json!([{ "id": "p1", "name": "old" }]));
    assert_eq!(new.handle_response(out.id, answer, 2), Err(EngineError::UnknownRequest(out.id)));
    assert_eq!((new.stats().successful_syncs, new.stats().pending), (0, 1));
    let t = transmit(&mut new);
    assert_ne!(t.id, out.id, "request ids go on from the old engine's");
    assert!(t.request.body.unwrap().contains("\"new\""));
}

#[test]
fn writes_a_failed_request_kept_from_going_fail_with_its_reason() {
    // Rest mode: an upsert of plans and a delete of sessions are two requests; the first fails, the second never
    // goes, and `lastError` says why (before, the write never sent said "the server gave no result").
    type Fail = fn(&mut Engine<Row>, u64);
    let failures: [(&str, Fail); 2] = [
        ("HTTP 503", |e, id| {
            let busy = HttpResponse { status: 503, retry_after: None, body: "busy".into() };
            e.handle_response(id, busy, 1).unwrap();
        }),
        ("Failed to fetch", |e, id| e.handle_failure(id, "Failed to fetch", 1).unwrap()),
    ];
    for (reason, fail) in failures {
        let mut e = engine(rest());
        queue(&mut e, "p1", json!({ "id": "p1" }), 0);
        e.enqueue(Change::new("sessions", "s1", Op::Delete, None, Priority::Critical).unwrap(), 0).unwrap();
        let first = transmit(&mut e);
        fail(&mut e, first.id);
        let stats = e.stats();
        assert_eq!((stats.pending, stats.retries), (2, 2), "{reason}");
        let last_error = stats.last_error.unwrap_or_default();
        assert!(last_error.contains(reason), "{reason}: {last_error}");
    }
}
