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

/// One request of the batch.
#[derive(Clone, Debug)]
enum Request {
    Rest(rest::Group),
    /// The whole batch in one call, built when the exchange starts.
    Rpc {
        request: HttpRequest,
        members: Vec<usize>,
    },
}

impl Request {
    fn members(&self) -> &[usize] {
        match self {
            Request::Rest(group) => &group.members,
            Request::Rpc { members, .. } => members,
        }
    }
}

pub struct Exchange {
    batch: Batch,
    /// Requests still to send.
    todo: VecDeque<Request>,
    /// The request sent and not yet answered.
    current: Option<Request>,
    outcomes: Vec<ChangeOutcome>,
}

impl Exchange {
    pub fn new(batch: &Batch, config: &WireConfig) -> Exchange {
        let todo = match &config.mode {
            WireMode::Rest { primary_keys } => {
                rest::plan(&batch.changes, primary_keys).into_iter().map(Request::Rest).collect()
            }
            WireMode::Rpc { .. } if batch.changes.is_empty() => VecDeque::new(),
            WireMode::Rpc { function } => VecDeque::from([Request::Rpc {
                request: rpc::request(batch, function, &config.client_id),
                members: (0..batch.changes.len()).collect(),
            }]),
        };
        Exchange { batch: batch.clone(), todo, current: None, outcomes: Vec::new() }
    }

    /// The next request to send, or `None` when the batch is done (or a request is still unanswered).
    pub fn next_request(&mut self) -> Option<HttpRequest> {
        if self.current.is_some() {
            return None;
        }
        let next = self.todo.pop_front()?;
        let request = match &next {
            Request::Rest(group) => rest::request(group, &self.batch.changes),
            Request::Rpc { request, .. } => request.clone(),
        };
        self.current = Some(next);
        Some(request)
    }

    pub fn on_response(&mut self, response: HttpResponse) {
        let Some(sent) = self.current.take() else { return };
        if (200..300).contains(&response.status) {
            match sent {
                Request::Rpc { .. } => match rpc::outcomes(&self.batch, &response.body) {
                    Ok(outcomes) => self.outcomes.extend(outcomes),
                    Err(message) => self.settle(&sent, Outcome::Transient { message, retry_after_ms: None }),
                },
                Request::Rest(_) => self.settle(&sent, Outcome::Applied),
            }
            return;
        }
        match (failure_outcome(&response), &sent) {
            (Outcome::Permanent { .. }, Request::Rest(group)) if group.members.len() > 1 => {
                for &member in group.members.iter().rev() {
                    self.todo.push_front(Request::Rest(group.single(member)));
                }
            }
            (outcome @ Outcome::Transient { .. }, _) => {
                self.settle(&sent, outcome);
                self.todo.clear();
            }
            (outcome, _) => self.settle(&sent, outcome),
        }
    }

    /// The request got no answer: it may or may not have been applied.
    pub fn on_network_error(&mut self, message: &str) {
        let Some(sent) = self.current.take() else { return };
        self.settle(&sent, Outcome::Transient { message: message.to_owned(), retry_after_ms: None });
        self.todo.clear();
    }

    /// The outcomes gathered; writes never answered are left out, and the engine counts them as transient.
    pub fn finish(self) -> Vec<ChangeOutcome> {
        self.outcomes
    }

    fn settle(&mut self, sent: &Request, outcome: Outcome) {
        for &member in sent.members() {
            let seq = self.batch.changes[member].seq;
            self.outcomes.push(ChangeOutcome { seq, outcome: outcome.clone() });
        }
    }
}
