//! PostgREST's URL grammar: what must be quoted, escaped and percent-encoded so that any table name, column
//! name or id reaches the database as written.
//!
//! PostgREST percent-decodes the query string before parsing its grammar, so structure characters of the
//! grammar (`.`, `,`, `(`, `)`) are left readable while every name and value is percent-encoded whole; inside
//! a value, the grammar's reserved characters are neutralised by double quotes.

/// Percent-encodes every byte of `text`'s UTF-8 but RFC 3986's unreserved characters (letters, digits,
/// `-._~`). By hand: the crate for it carries a 768-byte table of every `%XX` into the wasm.
fn encoded(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out
}

/// Characters with a meaning in PostgREST's grammar, plus those that would be trimmed or split on.
const RESERVED: &[char] = &[',', '.', ':', '(', ')', '"', '\\', ' ', '\t', '\n', '\r', '*', '!', '-', '>', '<'];

/// A table name as a path segment.
pub fn path_segment(name: &str) -> String {
    encoded(name)
}

/// A column name as it appears in `columns=`, `on_conflict=` and filter keys: quoted when it holds
/// anything PostgREST would read as grammar, then percent-encoded.
pub fn column(name: &str) -> String {
    let quoted = if name.contains(RESERVED) { quote(name) } else { name.to_owned() };
    encoded(&quoted)
}

/// A comma-separated list of columns.
pub fn columns<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    names.into_iter().map(column).collect::<Vec<_>>().join(",")
}

/// An `in.(...)` filter value holding exactly these ids. Every id is quoted so that none is read as a
/// number, `null`, or grammar.
pub fn in_list<'a>(ids: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = ids.into_iter().map(|id| encoded(&quote(id))).collect();
    format!("in.({})", items.join(","))
}

/// A value in a filter such as `lte.`: quoted so that nothing in it is read as grammar, then percent-encoded.
pub fn value(text: &str) -> String {
    encoded(&quote(text))
}

/// Double quotes, with `"` and `\` escaped by a backslash.
fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_stay_readable() {
        assert_eq!(path_segment("selected_exercises"), "selected_exercises");
        assert_eq!(column("last_changed"), "last_changed");
        assert_eq!(columns(["id", "name"]), "id,name");
    }

    #[test]
    fn odd_table_names_are_percent_encoded() {
        assert_eq!(path_segment("Order Items"), "Order%20Items");
        assert_eq!(path_segment("a/b?c#d"), "a%2Fb%3Fc%23d");
        assert_eq!(path_segment("موارد"), "%D9%85%D9%88%D8%A7%D8%B1%D8%AF");
    }

    #[test]
    fn odd_column_names_are_quoted_then_encoded() {
        assert_eq!(column("information.cpe"), "%22information.cpe%22");
        assert_eq!(column("a,b"), "%22a%2Cb%22");
        assert_eq!(column("say \"hi\""), "%22say%20%5C%22hi%5C%22%22");
        assert_eq!(column("a&b=c"), "a%26b%3Dc");
    }

    #[test]
    fn ids_are_always_quoted_and_escaped() {
        assert_eq!(in_list(["1"]), "in.(%221%22)");
        assert_eq!(in_list(["a,b", "x.y"]), "in.(%22a%2Cb%22,%22x.y%22)");
        assert_eq!(in_list(["(p)"]), "in.(%22%28p%29%22)");
        assert_eq!(in_list(["he said \"hi\""]), "in.(%22he%20said%20%5C%22hi%5C%22%22)");
        assert_eq!(in_list(["back\\slash"]), "in.(%22back%5C%5Cslash%22)");
        assert_eq!(in_list(["null"]), "in.(%22null%22)");
        assert_eq!(in_list(["%20&x=1"]), "in.(%22%2520%26x%3D1%22)");
        assert_eq!(in_list(["ü"]), "in.(%22%C3%BC%22)");
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod properties {
    use proptest::prelude::*;

    proptest! {
        /// The hand-written encoder is the crate's, byte for byte, and decodes back to the text.
        #[test]
        fn encodes_as_percent_encoding_does(text in any::<String>()) {
            use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
            const SET: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
            let ours = super::encoded(&text);
            prop_assert_eq!(&ours, &utf8_percent_encode(&text, SET).to_string());
            prop_assert_eq!(percent_decode_str(&ours).decode_utf8().unwrap(), text);
        }
    }
}
