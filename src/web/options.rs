//! `new RecordSync(options)`: every option checked, each bad one named in a `TypeError`.
//!
//! Ranges are the core's ([`Config::validate`]): a value of the wrong kind is passed on as an out-of-range
//! number so that the message comes from one place.

use std::collections::HashMap;

use js_sys::Function;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::js::{self, describe, is_object, Reader};
use crate::core::json::quoted;
use crate::core::wire::{WireConfig, WireMode, DEFAULT_RPC_FUNCTION};
use crate::core::{ArgumentError, Config, ConflictStrategy};

pub const DEFAULT_TIMEOUT_MS: u32 = 15_000;
pub const DEFAULT_TOKEN_TIMEOUT_MS: u32 = 10_000;
/// An integer, not an `f64`: putting an `f64` in a message links float formatting (13 KB of wasm).
const MAX_TIMEOUT_MS: u32 = 600_000;

// "user" and "storage" are read by storage.rs (durable queue), "pull" by pull.rs (issue 11).
const OPTION_KEYS: [&str; 8] =
    ["transport", "maxRetries", "batchSize", "syncIntervals", "tables", "user", "storage", "pull"];
const HTTP_KEYS: [&str; 8] =
    ["url", "apiKey", "getAccessToken", "mode", "primaryKeys", "timeoutMs", "tokenTimeoutMs", "allowAnonymous"];
const TABLE_KEYS: [&str; 2] = ["parents", "onConflict"];
const TRANSPORT_PATH: &str = "options.transport";

pub struct HttpTransport {
    /// Without a trailing slash; request paths start with one.
    pub base_url: String,
    pub api_key: String,
    pub get_access_token: Option<Function>,
    /// How long `getAccessToken()` may take before it counts as giving no token.
    pub token_timeout_ms: u32,
    /// With `getAccessToken` and no token to be had, send with the API key instead of waiting.
    pub allow_anonymous: bool,
    pub wire: WireConfig,
    pub timeout_ms: u32,
}

pub enum Transport {
    Http(HttpTransport),
    /// `send` called with the transport object as `this`, so a class instance works too.
    Custom {
        send: Function,
        this: JsValue,
        timeout_ms: u32,
    },
}

pub struct Options {
    pub config: Config,
    pub transport: Transport,
    /// The app's merge functions, by table (`tables: { t: { onConflict: (local, server) => row | null } }`).
    pub merges: HashMap<String, Function>,
    /// Primary-key column per table where it is not `id`.
    pub primary_keys: HashMap<String, String>,
}

fn bad(name: &str, message: impl AsRef<str>) -> JsValue {
    js::type_error(format!("RecordSync: options.{name} {}", message.as_ref()))
}

pub fn from_core(e: ArgumentError) -> JsValue {
    let gap = if e.message.starts_with('[') { "" } else { " " };
    js::type_error(format!("RecordSync: options.{}{gap}{}", e.argument, e.message))
}

pub fn parse(read: &Reader, options: &JsValue, client_id: String, seed: u64) -> Result<Options, JsValue> {
    if !is_object(options) {
        return Err(js::type_error(format!("RecordSync: options must be an object, not {}", describe(options))));
    }
    if let Some(unknown) = read.keys(options, "options").into_iter().find(|k| !OPTION_KEYS.contains(&k.as_str())) {
        return Err(bad(&unknown, format!("is not an option (known: {})", OPTION_KEYS.join(", "))));
    }
    let mut config = Config { seed, ..Config::default() };

    let value = read.get(options, "options", "maxRetries");
    if !value.is_undefined() {
        config.max_retries = js::as_integer(&value, u32::MAX as f64).map_or(u32::MAX, |n| n as u32);
    }
    let value = read.get(options, "options", "batchSize");
    if !value.is_undefined() {
        config.batch_size = js::as_integer(&value, u32::MAX as f64).map_or(usize::MAX, |n| n as usize);
    }
    let intervals = read.get(options, "options", "syncIntervals");
    if !intervals.is_undefined() {
        if !is_object(&intervals) {
            return Err(bad(
                "syncIntervals",
                format!("must be an object keyed by SyncPriority, not {}", describe(&intervals)),
            ));
        }
        for key in read.keys(&intervals, "options.syncIntervals") {
            let index = match key.as_str() {
                "0" | "1" | "2" | "3" => key.parse::<usize>().unwrap_or(0),
                _ => {
                    return Err(bad(
                        "syncIntervals",
                        format!("has {}, which is not a SyncPriority (0 to 3)", quoted(&key)),
                    ))
                }
            };
            let ms = read.get(&intervals, "options.syncIntervals", &key);
            if !ms.is_undefined() {
                let ms = ms.as_f64().filter(|n| n.is_finite() && *n >= 0.0 && *n < 1e15);
                config.intervals_ms[index] = ms.map_or(u64::MAX, |n| n.round() as u64);
            }
        }
    }
    let mut merges = HashMap::new();
    let tables = read.get(options, "options", "tables");
    if !tables.is_undefined() {
        if !is_object(&tables) {
            return Err(bad("tables", format!("must be an object keyed by table name, not {}", describe(&tables))));
        }
        for table in read.keys(&tables, "options.tables") {
            let spec = read.get(&tables, "options.tables", &table);
            let path = format!("options.tables.{table}");
            if !is_object(&spec) {
                return Err(bad(&format!("tables.{table}"), "must be an object like { parents: [\"plans\"] }"));
            }
            if let Some(unknown) = read.keys(&spec, &path).into_iter().find(|k| !TABLE_KEYS.contains(&k.as_str())) {
                return Err(bad(
                    &format!("tables.{table}.{unknown}"),
                    format!("is not an option (known: {})", TABLE_KEYS.join(", ")),
                ));
            }
            let on_conflict = read.get(&spec, &path, "onConflict");
            let strategy = match on_conflict.as_string().as_deref() {
                _ if on_conflict.is_undefined() => None,
                Some("lastWriterWins") => Some(ConflictStrategy::LastWriterWins),
                Some("clientWins") => Some(ConflictStrategy::ClientWins),
                _ if on_conflict.is_function() => {
                    merges.insert(table.clone(), on_conflict.clone().unchecked_into::<Function>());
                    Some(ConflictStrategy::Merge)
                }
                _ => {
                    return Err(bad(
                        &format!("tables.{table}.onConflict"),
                        format!(
                            "must be \"lastWriterWins\", \"clientWins\" or a function (local, server) => row | null, not {}",
                            describe(&on_conflict)
                        ),
                    ))
                }
            };
            if let Some(strategy) = strategy {
                config.on_conflict.insert(table.clone(), strategy);
            }
            let parents = read.get(&spec, &path, "parents");
            let list: Vec<String> = if parents.is_undefined() {
                Vec::new()
            } else {
                let names = read
                    .items(&parents, &format!("{path}.parents"))
                    .and_then(|names| names.iter().map(|v| v.as_string()).collect::<Option<Vec<String>>>());
                names.ok_or_else(|| bad(&format!("tables.{table}.parents"), "must be an array of table names"))?
            };
            config.parents.insert(table, list);
        }
    }
    config.validate().map_err(from_core)?;

    let transport_options = read.get(options, "options", "transport");
    let transport = parse_transport(read, &transport_options, client_id.clone())?;
    // The engine plans the requests of either transport (the app's own `send` gets the batch it wrote).
    config.wire = match &transport {
        Transport::Http(http) => http.wire.clone(),
        Transport::Custom { .. } => WireConfig { mode: WireMode::Custom, client_id },
    };
    let primary_keys = match &transport {
        Transport::Http(HttpTransport { wire: WireConfig { mode: WireMode::Rest { primary_keys }, .. }, .. }) => {
            primary_keys.clone()
        }
        _ => primary_keys_of(read, &transport_options)?,
    };
    Ok(Options { config, transport, merges, primary_keys })
}

fn timeout(read: &Reader, transport: &JsValue, name: &str, default: u32) -> Result<u32, JsValue> {
    let value = read.get(transport, TRANSPORT_PATH, name);
    if value.is_undefined() {
        return Ok(default);
    }
    js::as_integer(&value, f64::from(MAX_TIMEOUT_MS))
        .filter(|&ms| ms > 0)
        .map(|ms| ms as u32)
        .ok_or_else(|| bad(&format!("transport.{name}"), format!("must be an integer from 1 to {MAX_TIMEOUT_MS}")))
}

fn primary_keys_of(read: &Reader, transport: &JsValue) -> Result<HashMap<String, String>, JsValue> {
    let value = read.get(transport, TRANSPORT_PATH, "primaryKeys");
    let mut primary_keys = HashMap::new();
    if !value.is_undefined() {
        if !is_object(&value) {
            return Err(bad("transport.primaryKeys", "must be an object mapping table to primary-key column"));
        }
        for table in read.keys(&value, "options.transport.primaryKeys") {
            let column =
                read.get(&value, "options.transport.primaryKeys", &table).as_string().filter(|c| !c.is_empty());
            let column =
                column.ok_or_else(|| bad(&format!("transport.primaryKeys.{table}"), "must be a column name"))?;
            primary_keys.insert(table, column);
        }
    }
    Ok(primary_keys)
}

fn parse_transport(read: &Reader, transport: &JsValue, client_id: String) -> Result<Transport, JsValue> {
    if !is_object(transport) {
        return Err(bad(
            "transport",
            format!("must be {{ url, apiKey, ... }} or {{ send(batch) }}, not {}", describe(transport)),
        ));
    }
    let send = read.get(transport, TRANSPORT_PATH, "send");
    if !send.is_undefined() {
        let send = send
            .dyn_into::<Function>()
            .map_err(|v| bad("transport.send", format!("must be a function, not {}", describe(&v))))?;
        if !read.get(transport, TRANSPORT_PATH, "url").is_undefined() {
            return Err(bad("transport", "must have either send or url, not both"));
        }
        let timeout_ms = timeout(read, transport, "timeoutMs", DEFAULT_TIMEOUT_MS)?;
        return Ok(Transport::Custom { send, this: transport.clone(), timeout_ms });
    }
    if let Some(unknown) = read.keys(transport, TRANSPORT_PATH).into_iter().find(|k| !HTTP_KEYS.contains(&k.as_str())) {
        return Err(bad(
            &format!("transport.{unknown}"),
            format!("is not an option (known: {}, or send)", HTTP_KEYS.join(", ")),
        ));
    }

    let url = read.get(transport, TRANSPORT_PATH, "url");
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

    let api_key = read.get(transport, TRANSPORT_PATH, "apiKey");
    // It goes in headers, where a character `fetch` refuses would fail every request as if the network did.
    let api_key = api_key.as_string().filter(|k| super::auth::is_sendable(k)).ok_or_else(|| {
        bad(
            "transport.apiKey",
            format!("must be the project's API key, printable ASCII without spaces, not {}", describe(&api_key)),
        )
    })?;

    let value = read.get(transport, TRANSPORT_PATH, "getAccessToken");
    let get_access_token = if value.is_undefined() || value.is_null() {
        None
    } else {
        Some(
            value
                .dyn_into::<Function>()
                .map_err(|v| bad("transport.getAccessToken", format!("must be a function, not {}", describe(&v))))?,
        )
    };

    let primary_keys = primary_keys_of(read, transport)?;

    let mode = read.get(transport, TRANSPORT_PATH, "mode");
    let mode = match mode.as_string().as_deref() {
        None if mode.is_undefined() => WireMode::Rest { primary_keys },
        Some("rest") => WireMode::Rest { primary_keys },
        Some("rpc") => WireMode::Rpc { function: DEFAULT_RPC_FUNCTION.to_owned() },
        _ => return Err(bad("transport.mode", format!("must be \"rest\" or \"rpc\", not {}", describe(&mode)))),
    };

    let timeout_ms = timeout(read, transport, "timeoutMs", DEFAULT_TIMEOUT_MS)?;
    let token_timeout_ms = timeout(read, transport, "tokenTimeoutMs", DEFAULT_TOKEN_TIMEOUT_MS)?;
    let value = read.get(transport, TRANSPORT_PATH, "allowAnonymous");
    let allow_anonymous = match value.as_bool() {
        Some(allow) => allow,
        None if value.is_undefined() => false,
        None => return Err(bad("transport.allowAnonymous", format!("must be a boolean, not {}", describe(&value)))),
    };

    Ok(Transport::Http(HttpTransport {
        base_url,
        api_key,
        get_access_token,
        token_timeout_ms,
        allow_anonymous,
        wire: WireConfig { mode, client_id },
        timeout_ms,
    }))
}
