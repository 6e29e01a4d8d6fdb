//! Who a queue belongs to, read from an access token. The token is only decoded here, never kept: the shell
//! compares the subject with the queue's owner before anything is sent with it.

use super::json::Json;

/// The `sub` claim of a JWT (`header.payload.signature`, payload base64url JSON), if the token is one. The
/// signature is not checked: the server does that; here it only decides which queue the token may carry.
pub fn jwt_subject(token: &str) -> Option<String> {
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    let bytes = base64url(payload)?;
    // From text like every other JSON the core reads: from_slice would be a second copy of the parser.
    let claims = Json::parse(std::str::from_utf8(&bytes).ok()?).ok()?;
    claims.get("sub")?.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

fn base64url(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in text.trim_end_matches('=').bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_subject_of_a_jwt() {
        // {"alg":"HS256","typ":"JWT"} . {"sub":"user-a","role":"authenticated"} . signature
        let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLWEiLCJyb2xlIjoiYXV0aGVudGljYXRlZCJ9.c2ln";
        assert_eq!(jwt_subject(token).as_deref(), Some("user-a"));
    }

    #[test]
    fn anything_else_has_no_subject() {
        for token in ["", "dev-anon-key", "a.b", "a.!!!.c", "eyJ4IjoxfQ.eyJ4IjoxfQ.x", "x.eyJzdWIiOjF9.y", "x.bnVsbA.y"]
        {
            assert_eq!(jwt_subject(token), None, "{token}");
        }
    }
}
