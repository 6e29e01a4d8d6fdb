//! One source for the contracts that cross languages: the TypeScript types (the `typescript_custom_section` in
//! src/web/types.rs), React's `INITIAL_STATS` (pkg-template/react/store.ts) and the priority names
//! (`SyncPriority` in src/web/mod.rs, the monitor's labels) are read as text and checked against what the Rust
//! types serialize to, plus the fields the shell adds to the stats (`storage::stats` in src/web/storage.rs). A
//! field added on one side only fails here.

// Native test (reads the repository's files).
#![cfg(not(target_arch = "wasm32"))]

use std::collections::BTreeSet;

use record_sync::core::remote::{RemoteChange, RemoteOp};
use record_sync::core::{Change, ChangeOutcome, Config, Engine, Fill, Op, Outcome, Priority, Row};
use serde_json::{json, Value};

fn source(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).expect(path)
}

/// The block that follows `start` in `text`, from its first `{` to the matching `}` (exclusive).
fn block<'a>(text: &'a str, start: &str) -> &'a str {
    let at = text.find(start).unwrap_or_else(|| panic!("{start} not found"));
    let open = at + text[at..].find('{').expect("a block");
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &text[open + 1..open + i];
                }
            }
            _ => {}
        }
    }
    panic!("{start}: unbalanced braces")
}

/// Field names of a TypeScript interface (its own and those of the interface it extends), each with whether it
/// is optional. Comments and nested object types are skipped.
fn interface(ts: &str, name: &str) -> Vec<(String, bool)> {
    let header_at = ts.find(&format!("export interface {name} ")).unwrap_or_else(|| panic!("interface {name}"));
    let header = &ts[header_at..header_at + ts[header_at..].find('{').unwrap()];
    let mut fields = match header.split(" extends ").nth(1) {
        Some(parent) => interface(ts, parent.trim()),
        None => Vec::new(),
    };
    let body = block(&ts[header_at..], "{");
    let mut depth = 0;
    let mut in_comment = false;
    for line in body.lines() {
        let line = line.trim();
        if line.starts_with("/*") || in_comment {
            in_comment = !line.contains("*/");
            continue;
        }
        if depth == 0 {
            if let Some((field, _)) = line.split_once(':') {
                let optional = field.ends_with('?');
                fields.push((field.trim_end_matches('?').to_owned(), optional));
            }
        }
        depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
    }
    fields
}

fn keys(value: &Value) -> BTreeSet<String> {
    value.as_object().expect("an object").keys().cloned().collect()
}

/// The JSON keys of `value` must be the interface's fields: every required one present, none unknown.
fn check(ts: &str, name: &str, value: &Value) {
    let fields = interface(ts, name);
    let all: BTreeSet<String> = fields.iter().map(|(f, _)| f.clone()).collect();
    let required: BTreeSet<String> = fields.iter().filter(|(_, o)| !o).map(|(f, _)| f.clone()).collect();
    let have = keys(value);
    assert!(have.is_subset(&all), "{name}: Rust sends {:?}, not in the TypeScript type", &have - &all);
    assert!(required.is_subset(&have), "{name}: TypeScript requires {:?}, Rust does not send it", &required - &have);
}

/// The TypeScript of the `typescript_custom_section`.
fn types() -> String {
    let rust = source("src/web/types.rs");
    let start = rust.find("r#\"").expect("the TYPES raw string") + 3;
    rust[start..start + rust[start..].find("\"#").expect("its end")].to_owned()
}

/// The engine's stats as `stats()` gives them: with the fields the shell sets on top (read from its source), at
/// the values a page without storage shows.
fn shell_stats(engine_stats: Value) -> Value {
    let shell = source("src/web/storage.rs");
    let body = block(&shell, "pub fn stats(s: &State)");
    let mut stats = engine_stats;
    // Issue 11: the remote side's fields (src/web/pull.rs) are set the same way.
    let pull = source("src/web/pull.rs");
    let body = format!("{body}{}", block(&pull, "pub fn add_stats(s: &State"));
    for call in body.split("set(\"").skip(1) {
        let name = call.split('"').next().unwrap();
        let initial = match name {
            "durable" => json!(false),
            "restoring" => json!(false),
            "user" => Value::Null,
            "lastPullAt" => Value::Null,
            "realtimeConnected" => json!(false),
            "remoteChangesReceived" => json!(0),
            "leader" => json!(true),
            "lastError" => continue,
            other => panic!("storage::stats sets {other:?}: give it its initial value here and in INITIAL_STATS"),
        };
        stats[name] = initial;
    }
    stats
}

/// An engine that has confirmed one write (latency), failed one, and holds one pending.
fn busy_engine() -> Engine<Row> {
    let mut e = Engine::new(Config { fill: Fill::DueOnly, ..Config::default() }).unwrap();
    let row = |v: Value| v.as_object().cloned();
    let data = row(json!({"id": "a", "last_changed": "2026-01-01T00:00:00Z"}));
    e.enqueue(Change::new("t", "a", Op::Upsert, data, Priority::Critical).unwrap(), 0).unwrap();
    e.enqueue(Change::new("t", "b", Op::Upsert, row(json!({"id": "b"})), Priority::Critical).unwrap(), 0).unwrap();
    let batch = e.poll_batch(0).unwrap();
    let outcome = |seq, outcome| ChangeOutcome { seq, outcome };
    let failed = Outcome::Permanent { code: Some("23505".into()), message: "duplicate".into() };
    let outcomes = vec![outcome(batch.changes[0].seq, Outcome::Applied), outcome(batch.changes[1].seq, failed)];
    e.on_batch_result(batch.id, outcomes, 10).unwrap();
    e.enqueue(Change::new("t", "c", Op::Update, row(json!({"x": 1})), Priority::Low).unwrap(), 20).unwrap();
    e
}

#[test]
fn the_typescript_types_name_what_the_rust_types_serialize() {
    let ts = types();
    let e = busy_engine();
    let stats = shell_stats(serde_json::to_value(e.stats()).unwrap());
    check(&ts, "SyncStats", &stats);
    check(&ts, "Latency", &stats["latencyMs"]);
    let pending = serde_json::to_value(e.pending_changes()).unwrap();
    check(&ts, "PendingChange", &pending[0]);
    let failed = serde_json::to_value(e.failed_changes()).unwrap();
    check(&ts, "FailedChange", &failed[0]);
    let remote = RemoteChange {
        table: "t".into(),
        id: "a".into(),
        op: RemoteOp::Upsert,
        row: json!({"id": "a"}).as_object().cloned(),
        version: 7,
        own: true,
        conflict: true,
    };
    // As the shell hands it to listeners: the core writes it as JSON.
    let mut written = String::new();
    remote.write_json(&mut written, true);
    check(&ts, "RemoteChange", &serde_json::from_str(&written).unwrap());
    let by_priority = block(&ts[ts.find("export interface SyncStats").unwrap()..], "pendingByPriority:");
    let ts_names: BTreeSet<String> = by_priority
        .split(';')
        .filter_map(|f| f.split(':').next())
        .map(|f| f.trim().to_owned())
        .filter(|f| !f.is_empty())
        .collect();
    assert_eq!(ts_names, keys(&stats["pendingByPriority"]), "SyncStats.pendingByPriority");
}

#[test]
fn initial_stats_are_what_a_new_instance_reports() {
    let store = source("pkg-template/react/store.ts");
    let literal = block(&store, "export const INITIAL_STATS");
    // The literal as JSON: keys quoted, the nested freeze unwrapped.
    let mut json_text = String::from("{");
    for line in literal.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let line = line.replace("Object.freeze(", "").replace("})", "}");
        let (key, value) = line.split_once(':').expect("key: value");
        let value = value.trim().trim_end_matches(',');
        let value = if value.starts_with('{') {
            let inner: Vec<String> = value
                .trim_matches(|c| c == '{' || c == '}')
                .split(',')
                .map(|kv| {
                    let (k, v) = kv.split_once(':').expect("key: value");
                    format!("\"{}\":{}", k.trim(), v.trim())
                })
                .collect();
            format!("{{{}}}", inner.join(","))
        } else {
            value.to_owned()
        };
        json_text.push_str(&format!("\"{}\":{},", key.trim(), value));
    }
    json_text.pop();
    json_text.push('}');
    let initial: Value = serde_json::from_str(&json_text).unwrap_or_else(|e| panic!("{json_text}: {e}"));
    let fresh = shell_stats(serde_json::to_value(Engine::<Row>::new(Config::default()).unwrap().stats()).unwrap());
    assert_eq!(initial, fresh, "INITIAL_STATS (pkg-template/react/store.ts) against a new engine's stats");
}

#[test]
fn priority_and_op_names_agree_everywhere() {
    let rust: Vec<String> =
        Priority::ALL.iter().map(|p| serde_json::to_value(p).unwrap().as_str().unwrap().to_owned()).collect();
    let ts = types();
    let union = |name: &str| -> Vec<String> {
        let at = ts.find(&format!("export type {name} = ")).unwrap_or_else(|| panic!("type {name}"));
        let line = ts[at..].lines().next().unwrap();
        line.split('"').skip(1).step_by(2).map(str::to_owned).collect()
    };
    assert_eq!(union("PriorityName"), rust, "PriorityName in src/web/types.rs");
    let ops: Vec<String> =
        [Op::Insert, Op::Update, Op::Upsert, Op::Delete].iter().map(|o| o.as_str().to_owned()).collect();
    assert_eq!(union("Op"), ops, "Op in src/web/types.rs");

    let shell = source("src/web/mod.rs");
    let variants: Vec<String> = block(&shell, "pub enum SyncPriority")
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| v.split('=').map(str::trim).collect::<Vec<_>>().join("="))
        .collect();
    let expected: Vec<String> =
        Priority::ALL.iter().zip(&rust).map(|(p, n)| format!("{}={}", n.to_uppercase(), p.index())).collect();
    assert_eq!(variants, expected, "SyncPriority in src/web/mod.rs");

    let monitor = source("pkg-template/react/SyncMonitor.tsx");
    let at = monitor.find("const PRIORITY_NAMES = [").expect("PRIORITY_NAMES");
    let names: Vec<String> =
        monitor[at..monitor[at..].find(']').unwrap() + at].split('"').skip(1).step_by(2).map(str::to_owned).collect();
    assert_eq!(names, rust, "PRIORITY_NAMES in SyncMonitor.tsx");
}

/// `readOptions` (src/web/shell.js) checks the options' ranges before the core does, so that its messages name
/// the options as the app wrote them: its limits must be the core's, or an option one side takes the other
/// would refuse (the constructor would throw a message of the core's, or worse, take a value the core clamps).
#[test]
fn the_options_limits_in_js_are_the_cores() {
    let shell = source("src/web/shell.js");
    let limits = block(&shell, "const LIMITS = ");
    let limit = |name: &str| -> u64 {
        let at = limits.find(&format!("{name}: ")).unwrap_or_else(|| panic!("LIMITS.{name}")) + name.len() + 2;
        let digits: String = limits[at..].chars().take_while(|c| c.is_ascii_digit() || *c == '_').collect();
        digits.replace('_', "").parse().unwrap_or_else(|_| panic!("LIMITS.{name} is a number"))
    };
    let valid = |config: Config| config.validate().is_ok();
    let (retries, batch, interval) = (limit("maxRetries"), limit("batchSize"), limit("intervalMs"));
    assert!(valid(Config { max_retries: retries as u32, ..Config::default() }));
    assert!(!valid(Config { max_retries: retries as u32 + 1, ..Config::default() }));
    assert!(valid(Config { batch_size: batch as usize, ..Config::default() }));
    assert!(!valid(Config { batch_size: batch as usize + 1, ..Config::default() }));
    assert!(valid(Config { intervals_ms: [interval; 4], ..Config::default() }));
    assert!(!valid(Config { intervals_ms: [0, 0, 0, interval + 1], ..Config::default() }));
    assert_eq!(limit("pageSize"), u64::from(record_sync::core::remote::MAX_PAGE_SIZE));
}
