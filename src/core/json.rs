//! The little JSON the core reads and writes itself: stored queue records, server answers, token claims, and
//! the views the shell shows. Hand-written so that no general-purpose serializer goes into the wasm binary
//! (serde_json with its float formatting and error texts was a third of it); rows are not parsed here but
//! handed whole, as text, to their [`Payload`](super::Payload) type.
//!
//! Numbers are kept as the text they were written as: the core only ever reads whole numbers from them, and a
//! float parser or printer is kilobytes of wasm.

use std::borrow::Cow;

/// Deeper nesting than any answer or record the core reads has: refused, so that a hostile body cannot
/// exhaust the stack.
const MAX_DEPTH: u32 = 128;

#[derive(Clone, Debug, PartialEq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    /// As written, e.g. `12`, `-0.5`, `1e3`.
    Number(&'a str),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    /// Members in written order, and the object's own text (handed to a payload type to parse as a row).
    Object(Vec<(Cow<'a, str>, Json<'a>)>, &'a str),
}

/// Why a text is not JSON: what was found, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JsonError {
    pub what: &'static str,
    pub at: usize,
}

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from(*self))
    }
}

/// Where a reading error becomes part of a message for the app. Written without `format!`: the wasm links no
/// formatting for these.
impl From<JsonError> for String {
    fn from(e: JsonError) -> String {
        let mut message = String::from("not JSON (");
        message.push_str(e.what);
        message.push_str(" at byte ");
        write_u64(&mut message, e.at as u64);
        message.push(')');
        message
    }
}

impl<'a> Json<'a> {
    pub fn parse(text: &'a str) -> Result<Json<'a>, JsonError> {
        let mut reader = Reader { text, at: 0 };
        let value = reader.value(0)?;
        reader.space();
        if reader.at != text.len() {
            return Err(reader.error("text after the value"));
        }
        Ok(value)
    }

    /// A member of an object.
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        match self {
            Json::Object(members, _) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// A whole number written without fraction or exponent (`7`, not `7.0` or `7e0`).
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Number(n) if n.bytes().all(|b| b.is_ascii_digit()) => n.parse().ok(),
            _ => None,
        }
    }

    /// The whole part of a non-negative number (`250.7` is 250), for delays where a fraction of a
    /// millisecond does not matter.
    pub fn whole_part(&self) -> Option<u64> {
        match self {
            Json::Number(n) if !n.starts_with('-') && !n.contains(['e', 'E']) => {
                n.split('.').next().and_then(|whole| whole.parse().ok())
            }
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Json<'a>]> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The text of an object, for its payload type to parse.
    pub fn object_text(&self) -> Option<&'a str> {
        match self {
            Json::Object(_, text) => Some(text),
            _ => None,
        }
    }

    /// The value as JSON text (numbers as written), e.g. for an id that is a number.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(n),
            Json::String(s) => write_str(out, s),
            Json::Array(_) | Json::Object(..) => out.push_str(&self.raw()),
        }
    }

    fn raw(&self) -> Cow<'a, str> {
        match self {
            Json::Object(_, text) => Cow::Borrowed(text),
            Json::Array(items) => {
                let mut out = String::from("[");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(&mut out);
                }
                out.push(']');
                Cow::Owned(out)
            }
            other => Cow::Owned(other.to_text()),
        }
    }
}

struct Reader<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    /// The text from `from` to `to`. The reader only cuts at ASCII bytes, so this is never empty by mistake;
    /// `get` rather than indexing keeps the panic path (and its Debug formatting) out of the binary.
    fn cut(&self, from: usize, to: usize) -> &'a str {
        self.text.get(from..to).unwrap_or_default()
    }

    fn error(&self, what: &'static str) -> JsonError {
        JsonError { what, at: self.at }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.space();
        let found = self.peek() == Some(byte);
        if found {
            self.at += 1;
        }
        found
    }

    fn word(&mut self, word: &str, value: Json<'a>) -> Result<Json<'a>, JsonError> {
        if self.cut(self.at, self.text.len()).starts_with(word) {
            self.at += word.len();
            Ok(value)
        } else {
            Err(self.error("an unknown word"))
        }
    }

    fn value(&mut self, depth: u32) -> Result<Json<'a>, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        self.space();
        match self.peek() {
            Some(b'n') => self.word("null", Json::Null),
            Some(b't') => self.word("true", Json::Bool(true)),
            Some(b'f') => self.word("false", Json::Bool(false)),
            Some(b'"') => self.string().map(Json::String),
            Some(b'[') => {
                self.at += 1;
                let mut items = Vec::new();
                if !self.eat(b']') {
                    loop {
                        items.push(self.value(depth + 1)?);
                        if self.eat(b']') {
                            break;
                        }
                        if !self.eat(b',') {
                            return Err(self.error("an array without , or ]"));
                        }
                    }
                }
                Ok(Json::Array(items))
            }
            Some(b'{') => {
                let start = self.at;
                self.at += 1;
                let mut members = Vec::new();
                if !self.eat(b'}') {
                    loop {
                        self.space();
                        if self.peek() != Some(b'"') {
                            return Err(self.error("an object key that is not a string"));
                        }
                        let key = self.string()?;
                        if !self.eat(b':') {
                            return Err(self.error("an object key without :"));
                        }
                        members.push((key, self.value(depth + 1)?));
                        if self.eat(b'}') {
                            break;
                        }
                        if !self.eat(b',') {
                            return Err(self.error("an object without , or }"));
                        }
                    }
                }
                Ok(Json::Object(members, self.cut(start, self.at)))
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.error("no value")),
        }
    }

    fn number(&mut self) -> Result<Json<'a>, JsonError> {
        let start = self.at;
        let bytes = self.text.as_bytes();
        let digits = |at: &mut usize| {
            let from = *at;
            while bytes.get(*at).is_some_and(u8::is_ascii_digit) {
                *at += 1;
            }
            *at > from
        };
        let mut at = self.at;
        if bytes.get(at) == Some(&b'-') {
            at += 1;
        }
        let leading_zero = bytes.get(at) == Some(&b'0');
        let whole = at;
        if !digits(&mut at) || (leading_zero && at - whole > 1) {
            self.at = at;
            return Err(self.error("a malformed number"));
        }
        if bytes.get(at) == Some(&b'.') {
            at += 1;
            if !digits(&mut at) {
                self.at = at;
                return Err(self.error("a malformed number"));
            }
        }
        if matches!(bytes.get(at), Some(b'e' | b'E')) {
            at += 1;
            if matches!(bytes.get(at), Some(b'+' | b'-')) {
                at += 1;
            }
            if !digits(&mut at) {
                self.at = at;
                return Err(self.error("a malformed number"));
            }
        }
        self.at = at;
        Ok(Json::Number(self.cut(start, at)))
    }

    /// A string at `"`; borrowed from the text unless it has escapes.
    fn string(&mut self) -> Result<Cow<'a, str>, JsonError> {
        self.at += 1;
        let start = self.at;
        let bytes = self.text.as_bytes();
        while let Some(&b) = bytes.get(self.at) {
            match b {
                b'"' => {
                    let s = self.cut(start, self.at);
                    self.at += 1;
                    return Ok(Cow::Borrowed(s));
                }
                b'\\' => break,
                0..=0x1f => return Err(self.error("a control character in a string")),
                _ => self.at += 1,
            }
        }
        let mut out = String::from(self.cut(start, self.at));
        loop {
            // Runs of plain characters are copied whole (they are whole UTF-8 sequences: they end at an ASCII
            // byte).
            let run = self.at;
            while bytes.get(self.at).is_some_and(|&b| b != b'"' && b != b'\\' && b >= 0x20) {
                self.at += 1;
            }
            out.push_str(self.cut(run, self.at));
            match bytes.get(self.at) {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => {
                    let escaped = bytes.get(self.at + 1).copied();
                    self.at += 2;
                    let c = match escaped {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => self.unicode_escape()?,
                        _ => return Err(self.error("an unknown escape")),
                    };
                    out.push(c);
                }
                Some(_) => return Err(self.error("a control character in a string")),
                None => return Err(self.error("an unterminated string")),
            }
        }
    }

    /// After `\u`: four hex digits, and a second `\uXXXX` for a surrogate pair. A lone surrogate (which JS
    /// strings may hold) becomes U+FFFD, as `TextEncoder` would write it.
    fn unicode_escape(&mut self) -> Result<char, JsonError> {
        let first = self.hex4()?;
        if !(0xD800..0xDC00).contains(&first) {
            return Ok(char::from_u32(first).unwrap_or('\u{FFFD}'));
        }
        if self.cut(self.at, self.text.len()).starts_with("\\u") {
            let back = self.at;
            self.at += 2;
            let second = self.hex4()?;
            if (0xDC00..0xE000).contains(&second) {
                let c = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                return Ok(char::from_u32(c).unwrap_or('\u{FFFD}'));
            }
            self.at = back;
        }
        Ok('\u{FFFD}')
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self.text.as_bytes().get(self.at..self.at + 4).ok_or_else(|| self.error("a short \\u escape"))?;
        let mut value = 0;
        for &d in digits {
            let nibble = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return Err(self.error("a bad \\u escape")),
            };
            value = value * 16 + u32::from(nibble);
        }
        self.at += 4;
        Ok(value)
    }
}

/// Appends `text` as a JSON string.
pub fn write_str(out: &mut String, text: &str) {
    out.push('"');
    let mut run = 0;
    for (i, b) in text.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(text.get(run..i).unwrap_or_default());
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        } else {
            out.push_str(escape);
        }
        run = i + 1;
    }
    out.push_str(text.get(run..).unwrap_or_default());
    out.push('"');
}

/// `text` in double quotes, escaped as JSON: how names and ids are quoted in messages (Rust's `{:?}` would
/// link the Debug escaping tables into the wasm).
pub fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    write_str(&mut out, text);
    out
}

/// Appends a whole number in decimal.
pub fn write_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
}

/// `[a,b,...]`, each written by `write`.
pub fn write_array<T>(out: &mut String, items: &[T], mut write: impl FnMut(&T, &mut String)) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write(item, out);
    }
    out.push(']');
}

/// Writes one JSON object member by member: `{"a":1,"b":"x"}`.
pub struct ObjectWriter<'o> {
    out: &'o mut String,
    first: bool,
}

impl<'o> ObjectWriter<'o> {
    pub fn new(out: &'o mut String) -> ObjectWriter<'o> {
        out.push('{');
        ObjectWriter { out, first: true }
    }

    /// The key, and the writer positioned for its value.
    pub fn key(&mut self, key: &str) -> &mut String {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        write_str(self.out, key);
        self.out.push(':');
        self.out
    }

    pub fn str(&mut self, key: &str, value: &str) -> &mut Self {
        write_str(self.key(key), value);
        self
    }

    pub fn opt_str(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        match value {
            Some(value) => self.str(key, value),
            None => self.raw(key, "null"),
        }
    }

    pub fn u64(&mut self, key: &str, value: u64) -> &mut Self {
        write_u64(self.key(key), value);
        self
    }

    pub fn bool(&mut self, key: &str, value: bool) -> &mut Self {
        self.raw(key, if value { "true" } else { "false" })
    }

    pub fn raw(&mut self, key: &str, json: &str) -> &mut Self {
        self.key(key).push_str(json);
        self
    }

    pub fn end(&mut self) {
        self.out.push('}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_is_given() {
        let text = r#" {"a": [1, -2.5e3, true, null], "b": "x\"\u00e9\ud83d\ude00\n", "c": {"d": {}}} "#;
        let value = Json::parse(text).unwrap();
        assert_eq!(value.get("a").and_then(Json::as_array).map(<[_]>::len), Some(4));
        assert_eq!(value.get("a").unwrap().as_array().unwrap()[0].as_u64(), Some(1));
        assert_eq!(value.get("a").unwrap().as_array().unwrap()[1].as_u64(), None);
        assert_eq!(value.get("b").and_then(Json::as_str), Some("x\"é😀\n"));
        assert_eq!(value.get("c").and_then(Json::object_text), Some(r#"{"d": {}}"#));
        assert_eq!(Json::parse("250.7").unwrap().whole_part(), Some(250));
    }

    #[test]
    fn refuses_what_is_not_json() {
        let deep = "[".repeat(200) + &"]".repeat(200);
        for bad in ["", "{", "[1,]", "{\"a\"}", "01", "1.", "-", "\"\\x\"", "\"a", "nul", "[1] 2", "\"\u{1}\"", &deep] {
            assert!(Json::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn writes_strings_that_read_back() {
        for text in ["", "plain", "q\"b\\s/\n\r\t\u{1}\u{1f}é😀"] {
            let mut out = String::new();
            write_str(&mut out, text);
            assert_eq!(Json::parse(&out).unwrap().as_str(), Some(text));
            assert_eq!(serde_json::from_str::<String>(&out).unwrap(), text);
        }
        let mut out = String::new();
        for n in [0, 7, 10, u64::MAX] {
            out.clear();
            write_u64(&mut out, n);
            assert_eq!(out, n.to_string());
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod properties {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::*;

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(any::<String>(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// What the reader makes of a value, back as serde_json sees it (numbers through their text).
    fn to_serde(json: &Json<'_>) -> Value {
        match json {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => serde_json::from_str(n).unwrap(),
            Json::String(s) => Value::String(s.to_string()),
            Json::Array(items) => Value::Array(items.iter().map(to_serde).collect()),
            Json::Object(members, text) => {
                let object: Value = serde_json::from_str(text).unwrap();
                let rebuilt = Value::Object(members.iter().map(|(k, v)| (k.to_string(), to_serde(v))).collect());
                assert_eq!(object, rebuilt, "an object's text is the object");
                rebuilt
            }
        }
    }

    proptest! {
        #[test]
        fn reads_what_serde_json_writes(value in value(), pretty in any::<bool>()) {
            let text = if pretty { serde_json::to_string_pretty(&value) } else { serde_json::to_string(&value) };
            let text = text.unwrap();
            // Against what serde_json reads back (its float parsing does not round-trip every f64).
            let expected: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(to_serde(&Json::parse(&text).unwrap()), expected);
        }

        /// Lone surrogate escapes (`\ud800`) are left out: serde_json refuses them, this reader reads U+FFFD.
        #[test]
        fn agrees_with_serde_json_on_any_text(text in "[\\[\\]{}:,\"\\\\a-tv-z0-9 .eE+\\-]{0,40}") {
            let ours = Json::parse(&text).ok().map(|json| to_serde(&json));
            prop_assert_eq!(ours, serde_json::from_str::<Value>(&text).ok());
        }

        #[test]
        fn written_strings_read_back(text in any::<String>()) {
            let mut out = String::new();
            write_str(&mut out, &text);
            let read = Json::parse(&out).unwrap();
            prop_assert_eq!(read.as_str(), Some(text.as_str()));
        }
    }
}
