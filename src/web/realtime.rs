//! Realtime (issue 11, `pull: { realtime: true }`): the socket in src/web/shell.js, opened once a catch-up
//! went through with the user's token. Rows it pushes go through the core's hold-and-rebase like pages do; a
//! delete (the key only) or a message of the wrong shape asks for a catch-up instead. Every "subscribed"
//! (first join, and each rejoin after a drop) starts a catch-up, so nothing in a gap is missed.

use std::rc::Rc;

use js_sys::{Array, Function};
use wasm_bindgen::prelude::*;

use super::js::get;
use super::row::{JsRow, Refused};
use super::{notify, pull, storage, Shared};

#[wasm_bindgen(module = "/src/web/shell.js")]
extern "C" {
    #[wasm_bindgen(js_name = openRealtime)]
    fn open_realtime(url: &str, tables: &Array, token: &str, on_event: &Function) -> JsValue;
}

pub struct Socket {
    handle: JsValue,
    /// The token the channel was last given.
    token: String,
    _on_event: Closure<dyn FnMut(JsValue)>,
}

impl Socket {
    fn call(&self, method: &str, arg: &JsValue) {
        if let Ok(f) = get(&self.handle, method).dyn_into::<Function>() {
            let _ = f.call1(&self.handle, arg);
        }
    }

    pub fn close(&self) {
        self.call("close", &JsValue::UNDEFINED);
    }
}

/// Opens the socket if realtime is wanted, none is open, and the owner's token is known. Another user's token
/// is never given to the channel: the server would send that user's rows to this instance, whose listeners,
/// queue and cursor are the owner's (a sign-in switch on one instance, a wrong token).
pub fn ensure(shared: &Shared) {
    let (url, tables, token) = {
        let Ok(s) = shared.try_borrow() else { return };
        let Some(pull) = s.pull.as_ref().filter(|p| p.socket.is_none() && !s.destroyed) else { return };
        let (Some(url), Some(token)) = (pull.realtime_url.clone(), s.token.clone()) else { return };
        if !storage::is_owners(&s, &token) {
            return;
        }
        (url, pull.tables.clone(), token)
    };
    let weak = Rc::downgrade(shared);
    let on_event = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        if let Some(shared) = weak.upgrade() {
            on_event(&shared, &event);
        }
    });
    let tables: Array = tables.iter().map(|t| JsValue::from_str(t)).collect();
    let handle = open_realtime(&url, &tables, &token, on_event.as_ref().unchecked_ref());
    let socket = Socket { handle, token, _on_event: on_event };
    let Ok(mut s) = shared.try_borrow_mut() else { return socket.close() };
    let destroyed = s.destroyed;
    match s.pull.as_mut() {
        Some(pull) if !destroyed => pull.socket = Some(socket),
        _ => socket.close(),
    }
}

/// Gives the channel the instance's current token when it changed (`setAccessToken`, a refresh). Another
/// user's token closes the channel instead; the catch-up after the owner's token is back opens it again.
pub fn sync_token(shared: &Shared) {
    let Ok(mut s) = shared.try_borrow_mut() else { return };
    let Some(token) = s.token.clone() else { return };
    if !storage::is_owners(&s, &token) {
        if let Some(pull) = s.pull.as_mut() {
            if let Some(socket) = pull.socket.take() {
                socket.close();
            }
            pull.realtime_connected = false;
        }
        return;
    }
    if let Some(socket) = s.pull.as_mut().and_then(|p| p.socket.as_mut()).filter(|socket| socket.token != token) {
        socket.call("setToken", &JsValue::from_str(&token));
        socket.token = token;
    }
}

fn on_event(shared: &Shared, event: &JsValue) {
    let kind = get(event, "type").as_string().unwrap_or_default();
    {
        let Ok(mut s) = shared.try_borrow_mut() else { return };
        let s = &mut *s;
        let Some(pull) = s.pull.as_mut() else { return };
        match kind.as_str() {
            "subscribed" => {
                pull.realtime_connected = true;
                pull.remote.request_pull();
            }
            "closed" => {
                pull.realtime_connected = false;
                pull.remote.request_pull();
            }
            "change" => {
                let table = get(event, "table").as_string().unwrap_or_default();
                let record = get(event, "record");
                match get(event, "op").as_string().as_deref() {
                    Some("INSERT" | "UPDATE") => match JsRow::from_js(&record) {
                        Ok(row) => {
                            let _ = pull.remote.on_realtime_row(
                                &table,
                                &row,
                                &super::tabs::LocalView::new(&s.engine, &mut s.durable),
                            );
                        }
                        Err(Refused::NotPlain) => {
                            pull.remote.on_realtime_other(Some(&format!("a {table} row that is not an object")))
                        }
                        Err(Refused::Bad(why)) => {
                            pull.remote.on_realtime_other(Some(&format!("a {table} row that {why}")))
                        }
                    },
                    // Only the key: what happened is read from the feed.
                    Some("DELETE") => pull.remote.on_realtime_other(None),
                    _ => pull
                        .remote
                        .on_realtime_other(Some("a postgres_changes message without INSERT, UPDATE or DELETE")),
                }
            }
            _ => {}
        }
    }
    pull::kick(shared);
    pull::deliver_soon(shared);
    notify(shared);
}
