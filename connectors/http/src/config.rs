//! The config keys shared by the HTTP sink and source (the endpoint, headers, auth,
//! timeouts, retries), and their typed form. Parsing is pure: no connection is made here.
//!
//! Names follow Confluent's HTTP sink where it has one (`http.api.url`, `request.method`,
//! `headers`, `header.separator`, `auth.type`, `connection.user`, `connection.password`,
//! `batch.max.size`, `max.retries`, `retry.backoff.ms`, `http.connect.timeout.ms`,
//! `http.request.timeout.ms`).

use std::time::Duration;

use tributary_plugin_sdk::{
    Config, ConfigDef, ConfigKey, ConfigValue, ConnectError, Importance, Result, Validator,
};

pub const URL: &str = "http.api.url";
pub const METHOD: &str = "request.method";
pub const HEADERS: &str = "headers";
pub const HEADER_SEPARATOR: &str = "header.separator";
pub const AUTH_TYPE: &str = "auth.type";
pub const USER: &str = "connection.user";
pub const PASSWORD: &str = "connection.password";
pub const BEARER_TOKEN: &str = "bearer.token";
pub const CONNECT_TIMEOUT: &str = "http.connect.timeout.ms";
pub const REQUEST_TIMEOUT: &str = "http.request.timeout.ms";
pub const MAX_RETRIES: &str = "max.retries";
pub const BACKOFF: &str = "retry.backoff.ms";
pub const BACKOFF_MAX: &str = "retry.backoff.max.ms";

/// The keys every HTTP connector has; `method` is the default of `request.method`.
pub fn common_keys(def: ConfigDef, method: &str, methods: &[&str]) -> ConfigDef {
    def.define(
        ConfigKey::string(URL)
            .importance(Importance::High)
            .validator(Validator::new("an http:// or https:// URL", |v| match v {
                ConfigValue::String(s) => check_url(s),
                _ => Err("expected a string".to_owned()),
            }))
            .doc("The endpoint, e.g. http://127.0.0.1:8080/events"),
    )
    .define(
        ConfigKey::string(METHOD)
            .default(method)
            .validator(Validator::one_of(methods))
            .doc("The HTTP method of each request"),
    )
    .define(
        ConfigKey::string(HEADERS)
            .default("")
            .doc("Extra request headers, `Name:Value` pairs separated by `header.separator`"),
    )
    .define(
        ConfigKey::string(HEADER_SEPARATOR)
            .default("|")
            .validator(Validator::non_empty())
            .doc("What separates the pairs of `headers`"),
    )
    .define(
        ConfigKey::string(AUTH_TYPE)
            .default("NONE")
            .validator(Validator::one_of(&["NONE", "BASIC", "BEARER"]))
            .doc("NONE, BASIC (`connection.user` and `connection.password`) or BEARER (`bearer.token`)"),
    )
    .define(
        ConfigKey::string(USER)
            .default("")
            .doc("The user name of BASIC auth"),
    )
    .define(
        ConfigKey::password(PASSWORD)
            .default("")
            .doc("The password of BASIC auth"),
    )
    .define(
        ConfigKey::password(BEARER_TOKEN)
            .default("")
            .doc("The token of BEARER auth, sent as `Authorization: Bearer <token>`"),
    )
    .define(
        ConfigKey::long(CONNECT_TIMEOUT)
            .default("30000")
            .validator(Validator::at_least(1))
            .doc("Most milliseconds to wait for a connection"),
    )
    .define(
        ConfigKey::long(REQUEST_TIMEOUT)
            .default("30000")
            .validator(Validator::at_least(1))
            .doc("Most milliseconds for a whole request and its response"),
    )
    .define(
        ConfigKey::int(MAX_RETRIES)
            .default("10")
            .validator(Validator::at_least(0))
            .doc("Retries of a request that failed to connect, timed out, or got 408, 429 or 5xx"),
    )
    .define(
        ConfigKey::long(BACKOFF)
            .default("100")
            .validator(Validator::at_least(0))
            .doc("Milliseconds before the first retry; each next one waits twice as long"),
    )
    .define(
        ConfigKey::long(BACKOFF_MAX)
            .default("10000")
            .validator(Validator::at_least(0))
            .doc("Most milliseconds between retries (a server's `Retry-After` may ask for up to 5 minutes)"),
    )
}

fn check_url(s: &str) -> std::result::Result<(), String> {
    if s.starts_with("http://") {
        Ok(())
    } else if s.starts_with("https://") {
        if cfg!(feature = "rustls") {
            Ok(())
        } else {
            Err("https:// needs the HTTP connector built with its `rustls` feature; this build speaks http:// only".to_owned())
        }
    } else {
        Err(format!("{s:?} is not an http:// or https:// URL"))
    }
}

/// How requests authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    Basic { user: String, password: String },
    Bearer { token: String },
}

/// The typed form of [`common_keys`].
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub url: String,
    pub method: reqwest::Method,
    pub headers: Vec<(String, String)>,
    pub auth: Auth,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
}

/// Retries with exponential backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub initial: Duration,
    pub max: Duration,
}

/// The most a server's `Retry-After` can make a task wait.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(300);

impl RetryPolicy {
    /// The wait before retry number `attempt` (1-based), or the server's `Retry-After`
    /// when it gave one (capped at [`RETRY_AFTER_CAP`]).
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(d) = retry_after {
            return d.min(RETRY_AFTER_CAP);
        }
        let factor = 1u32 << attempt.saturating_sub(1).min(20);
        self.initial.saturating_mul(factor).min(self.max)
    }
}

fn ms(c: &Config, key: &str) -> Duration {
    Duration::from_millis(c.long(key).unwrap_or(0).max(0) as u64)
}

impl HttpConfig {
    pub fn parse(c: &Config) -> Result<HttpConfig> {
        let url = c.string(URL).unwrap_or_default().to_owned();
        let method = c.string(METHOD).unwrap_or("POST");
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| ConnectError::new(format!("{METHOD}: {e}")))?;
        let headers = parse_headers(
            c.string(HEADERS).unwrap_or_default(),
            c.string(HEADER_SEPARATOR).unwrap_or("|"),
        )?;
        let secret = |k: &str| {
            c.password(k)
                .map(|p| p.expose().to_owned())
                .unwrap_or_default()
        };
        let auth = match c.string(AUTH_TYPE).unwrap_or("NONE") {
            "BASIC" => {
                let user = c.string(USER).unwrap_or_default().to_owned();
                if user.is_empty() {
                    return Err(ConnectError::new(format!(
                        "{AUTH_TYPE}=BASIC needs {USER} (and {PASSWORD})"
                    )));
                }
                Auth::Basic {
                    user,
                    password: secret(PASSWORD),
                }
            }
            "BEARER" => {
                let token = secret(BEARER_TOKEN);
                if token.is_empty() {
                    return Err(ConnectError::new(format!(
                        "{AUTH_TYPE}=BEARER needs {BEARER_TOKEN}"
                    )));
                }
                Auth::Bearer { token }
            }
            _ => Auth::None,
        };
        Ok(HttpConfig {
            url,
            method,
            headers,
            auth,
            connect_timeout: ms(c, CONNECT_TIMEOUT),
            request_timeout: ms(c, REQUEST_TIMEOUT),
            retry: RetryPolicy {
                max_retries: c.int(MAX_RETRIES).unwrap_or(10).max(0) as u32,
                initial: ms(c, BACKOFF),
                max: ms(c, BACKOFF_MAX),
            },
        })
    }

    /// A client for these settings (no connection is made yet).
    pub fn client(&self) -> Result<reqwest::Client> {
        reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .build()
            .map_err(|e| ConnectError::new(format!("cannot build the HTTP client: {e}")))
    }

    /// A request with the method, URL, headers and auth; the caller adds the body.
    pub fn request(
        &self,
        client: &reqwest::Client,
        method: reqwest::Method,
        url: &str,
    ) -> reqwest::RequestBuilder {
        let mut r = client.request(method, url);
        for (k, v) in &self.headers {
            r = r.header(k.as_str(), v.as_str());
        }
        match &self.auth {
            Auth::None => r,
            Auth::Basic { user, password } => r.basic_auth(user, Some(password)),
            Auth::Bearer { token } => r.bearer_auth(token),
        }
    }
}

/// `Name:Value|Name2:Value2` into pairs; names and values are trimmed.
pub fn parse_headers(text: &str, separator: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for pair in text.split(separator) {
        if pair.trim().is_empty() {
            continue;
        }
        let Some((name, value)) = pair.split_once(':') else {
            return Err(ConnectError::new(format!(
                "{HEADERS}: {pair:?} is not `Name:Value`; separate pairs with {separator:?} ({HEADER_SEPARATOR})"
            )));
        };
        let name = name.trim();
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(ConnectError::new(format!(
                "{HEADERS}: {name:?} is not a valid header name"
            )));
        }
        if reqwest::header::HeaderValue::from_str(value.trim()).is_err() {
            return Err(ConnectError::new(format!(
                "{HEADERS}: the value of {name} is not a valid header value"
            )));
        }
        out.push((name.to_owned(), value.trim().to_owned()));
    }
    Ok(out)
}

/// How one request ended.
#[derive(Debug)]
pub enum Outcome {
    /// 2xx: the body.
    Accepted(Vec<u8>),
    /// A 4xx that retrying will not fix (not 408 or 429).
    Rejected { status: u16, body: String },
    /// Retries exhausted (or none allowed) on connection errors, timeouts, 408, 429, 5xx.
    GaveUp(String),
}

/// Whether a status is worth retrying.
pub fn retriable_status(status: u16) -> bool {
    status == 408 || status == 429 || status >= 500
}

/// `Retry-After` in seconds (the HTTP-date form is not read: the backoff applies then).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The body of a response as text for an error message, cut to 1 KiB.
pub fn body_text(body: &[u8]) -> String {
    let mut s = String::from_utf8_lossy(body).into_owned();
    if s.len() > 1024 {
        let mut end = 1024;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
    s
}

/// Send one request, retrying as `retry` says. `build` makes the request afresh for each
/// attempt. The retries are not logged (a plugin has no logger): the error says how many
/// there were once they give up.
pub async fn send_with_retry(
    config: &HttpConfig,
    build: impl Fn() -> reqwest::RequestBuilder,
    what: &str,
) -> Outcome {
    let mut attempt = 0u32;
    loop {
        let (error, after) = match build().send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let after = retry_after(resp.headers());
                let body = match resp.bytes().await {
                    Ok(b) => b.to_vec(),
                    Err(e) => {
                        let error = format!("{what}: reading the response failed: {e}");
                        if attempt >= config.retry.max_retries {
                            return Outcome::GaveUp(error);
                        }
                        attempt += 1;
                        tokio::time::sleep(config.retry.delay(attempt, None)).await;
                        continue;
                    }
                };
                if (200..300).contains(&status) {
                    return Outcome::Accepted(body);
                }
                if !retriable_status(status) {
                    return Outcome::Rejected {
                        status,
                        body: body_text(&body),
                    };
                }
                (
                    format!("{what}: HTTP {status}: {}", body_text(&body)),
                    after,
                )
            }
            Err(e) => (format!("{what}: {}", error_chain(&e)), None),
        };
        if attempt >= config.retry.max_retries {
            return Outcome::GaveUp(format!(
                "{error} (gave up after {attempt} retries; raise {MAX_RETRIES} or check the server)"
            ));
        }
        attempt += 1;
        let delay = config.retry.delay(attempt, after);
        tokio::time::sleep(delay).await;
    }
}

/// An error with its sources (reqwest's top-level message alone says little).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(c) = source {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_and_bad_ones_are_named() {
        assert_eq!(
            parse_headers("X-A: 1| X-B:two ", "|").unwrap(),
            [("X-A".into(), "1".into()), ("X-B".into(), "two".into())]
        );
        assert!(parse_headers("", "|").unwrap().is_empty());
        let e = parse_headers("X-A 1", "|").unwrap_err();
        assert!(e.message().contains("not `Name:Value`"), "{e}");
        let e = parse_headers("Bad Name:1", "|").unwrap_err();
        assert!(e.message().contains("not a valid header name"), "{e}");
    }

    #[test]
    fn backoff_doubles_up_to_the_max_and_retry_after_wins() {
        let p = RetryPolicy {
            max_retries: 5,
            initial: Duration::from_millis(100),
            max: Duration::from_millis(1000),
        };
        let d: Vec<u128> = (1..=6).map(|a| p.delay(a, None).as_millis()).collect();
        assert_eq!(d, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(p.delay(1, Some(Duration::from_secs(3600))), RETRY_AFTER_CAP);
        assert_eq!(p.delay(64, None), Duration::from_millis(1000));
    }

    #[test]
    fn which_statuses_are_retried() {
        for s in [408, 429, 500, 502, 503] {
            assert!(retriable_status(s), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 413, 422] {
            assert!(!retriable_status(s), "{s}");
        }
    }

    #[test]
    fn urls_are_checked() {
        assert!(check_url("http://127.0.0.1:1/x").is_ok());
        assert!(check_url("ftp://x").unwrap_err().contains("not an http"));
        if !cfg!(feature = "rustls") {
            assert!(check_url("https://x").unwrap_err().contains("rustls"));
        }
    }
}
