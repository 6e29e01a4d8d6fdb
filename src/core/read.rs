//! Reading stored JSON back field by field, from a parsed [`Json`] (the core's own reader: see json.rs).

use super::json::Json;
use super::payload::Payload;

/// A stored or received value that is not what was expected: `what` (a record, an entry), and the field and
/// the kind it should have held (no field: `what` itself is not an object).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub what: &'static str,
    pub field: Option<&'static str>,
    pub kind: &'static str,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from(*self))
    }
}

/// Where a reading error becomes part of a message for the app. Written without `format!`: the wasm links no
/// formatting for these.
impl From<FieldError> for String {
    fn from(e: FieldError) -> String {
        let mut message = String::from(e.what);
        match e.field {
            None => message.push_str(" is not "),
            Some(field) => {
                message.push('.');
                message.push_str(field);
                message.push_str(" is missing or not ");
            }
        }
        message.push_str(e.kind);
        message
    }
}

/// The fields of one JSON object, named `what` in errors.
pub(crate) struct Fields<'a, 't> {
    object: &'a Json<'t>,
    what: &'static str,
}

impl<'a, 't> Fields<'a, 't> {
    pub fn of(value: &'a Json<'t>, what: &'static str) -> Result<Fields<'a, 't>, FieldError> {
        match value {
            Json::Object(..) => Ok(Fields { object: value, what }),
            _ => Err(FieldError { what, field: None, kind: "an object" }),
        }
    }

    /// The value at `key`; `null` counts as absent.
    pub fn get(&self, key: &str) -> Option<&'a Json<'t>> {
        self.object.get(key).filter(|v| !v.is_null())
    }

    fn bad(&self, key: &'static str, kind: &'static str) -> FieldError {
        FieldError { what: self.what, field: Some(key), kind }
    }

    pub fn u64(&self, key: &'static str) -> Result<u64, FieldError> {
        self.get(key).and_then(Json::as_u64).ok_or_else(|| self.bad(key, "a whole number"))
    }

    pub fn opt_u64(&self, key: &'static str) -> Result<Option<u64>, FieldError> {
        self.get(key).map(|v| v.as_u64().ok_or_else(|| self.bad(key, "a whole number"))).transpose()
    }

    pub fn u32(&self, key: &'static str) -> Result<u32, FieldError> {
        self.u64(key).and_then(|n| u32::try_from(n).map_err(|_| self.bad(key, "a 32-bit number")))
    }

    pub fn str(&self, key: &'static str) -> Result<&'a str, FieldError> {
        self.get(key).and_then(Json::as_str).ok_or_else(|| self.bad(key, "a string"))
    }

    pub fn opt_str(&self, key: &'static str) -> Result<Option<String>, FieldError> {
        self.get(key).map(|v| v.as_str().map(str::to_owned).ok_or_else(|| self.bad(key, "a string"))).transpose()
    }

    /// A flag that is false when absent.
    pub fn flag(&self, key: &'static str) -> Result<bool, FieldError> {
        self.get(key).map_or(Ok(false), |v| v.as_bool().ok_or_else(|| self.bad(key, "true or false")))
    }

    pub fn required_flag(&self, key: &'static str) -> Result<bool, FieldError> {
        self.get(key).and_then(Json::as_bool).ok_or_else(|| self.bad(key, "true or false"))
    }

    pub fn row<P: Payload>(&self, key: &'static str) -> Result<Option<P>, FieldError> {
        self.get(key)
            .map(|v| v.object_text().and_then(P::from_json).ok_or_else(|| self.bad(key, "an object")))
            .transpose()
    }

    pub fn array(&self, key: &'static str) -> Result<&'a [Json<'t>], FieldError> {
        self.get(key).and_then(Json::as_array).ok_or_else(|| self.bad(key, "an array"))
    }
}
