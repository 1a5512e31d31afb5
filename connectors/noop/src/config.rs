//! The keys of the no-op connectors, declared once, and their typed form.

use tributary_plugin_sdk::{
    ConfigDef, ConfigKey, ConnectError, Importance, RawConfig, Result, Validator,
};

pub const TOPIC: &str = "noop.topic";
pub const RECORDS_PER_POLL: &str = "noop.records.per.poll";
pub const RECORD_BYTES: &str = "noop.record.bytes";
pub const MAX_RECORDS: &str = "noop.max.records";
pub const PANIC_ON: &str = "noop.panic.on";
pub const FAIL_ON: &str = "noop.fail.on";
pub const REQUEST_RECONFIGURATION: &str = "noop.request.reconfiguration";
pub const RAISE_ERROR: &str = "noop.raise.error";
pub const PAUSE_AFTER_RECORDS: &str = "noop.pause.after.records";
pub const START_OFFSET: &str = "noop.start.offset";
/// Set by the connector in each task config: the task's number.
pub const TASK_ID: &str = "noop.task.id";

/// The calls `noop.panic.on` and `noop.fail.on` can name.
pub const CALLS: &[&str] = &[
    "",
    "connector.start",
    "start",
    "poll",
    "put",
    "pre_commit",
    "stop",
];

fn fault_keys(def: ConfigDef) -> ConfigDef {
    def.define(
        ConfigKey::string(PANIC_ON)
            .default("")
            .validator(Validator::one_of(CALLS))
            .importance(Importance::Low)
            .group("Faults")
            .doc("Panic in this call (tests the worker's isolation of a faulty plugin)."),
    )
    .define(
        ConfigKey::string(FAIL_ON)
            .default("")
            .validator(Validator::one_of(CALLS))
            .importance(Importance::Low)
            .group("Faults")
            .doc("Fail this call with a retriable error."),
    )
}

/// Keys that make the connector talk to the worker through its context, from a thread of
/// its own (tests the worker's side of the connector context).
fn connector_context_keys(def: ConfigDef) -> ConfigDef {
    def.define(
        ConfigKey::boolean(REQUEST_RECONFIGURATION)
            .default("false")
            .importance(Importance::Low)
            .group("Context")
            .doc("Once started, request a task reconfiguration from a thread of the connector's own."),
    )
    .define(
        ConfigKey::string(RAISE_ERROR)
            .default("")
            .importance(Importance::Low)
            .group("Context")
            .doc("Once started, raise this error (if not empty) from a thread of the connector's own."),
    )
}

/// The source connector's definition.
pub fn source_config_def() -> ConfigDef {
    fault_keys(connector_context_keys(
        ConfigDef::new()
            .define(
                ConfigKey::string(TOPIC)
                    .default("noop")
                    .validator(Validator::non_empty())
                    .importance(Importance::High)
                    .group("Records")
                    .doc("The topic the records are for."),
            )
            .define(
                ConfigKey::int(RECORDS_PER_POLL)
                    .default("1000")
                    .validator(Validator::between(1, 1_000_000))
                    .importance(Importance::Medium)
                    .group("Records")
                    .doc("Records returned by each poll."),
            )
            .define(
                ConfigKey::int(RECORD_BYTES)
                    .default("100")
                    .validator(Validator::between(8, 1 << 20))
                    .importance(Importance::Medium)
                    .group("Records")
                    .doc("The size of each record's value."),
            )
            .define(
                ConfigKey::long(MAX_RECORDS)
                    .default("-1")
                    .importance(Importance::Low)
                    .group("Records")
                    .doc("Records each task emits before its polls come back empty; -1 for no limit."),
            ),
    ))
}

/// The sink connector's definition.
pub fn sink_config_def() -> ConfigDef {
    fault_keys(connector_context_keys(
        ConfigDef::new()
            .define(
                ConfigKey::long(PAUSE_AFTER_RECORDS)
                    .default("-1")
                    .importance(Importance::Low)
                    .group("Context")
                    .doc("After counting this many records since the last pre-commit, pause every assigned partition and request a commit; the pre-commit resumes them. -1 never pauses."),
            )
            .define(
                ConfigKey::long(START_OFFSET)
                    .default("-1")
                    .importance(Importance::Low)
                    .group("Context")
                    .doc("Ask the worker to consume each opened partition from this offset; -1 keeps the committed position."),
            ),
    ))
}

/// What a connector does with its context once started.
#[derive(Debug, Clone, Default)]
pub struct ConnectorCalls {
    /// Request a task reconfiguration.
    pub request_reconfiguration: bool,
    /// Empty: raise nothing.
    pub raise_error: String,
}

impl ConnectorCalls {
    /// The calls a connector's parsed config asks for.
    pub fn parse(c: &tributary_plugin_sdk::Config) -> ConnectorCalls {
        ConnectorCalls {
            request_reconfiguration: c.boolean(REQUEST_RECONFIGURATION).unwrap_or(false),
            raise_error: c.string(RAISE_ERROR).unwrap_or("").to_owned(),
        }
    }
}

/// The fault injection settings, shared by both connectors.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    panic_on: String,
    fail_on: String,
}

impl Faults {
    /// Panic or fail if this call was named (a panic reports the caller's location).
    #[track_caller]
    pub fn at(&self, call: &str) -> Result<()> {
        if self.panic_on == call {
            panic!("noop: panic requested in {call} ({PANIC_ON}={call})");
        }
        if self.fail_on == call {
            return Err(ConnectError::retriable(format!(
                "noop: failure requested in {call} ({FAIL_ON}={call})"
            )));
        }
        Ok(())
    }
}

/// A source task's typed config.
#[derive(Debug, Clone)]
pub struct NoopSourceConfig {
    pub topic: String,
    pub records_per_poll: usize,
    pub record_bytes: usize,
    pub max_records: Option<u64>,
    pub task_id: i32,
    pub faults: Faults,
}

impl NoopSourceConfig {
    pub fn parse(raw: &RawConfig) -> Result<NoopSourceConfig> {
        let c = source_config_def().parse(raw)?;
        let task_id = match raw.get(TASK_ID) {
            Some(v) => v
                .parse()
                .map_err(|_| ConnectError::new(format!("{TASK_ID}={v:?} is not a number")))?,
            None => 0,
        };
        Ok(NoopSourceConfig {
            topic: c.string(TOPIC).unwrap_or("noop").to_owned(),
            records_per_poll: c.int(RECORDS_PER_POLL).unwrap_or(1000) as usize,
            record_bytes: c.int(RECORD_BYTES).unwrap_or(100) as usize,
            max_records: c.long(MAX_RECORDS).and_then(|n| u64::try_from(n).ok()),
            task_id,
            faults: faults(&c),
        })
    }
}

/// A sink task's typed config.
#[derive(Debug, Clone, Default)]
pub struct NoopSinkConfig {
    pub faults: Faults,
    /// Pause after this many records since the last pre-commit.
    pub pause_after_records: Option<u64>,
    /// Consume opened partitions from this offset.
    pub start_offset: Option<i64>,
}

impl NoopSinkConfig {
    pub fn parse(raw: &RawConfig) -> Result<NoopSinkConfig> {
        let c = sink_config_def().parse(raw)?;
        Ok(NoopSinkConfig {
            faults: faults(&c),
            pause_after_records: c
                .long(PAUSE_AFTER_RECORDS)
                .and_then(|n| u64::try_from(n).ok()),
            start_offset: c.long(START_OFFSET).filter(|n| *n >= 0),
        })
    }
}

fn faults(c: &tributary_plugin_sdk::Config) -> Faults {
    Faults {
        panic_on: c.string(PANIC_ON).unwrap_or("").to_owned(),
        fail_on: c.string(FAIL_ON).unwrap_or("").to_owned(),
    }
}

/// The task configs both connectors hand out: the connector's config plus a task number.
pub fn task_configs(originals: &RawConfig, max_tasks: usize) -> Vec<RawConfig> {
    (0..max_tasks)
        .map(|i| {
            let mut c = originals.clone();
            c.insert(TASK_ID.to_owned(), i.to_string());
            c
        })
        .collect()
}
