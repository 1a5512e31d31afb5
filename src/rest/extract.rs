//! Reading requests: JSON bodies ([`JsonBody`]), query strings ([`Query`]) and path
//! parameters ([`PathParams`]), each refusing bad input with an [`ApiError`] in Kafka
//! Connect's error shape rather than axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as Json};

use super::BODY_LIMIT;
use super::error::ApiError;

/// A JSON request body. As Kafka Connect's resources `@Consumes(application/json)`, a
/// body sent with another content type (or none) is refused with 415; one over
/// [`BODY_LIMIT`] with 413; one that is not JSON with 400.
#[derive(Debug)]
pub struct JsonBody(pub Json);

impl JsonBody {
    /// The body as a JSON object, or 400.
    pub fn object(self, what: &str) -> Result<Map<String, Json>, ApiError> {
        match self.0 {
            Json::Object(map) => Ok(map),
            other => Err(ApiError::bad_request(format!(
                "the request body must be a JSON object ({what}), not {}",
                json_kind(&other)
            ))),
        }
    }
}

/// "an array", "a string" ...: for messages about the wrong kind of JSON value.
pub fn json_kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<JsonBody, ApiError> {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or_default().trim().to_owned());
        if !content_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("application/json"))
        {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "the request body must be JSON sent with Content-Type: application/json (found {})",
                    content_type.map_or("no Content-Type".to_owned(), |t| format!("{t:?}"))
                ),
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the request body is larger than the limit of {BODY_LIMIT} bytes"),
                )
            } else {
                ApiError::new(
                    e.status(),
                    format!("cannot read the request body: {}", e.body_text()),
                )
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
    }
}

/// The query string as (name, value) pairs, percent-decoded, repeated names kept (Kafka
/// Connect's `?expand=status&expand=info`).
#[derive(Debug, Default)]
pub struct Query(pub Vec<(String, String)>);

impl Query {
    pub fn parse(query: &str) -> Query {
        Query(
            query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect(),
        )
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean parameter (`true`/`false`, any case; the last one given wins), or
    /// `default` when absent. Anything else is refused with 400, where Kafka's Jersey
    /// would quietly take it as false.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.all(name).last() {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(ApiError::bad_request(format!(
                "query parameter {name}={v:?}: expected true or false"
            ))),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Query, ApiError> {
        Ok(parts.uri.query().map(Query::parse).unwrap_or_default())
    }
}

/// `%XX` and `+` decoded (a query string's form); a malformed escape is kept as it is,
/// invalid UTF-8 replaced.
pub fn percent_decode(s: &str) -> String {
    decode(s, true)
}

/// `%XX` decoded, `+` kept (a path segment's form), as [`percent_decode`] otherwise.
pub fn percent_decode_segment(s: &str) -> String {
    decode(s, false)
}

fn decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `s` as one path segment: everything but RFC 3986's unreserved characters escaped.
pub fn percent_encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Path parameters, with axum's rejection (a segment that is not UTF-8 once decoded)
/// turned into a 400 in Kafka's error shape.
#[derive(Debug)]
pub struct PathParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<PathParams<T>, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| PathParams(t))
            .map_err(|e| ApiError::bad_request(format!("invalid path: {}", e.body_text())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_keeps_repeats_and_decodes() {
        let q = Query::parse("expand=status&expand=info&x=a%20b+c&flag&bad=%zz&end=%4&sign=%+1");
        assert_eq!(q.all("expand").collect::<Vec<_>>(), ["status", "info"]);
        assert_eq!(q.all("x").next(), Some("a b c"));
        assert_eq!(q.all("flag").next(), Some(""));
        assert_eq!(q.all("bad").next(), Some("%zz"));
        assert_eq!(q.all("end").next(), Some("%4"));
        assert_eq!(q.all("sign").next(), Some("% 1"));
    }

    #[test]
    fn flags() {
        let q = Query::parse("includeTasks=TRUE&onlyFailed=false&x=yes");
        assert!(q.flag("includeTasks", false).unwrap());
        assert!(!q.flag("onlyFailed", true).unwrap());
        assert!(q.flag("absent", true).unwrap());
        let err = q.flag("x", false).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(err.message.contains("x=\"yes\""), "{}", err.message);
    }

    #[test]
    fn segments_round_trip() {
        for s in ["plain", "with space", "a/b", "ünï", "%41", "semi;colon?"] {
            let e = percent_encode_segment(s);
            assert!(
                !e.contains('/') && !e.contains(' ') && !e.contains('?'),
                "{e}"
            );
            assert_eq!(percent_decode(&e), s);
        }
    }
}
