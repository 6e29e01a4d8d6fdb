//! Conflicts reach the app: each write the server did not take (its row is newer, or it is missing) becomes
//! a frozen record `{ seq, table, id, op, data, lastChanged, serverRow, reason, resolution }`, kept in a
//! bounded list (most recent first) and handed to `onConflict` listeners. Under a merge strategy the app's
//! `(local, server) => row | null` runs here, not in the sans-IO engine, and its row is queued as a forced
//! upsert.

use std::collections::VecDeque;

use js_sys::{Array, Function};
use wasm_bindgen::prelude::*;

use super::js;
use super::row::{JsRow, Refused};
use super::{storage, Shared};
use crate::core::json::quoted;
use crate::core::remote::strip_feed_columns;
use crate::core::{Change, ConflictReason, Op, Payload, Priority, Resolution};

type Conflict = crate::core::Conflict<JsRow>;

/// Enough to see what happened lately without holding on to every row forever.
const KEEP: usize = 100;

#[derive(Default)]
pub struct Conflicts {
    /// Most recent first.
    recent: VecDeque<JsValue>,
    pub listeners: Vec<(u32, Function)>,
}

impl Conflicts {
    pub fn list(&self) -> Array {
        self.recent.iter().collect()
    }

    pub fn clear(&mut self) {
        self.recent.clear();
    }
}

fn resolution_name(resolution: Resolution) -> &'static str {
    match resolution {
        Resolution::ServerWins => "serverWins",
        Resolution::Resent => "resent",
        Resolution::Failed => "failed",
        Resolution::Merge => "merged",
    }
}

/// Resolves merges of the engine's new conflicts, records them and tells the listeners. Called with no
/// borrow held: merge functions and listeners may call back into the instance.
pub fn report(shared: &Shared, conflicts: Vec<Conflict>) {
    let merges = {
        let Ok(s) = shared.try_borrow() else { return };
        if s.destroyed {
            return;
        }
        s.merges.clone()
    };
    let mut stands = false;
    for mut conflict in conflicts {
        let server_row = conflict.server_row.clone();
        if let Some(row) = conflict.server_row.as_mut() {
            strip_feed_columns(row);
        }
        let resolution = match (
            conflict.resolution,
            merges.iter().find(|(table, _)| *table == conflict.table).map(|(_, merge)| merge),
        ) {
            (Resolution::Merge, Some(merge)) => resolve(shared, &conflict, merge),
            (resolution, _) => resolution_name(resolution),
        };
        // The server's row stands over the app's copy of the write: the feed brings nothing new, so the row
        // (or its absence) goes to the onRemoteChanges listeners again.
        let server_won = matches!(resolution, "serverWins" | "dropped" | "mergeFailed")
            || (conflict.reason == ConflictReason::Missing && resolution == "failed");
        if server_won {
            let Ok(mut s) = shared.try_borrow_mut() else { return };
            let s = &mut *s;
            if let Some(pull) = s.pull.as_mut() {
                let local = super::tabs::LocalView::new(&s.engine, &mut s.durable);
                pull.remote.on_server_stands(&conflict.table, &conflict.id, server_row.as_ref(), &local);
                stands = true;
            }
        }
        let record = js::view(|out| conflict.write_json(out));
        let _ = js_sys::Reflect::set(&record, &"resolution".into(), &resolution.into());
        let record = js::freeze(record);
        let listeners = {
            let Ok(mut s) = shared.try_borrow_mut() else { return };
            s.conflicts.recent.push_front(record.clone());
            s.conflicts.recent.truncate(KEEP);
            s.conflicts.listeners.clone()
        };
        for (_, listener) in listeners {
            if let Err(e) = listener.call1(&JsValue::UNDEFINED, &record) {
                js::console_error("RecordSync: an onConflict() listener threw:", &e);
            }
        }
    }
    if stands {
        super::pull::deliver(shared);
    }
}

/// Runs the app's merge function and queues its row as a forced upsert; `null` drops the write. A
/// `forceSyncAll()` that waited for the conflicted write waits for the merged one too.
fn resolve(shared: &Shared, conflict: &Conflict, merge: &Function) -> &'static str {
    let local = conflict.data.as_ref().map_or(JsValue::NULL, JsRow::to_js);
    let server = conflict.server_row.as_ref().map_or(JsValue::NULL, JsRow::to_js);
    let merged = match merge.call2(&JsValue::UNDEFINED, &local, &server) {
        Ok(merged) => merged,
        Err(e) => {
            js::console_error(
                &format!("RecordSync: the onConflict merge function of {} threw:", quoted(&conflict.table)),
                &e,
            );
            return "mergeFailed";
        }
    };
    if merged.is_null() || merged.is_undefined() {
        return "dropped";
    }
    let failed = |why: String| {
        js::console_error(
            &format!("RecordSync: the onConflict merge function of {} {why}", quoted(&conflict.table)),
            &merged,
        );
        "mergeFailed"
    };
    let row = match JsRow::from_js(&merged) {
        Ok(row) => row,
        Err(Refused::NotPlain) => return failed("must return a plain object (the full row) or null".into()),
        Err(Refused::Bad(why)) => return failed(format!("returned a row that {why}")),
    };
    let Ok(mut s) = shared.try_borrow_mut() else { return "mergeFailed" };
    let pk = s.primary_keys.get(&conflict.table).map_or("id", String::as_str).to_owned();
    if row.column(&pk).id_text().is_some_and(|key| key != conflict.id) {
        drop(s);
        return failed(format!("returned a row whose {pk} is not {}", quoted(&conflict.id)));
    }
    // Critical: the conflicted write was already due; its resolution should not wait another interval.
    let change = match Change::new(&conflict.table, &conflict.id, Op::Upsert, Some(row), Priority::Critical) {
        Ok(change) => Change { force: true, ..change },
        Err(e) => {
            drop(s);
            return failed(format!("returned a bad row: {e}"));
        }
    };
    match s.engine.enqueue_resolved(change, js::now()) {
        Ok(seq) => {
            // Reported a tick after the answer: the journal may have stored the record as settled since.
            storage::touch(&mut s, &conflict.table, &conflict.id);
            for waiter in s.waiters.iter_mut().filter(|w| w.watermark >= conflict.seq) {
                waiter.watermark = waiter.watermark.max(seq);
            }
            "merged"
        }
        Err(e) => {
            drop(s);
            failed(format!("returned a row that could not be queued: {e}"))
        }
    }
}

/// The merge functions by table, shared with the state: a list, as there are a few tables at most (a map of its
/// own was one more hash table's code in the wasm).
pub type Merges = std::rc::Rc<Vec<(String, Function)>>;
