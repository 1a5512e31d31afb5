//! `HttpSource`: an HTTP API polled into a topic, page by page.
//!
//! Every `poll.interval.ms` the task requests `http.api.url`; the JSON response is split
//! into records at `records.pointer` (a JSON pointer, RFC 6901: an array gives one record
//! per element, anything else one record; empty: the whole response), each record's key
//! taken at `record.key.pointer` (relative to the record) when set. Values are schemaless
//! (see [`crate::json`]).
//!
//! Pagination, one of:
//!
//! - `cursor.pointer`: the response's cursor of the next page, sent back as the query
//!   parameter `cursor.param`;
//! - `next.pointer`: the response's link to the next page (absolute, or relative to the
//!   page's URL);
//! - `offset.param`: the number of records read so far, sent as that query parameter;
//! - none: the same URL every time.
//!
//! While a response names a next page the task follows it without waiting (but at most
//! `max.requests.per.second`); when it names none, the task waits `poll.interval.ms` and
//! asks for the same page again, skipping the records it already has, so a page that grows
//! (a feed's last page) yields only its new records.
//!
//! The source offset is where the next record comes from: the page (its cursor or URL)
//! and how many of its records were read (`{"cursor": c, "skip": n}`, `{"next": u,
//! "skip": n}`, `{"offset": n}`, `{"skip": n}`), one source partition per `http.api.url`.
//! A restarted task resumes there: no page is requested twice for its records and none is
//! skipped, even when the worker committed in the middle of a page.
//!
//! Errors: connection errors, timeouts, 408, 429 and 5xx wait with exponential backoff (or
//! the server's `Retry-After`) and the task fails after `max.retries` in a row; any other
//! 4xx, or a response that is not JSON, fails the task with the status and body.

use std::time::{Duration, Instant};

use tributary_plugin_sdk::{
    Config, ConfigDef, ConfigKey, ConnectError, Data, Importance, OffsetMap, RawConfig, Result,
    SourceConnector, SourceRecord, SourceTask, SourceTaskContext, Validator, Value,
};

use crate::config::{self, HttpConfig};
use crate::json;

pub const TOPIC: &str = "kafka.topic";
pub const POLL_INTERVAL: &str = "poll.interval.ms";
pub const RECORDS_POINTER: &str = "records.pointer";
pub const KEY_POINTER: &str = "record.key.pointer";
pub const CURSOR_POINTER: &str = "cursor.pointer";
pub const CURSOR_PARAM: &str = "cursor.param";
pub const NEXT_POINTER: &str = "next.pointer";
pub const OFFSET_PARAM: &str = "offset.param";
pub const RATE: &str = "max.requests.per.second";

fn pointer_validator() -> Validator {
    Validator::new(
        "a JSON pointer (RFC 6901): empty or starting with /",
        |v| match v {
            tributary_plugin_sdk::ConfigValue::String(s) if s.is_empty() || s.starts_with('/') => {
                Ok(())
            }
            tributary_plugin_sdk::ConfigValue::String(s) => Err(format!(
                "{s:?} is not a JSON pointer; start it with / (e.g. /data/items)"
            )),
            _ => Err("expected a string".to_owned()),
        },
    )
}

fn config_def() -> ConfigDef {
    config::common_keys(ConfigDef::new(), "GET", &["GET", "POST"])
        .define(
            ConfigKey::string(TOPIC)
                .importance(Importance::High)
                .validator(Validator::non_empty())
                .doc("The topic to write to"),
        )
        .define(
            ConfigKey::long(POLL_INTERVAL)
                .default("1000")
                .validator(Validator::at_least(0))
                .doc("Milliseconds between requests once there is no next page"),
        )
        .define(
            ConfigKey::string(RECORDS_POINTER)
                .default("")
                .validator(pointer_validator())
                .doc("Where the records are in a response (an array: one record per element); empty: the whole response"),
        )
        .define(
            ConfigKey::string(KEY_POINTER)
                .default("")
                .validator(pointer_validator())
                .doc("Where a record's key is in the record; empty: no key"),
        )
        .define(
            ConfigKey::string(CURSOR_POINTER)
                .default("")
                .validator(pointer_validator())
                .doc("Where the next page's cursor is in a response (cursor pagination)"),
        )
        .define(
            ConfigKey::string(CURSOR_PARAM)
                .default("cursor")
                .validator(Validator::non_empty())
                .doc("The query parameter the cursor is sent in"),
        )
        .define(
            ConfigKey::string(NEXT_POINTER)
                .default("")
                .validator(pointer_validator())
                .doc("Where the next page's URL is in a response (next-link pagination)"),
        )
        .define(
            ConfigKey::string(OFFSET_PARAM)
                .default("")
                .doc("A query parameter taking the number of records read so far (offset pagination)"),
        )
        .define(
            ConfigKey::double(RATE)
                .default("0")
                .doc("Most requests per second (0: no limit)"),
        )
}

/// How the next page is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Paging {
    None,
    Cursor { pointer: String, param: String },
    Next { pointer: String },
    Offset { param: String },
}

/// The source's typed config.
#[derive(Debug, Clone)]
pub struct HttpSourceConfig {
    pub http: HttpConfig,
    pub topic: String,
    pub interval: Duration,
    pub records_pointer: String,
    pub key_pointer: Option<String>,
    pub paging: Paging,
    /// Least time between two requests.
    pub min_gap: Duration,
}

impl HttpSourceConfig {
    pub fn parse(c: &Config) -> Result<HttpSourceConfig> {
        let s = |k: &str| c.string(k).unwrap_or_default().to_owned();
        let set: Vec<&str> = [CURSOR_POINTER, NEXT_POINTER, OFFSET_PARAM]
            .into_iter()
            .filter(|k| !s(k).is_empty())
            .collect();
        if set.len() > 1 {
            return Err(ConnectError::new(format!(
                "{} are all set; choose one way to page",
                set.join(" and ")
            )));
        }
        let paging = if !s(CURSOR_POINTER).is_empty() {
            Paging::Cursor {
                pointer: s(CURSOR_POINTER),
                param: s(CURSOR_PARAM),
            }
        } else if !s(NEXT_POINTER).is_empty() {
            Paging::Next {
                pointer: s(NEXT_POINTER),
            }
        } else if !s(OFFSET_PARAM).is_empty() {
            Paging::Offset {
                param: s(OFFSET_PARAM),
            }
        } else {
            Paging::None
        };
        let rate = c.double(RATE).unwrap_or(0.0);
        if !(rate >= 0.0 && rate.is_finite()) {
            return Err(ConnectError::new(format!(
                "{RATE} must be 0 (no limit) or more; got {rate}"
            )));
        }
        let key = s(KEY_POINTER);
        Ok(HttpSourceConfig {
            http: HttpConfig::parse(c)?,
            topic: s(TOPIC),
            interval: Duration::from_millis(c.long(POLL_INTERVAL).unwrap_or(1000).max(0) as u64),
            records_pointer: s(RECORDS_POINTER),
            key_pointer: (!key.is_empty()).then_some(key),
            paging,
            min_gap: if rate > 0.0 {
                Duration::from_secs_f64(1.0 / rate)
            } else {
                Duration::ZERO
            },
        })
    }
}

/// The connector: one task per URL.
#[derive(Debug, Default)]
pub struct HttpSource {
    originals: RawConfig,
}

impl SourceConnector for HttpSource {
    const NAME: &'static str = "io.tributary.connect.http.HttpSourceConnector";
    type Task = HttpSourceTask;

    fn config_def() -> ConfigDef {
        config_def()
    }

    fn start(&mut self, config: Config) -> Result<()> {
        HttpSourceConfig::parse(&config)?;
        self.originals = config.originals().clone();
        Ok(())
    }

    fn task_configs(&mut self, _max_tasks: usize) -> Result<Vec<RawConfig>> {
        // One URL, one sequence of pages: one task.
        Ok(vec![self.originals.clone()])
    }

    fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Where the next records come from: a page (its cursor or URL; `None` the first) and
/// how many of its records were read. In offset paging `page` is `None` and `skip` the
/// offset sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Position {
    pub page: Option<String>,
    pub skip: i64,
}

impl Position {
    /// As a source offset.
    pub fn to_offset(&self, paging: &Paging) -> OffsetMap {
        let page = || match &self.page {
            Some(p) => Value::String(p.clone()),
            None => Value::Null,
        };
        let skip = ("skip".to_owned(), Value::Int64(self.skip));
        match paging {
            Paging::Cursor { .. } => [("cursor".to_owned(), page()), skip].into(),
            Paging::Next { .. } => [("next".to_owned(), page()), skip].into(),
            Paging::Offset { .. } => [("offset".to_owned(), Value::Int64(self.skip))].into(),
            Paging::None => [skip].into(),
        }
    }

    /// From a stored source offset.
    pub fn from_offset(offset: &OffsetMap, paging: &Paging) -> Result<Position> {
        let int = |k: &str| match offset.get(k) {
            Some(Value::Int64(n)) => Ok(*n),
            Some(Value::Int32(n)) => Ok(i64::from(*n)),
            other => Err(ConnectError::new(format!(
                "the stored source offset has {k} = {other:?}, not a number; reset the connector's offsets (or its pagination settings changed)"
            ))),
        };
        let page = |k: &str| match offset.get(k) {
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Null) | None => Ok(None),
            other => Err(ConnectError::new(format!(
                "the stored source offset has {k} = {other:?}, not a string; reset the connector's offsets"
            ))),
        };
        Ok(match paging {
            Paging::Cursor { .. } => Position {
                page: page("cursor")?,
                skip: int("skip")?,
            },
            Paging::Next { .. } => Position {
                page: page("next")?,
                skip: int("skip")?,
            },
            Paging::Offset { .. } => Position {
                page: None,
                skip: int("offset")?,
            },
            Paging::None => Position {
                page: None,
                skip: int("skip")?,
            },
        })
    }
}

/// The URL to request for `position`.
pub fn page_url(config: &HttpSourceConfig, position: &Position) -> Result<String> {
    let bad = |e: &dyn std::fmt::Display| {
        ConnectError::new(format!("{} is not a valid URL: {e}", config.http.url))
    };
    let base = reqwest::Url::parse(&config.http.url).map_err(|e| bad(&e))?;
    let url = match (&config.paging, &position.page) {
        (Paging::Cursor { param, .. }, Some(cursor)) => {
            let mut u = base;
            u.query_pairs_mut().append_pair(param, cursor);
            u
        }
        (Paging::Next { .. }, Some(next)) => base.join(next).map_err(|e| {
            ConnectError::new(format!("the next page's link {next:?} is not a URL: {e}"))
        })?,
        (Paging::Offset { param }, _) => {
            let mut u = base;
            u.query_pairs_mut()
                .append_pair(param, &position.skip.to_string());
            u
        }
        _ => base,
    };
    Ok(url.into())
}

/// A JSON element as a page token: strings as they are, numbers as text; null, empty or
/// missing as none.
fn token(json: Option<&serde_json::Value>) -> Option<String> {
    match json? {
        serde_json::Value::String(s) if s.is_empty() => None,
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// What one response gives: its records (each with its source offset) and where to go next.
#[derive(Debug)]
pub struct Page {
    pub records: Vec<(serde_json::Value, Position)>,
    pub next: Position,
    /// Whether the response named a further page (request it without waiting).
    pub more: bool,
}

/// Split a response fetched at `position` into the records not read yet and the next
/// position.
pub fn read_page(config: &HttpSourceConfig, position: &Position, body: &serde_json::Value) -> Page {
    let found = if config.records_pointer.is_empty() {
        Some(body)
    } else {
        body.pointer(&config.records_pointer)
    };
    let all: Vec<&serde_json::Value> = match found {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::Array(items)) => items.iter().collect(),
        Some(one) => vec![one],
    };
    if let Paging::Offset { .. } = config.paging {
        let records: Vec<_> = all
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let at = Position {
                    page: None,
                    skip: position.skip + i as i64 + 1,
                };
                ((*r).clone(), at)
            })
            .collect();
        let next = Position {
            page: None,
            skip: position.skip + all.len() as i64,
        };
        return Page {
            more: !records.is_empty(),
            records,
            next,
        };
    }
    let next_page = match &config.paging {
        Paging::Cursor { pointer, .. } | Paging::Next { pointer } => token(body.pointer(pointer)),
        _ => None,
    }
    // A server answering the same cursor again has nothing further yet.
    .filter(|n| Some(n) != position.page.as_ref());
    let len = all.len() as i64;
    let skip = position.skip.clamp(0, len);
    let mut records = Vec::with_capacity((len - skip) as usize);
    for (i, r) in all.iter().enumerate().skip(skip as usize) {
        let last = i as i64 == len - 1;
        let at = match (&next_page, last) {
            (Some(n), true) => Position {
                page: Some(n.clone()),
                skip: 0,
            },
            _ => Position {
                page: position.page.clone(),
                skip: i as i64 + 1,
            },
        };
        records.push(((*r).clone(), at));
    }
    let (next, more) = match next_page {
        Some(n) => (
            Position {
                page: Some(n),
                skip: 0,
            },
            true,
        ),
        None => (
            Position {
                page: position.page.clone(),
                skip: len.max(skip),
            },
            false,
        ),
    };
    Page {
        records,
        next,
        more,
    }
}

/// One task: the position, the schedule, the client.
#[derive(Debug, Default)]
pub struct HttpSourceTask {
    context: Option<SourceTaskContext>,
    state: Option<State>,
}

#[derive(Debug)]
struct State {
    config: HttpSourceConfig,
    client: reqwest::Client,
    partition: OffsetMap,
    position: Position,
    next_at: Instant,
    last_request: Option<Instant>,
    failures: u32,
}

/// What a request ended in.
enum Fetched {
    Body(Vec<u8>),
    /// Retry after this long.
    Retry(String, Option<Duration>),
}

impl SourceTask for HttpSourceTask {
    fn initialize(&mut self, context: SourceTaskContext) {
        self.context = Some(context);
    }

    fn start(&mut self, raw: RawConfig) -> Result<()> {
        let c = config_def().parse(&raw)?;
        let config = HttpSourceConfig::parse(&c)?;
        let client = config.http.client()?;
        let partition: OffsetMap =
            [("url".to_owned(), Value::String(config.http.url.clone()))].into();
        let position = match &self.context {
            Some(ctx) => match ctx.offset(&partition)? {
                Some(o) => Position::from_offset(&o, &config.paging)?,
                None => Position::default(),
            },
            None => Position::default(),
        };
        self.state = Some(State {
            config,
            client,
            partition,
            position,
            next_at: Instant::now(),
            last_request: None,
            failures: 0,
        });
        Ok(())
    }

    fn poll(&mut self) -> Result<Vec<SourceRecord>> {
        let s = self
            .state
            .as_mut()
            .ok_or_else(|| ConnectError::new("poll before start"))?;
        let mut due = s.next_at;
        if let Some(last) = s.last_request {
            due = due.max(last + s.config.min_gap);
        }
        let now = Instant::now();
        if now < due {
            // Return within about a second, so that the task stops promptly.
            std::thread::sleep((due - now).min(Duration::from_millis(500)));
            if Instant::now() < due {
                return Ok(Vec::new());
            }
        }
        let url = page_url(&s.config, &s.position)?;
        s.last_request = Some(Instant::now());
        let fetched = crate::runtime()?.block_on(fetch(&s.config, &s.client, &url))?;
        let body = match fetched {
            Fetched::Body(b) => b,
            Fetched::Retry(error, after) => {
                s.failures += 1;
                if s.failures > s.config.http.retry.max_retries {
                    return Err(ConnectError::new(format!(
                        "{error} ({} tries in a row failed; raise {} or check the server)",
                        s.failures,
                        config::MAX_RETRIES
                    )));
                }
                s.next_at = Instant::now() + s.config.http.retry.delay(s.failures, after);
                return Ok(Vec::new());
            }
        };
        s.failures = 0;
        let json: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
            ConnectError::new(format!(
                "the response of GET {url} is not JSON ({e}): {}",
                config::body_text(&body)
            ))
        })?;
        let page = read_page(&s.config, &s.position, &json);
        let mut out = Vec::with_capacity(page.records.len());
        for (value, at) in page.records {
            let key = match &s.config.key_pointer {
                Some(p) => json::to_key(value.pointer(p).unwrap_or(&serde_json::Value::Null)),
                None => Data::null(),
            };
            out.push(
                SourceRecord::new(
                    s.config.topic.clone(),
                    Data::schemaless(json::to_value(&value)),
                )
                .with_key(key)
                .with_source(s.partition.clone(), at.to_offset(&s.config.paging)),
            );
        }
        s.position = page.next;
        s.next_at = if page.more {
            Instant::now()
        } else {
            Instant::now() + s.config.interval
        };
        Ok(out)
    }

    fn stop(&mut self) -> Result<()> {
        self.state = None;
        Ok(())
    }
}

/// One request (no retry here: the task schedules the next try itself, so that `poll`
/// returns promptly).
async fn fetch(config: &HttpSourceConfig, client: &reqwest::Client, url: &str) -> Result<Fetched> {
    let what = format!("{} {url}", config.http.method);
    let resp = match config
        .http
        .request(client, config.http.method.clone(), url)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => {
            return Ok(Fetched::Retry(
                format!("{what}: {}", config::error_chain(&e)),
                None,
            ));
        }
    };
    let status = resp.status().as_u16();
    let after = config::retry_after(resp.headers());
    let body = match resp.bytes().await {
        Ok(b) => b.to_vec(),
        Err(e) => {
            return Ok(Fetched::Retry(
                format!(
                    "{what}: reading the response failed: {}",
                    config::error_chain(&e)
                ),
                None,
            ));
        }
    };
    if (200..300).contains(&status) {
        Ok(Fetched::Body(body))
    } else if config::retriable_status(status) {
        Ok(Fetched::Retry(
            format!("{what}: HTTP {status}: {}", config::body_text(&body)),
            after,
        ))
    } else {
        Err(ConnectError::new(format!(
            "{what} answered HTTP {status}: {}; check the URL, the auth settings and the headers",
            config::body_text(&body)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tributary_plugin_sdk::testing::config as raw;

    fn cfg(pairs: &[(&str, &str)]) -> HttpSourceConfig {
        let mut all = vec![("http.api.url", "http://h/items"), ("kafka.topic", "t")];
        all.extend_from_slice(pairs);
        HttpSourceConfig::parse(&config_def().parse(&raw(&all)).unwrap()).unwrap()
    }

    #[test]
    fn cursor_pages_carry_where_the_next_record_is() {
        let c = cfg(&[
            ("records.pointer", "/data"),
            ("cursor.pointer", "/meta/next"),
        ]);
        let start = Position::default();
        assert_eq!(page_url(&c, &start).unwrap(), "http://h/items");
        let body = json!({"data": [1, 2, 3], "meta": {"next": "c 2"}});
        let page = read_page(&c, &start, &body);
        let offsets: Vec<_> = page.records.iter().map(|(_, p)| p.clone()).collect();
        assert_eq!(
            offsets,
            [
                Position {
                    page: None,
                    skip: 1
                },
                Position {
                    page: None,
                    skip: 2
                },
                Position {
                    page: Some("c 2".into()),
                    skip: 0
                },
            ]
        );
        assert!(page.more);
        assert_eq!(
            page_url(&c, &page.next).unwrap(),
            "http://h/items?cursor=c+2"
        );
        // Resuming in the middle of a page skips what was read.
        let page = read_page(&c, &offsets[0], &body);
        assert_eq!(page.records.len(), 2);
        assert_eq!(page.records[0].0, json!(2));
        // The last page: no next cursor; the position stays there, past its records.
        let last = Position {
            page: Some("c 9".into()),
            skip: 0,
        };
        let body = json!({"data": [7, 8], "meta": {"next": null}});
        let page = read_page(&c, &last, &body);
        assert!(!page.more);
        assert_eq!(
            page.next,
            Position {
                page: Some("c 9".into()),
                skip: 2
            }
        );
        // Asked again later, it has grown by one: only that one comes.
        let body = json!({"data": [7, 8, 9], "meta": {"next": "c 9"}});
        let again = read_page(&c, &page.next, &body);
        assert_eq!(again.records.len(), 1);
        assert_eq!(again.records[0].0, json!(9));
        assert!(!again.more, "the same cursor again is no next page");
        // Offsets round trip.
        let o = again.next.to_offset(&c.paging);
        assert_eq!(Position::from_offset(&o, &c.paging).unwrap(), again.next);
    }

    #[test]
    fn next_links_and_offsets() {
        let c = cfg(&[
            ("records.pointer", "/items"),
            ("next.pointer", "/links/next"),
        ]);
        let body = json!({"items": [{"id": 1}], "links": {"next": "/items?page=2"}});
        let page = read_page(&c, &Position::default(), &body);
        assert_eq!(page_url(&c, &page.next).unwrap(), "http://h/items?page=2");
        let c = cfg(&[("offset.param", "from")]);
        let page = read_page(
            &c,
            &Position {
                page: None,
                skip: 10,
            },
            &json!([5, 6]),
        );
        assert_eq!(page.next.skip, 12);
        assert_eq!(page.records[1].1.skip, 12);
        assert_eq!(page_url(&c, &page.next).unwrap(), "http://h/items?from=12");
        assert!(!read_page(&c, &page.next, &json!([])).more);
        // A body that is one object is one record.
        let c = cfg(&[]);
        assert_eq!(
            read_page(&c, &Position::default(), &json!({"a": 1}))
                .records
                .len(),
            1
        );
    }

    #[test]
    fn two_ways_to_page_are_refused() {
        let parsed = config_def()
            .parse(&raw(&[
                ("http.api.url", "http://h/"),
                ("kafka.topic", "t"),
                ("cursor.pointer", "/c"),
                ("offset.param", "o"),
            ]))
            .unwrap();
        let e = HttpSourceConfig::parse(&parsed).unwrap_err();
        assert!(e.message().contains("choose one way to page"), "{e}");
        let infos = config_def().validate(&raw(&[
            ("http.api.url", "http://h/"),
            ("kafka.topic", "t"),
            ("records.pointer", "data"),
        ]));
        let e = &infos
            .iter()
            .find(|i| i.name == "records.pointer")
            .unwrap()
            .errors;
        assert!(e[0].contains("start it with /"), "{e:?}");
    }
}
