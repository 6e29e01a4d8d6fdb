//! From what the server answered to what happened to each write: transient failures retry, permanent ones
//! go to the failed list.

use serde::Deserialize;

use crate::core::engine::Outcome;

/// One HTTP answer, as much of it as the engine needs.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpResponse {
    pub status: u16,
    /// The raw `Retry-After` header, if any.
    pub retry_after: Option<String>,
    pub body: String,
}

/// PostgREST's error body.
#[derive(Debug, Default, Deserialize)]
struct PostgrestError {
    code: Option<String>,
    message: Option<String>,
    details: Option<String>,
    hint: Option<String>,
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
pub fn failure_outcome(response: &HttpResponse) -> Outcome {
    let error: PostgrestError = serde_json::from_str(&response.body).unwrap_or_default();
    let message = describe(response.status, &error, &response.body);
    let transient_status = matches!(response.status, 401 | 408 | 429 | 500..=599) || response.status < 200;
    let transient_code = error.code.as_deref().is_some_and(is_transient_sqlstate);
    if transient_status || transient_code {
        Outcome::Transient { message, retry_after_ms: retry_after_ms(response.retry_after.as_deref()) }
    } else {
        Outcome::Permanent { code: error.code, message }
    }
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

/// `Retry-After` in delay-seconds. The HTTP-date form needs a clock the core does not have and is ignored,
/// leaving the backoff alone in charge.
pub fn retry_after_ms(header: Option<&str>) -> Option<u64> {
    let seconds: f64 = header?.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| (seconds * 1000.0).min(u64::MAX as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn non_json_bodies_are_quoted_briefly() {
        let outcome = failure_outcome(&response(502, &"<html>".repeat(100), None));
        let Outcome::Transient { message, .. } = outcome else { panic!("502 is transient") };
        assert!(message.starts_with("HTTP 502: <html>") && message.len() < 220);
    }
}
