//! Small helpers between JS values and Rust: reading properties, checking kinds, JSON both ways, errors.
//!
//! Data crosses the boundary as JSON text (`JSON.stringify` on the way in, `JSON.parse` on the way out) with
//! the `serde_json` the core already links: no second serializer in the binary, and every value the core
//! sees has the exact shape it would have on the wire.

use js_sys::{Array, Object, Reflect, JSON};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::core::Row;

#[wasm_bindgen]
extern "C" {
    /// `crypto.getRandomValues`, present in windows and workers alike.
    #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues, catch)]
    fn get_random_values(buffer: &mut [u8]) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_namespace = console, js_name = error)]
    pub fn console_error(message: &str, error: &JsValue);
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

/// A plain object: `{...}` or `Object.create(null)`, not an array, a Date, a Map or a class instance.
pub fn is_plain_object(value: &JsValue) -> bool {
    if !value.is_object() || Array::is_array(value) {
        return false;
    }
    let proto = Object::get_prototype_of(value);
    proto.is_null() || proto == Object::get_prototype_of(&Object::new())
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
        return format!("the string {short:?}");
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

/// A JS object as a row. Parsed as any JSON value, then taken apart: parsing into the map type would bring
/// serde's typed-error formatting (floats included, about 19 KB gzip) into the binary.
pub fn to_row(value: &JsValue) -> Result<Row, String> {
    match serde_json::from_str(&json_text(value)?) {
        Ok(serde_json::Value::Object(row)) => Ok(row),
        Ok(_) => Err("its JSON form is not an object".to_owned()),
        Err(e) => Err(crate::core::wire::not_json(&e)),
    }
}

/// A Rust value as a fresh JS value, through `JSON.parse`.
pub fn from_serde<T: Serialize + ?Sized>(value: &T) -> JsValue {
    serde_json::to_string(value).ok().and_then(|text| JSON::parse(&text).ok()).unwrap_or(JsValue::NULL)
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
