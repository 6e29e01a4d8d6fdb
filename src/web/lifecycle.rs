//! Page lifecycle: when the page is hidden (`visibilitychange`) or goes away (`pagehide`), the changes due
//! within [`SOON_MS`] are sent at once, in requests marked `keepalive` so that they outlive the page (within the
//! browsers' 64 KB budget for such requests). Everything else is already stored and goes with the next page.

use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::EventTarget;

use super::js::{self, get};
use super::Shared;
use crate::core::wire::{HttpRequest, MAX_IN_FLIGHT};

/// Changes due within this window leave when the page is hidden (the high and medium priorities by default).
pub const SOON_MS: u64 = 30_000;
/// Request bodies up to this size are sent with `keepalive` while the page is hidden: the browsers' budget is
/// 64 KB for all keepalive requests in flight, and one batch is in flight at a time (its PATCHes, which may
/// be out several at once, share it: [`keepalive_budget`]).
const KEEPALIVE_BODY_BYTES: usize = 60 * 1024;

/// The largest body `request` may carry with `keepalive`.
pub fn keepalive_budget(request: &HttpRequest) -> usize {
    if request.method == "PATCH" {
        KEEPALIVE_BODY_BYTES / MAX_IN_FLIGHT
    } else {
        KEEPALIVE_BODY_BYTES
    }
}

pub struct Listeners {
    window: EventTarget,
    document: Option<EventTarget>,
    on_pagehide: Closure<dyn FnMut()>,
    on_visibility: Closure<dyn FnMut()>,
}

impl Listeners {
    pub fn remove(&self) {
        let _ = self.window.remove_event_listener_with_callback("pagehide", self.on_pagehide.as_ref().unchecked_ref());
        if let Some(document) = &self.document {
            let _ = document
                .remove_event_listener_with_callback("visibilitychange", self.on_visibility.as_ref().unchecked_ref());
        }
    }
}

/// Listens on the window and its document (none in a worker or during server-side rendering).
pub fn listen(shared: &Shared) -> Option<Listeners> {
    let global = js_sys::global();
    let window: EventTarget = global.clone().dyn_into().ok()?;
    let document = get(&global, "document").dyn_into::<EventTarget>().ok();
    let weak = Rc::downgrade(shared);
    let on_pagehide = Closure::<dyn FnMut()>::new(move || {
        if let Some(shared) = weak.upgrade() {
            hidden(&shared, true);
        }
    });
    let weak = Rc::downgrade(shared);
    let on_visibility = Closure::<dyn FnMut()>::new(move || {
        let state = get(&get(&js_sys::global(), "document"), "visibilityState").as_string();
        if let Some(shared) = weak.upgrade() {
            hidden(&shared, state.as_deref() == Some("hidden"));
        }
    });
    let _ = window.add_event_listener_with_callback("pagehide", on_pagehide.as_ref().unchecked_ref());
    if let Some(document) = &document {
        let _ = document.add_event_listener_with_callback("visibilitychange", on_visibility.as_ref().unchecked_ref());
    }
    Some(Listeners { window, document, on_pagehide, on_visibility })
}

fn hidden(shared: &Shared, hidden: bool) {
    {
        let Ok(mut s) = shared.try_borrow_mut() else { return };
        if s.destroyed {
            return;
        }
        s.durable.hidden = hidden;
        if !hidden {
            return;
        }
        let now = js::now();
        s.engine.flush_soon(SOON_MS, now);
    }
    // Now, in this task: the page may be gone before a later one.
    super::tick(shared);
}
