//! `new RecordSync(options)`: the options as `readOptions` (src/web/shell.js) checked them, each bad one named in a
//! `TypeError`, read into the core's config and the shell's transport. The checks and their messages live in JS:
//! in the wasm they were its largest function.

use crate::core::FastMap;

use js_sys::{Array, Function};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::js::{self, get};
use crate::core::wire::{WireConfig, WireMode, DEFAULT_RPC_FUNCTION};
use crate::core::{ArgumentError, Config, ConflictStrategy};

pub const DEFAULT_TIMEOUT_MS: u32 = 15_000;
pub const DEFAULT_TOKEN_TIMEOUT_MS: u32 = 10_000;

#[wasm_bindgen(module = "/src/web/shell.js")]
extern "C" {
    /// The options checked, as plain values under the names read below; throws the `TypeError` that names the
    /// first bad one.
    #[wasm_bindgen(js_name = readOptions, catch)]
    pub fn check(options: &JsValue) -> Result<JsValue, JsValue>;
}

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
    pub merges: Vec<(String, Function)>,
    /// Primary-key column per table where it is not `id`.
    pub primary_keys: FastMap<String, String>,
}

pub fn from_core(e: ArgumentError) -> JsValue {
    let gap = if e.message.starts_with('[') { "" } else { " " };
    js::type_error(format!("RecordSync: options.{}{gap}{}", e.argument, e.message))
}

pub fn number(object: &JsValue, key: &str) -> Option<f64> {
    get(object, key).as_f64()
}

/// An array `readOptions` always gives; empty were it missing.
pub fn array(object: &JsValue, key: &str) -> Array {
    get(object, key).dyn_into().unwrap_or_default()
}

pub fn strings(list: &Array) -> Vec<String> {
    list.iter().filter_map(|v| v.as_string()).collect()
}

/// What [`check`] gave, as the engine's config and the shell's transport.
pub fn read(checked: &JsValue, client_id: String, seed: u64) -> Options {
    let mut config = Config { seed, ..Config::default() };
    if let Some(n) = number(checked, "maxRetries") {
        config.max_retries = n as u32;
    }
    if let Some(n) = number(checked, "batchSize") {
        config.batch_size = n as usize;
    }
    for (ms, slot) in array(checked, "intervals").iter().zip(config.intervals_ms.iter_mut()) {
        if let Some(ms) = ms.as_f64() {
            *slot = ms as u64;
        }
    }
    let mut merges = Vec::new();
    for spec in array(checked, "tables").iter() {
        let spec: Array = spec.unchecked_into();
        let table = spec.get(0).as_string().unwrap_or_default();
        let on_conflict = spec.get(2);
        let strategy = match on_conflict.as_string().as_deref() {
            Some("clientWins") => Some(ConflictStrategy::ClientWins),
            Some(_) => Some(ConflictStrategy::LastWriterWins),
            None => on_conflict.dyn_into::<Function>().ok().map(|merge| {
                merges.push((table.clone(), merge));
                ConflictStrategy::Merge
            }),
        };
        if let Some(strategy) = strategy {
            config.on_conflict.insert(table.clone(), strategy);
        }
        config.parents.insert(table, strings(&spec.get(1).unchecked_into()));
    }
    let mut primary_keys = FastMap::default();
    for pair in array(checked, "primaryKeys").iter() {
        let pair: Array = pair.unchecked_into();
        if let (Some(table), Some(column)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
            primary_keys.insert(table, column);
        }
    }
    let t = get(checked, "transport");
    let timeout_ms = number(&t, "timeoutMs").map_or(DEFAULT_TIMEOUT_MS, |n| n as u32);
    let transport = match get(&t, "send").dyn_into::<Function>() {
        Ok(send) => Transport::Custom { send, this: get(&t, "self"), timeout_ms },
        Err(_) => Transport::Http(HttpTransport {
            base_url: get(&t, "url").as_string().unwrap_or_default(),
            api_key: get(&t, "apiKey").as_string().unwrap_or_default(),
            get_access_token: get(&t, "getAccessToken").dyn_into().ok(),
            token_timeout_ms: number(&t, "tokenTimeoutMs").map_or(DEFAULT_TOKEN_TIMEOUT_MS, |n| n as u32),
            allow_anonymous: get(&t, "allowAnonymous").is_truthy(),
            wire: WireConfig {
                mode: match get(&t, "rpc").is_truthy() {
                    true => WireMode::Rpc { function: DEFAULT_RPC_FUNCTION.to_owned() },
                    false => WireMode::Rest { primary_keys: primary_keys.clone() },
                },
                client_id: client_id.clone(),
            },
            timeout_ms,
        }),
    };
    // The engine plans the requests of either transport (the app's own `send` gets the batch it wrote).
    config.wire = match &transport {
        Transport::Http(http) => http.wire.clone(),
        Transport::Custom { .. } => WireConfig { mode: WireMode::Custom, client_id },
    };
    Options { config, transport, merges, primary_keys }
}
