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

    // `catch`: a page's `console.error` may throw (tests that fail on console output), and that must not pass
    // through the wasm either.
    #[wasm_bindgen(js_namespace = console, js_name = error, catch)]
    fn console_error_or_throw(message: &str, error: &JsValue) -> Result<(), JsValue>;

    // With `catch`, unlike js_sys's: on the app's values these throw (a revoked Proxy, a throwing getter, trap or
    // iterator), and a throw that passes through wasm frames skips Rust's cleanup (a RefCell stays borrowed) and
    // leaks the module's stack, until the module fails for every instance on the page.
    #[wasm_bindgen(js_namespace = Array, js_name = isArray, catch)]
    fn array_is_array(value: &JsValue) -> Result<bool, JsValue>;
    #[wasm_bindgen(js_namespace = Array, js_name = from, catch)]
    fn array_from(value: &JsValue) -> Result<Array, JsValue>;
}

#[wasm_bindgen(module = "/src/web/shell.js")]
extern "C" {
    /// Whether a JS string holds no lone surrogate (which would come out of it as U+FFFD).
    #[wasm_bindgen(js_name = isWellFormed)]
    pub fn is_well_formed(text: &JsValue) -> bool;
    /// A fresh promise of `value`. `Promise.resolve` would hand back the app's own promise, whose `then` may throw.
    pub fn promised(value: &JsValue) -> js_sys::Promise;
    /// What a value is, for error messages ("an array", "the string \"x\"", "a revoked Proxy"). Never throws.
    pub fn describe(value: &JsValue) -> String;
    /// The message of a thrown value, without its stack. Never throws.
    #[wasm_bindgen(js_name = errorMessage)]
    pub fn error_message(value: &JsValue) -> String;
}

/// Whether `text`, read from the JS string `value`, is all of it: a lone surrogate comes out as U+FFFD, so that
/// two names would become one. Asked of JS only when there is a U+FFFD, which is rare and cheap to see.
pub fn is_whole(value: &JsValue, text: &str) -> bool {
    !text.as_bytes().windows(3).any(|w| w == "\u{FFFD}".as_bytes()) || is_well_formed(value)
}

/// `console.error`, whatever the page made of it.
pub fn console_error(message: &str, error: &JsValue) {
    let _ = console_error_or_throw(message, error);
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

/// A property, or `undefined` where reading it throws. For values whose reader has nothing better to do with a
/// throw; an option that cannot be read is `readOptions`' (src/web/shell.js).
pub fn get(object: &JsValue, key: &str) -> JsValue {
    Reflect::get(object, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// `Array.isArray`, false for a revoked Proxy (which cannot be used as anything).
pub fn is_array(value: &JsValue) -> bool {
    array_is_array(value).unwrap_or(false)
}

/// A copy of an array, so that reading it again cannot throw; `Ok(None)` for what is not an array, and the
/// thrown value where its iterator or an element's getter throws.
pub fn items(value: &JsValue) -> Result<Option<Array>, JsValue> {
    match array_is_array(value)? {
        true => array_from(value).map(Some),
        false => Ok(None),
    }
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
