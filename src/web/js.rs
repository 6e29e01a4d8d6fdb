//! Small helpers between JS values and Rust: reading properties, checking kinds, JSON both ways, errors.
//!
//! Rows stay JS objects (row.rs). Views the core writes as JSON text (stats, pending and failed writes,
//! conflicts) become JS values by `JSON.parse`.

use js_sys::{Array, Object, Reflect, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen]
extern "C" {
    /// `crypto.getRandomValues`, present in windows and workers alike.
    #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues, catch)]
    fn get_random_values(buffer: &mut [u8]) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_namespace = console, js_name = error)]
    pub fn console_error(message: &str, error: &JsValue);
}

#[wasm_bindgen(module = "/src/web/shell.js")]
extern "C" {
    /// Whether a JS string holds no lone surrogate (which would come out of it as U+FFFD).
    #[wasm_bindgen(js_name = isWellFormed)]
    pub fn is_well_formed(text: &JsValue) -> bool;
    #[wasm_bindgen(js_name = unreadableOption)]
    pub fn unreadable_option(options: &JsValue) -> Option<String>;
}

pub fn type_error(message: impl AsRef<str>) -> JsValue {
    js_sys::TypeError::new(message.as_ref()).into()
}

pub fn error(message: impl AsRef<str>) -> JsValue {
    js_sys::Error::new(message.as_ref()).into()
}

pub fn now() -> u64 {
    js_sys::Date::now() as u64
}

/// Random bytes from the platform's CSPRNG, falling back to `Math.random` where there is none (an odd
/// embedding): they only seed jitter and tell clients apart, so they need not be secret.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    if get_random_values(&mut bytes).is_err() {
        for byte in &mut bytes {
            *byte = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    bytes
}

pub fn get(object: &JsValue, key: &str) -> JsValue {
    Reflect::get(object, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// An object that is neither null, an array nor a function.
pub fn is_object(value: &JsValue) -> bool {
    value.is_object() && !Array::is_array(value) && !value.is_function()
}

/// What a value is, for error messages.
pub fn describe(value: &JsValue) -> String {
    if value.is_undefined() {
        return "undefined".into();
    }
    if value.is_null() {
        return "null".into();
    }
    if Array::is_array(value) {
        return "an array".into();
    }
    if value.is_function() {
        return "a function".into();
    }
    if value.is_object() {
        let constructor = get(value, "constructor");
        let name = get(&constructor, "name").as_string().unwrap_or_default();
        return if name.is_empty() || name == "Object" { "an object".into() } else { format!("a {name}") };
    }
    if let Some(text) = value.as_string() {
        let short: String = text.chars().take(40).collect();
        return format!("the string {}", crate::core::json::quoted(&short));
    }
    if let Some(flag) = value.as_bool() {
        return format!("boolean {flag}");
    }
    if value.as_f64().is_some() {
        return format!("number {}", number_to_string(value));
    }
    value.js_typeof().as_string().unwrap_or_else(|| "an unknown value".into())
}

/// The decimal string JS gives a number (`String(n)`), so `7` and `"7"` name the same record.
pub fn number_to_string(value: &JsValue) -> String {
    js_sys::Number::from(value.clone()).to_string_with_radix(10).map(String::from).unwrap_or_default()
}

/// A finite integer within `0..=max`, or `None`.
pub fn as_integer(value: &JsValue, max: f64) -> Option<u64> {
    let n = value.as_f64()?;
    (n.is_finite() && n.fract() == 0.0 && (0.0..=max).contains(&n)).then_some(n as u64)
}

/// A JS value as JSON text, through `JSON.stringify` (so `toJSON`, `Date`s inside, and dropped `undefined`s
/// behave as they would in `fetch(..., { body: JSON.stringify(x) })`).
pub fn json_text(value: &JsValue) -> Result<String, String> {
    let text = JSON::stringify(value).map_err(|e| error_message(&e))?;
    text.as_string().ok_or_else(|| "it has no JSON form".to_owned())
}

/// A fresh JS value from JSON text the core wrote (`null` if it is not JSON, which the core never writes).
pub fn parse(text: &str) -> JsValue {
    JSON::parse(text).unwrap_or(JsValue::NULL)
}

/// A fresh JS value from a view the core writes as JSON.
pub fn view(write: impl FnOnce(&mut String)) -> JsValue {
    let mut text = String::new();
    write(&mut text);
    parse(&text)
}

pub fn freeze(value: JsValue) -> JsValue {
    if let Some(object) = value.dyn_ref::<Object>() {
        Object::freeze(object);
    }
    value
}

/// The message of a thrown value, without its stack.
pub fn error_message(value: &JsValue) -> String {
    if let Some(error) = value.dyn_ref::<js_sys::Error>() {
        let name = String::from(error.name());
        let message = String::from(error.message());
        return if name.is_empty() || name == "Error" { message } else { format!("{name}: {message}") };
    }
    value.as_string().unwrap_or_else(|| describe(value))
}

/// Own enumerable string keys of an object.
pub fn keys(object: &JsValue) -> Vec<String> {
    object.dyn_ref::<Object>().map_or_else(Vec::new, |o| Object::keys(o).iter().filter_map(|k| k.as_string()).collect())
}
