//! The payload in the browser: the app's row as a JS object (see its section of shell.js). Copied shallowly when queued,
//! merged by property assignment, written by `JSON.stringify` when sent; never parsed into Rust values.

use std::rc::Rc;

use js_sys::Object;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::core::{Column, Payload};

#[wasm_bindgen(module = "/src/web/shell.js")]
extern "C" {
    #[wasm_bindgen(js_name = copyRow)]
    fn copy_row(data: &JsValue) -> JsValue;
    #[wasm_bindgen(js_name = cloneRow)]
    fn clone_row(row: &Object) -> Object;
    #[wasm_bindgen(js_name = patchRow)]
    fn patch_row(row: &Object, changes: &Object);
    #[wasm_bindgen(js_name = isEmptyRow)]
    fn is_empty_row(row: &Object) -> bool;
    #[wasm_bindgen(js_name = rowColumn)]
    fn row_column(row: &Object, name: &JsValue) -> JsValue;
    #[wasm_bindgen(js_name = rowJson)]
    fn row_json(row: &Object) -> String;
    #[wasm_bindgen(js_name = parseRow)]
    fn parse_row(text: &str) -> JsValue;
}

/// The column names the core reads (`last_changed`, the primary keys) as JS strings, made once: passing a
/// Rust string to JS decodes it every time, which measured a sixth of `queueChange`.
const MAX_NAMES: usize = 16;

thread_local! {
    static NAMES: std::cell::RefCell<Vec<(String, JsValue)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Why a JS value is not a row.
pub enum Refused {
    /// Not a plain object (`{...}` or `Object.create(null)`): an array, a Date, a Map, a class instance.
    NotPlain,
    /// What is wrong with a column name or value.
    Bad(String),
}

/// A row the queue owns: the app never holds this object. Copies within the queue (the batch a write goes out
/// in, a conflict's row, the write a new change must follow) share it, and the first change to a shared row
/// copies it first: a write goes out without a copy of its row made in JS, and a shared row never changes
/// under another holder.
#[derive(Debug, Clone)]
pub struct JsRow(Rc<Object>);

impl JsRow {
    /// The queue's own copy of a plain object the app passed, or why there is none (for a TypeError).
    pub fn from_js(data: &JsValue) -> Result<JsRow, Refused> {
        let copy = copy_row(data);
        if copy.is_falsy() {
            return Err(Refused::NotPlain);
        }
        match copy.as_string() {
            Some(problem) => Err(Refused::Bad(problem)),
            None => Ok(JsRow(Rc::new(copy.unchecked_into()))),
        }
    }

    /// A plain object no one else holds (a structured clone the store just made), taken as the queue's own.
    pub fn cloned(object: JsValue) -> JsRow {
        JsRow(Rc::new(object.unchecked_into()))
    }

    /// A copy for the app (a view, a merge function's argument): changing it changes nothing queued.
    pub fn to_js(&self) -> JsValue {
        clone_row(&self.0).into()
    }

    /// The row for the app to keep: this object itself when nothing else holds it, else a deep copy, as JSON
    /// makes it, so that the app changing it changes nothing held here. A remote row is read from the server
    /// for its delivery (a page's row parsed, a realtime row copied by `from_js`); the objects it was made from
    /// are gone by then, so its nested values are its own too.
    pub fn into_app(self) -> JsValue {
        match Rc::try_unwrap(self.0) {
            Ok(row) => row.into(),
            Err(shared) => parse_row(&row_json(&shared)),
        }
    }

    /// The queue's own object, for a store that copies it before it returns (IndexedDB's structured clone).
    pub fn to_store(&self) -> JsValue {
        JsValue::from(&*self.0)
    }

    /// The object to change in place: this row's own, copied first if another holder shares it.
    fn own(&mut self) -> &Object {
        if Rc::strong_count(&self.0) > 1 {
            self.0 = Rc::new(clone_row(&self.0));
        }
        &self.0
    }
}

impl Default for JsRow {
    fn default() -> JsRow {
        JsRow(Rc::new(Object::new()))
    }
}

impl Payload for JsRow {
    fn patch(&mut self, changes: JsRow) {
        patch_row(self.own(), &changes.0);
    }

    fn is_empty(&self) -> bool {
        is_empty_row(&self.0)
    }

    fn columns(&self) -> Vec<String> {
        Object::keys(&self.0).iter().filter_map(|k| k.as_string()).collect()
    }

    /// Checked by [`JsRow::from_js`], the only way a row comes in from the app.
    fn invalid_column(&self) -> Option<String> {
        None
    }

    fn column(&self, name: &str) -> Column {
        let value = NAMES.with(|names| {
            let mut names = names.borrow_mut();
            if let Some((_, js)) = names.iter().find(|(known, _)| known == name) {
                return row_column(&self.0, js);
            }
            let js = JsValue::from_str(name);
            let value = row_column(&self.0, &js);
            if names.len() < MAX_NAMES {
                names.push((name.to_owned(), js));
            }
            value
        });
        if value.is_undefined() {
            Column::Absent
        } else if value.is_null() {
            Column::Null
        } else if let Some(text) = value.as_string() {
            Column::Text(text)
        } else {
            Column::Other(super::js::get(&value, "json").as_string().unwrap_or_default())
        }
    }

    fn remove_column(&mut self, name: &str) {
        let _ = js_sys::Reflect::delete_property(self.own(), &JsValue::from_str(name));
    }

    fn write_json(&self, out: &mut String) {
        out.push_str(&row_json(&self.0));
    }

    fn from_json(text: &str) -> Option<JsRow> {
        let row = parse_row(text);
        (!row.is_null()).then(|| JsRow(Rc::new(row.unchecked_into())))
    }
}
