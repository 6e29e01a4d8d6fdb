//! A model of PostgREST over one user's view of a few tables, enough to answer `rest` mode's requests as the
//! real one would: `in.(...)` and `or=(last_changed.is.null,last_changed.lte."ts")` filters, `select=`,
//! `resolution=ignore-duplicates`, `return=representation`. Rows hidden by row-level security exist (an
//! insert of one conflicts) but are neither read nor written. It applies what a request says and nothing
//! more, so a missing condition in a request shows up as a wrong row, not as a model that covers for it.

#![allow(dead_code)] // Each test target uses its part.

use std::collections::{BTreeMap, HashSet};

use percent_encoding::percent_decode_str;
use record_sync::core::wire::{HttpRequest, HttpResponse};
use record_sync::core::Row;
use serde_json::Value;

pub type Key = (String, String);

#[derive(Default)]
pub struct Postgrest {
    pub rows: BTreeMap<Key, Row>,
    /// Rows that exist but that the user may not see (another user's).
    pub hidden: HashSet<Key>,
    /// Each write that lowered a row's `last_changed`: (record, stored, written).
    pub regressions: Vec<(Key, String, String)>,
    pub requests: Vec<(String, String)>,
}

pub fn id_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn stamp(row: &Row) -> Option<String> {
    row.get("last_changed").filter(|v| !v.is_null()).map(id_text)
}

fn decode(text: &str) -> String {
    percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// The items of `(...)`, split on commas outside double quotes, unquoted and unescaped.
fn list(text: &str) -> Vec<String> {
    let inner = text.strip_prefix('(').and_then(|t| t.strip_suffix(')')).unwrap_or(text);
    let (mut items, mut item, mut quoted, mut escaped) = (Vec::new(), String::new(), false, false);
    for c in inner.chars() {
        match c {
            _ if escaped => {
                item.push(c);
                escaped = false;
            }
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => items.push(std::mem::take(&mut item)),
            _ => item.push(c),
        }
    }
    items.push(item);
    items
}

struct Query {
    ids: Option<Vec<String>>,
    /// `lte` bound of the last-writer-wins condition.
    not_after: Option<String>,
    select_all: bool,
}

fn json(status: u16, rows: Vec<Value>) -> HttpResponse {
    HttpResponse { status, retry_after: None, body: Value::Array(rows).to_string() }
}

impl Postgrest {
    fn visible(&self, key: &Key) -> Option<&Row> {
        self.rows.get(key).filter(|_| !self.hidden.contains(key))
    }

    fn passes(&self, key: &Key, query: &Query) -> bool {
        match (self.visible(key), &query.not_after) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(row), Some(bound)) => stamp(row).is_none_or(|s| s.as_str() <= bound.as_str()),
        }
    }

    fn write(&mut self, key: &Key, row: Row) {
        if let (Some(old), Some(new)) = (self.rows.get(key).and_then(stamp), stamp(&row)) {
            if new < old {
                self.regressions.push((key.clone(), old, new));
            }
        }
        self.rows.insert(key.clone(), row);
    }

    pub fn handle(&mut self, request: &HttpRequest, pk: &str) -> HttpResponse {
        self.requests.push((request.method.to_owned(), request.path.clone()));
        let (path, query_text) = request.path.split_once('?').unwrap_or((&request.path, ""));
        let table = decode(path.trim_start_matches('/'));
        let mut query = Query { ids: None, not_after: None, select_all: false };
        for pair in query_text.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let (name, value) = (decode(name), decode(value));
            match name.as_str() {
                "or" => {
                    let items = list(&value);
                    assert_eq!(items[0], "last_changed.is.null", "unexpected condition {value}");
                    query.not_after = Some(items[1].strip_prefix("last_changed.lte.").expect("lte bound").to_owned());
                }
                "select" => query.select_all = value == "*",
                "on_conflict" | "columns" => {}
                _ if name == pk => query.ids = Some(list(value.strip_prefix("in.").expect("in filter"))),
                _ => panic!("unexpected query parameter {name}"),
            }
        }
        let key_of = |id: &str| (table.clone(), id.to_owned());
        let returned = |key: &Key, row: &Row, all: bool| -> Value {
            if all {
                Value::Object(row.clone())
            } else {
                let mut only = Row::new();
                only.insert(pk.to_owned(), Value::String(key.1.clone()));
                Value::Object(only)
            }
        };
        let body: Value = request.body.as_deref().map(|b| serde_json::from_str(b).unwrap()).unwrap_or(Value::Null);
        match request.method {
            "POST" => {
                let prefer = request.headers.iter().find(|(n, _)| *n == "Prefer").map(|(_, v)| v.as_str());
                assert_eq!(prefer, Some("resolution=ignore-duplicates,return=representation"));
                let mut out = Vec::new();
                for row in body.as_array().unwrap() {
                    let row = row.as_object().unwrap().clone();
                    let key = key_of(&id_text(&row[pk]));
                    if !self.rows.contains_key(&key) {
                        out.push(returned(&key, &row, false));
                        // A row the user inserts is the user's own.
                        self.hidden.remove(&key);
                        self.write(&key, row);
                    }
                }
                json(201, out)
            }
            "PATCH" | "DELETE" => {
                let mut out = Vec::new();
                for id in query.ids.clone().expect("a write names its rows") {
                    let key = key_of(&id);
                    if !self.passes(&key, &query) {
                        continue;
                    }
                    if request.method == "PATCH" {
                        let mut row = self.rows[&key].clone();
                        for (column, value) in body.as_object().unwrap() {
                            row.insert(column.clone(), value.clone());
                        }
                        out.push(returned(&key, &row, false));
                        self.write(&key, row);
                    } else {
                        out.push(returned(&key, &self.rows[&key], false));
                        self.rows.remove(&key);
                    }
                }
                json(200, out)
            }
            "GET" => {
                let ids = query.ids.expect("reads name their rows");
                let out = ids
                    .iter()
                    .map(|id| key_of(id))
                    .filter_map(|key| self.visible(&key).map(|row| returned(&key, row, query.select_all)))
                    .collect();
                json(200, out)
            }
            other => panic!("unexpected method {other}"),
        }
    }
}
