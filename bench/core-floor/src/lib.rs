//! Drives the core as the browser shell does, from one export whose inputs decide every branch, so that nothing
//! it could reach is left out of the measured wasm. The rows are the simplest payload that does the job (JSON
//! text per column): the browser's row type calls into JS instead, which is the shell's share.

use record_sync::core::journal::{self, Journal, StoredRecord};
use record_sync::core::json::{Json, ObjectWriter};
use record_sync::core::remote::{PullOptions, Remote};
use record_sync::core::wire::{HttpResponse, WireConfig, WireMode};
use record_sync::core::{Change, Column, Config, ConflictStrategy, Engine, Op, Output, Payload, Priority};

/// Columns and their values as JSON text, in order.
#[derive(Debug, Clone, Default)]
struct TextRow(Vec<(String, String)>);

impl Payload for TextRow {
    fn patch(&mut self, changes: Self) {
        for (name, value) in changes.0 {
            match self.0.iter_mut().find(|(n, _)| *n == name) {
                Some(column) => column.1 = value,
                None => self.0.push((name, value)),
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn columns(&self) -> Vec<String> {
        self.0.iter().map(|(name, _)| name.clone()).collect()
    }

    fn invalid_column(&self) -> Option<String> {
        None
    }

    fn column(&self, name: &str) -> Column {
        let Some((_, text)) = self.0.iter().find(|(n, _)| n == name) else { return Column::Absent };
        match Json::parse(text) {
            Ok(Json::Null) => Column::Null,
            Ok(Json::String(s)) => Column::Text(s.into_owned()),
            Ok(_) => Column::Other(text.clone()),
            Err(_) => Column::Absent,
        }
    }

    fn remove_column(&mut self, name: &str) {
        self.0.retain(|(n, _)| n != name);
    }

    fn write_json(&self, out: &mut String) {
        let mut o = ObjectWriter::new(out);
        for (name, value) in &self.0 {
            o.raw(name, value);
        }
        o.end();
    }

    fn from_json(text: &str) -> Option<Self> {
        match Json::parse(text).ok()? {
            Json::Object(members, _) => {
                Some(TextRow(members.iter().map(|(k, v)| (k.to_string(), v.to_text())).collect()))
            }
            _ => None,
        }
    }
}

/// `text`: lines of changes and every answer's body; `mode`: the wire mode, conflict strategy, status and
/// whether the journal compacts. Returns a sum of what it saw, so that nothing is optimized away.
///
/// # Safety
/// `ptr` and `len` are a UTF-8 text in this module's memory.
#[no_mangle]
pub unsafe extern "C" fn drive(ptr: *const u8, len: usize, mode: u32) -> u64 {
    let text = std::str::from_utf8(std::slice::from_raw_parts(ptr, len)).unwrap_or_default();
    let mut config = Config::default();
    config.parents.insert("child".into(), vec!["parent".into()]);
    let strategy = if mode & 1 == 0 { ConflictStrategy::ClientWins } else { ConflictStrategy::Merge };
    config.on_conflict.insert("t".into(), strategy);
    let wire = match mode & 6 {
        0 => WireMode::Rpc { function: "f".into() },
        2 => WireMode::Rest { primary_keys: Default::default() },
        _ => WireMode::Custom,
    };
    config.wire = WireConfig { mode: wire, client_id: text.into() };
    let Ok(mut engine) = Engine::<TextRow>::new(config.clone()) else { return 0 };
    let mut sum = 0;
    for (i, line) in text.lines().enumerate() {
        let op = if i % 3 == 0 { Op::Insert } else { Op::Upsert };
        let priority = Priority::from_index(i as u32 % 4).unwrap_or(Priority::Low);
        if let Ok(change) = Change::new("t", line, op, TextRow::from_json(line), priority) {
            sum += engine.enqueue(change, i as u64).unwrap_or(0);
        }
    }
    engine.handle_timeout(1_000);
    loop {
        match engine.poll_output() {
            Output::Transmit(transmit) => {
                sum += transmit.id;
                let answer = HttpResponse { status: (mode >> 3) as u16, retry_after: None, body: text.into() };
                let _ = engine.handle_response(transmit.id, answer, 2_000);
                let _ = engine.handle_failure(transmit.id + 1, text, 2_000);
                let _ = engine.handle_unauthorized(transmit.id + 2, text, 2_000);
            }
            Output::Event(event) => sum += std::mem::size_of_val(&event) as u64,
            Output::Timeout(at) => {
                sum += at.unwrap_or(0);
                break;
            }
        }
    }
    sum += engine.stats().pending + engine.pending_changes().len() as u64 + engine.failed_changes().len() as u64;
    sum += (engine.retry_failed(None, 5) + engine.discard_failed(Some(3))) as u64 + engine.flush_all(7);
    let mut journal = Journal::default();
    journal.touch("t", text);
    if mode & 64 != 0 {
        journal.touch_all();
    }
    let written = journal.take(&engine, text, Some(text)).map(|w| w.text).unwrap_or_default();
    let Ok(mut restored) = Engine::restore(config, engine.export()) else { return sum };
    let stored = journal::replay::<TextRow>(vec![StoredRecord { text: Ok(written), rows: Vec::new() }]);
    if let Ok(Some(stored)) = stored {
        sum += restored.carry(stored.snapshot.entries).len() as u64;
    }
    let options = PullOptions { tables: vec!["t".into()], page_size: 100, primary_keys: Default::default() };
    let mut remote = Remote::<TextRow>::new(text, options);
    remote.request_pull();
    if let Some(number) = remote.begin_pull() {
        sum += number + remote.page_request().len() as u64;
        sum += remote.on_page(text, &restored, 9).unwrap_or(false) as u64;
    }
    if let Some(row) = TextRow::from_json(text) {
        let _ = remote.on_realtime_row("t", &row, &restored);
    }
    remote.settle(&restored);
    sum += remote.take_ready().len() as u64 + remote.take_moved_cursor().is_some() as u64;
    sum + record_sync::core::owner::jwt_subject(text).map_or(0, |s| s.len() as u64)
}
