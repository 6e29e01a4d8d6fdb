//! The JSON the shell turns into JS values (`JSON.parse`): stats, pending and failed writes, conflicts, remote
//! changes, a custom transport's batch. Presentation at the edge (issue 10): the core's types keep Rust names,
//! and the camelCase names JS sees are written here, outside `src/core`. Not under `src/web`, which builds for
//! wasm32 only: these writers are compiled natively too, so that the native tests check them against the
//! TypeScript types (tests/contracts.rs). Written by hand, in the shape serde gives these types natively (a
//! test checks that the two agree), so that no serializer goes into the wasm binary.

use crate::core::json::ObjectWriter;
use crate::core::remote::{RemoteChange, RemoteOp};
use crate::core::wire::write_change;
use crate::core::{Conflict, ConflictReason, FailedView, Payload, PendingView, Resolution, Stats};

impl<P: Payload> PendingView<P> {
    pub fn write_json(&self, out: &mut String) {
        let mut o = ObjectWriter::new(out);
        write_change(&mut o, &self.write);
        o.u64("queuedAt", self.queued_at).u64("dueAt", self.due_at).u64("attempts", self.attempts.into());
        o.bool("inFlight", self.in_flight).bool("blocked", self.blocked).end();
    }
}

impl<P: Payload> FailedView<P> {
    pub fn write_json(&self, out: &mut String) {
        let mut o = ObjectWriter::new(out);
        write_change(&mut o, &self.write);
        o.u64("firstSeq", self.first_seq).u64("attempts", self.attempts.into());
        self.error.write_json(o.key("error"));
        o.u64("failedAt", self.failed_at).end();
    }
}

impl<P: Payload> Conflict<P> {
    pub fn write_json(&self, out: &mut String) {
        let mut o = ObjectWriter::new(out);
        o.u64("seq", self.seq).str("table", &self.table).str("id", &self.id).str("op", self.op.as_str());
        write_row(o.key("data"), self.data.as_ref());
        o.opt_str("lastChanged", self.last_changed.as_deref());
        write_row(o.key("serverRow"), self.server_row.as_ref());
        let reason = match self.reason {
            ConflictReason::Newer => "newer",
            ConflictReason::Missing => "missing",
        };
        let resolution = match self.resolution {
            Resolution::ServerWins => "serverWins",
            Resolution::Resent => "resent",
            Resolution::Failed => "failed",
            Resolution::Merge => "merge",
        };
        o.str("reason", reason).str("resolution", resolution).end();
    }
}

fn write_row<P: Payload>(out: &mut String, row: Option<&P>) {
    match row {
        Some(row) => row.write_json(out),
        None => out.push_str("null"),
    }
}

impl Stats {
    pub fn write_json(&self, out: &mut String) {
        let mut o = ObjectWriter::new(out);
        o.u64("totalChanges", self.total_changes).u64("mergedChanges", self.merged_changes);
        o.u64("successfulSyncs", self.successful_syncs).u64("failedSyncs", self.failed_syncs);
        o.u64("conflicts", self.conflicts).u64("retries", self.retries).u64("requests", self.requests);
        o.u64("pending", self.pending);
        let p = &self.pending_by_priority;
        let mut by = ObjectWriter::new(o.key("pendingByPriority"));
        by.u64("critical", p.critical).u64("high", p.high).u64("medium", p.medium).u64("low", p.low).end();
        o.u64("inFlight", self.in_flight).bool("isOnline", self.is_online);
        o.bool("isProcessing", self.is_processing).bool("isPaused", self.is_paused);
        o.bool("needsAuth", self.needs_auth).opt_str("lastError", self.last_error.as_deref());
        match &self.latency_ms {
            Some(l) => {
                let mut lo = ObjectWriter::new(o.key("latencyMs"));
                lo.u64("p50", l.p50).u64("p95", l.p95).u64("p99", l.p99).u64("max", l.max).u64("count", l.count);
                lo.end();
            }
            None => {
                o.raw("latencyMs", "null");
            }
        }
        o.end();
    }
}

impl<P: Payload> RemoteChange<P> {
    /// `{ table, id, op, row, version, own?, conflict? }` as the app's `onRemoteChanges` listeners get it;
    /// `row` is `null` without `with_row` (the browser puts its row object there itself).
    pub fn write_json(&self, out: &mut String, with_row: bool) {
        let mut o = ObjectWriter::new(out);
        o.str("table", &self.table).str("id", &self.id);
        o.str("op", if self.op == RemoteOp::Upsert { "upsert" } else { "delete" });
        write_row(o.key("row"), self.row.as_ref().filter(|_| with_row));
        o.u64("version", self.version);
        if self.own {
            o.bool("own", true);
        }
        if self.conflict {
            o.bool("conflict", true);
        }
        o.end();
    }
}

#[cfg(test)]
mod tests {
    use serde::Serialize;
    use serde_json::{json, Value};

    use crate::core::json::ObjectWriter;
    use crate::core::wire::write_change;
    use crate::core::{Change, ChangeOutcome, Config, Engine, Op, Outcome, Priority, Row};

    fn same<T: Serialize>(value: &T, write: impl Fn(&T, &mut String)) {
        let mut out = String::new();
        write(value, &mut out);
        let written: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(written, serde_json::to_value(value).unwrap());
    }

    #[test]
    fn views_are_what_serde_makes_of_them() {
        let mut e: Engine<Row> = Engine::new(Config::default()).unwrap();
        let row = |v: Value| v.as_object().cloned();
        let change = |id: &str, op, data| Change::new("t", id, op, data, Priority::Critical).unwrap();
        e.enqueue(change("a", Op::Upsert, row(json!({"x": "q\"", "last_changed": "2026-01-01"}))), 0).unwrap();
        e.enqueue(change("b", Op::Delete, None), 0).unwrap();
        e.enqueue(change("c", Op::Insert, row(json!({"n": 1.5}))), 0).unwrap();
        let batch = e.poll_batch(0).unwrap();
        same(&batch.changes[0], |v, out| {
            let mut o = ObjectWriter::new(out);
            write_change(&mut o, v);
            o.end();
        });
        let outcomes = vec![
            ChangeOutcome { seq: batch.changes[0].seq, outcome: Outcome::Conflict { row: row(json!({"x": 2})) } },
            ChangeOutcome {
                seq: batch.changes[1].seq,
                outcome: Outcome::Permanent { code: None, message: "no".into() },
            },
            ChangeOutcome { seq: batch.changes[2].seq, outcome: Outcome::Applied },
        ];
        e.on_batch_result(batch.id, outcomes, 5).unwrap();
        e.enqueue(change("d", Op::Update, row(json!({"y": null}))), 6).unwrap();
        for view in e.pending_changes() {
            same(&view, |v, out| v.write_json(out));
        }
        for view in e.failed_changes() {
            same(&view, |v, out| v.write_json(out));
        }
        for conflict in e.take_conflicts() {
            same(&conflict, |v, out| v.write_json(out));
        }
        same(&e.stats(), |v, out| v.write_json(out));
        same(&Engine::<Row>::new(Config::default()).unwrap().stats(), |v, out| v.write_json(out));
    }
}
