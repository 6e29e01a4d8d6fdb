//! One batch's trip to the server as a sans-IO state machine: it hands out requests one at a time, takes each
//! answer, and ends with an outcome per write. In `rest` mode a batch may take several requests; they go in
//! order, a transient failure stops the rest (a child must not overtake its parent), and a bulk request
//! refused for its content is split into one request per write, so the bad write is found and the others
//! still go through.

use std::collections::VecDeque;

use super::response::{failure_outcome, HttpResponse};
use super::rest;
use super::{rpc, HttpRequest, WireConfig, WireMode};
use crate::core::engine::{Batch, ChangeOutcome, Outcome};

/// Which writes of the batch one request carries, by index.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Group {
    pub kind: Kind,
    pub members: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Kind {
    /// `rest`: insert or upsert rows that all have these columns.
    Write { columns: Vec<String> },
    /// `rest`: patch one row.
    Patch,
    /// `rest`: delete rows of one table.
    Delete,
    /// `rpc`: the whole batch in one call.
    Rpc,
}

pub struct Exchange {
    batch: Batch,
    config: WireConfig,
    /// Requests still to send.
    todo: VecDeque<Group>,
    /// The request sent and not yet answered.
    current: Option<Group>,
    outcomes: Vec<ChangeOutcome>,
}

impl Exchange {
    pub fn new(batch: &Batch, config: &WireConfig) -> Exchange {
        let todo = match &config.mode {
            WireMode::Rest { primary_keys } => rest::plan(&batch.changes, primary_keys).into(),
            WireMode::Rpc { .. } if batch.changes.is_empty() => VecDeque::new(),
            WireMode::Rpc { .. } => {
                VecDeque::from([Group { kind: Kind::Rpc, members: (0..batch.changes.len()).collect() }])
            }
        };
        Exchange { batch: batch.clone(), config: config.clone(), todo, current: None, outcomes: Vec::new() }
    }

    /// The next request to send, or `None` when the batch is done (or a request is still unanswered).
    pub fn next_request(&mut self) -> Option<HttpRequest> {
        if self.current.is_some() {
            return None;
        }
        let group = self.todo.pop_front()?;
        let request = match &self.config.mode {
            WireMode::Rpc { function } => rpc::request(&self.batch, function, &self.config.client_id),
            WireMode::Rest { primary_keys } => rest::request(&group, &self.batch.changes, primary_keys),
        };
        self.current = Some(group);
        Some(request)
    }

    pub fn on_response(&mut self, response: HttpResponse) {
        let Some(group) = self.current.take() else { return };
        if (200..300).contains(&response.status) {
            match group.kind {
                Kind::Rpc => match rpc::outcomes(&self.batch, &response.body) {
                    Ok(outcomes) => self.outcomes.extend(outcomes),
                    Err(message) => self.settle(&group, Outcome::Transient { message, retry_after_ms: None }),
                },
                _ => self.settle(&group, Outcome::Applied),
            }
            return;
        }
        match failure_outcome(&response) {
            Outcome::Permanent { .. } if group.members.len() > 1 && group.kind != Kind::Rpc => {
                for &member in group.members.iter().rev() {
                    self.todo.push_front(Group { kind: group.kind.clone(), members: vec![member] });
                }
            }
            outcome @ Outcome::Transient { .. } => {
                self.settle(&group, outcome);
                self.todo.clear();
            }
            outcome => self.settle(&group, outcome),
        }
    }

    /// The request got no answer: it may or may not have been applied.
    pub fn on_network_error(&mut self, message: &str) {
        let Some(group) = self.current.take() else { return };
        self.settle(&group, Outcome::Transient { message: message.to_owned(), retry_after_ms: None });
        self.todo.clear();
    }

    /// The outcomes gathered; writes never answered are left out, and the engine counts them as transient.
    pub fn finish(self) -> Vec<ChangeOutcome> {
        self.outcomes
    }

    fn settle(&mut self, group: &Group, outcome: Outcome) {
        for &member in &group.members {
            let seq = self.batch.changes[member].seq;
            self.outcomes.push(ChangeOutcome { seq, outcome: outcome.clone() });
        }
    }
}
