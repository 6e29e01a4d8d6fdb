//! From what the server answered to what happened to each write: transient failures retry, permanent ones
//! go to the failed list.

use super::custom::MALFORMED;
use crate::core::engine::{ChangeOutcome, Outcome};
use crate::core::json::{write_str, Json, JsonError};
use crate::core::payload::Payload;

/// One HTTP answer, as much of it as the engine needs.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpResponse {
    pub status: u16,
    /// The raw `Retry-After` header, if any.
    pub retry_after: Option<String>,
    pub body: String,
}

/// PostgREST's error body (`{ code, message, details, hint }`), read field by field: a typed serde reader would
/// bring serde's error formatting (floats included) into the wasm binary for four optional strings.
#[derive(Debug, Default)]
struct PostgrestError {
    code: Option<String>,
    message: Option<String>,
    details: Option<String>,
    hint: Option<String>,
}

impl PostgrestError {
    fn parse(body: &str) -> PostgrestError {
        let Ok(error @ Json::Object(..)) = Json::parse(body) else { return PostgrestError::default() };
        let text = |key: &str| error.get(key).and_then(Json::as_str).map(str::to_owned);
        PostgrestError { code: text("code"), message: text("message"), details: text("details"), hint: text("hint") }
    }
}

/// SQLSTATE classes that describe the moment, not the data: connection (08), transaction rollback such as
/// serialization failure or deadlock (40), insufficient resources (53), lock not available (55), operator
/// intervention such as statement timeout (57), system error (58).
const TRANSIENT_SQLSTATE_CLASSES: [&str; 6] = ["08", "40", "53", "55", "57", "58"];

pub fn is_transient_sqlstate(code: &str) -> bool {
    TRANSIENT_SQLSTATE_CLASSES.iter().any(|class| code.starts_with(class))
}

/// The outcome of a request that answered with a status other than 2xx, for every write it carried.
/// Network trouble, 401 after the shell's one token refresh, 408, 429 and 5xx are transient; other 4xx are
/// permanent unless their SQLSTATE says otherwise.
pub fn failure_outcome<P>(response: &HttpResponse) -> Outcome<P> {
    let error = PostgrestError::parse(&response.body);
    let message = describe(response.status, &error, &response.body);
    let transient_status = matches!(response.status, 401 | 408 | 429 | 500..=599) || response.status < 200;
    let transient_code = error.code.as_deref().is_some_and(is_transient_sqlstate);
    if transient_status || transient_code {
        Outcome::Transient { message, retry_after_ms: retry_after_ms(response.retry_after.as_deref()) }
    } else {
        Outcome::Permanent { code: error.code, message }
    }
}

/// What a failed answer says, as `lastError` reads it: the status, and PostgREST's message, details and hint.
pub fn failure_message(response: &HttpResponse) -> String {
    describe(response.status, &PostgrestError::parse(&response.body), &response.body)
}

fn describe(status: u16, error: &PostgrestError, body: &str) -> String {
    let mut text = format!("HTTP {status}");
    match &error.message {
        Some(message) => {
            text.push_str(": ");
            text.push_str(message);
            for extra in [&error.details, &error.hint].into_iter().flatten() {
                text.push_str(" (");
                text.push_str(extra);
                text.push(')');
            }
        }
        None if !body.trim().is_empty() => {
            text.push_str(": ");
            text.extend(body.trim().chars().take(200));
        }
        None => {}
    }
    text
}

/// `Retry-After` in delay-seconds (`3`, or `0.5`). The HTTP-date form needs a clock the core does not have and is
/// ignored, leaving the backoff alone in charge. Read digit by digit: a float parser is 5 KB of wasm.
pub fn retry_after_ms(header: Option<&str>) -> Option<u64> {
    let (whole, fraction) = header?.trim().split_once('.').unwrap_or((header?.trim(), ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !(fraction.is_empty() || digits(fraction)) {
        return None;
    }
    let seconds: u64 = whole.parse().ok()?;
    let millis = fraction.bytes().chain(std::iter::repeat(b'0')).take(3).fold(0, |ms, b| ms * 10 + u64::from(b - b'0'));
    seconds.checked_mul(1_000)?.checked_add(millis)
}

/// Why a 2xx answer is not what its request asked for. The writes it carried fail transiently (the server, or
/// the app's transport, may answer better next time), with the message [`String::from`] gives (what the app
/// reads as `lastError`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnswerError {
    /// `rest`: not the JSON array of rows PostgREST gives when asked to return them (an HTML page from a proxy,
    /// an empty body, an object); the start of the body, up to 80 characters.
    NotRows(String),
    /// `rpc`: the sync function's answer is not its results.
    Function(ResultsError),
    /// Custom: what the app's `send` resolved to is not results.
    Send(ResultsError),
}

/// What is wrong with an array of per-write results.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResultsError {
    NotJson(JsonError),
    NotAnArray,
    /// A result without a numeric `seq`.
    NoSeq,
    /// A result without a string `status`.
    NoStatus,
    /// A conflict whose `row` is neither an object nor null: a transport that means something else by it.
    BadRow,
}

/// The app's message. Written without `format!`, like [`JsonError`]'s.
impl From<&AnswerError> for String {
    fn from(e: &AnswerError) -> String {
        let (mut m, problem) = match e {
            AnswerError::NotRows(start) => {
                let mut m = String::from("the server answered 2xx with something other than the rows asked for: ");
                write_str(&mut m, start);
                return m;
            }
            AnswerError::Function(problem) => (String::from("unreadable answer from the sync function: "), problem),
            AnswerError::Send(problem) => (String::from(MALFORMED), problem),
        };
        m.push_str(match (e, problem) {
            // The app's transport is told what shape to give, not where its text stopped being JSON.
            (AnswerError::Send(_), ResultsError::NotJson(_) | ResultsError::NotAnArray) => "not a JSON array",
            (_, ResultsError::NotJson(json)) => return m + &String::from(*json),
            (_, ResultsError::NotAnArray) => "not an array",
            (_, ResultsError::NoSeq) => "a result without a numeric seq",
            (_, ResultsError::NoStatus) => "a result without a string status",
            (_, ResultsError::BadRow) => "a conflict whose row is not an object or null",
        });
        m
    }
}

crate::core::error::message_error!(AnswerError);

/// One write's result, as the sync function answers it and as a custom transport's `send` resolves it:
/// `{ seq, status: "applied" | "conflict" | "missing" | "error", row?, code?, message?, transient?,
/// retryAfterMs? }`. The one decoder of per-write results. An error is transient when it says so or its
/// SQLSTATE class is one of the moment's; a status this version does not know is transient (the write is
/// retried, never taken as written).
pub fn decode_result<P: Payload>(result: &Json<'_>) -> Result<ChangeOutcome<P>, ResultsError> {
    let seq = result.get("seq").and_then(Json::as_u64).ok_or(ResultsError::NoSeq)?;
    let status = result.get("status").and_then(Json::as_str).ok_or(ResultsError::NoStatus)?;
    let text = |key: &str| result.get(key).and_then(Json::as_str).map(str::to_owned);
    let message = || text("message").unwrap_or_else(|| format!("the server answered {status}"));
    let code = text("code");
    let outcome = match status {
        "applied" => Outcome::Applied,
        "conflict" => match result.get("row") {
            None | Some(Json::Null) => Outcome::Conflict { row: None },
            Some(row) => {
                Outcome::Conflict { row: Some(row.object_text().ok_or(ResultsError::BadRow)?).and_then(P::from_json) }
            }
        },
        "missing" => Outcome::Missing,
        "error"
            if result.get("transient").and_then(Json::as_bool) != Some(true)
                && !code.as_deref().is_some_and(is_transient_sqlstate) =>
        {
            Outcome::Permanent { code, message: message() }
        }
        _ => Outcome::Transient {
            message: message(),
            retry_after_ms: result.get("retryAfterMs").and_then(Json::whole_part),
        },
    };
    Ok(ChangeOutcome { seq, outcome })
}

/// The one reader of an array of results (the sync function's answer, or what a custom `send` resolved to):
/// one outcome per result, in order. A result that cannot be read fails them all.
pub(super) fn decode_results<P: Payload>(body: &str) -> Result<Vec<ChangeOutcome<P>>, ResultsError> {
    match Json::parse(body) {
        Ok(Json::Array(results)) => results.iter().map(decode_result).collect(),
        Ok(_) => Err(ResultsError::NotAnArray),
        Err(e) => Err(ResultsError::NotJson(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure_outcome(response: &HttpResponse) -> Outcome<crate::core::Row> {
        super::failure_outcome(response)
    }

    fn response(status: u16, body: &str, retry_after: Option<&str>) -> HttpResponse {
        HttpResponse { status, retry_after: retry_after.map(str::to_owned), body: body.to_owned() }
    }

    fn is_transient(status: u16, body: &str) -> bool {
        matches!(failure_outcome(&response(status, body, None)), Outcome::Transient { .. })
    }

    #[test]
    fn statuses_by_kind() {
        for status in [401, 408, 429, 500, 502, 503, 504] {
            assert!(is_transient(status, ""), "{status}");
        }
        for status in [400, 403, 404, 405, 409, 413, 422] {
            assert!(!is_transient(status, ""), "{status}");
        }
    }

    #[test]
    fn sqlstate_classes_22_23_42_are_permanent_and_40_is_not() {
        let body = |code: &str| format!(r#"{{"code":"{code}","message":"m","details":null,"hint":null}}"#);
        for code in ["22P02", "23505", "23503", "42501", "42P01"] {
            assert!(!is_transient(409, &body(code)), "{code}");
        }
        for code in ["40001", "40P01", "57014", "08006", "55P03"] {
            assert!(is_transient(409, &body(code)), "{code}");
        }
    }

    #[test]
    fn permanent_error_keeps_code_and_message() {
        let body =
            r#"{"code":"23503","message":"insert violates foreign key","details":"Key is not present","hint":null}"#;
        assert_eq!(
            failure_outcome(&response(409, body, None)),
            Outcome::Permanent {
                code: Some("23503".into()),
                message: "HTTP 409: insert violates foreign key (Key is not present)".into()
            }
        );
    }

    #[test]
    fn retry_after_seconds_are_honoured_and_dates_ignored() {
        let outcome = failure_outcome(&response(429, "", Some("3")));
        assert_eq!(outcome, Outcome::Transient { message: "HTTP 429".into(), retry_after_ms: Some(3_000) });
        assert_eq!(retry_after_ms(Some("0.5")), Some(500));
        assert_eq!(retry_after_ms(Some("Wed, 21 Oct 2026 07:28:00 GMT")), None);
        assert_eq!(retry_after_ms(Some("-1")), None);
        assert_eq!(retry_after_ms(Some("1e400")), None);
        assert_eq!(retry_after_ms(Some(" 2.0625 ")), Some(2_062));
        assert_eq!(retry_after_ms(Some("99999999999999999999")), None);
    }

    #[test]
    fn one_decoder_reads_the_sync_functions_and_a_custom_transports_results() {
        let decode = |v: serde_json::Value| {
            let text = v.to_string();
            decode_result::<crate::core::Row>(&Json::parse(&text).unwrap()).map(|r| (r.seq, r.outcome))
        };
        assert_eq!(decode(serde_json::json!({"seq": 1, "status": "applied"})), Ok((1, Outcome::Applied)));
        assert_eq!(decode(serde_json::json!({"seq": 2, "status": "missing"})), Ok((2, Outcome::Missing)));
        let row = serde_json::json!({"id": "a"}).as_object().cloned();
        assert_eq!(
            decode(serde_json::json!({"seq": 3, "status": "conflict", "row": {"id": "a"}})),
            Ok((3, Outcome::Conflict { row }))
        );
        assert_eq!(
            decode(serde_json::json!({"seq": 3, "status": "conflict", "row": null})),
            Ok((3, Outcome::Conflict { row: None }))
        );
        assert_eq!(decode(serde_json::json!({"seq": 3, "status": "conflict", "row": 5})), Err(ResultsError::BadRow));
        assert_eq!(decode(serde_json::json!({"seq": 3, "status": "conflict", "row": [1]})), Err(ResultsError::BadRow));
        assert_eq!(
            decode(serde_json::json!({"seq": 4, "status": "error", "code": "23505", "message": "dup"})),
            Ok((4, Outcome::Permanent { code: Some("23505".into()), message: "dup".into() }))
        );
        let transient = |message: &str, retry_after_ms| Outcome::Transient { message: message.into(), retry_after_ms };
        assert_eq!(
            decode(serde_json::json!({"seq": 5, "status": "error", "code": "40P01"})),
            Ok((5, transient("the server answered error", None)))
        );
        assert_eq!(
            decode(serde_json::json!({"seq": 6, "status": "error", "transient": true, "retryAfterMs": 250})),
            Ok((6, transient("the server answered error", Some(250))))
        );
        assert_eq!(
            decode(serde_json::json!({"seq": 7, "status": "later"})),
            Ok((7, transient("the server answered later", None)))
        );
        assert!(decode(serde_json::json!({"seq": "one", "status": 7})).is_err());
        assert!(decode(serde_json::json!({"seq": 8})).is_err());
    }

    #[test]
    fn non_json_bodies_are_quoted_briefly() {
        let outcome = failure_outcome(&response(502, &"<html>".repeat(100), None));
        let Outcome::Transient { message, .. } = outcome else { panic!("502 is transient") };
        assert!(message.starts_with("HTTP 502: <html>") && message.len() < 220);
    }
}
