//! `new RecordSync(options)`: every option checked, each bad one named in a `TypeError`.
//!
//! Ranges are the core's ([`Config::validate`]): a value of the wrong kind is passed on as an out-of-range
//! number so that the message comes from one place.

use std::collections::HashMap;

use js_sys::Function;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::js::{self, describe, get, is_object, keys};
use crate::core::wire::{WireConfig, WireMode, DEFAULT_RPC_FUNCTION};
use crate::core::{ArgumentError, Config};

pub const DEFAULT_TIMEOUT_MS: u32 = 15_000;
const MAX_TIMEOUT_MS: f64 = 600_000.0;

// "user" and "storage" are read by storage.rs (durable queue).
const OPTION_KEYS: [&str; 7] = ["transport", "maxRetries", "batchSize", "syncIntervals", "tables", "user", "storage"];
const HTTP_KEYS: [&str; 6] = ["url", "apiKey", "getAccessToken", "mode", "primaryKeys", "timeoutMs"];

pub struct HttpTransport {
    /// Without a trailing slash; request paths start with one.
    pub base_url: String,
    pub api_key: String,
    pub get_access_token: Option<Function>,
    pub wire: WireConfig,
    pub timeout_ms: u32,
}

pub enum Transport {
    Http(HttpTransport),
    /// `send` called with the transport object as `this`, so a class instance works too.
    Custom {
        send: Function,
        this: JsValue,
    },
}

pub struct Options {
    pub config: Config,
    pub transport: Transport,
}

fn bad(name: &str, message: impl AsRef<str>) -> JsValue {
    js::type_error(format!("RecordSync: options.{name} {}", message.as_ref()))
}

pub fn from_core(e: ArgumentError) -> JsValue {
    let gap = if e.message.starts_with('[') { "" } else { " " };
    js::type_error(format!("RecordSync: options.{}{gap}{}", e.argument, e.message))
}

pub fn parse(options: &JsValue, client_id: String, seed: u64) -> Result<Options, JsValue> {
    if !is_object(options) {
        return Err(js::type_error(format!("RecordSync: options must be an object, not {}", describe(options))));
    }
    if let Some(unknown) = keys(options).into_iter().find(|k| !OPTION_KEYS.contains(&k.as_str())) {
        return Err(bad(&unknown, format!("is not an option (known: {})", OPTION_KEYS.join(", "))));
    }
    let mut config = Config { seed, ..Config::default() };

    let value = get(options, "maxRetries");
    if !value.is_undefined() {
        config.max_retries = js::as_integer(&value, u32::MAX as f64).map_or(u32::MAX, |n| n as u32);
    }
    let value = get(options, "batchSize");
    if !value.is_undefined() {
        config.batch_size = js::as_integer(&value, u32::MAX as f64).map_or(usize::MAX, |n| n as usize);
    }
    let intervals = get(options, "syncIntervals");
    if !intervals.is_undefined() {
        if !is_object(&intervals) {
            return Err(bad(
                "syncIntervals",
                format!("must be an object keyed by SyncPriority, not {}", describe(&intervals)),
            ));
        }
        for key in keys(&intervals) {
            let index = match key.as_str() {
                "0" | "1" | "2" | "3" => key.parse::<usize>().unwrap_or(0),
                _ => return Err(bad("syncIntervals", format!("has {key:?}, which is not a SyncPriority (0 to 3)"))),
            };
            let ms = get(&intervals, &key);
            if !ms.is_undefined() {
                let ms = ms.as_f64().filter(|n| n.is_finite() && *n >= 0.0 && *n < 1e15);
                config.intervals_ms[index] = ms.map_or(u64::MAX, |n| n.round() as u64);
            }
        }
    }
    let tables = get(options, "tables");
    if !tables.is_undefined() {
        if !is_object(&tables) {
            return Err(bad("tables", format!("must be an object keyed by table name, not {}", describe(&tables))));
        }
        for table in keys(&tables) {
            let spec = get(&tables, &table);
            if !is_object(&spec) {
                return Err(bad(&format!("tables.{table}"), "must be an object like { parents: [\"plans\"] }"));
            }
            if let Some(unknown) = keys(&spec).into_iter().find(|k| k != "parents") {
                return Err(bad(&format!("tables.{table}.{unknown}"), "is not an option (known: parents)"));
            }
            let parents = get(&spec, "parents");
            let list: Vec<String> = if parents.is_undefined() {
                Vec::new()
            } else {
                let names: Option<Vec<String>> = js_sys::Array::is_array(&parents)
                    .then(|| js_sys::Array::from(&parents).iter().map(|v| v.as_string()).collect())
                    .flatten();
                names.ok_or_else(|| bad(&format!("tables.{table}.parents"), "must be an array of table names"))?
            };
            config.parents.insert(table, list);
        }
    }
    config.validate().map_err(from_core)?;

    let transport = parse_transport(&get(options, "transport"), client_id)?;
    Ok(Options { config, transport })
}

fn parse_transport(transport: &JsValue, client_id: String) -> Result<Transport, JsValue> {
    if !is_object(transport) {
        return Err(bad(
            "transport",
            format!("must be {{ url, apiKey, ... }} or {{ send(batch) }}, not {}", describe(transport)),
        ));
    }
    let send = get(transport, "send");
    if !send.is_undefined() {
        let send = send
            .dyn_into::<Function>()
            .map_err(|v| bad("transport.send", format!("must be a function, not {}", describe(&v))))?;
        if !get(transport, "url").is_undefined() {
            return Err(bad("transport", "must have either send or url, not both"));
        }
        return Ok(Transport::Custom { send, this: transport.clone() });
    }
    if let Some(unknown) = keys(transport).into_iter().find(|k| !HTTP_KEYS.contains(&k.as_str())) {
        return Err(bad(
            &format!("transport.{unknown}"),
            format!("is not an option (known: {}, or send)", HTTP_KEYS.join(", ")),
        ));
    }

    let url = get(transport, "url");
    let url = url
        .as_string()
        .filter(|u| u.starts_with("https://") || u.starts_with("http://") || u.starts_with('/'))
        .ok_or_else(|| {
        bad(
            "transport.url",
            format!(
                "must be the PostgREST URL as a string such as \"https://xyz.supabase.co/rest/v1\", not {}",
                describe(&url)
            ),
        )
    })?;
    let base_url = url.trim_end_matches('/').to_owned();

    let api_key = get(transport, "apiKey");
    let api_key = api_key
        .as_string()
        .filter(|k| !k.is_empty())
        .ok_or_else(|| bad("transport.apiKey", format!("must be a non-empty string, not {}", describe(&api_key))))?;

    let value = get(transport, "getAccessToken");
    let get_access_token = if value.is_undefined() || value.is_null() {
        None
    } else {
        Some(
            value
                .dyn_into::<Function>()
                .map_err(|v| bad("transport.getAccessToken", format!("must be a function, not {}", describe(&v))))?,
        )
    };

    let value = get(transport, "primaryKeys");
    let mut primary_keys = HashMap::new();
    if !value.is_undefined() {
        if !is_object(&value) {
            return Err(bad("transport.primaryKeys", "must be an object mapping table to primary-key column"));
        }
        for table in keys(&value) {
            let column = get(&value, &table).as_string().filter(|c| !c.is_empty());
            let column =
                column.ok_or_else(|| bad(&format!("transport.primaryKeys.{table}"), "must be a column name"))?;
            primary_keys.insert(table, column);
        }
    }

    let mode = get(transport, "mode");
    let mode = match mode.as_string().as_deref() {
        None if mode.is_undefined() => WireMode::Rest { primary_keys },
        Some("rest") => WireMode::Rest { primary_keys },
        Some("rpc") => WireMode::Rpc { function: DEFAULT_RPC_FUNCTION.to_owned() },
        _ => return Err(bad("transport.mode", format!("must be \"rest\" or \"rpc\", not {}", describe(&mode)))),
    };

    let value = get(transport, "timeoutMs");
    let timeout_ms = if value.is_undefined() {
        DEFAULT_TIMEOUT_MS
    } else {
        js::as_integer(&value, MAX_TIMEOUT_MS)
            .filter(|&ms| ms > 0)
            .ok_or_else(|| bad("transport.timeoutMs", format!("must be an integer from 1 to {MAX_TIMEOUT_MS}")))?
            as u32
    };

    Ok(Transport::Http(HttpTransport {
        base_url,
        api_key,
        get_access_token,
        wire: WireConfig { mode, client_id },
        timeout_ms,
    }))
}
