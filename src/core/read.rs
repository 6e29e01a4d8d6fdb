//! Reading stored JSON back field by field, from a parsed [`Json`] (the core's own reader: see json.rs).

use super::json::Json;
use super::payload::Payload;

/// The fields of one JSON object, named `what` in errors.
pub(crate) struct Fields<'a, 't> {
    object: &'a Json<'t>,
    what: &'static str,
}

impl<'a, 't> Fields<'a, 't> {
    pub fn of(value: &'a Json<'t>, what: &'static str) -> Result<Fields<'a, 't>, String> {
        match value {
            Json::Object(..) => Ok(Fields { object: value, what }),
            _ => Err(format!("{what} is not an object")),
        }
    }

    /// The value at `key`; `null` counts as absent.
    pub fn get(&self, key: &str) -> Option<&'a Json<'t>> {
        self.object.get(key).filter(|v| !v.is_null())
    }

    fn bad(&self, key: &str, kind: &str) -> String {
        format!("{}.{key} is missing or not {kind}", self.what)
    }

    pub fn u64(&self, key: &str) -> Result<u64, String> {
        self.get(key).and_then(Json::as_u64).ok_or_else(|| self.bad(key, "a whole number"))
    }

    pub fn u32(&self, key: &str) -> Result<u32, String> {
        self.u64(key).and_then(|n| u32::try_from(n).map_err(|_| self.bad(key, "a 32-bit number")))
    }

    pub fn str(&self, key: &str) -> Result<&'a str, String> {
        self.get(key).and_then(Json::as_str).ok_or_else(|| self.bad(key, "a string"))
    }

    pub fn opt_str(&self, key: &str) -> Result<Option<String>, String> {
        self.get(key).map(|v| v.as_str().map(str::to_owned).ok_or_else(|| self.bad(key, "a string"))).transpose()
    }

    /// A flag that is false when absent.
    pub fn flag(&self, key: &str) -> Result<bool, String> {
        self.get(key).map_or(Ok(false), |v| v.as_bool().ok_or_else(|| self.bad(key, "true or false")))
    }

    pub fn required_flag(&self, key: &str) -> Result<bool, String> {
        self.get(key).and_then(Json::as_bool).ok_or_else(|| self.bad(key, "true or false"))
    }

    pub fn row<P: Payload>(&self, key: &str) -> Result<Option<P>, String> {
        self.get(key)
            .map(|v| v.object_text().and_then(P::from_json).ok_or_else(|| self.bad(key, "an object")))
            .transpose()
    }

    pub fn array(&self, key: &str) -> Result<&'a [Json<'t>], String> {
        self.get(key).and_then(Json::as_array).ok_or_else(|| self.bad(key, "an array"))
    }
}
