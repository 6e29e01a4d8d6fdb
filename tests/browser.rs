//! The `RecordSync` class in real headless Chromium against the dev server: run by
//! `bash scripts/test-browser.sh`, which starts the server and passes its address and a user's token in at
//! compile time. Tests run one after another in one page; each uses its own record ids, and server counters
//! are compared before and after.

#![cfg(target_arch = "wasm32")]

use js_sys::{Function, Promise, Reflect, JSON};
use record_sync::web::RecordSync;
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const SERVER: &str = match option_env!("RECORD_SYNC_TEST_SERVER") {
    Some(url) => url,
    None => "http://127.0.0.1:9",
};
/// A valid JWT of the dev server for `USER`.
const TOKEN: &str = match option_env!("RECORD_SYNC_TEST_TOKEN") {
    Some(token) => token,
    None => "",
};
const USER: &str = match option_env!("RECORD_SYNC_TEST_USER") {
    Some(user) => user,
    None => "",
};
const ANON_KEY: &str = "dev-anon-key";

#[wasm_bindgen(module = "/tests/web/helpers.js")]
extern "C" {
    fn sleep(ms: u32) -> Promise;
    #[wasm_bindgen(catch)]
    async fn admin(server: &str, method: &str, path: &str, body: JsValue) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(catch)]
    async fn rows(server: &str, table: &str, query: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = tokenSource)]
    fn token_source(token: &str) -> Function;
    #[wasm_bindgen(js_name = recordingTransport)]
    fn recording_transport(script: Vec<JsValue>) -> JsValue;
    fn instrument() -> JsValue;
    fn dispatch(name: &str);
    fn uid() -> String;
    fn stringify(value: &JsValue) -> String;
    #[wasm_bindgen(catch, js_name = serviceRest)]
    async fn service_rest(server: &str, method: &str, path: &str, body: JsValue) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = failingToken)]
    fn failing_token(kind: &str) -> Function;
    #[wasm_bindgen(js_name = hangingTransport)]
    fn hanging_transport() -> JsValue;
    #[wasm_bindgen(js_name = conflictRecorder)]
    fn conflict_recorder() -> Function;
    #[wasm_bindgen(js_name = mergeFunction)]
    fn merge_function(drop: bool) -> Function;
}

// ---------------------------------------------------------------------------------------------- helpers

async fn pause_ms(ms: u32) {
    JsFuture::from(sleep(ms)).await.unwrap();
}

fn to_json(value: &JsValue) -> Value {
    serde_json::from_str(&stringify(value)).unwrap_or(Value::Null)
}

fn js(value: Value) -> JsValue {
    JSON::parse(&value.to_string()).unwrap()
}

fn set(object: &JsValue, key: &str, value: &JsValue) {
    Reflect::set(object, &key.into(), value).unwrap();
}

/// Options for the dev server as the test user (rows get `user_id = auth.uid()`, RLS applies), with a short
/// timeout and `extra` merged in.
fn options(mode: &str, extra: Value) -> JsValue {
    assert!(!TOKEN.is_empty(), "run through scripts/test-browser.sh, which mints RECORD_SYNC_TEST_TOKEN");
    // `storage: null`: each test starts from an empty queue in memory (tests/durable covers the stored one).
    let mut options = json!({
        "transport": { "url": format!("{SERVER}/rest/v1"), "apiKey": ANON_KEY, "mode": mode, "timeoutMs": 3000 },
        "storage": null,
    });
    for (key, value) in extra.as_object().cloned().unwrap_or_default() {
        options[key] = value;
    }
    let options = js(options);
    let transport = Reflect::get(&options, &"transport".into()).unwrap();
    set(&transport, "getAccessToken", &token_source(TOKEN));
    options
}

fn new_sync(options: JsValue) -> RecordSync {
    RecordSync::new(options).unwrap_or_else(|e| panic!("new RecordSync: {}", stringify(&e)))
}

fn queue(sync: &RecordSync, table: &str, id: &str, op: &str, data: Value, priority: u32) -> f64 {
    let data = if data.is_null() { JsValue::UNDEFINED } else { js(data) };
    sync.queue_change(table.into(), id.into(), op.into(), data, priority.into())
        .unwrap_or_else(|e| panic!("queueChange({table}, {id}, {op}): {}", error_text(&e)))
}

fn stats(sync: &RecordSync) -> Value {
    to_json(&sync.stats().unwrap())
}

fn stat(sync: &RecordSync, name: &str) -> u64 {
    stats(sync)[name].as_u64().unwrap_or_else(|| panic!("stats().{name} is not a count"))
}

async fn sync_all(sync: &RecordSync) -> Value {
    let summary =
        JsFuture::from(sync.force_sync_all()).await.unwrap_or_else(|e| panic!("forceSyncAll: {}", error_text(&e)));
    to_json(&summary)
}

/// Waits until `done` holds, checking every 10 ms, for at most `limit_ms`.
async fn wait_for(what: &str, limit_ms: u32, mut done: impl FnMut() -> bool) {
    let mut waited = 0;
    while !done() {
        assert!(waited < limit_ms, "gave up waiting {limit_ms} ms for {what}");
        pause_ms(10).await;
        waited += 10;
    }
}

async fn server_rows(table: &str, query: &str) -> Vec<Value> {
    let found = rows(SERVER, table, query).await.unwrap_or_else(|e| panic!("reading {table}: {}", error_text(&e)));
    to_json(&found).as_array().cloned().unwrap_or_default()
}

async fn server_stats() -> Value {
    to_json(&admin(SERVER, "GET", "/__admin/stats", JsValue::UNDEFINED).await.expect("GET /__admin/stats"))
}

async fn fault(body: Value) {
    admin(SERVER, "POST", "/__admin/faults", js(body)).await.expect("POST /__admin/faults");
}

async fn clear_faults() {
    admin(SERVER, "DELETE", "/__admin/faults", JsValue::UNDEFINED).await.expect("DELETE /__admin/faults");
}

fn count(stats: &Value, path: &[&str]) -> u64 {
    path.iter().fold(stats, |v, key| &v[*key]).as_u64().unwrap_or(0)
}

fn error_text(error: &JsValue) -> String {
    match error.dyn_ref::<js_sys::Error>() {
        Some(e) => format!("{}: {}", String::from(e.name()), String::from(e.message())),
        None => stringify(error),
    }
}

fn pending_ids(sync: &RecordSync) -> Vec<String> {
    to_json(&sync.pending_changes().unwrap())
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["id"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

fn ids(rows: &[Value]) -> Vec<&str> {
    rows.iter().filter_map(|r| r["id"].as_str()).collect()
}

// ---------------------------------------------------------------------------------------------- tests

#[wasm_bindgen_test]
async fn each_priority_deadline_is_met() {
    let sync = new_sync(options("rest", json!({ "syncIntervals": { "0": 0, "1": 300, "2": 600, "3": 900 } })));
    let p = uid();
    let names = ["critical", "high", "medium", "low"];
    let start = js_sys::Date::now();
    for (priority, name) in names.iter().enumerate() {
        queue(&sync, "training_plans", &format!("{p}-{name}"), "upsert", json!({ "name": name }), priority as u32);
    }
    let mut confirmed = [None::<f64>; 4];
    wait_for("every priority to be confirmed", 3000, || {
        let pending = pending_ids(&sync);
        let now = js_sys::Date::now() - start;
        for (i, name) in names.iter().enumerate() {
            if confirmed[i].is_none() && !pending.contains(&format!("{p}-{name}")) {
                confirmed[i] = Some(now);
            }
        }
        confirmed.iter().all(Option::is_some)
    })
    .await;
    let deadlines = [0.0, 300.0, 600.0, 900.0];
    for (i, at) in confirmed.iter().enumerate() {
        let at = at.unwrap();
        // Sent at the deadline (not before: no record is idle for the second that lets a write ride along with an
        // earlier request), confirmed shortly after.
        assert!(at <= deadlines[i] + 400.0, "{} confirmed after {at} ms, deadline {}", names[i], deadlines[i]);
        assert!(
            at >= deadlines[i] - 20.0,
            "{} confirmed after {at} ms, before its deadline {}",
            names[i],
            deadlines[i]
        );
    }
    let found = server_rows("training_plans", &format!("id=like.{p}-*")).await;
    assert_eq!(found.len(), 4, "{found:?}");
    assert_eq!(stat(&sync, "requests"), 4);
    sync.destroy();
}

#[wasm_bindgen_test]
async fn ten_quick_updates_of_one_record_are_one_write() {
    let sync = new_sync(options("rest", json!({ "syncIntervals": { "1": 200 } })));
    let id = format!("{}-plan", uid());
    let before = server_stats().await;
    queue(&sync, "training_plans", &id, "upsert", json!({ "name": "v0" }), 1);
    for n in 1..10 {
        queue(&sync, "training_plans", &id, "update", json!({ "name": format!("v{n}") }), 1);
    }
    wait_for("the write", 2000, || stat(&sync, "successfulSyncs") == 1).await;
    let after = server_stats().await;
    let writes = |s: &Value| count(s, &["rowsWritten", "training_plans"]);
    let requests = |s: &Value| count(s, &["requests", "byTable", "training_plans"]);
    assert_eq!(writes(&after) - writes(&before), 1, "rows written");
    assert_eq!(requests(&after) - requests(&before), 1, "requests");
    let found = server_rows("training_plans", &format!("id=eq.{id}")).await;
    assert_eq!(found[0]["name"], "v9");
    let s = stats(&sync);
    assert_eq!(
        (s["totalChanges"].as_u64(), s["mergedChanges"].as_u64(), s["requests"].as_u64()),
        (Some(10), Some(9), Some(1))
    );
    sync.destroy();
}

#[wasm_bindgen_test]
async fn batch_size_is_respected() {
    let sync = new_sync(options("rpc", json!({ "batchSize": 3 })));
    let p = uid();
    let before = server_stats().await;
    for n in 0..7 {
        queue(&sync, "exercises", &format!("{p}-{n}"), "insert", json!({ "name": format!("e{n}") }), 0);
    }
    let summary = sync_all(&sync).await;
    assert_eq!(summary["confirmed"], 7, "{summary}");
    let after = server_stats().await;
    assert_eq!(count(&after, &["rpcCalls"]) - count(&before, &["rpcCalls"]), 3, "ceil(7 / 3) calls");
    assert_eq!(stat(&sync, "requests"), 3);
    assert_eq!(server_rows("exercises", &format!("id=like.{p}-*")).await.len(), 7);
    sync.destroy();
}

#[wasm_bindgen_test]
async fn parents_go_before_children() {
    for mode in ["rest", "rpc"] {
        let sync = new_sync(options(
            mode,
            json!({
                "syncIntervals": { "3": 60000 },
                "tables": { "sessions": { "parents": ["training_plans"] }, "training_blocks": { "parents": ["sessions"] } },
            }),
        ));
        let p = uid();
        let (plan, session, block) = (format!("{p}-plan"), format!("{p}-session"), format!("{p}-block"));
        // The parents are low priority (a minute away); the critical child pulls them along, in order.
        queue(&sync, "training_plans", &plan, "insert", json!({ "name": "plan" }), 3);
        queue(&sync, "sessions", &session, "insert", json!({ "plan_id": plan, "name": "s" }), 3);
        queue(&sync, "training_blocks", &block, "insert", json!({ "session_id": session, "name": "b" }), 0);
        wait_for("the chain", 2000, || stat(&sync, "pending") == 0 && stat(&sync, "inFlight") == 0).await;
        assert_eq!(to_json(&sync.failed_changes().unwrap()), json!([]), "{mode}");
        assert_eq!(stat(&sync, "requests"), 1, "{mode}: one batch carries all three");
        assert_eq!(server_rows("training_blocks", &format!("id=eq.{block}")).await.len(), 1, "{mode}");
        assert_eq!(server_rows("sessions", &format!("id=eq.{session}")).await.len(), 1, "{mode}");
        sync.destroy();
    }
}

/// A mix of every op over several records; the server must end with exactly what applying them in order gives.
async fn converge(mode: &str) {
    let sync = new_sync(options(mode, json!({ "batchSize": 4 })));
    let p = uid();
    let id = |n: u32| format!("{p}-{n}");
    queue(&sync, "exercises", &id(1), "insert", json!({ "name": "squat" }), 2);
    queue(&sync, "exercises", &id(2), "insert", json!({ "name": "bench" }), 2);
    queue(&sync, "exercises", &id(3), "upsert", json!({ "name": "row" }), 2);
    queue(&sync, "exercises", &id(4), "insert", json!({ "name": "gone" }), 2);
    sync_all(&sync).await;
    queue(&sync, "exercises", &id(1), "update", json!({ "name": "front squat" }), 1);
    queue(&sync, "exercises", &id(2), "delete", Value::Null, 1);
    queue(&sync, "exercises", &id(3), "upsert", json!({ "name": "pendlay row" }), 0);
    queue(&sync, "exercises", &id(4), "delete", Value::Null, 3);
    queue(&sync, "exercises", &id(5), "insert", json!({ "name": "deadlift" }), 2);
    queue(&sync, "exercises", &id(5), "update", json!({ "name": "sumo deadlift" }), 2);
    let summary = sync_all(&sync).await;
    assert_eq!(summary["failed"], json!([]), "{mode}: {summary}");
    let found = server_rows("exercises", &format!("id=like.{p}-*")).await;
    let names: Vec<(&str, &str)> =
        found.iter().map(|r| (r["id"].as_str().unwrap_or(""), r["name"].as_str().unwrap_or(""))).collect();
    let (a, c, e) = (id(1), id(3), id(5));
    assert_eq!(
        names,
        [(a.as_str(), "front squat"), (c.as_str(), "pendlay row"), (e.as_str(), "sumo deadlift")],
        "{mode}"
    );
    sync.destroy();
}

#[wasm_bindgen_test]
async fn rest_mode_ends_with_the_rows_the_changes_describe() {
    converge("rest").await;
}

#[wasm_bindgen_test]
async fn rpc_mode_ends_with_the_rows_the_changes_describe() {
    converge("rpc").await;
}

#[wasm_bindgen_test]
async fn server_errors_and_429_retry_with_backoff() {
    let sync = new_sync(options("rest", json!({ "maxRetries": 5 })));
    let id = format!("{}-retry", uid());
    fault(json!({ "failNext": { "count": 2, "status": 500 } })).await;
    let start = js_sys::Date::now();
    queue(&sync, "training_models", &id, "upsert", json!({ "name": "after 500s" }), 0);
    let summary = sync_all(&sync).await;
    let elapsed = js_sys::Date::now() - start;
    assert_eq!(summary["confirmed"], 1, "{summary}");
    assert_eq!(stat(&sync, "retries"), 2);
    // Backoff with equal jitter: at least 500 ms, then at least 1000 ms.
    assert!(elapsed >= 1500.0, "two retries after {elapsed} ms");

    fault(json!({ "failNext": { "count": 1, "status": 429, "retryAfter": 2 } })).await;
    let start = js_sys::Date::now();
    queue(&sync, "training_models", &id, "update", json!({ "name": "after 429" }), 0);
    let summary = sync_all(&sync).await;
    let elapsed = js_sys::Date::now() - start;
    assert_eq!(summary["confirmed"], 1, "{summary}");
    assert!(elapsed >= 2000.0, "Retry-After: 2 honoured, retried after {elapsed} ms");
    assert_eq!(stat(&sync, "retries"), 3);

    // forceSyncAll() called during the server's wait skips the backoff, not the wait the server asked for.
    fault(json!({ "failNext": { "count": 1, "status": 503, "retryAfter": 2 } })).await;
    let start = js_sys::Date::now();
    queue(&sync, "training_models", &id, "update", json!({ "name": "after 503" }), 0);
    wait_for("the 503", 5000, || stats(&sync)["lastError"].as_str().is_some_and(|e| e.contains("503"))).await;
    let summary = sync_all(&sync).await;
    let elapsed = js_sys::Date::now() - start;
    assert_eq!(summary["confirmed"], 1, "{summary}");
    assert!(elapsed >= 2000.0, "forceSyncAll() waited out Retry-After: 2, retried after {elapsed} ms");
    clear_faults().await;
    let found = server_rows("training_models", &format!("id=eq.{id}")).await;
    assert_eq!(found[0]["name"], "after 503");
    sync.destroy();
}

#[wasm_bindgen_test]
async fn a_refused_write_fails_alone_and_the_rest_of_its_batch_applies() {
    for mode in ["rest", "rpc"] {
        let sync = new_sync(options(mode, json!({})));
        let p = uid();
        let plan = format!("{p}-plan");
        queue(&sync, "training_plans", &plan, "upsert", json!({ "name": "plan" }), 0);
        sync_all(&sync).await;
        queue(&sync, "sessions", &format!("{p}-a"), "upsert", json!({ "name": "a", "plan_id": plan }), 2);
        // A foreign key to a plan that does not exist: a constraint violation, permanent.
        let missing = format!("{p}-nope");
        queue(&sync, "sessions", &format!("{p}-bad"), "upsert", json!({ "name": "bad", "plan_id": missing }), 2);
        queue(&sync, "sessions", &format!("{p}-c"), "upsert", json!({ "name": "c", "plan_id": plan }), 2);
        let summary = sync_all(&sync).await;
        assert_eq!(summary["confirmed"], 2, "{mode}: {summary}");
        let failed = to_json(&sync.failed_changes().unwrap());
        assert_eq!(failed.as_array().map(Vec::len), Some(1), "{mode}: {failed}");
        assert_eq!(failed[0]["id"], format!("{p}-bad"));
        assert_eq!(failed[0]["error"]["permanent"], true);
        assert_eq!(failed[0]["error"]["code"], "23503", "{mode}: {failed}");
        let found = server_rows("sessions", &format!("id=like.{p}-*")).await;
        assert_eq!(ids(&found), [format!("{p}-a"), format!("{p}-c")], "{mode}");
        // Discarding it empties the list; nothing else is touched.
        assert_eq!(sync.discard_failed(JsValue::UNDEFINED).unwrap(), 1);
        assert_eq!(to_json(&sync.failed_changes().unwrap()), json!([]));
        sync.destroy();
    }
}

/// `n` rows of exercises named "before" on the server, with ids under a fresh prefix, written by an instance of
/// their own.
async fn exercises_named_before(n: usize) -> Vec<String> {
    let seeder = new_sync(options("rest", json!({})));
    let p = uid();
    let ids: Vec<String> = (0..n).map(|i| format!("{p}-{i}")).collect();
    for id in &ids {
        queue(&seeder, "exercises", id, "upsert", json!({ "name": "before" }), 2);
    }
    assert_eq!(sync_all(&seeder).await["confirmed"], n);
    seeder.destroy();
    ids
}

/// Calls the method `name` of an `instrument()` probe.
fn probe_call(probe: &JsValue, name: &str) -> JsValue {
    let method: Function = Reflect::get(probe, &name.into()).unwrap().unchecked_into();
    method.call0(probe).unwrap()
}

async fn names(ids: &[String]) -> Vec<String> {
    let prefix = ids[0].rsplit_once('-').unwrap().0;
    let found = server_rows("exercises", &format!("id=like.{prefix}-*&order=id")).await;
    found.iter().map(|r| r["name"].as_str().unwrap_or_default().to_owned()).collect()
}

#[wasm_bindgen_test]
async fn rest_updates_of_distinct_rows_go_out_together_and_one_that_hangs_holds_up_none_of_the_others() {
    let sync = new_sync(options("rest", json!({})));
    let ids = exercises_named_before(4).await;
    // The first request to arrive is held for 2 s, then its connection is dropped (nothing written).
    fault(json!({ "hangNext": 1, "hangMs": 2000 })).await;
    for id in &ids {
        queue(&sync, "exercises", id, "update", json!({ "name": "after" }), 2);
    }
    // Counted from the server's stats: a read of the rows now could be the request that hangs.
    let written = |s: &Value| count(s, &["rowsWritten", "exercises"]);
    let before = written(&server_stats().await);
    let pending = sync.force_sync_all();
    let start = js_sys::Date::now();
    while written(&server_stats().await) < before + 3 {
        assert!(js_sys::Date::now() - start < 1500.0, "the other three updates wait for the one that hangs");
        pause_ms(20).await;
    }
    let summary = to_json(&JsFuture::from(pending).await.unwrap());
    clear_faults().await;
    assert_eq!((summary["confirmed"].as_u64(), summary["failed"].clone()), (Some(4), json!([])), "{summary}");
    assert_eq!(names(&ids).await, ["after"; 4]);
    // The dropped request went again, by us (a transient failure) or by Chromium itself (see below).
    assert!(stat(&sync, "retries") <= 1, "only the write whose request was dropped went again");
    sync.destroy();
}

#[wasm_bindgen_test]
async fn rest_a_503_among_updates_out_together_retries_what_it_stopped_and_keeps_what_the_others_wrote() {
    let sync = new_sync(options("rest", json!({})));
    let ids = exercises_named_before(6).await;
    let before = server_stats().await;
    fault(json!({ "failNext": { "count": 1, "status": 503 } })).await;
    for id in &ids {
        queue(&sync, "exercises", id, "update", json!({ "name": "after" }), 2);
    }
    let summary = sync_all(&sync).await;
    let after = server_stats().await;
    clear_faults().await;
    assert_eq!((summary["confirmed"].as_u64(), summary["failed"].clone()), (Some(6), json!([])), "{summary}");
    assert_eq!(names(&ids).await, ["after"; 6]);
    // Four PATCHes went out at once and one was refused; the three confirmed are not sent again, the two
    // that had not gone yet and the refused one are.
    let sent = |s: &Value| count(s, &["requests", "byTable", "exercises"]);
    assert_eq!(sent(&after) - sent(&before), 7, "{after}");
    assert_eq!(stat(&sync, "retries"), 3);
    sync.destroy();
}

#[wasm_bindgen_test]
async fn rest_updates_out_together_share_one_ask_for_a_token_and_one_after_a_401() {
    let ids = exercises_named_before(4).await;
    let options = options("rest", json!({}));
    let transport = Reflect::get(&options, &"transport".into()).unwrap();
    let get_token = Reflect::get(&transport, &"getAccessToken".into()).unwrap();
    let calls = || Reflect::get(&get_token, &"calls".into()).unwrap().as_f64().unwrap_or(0.0) as u32;
    let sync = new_sync(options);
    let update = |name: &str| {
        for id in &ids {
            queue(&sync, "exercises", id, "update", json!({ "name": name }), 2);
        }
    };
    // A first write: the instance learns whose queue it is and holds a token, from one ask (the queue's own
    // ask for its owner, which the request waits for).
    queue(&sync, "exercises", &ids[0], "update", json!({ "name": "zero" }), 2);
    assert_eq!(sync_all(&sync).await["confirmed"], 1);
    let asked = calls();
    assert_eq!(asked, 1, "one getAccessToken call for the owner and the first request");
    // No token held: the four PATCHes go out together and one ask serves them all.
    sync.set_access_token(JsValue::NULL).unwrap();
    update("first");
    assert_eq!(sync_all(&sync).await["confirmed"], 4);
    assert_eq!(calls(), asked + 1, "one getAccessToken call for four requests");
    // A token the server refuses: four 401s, one ask again.
    sync.set_access_token("not-a-valid-jwt".into()).unwrap();
    update("second");
    let summary = sync_all(&sync).await;
    assert_eq!((summary["confirmed"].as_u64(), summary["failed"].clone()), (Some(4), json!([])), "{summary}");
    assert_eq!(calls(), asked + 2, "one more call after the 401s");
    assert_eq!(names(&ids).await, ["second"; 4]);
    sync.destroy();
}

#[wasm_bindgen_test]
async fn commit_then_drop_neither_duplicates_nor_loses() {
    for mode in ["rpc", "rest"] {
        let sync = new_sync(options(mode, json!({})));
        let p = uid();
        let before = server_stats().await;
        fault(json!({ "commitThenDropNext": 1 })).await;
        // Inserts: a replay the server did not recognise would fail with a duplicate key.
        let op = if mode == "rpc" { "insert" } else { "upsert" };
        for n in 0..3 {
            queue(&sync, "exercises", &format!("{p}-{n}"), op, json!({ "name": format!("e{n}") }), 0);
        }
        let summary = sync_all(&sync).await;
        clear_faults().await;
        assert_eq!(summary["failed"], json!([]), "{mode}: {summary}");
        let found = server_rows("exercises", &format!("id=like.{p}-*")).await;
        let names: Vec<&str> = found.iter().filter_map(|r| r["name"].as_str()).collect();
        assert_eq!(names, ["e0", "e1", "e2"], "{mode}: {found:?}");
        // The write was sent again after the drop: by us (a transient failure) or by Chromium itself, which
        // resends a request whose reused keep-alive connection closes without an answer.
        let after = server_stats().await;
        let sent = |s: &Value| match mode {
            "rpc" => count(s, &["rpcCalls"]),
            _ => count(s, &["requests", "byTable", "exercises"]),
        };
        assert!(sent(&after) - sent(&before) >= 2, "{mode}: the dropped request was sent again");
        if mode == "rpc" {
            let writes = |s: &Value| count(s, &["rowsWritten", "exercises"]);
            assert_eq!(writes(&after) - writes(&before), 3, "rpc: the replay wrote nothing");
        }
        sync.destroy();
    }
}

#[wasm_bindgen_test]
async fn a_401_refreshes_the_token_once() {
    assert!(!TOKEN.is_empty(), "run through scripts/test-browser.sh, which mints RECORD_SYNC_TEST_TOKEN");
    let options =
        js(json!({ "transport": { "url": format!("{SERVER}/rest/v1"), "apiKey": ANON_KEY }, "storage": null }));
    let transport = Reflect::get(&options, &"transport".into()).unwrap();
    let get_token = token_source(TOKEN);
    set(&transport, "getAccessToken", &get_token);
    let sync = new_sync(options);
    sync.set_access_token("not-a-valid-jwt".into()).unwrap();
    let id = format!("{}-prefs", uid());
    queue(&sync, "user_preferences", &id, "upsert", json!({ "theme": "dark" }), 0);
    let summary = sync_all(&sync).await;
    assert_eq!(summary["confirmed"], 1, "{summary}");
    assert_eq!(Reflect::get(&get_token, &"calls".into()).unwrap().as_f64(), Some(1.0), "one refresh");
    assert_eq!(stat(&sync, "retries"), 0, "the refresh costs no attempt");
    let found = server_rows("user_preferences", &format!("id=eq.{id}")).await;
    assert_eq!(found[0]["user_id"], USER, "written as the token's user: {found:?}");
    sync.destroy();
}

#[wasm_bindgen_test]
async fn offline_holds_and_online_drains() {
    let sync = new_sync(options("rest", json!({})));
    let id = format!("{}-offline", uid());
    dispatch("offline");
    pause_ms(0).await;
    assert_eq!(stats(&sync)["isOnline"], false);
    queue(&sync, "exercises", &id, "upsert", json!({ "name": "written offline" }), 0);
    pause_ms(300).await;
    assert_eq!(stat(&sync, "requests"), 0, "nothing sent while offline");
    assert_eq!(stat(&sync, "pending"), 1);
    assert!(server_rows("exercises", &format!("id=eq.{id}")).await.is_empty());
    dispatch("online");
    wait_for("the drain", 2000, || stat(&sync, "successfulSyncs") == 1).await;
    assert_eq!(stats(&sync)["isOnline"], true);
    assert_eq!(server_rows("exercises", &format!("id=eq.{id}")).await.len(), 1);
    sync.destroy();
}

#[wasm_bindgen_test]
async fn a_custom_transport_works() {
    let transport = recording_transport(vec!["reject".into(), "malformed".into(), "error:b".into()]);
    let options = js(json!({ "maxRetries": 5, "transport": {}, "storage": null }));
    set(&options, "transport", &transport);
    let sync = new_sync(options);
    queue(&sync, "comments", "a", "upsert", json!({ "body": "A", "last_changed": "2026-01-01T00:00:00Z" }), 0);
    queue(&sync, "comments", "b", "insert", json!({ "body": "B" }), 0);
    queue(&sync, "comments", 7.0.to_string().as_str(), "delete", Value::Null, 0);
    let summary = sync_all(&sync).await;
    let batches = to_json(&Reflect::get(&transport, &"batches".into()).unwrap());
    // Rejected, malformed, then answered: three sends of the same batch.
    assert_eq!(batches.as_array().map(Vec::len), Some(3), "{batches}");
    let batch = &batches[2];
    assert!(batch["clientId"].as_str().is_some_and(|c| c.len() == 32), "{batch}");
    assert_eq!(batch["changes"][0]["op"], "upsert");
    assert_eq!(batch["changes"][0]["lastChanged"], "2026-01-01T00:00:00Z");
    assert_eq!(batch["changes"][1]["data"], json!({ "body": "B" }));
    assert_eq!(batch["changes"][2]["id"], "7");
    assert_eq!(batch["changes"][2].get("data"), None);
    assert_eq!(summary["confirmed"], 2, "{summary}");
    assert_eq!(summary["failed"][0]["id"], "b");
    assert_eq!(summary["failed"][0]["error"]["code"], "23514");
    assert_eq!(stat(&sync, "retries"), 6, "two failed sends of three writes");
    sync.destroy();
}

/// The engine reads what a custom `send` resolved to (its request's answer): what is not results keeps the
/// message it had, the writes stay unconfirmed and go again.
#[wasm_bindgen_test]
async fn a_custom_transports_bad_answers_keep_their_messages() {
    let send = Function::new_with_args(
        "batch",
        "this.calls = (this.calls || 0) + 1;
         if (this.calls === 1) return Promise.resolve({ ok: true });
         if (this.calls === 2) return Promise.resolve([{ seq: 'one', status: 7 }]);
         if (this.calls === 3) return Promise.reject(new Error('backend unreachable'));
         return Promise.resolve(batch.changes.map((c) => ({ seq: c.seq, status: 'applied' })));",
    );
    let transport = js(json!({}));
    set(&transport, "send", &send);
    let options = js(json!({ "maxRetries": 5, "transport": {}, "storage": null }));
    set(&options, "transport", &transport);
    let sync = new_sync(options);
    let calls = || Reflect::get(&transport, &"calls".into()).unwrap().as_f64().unwrap_or(0.0) as u32;
    let last_error = |sync: &RecordSync| stats(sync)["lastError"].as_str().unwrap_or_default().to_owned();
    queue(&sync, "comments", "c1", "upsert", json!({ "body": "A" }), 0);
    wait_for("the first send", 2_000, || calls() == 1 && !last_error(&sync).is_empty()).await;
    let shape = "transport.send must resolve to an array of { seq, status: \"applied\" | \"conflict\" | \"missing\" | \"error\", ... }";
    assert_eq!(last_error(&sync), format!("{shape}: got an object"));
    assert_eq!(stat(&sync, "successfulSyncs"), 0);
    let summary = sync_all(&sync).await;
    assert_eq!(summary["confirmed"], 1, "{summary}");
    assert_eq!(calls(), 4);
    assert_eq!(stat(&sync, "retries"), 3, "an object, an unreadable result, a rejection");
    sync.destroy();
}

#[wasm_bindgen_test]
async fn stats_is_the_same_object_until_something_changes_and_listeners_hear_once_per_tick() {
    let transport = recording_transport(vec![]);
    let options = js(json!({ "transport": {}, "syncIntervals": { "3": 60000 }, "storage": null }));
    set(&options, "transport", &transport);
    let sync = new_sync(options);
    let first = sync.stats().unwrap();
    assert!(first == sync.stats().unwrap(), "same object while nothing changed");
    let calls = js_sys::Array::new();
    let listener = Closure::<dyn FnMut(JsValue)>::new({
        let calls = calls.clone();
        move |stats: JsValue| {
            calls.push(&stats);
        }
    });
    let unsubscribe: Function = sync.subscribe(listener.as_ref().clone()).unwrap().unchecked_into();
    for n in 0..5 {
        queue(&sync, "comments", &format!("x{n}"), "upsert", json!({ "body": "x" }), 3);
    }
    pause_ms(0).await;
    assert_eq!(calls.length(), 1, "five queued changes, one notification");
    let seen = calls.get(0);
    assert!(seen == sync.stats().unwrap(), "the listener gets the current stats object");
    assert!(seen != first);
    unsubscribe.call0(&JsValue::NULL).unwrap();
    queue(&sync, "comments", "y", "upsert", json!({ "body": "y" }), 3);
    pause_ms(0).await;
    assert_eq!(calls.length(), 1, "no call after unsubscribing");
    sync.destroy();
    unsubscribe.call0(&JsValue::NULL).expect("unsubscribing twice, after destroy, is harmless");
    // And after the object itself is freed (what JS's `free()` or garbage collection does).
    let options = js(json!({ "transport": {}, "storage": null }));
    set(&options, "transport", &recording_transport(vec![]));
    let other = new_sync(options);
    let unsubscribe: Function = other.subscribe(listener.as_ref().clone()).unwrap().unchecked_into();
    drop(other);
    unsubscribe.call0(&JsValue::NULL).expect("unsubscribing after free is harmless");
}

/// The queue keeps its own copy of a row: the app changing its object afterwards changes nothing queued,
/// and neither does changing what `pendingChanges()` returned. Columns JSON leaves out are left out.
#[wasm_bindgen_test]
async fn a_queued_row_is_a_copy_of_what_the_app_passed() {
    let options = js(json!({ "transport": {}, "storage": null }));
    set(&options, "transport", &recording_transport(vec![]));
    let sync = new_sync(options);
    let data = js(json!({ "id": "r", "name": "first", "tags": ["a"] }));
    set(&data, "skip", &Function::new_no_args("return 1"));
    sync.queue_change("t".into(), "r".into(), "upsert".into(), data.clone(), 3.into()).unwrap();
    set(&data, "name", &"changed".into());
    set(&data, "added", &1.into());
    let pending = sync.pending_changes().unwrap();
    assert_eq!(to_json(&pending)[0]["data"], json!({ "id": "r", "name": "first", "tags": ["a"] }));
    let shown = Reflect::get(&Reflect::get(&pending, &0.into()).unwrap(), &"data".into()).unwrap();
    set(&shown, "name", &"edited view".into());
    queue(&sync, "t", "r", "update", json!({ "extra": true }), 3);
    assert_eq!(
        to_json(&sync.pending_changes().unwrap())[0]["data"],
        json!({ "id": "r", "name": "first", "tags": ["a"], "extra": true })
    );
    // A Date is what JSON makes of it: last_changed as a Date is its ISO string.
    let dated = Function::new_no_args("return { last_changed: new Date(Date.UTC(2026, 10, 25, 10)) };")
        .call0(&JsValue::NULL)
        .unwrap();
    sync.queue_change("t".into(), "d".into(), "upsert".into(), dated, 3.into()).unwrap();
    let pending = to_json(&sync.pending_changes().unwrap());
    assert_eq!(pending[1]["lastChanged"], json!("2026-11-25T10:00:00.000Z"), "{pending}");
    sync.destroy();
}
#[wasm_bindgen_test]
async fn every_bad_argument_throws_a_type_error_naming_it_and_leaves_the_queue_alone() {
    let options = js(json!({ "transport": {}, "storage": null }));
    set(&options, "transport", &recording_transport(vec![]));
    let sync = new_sync(options);
    queue(&sync, "comments", "kept", "insert", json!({ "body": "kept" }), 3);
    let before = (stringify(&sync.pending_changes().unwrap()), stat(&sync, "totalChanges"));
    let date = js_sys::Date::new_0();
    let instance = js_sys::Map::new();
    // Values only JS can make: cycles, BigInts, getters that throw.
    let made = |body: &str| Function::new_no_args(body).call0(&JsValue::NULL).unwrap();
    let none = || JsValue::UNDEFINED;
    const SERIAL: &str = "data must be JSON-serializable";
    let cases: Vec<(JsValue, JsValue, JsValue, JsValue, JsValue, &str)> = vec![
        (
            JsValue::from(5),
            "1".into(),
            "upsert".into(),
            js(json!({"a": 1})),
            JsValue::UNDEFINED,
            "table must be a string",
        ),
        ("".into(), "1".into(), "upsert".into(), js(json!({"a": 1})), JsValue::UNDEFINED, "table must be"),
        ("t".into(), JsValue::NULL, "upsert".into(), js(json!({"a": 1})), JsValue::UNDEFINED, "id must be"),
        ("t".into(), JsValue::from(f64::NAN), "upsert".into(), js(json!({"a": 1})), JsValue::UNDEFINED, "id must be"),
        ("t".into(), JsValue::from(true), "upsert".into(), js(json!({"a": 1})), JsValue::UNDEFINED, "id must be"),
        ("t".into(), "".into(), "upsert".into(), js(json!({"a": 1})), JsValue::UNDEFINED, "id must be"),
        ("t".into(), "1".into(), "merge".into(), js(json!({"a": 1})), JsValue::UNDEFINED, "op must be"),
        ("t".into(), "1".into(), JsValue::UNDEFINED, js(json!({"a": 1})), JsValue::UNDEFINED, "op must be"),
        ("t".into(), "1".into(), "upsert".into(), js(json!([1, 2])), JsValue::UNDEFINED, "data must be a plain object"),
        ("t".into(), "1".into(), "upsert".into(), date.into(), JsValue::UNDEFINED, "data must be a plain object"),
        ("t".into(), "1".into(), "upsert".into(), instance.into(), JsValue::UNDEFINED, "data must be a plain object"),
        ("t".into(), "1".into(), "upsert".into(), "text".into(), JsValue::UNDEFINED, "data must be a plain object"),
        ("t".into(), "1".into(), "insert".into(), JsValue::NULL, JsValue::UNDEFINED, "data is required"),
        (
            "t".into(),
            "1".into(),
            "update".into(),
            js(json!({})),
            JsValue::UNDEFINED,
            "data needs at least one column for an update",
        ),
        ("t".into(), "1".into(), "upsert".into(), js(json!({"a": 1})), JsValue::from(4), "priority must be"),
        ("t".into(), "1".into(), "upsert".into(), js(json!({"a": 1})), JsValue::from(1.5), "priority must be"),
        ("t".into(), "1".into(), "upsert".into(), js(json!({"a": 1})), "HIGH".into(), "priority must be"),
        ("t".into(), "1".into(), "upsert".into(), made("const o = { a: 1 }; o.self = o; return o;"), none(), SERIAL),
        ("t".into(), "1".into(), "upsert".into(), made("const o = { a: {} }; o.a.o = o; return o;"), none(), SERIAL),
        ("t".into(), "1".into(), "upsert".into(), made("return { a: 1n };"), none(), SERIAL),
        ("t".into(), "1".into(), "upsert".into(), made("return { a: { b: [2n] } };"), none(), SERIAL),
        (
            "t".into(),
            "1".into(),
            "upsert".into(),
            made("return { get a() { throw new Error('no'); } };"),
            none(),
            SERIAL,
        ),
        ("t".into(), "1".into(), "upsert".into(), made("return { a: { toJSON() { throw 1; } } };"), none(), SERIAL),
        (
            "t".into(),
            "1".into(),
            "upsert".into(),
            made("return { [''.padEnd(64, 'c')]: 1 };"),
            none(),
            "data has an invalid",
        ),
        ("t".into(), "1".into(), "upsert".into(), made("return { ['\\0']: 1 };"), none(), "data has an invalid"),
        // A lone surrogate would come out as U+FFFD: "k\ud800" and "k\udbff" would be one record.
        (
            "t".into(),
            made("return 'k\\ud800';"),
            "upsert".into(),
            made("return { a: 1 };"),
            none(),
            "id must be well-formed",
        ),
        (
            "t".into(),
            "1".into(),
            "upsert".into(),
            made("return new Proxy({}, { ownKeys() { throw 1; } });"),
            none(),
            SERIAL,
        ),
    ];
    for (table, id, op, data, priority, expected) in cases {
        let error = sync.queue_change(table, id, op, data, priority).expect_err(expected);
        assert!(error.is_instance_of::<js_sys::TypeError>(), "{expected}: {}", error_text(&error));
        let message = error_text(&error);
        assert!(message.contains(&format!("queueChange: {expected}")), "expected {expected:?} in {message:?}");
    }
    // Inserting a record the queue holds as existing is a state error, not a TypeError.
    let error = sync
        .queue_change("comments".into(), "kept".into(), "insert".into(), js(json!({"body": 1})), JsValue::UNDEFINED)
        .unwrap_err();
    assert!(
        !error.is_instance_of::<js_sys::TypeError>() && error.is_instance_of::<js_sys::Error>(),
        "{}",
        error_text(&error)
    );
    assert_eq!((stringify(&sync.pending_changes().unwrap()), stat(&sync, "totalChanges")), before, "queue untouched");
    // A U+FFFD of its own is text like any other.
    let replacement = sync.queue_change("t".into(), "k\u{FFFD}".into(), "upsert".into(), js(json!({"a": 1})), none());
    assert!(replacement.is_ok(), "{:?}", replacement.err().map(|e| error_text(&e)));
    // Other methods.
    assert!(sync.retry_failed("x".into()).unwrap_err().is_instance_of::<js_sys::TypeError>());
    assert!(sync.subscribe(JsValue::from(1)).unwrap_err().is_instance_of::<js_sys::TypeError>());
    assert!(sync.set_access_token(JsValue::from(1)).unwrap_err().is_instance_of::<js_sys::TypeError>());
    // fetch would throw on it, which would look like a network error retried forever.
    let error = sync.set_access_token("a.b.c\r\nX-Other: 1".into()).unwrap_err();
    assert!(error.is_instance_of::<js_sys::TypeError>(), "{}", error_text(&error));
    assert!(!error_text(&error).contains("X-Other"), "the message does not echo the token: {}", error_text(&error));
    assert!(sync.on_conflict(JsValue::from("f")).unwrap_err().is_instance_of::<js_sys::TypeError>());
    sync.destroy();

    // Options.
    let url = format!("{SERVER}/rest/v1");
    let bad_options = [
        (JsValue::NULL, "options must be an object"),
        (js(json!({})), "options.transport must be"),
        (js(json!({ "transport": { "url": 5, "apiKey": "k" } })), "options.transport.url must be"),
        (js(json!({ "transport": { "url": url, "apiKey": "" } })), "options.transport.apiKey must be"),
        (
            js(json!({ "transport": { "url": url, "apiKey": "k", "mode": "graphql" } })),
            "options.transport.mode must be",
        ),
        (
            js(json!({ "transport": { "url": url, "apiKey": "k", "timeoutMs": -1 } })),
            "options.transport.timeoutMs must be",
        ),
        (
            js(json!({ "transport": { "url": url, "apiKey": "k", "getAccessToken": "t" } })),
            "options.transport.getAccessToken must be",
        ),
        (
            js(json!({ "transport": { "url": url, "apiKey": "k", "primaryKey": {} } })),
            "options.transport.primaryKey is not an option",
        ),
        (js(json!({ "transport": { "send": 1 } })), "options.transport.send must be a function"),
        (
            js(json!({ "transport": { "url": url, "apiKey": "k" }, "batchSize": 0 })),
            "options.batchSize must be an integer from 1 to 1000",
        ),
        (
            js(json!({ "transport": { "url": url, "apiKey": "k" }, "batchSize": 2.5 })),
            "options.batchSize must be an integer from 1 to 1000",
        ),
        (js(json!({ "transport": { "url": url, "apiKey": "k" }, "maxRetries": -1 })), "options.maxRetries must be"),
        (
            js(json!({ "transport": { "url": url, "apiKey": "k" }, "syncIntervals": { "5": 1 } })),
            "options.syncIntervals has",
        ),
        (
            js(json!({ "transport": { "url": url, "apiKey": "k" }, "syncIntervals": { "1": "soon" } })),
            "options.syncIntervals[1] must be",
        ),
        (
            js(json!({ "transport": { "url": url, "apiKey": "k" }, "tables": { "a": { "parents": "b" } } })),
            "options.tables.a.parents must be",
        ),
        (
            js(
                json!({ "transport": { "url": url, "apiKey": "k" }, "tables": { "a": { "parents": ["b"] }, "b": { "parents": ["a"] } } }),
            ),
            "options.tables parents of",
        ),
        (
            js(json!({ "transport": { "url": url, "apiKey": "k" }, "batchsize": 5 })),
            "options.batchsize is not an option",
        ),
        (
            js(json!({ "transport": { "url": url, "apiKey": "k", "tokenTimeoutMs": 0 } })),
            "options.transport.tokenTimeoutMs must be",
        ),
        (
            js(json!({ "transport": { "url": url, "apiKey": "k", "allowAnonymous": "yes" } })),
            "options.transport.allowAnonymous must be a boolean",
        ),
        (js(json!({ "transport": { "send": "f" } })), "options.transport.send must be a function"),
        (
            js(json!({ "transport": { "url": url, "apiKey": "k" }, "tables": { "a": { "onConflict": "mine" } } })),
            "options.tables.a.onConflict must be",
        ),
        (
            js(json!({ "transport": { "url": url, "apiKey": "k" }, "tables": { "a": { "merge": "x" } } })),
            "options.tables.a.merge is not an option",
        ),
    ];
    // A custom transport's timeout is checked too.
    let custom = js(json!({ "transport": {}, "storage": null }));
    let transport = recording_transport(vec![]);
    set(&transport, "timeoutMs", &JsValue::from(-5));
    set(&custom, "transport", &transport);
    let error = RecordSync::new(custom).err().expect("a negative timeoutMs is refused");
    assert!(error_text(&error).contains("options.transport.timeoutMs must be"), "{}", error_text(&error));
    for (options, expected) in bad_options {
        let error = match RecordSync::new(options) {
            Ok(_) => panic!("accepted options that should fail with {expected:?}"),
            Err(e) => e,
        };
        assert!(error.is_instance_of::<js_sys::TypeError>(), "{expected}: {}", error_text(&error));
        let message = error_text(&error);
        assert!(message.contains(expected), "expected {expected:?} in {message:?}");
    }
    // An option a getter or proxy trap fails to read is a TypeError naming it, not an absent option that takes
    // its default (a throwing getter for syncIntervals was accepted) nor the app's own exception passed through.
    let unreadable = [
        (
            "return { transport: { send: async () => [] }, storage: null, get syncIntervals() { throw new Error('no'); } };",
            "options.syncIntervals could not be read: no",
        ),
        (
            "return { transport: { send: async () => [] }, storage: null, tables: new Proxy({}, { ownKeys() { throw 1; } }) };",
            "options.tables could not be read: number 1",
        ),
        (
            "return { transport: { send: async () => [] }, storage: null, tables: { a: { get parents() { throw new TypeError('p'); } } } };",
            "options.tables.a.parents could not be read: TypeError: p",
        ),
    ];
    for (body, expected) in unreadable {
        let options = Function::new_no_args(body).call0(&JsValue::NULL).unwrap();
        let error = RecordSync::new(options).err().unwrap_or_else(|| panic!("accepted: {expected}"));
        assert!(error.is_instance_of::<js_sys::TypeError>(), "{expected}: {}", error_text(&error));
        assert_eq!(error_text(&error), format!("TypeError: RecordSync: {expected}"));
    }
}

#[wasm_bindgen_test]
async fn destroy_leaves_no_timer_or_request_behind() {
    fault(json!({ "hangNext": 1 })).await;
    let probe = instrument();
    let call = |name: &str| probe_call(&probe, name).as_f64().unwrap();
    let sync = new_sync(options("rest", json!({ "syncIntervals": { "3": 60000 } })));
    let p = uid();
    queue(&sync, "exercises", &format!("{p}-hang"), "upsert", json!({ "name": "hangs" }), 0);
    queue(&sync, "exercises", &format!("{p}-later"), "upsert", json!({ "name": "a minute away" }), 3);
    let pending = sync.force_sync_all();
    wait_for("the request to hang", 2000, || stats(&sync)["isProcessing"] == true).await;
    assert!(call("liveTimers") >= 1.0, "a request timeout is armed");
    sync.destroy();
    assert_eq!(call("aborted"), 1.0, "the hanging request was aborted");
    let outcome = JsFuture::from(pending).await;
    assert!(outcome.is_err(), "forceSyncAll rejects on destroy");
    pause_ms(50).await;
    assert_eq!(call("liveTimers"), 0.0, "no timer left");
    let requests = Reflect::get(&probe, &"requests".into()).unwrap();
    assert_eq!(js_sys::Array::from(&requests).length(), 1, "no request after destroy");
    probe_call(&probe, "restore");
    clear_faults().await;
    // Every later call throws; destroy again is harmless.
    let error = sync.stats().unwrap_err();
    assert!(error_text(&error).contains("destroyed"), "{}", error_text(&error));
    assert!(sync
        .queue_change("comments".into(), "x".into(), "upsert".into(), js(json!({"body": 1})), JsValue::UNDEFINED)
        .is_err());
    assert!(JsFuture::from(sync.force_sync_all()).await.is_err());
    sync.destroy();
}

#[wasm_bindgen_test]
async fn destroy_aborts_every_patch_out_together() {
    let ids = exercises_named_before(4).await;
    fault(json!({ "hangNext": 4 })).await;
    let probe = instrument();
    let call = |name: &str| probe_call(&probe, name).as_f64().unwrap();
    let sync = new_sync(options("rest", json!({})));
    sync.set_access_token(TOKEN.into()).unwrap();
    for id in &ids {
        queue(&sync, "exercises", id, "update", json!({ "name": "never" }), 0);
    }
    let requests = || js_sys::Array::from(&Reflect::get(&probe, &"requests".into()).unwrap()).length();
    wait_for("four PATCHes out", 2000, || requests() == 4).await;
    sync.destroy();
    assert_eq!(call("aborted"), 4.0, "every request out was aborted");
    pause_ms(50).await;
    assert_eq!(call("liveTimers"), 0.0, "no timer left");
    probe_call(&probe, "restore");
    clear_faults().await;
    assert_eq!(names(&ids).await, ["before"; 4]);
}

#[wasm_bindgen_test]
async fn callbacks_may_call_back_into_the_instance() {
    use std::cell::RefCell;
    use std::rc::Rc;
    let transport = recording_transport(vec![]);
    let options = js(json!({ "transport": {}, "storage": null }));
    set(&options, "transport", &transport);
    let sync = Rc::new(new_sync(options));
    let errors = Rc::new(RefCell::new(Vec::<String>::new()));
    let listener = Closure::<dyn FnMut(JsValue)>::new({
        let (sync, errors) = (sync.clone(), errors.clone());
        move |_stats: JsValue| {
            // From inside a notification: read everything and queue a follow-up once.
            let results = [
                sync.stats().map(drop),
                sync.pending_changes().map(drop),
                sync.failed_changes().map(drop),
                if pending_ids(&sync).is_empty() && stat(&sync, "totalChanges") == 1 {
                    sync.queue_change(
                        "comments".into(),
                        "follow-up".into(),
                        "upsert".into(),
                        js(json!({ "body": "queued from a listener" })),
                        JsValue::from(0),
                    )
                    .map(drop)
                } else {
                    Ok(())
                },
            ];
            errors.borrow_mut().extend(results.into_iter().filter_map(|r| r.err()).map(|e| error_text(&e)));
        }
    });
    sync.subscribe(listener.as_ref().clone()).unwrap();
    queue(&sync, "comments", "first", "upsert", json!({ "body": "first" }), 0);
    wait_for("both writes", 2000, || stat(&sync, "successfulSyncs") == 2).await;
    assert_eq!(*errors.borrow(), Vec::<String>::new());
    let batches = to_json(&Reflect::get(&transport, &"batches".into()).unwrap());
    let sent: Vec<&str> = batches.as_array().unwrap().iter().filter_map(|b| b["changes"][0]["id"].as_str()).collect();
    assert_eq!(sent, ["first", "follow-up"]);
    sync.destroy();
}

// ------------------------------------------------------------------------- every "synced" is true (issue 8)

const OTHER_USER: &str = "00000000-0000-4000-8000-0000000000ff";

/// Writes a row as the server's owner would (service key, row-level security bypassed).
async fn seed(table: &str, row: Value) {
    service_rest(SERVER, "POST", &format!("/{table}"), js(row))
        .await
        .unwrap_or_else(|e| panic!("seed: {}", error_text(&e)));
}

async fn exercise(id: &str) -> Option<Value> {
    server_rows("exercises", &format!("id=eq.{id}&select=*")).await.into_iter().next()
}

fn listen(sync: &RecordSync) -> Function {
    let recorder = conflict_recorder();
    sync.on_conflict(recorder.clone().into()).unwrap();
    recorder
}

fn heard(recorder: &Function) -> Vec<Value> {
    to_json(&Reflect::get(recorder, &"heard".into()).unwrap()).as_array().cloned().unwrap_or_default()
}

#[wasm_bindgen_test]
async fn no_token_no_send_in_both_modes_and_set_access_token_resumes() {
    for mode in ["rest", "rpc"] {
        for kind in ["throws", "rejects", "null", "empty", "newline", "never"] {
            let id = format!("{}-token-{kind}", uid());
            seed("exercises", json!({ "id": id, "name": "before", "user_id": USER })).await;
            let options = options(mode, json!({}));
            let transport = Reflect::get(&options, &"transport".into()).unwrap();
            set(&transport, "getAccessToken", &failing_token(kind));
            set(&transport, "tokenTimeoutMs", &200.into());
            let sync = new_sync(options);
            queue(&sync, "exercises", &id, "update", json!({ "name": "after" }), 0);
            let done = sync.force_sync_all();
            wait_for("needsAuth", 3000, || stats(&sync)["needsAuth"] == true).await;
            let s = stats(&sync);
            let why = format!("{mode}/{kind}: {s}");
            assert_eq!((s["successfulSyncs"].as_u64(), s["requests"].as_u64()), (Some(0), Some(0)), "{why}");
            assert_eq!((s["pending"].as_u64(), s["retries"].as_u64()), (Some(1), Some(0)), "{why}");
            assert!(s["lastError"].as_str().is_some_and(|e| e.contains("getAccessToken")), "{why}");
            assert_eq!(sync.pending_changes().map(|p| to_json(&p)[0]["attempts"].clone()).unwrap(), 0, "{why}");
            assert_eq!(exercise(&id).await.unwrap()["name"], "before", "{why}: the server is unchanged");
            sync.set_access_token(TOKEN.into()).unwrap();
            let summary = to_json(&JsFuture::from(done).await.unwrap());
            assert_eq!(summary["confirmed"], 1, "{why}: {summary}");
            assert_eq!(stats(&sync)["needsAuth"], false, "{why}");
            assert_eq!(exercise(&id).await.unwrap()["name"], "after", "{why}");
            sync.destroy();
        }
    }
}

#[wasm_bindgen_test]
async fn a_later_successful_get_access_token_resumes_and_allow_anonymous_sends_with_the_api_key() {
    let id = format!("{}-token-later", uid());
    seed("exercises", json!({ "id": id, "name": "before", "user_id": USER })).await;
    // Fails twice (the ask at construction, which fixes the queue's owner, and the first send's), then gives
    // the token: asked again on forceSyncAll().
    let calls = std::rc::Rc::new(std::cell::Cell::new(0));
    let counter = calls.clone();
    let get = Closure::<dyn FnMut() -> JsValue>::new(move || {
        counter.set(counter.get() + 1);
        if counter.get() <= 2 {
            JsValue::NULL
        } else {
            TOKEN.into()
        }
    });
    let first = options("rest", json!({}));
    let transport = Reflect::get(&first, &"transport".into()).unwrap();
    set(&transport, "getAccessToken", get.as_ref());
    let sync = new_sync(first);
    queue(&sync, "exercises", &id, "update", json!({ "name": "after" }), 0);
    wait_for("needsAuth", 2000, || stats(&sync)["needsAuth"] == true).await;
    let summary = sync_all(&sync).await;
    assert_eq!(summary["confirmed"], 1, "{summary}");
    assert!(calls.get() >= 3);
    assert_eq!(exercise(&id).await.unwrap()["name"], "after");
    sync.destroy();

    // allowAnonymous: the API key goes out, row-level security hides the row, and that is not "synced" either.
    let options = options("rest", json!({}));
    let transport = Reflect::get(&options, &"transport".into()).unwrap();
    set(&transport, "getAccessToken", &failing_token("null"));
    set(&transport, "allowAnonymous", &true.into());
    let sync = new_sync(options);
    queue(&sync, "exercises", &id, "update", json!({ "name": "anon" }), 0);
    let summary = sync_all(&sync).await;
    assert_eq!((summary["confirmed"].as_u64(), summary["conflicts"].as_u64()), (Some(0), Some(1)), "{summary}");
    assert_eq!(stats(&sync)["needsAuth"], false);
    assert_eq!(exercise(&id).await.unwrap()["name"], "after");
    sync.destroy();

    // The same with a token source that answers late: the request waits for the queue's own first ask, and its
    // failure means the API key here too.
    let late_options = self::options("rest", json!({}));
    let transport = Reflect::get(&late_options, &"transport".into()).unwrap();
    let late = Function::new_no_args("return new Promise((resolve) => setTimeout(() => resolve(null), 100));");
    set(&transport, "getAccessToken", &late);
    set(&transport, "allowAnonymous", &true.into());
    let sync = new_sync(late_options);
    queue(&sync, "exercises", &id, "update", json!({ "name": "anon" }), 0);
    // Never a wait for a token: the ask's failure means the API key.
    let start = js_sys::Date::now();
    while stat(&sync, "conflicts") == 0 {
        assert_eq!(stats(&sync)["needsAuth"], false, "{}", stats(&sync));
        assert!(js_sys::Date::now() - start < 3000.0, "the write went nowhere: {}", stats(&sync));
        pause_ms(5).await;
    }
    assert_eq!(stat(&sync, "successfulSyncs"), 0);
    sync.destroy();
}

#[wasm_bindgen_test]
async fn an_api_key_the_server_refuses_waits_for_a_user_and_costs_no_attempt() {
    // A queue that is nobody's goes with the API key; a server that wants a user answers 401 (rpc: the sync
    // function's refusal of anonymous callers; rest: row-level security). That is a wait for a sign-in, not a
    // failure to retry until the write lands on the failed list.
    for mode in ["rest", "rpc"] {
        let id = format!("{}-{mode}-anon", uid());
        let options = options(mode, json!({ "maxRetries": 1 }));
        let transport = Reflect::get(&options, &"transport".into()).unwrap();
        Reflect::delete_property(&transport.into(), &"getAccessToken".into()).unwrap();
        let sync = new_sync(options);
        queue(&sync, "user_preferences", &id, "upsert", json!({ "theme": "dark" }), 0);
        let done = sync.force_sync_all();
        wait_for("needsAuth", 3000, || stats(&sync)["needsAuth"] == true).await;
        pause_ms(1500).await;
        let s = stats(&sync);
        let why = format!("{mode}: {s}");
        assert_eq!(
            (s["pending"].as_u64(), s["retries"].as_u64(), s["failedSyncs"].as_u64()),
            (Some(1), Some(0), Some(0)),
            "{why}"
        );
        assert!(s["lastError"].as_str().is_some_and(|e| e.contains("refused the API key")), "{why}");
        assert_eq!(sync.pending_changes().map(|p| to_json(&p)[0]["attempts"].clone()).unwrap(), 0, "{why}");
        assert_eq!(to_json(&sync.failed_changes().unwrap()), json!([]), "{why}");
        sync.set_access_token(TOKEN.into()).unwrap();
        let summary = to_json(&JsFuture::from(done).await.unwrap());
        assert_eq!(summary["confirmed"], 1, "{why}: {summary}");
        assert_eq!(stats(&sync)["needsAuth"], false, "{why}");
        let found = server_rows("user_preferences", &format!("id=eq.{id}")).await;
        assert_eq!(found[0]["user_id"], USER, "{why}: written as the token's user: {found:?}");
        sync.destroy();
    }
    // The token comes while the API key's request is out: its 401 is answered by sending again with that token,
    // not by a wait that only another setAccessToken would end.
    let id = format!("{}-anon-late", uid());
    let options = options("rpc", json!({}));
    let transport = Reflect::get(&options, &"transport".into()).unwrap();
    Reflect::delete_property(&transport.into(), &"getAccessToken".into()).unwrap();
    let sync = new_sync(options);
    fault(json!({ "latencyMs": 600 })).await;
    queue(&sync, "user_preferences", &id, "upsert", json!({ "theme": "dark" }), 0);
    pause_ms(200).await;
    sync.set_access_token(TOKEN.into()).unwrap();
    wait_for("the resend's confirmation", 5000, || stat(&sync, "successfulSyncs") == 1).await;
    clear_faults().await;
    assert_eq!((stats(&sync)["needsAuth"].clone(), stat(&sync, "retries")), (json!(false), 0));
    sync.destroy();
}

#[wasm_bindgen_test]
async fn a_token_set_while_an_ask_is_out_outlives_that_asks_timeout() {
    let id = format!("{}-token-race", uid());
    seed("exercises", json!({ "id": id, "name": "before", "user_id": USER })).await;
    let options = options("rest", json!({}));
    let transport = Reflect::get(&options, &"transport".into()).unwrap();
    set(&transport, "getAccessToken", &failing_token("never"));
    set(&transport, "tokenTimeoutMs", &500.into());
    let sync = new_sync(options);
    queue(&sync, "exercises", &id, "update", json!({ "name": "first" }), 0);
    wait_for("needsAuth", 3000, || stats(&sync)["needsAuth"] == true).await;
    // forceSyncAll() asks again at once; the token comes from elsewhere while that ask hangs.
    let done = sync.force_sync_all();
    sync.set_access_token(TOKEN.into()).unwrap();
    assert_eq!(to_json(&JsFuture::from(done).await.unwrap())["confirmed"], 1);
    // The hanging ask times out now: its failure must not take the token back.
    pause_ms(800).await;
    queue(&sync, "exercises", &id, "update", json!({ "name": "second" }), 0);
    let summary = sync_all(&sync).await;
    assert_eq!(summary["confirmed"], 1, "{summary}: {}", stats(&sync));
    assert_eq!(stats(&sync)["needsAuth"], false);
    assert_eq!(exercise(&id).await.unwrap()["name"], "second");
    sync.destroy();
}

#[wasm_bindgen_test]
async fn an_update_of_a_deleted_or_hidden_row_is_never_applied_and_the_app_is_told() {
    for mode in ["rest", "rpc"] {
        let gone = format!("{}-gone", uid());
        let theirs = format!("{}-theirs", uid());
        seed("exercises", json!({ "id": gone, "name": "x", "user_id": USER })).await;
        service_rest(SERVER, "DELETE", &format!("/exercises?id=eq.{gone}"), JsValue::UNDEFINED).await.unwrap();
        seed("exercises", json!({ "id": theirs, "name": "theirs", "user_id": OTHER_USER })).await;
        let sync = new_sync(options(mode, json!({})));
        let recorder = listen(&sync);
        queue(&sync, "exercises", &gone, "update", json!({ "name": "mine" }), 0);
        queue(&sync, "exercises", &theirs, "update", json!({ "name": "mine" }), 0);
        let summary = sync_all(&sync).await;
        assert_eq!(
            (summary["confirmed"].as_u64(), summary["conflicts"].as_u64()),
            (Some(0), Some(2)),
            "{mode}: {summary}"
        );
        assert_eq!(stat(&sync, "successfulSyncs"), 0, "{mode}");
        let heard = heard(&recorder);
        assert_eq!(heard.len(), 2, "{mode}: {heard:?}");
        for conflict in &heard {
            assert_eq!(
                (&conflict["reason"], &conflict["serverRow"]),
                (&json!("missing"), &Value::Null),
                "{mode}: {conflict}"
            );
            assert_eq!(conflict["resolution"], "serverWins", "{mode}");
            assert_eq!(conflict["data"]["name"], "mine", "{mode}");
        }
        let listed = to_json(&sync.conflicts().unwrap());
        assert_eq!(listed[0]["id"], theirs.as_str(), "{mode}: most recent first: {listed}");
        assert!(exercise(&gone).await.is_none(), "{mode}: not recreated");
        let stored = service_rest(SERVER, "GET", &format!("/exercises?id=eq.{theirs}&select=name"), JsValue::UNDEFINED)
            .await
            .unwrap();
        assert_eq!(to_json(&stored)[0]["name"], "theirs", "{mode}: another user's row untouched");
        sync.clear_conflicts().unwrap();
        assert_eq!(to_json(&sync.conflicts().unwrap()), json!([]));
        sync.destroy();
    }
}

#[wasm_bindgen_test]
async fn a_2xx_html_page_or_a_redirect_is_retried_not_confirmed() {
    for mode in ["rest", "rpc"] {
        for fault_kind in ["htmlNext", "redirectNext"] {
            let id = format!("{}-html", uid());
            fault(json!({ fault_kind: 1, "paths": "/rest/v1/" })).await;
            let sync = new_sync(options(mode, json!({})));
            queue(&sync, "exercises", &id, "upsert", json!({ "id": id, "name": "n" }), 0);
            wait_for("the first answer", 3000, || stat(&sync, "retries") == 1).await;
            assert_eq!(stat(&sync, "successfulSyncs"), 0, "{mode}/{fault_kind}: not confirmed");
            assert!(exercise(&id).await.is_none(), "{mode}/{fault_kind}: the portal did nothing");
            let summary = sync_all(&sync).await;
            assert_eq!(summary["confirmed"], 1, "{mode}/{fault_kind}: {summary}");
            assert_eq!(exercise(&id).await.unwrap()["name"], "n");
            clear_faults().await;
            sync.destroy();
        }
    }
}

/// Bodies reach the wasm as bytes; one that is not plain UTF-8 (here a byte order mark before the answer) must
/// still read as `Response.text()` reads it, not as a 2xx that is not the answer.
#[wasm_bindgen_test]
async fn an_answer_behind_a_byte_order_mark_is_read_as_the_answer() {
    for mode in ["rest", "rpc"] {
        let id = format!("{}-bom", uid());
        fault(json!({ "bomNext": 1, "paths": "/rest/v1/" })).await;
        let sync = new_sync(options(mode, json!({})));
        queue(&sync, "exercises", &id, "upsert", json!({ "id": id, "name": "n" }), 0);
        let summary = sync_all(&sync).await;
        assert_eq!(summary["confirmed"], 1, "{mode}: {summary}");
        assert_eq!(stat(&sync, "retries"), 0, "{mode}: confirmed by the first answer");
        assert_eq!(exercise(&id).await.unwrap()["name"], "n");
        clear_faults().await;
        sync.destroy();
    }
}

#[wasm_bindgen_test]
async fn a_stale_write_against_a_newer_row_is_a_conflict_with_the_server_row_in_both_modes() {
    for mode in ["rest", "rpc"] {
        for op in ["update", "upsert", "delete"] {
            let id = format!("{}-lww-{op}", uid());
            seed(
                "exercises",
                json!({ "id": id, "name": "newer", "user_id": USER, "last_changed": "2030-01-01T00:00:00Z" }),
            )
            .await;
            let sync = new_sync(options(mode, json!({})));
            let recorder = listen(&sync);
            let data = json!({ "id": id, "name": "stale", "last_changed": "2026-01-01T00:00:00Z" });
            queue(&sync, "exercises", &id, op, data, 0);
            let summary = sync_all(&sync).await;
            let why = format!("{mode}/{op}: {summary}");
            assert_eq!((summary["confirmed"].as_u64(), summary["conflicts"].as_u64()), (Some(0), Some(1)), "{why}");
            let conflict = &heard(&recorder)[0];
            assert_eq!(conflict["reason"], "newer", "{why}");
            assert_eq!(conflict["serverRow"]["name"], "newer", "{why}: {conflict}");
            assert_eq!(exercise(&id).await.unwrap()["name"], "newer", "{why}: the newer row stands");
            sync.destroy();
        }
    }
}

#[wasm_bindgen_test]
async fn each_conflict_strategy_against_the_dev_server() {
    for mode in ["rest", "rpc"] {
        // clientWins: sent again without the condition.
        let id = format!("{}-client", uid());
        seed(
            "exercises",
            json!({ "id": id, "name": "server", "user_id": USER, "last_changed": "2030-01-01T00:00:00Z" }),
        )
        .await;
        let sync = new_sync(options(mode, json!({ "tables": { "exercises": { "onConflict": "clientWins" } } })));
        queue(
            &sync,
            "exercises",
            &id,
            "update",
            json!({ "name": "client", "last_changed": "2026-01-01T00:00:00Z" }),
            0,
        );
        let summary = sync_all(&sync).await;
        assert_eq!(
            (summary["confirmed"].as_u64(), summary["conflicts"].as_u64()),
            (Some(1), Some(1)),
            "{mode}: {summary}"
        );
        assert_eq!(to_json(&sync.conflicts().unwrap())[0]["resolution"], "resent");
        assert_eq!(exercise(&id).await.unwrap()["name"], "client", "{mode}");
        // ... but a patch cannot recreate a row: that one goes to the failed list.
        let gone = format!("{}-client-gone", uid());
        queue(&sync, "exercises", &gone, "update", json!({ "name": "client" }), 0);
        let summary = sync_all(&sync).await;
        assert_eq!(summary["failed"][0]["error"]["code"], "missing", "{mode}: {summary}");
        assert_eq!(stat(&sync, "successfulSyncs"), 1, "{mode}");
        sync.destroy();

        // A merge function: its row is queued (forced) and written.
        for drop in [false, true] {
            let id = format!("{}-merge", uid());
            seed(
                "exercises",
                json!({ "id": id, "name": "server", "user_id": USER, "last_changed": "2030-01-01T00:00:00Z" }),
            )
            .await;
            let merge = merge_function(drop);
            let options = options(mode, json!({}));
            let tables = js(json!({ "exercises": {} }));
            set(&Reflect::get(&tables, &"exercises".into()).unwrap(), "onConflict", &merge);
            set(&options, "tables", &tables);
            let sync = new_sync(options);
            queue(
                &sync,
                "exercises",
                &id,
                "update",
                json!({ "name": "local", "last_changed": "2026-01-01T00:00:00Z" }),
                0,
            );
            let summary = sync_all(&sync).await;
            let calls = to_json(&Reflect::get(&merge, &"calls".into()).unwrap());
            assert_eq!(calls[0][0]["name"], "local", "{mode}: {calls}");
            assert_eq!(calls[0][1]["name"], "server", "{mode}: {calls}");
            let expected = if drop { "server" } else { "server+local" };
            assert_eq!(exercise(&id).await.unwrap()["name"], expected, "{mode} drop={drop}: {summary}");
            let resolution = if drop { "dropped" } else { "merged" };
            assert_eq!(to_json(&sync.conflicts().unwrap())[0]["resolution"], resolution, "{mode}");
            assert_eq!(stat(&sync, "successfulSyncs"), u64::from(!drop), "{mode}: only the merged row counts");
            sync.destroy();
        }
    }
}

#[wasm_bindgen_test]
async fn a_413_isolates_the_oversized_change_and_applies_the_others() {
    for mode in ["rest", "rpc"] {
        fault(json!({ "maxBodyBytes": 4096, "paths": "/rest/v1/" })).await;
        let sync = new_sync(options(mode, json!({ "batchSize": 10 })));
        let ids: Vec<String> = (0..4).map(|i| format!("{}-size-{i}", uid())).collect();
        for (i, id) in ids.iter().enumerate() {
            let name = if i == 2 { "x".repeat(6000) } else { format!("small {i}") };
            queue(&sync, "exercises", id, "upsert", json!({ "id": id, "name": name }), 0);
        }
        let summary = sync_all(&sync).await;
        assert_eq!(summary["confirmed"], 3, "{mode}: {summary}");
        let failed = summary["failed"].as_array().unwrap();
        assert_eq!(failed.len(), 1, "{mode}: {summary}");
        assert_eq!((&failed[0]["id"], &failed[0]["error"]["code"]), (&json!(ids[2]), &json!("413")), "{mode}");
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(exercise(id).await.is_some(), i != 2, "{mode}: {id}");
        }
        // Retried, it goes alone (and is refused alone), never in a batch with newer changes.
        let requests = stat(&sync, "requests");
        let other = format!("{}-size-after", uid());
        queue(&sync, "exercises", &other, "upsert", json!({ "id": other, "name": "after" }), 3);
        assert_eq!(sync.retry_failed(JsValue::UNDEFINED).unwrap(), 1);
        let summary = sync_all(&sync).await;
        assert_eq!(summary["failed"][0]["error"]["code"], "413", "{mode}: {summary}");
        assert_eq!(stat(&sync, "requests") - requests, 2, "{mode}: the big one alone, then the other");
        assert!(exercise(&other).await.is_some());
        clear_faults().await;
        sync.destroy();
    }
}

#[wasm_bindgen_test]
async fn a_custom_send_that_never_settles_times_out_and_the_queue_moves_on() {
    let transport = hanging_transport();
    set(&transport, "timeoutMs", &100.into());
    let options = js(json!({ "transport": {}, "storage": null }));
    set(&options, "transport", &transport);
    let sync = new_sync(options);
    queue(&sync, "comments", "a", "upsert", json!({ "body": "A" }), 0);
    let summary = sync_all(&sync).await;
    assert_eq!(summary["confirmed"], 1, "{summary}");
    assert_eq!(Reflect::get(&transport, &"sends".into()).unwrap().as_f64(), Some(2.0));
    assert_eq!(stat(&sync, "retries"), 1);
    assert!(stats(&sync)["lastError"].as_str().is_some_and(|e| e.contains("did not settle within 100 ms")));
    sync.destroy();
}

#[wasm_bindgen_test]
async fn a_primary_key_in_data_that_differs_from_the_id_is_a_type_error() {
    let sync = new_sync(options("rest", json!({})));
    let refused =
        sync.queue_change("exercises".into(), "a".into(), "upsert".into(), js(json!({ "id": "b" })), 0.into());
    let error = refused.expect_err("a mismatched id is refused");
    assert!(
        error.is_instance_of::<js_sys::TypeError>() && error_text(&error).contains("data.id"),
        "{}",
        error_text(&error)
    );
    queue(&sync, "exercises", "7", "upsert", json!({ "id": 7, "name": "n" }), 3);
    assert_eq!(stat(&sync, "pending"), 1, "a numeric id matches its decimal string; the refusal queued nothing");
    sync.destroy();
}

#[wasm_bindgen_test]
async fn a_refused_token_without_get_access_token_waits_for_set_access_token() {
    let id = format!("{}-refused", uid());
    seed("exercises", json!({ "id": id, "name": "before", "user_id": USER })).await;
    let options = js(json!({
        "transport": { "url": format!("{SERVER}/rest/v1"), "apiKey": ANON_KEY, "mode": "rpc" },
        "storage": null,
    }));
    let sync = new_sync(options);
    sync.set_access_token("not-a-valid-jwt".into()).unwrap();
    queue(&sync, "exercises", &id, "update", json!({ "name": "after" }), 0);
    let done = sync.force_sync_all();
    wait_for("needsAuth", 3000, || stats(&sync)["needsAuth"] == true).await;
    // Neither a second forceSyncAll() nor time falls back to the API key.
    let _ = sync.force_sync_all();
    pause_ms(300).await;
    assert_eq!(stat(&sync, "successfulSyncs"), 0);
    assert_eq!(stats(&sync)["needsAuth"], true);
    assert_eq!(exercise(&id).await.unwrap()["name"], "before");
    sync.set_access_token(TOKEN.into()).unwrap();
    let summary = to_json(&JsFuture::from(done).await.unwrap());
    assert_eq!(summary["confirmed"], 1, "{summary}");
    assert_eq!(exercise(&id).await.unwrap()["name"], "after");
    sync.destroy();
}

#[wasm_bindgen_test]
async fn a_custom_transport_may_answer_missing_which_is_never_synced() {
    let transport = recording_transport(vec!["missing:b".into()]);
    let options = js(json!({ "transport": {}, "storage": null }));
    set(&options, "transport", &transport);
    let sync = new_sync(options);
    let recorder = listen(&sync);
    queue(&sync, "comments", "a", "update", json!({ "body": "A" }), 0);
    queue(&sync, "comments", "b", "update", json!({ "body": "B" }), 0);
    let summary = sync_all(&sync).await;
    assert_eq!((summary["confirmed"].as_u64(), summary["conflicts"].as_u64()), (Some(1), Some(1)), "{summary}");
    let heard = heard(&recorder);
    assert_eq!((&heard[0]["id"], &heard[0]["reason"]), (&json!("b"), &json!("missing")), "{heard:?}");
    sync.destroy();
}

// ------------------------------------------------------------------ remote changes flow in (issue 11)

/// An instance that pulls `exercises`, and what its `onRemoteChanges` listener heard (flattened).
fn puller(extra: Value) -> (RecordSync, Function) {
    let mut pull = json!({ "tables": ["exercises"], "pageSize": 3 });
    for (key, value) in extra.as_object().cloned().unwrap_or_default() {
        pull[key] = value;
    }
    let sync = new_sync(options("rpc", json!({ "pull": pull, "syncIntervals": { "3": 600_000 } })));
    let recorder = conflict_recorder();
    sync.on_remote_changes(recorder.clone().into()).unwrap();
    (sync, recorder)
}

/// What the listener heard of the records whose id starts with `prefix`: (id, op, name, own).
fn heard_of(recorder: &Function, prefix: &str) -> Vec<(String, String, Value, bool)> {
    heard(recorder)
        .iter()
        .flat_map(|batch| batch.as_array().cloned().unwrap_or_default())
        .filter(|c| c["id"].as_str().is_some_and(|id| id.starts_with(prefix)))
        .map(|c| {
            let id = c["id"].as_str().unwrap_or_default().to_owned();
            (id, c["op"].as_str().unwrap_or_default().to_owned(), c["row"]["name"].clone(), c["own"] == true)
        })
        .collect()
}

async fn pulled(sync: &RecordSync) -> Value {
    to_json(&JsFuture::from(sync.pull(None).unwrap()).await.unwrap_or_else(|e| panic!("pull(): {}", error_text(&e))))
}

/// QA s9: getAccessToken hands out a token the server refuses (expired): catch-up fails with a 401 and
/// reports `needsAuth`, as a write does; a token that works clears it and catch-up goes on.
#[wasm_bindgen_test]
async fn a_token_refused_on_catch_up_sets_needs_auth_and_a_good_one_clears_it() {
    let good = std::rc::Rc::new(std::cell::Cell::new(false));
    let flag = good.clone();
    let get = Closure::<dyn FnMut() -> JsValue>::new(move || match flag.get() {
        true => JsValue::from(TOKEN),
        false => JsValue::from("not-a-valid-jwt"),
    });
    let options = options("rpc", json!({ "pull": { "tables": ["exercises"] }, "syncIntervals": { "3": 600_000 } }));
    let transport = Reflect::get(&options, &"transport".into()).unwrap();
    set(&transport, "getAccessToken", get.as_ref());
    let sync = new_sync(options);
    let refused = JsFuture::from(sync.pull(None).unwrap()).await.expect_err("pull() with a refused token");
    assert!(error_text(&refused).contains("401"), "{}", error_text(&refused));
    assert_eq!(stats(&sync)["needsAuth"], true, "{}", stats(&sync));
    good.set(true);
    wait_for("needsAuth cleared", 10_000, || stats(&sync)["needsAuth"] == false).await;
    pulled(&sync).await;
    assert_eq!(stats(&sync)["needsAuth"], false);
    sync.destroy();
}

/// Catch-up follows the writes' token rule (src/web/request.rs): another user's token reads nothing of the
/// feed, sets `needsAuth` and is asked again with backoff; the owner's token clears it and catch-up goes on.
#[wasm_bindgen_test]
async fn another_users_token_on_catch_up_sets_needs_auth_and_the_owners_clears_it() {
    // Unsigned, {"sub":"someone-else"}: it never reaches the server, the owner check stops it first.
    const OTHER: &str = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJzb21lb25lLWVsc2UifQ.x";
    let owner = std::rc::Rc::new(std::cell::Cell::new(false));
    let flag = owner.clone();
    let get = Closure::<dyn FnMut() -> JsValue>::new(move || match flag.get() {
        true => JsValue::from(TOKEN),
        false => JsValue::from(OTHER),
    });
    let options =
        options("rpc", json!({ "user": USER, "pull": { "tables": ["exercises"] }, "syncIntervals": { "3": 600_000 } }));
    let transport = Reflect::get(&options, &"transport".into()).unwrap();
    set(&transport, "getAccessToken", get.as_ref());
    let sync = new_sync(options);
    let refused = JsFuture::from(sync.pull(None).unwrap()).await.expect_err("pull() with another user's token");
    assert!(error_text(&refused).contains("waiting for user"), "{}", error_text(&refused));
    assert_eq!(stats(&sync)["needsAuth"], true, "{}", stats(&sync));
    owner.set(true);
    wait_for("needsAuth cleared", 10_000, || stats(&sync)["needsAuth"] == false).await;
    pulled(&sync).await;
    assert_eq!(stats(&sync)["needsAuth"], false);
    sync.destroy();
}

#[wasm_bindgen_test]
async fn pull_delivers_other_devices_inserts_updates_and_deletes_and_never_another_users_rows() {
    let p = uid();
    let (sync, recorder) = puller(json!({}));
    pulled(&sync).await;
    let other = new_sync(options("rpc", json!({})));
    for i in 0..4 {
        queue(&other, "exercises", &format!("{p}-{i}"), "upsert", json!({ "id": format!("{p}-{i}"), "name": "v1" }), 0);
    }
    sync_all(&other).await;
    queue(&other, "exercises", &format!("{p}-1"), "update", json!({ "name": "v2" }), 0);
    queue(&other, "exercises", &format!("{p}-2"), "delete", Value::Null, 0);
    sync_all(&other).await;
    seed("exercises", json!({ "id": format!("{p}-theirs"), "name": "not yours", "user_id": OTHER_USER })).await;

    let summary = pulled(&sync).await;
    assert!(summary["changes"].as_u64().unwrap() >= 4, "{summary}");
    let mut got = heard_of(&recorder, &p);
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let row = |i: u32, op: &str, name: Value| (format!("{p}-{i}"), op.to_owned(), name, false);
    assert_eq!(
        got,
        [
            row(0, "upsert", json!("v1")),
            row(1, "upsert", json!("v2")),
            row(2, "delete", Value::Null),
            row(3, "upsert", json!("v1"))
        ]
    );
    let rows: Vec<Value> = heard(&recorder)
        .iter()
        .flat_map(|batch| batch.as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["row"].as_object().cloned().map(Value::Object))
        .collect();
    assert!(!rows.is_empty());
    for row in rows {
        assert!(row.as_object().unwrap().keys().all(|k| !k.starts_with("record_sync_")), "feed columns: {row}");
    }
    let s = stats(&sync);
    assert!(s["lastPullAt"].as_f64().is_some(), "{s}");
    assert!(s["remoteChangesReceived"].as_u64().unwrap() >= 4, "{s}");
    assert_eq!(s["realtimeConnected"], false);
    // Nothing new: a pull delivers nothing more.
    let before = heard(&recorder).len();
    assert_eq!(pulled(&sync).await["changes"], 0);
    assert_eq!(heard(&recorder).len(), before);
    sync.destroy();
    other.destroy();
}

#[wasm_bindgen_test]
async fn a_remote_change_to_a_record_with_a_local_change_waits_until_that_change_settles() {
    let p = uid();
    let id = format!("{p}-held");
    let (sync, recorder) = puller(json!({}));
    let other = new_sync(options("rpc", json!({})));
    queue(&other, "exercises", &id, "upsert", json!({ "id": id, "name": "first" }), 0);
    sync_all(&other).await;
    pulled(&sync).await;
    assert_eq!(heard_of(&recorder, &p).len(), 1);

    // A local edit that is not due for ten minutes, then another device's edit of the same record.
    queue(&sync, "exercises", &id, "update", json!({ "name": "mine" }), 3);
    queue(&other, "exercises", &id, "update", json!({ "name": "theirs" }), 0);
    sync_all(&other).await;
    pulled(&sync).await;
    assert_eq!(heard_of(&recorder, &p).len(), 1, "held while the local change is pending");

    // The local change settles (written after theirs, so it is the newer): the app gets the server's row,
    // marked as its own write, and never the older one from the other device.
    sync_all(&sync).await;
    wait_for("the held record", 3000, || heard_of(&recorder, &p).len() == 2).await;
    assert_eq!(heard_of(&recorder, &p)[1], (id.clone(), "upsert".into(), json!("mine"), true));
    assert_eq!(exercise(&id).await.unwrap()["name"], "mine");
    sync.destroy();
    other.destroy();
}

#[wasm_bindgen_test]
async fn a_malformed_page_is_refused_moves_no_cursor_and_the_next_pull_delivers() {
    let p = uid();
    let (sync, recorder) = puller(json!({}));
    pulled(&sync).await;
    let other = new_sync(options("rpc", json!({})));
    queue(&other, "exercises", &format!("{p}-1"), "upsert", json!({ "id": format!("{p}-1"), "name": "x" }), 0);
    sync_all(&other).await;
    fault(json!({ "htmlNext": 1, "paths": "/rest/v1/rpc/record_sync_changes" })).await;
    let refused = JsFuture::from(sync.pull(None).unwrap()).await;
    clear_faults().await;
    assert!(refused.is_err(), "pull() rejects when a page is refused");
    assert!(heard_of(&recorder, &p).is_empty());
    let s = stats(&sync);
    assert!(s["lastError"].as_str().is_some_and(|e| e.contains("catch-up page")), "{s}");
    pulled(&sync).await;
    assert_eq!(heard_of(&recorder, &p).len(), 1, "the cursor had not moved past the change");
    assert_eq!(stats(&sync)["lastError"], Value::Null, "a good catch-up clears it");
    sync.destroy();
    other.destroy();
}

#[wasm_bindgen_test]
async fn pull_options_are_checked_and_a_throwing_listener_does_not_stop_the_others() {
    for (pull, name) in [
        (json!([]), "options.pull "),
        (json!({ "tables": [] }), "pull.tables"),
        (json!({ "tables": ["exercises"], "pageSize": 0 }), "pull.pageSize"),
        (json!({ "tables": ["exercises"], "realtime": "yes" }), "pull.realtime"),
        (json!({ "tables": ["exercises"], "intervalMs": 10 }), "pull.intervalMs"),
        (json!({ "tables": ["exercises"], "since": 1 }), "pull.since"),
    ] {
        let error = RecordSync::new(options("rpc", json!({ "pull": pull }))).err().expect("a TypeError");
        assert!(error.is_instance_of::<js_sys::TypeError>(), "{}", error_text(&error));
        assert!(error_text(&error).contains(name), "{name}: {}", error_text(&error));
    }
    let p = uid();
    let (sync, recorder) = puller(json!({}));
    let thrower = js_sys::Function::new_no_args("throw new Error('listener broke')");
    sync.on_remote_changes(thrower.into()).unwrap();
    let last = conflict_recorder();
    sync.on_remote_changes(last.clone().into()).unwrap();
    let other = new_sync(options("rpc", json!({})));
    queue(&other, "exercises", &format!("{p}-1"), "upsert", json!({ "id": format!("{p}-1"), "name": "x" }), 0);
    sync_all(&other).await;
    pulled(&sync).await;
    assert_eq!(heard_of(&recorder, &p).len(), 1);
    assert_eq!(heard_of(&last, &p).len(), 1, "the listener after the throwing one heard it too");
    let s = stats(&sync);
    assert!(s["lastError"].as_str().is_some_and(|e| e.contains("listener broke")), "{s}");
    // pull() takes no argument: one given is refused, not ignored; after destroy() it rejects like forceSyncAll().
    let error = sync.pull(Some("exercises".into())).expect_err("pull(\"exercises\") throws");
    assert!(error.is_instance_of::<js_sys::TypeError>(), "{}", error_text(&error));
    assert!(error_text(&error).contains("RecordSync.pull"), "{}", error_text(&error));
    other.destroy();
    sync.destroy();
    let after = JsFuture::from(sync.pull(None).unwrap()).await.expect_err("pull() after destroy() rejects");
    assert!(error_text(&after).contains("destroyed"), "{}", error_text(&after));
}

/// QA s10: a burst of realtime rows (another device writes 200 in one request) reaches the listeners in
/// batches, one per frame, not one call per row (3,000 rows were 2,897 calls, now about 220).
#[wasm_bindgen_test]
async fn a_burst_of_realtime_rows_reaches_the_listeners_in_batches() {
    const N: usize = 200;
    let p = uid();
    let (sync, recorder) = puller(json!({ "realtime": true }));
    wait_for("realtimeConnected", 5000, || stats(&sync)["realtimeConnected"] == true).await;
    let other = new_sync(options("rpc", json!({ "batchSize": N })));
    for i in 0..N {
        let id = format!("{p}-{i}");
        queue(&other, "exercises", &id, "upsert", json!({ "id": id, "name": "burst" }), 0);
    }
    sync_all(&other).await;
    wait_for("the burst", 10_000, || heard_of(&recorder, &p).len() == N).await;
    let calls = heard(&recorder)
        .iter()
        .filter(|batch| {
            batch.as_array().is_some_and(|b| b.iter().any(|c| c["id"].as_str().is_some_and(|id| id.starts_with(&p))))
        })
        .count();
    assert!(calls <= N / 4, "{calls} listener calls for {N} rows");
    other.destroy();
    sync.destroy();
}

#[wasm_bindgen_test]
async fn realtime_brings_another_devices_edit_within_a_second_and_a_dropped_socket_misses_nothing() {
    let p = uid();
    let (sync, recorder) = puller(json!({ "realtime": true }));
    wait_for("realtimeConnected", 5000, || stats(&sync)["realtimeConnected"] == true).await;
    let other = new_sync(options("rest", json!({})));
    let id = format!("{p}-rt");
    queue(&other, "exercises", &id, "upsert", json!({ "id": id, "name": "live" }), 0);
    sync_all(&other).await;
    // No pull(): the socket brings it.
    wait_for("the realtime change", 1000, || heard_of(&recorder, &p).len() == 1).await;
    assert_eq!(heard_of(&recorder, &p)[0], (id.clone(), "upsert".into(), json!("live"), false));

    // A delete carries only the key: the catch-up it starts delivers it.
    queue(&other, "exercises", &id, "delete", Value::Null, 0);
    sync_all(&other).await;
    wait_for("the delete", 2000, || heard_of(&recorder, &p).len() == 2).await;
    assert_eq!(heard_of(&recorder, &p)[1].1, "delete");

    // The socket is cut; what is written meanwhile arrives by the catch-up that follows the rejoin.
    admin(SERVER, "POST", "/__admin/realtime/drop", JsValue::UNDEFINED).await.expect("drop");
    wait_for("the drop is seen", 2000, || stats(&sync)["realtimeConnected"] == false).await;
    let gap = format!("{p}-gap");
    queue(&other, "exercises", &gap, "upsert", json!({ "id": gap, "name": "while cut" }), 0);
    sync_all(&other).await;
    wait_for("the gap's change", 8000, || heard_of(&recorder, &p).len() == 3).await;
    assert_eq!(heard_of(&recorder, &p)[2], (gap, "upsert".into(), json!("while cut"), false));
    wait_for("rejoined", 5000, || stats(&sync)["realtimeConnected"] == true).await;
    // setAccessToken gives the joined channel the new token: one with a broken signature makes the server close
    // the channel (so it was sent); the catch-up that follows gets a 401, asks getAccessToken for a good token,
    // and the channel rejoins with it.
    let (head, _) = TOKEN.rsplit_once('.').unwrap();
    sync.set_access_token(format!("{head}.c2lnbmF0dXJlLW5vdC12YWxpZA").into()).unwrap();
    wait_for("the channel closed for the bad token", 3000, || stats(&sync)["realtimeConnected"] == false).await;
    wait_for("rejoined with a good token", 8000, || stats(&sync)["realtimeConnected"] == true).await;
    let back = format!("{p}-back");
    queue(&other, "exercises", &back, "upsert", json!({ "id": back, "name": "after the token" }), 0);
    sync_all(&other).await;
    wait_for("a change after the new token", 2000, || heard_of(&recorder, &p).len() == 4).await;
    sync.destroy();
    other.destroy();
}

#[wasm_bindgen_test]
async fn rest_mode_writes_come_back_marked_as_own() {
    let p = uid();
    let id = format!("{p}-own");
    let sync = new_sync(options("rest", json!({ "pull": { "tables": ["exercises"] } })));
    let recorder = conflict_recorder();
    sync.on_remote_changes(recorder.clone().into()).unwrap();
    queue(&sync, "exercises", &id, "upsert", json!({ "id": id, "name": "mine" }), 0);
    sync_all(&sync).await;
    pulled(&sync).await;
    assert_eq!(heard_of(&recorder, &p), [(id, "upsert".into(), json!("mine"), true)], "X-Record-Sync-Origin names it");
    sync.destroy();
}

#[wasm_bindgen_test]
async fn a_remote_delete_of_a_record_with_a_pending_update_is_a_conflict_and_then_a_delete() {
    let p = uid();
    let id = format!("{p}-gone");
    let (sync, recorder) = puller(json!({}));
    let conflicts = listen(&sync);
    let other = new_sync(options("rpc", json!({})));
    queue(&other, "exercises", &id, "upsert", json!({ "id": id, "name": "first" }), 0);
    sync_all(&other).await;
    pulled(&sync).await;
    queue(&sync, "exercises", &id, "update", json!({ "name": "mine" }), 3);
    queue(&other, "exercises", &id, "delete", Value::Null, 0);
    sync_all(&other).await;
    pulled(&sync).await;
    assert_eq!(heard_of(&recorder, &p).len(), 1, "the delete is held while the update is pending");
    let summary = sync_all(&sync).await;
    assert_eq!(summary["conflicts"], 1, "{summary}");
    let heard = heard(&conflicts);
    assert_eq!(
        (heard[0]["id"].as_str(), heard[0]["reason"].as_str()),
        (Some(id.as_str()), Some("missing")),
        "{heard:?}"
    );
    wait_for("the held delete", 3000, || heard_of(&recorder, &p).len() == 2).await;
    assert_eq!(heard_of(&recorder, &p)[1].1, "delete");
    assert_eq!(exercise(&id).await, None);
    sync.destroy();
    other.destroy();
}
