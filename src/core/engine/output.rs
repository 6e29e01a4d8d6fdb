//! The engine's one way out and its ways in for answers, in the str0m / quinn-proto shape: the shell loops over
//! [`Engine::poll_output`] (requests to send, events, then when to call back), moves the bytes, and hands
//! each answer back with [`Engine::handle_response`] or one of the failure paths. The wire plan, its
//! splitting and the decoding of answers are the engine's ([`Exchange`]); the shell holds the token, the
//! timer and `fetch`.

use super::{Conflict, Engine};
use crate::core::error::EngineError;
use crate::core::payload::Payload;
use crate::core::wire::{Exchange, HttpRequest, HttpResponse};

/// A request to send now. Its answer goes back with its `id`.
#[derive(Clone, Debug, PartialEq)]
pub struct Transmit {
    pub id: u64,
    /// Relative to the base URL; authentication headers are the shell's (the core never sees a token). For
    /// the app's own transport, the body is the batch `send` receives.
    pub request: HttpRequest,
}

/// Something the app hears of.
#[derive(Clone, Debug, PartialEq)]
pub enum Event<P> {
    /// A write the server did not take (its row is newer, or it is missing), and what became of it.
    Conflict(Conflict<P>),
    /// Something a caller can observe (the stats, the pending or failed lists) changed since the last one:
    /// one event however many changes came before it was polled, so a shell rebuilds its view once.
    StateChanged,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Output<P> {
    Transmit(Transmit),
    Event(Event<P>),
    /// Nothing more to do now: call [`Engine::handle_timeout`] at this time (absolute ms), or never (`None`)
    /// until something else happens (a change, an answer, going online, resuming).
    Timeout(Option<u64>),
}

impl<P: Payload> Engine<P> {
    /// The clock moved to `now`: what is due by then goes out at the next [`Engine::poll_output`].
    pub fn handle_timeout(&mut self, now: u64) {
        self.now = self.now.max(now);
    }

    /// What to do next: events first, then the next request of the batch in flight (or of a new batch, if one
    /// is due), and last [`Output::Timeout`], which means nothing more until then. Requests go one at a time,
    /// except a run of `rest` mode's one-record requests, several of which may be out at once ([`Exchange`]);
    /// one batch is on its way at a time.
    pub fn poll_output(&mut self) -> Output<P> {
        loop {
            if let Some(event) = self.poll_event() {
                return Output::Event(event);
            }
            if self.exchange.is_none() {
                // A request of a batch given up (after a 401) or of the engine this one replaced is still out.
                if !self.awaiting.is_empty() {
                    return Output::Timeout(None);
                }
                let Some(batch) = self.poll_batch(self.now) else { return Output::Timeout(self.poll_timeout()) };
                self.exchange = Some(Exchange::owning(batch, &self.config.wire));
            }
            if let Some(transmit) = self.poll_flight() {
                return Output::Transmit(transmit);
            }
            if !self.awaiting.is_empty() {
                return Output::Timeout(None);
            }
            // Nothing to send for it (an empty batch): it settles at once.
            let now = self.now;
            self.finish_exchange(now);
        }
    }

    /// The next request of the batch in flight, never a new batch: a shell that may not start sending (its
    /// stored queue is being taken over) still finishes a batch of several requests (`rest` mode) that it
    /// began, since the take-over waits for it. `None` while the next request waits for an answer, or when no
    /// batch is in flight.
    pub fn poll_flight(&mut self) -> Option<Transmit> {
        let id = self.next_request;
        let request = self.exchange.as_mut()?.next_request(id)?;
        self.next_request += 1;
        self.awaiting.push(id);
        Some(Transmit { id, request })
    }

    /// This engine replaces `previous` (a restored or emptied queue) while `previous` may have requests on
    /// their way: their answers are waited for and then dropped (their writes are not this engine's), so two
    /// batches are never out at once; and request ids go on from `previous`'s, so that such an answer cannot
    /// be taken for one of this engine's requests.
    pub fn follow(&mut self, previous: &Engine<P>) {
        self.next_request = self.next_request.max(previous.next_request);
        for &id in &previous.awaiting {
            if !self.awaiting.contains(&id) {
                self.awaiting.push(id);
            }
        }
    }

    /// The events alone, without handing out a request: a shell asked for its stats between two ticks (right
    /// after a change, in the same task) learns whether they moved without starting a send.
    pub fn poll_event(&mut self) -> Option<Event<P>> {
        if let Some(conflict) = self.conflicts.pop_front() {
            return Some(Event::Conflict(conflict));
        }
        std::mem::take(&mut self.changed).then_some(Event::StateChanged)
    }

    /// A batch is in flight, or a request is still out (of a batch given up, or of the engine this one follows):
    /// what a shell that hands its queue on waits for.
    pub fn is_sending(&self) -> bool {
        self.exchange.is_some() || !self.awaiting.is_empty()
    }

    /// The batch a request on its way belongs to: the shell's journal notes which records it touches.
    pub fn in_flight_batch(&self) -> Option<&crate::core::Batch<P>> {
        self.exchange.as_ref().map(Exchange::batch)
    }

    /// The server's answer to request `id`.
    pub fn handle_response(&mut self, id: u64, response: HttpResponse, now: u64) -> Result<(), EngineError> {
        self.answer(id, now, |exchange| exchange.on_response(id, response))
    }

    /// Request `id` got no answer (network error, timeout, or the app's transport threw or rejected): its
    /// writes may or may not have been applied, and are tried again with backoff.
    pub fn handle_failure(&mut self, id: u64, message: &str, now: u64) -> Result<(), EngineError> {
        self.answer(id, now, |exchange| exchange.on_network_error(id, message))
    }

    /// Request `id` could not go out for want of a token the queue's owner signed (none to be had, another
    /// user's, or refused twice). The writes the server already answered settle; the others go back to the
    /// queue without costing an attempt, and nothing is sent until [`Engine::set_needs_auth`]`(None)`. A batch
    /// none of whose requests was answered does not count as a request. The writes of requests still out beside
    /// it fail as if unanswered (they may land), and those requests are waited for before another batch goes,
    /// their answers dropped.
    pub fn handle_unauthorized(&mut self, id: u64, reason: &str, now: u64) -> Result<(), EngineError> {
        self.answered(id, now)?;
        let Some(exchange) = self.exchange.take() else { return Err(EngineError::UnknownRequest(id)) };
        let batch_id = exchange.batch().id;
        let answered = exchange.was_answered();
        let outcomes = exchange.abandon(id, reason);
        if answered || !outcomes.is_empty() {
            self.on_batch_unauthorized(batch_id, outcomes, reason, now)
        } else {
            self.on_batch_unsent(batch_id, reason, now)
        }
    }

    /// Request `id` is on its way, and now it is not.
    fn answered(&mut self, id: u64, now: u64) -> Result<(), EngineError> {
        let at = self.awaiting.iter().position(|&out| out == id).ok_or(EngineError::UnknownRequest(id))?;
        self.awaiting.swap_remove(at);
        self.handle_timeout(now);
        Ok(())
    }

    fn answer(&mut self, id: u64, now: u64, feed: impl FnOnce(&mut Exchange<P>) -> bool) -> Result<(), EngineError> {
        self.answered(id, now)?;
        let Some(exchange) = self.exchange.as_mut() else { return Err(EngineError::UnknownRequest(id)) };
        if !feed(exchange) {
            return Err(EngineError::UnknownRequest(id));
        }
        if exchange.is_done() {
            self.finish_exchange(now);
        }
        Ok(())
    }

    /// Settles the batch of the exchange that is done with what its answers said.
    fn finish_exchange(&mut self, now: u64) {
        let Some(exchange) = self.exchange.take() else { return };
        let batch_id = exchange.batch().id;
        // The exchange's batch is the one in flight, so this cannot fail.
        let _ = self.on_batch_result(batch_id, exchange.finish(), now);
    }
}
