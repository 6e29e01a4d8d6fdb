//! One batch's trip to the server as a sans-IO state machine: it hands out requests, takes each answer, and
//! ends with an outcome per write. Requests go in order and a transient failure stops the rest (a child must
//! not overtake its parent). The one exception is a run of `rest` mode's one-record requests (a `PATCH`, or the
//! `GET` that follows a conditional write that touched nothing): no two of them touch the same record, and none
//! creates or removes a row another could need, so up to [`MAX_IN_FLIGHT`] of them are out at once instead of
//! each waiting a round trip for the one before. A row's constraints, triggers or policies may still read
//! another row of the run (a unique value passed from one row to the next): a write refused for good while
//! others were out beside it goes once more, alone, after them, so that it is refused only where sending one at
//! a time would have refused it. Only the server's word confirms a write: in `rest` mode the rows PostgREST
//! returns, in `rpc` mode the function's result per write; a 2xx that is neither is transient.
//!
//! A request refused as a whole (413, or a permanent error that names no single write) is split in two and
//! each half sent on its own, until the write at fault is alone: it fails, the others go through.

use std::collections::VecDeque;

use super::response::{failure_outcome, HttpResponse};
use super::rest::{self, Absent, Group, Kind};
use super::{custom, rpc, HttpRequest, WireConfig, WireMode};

use crate::core::change::{timestamp_micros, LAST_CHANGED};
use crate::core::engine::{Batch, ChangeOutcome, Outcome, OutgoingChange};
use crate::core::json::Json;
use crate::core::payload::Payload;

/// How many of a run of one-record requests are out at once: browsers open six connections to a host over
/// HTTP/1.1, and the catch-up and a token refresh may want one each.
pub const MAX_IN_FLIGHT: usize = 4;

/// One request of the batch.
#[derive(Clone, Debug)]
enum Request {
    Rest(Group),
    /// Some of the batch's writes (all, unless a larger call was refused) in one call of the function.
    Rpc {
        members: Vec<usize>,
    },
    /// The whole batch, to the app's own `send`.
    Custom,
}

impl Request {
    /// The batch's writes it carries (`all` for a request that carries the whole batch).
    fn members<'a>(&'a self, all: &'a [usize]) -> &'a [usize] {
        match self {
            Request::Rest(group) => &group.members,
            Request::Rpc { members } => members,
            Request::Custom => all,
        }
    }

    /// The same request for the first and for the second half of its writes.
    fn halves(&self) -> [Request; 2] {
        let members = self.members(&[]);
        let (a, b) = members.split_at(members.len() / 2);
        match self {
            Request::Rest(group) => [Request::Rest(group.with(a)), Request::Rest(group.with(b))],
            Request::Rpc { .. } => [Request::Rpc { members: a.to_vec() }, Request::Rpc { members: b.to_vec() }],
            Request::Custom => [Request::Custom, Request::Custom],
        }
    }

    /// Whether it writes (and so may be split to find a bad write); a read after a write is not, and the app's
    /// own transport answers for its batch as a whole.
    fn splits(&self) -> bool {
        !matches!(self, Request::Rest(Group { kind: Kind::Read { .. }, .. }) | Request::Custom)
    }

    /// Whether it may be out beside others like it: it touches one existing row (or reads), so neither order
    /// between them nor a parent written before them depends on which lands first.
    fn runs_beside(&self) -> bool {
        matches!(self, Request::Rest(Group { kind: Kind::Patch | Kind::Read { .. }, .. }))
    }
}

pub struct Exchange<P> {
    batch: Batch<P>,
    function: String,
    client_id: String,
    /// Requests still to send.
    todo: VecDeque<Request>,
    /// The requests sent and not yet answered.
    out: Vec<Out>,
    /// Requests refused beside others, to go again one at a time, alone, before anything else.
    again: VecDeque<Request>,
    /// Why the exchange stopped early (a transient failure): a follow-up that an answer still out asks for
    /// ends the same way instead of going out.
    stopped: Option<Outcome<P>>,
    outcomes: Vec<ChangeOutcome<P>>,
    /// Every write of the batch, for requests that carry it whole.
    all: Vec<usize>,
    /// Some request of the batch was answered (it counts as a request made, whatever follows).
    answered: bool,
}

impl<P: Payload> Exchange<P> {
    pub fn new(batch: &Batch<P>, config: &WireConfig) -> Exchange<P> {
        Self::owning(batch.clone(), config)
    }

    /// [`Exchange::new`] for a batch nobody else needs: the engine's own, with no copy of its rows.
    pub fn owning(batch: Batch<P>, config: &WireConfig) -> Exchange<P> {
        let (todo, function) = match &config.mode {
            WireMode::Rest { primary_keys } => {
                (rest::plan(&batch.changes, primary_keys).into_iter().map(Request::Rest).collect(), String::new())
            }
            WireMode::Rpc { .. } if batch.changes.is_empty() => (VecDeque::new(), String::new()),
            WireMode::Rpc { function } => {
                (VecDeque::from([Request::Rpc { members: (0..batch.changes.len()).collect() }]), function.clone())
            }
            WireMode::Custom => (VecDeque::from([Request::Custom]), String::new()),
        };
        Exchange {
            all: (0..batch.changes.len()).collect(),
            batch,
            function,
            client_id: config.client_id.clone(),
            todo,
            out: Vec::new(),
            again: VecDeque::new(),
            stopped: None,
            outcomes: Vec::new(),
            answered: false,
        }
    }

    /// The batch this exchange carries.
    pub fn batch(&self) -> &Batch<P> {
        &self.batch
    }

    /// Every request is answered, and none is left to send.
    pub fn is_done(&self) -> bool {
        self.out.is_empty() && self.todo.is_empty() && self.again.is_empty()
    }

    /// Whether the server answered any request of the batch.
    pub fn was_answered(&self) -> bool {
        self.answered
    }

    /// The next request to send, under `id` (unique among those out), or `None` when the batch is done or the
    /// next must wait for an answer still out.
    pub fn next_request(&mut self, id: u64) -> Option<HttpRequest> {
        let alone = !self.again.is_empty();
        let next = if alone { self.again.front() } else { self.todo.front() }?;
        let joins = !alone
            && next.runs_beside()
            && self.out.len() < MAX_IN_FLIGHT
            && self.out.iter().all(|o| !o.alone && o.request.runs_beside());
        if !self.out.is_empty() && !joins {
            return None;
        }
        let next = if alone { self.again.pop_front() } else { self.todo.pop_front() }?;
        let request = match &next {
            Request::Rest(group) => rest::request(group, &self.batch.changes),
            Request::Rpc { members } => rpc::request(&self.batch, members, &self.function, &self.client_id),
            Request::Custom => custom::request(&self.batch, &self.client_id),
        };
        let beside = !self.out.is_empty();
        for other in &mut self.out {
            other.beside = true;
        }
        self.out.push(Out { id, request: next, alone, beside });
        Some(request)
    }

    /// The request `id` is no longer out: what it was, if it was this exchange's.
    fn take_out(&mut self, id: u64) -> Option<Out> {
        let at = self.out.iter().position(|out| out.id == id)?;
        Some(self.out.remove(at))
    }

    /// The answer to request `id`; `false` if no such request of this exchange is out.
    pub fn on_response(&mut self, id: u64, response: HttpResponse) -> bool {
        let Some(Out { request, beside, .. }) = self.take_out(id) else { return false };
        self.answered = true;
        self.on_answer(request, beside, response);
        true
    }

    fn on_answer(&mut self, sent: Request, beside: bool, response: HttpResponse) {
        if (200..300).contains(&response.status) {
            let result = match &sent {
                Request::Rpc { members } => rpc::outcomes(&self.batch, members, &response.body).map(|outcomes| {
                    self.outcomes.extend(outcomes);
                }),
                Request::Custom => custom::outcomes(&response.body).map(|outcomes| self.outcomes.extend(outcomes)),
                Request::Rest(group) => {
                    rest::returned_rows(&response.body).map(|rows| self.on_rows(group.clone(), &rows))
                }
            };
            if let Err(e) = result {
                self.stop(&sent, Outcome::Transient { message: String::from(e), retry_after_ms: None });
            }
            return;
        }
        let too_large = response.status == 413;
        match failure_outcome(&response) {
            outcome @ Outcome::Transient { .. } => self.stop(&sent, outcome),
            _ if sent.splits() && sent.members(&self.all).len() > 1 => {
                let [first, second] = sent.halves();
                self.follow_up(second, false);
                self.follow_up(first, false);
            }
            // Refused while another row's write was out beside it, which may be what refused it.
            _ if beside => self.follow_up(sent, true),
            Outcome::Permanent { message, .. } if too_large => self.settle(&sent, Outcome::TooLarge { message }),
            outcome => self.settle(&sent, outcome),
        }
    }

    /// What the rows a rest request returned say about each of its writes; follow-ups go first in line.
    fn on_rows(&mut self, group: Group, rows: &[Json<'_>]) {
        let changes = &self.batch.changes;
        let returned = rest::ids_of(rows, &group.pk);
        let (done, untouched): (Vec<usize>, Vec<usize>) =
            group.members.iter().partition(|&&i| returned.contains_key(&changes[i].id));
        let mut follow_ups: Vec<Request> = Vec::new();
        let mut outcomes: Vec<ChangeOutcome<P>> = Vec::new();
        match group.kind {
            Kind::Write { .. } => {
                outcomes.extend(done.iter().map(|&i| (i, Outcome::Applied)).map(|(i, o)| self.outcome(i, o)));
                // Rows that already existed: written over only where not newer.
                follow_ups
                    .extend(untouched.iter().map(|&i| Request::Rest(Group { kind: Kind::Patch, ..group.with(&[i]) })));
            }
            Kind::Patch | Kind::Delete => {
                outcomes.extend(done.iter().map(|&i| self.outcome(i, Outcome::Applied)));
                if !untouched.is_empty() {
                    let absent = if group.kind == Kind::Delete { Absent::Deleted } else { Absent::Missing };
                    follow_ups.push(Request::Rest(Group { kind: Kind::Read { absent }, ..group.with(&untouched) }));
                }
            }
            Kind::Read { absent } => {
                for &i in &group.members {
                    let change = &changes[i];
                    let outcome = match (rest::row_with_id(rows, &group.pk, &change.id), absent) {
                        // The row is there, yet an unconditional write touched nothing: the user may read it
                        // but not write it.
                        (Some(_), _) if change.force => Outcome::Permanent {
                            code: Some("42501".into()),
                            message: "the row is visible but this user may not write it".into(),
                        },
                        (Some(row), _) if is_newer(row, change) => {
                            Outcome::Conflict { row: row.object_text().and_then(P::from_json) }
                        }
                        // Written by someone else between the conditional write and this read, and not newer:
                        // no conflict; the next attempt's conditional write settles it.
                        (Some(_), _) => Outcome::Transient {
                            message: "the row changed while it was being written; trying again".into(),
                            retry_after_ms: None,
                        },
                        // Absent or hidden by row-level security (an upsert that found the row but could not
                        // write it lands here too: from here the two look the same).
                        (None, Absent::Missing) => Outcome::Missing,
                        (None, Absent::Deleted) => Outcome::Applied,
                    };
                    outcomes.push(self.outcome(i, outcome));
                }
            }
        }
        self.outcomes.extend(outcomes);
        for request in follow_ups.into_iter().rev() {
            self.follow_up(request, false);
        }
    }

    /// `request` goes next (`alone`: once nothing is out, with nothing beside it), unless the exchange has
    /// stopped: then its writes end as the others did.
    fn follow_up(&mut self, request: Request, alone: bool) {
        match self.stopped.clone() {
            Some(outcome) => self.settle(&request, outcome),
            None if alone => self.again.push_back(request),
            None => self.todo.push_front(request),
        }
    }

    fn outcome(&self, member: usize, outcome: Outcome<P>) -> ChangeOutcome<P> {
        ChangeOutcome { seq: self.batch.changes[member].seq, outcome }
    }

    /// Request `id` got no answer: it may or may not have been applied. `false` if no such request is out.
    pub fn on_network_error(&mut self, id: u64, message: &str) -> bool {
        let Some(Out { request, .. }) = self.take_out(id) else { return false };
        self.stop(&request, Outcome::Transient { message: message.to_owned(), retry_after_ms: None });
        true
    }

    /// The batch is given up, request `refused` having found no token to carry it: that request's writes and
    /// the unsent ones get no outcome, and those of the requests still out beside it, which may or may not be
    /// applied, end as if those got no answer.
    pub fn abandon(mut self, refused: u64, message: &str) -> Vec<ChangeOutcome<P>> {
        self.take_out(refused);
        let outcome = Outcome::Transient { message: message.to_owned(), retry_after_ms: None };
        for out in std::mem::take(&mut self.out) {
            self.settle(&out.request, outcome.clone());
        }
        self.outcomes
    }

    /// A transient failure ends the exchange: the requests after `sent` do not go (order), and their writes fail
    /// for the same reason, so that `lastError` and a `Retry-After` speak for them too. Requests already out
    /// beside it are still answered.
    fn stop(&mut self, sent: &Request, outcome: Outcome<P>) {
        self.settle(sent, outcome.clone());
        for unsent in std::mem::take(&mut self.again).into_iter().chain(std::mem::take(&mut self.todo)) {
            self.settle(&unsent, outcome.clone());
        }
        self.stopped.get_or_insert(outcome);
    }

    /// The outcomes gathered; writes an answer left out (an rpc answer without their seq) are missing, and the
    /// engine counts them as transient.
    pub fn finish(self) -> Vec<ChangeOutcome<P>> {
        self.outcomes
    }

    fn settle(&mut self, sent: &Request, outcome: Outcome<P>) {
        for &member in sent.members(&self.all) {
            let seq = self.batch.changes[member].seq;
            self.outcomes.push(ChangeOutcome { seq, outcome: outcome.clone() });
        }
    }
}

/// A request on its way.
struct Out {
    /// The id the caller gave it.
    id: u64,
    request: Request,
    /// Sent after a refusal beside others: nothing goes beside it.
    alone: bool,
    /// Another request was out at some time while it was.
    beside: bool,
}

/// Whether the stored row is newer than the write, by time: only then is it a conflict. A row without a stamp
/// is older than any write (as `record_sync_apply` has it), and so is every row for a write without one; a stamp
/// that cannot be read counts as newer, so the server's row stands.
fn is_newer<P>(row: &Json<'_>, change: &OutgoingChange<P>) -> bool {
    let theirs = match row.get(LAST_CHANGED) {
        None | Some(Json::Null) => return false,
        Some(stamp) => stamp.as_str().and_then(timestamp_micros),
    };
    let Some(ours) = &change.last_changed else { return false };
    match (theirs, timestamp_micros(ours)) {
        (Some(theirs), Some(ours)) => theirs > ours,
        _ => true,
    }
}
