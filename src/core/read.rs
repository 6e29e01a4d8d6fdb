//! Reading stored JSON back field by field, from a parsed [`Value`]. Not serde's derived readers: in the wasm
//! binary those bring serde's typed-error formatting along (floats included), which measured about 19 KB gzip
//! for the few records the journal reads once per start.

use serde_json::{Map, Value};

use super::change::Row;

/// The fields of one JSON object, named `what` in errors.
pub(crate) struct Fields<'a> {
    object: &'a Map<String, Value>,
    what: &'static str,
}

impl<'a> Fields<'a> {
    pub fn of(value: &'a Value, what: &'static str) -> Result<Fields<'a>, String> {
        match value {
            Value::Object(object) => Ok(Fields { object, what }),
            _ => Err(format!("{what} is not an object")),
        }
    }

    /// The value at `key`; `null` counts as absent.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.object.get(key).filter(|v| !v.is_null())
    }

    fn bad(&self, key: &str, kind: &str) -> String {
        format!("{}.{key} is missing or not {kind}", self.what)
    }

    pub fn u64(&self, key: &str) -> Result<u64, String> {
        self.get(key).and_then(Value::as_u64).ok_or_else(|| self.bad(key, "a whole number"))
    }

    pub fn u32(&self, key: &str) -> Result<u32, String> {
        self.u64(key).and_then(|n| u32::try_from(n).map_err(|_| self.bad(key, "a 32-bit number")))
    }

    pub fn str(&self, key: &str) -> Result<&'a str, String> {
        self.get(key).and_then(Value::as_str).ok_or_else(|| self.bad(key, "a string"))
    }

    pub fn opt_str(&self, key: &str) -> Result<Option<String>, String> {
        self.get(key).map(|v| v.as_str().map(str::to_owned).ok_or_else(|| self.bad(key, "a string"))).transpose()
    }

    /// A flag that is false when absent.
    pub fn flag(&self, key: &str) -> Result<bool, String> {
        self.get(key).map_or(Ok(false), |v| v.as_bool().ok_or_else(|| self.bad(key, "true or false")))
    }

    pub fn required_flag(&self, key: &str) -> Result<bool, String> {
        self.get(key).and_then(Value::as_bool).ok_or_else(|| self.bad(key, "true or false"))
    }

    pub fn row(&self, key: &str) -> Result<Option<Row>, String> {
        self.get(key).map(|v| v.as_object().cloned().ok_or_else(|| self.bad(key, "an object"))).transpose()
    }

    pub fn array(&self, key: &str) -> Result<&'a [Value], String> {
        self.get(key).and_then(Value::as_array).map(Vec::as_slice).ok_or_else(|| self.bad(key, "an array"))
    }
}
