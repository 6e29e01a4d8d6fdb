//! The engine's rules one at a time, on a virtual clock.

// Native tests. `wasm-pack test` builds every test target for wasm32 too, where proptest does not build.
#![cfg(not(target_arch = "wasm32"))]

use proptest::prelude::*;
use record_sync::core::FastMap;
use record_sync::core::{
    Backoff, Batch, Change, ChangeOutcome, Config, ConflictReason, ConflictStrategy, Engine, EngineError, Event, Fill,
    Op, Outcome, Priority, Resolution, Row, Snapshot,
};
use serde_json::{json, Value};

fn row(value: Value) -> Option<Row> {
    value.as_object().cloned()
}

/// Due only: these tests pin one rule each, and writes riding along early (the default `Fill::Idle`, tested on
/// its own below) would blur which write a batch carries.
fn config() -> Config {
    Config {
        fill: Fill::DueOnly,
        backoff: Backoff { base_ms: 1_000, max_ms: 60_000 },
        parents: FastMap::from_iter([("sessions".to_owned(), vec!["plans".to_owned()])]),
        ..Config::default()
    }
}

fn engine() -> Engine<Row> {
    Engine::new(config()).unwrap()
}

fn queue(e: &mut Engine<Row>, table: &str, id: &str, op: Op, data: Value, priority: Priority, now: u64) -> u64 {
    let data = if op == Op::Delete { None } else { row(data) };
    e.enqueue(Change::new(table, id, op, data, priority).unwrap(), now).unwrap()
}

fn applied(batch: &Batch<Row>) -> Vec<ChangeOutcome<Row>> {
    batch.changes.iter().map(|c| ChangeOutcome { seq: c.seq, outcome: Outcome::Applied }).collect()
}

fn ids(batch: &Batch<Row>) -> Vec<String> {
    batch.changes.iter().map(|c| format!("{}/{}", c.table, c.id)).collect()
}

#[test]
fn each_priority_is_due_after_its_interval() {
    for (priority, interval) in Priority::ALL.into_iter().zip([0, 5_000, 30_000, 300_000]) {
        let mut e = engine();
        queue(&mut e, "plans", "p", Op::Upsert, json!({"id": "p"}), priority, 1_000);
        assert_eq!(e.poll_timeout(), Some(1_000 + interval));
        if interval > 0 {
            assert!(e.poll_batch(1_000 + interval - 1).is_none(), "{priority:?} sent early");
        }
        assert!(e.poll_batch(1_000 + interval).is_some(), "{priority:?} not sent at its deadline");
    }
}

#[test]
fn ten_updates_of_one_record_become_one_write() {
    let mut e = engine();
    queue(&mut e, "exercises", "x", Op::Insert, json!({"id": "x", "name": ""}), Priority::High, 0);
    for (i, name) in
        ["S", "Sq", "Squ", "Squa", "Squat", "Squat ", "Squat 5", "Squat 5x", "Squat 5x5"].iter().enumerate()
    {
        queue(&mut e, "exercises", "x", Op::Update, json!({"name": name}), Priority::High, i as u64 * 100);
    }
    let batch = e.poll_batch(5_000).unwrap();
    assert_eq!(batch.changes.len(), 1);
    assert_eq!(batch.changes[0].op, Op::Insert);
    assert_eq!(batch.changes[0].data, row(json!({"id": "x", "name": "Squat 5x5"})));
    let stats = e.stats();
    assert_eq!((stats.total_changes, stats.merged_changes, stats.pending, stats.in_flight), (10, 9, 0, 1));
}

#[test]
fn a_merge_keeps_the_earliest_deadline_and_the_highest_priority() {
    let mut e = engine();
    queue(&mut e, "plans", "p", Op::Upsert, json!({"id": "p"}), Priority::High, 0);
    queue(&mut e, "plans", "p", Op::Update, json!({"weeks": 3}), Priority::Low, 1_000);
    assert_eq!(e.poll_timeout(), Some(5_000), "a later low change does not push the deadline back");
    queue(&mut e, "plans", "p", Op::Update, json!({"weeks": 4}), Priority::Critical, 2_000);
    assert_eq!(e.poll_timeout(), Some(2_000));
    let batch = e.poll_batch(2_000).unwrap();
    assert_eq!(batch.changes[0].priority, Priority::Critical);
}

#[test]
fn batch_size_is_respected_and_the_rest_follows_at_once() {
    let mut e = Engine::new(Config { batch_size: 3, ..config() }).unwrap();
    for i in 0..7 {
        queue(&mut e, "plans", &i.to_string(), Op::Upsert, json!({}), Priority::Critical, 0);
    }
    let mut sizes = Vec::new();
    while let Some(batch) = e.poll_batch(0) {
        sizes.push(batch.changes.len());
        e.on_batch_result(batch.id, applied(&batch), 0).unwrap();
    }
    assert_eq!(sizes, [3, 3, 1]);
    assert_eq!(e.stats().successful_syncs, 7);
}

#[test]
fn a_request_that_goes_anyway_carries_the_writes_of_idle_records_only() {
    let mut e = Engine::new(Config { fill: Fill::Idle { idle_ms: 1_000 }, ..Config::default() }).unwrap();
    queue(&mut e, "t", "idle", Op::Upsert, json!({"id": "idle"}), Priority::Low, 0);
    queue(&mut e, "t", "typing", Op::Upsert, json!({"id": "typing"}), Priority::High, 0);
    queue(&mut e, "t", "typing", Op::Update, json!({"name": "ab"}), Priority::High, 1_500);
    assert!(e.poll_batch(2_000).is_none(), "nothing is due, so nothing goes early");
    queue(&mut e, "t", "now", Op::Upsert, json!({"id": "now"}), Priority::Critical, 2_000);
    let batch = e.poll_batch(2_000).unwrap();
    assert_eq!(ids(&batch), ["t/idle", "t/now"], "the record edited 500 ms ago waits for more edits");
    e.on_batch_result(batch.id, applied(&batch), 2_000).unwrap();
    assert_eq!(e.poll_timeout(), Some(5_000), "the busy record keeps its own deadline");
}

#[test]
fn a_due_child_pulls_its_earlier_parent_along_and_goes_after_it() {
    let mut e = engine();
    queue(&mut e, "plans", "p", Op::Insert, json!({"id": "p"}), Priority::Low, 0);
    queue(&mut e, "plans", "other", Op::Insert, json!({"id": "other"}), Priority::Low, 0);
    queue(&mut e, "sessions", "s", Op::Insert, json!({"id": "s", "plan_id": "p"}), Priority::High, 0);
    queue(&mut e, "plans", "later", Op::Insert, json!({"id": "later"}), Priority::Low, 0);
    let batch = e.poll_batch(5_000).unwrap();
    assert_eq!(ids(&batch), ["plans/p", "plans/other", "sessions/s"], "later parents stay for their own deadline");
}

#[test]
fn a_child_updated_to_point_at_a_new_parent_goes_after_it() {
    let mut e = engine();
    queue(&mut e, "sessions", "s", Op::Upsert, json!({"id": "s", "plan_id": "p1"}), Priority::High, 0);
    queue(&mut e, "plans", "p2", Op::Insert, json!({"id": "p2"}), Priority::Low, 0);
    queue(&mut e, "sessions", "s", Op::Update, json!({"plan_id": "p2"}), Priority::High, 0);
    let batch = e.poll_batch(5_000).unwrap();
    assert_eq!(ids(&batch), ["plans/p2", "sessions/s"]);
}

#[test]
fn a_change_during_flight_waits_and_goes_after() {
    let mut e = engine();
    queue(&mut e, "plans", "p", Op::Upsert, json!({"id": "p", "n": 1}), Priority::Critical, 0);
    let first = e.poll_batch(0).unwrap();
    queue(&mut e, "plans", "p", Op::Update, json!({"n": 2}), Priority::Critical, 1);
    assert!(e.poll_batch(1).is_none(), "one batch in flight");
    assert_eq!(e.pending_changes().iter().map(|p| p.in_flight).collect::<Vec<_>>(), [true, false]);
    e.on_batch_result(first.id, applied(&first), 2).unwrap();
    let second = e.poll_batch(2).unwrap();
    assert_eq!((second.changes[0].op, second.changes[0].data.clone()), (Op::Update, row(json!({"n": 2}))));
    assert!(second.changes[0].seq > first.changes[0].seq);
}

#[test]
fn transient_failures_back_off_then_fail_after_max_retries_as_upserts() {
    let mut e = Engine::new(Config { max_retries: 2, ..config() }).unwrap();
    queue(&mut e, "plans", "p", Op::Insert, json!({"id": "p"}), Priority::Critical, 0);
    let mut now = 0;
    let mut waits = Vec::new();
    for _ in 0..3 {
        let batch = e.poll_batch(now).unwrap();
        e.on_batch_failed(batch.id, "Failed to fetch", None, now).unwrap();
        if let Some(next) = e.poll_timeout() {
            waits.push(next - now);
            assert!(e.poll_batch(next - 1).is_none(), "no retry before the backoff ends");
            now = next;
        }
    }
    assert_eq!(waits.len(), 2);
    assert!((500..=1_000).contains(&waits[0]) && (1_000..=2_000).contains(&waits[1]), "{waits:?}");
    let failed = e.failed_changes();
    assert_eq!(failed.len(), 1);
    assert_eq!((failed[0].write.op, failed[0].attempts, failed[0].error.permanent), (Op::Upsert, 3, false));
    assert!(failed[0].error.message.contains("gave up after 3 attempts"));
    assert_eq!(e.stats().retries, 2);
}

#[test]
fn retry_after_is_honoured() {
    let mut e = engine();
    queue(&mut e, "plans", "p", Op::Upsert, json!({}), Priority::Critical, 0);
    let batch = e.poll_batch(0).unwrap();
    e.on_batch_failed(batch.id, "HTTP 429", Some(20_000), 0).unwrap();
    assert_eq!(e.poll_timeout(), Some(20_000));
    // forceSyncAll() and `online` skip the backoff, not the wait the server asked for.
    e.flush_all(1_000);
    assert_eq!((e.poll_timeout(), e.poll_batch(19_999).map(|b| b.id)), (Some(20_000), None));
    e.set_online(false);
    e.set_online(true);
    assert_eq!(e.poll_timeout(), Some(20_000));
    let batch = e.poll_batch(20_000).expect("due once the server's wait is over");
    e.on_batch_failed(batch.id, "HTTP 503", None, 20_000).unwrap();
    assert!(e.poll_timeout().is_some_and(|at| at > 20_000), "backs off");
    e.flush_all(20_001);
    assert!(e.poll_batch(20_001).is_some(), "a failure without Retry-After: forceSyncAll sends at once");
}

#[test]
fn offline_failures_cost_no_attempt_and_online_sends_at_once() {
    let mut e = Engine::new(Config { max_retries: 0, ..config() }).unwrap();
    queue(&mut e, "plans", "p", Op::Upsert, json!({}), Priority::Critical, 0);
    let batch = e.poll_batch(0).unwrap();
    e.set_online(false);
    e.on_batch_failed(batch.id, "Failed to fetch", None, 0).unwrap();
    assert!(e.failed_changes().is_empty(), "offline failure counted as an attempt");
    assert_eq!((e.poll_timeout(), e.poll_batch(10)), (None, None), "nothing goes out offline");
    e.set_online(true);
    assert_eq!(e.poll_timeout(), Some(0));
    assert!(e.poll_batch(10).is_some());
}

#[test]
fn a_refused_write_blocks_its_record_until_discarded_or_retried() {
    let mut e = engine();
    queue(&mut e, "plans", "p", Op::Upsert, json!({"id": "p", "n": 1}), Priority::Critical, 0);
    queue(&mut e, "plans", "q", Op::Upsert, json!({"id": "q"}), Priority::Critical, 0);
    let batch = e.poll_batch(0).unwrap();
    let refused = Outcome::Permanent { code: Some("23514".into()), message: "check".into() };
    let outcomes = vec![
        ChangeOutcome { seq: batch.changes[0].seq, outcome: refused },
        ChangeOutcome { seq: batch.changes[1].seq, outcome: Outcome::Applied },
    ];
    e.on_batch_result(batch.id, outcomes, 0).unwrap();
    assert_eq!(e.stats().successful_syncs, 1, "the rest of the batch went through");
    assert_eq!(e.failed_changes()[0].error.code.as_deref(), Some("23514"));
    queue(&mut e, "plans", "p", Op::Update, json!({"n": 2}), Priority::Critical, 1);
    assert!(e.poll_batch(1).is_none(), "blocked behind the failed write");
    assert!(e.pending_changes()[0].blocked);
    let watermark = e.flush_all(1);
    assert!(e.is_settled_through(watermark), "forceSyncAll does not wait for blocked writes");

    assert_eq!(e.retry_failed(None, 2), 1);
    let batch = e.poll_batch(2).unwrap();
    assert_eq!(batch.changes[0].data, row(json!({"id": "p", "n": 2})), "retried and merged");
    e.on_batch_result(batch.id, applied(&batch), 2).unwrap();

    let mut e2 = engine();
    queue(&mut e2, "plans", "p", Op::Insert, json!({"id": "p"}), Priority::Critical, 0);
    let batch = e2.poll_batch(0).unwrap();
    let refused = Outcome::Permanent { code: None, message: "no".into() };
    e2.on_batch_result(batch.id, vec![ChangeOutcome { seq: batch.changes[0].seq, outcome: refused }], 0).unwrap();
    queue(&mut e2, "plans", "p", Op::Update, json!({"n": 3}), Priority::Critical, 1);
    assert_eq!(e2.discard_failed(None), 1);
    let batch = e2.poll_batch(1).unwrap();
    assert_eq!((batch.changes[0].op, batch.changes[0].data.clone()), (Op::Update, row(json!({"n": 3}))));
}

#[test]
fn refused_changes_leave_the_queue_as_it_was() {
    let mut e = engine();
    queue(&mut e, "plans", "p", Op::Update, json!({"n": 1}), Priority::Low, 0);
    assert_eq!(e.poll_event(), Some(Event::StateChanged));
    let before = (e.pending_changes(), e.stats());
    let insert = Change::new("plans", "p", Op::Insert, row(json!({"id": "p"})), Priority::Critical).unwrap();
    assert_eq!(e.enqueue(insert, 5), Err(EngineError::RecordExists { table: "plans".into(), id: "p".into() }));
    assert_eq!((e.pending_changes(), e.stats()), before);
    assert_eq!(e.poll_event(), None, "a refused change is not a change of state");
}

#[test]
fn an_insert_cancelled_by_a_delete_sends_nothing() {
    let mut e = engine();
    queue(&mut e, "plans", "p", Op::Insert, json!({"id": "p"}), Priority::High, 0);
    queue(&mut e, "plans", "p", Op::Delete, json!(null), Priority::High, 1);
    assert_eq!((e.poll_timeout(), e.stats().pending, e.stats().merged_changes), (None, 0, 1));
}

#[test]
fn force_flush_sends_everything_now_and_reports_when_settled() {
    let mut e = engine();
    queue(&mut e, "plans", "p", Op::Upsert, json!({}), Priority::Low, 0);
    queue(&mut e, "plans", "q", Op::Upsert, json!({}), Priority::Medium, 0);
    let watermark = e.flush_all(10);
    assert!(!e.is_settled_through(watermark));
    let batch = e.poll_batch(10).unwrap();
    assert_eq!(batch.changes.len(), 2);
    queue(&mut e, "plans", "r", Op::Upsert, json!({}), Priority::Low, 11);
    e.on_batch_result(batch.id, applied(&batch), 12).unwrap();
    assert!(e.is_settled_through(watermark), "later changes do not hold up an earlier flush");
    assert!(!e.is_settled_through(watermark + 1));
}

#[test]
fn paused_engine_sends_nothing() {
    let mut e = engine();
    queue(&mut e, "plans", "p", Op::Upsert, json!({}), Priority::Critical, 0);
    e.set_paused(true);
    assert_eq!((e.poll_timeout(), e.poll_batch(0)), (None, None));
    e.set_paused(false);
    assert!(e.poll_batch(0).is_some());
}

#[test]
fn stats_count_per_priority_and_latency() {
    let mut e = engine();
    for (i, priority) in Priority::ALL.into_iter().enumerate() {
        queue(&mut e, "plans", &i.to_string(), Op::Upsert, json!({}), priority, 0);
    }
    let stats = e.stats();
    let p = stats.pending_by_priority;
    assert_eq!((p.critical, p.high, p.medium, p.low, stats.pending), (1, 1, 1, 1, 4));
    let batch = e.poll_batch(0).unwrap();
    assert!(e.stats().is_processing);
    e.on_batch_result(batch.id, applied(&batch), 250).unwrap();
    let latency = e.stats().latency_ms.unwrap();
    assert_eq!((latency.p50, latency.count), (250, 1));
    assert_eq!(e.on_batch_result(batch.id, vec![], 251), Err(EngineError::UnknownBatch(batch.id)));
}

#[test]
fn low_water_is_the_oldest_write_still_alive() {
    let mut e = engine();
    queue(&mut e, "plans", "p", Op::Upsert, json!({}), Priority::Low, 0);
    let q = queue(&mut e, "plans", "q", Op::Upsert, json!({}), Priority::Critical, 0);
    let batch = e.poll_batch(0).unwrap();
    assert_eq!((batch.changes[0].seq, batch.low_water), (q, 1));
}

#[test]
fn a_snapshot_restores_pending_failed_and_blocked_writes() {
    let mut e = engine();
    queue(&mut e, "plans", "p", Op::Insert, json!({"id": "p"}), Priority::Critical, 0);
    queue(&mut e, "plans", "q", Op::Upsert, json!({"id": "q"}), Priority::Low, 0);
    let batch = e.poll_batch(0).unwrap();
    queue(&mut e, "plans", "p", Op::Update, json!({"n": 1}), Priority::High, 1);
    let json = serde_json::to_string(&e.export()).unwrap();
    let mut restored = Engine::restore(config(), serde_json::from_str::<Snapshot<Row>>(&json).unwrap()).unwrap();
    assert!(restored.on_batch_result(batch.id, vec![], 2).is_err(), "the old flight is forgotten");
    let pending = restored.pending_changes();
    assert_eq!(pending.len(), 2);
    assert_eq!((pending[0].write.op, pending[0].write.data.clone()), (Op::Upsert, row(json!({"id": "p", "n": 1}))));
    assert_eq!(pending[0].write.seq, batch.changes[0].seq + 2, "merged with the held change");
    let next = restored.enqueue(Change::new("plans", "z", Op::Delete, None, Priority::Low).unwrap(), 3).unwrap();
    assert!(next > pending[0].write.seq, "seqs continue after a reload");
}

#[test]
fn bad_snapshots_are_refused_whole() {
    let mut e = engine();
    queue(&mut e, "plans", "p", Op::Upsert, json!({"id": "p"}), Priority::Low, 0);
    let good = e.export();
    let mut wrong_version = good.clone();
    wrong_version.version = 99;
    let mut out_of_sequence = good.clone();
    out_of_sequence.next_seq = 0;
    let mut duplicated = good.clone();
    duplicated.entries.push(good.entries[0].clone());
    let mut bad_table = good.clone();
    bad_table.entries[0].table = String::new();
    for snapshot in [wrong_version, out_of_sequence, duplicated, bad_table] {
        assert!(matches!(Engine::restore(config(), snapshot), Err(EngineError::BadSnapshot(_))));
    }
}

#[test]
fn configuration_is_validated() {
    assert!(matches!(
        Engine::<Row>::new(Config { batch_size: 0, ..config() }),
        Err(EngineError::Argument(e)) if e.argument == "batchSize"
    ));
}

proptest! {
    /// No input makes the engine panic: arbitrary names, ids, ops, data and results in any order.
    #[test]
    fn never_panics_on_any_input(
        calls in proptest::collection::vec((any::<String>(), any::<String>(), 0..4u8, any::<u8>(), 0..6u8, any::<u64>()), 1..60)
    ) {
        let mut e = Engine::new(Config { batch_size: 3, max_retries: 1, ..config() }).unwrap();
        let ops = [Op::Insert, Op::Update, Op::Upsert, Op::Delete];
        let mut now = 0u64;
        for (table, id, op, value, action, jump) in calls {
            now = now.saturating_add(jump % 100_000);
            let data = row(json!({ table.clone(): value, "n": value }));
            let priority = Priority::from_index(u32::from(value % 4)).unwrap();
            if let Ok(change) = Change::new(&table, &id, ops[op as usize], data, priority) {
                let _ = e.enqueue(change, now);
            }
            match action {
                0 => e.set_online(value % 2 == 0),
                1 => { e.retry_failed(None, now); }
                2 => { e.discard_failed(Some(u64::from(value))); }
                3 => { let _ = Engine::restore(config(), e.export()).map(|r| e = r); }
                _ => {}
            }
            if let Some(batch) = e.poll_batch(now) {
                let outcomes = batch.changes.iter().map(|c| ChangeOutcome {
                    seq: c.seq,
                    outcome: match value % 4 {
                        0 => Outcome::Applied,
                        1 => Outcome::Conflict { row: None },
                        2 => Outcome::Permanent { code: None, message: String::new() },
                        _ => Outcome::Transient { message: String::new(), retry_after_ms: Some(jump) },
                    },
                }).collect();
                prop_assert!(e.on_batch_result(batch.id, outcomes, now).is_ok());
            }
            let _ = (e.poll_timeout(), e.stats(), e.pending_changes(), e.failed_changes());
        }
    }

    /// Any JSON is either restored or refused, never a panic.
    #[test]
    fn restore_never_panics(text in "\\PC{0,300}", seq in any::<u64>(), order in any::<u64>()) {
        if let Ok(snapshot) = serde_json::from_str::<Snapshot<Row>>(&text) {
            let _ = Engine::restore(config(), snapshot);
        }
        let crafted = json!({"version": 1, "nextSeq": seq, "entries": [{
            "table": "t", "id": text, "op": "update", "priority": "low", "order": order, "seq": seq,
            "queuedAt": 0, "deadline": u64::MAX, "attempts": u32::MAX, "changes": 0, "state": {"kind": "blocked"}
        }]});
        if let Ok(snapshot) = serde_json::from_value::<Snapshot<Row>>(crafted) {
            let _ = Engine::restore(config(), snapshot);
        }
    }
}

fn answer(batch: &Batch<Row>, outcome: Outcome<Row>) -> Vec<ChangeOutcome<Row>> {
    batch.changes.iter().map(|c| ChangeOutcome { seq: c.seq, outcome: outcome.clone() }).collect()
}

fn with_strategy(strategy: ConflictStrategy) -> Engine<Row> {
    Engine::new(Config { on_conflict: FastMap::from_iter([("plans".to_owned(), strategy)]), ..config() }).unwrap()
}

#[test]
fn a_conflict_or_a_missing_row_is_never_counted_synced_and_the_app_hears_of_it() {
    let server_row = row(json!({"id": "p", "name": "theirs", "last_changed": "2027"}));
    for (outcome, reason) in [
        (Outcome::Conflict { row: server_row.clone() }, ConflictReason::Newer),
        (Outcome::Missing, ConflictReason::Missing),
    ] {
        let mut e = engine();
        let seq = queue(&mut e, "plans", "p", Op::Update, json!({"name": "mine"}), Priority::Critical, 0);
        let batch = e.poll_batch(0).unwrap();
        e.on_batch_result(batch.id, answer(&batch, outcome.clone()), 10).unwrap();
        let stats = e.stats();
        assert_eq!((stats.successful_syncs, stats.conflicts, stats.pending, stats.failed_syncs), (0, 1, 0, 0));
        let conflicts = e.take_conflicts();
        assert_eq!(conflicts.len(), 1);
        let c = &conflicts[0];
        assert_eq!((c.seq, c.reason, c.resolution), (seq, reason, Resolution::ServerWins));
        assert_eq!(c.data, row(json!({"name": "mine"})));
        let expected_row = if reason == ConflictReason::Newer { server_row.clone() } else { None };
        assert_eq!(c.server_row, expected_row);
        assert!(e.take_conflicts().is_empty(), "each conflict is handed out once");
    }
}

#[test]
fn client_wins_resends_forced_once_and_a_missing_row_goes_to_the_failed_list() {
    let mut e = with_strategy(ConflictStrategy::ClientWins);
    let seq = queue(&mut e, "plans", "p", Op::Update, json!({"name": "mine"}), Priority::Critical, 0);
    let watermark = e.flush_all(0);
    let batch = e.poll_batch(0).unwrap();
    assert!(!batch.changes[0].force);
    e.on_batch_result(batch.id, answer(&batch, Outcome::Conflict { row: None }), 10).unwrap();
    assert!(!e.is_settled_through(watermark), "forceSyncAll waits for the resend");
    assert_eq!(e.take_conflicts()[0].resolution, Resolution::Resent);
    let resent = e.poll_batch(10).unwrap();
    assert!(resent.changes[0].seq > seq, "a new seq, so a replay log does not answer the first answer again");
    assert!(resent.changes[0].force);
    e.on_batch_result(resent.id, answer(&resent, Outcome::Missing), 20).unwrap();
    assert_eq!(e.take_conflicts()[0].resolution, Resolution::Failed);
    let failed = e.failed_changes();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].error.code.as_deref(), Some("missing"));
    assert_eq!(e.stats().successful_syncs, 0);
    assert!(e.is_settled_through(watermark));
}

#[test]
fn a_merge_strategy_leaves_the_result_to_the_shell_which_queues_it_forced() {
    let mut e = with_strategy(ConflictStrategy::Merge);
    queue(&mut e, "plans", "p", Op::Update, json!({"name": "mine"}), Priority::Critical, 0);
    let batch = e.poll_batch(0).unwrap();
    e.on_batch_result(batch.id, answer(&batch, Outcome::Conflict { row: row(json!({"id": "p"})) }), 10).unwrap();
    let conflicts = e.take_conflicts();
    assert_eq!(conflicts[0].resolution, Resolution::Merge);
    assert!(e.pending_changes().is_empty(), "the engine drops the write");
    let mut merged =
        Change::new("plans", "p", Op::Upsert, row(json!({"id": "p", "name": "both"})), Priority::Critical).unwrap();
    merged.force = true;
    e.enqueue(merged, 10).unwrap();
    let batch = e.poll_batch(10).unwrap();
    assert!(batch.changes[0].force && batch.changes[0].op == Op::Upsert);
}

#[test]
fn a_merged_row_that_is_refused_again_goes_to_the_failed_list_instead_of_merging_forever() {
    // A merge function's row for a record hidden by row-level security is "missing" again: merging it once
    // more would loop (seen: hundreds of merges a second), so it fails and the caller decides.
    let mut e = with_strategy(ConflictStrategy::Merge);
    queue(&mut e, "plans", "p", Op::Update, json!({"name": "mine"}), Priority::Critical, 0);
    let watermark = e.flush_all(0);
    let batch = e.poll_batch(0).unwrap();
    e.on_batch_result(batch.id, answer(&batch, Outcome::Missing), 10).unwrap();
    assert_eq!(e.take_conflicts()[0].resolution, Resolution::Merge);
    let mut merged =
        Change::new("plans", "p", Op::Upsert, row(json!({"id": "p", "name": "both"})), Priority::Critical).unwrap();
    merged.force = true;
    e.enqueue(merged, 10).unwrap();
    for outcome in [Outcome::Missing, Outcome::Conflict { row: None }] {
        let mut e2 = with_strategy(ConflictStrategy::Merge);
        let mut again =
            Change::new("plans", "p", Op::Upsert, row(json!({"id": "p", "name": "both"})), Priority::Critical).unwrap();
        again.force = true;
        e2.enqueue(again, 10).unwrap();
        let batch = e2.poll_batch(10).unwrap();
        e2.on_batch_result(batch.id, answer(&batch, outcome), 20).unwrap();
        assert_eq!(e2.take_conflicts()[0].resolution, Resolution::Failed);
        assert_eq!(e2.failed_changes().len(), 1);
        assert!(e2.poll_batch(100_000).is_none(), "nothing is sent again");
    }
    let batch = e.poll_batch(10).unwrap();
    e.on_batch_result(batch.id, answer(&batch, Outcome::Missing), 20).unwrap();
    assert_eq!(e.take_conflicts()[0].resolution, Resolution::Failed);
    assert!(e.is_settled_through(watermark));
    assert_eq!(e.stats().successful_syncs, 0);
}

#[test]
fn no_token_returns_the_batch_untouched_and_nothing_is_sent_until_one_comes() {
    let mut e = engine();
    queue(&mut e, "plans", "p", Op::Insert, json!({"id": "p"}), Priority::Critical, 0);
    let batch = e.poll_batch(0).unwrap();
    e.on_batch_unsent(batch.id, "getAccessToken gave no token", 5).unwrap();
    let stats = e.stats();
    assert!(stats.needs_auth);
    assert_eq!(stats.last_error.as_deref(), Some("getAccessToken gave no token"));
    assert_eq!((stats.pending, stats.retries, stats.successful_syncs, stats.requests), (1, 0, 0, 0));
    assert_eq!(e.pending_changes()[0].attempts, 0, "no attempt counted");
    assert_eq!(e.poll_timeout(), None);
    assert!(e.poll_batch(100_000).is_none());
    e.set_needs_auth(None);
    let batch = e.poll_batch(100_000).unwrap();
    assert_eq!(batch.changes[0].op, Op::Insert, "never sent, so still an insert");
    assert!(!e.stats().needs_auth);
}

#[test]
fn a_write_refused_as_too_large_is_only_ever_sent_alone_again() {
    let mut e = Engine::new(Config { batch_size: 5, ..config() }).unwrap();
    for id in ["a", "big", "c"] {
        queue(&mut e, "plans", id, Op::Upsert, json!({"id": id}), Priority::Critical, 0);
    }
    let batch = e.poll_batch(0).unwrap();
    let outcomes = batch
        .changes
        .iter()
        .map(|c| ChangeOutcome {
            seq: c.seq,
            outcome: if c.id == "big" { Outcome::TooLarge { message: "HTTP 413".into() } } else { Outcome::Applied },
        })
        .collect();
    e.on_batch_result(batch.id, outcomes, 1).unwrap();
    assert_eq!(e.failed_changes()[0].error.code.as_deref(), Some("413"));
    assert_eq!(e.stats().successful_syncs, 2);
    for id in ["d", "e"] {
        queue(&mut e, "plans", id, Op::Upsert, json!({"id": id}), Priority::Critical, 2);
    }
    assert_eq!(e.retry_failed(None, 2), 1);
    let first = e.poll_batch(2).unwrap();
    assert_eq!(ids(&first), ["plans/big"], "the retried write goes alone");
    e.on_batch_result(first.id, applied(&first), 3).unwrap();
    assert_eq!(ids(&e.poll_batch(3).unwrap()), ["plans/d", "plans/e"]);
}

#[test]
fn a_merged_row_goes_in_under_the_edits_made_while_the_conflicted_write_was_away() {
    let mut e = with_strategy(ConflictStrategy::Merge);
    queue(&mut e, "plans", "p", Op::Update, json!({"name": "mine"}), Priority::Critical, 0);
    let batch = e.poll_batch(0).unwrap();
    queue(&mut e, "plans", "p", Op::Update, json!({"weeks": 5}), Priority::Low, 1);
    e.on_batch_result(batch.id, answer(&batch, Outcome::Conflict { row: row(json!({"id": "p", "weeks": 1})) }), 2)
        .unwrap();
    assert_eq!(e.take_conflicts().len(), 1);
    let mut merged =
        Change::new("plans", "p", Op::Upsert, row(json!({"id": "p", "name": "mine", "weeks": 1})), Priority::Critical)
            .unwrap();
    merged.force = true;
    let seq = e.enqueue_resolved(merged, 3).unwrap();
    let batch = e.poll_batch(3).unwrap();
    assert_eq!(batch.changes.len(), 1);
    let write = &batch.changes[0];
    assert_eq!((write.op, write.seq, write.force), (Op::Upsert, seq, true));
    assert_eq!(write.data, row(json!({"id": "p", "name": "mine", "weeks": 5})), "the later edit stays on top");
}

#[test]
fn holds_nothing_says_what_an_empty_export_says_in_every_state_a_write_can_be_in() {
    let mut e = engine();
    let same = |e: &Engine<Row>| assert_eq!(e.holds_nothing(), e.export().entries.is_empty(), "{:?}", e.export());
    same(&e);
    queue(&mut e, "plans", "p", Op::Upsert, json!({"id": "p"}), Priority::Critical, 0);
    same(&e);
    let batch = e.poll_batch(0).unwrap();
    same(&e); // in flight
    queue(&mut e, "plans", "p", Op::Update, json!({"n": 1}), Priority::Low, 1);
    let refused = Outcome::Permanent { code: None, message: "no".into() };
    e.on_batch_result(batch.id, vec![ChangeOutcome { seq: batch.changes[0].seq, outcome: refused }], 2).unwrap();
    assert!(!e.holds_nothing(), "failed, with a write blocked behind it");
    same(&e);
    assert_eq!(e.discard_failed(None), 1);
    same(&e); // the blocked write is pending now
    let batch = e.poll_batch(u64::MAX / 2).unwrap();
    e.on_batch_result(batch.id, applied(&batch), 3).unwrap();
    assert!(e.holds_nothing(), "{:?}", e.export());
    same(&e);
}

/// Another tab's change reaches the queue after its own newer edit of the record: the newer columns win, as they
/// would have had the two been queued in the order they were made.
#[test]
fn a_change_made_before_the_pending_write_of_its_record_goes_beneath_it() {
    let change = |data: Value| Change::new("plans", "p", Op::Update, row(data), Priority::Low).unwrap();
    let mut e = engine();
    queue(&mut e, "plans", "p", Op::Update, json!({"name": "newer"}), Priority::Low, 20);
    let seq = e.enqueue_made(change(json!({"name": "older", "weeks": 3})), 5, 10).unwrap();
    let batch = e.poll_batch(u64::MAX / 2).unwrap();
    assert_eq!(batch.changes.len(), 1);
    let write = &batch.changes[0];
    assert_eq!(write.seq, seq, "the composition is new content, under a seq of its own");
    assert_eq!(write.data, row(json!({"name": "newer", "weeks": 3})));

    // Made after the pending write: on top, as a change queued now.
    let mut e = engine();
    queue(&mut e, "plans", "p", Op::Update, json!({"name": "older"}), Priority::Low, 20);
    e.enqueue_made(change(json!({"name": "newer"})), 25, 30).unwrap();
    let batch = e.poll_batch(u64::MAX / 2).unwrap();
    assert_eq!(batch.changes[0].data, row(json!({"name": "newer"})));

    // Where the record's write is on its way, the older change can only follow it.
    let mut e = engine();
    queue(&mut e, "plans", "p", Op::Update, json!({"name": "newer"}), Priority::Critical, 20);
    let first = e.poll_batch(20).unwrap();
    e.enqueue_made(change(json!({"name": "older"})), 5, 10).unwrap();
    e.on_batch_result(first.id, applied(&first), 21).unwrap();
    let batch = e.poll_batch(u64::MAX / 2).unwrap();
    assert_eq!(batch.changes[0].data, row(json!({"name": "older"})));
}

/// The times a change spans survive a store: a change taken in from it is ordered by its last edit, not its first.
#[test]
fn a_stored_write_keeps_when_it_was_last_edited() {
    let mut e = engine();
    queue(&mut e, "plans", "p", Op::Update, json!({"name": "first"}), Priority::Low, 5);
    queue(&mut e, "plans", "p", Op::Update, json!({"name": "last"}), Priority::Low, 30);
    let snapshot = Snapshot::<Row>::parse(&serde_json::to_string(&e.export()).unwrap()).unwrap();
    assert_eq!((snapshot.entries[0].queued_at, snapshot.entries[0].touched_at), (5, 30));
    let saved = &snapshot.entries[0];
    let mut other = engine();
    queue(&mut other, "plans", "p", Op::Update, json!({"name": "between"}), Priority::Low, 20);
    let made = Change::new("plans", "p", saved.op, saved.data.clone(), saved.priority).unwrap();
    other.enqueue_made(made, saved.queued_at, saved.touched_at).unwrap();
    let batch = other.poll_batch(u64::MAX / 2).unwrap();
    assert_eq!(batch.changes[0].data, row(json!({"name": "last"})));
}
