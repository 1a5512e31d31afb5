//! `HttpSink`: records of topics to an HTTP endpoint, in batches.
//!
//! Each `put` cuts its records into batches of `batch.max.size` and sends them, at most
//! `max.in.flight.requests` at once, in the body `request.format` says:
//!
//! - `json_array` (the default): `[v1,v2,...]`, `Content-Type: application/json`;
//! - `ndjson`: one value per line, `Content-Type: application/x-ndjson`;
//! - `single`: one request per record, its value alone (`batch.max.size` is ignored).
//!
//! Only record values are sent (as Confluent's HTTP sink does), as JSON ([`crate::json`]).
//! A request that fails to connect, times out, or gets 408, 429 or a 5xx is retried with
//! exponential backoff, waiting what the server's `Retry-After` says when it says so; once
//! `max.retries` are spent the task fails. A 4xx that retrying cannot fix (400, 401, 404,
//! 422...) does not fail the task by itself: every record of that batch is reported to the
//! worker (Kafka Connect's errant record reporter) with the status and the response body,
//! and the worker applies `errors.tolerance` and the dead letter queue to them. Set
//! `batch.max.size=1` to isolate bad records one by one.
//!
//! `put` returns only once every batch was accepted (2xx) or reported, so the offsets the
//! worker commits after it are those of records the server accepted: delivery is at least
//! once (a batch accepted just before a crash is sent again).
//!
//! Batches sent concurrently may arrive out of order; `max.in.flight.requests=1` keeps
//! the order of each `put`.

use std::sync::Arc;

use tributary_plugin_sdk::{
    Config, ConfigDef, ConfigKey, ConnectError, Importance, RawConfig, Result, SinkConnector,
    SinkRecord, SinkTask, SinkTaskContext, Validator,
};

use crate::config::{self, HttpConfig, Outcome};
use crate::json;

pub const BATCH_MAX_SIZE: &str = "batch.max.size";
pub const REQUEST_FORMAT: &str = "request.format";
pub const MAX_IN_FLIGHT: &str = "max.in.flight.requests";

fn config_def() -> ConfigDef {
    config::common_keys(ConfigDef::new(), "POST", &["POST", "PUT", "PATCH"])
        .define(
            ConfigKey::int(BATCH_MAX_SIZE)
                .default("1")
                .validator(Validator::between(1, 1_000_000))
                .importance(Importance::High)
                .doc("Most records in one request"),
        )
        .define(
            ConfigKey::string(REQUEST_FORMAT)
                .default("json_array")
                .validator(Validator::one_of(&["json_array", "ndjson", "single"]))
                .doc("The body: json_array (a JSON array of values), ndjson (one value per line) or single (one record per request)"),
        )
        .define(
            ConfigKey::int(MAX_IN_FLIGHT)
                .default("4")
                .validator(Validator::between(1, 256))
                .doc("Most requests one task has in flight at once"),
        )
}

/// The connector: every task gets the same config.
#[derive(Debug, Default)]
pub struct HttpSink {
    originals: RawConfig,
}

impl SinkConnector for HttpSink {
    const NAME: &'static str = "io.tributary.connect.http.HttpSinkConnector";
    const ALIASES: &'static [&'static str] = &["io.confluent.connect.http.HttpSinkConnector"];
    type Task = HttpSinkTask;

    fn config_def() -> ConfigDef {
        config_def()
    }

    fn start(&mut self, config: Config) -> Result<()> {
        HttpSinkConfig::parse(&config)?;
        self.originals = config.originals().clone();
        Ok(())
    }

    fn task_configs(&mut self, max_tasks: usize) -> Result<Vec<RawConfig>> {
        Ok(vec![self.originals.clone(); max_tasks.max(1)])
    }

    fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}

/// The body of each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFormat {
    JsonArray,
    Ndjson,
    Single,
}

/// The sink's typed config.
#[derive(Debug, Clone)]
pub struct HttpSinkConfig {
    pub http: HttpConfig,
    pub batch_max_size: usize,
    pub format: RequestFormat,
    pub max_in_flight: usize,
}

impl HttpSinkConfig {
    pub fn parse(c: &Config) -> Result<HttpSinkConfig> {
        let format = match c.string(REQUEST_FORMAT).unwrap_or("json_array") {
            "ndjson" => RequestFormat::Ndjson,
            "single" => RequestFormat::Single,
            _ => RequestFormat::JsonArray,
        };
        Ok(HttpSinkConfig {
            http: HttpConfig::parse(c)?,
            batch_max_size: if format == RequestFormat::Single {
                1
            } else {
                c.int(BATCH_MAX_SIZE).unwrap_or(1).max(1) as usize
            },
            format,
            max_in_flight: c.int(MAX_IN_FLIGHT).unwrap_or(4).max(1) as usize,
        })
    }
}

/// The body of one batch.
pub fn encode_batch(records: &[SinkRecord], format: RequestFormat) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.len() * 128);
    match format {
        RequestFormat::JsonArray => {
            out.push(b'[');
            for (i, r) in records.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json::write_data(&mut out, &r.value);
            }
            out.push(b']');
        }
        RequestFormat::Ndjson => {
            for r in records {
                json::write_data(&mut out, &r.value);
                out.push(b'\n');
            }
        }
        RequestFormat::Single => {
            if let Some(r) = records.first() {
                json::write_data(&mut out, &r.value);
            }
        }
    }
    out
}

/// One task: a client and its settings.
#[derive(Debug, Default)]
pub struct HttpSinkTask {
    context: Option<SinkTaskContext>,
    state: Option<(Arc<HttpSinkConfig>, reqwest::Client)>,
}

impl SinkTask for HttpSinkTask {
    fn initialize(&mut self, context: SinkTaskContext) {
        self.context = Some(context);
    }

    fn start(&mut self, raw: RawConfig) -> Result<()> {
        let c = config_def().parse(&raw)?;
        let config = HttpSinkConfig::parse(&c)?;
        let client = config.http.client()?;
        self.state = Some((Arc::new(config), client));
        Ok(())
    }

    fn put(&mut self, records: Vec<SinkRecord>) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let (config, client) = self
            .state
            .as_ref()
            .ok_or_else(|| ConnectError::new("put before start"))?;
        let outcomes = crate::runtime()?.block_on(send_batches(config, client, &records));
        for (range, outcome) in outcomes {
            match outcome {
                Outcome::Accepted(_) => {}
                Outcome::Rejected { status, body } => {
                    let message = format!(
                        "{} {} answered HTTP {status} (not retried): {body}",
                        config.http.method, config.http.url
                    );
                    let context = self.context.as_ref().ok_or_else(|| {
                        ConnectError::new(format!("{message}; no worker context to report it"))
                    })?;
                    for r in &records[range] {
                        context.report(r, &message)?;
                    }
                }
                Outcome::GaveUp(message) => return Err(ConnectError::new(message)),
            }
        }
        Ok(())
    }

    fn stop(&mut self) -> Result<()> {
        self.state = None;
        Ok(())
    }
}

/// Send every batch of `records`, at most `max_in_flight` at once; each batch's outcome
/// with the range of records it held, in order.
async fn send_batches(
    config: &Arc<HttpSinkConfig>,
    client: &reqwest::Client,
    records: &[SinkRecord],
) -> Vec<(std::ops::Range<usize>, Outcome)> {
    let content_type = match config.format {
        RequestFormat::Ndjson => "application/x-ndjson",
        _ => "application/json",
    };
    let semaphore = Arc::new(tokio::sync::Semaphore::new(config.max_in_flight));
    let mut handles = Vec::new();
    let mut start = 0;
    while start < records.len() {
        let end = (start + config.batch_max_size).min(records.len());
        // Bytes: each retry's body is a clone of the same buffer, not a copy.
        let body = bytes::Bytes::from(encode_batch(&records[start..end], config.format));
        let permit = semaphore.clone().acquire_owned().await;
        let (config, client) = (config.clone(), client.clone());
        handles.push((
            start..end,
            tokio::spawn(async move {
                let _permit = permit;
                let what = format!("{} {}", config.http.method, config.http.url);
                config::send_with_retry(
                    &config.http,
                    || {
                        config
                            .http
                            .request(&client, config.http.method.clone(), &config.http.url)
                            .header(reqwest::header::CONTENT_TYPE, content_type)
                            .body(body.clone())
                    },
                    &what,
                )
                .await
            }),
        ));
        start = end;
    }
    let mut out = Vec::with_capacity(handles.len());
    for (range, handle) in handles {
        let outcome = handle
            .await
            .unwrap_or_else(|e| Outcome::GaveUp(format!("a request task failed: {e}")));
        out.push((range, outcome));
    }
    out
}
