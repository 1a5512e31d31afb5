//! `FileStreamSource`: lines of a file, tailed, into a topic.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

use tributary_plugin_sdk::{
    Config, ConfigDef, ConfigKey, ConnectError, Data, Importance, OffsetMap, RawConfig, Result,
    Schema, SourceConnector, SourceRecord, SourceTask, SourceTaskContext, Validator, Value,
};

const FILE: &str = "file";
const TOPIC: &str = "topic";
const BATCH_SIZE: &str = "batch.size";
/// How long a poll waits when the file has nothing new (Kafka's task waits a second;
/// shorter here so that tailing is prompt).
const IDLE_WAIT: Duration = Duration::from_millis(50);
/// Bytes read from the file at a time.
const READ_CHUNK: usize = 1 << 20;

fn config_def() -> ConfigDef {
    ConfigDef::new()
        .define(
            ConfigKey::string(FILE)
                .optional()
                .importance(Importance::High)
                .doc("Source filename. If not specified, the standard input will be used"),
        )
        .define(
            ConfigKey::string(TOPIC)
                .importance(Importance::High)
                .validator(Validator::non_empty())
                .doc("The topic to publish data to"),
        )
        .define(
            ConfigKey::int(BATCH_SIZE)
                .default("2000")
                .importance(Importance::Low)
                .validator(Validator::at_least(1))
                .doc("The maximum number of records the source task can read from the file each time it is polled"),
        )
}

/// The connector: one task, whatever `tasks.max` says (a file has one reader).
#[derive(Debug, Default)]
pub struct FileStreamSource {
    originals: RawConfig,
}

impl SourceConnector for FileStreamSource {
    const NAME: &'static str = "org.apache.kafka.connect.file.FileStreamSourceConnector";
    const ALIASES: &'static [&'static str] =
        &["io.tributary.connect.file.FileStreamSourceConnector"];
    type Task = FileStreamSourceTask;

    fn config_def() -> ConfigDef {
        config_def()
    }

    fn start(&mut self, config: Config) -> Result<()> {
        self.originals = config.originals().clone();
        Ok(())
    }

    fn task_configs(&mut self, max_tasks: usize) -> Result<Vec<RawConfig>> {
        Ok(if max_tasks == 0 {
            Vec::new()
        } else {
            vec![self.originals.clone()]
        })
    }

    fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Reads the file from the committed position on.
#[derive(Debug, Default)]
pub struct FileStreamSourceTask {
    context: Option<SourceTaskContext>,
    topic: String,
    batch_size: usize,
    filename: Option<String>,
    input: Option<Box<dyn ReadDebug>>,
    /// Bytes read but not yet cut into lines (a line without its newline yet).
    buffer: Vec<u8>,
    /// The file position of `buffer[0]`.
    position: u64,
    partition: OffsetMap,
}

trait ReadDebug: Read + Send + std::fmt::Debug {}
impl<T: Read + Send + std::fmt::Debug> ReadDebug for T {}

impl SourceTask for FileStreamSourceTask {
    fn initialize(&mut self, context: SourceTaskContext) {
        self.context = Some(context);
    }

    fn start(&mut self, raw: RawConfig) -> Result<()> {
        let config = config_def().parse(&raw)?;
        self.topic = config.string(TOPIC).unwrap_or_default().to_owned();
        self.batch_size = config.int(BATCH_SIZE).unwrap_or(2000).max(1) as usize;
        self.filename = config
            .string(FILE)
            .filter(|f| !f.is_empty())
            .map(str::to_owned);
        match &self.filename {
            None => {
                self.input = Some(Box::new(std::io::stdin()));
            }
            Some(name) => {
                self.partition = [("filename".to_owned(), Value::String(name.clone()))].into();
                let stored = match &self.context {
                    Some(ctx) => ctx.offset(&self.partition)?,
                    None => None,
                };
                let position = match stored.as_ref().and_then(|o| o.get("position")) {
                    None => 0,
                    Some(Value::Int64(p)) if *p >= 0 => *p as u64,
                    Some(Value::Int32(p)) if *p >= 0 => *p as u64,
                    Some(other) => {
                        return Err(ConnectError::new(format!(
                            "the stored offset of {name} has position {other:?}, not a byte position; \
                             reset the connector's offsets"
                        )));
                    }
                };
                let mut file = File::open(name).map_err(|e| {
                    ConnectError::retriable(format!(
                        "cannot open {name}: {e}; create it or fix `file`"
                    ))
                })?;
                let len = file.metadata().map(|m| m.len()).unwrap_or(0);
                if position > len {
                    return Err(ConnectError::new(format!(
                        "{name} is {len} bytes, shorter than the committed position {position}: the file \
                         was truncated or replaced; reset the connector's offsets to read it from the start"
                    )));
                }
                file.seek(SeekFrom::Start(position))?;
                self.position = position;
                self.input = Some(Box::new(file));
            }
        }
        Ok(())
    }

    fn poll(&mut self) -> Result<Vec<SourceRecord>> {
        if self.input.is_none() {
            return Err(ConnectError::new("poll before start"));
        }
        let mut records = self.cut_lines();
        if records.len() < self.batch_size
            && let Some(input) = self.input.as_mut()
        {
            let at = self.buffer.len();
            self.buffer.resize(at + READ_CHUNK, 0);
            let n = match input.read(&mut self.buffer[at..]) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
                Err(e) => {
                    self.buffer.truncate(at);
                    return Err(ConnectError::retriable(format!(
                        "reading {}: {e}",
                        self.filename.as_deref().unwrap_or("stdin")
                    )));
                }
            };
            self.buffer.truncate(at + n);
            if n > 0 {
                let more = self.cut_lines_limit(self.batch_size - records.len());
                records.extend(more);
            }
        }
        if records.is_empty() {
            std::thread::sleep(IDLE_WAIT);
        }
        Ok(records)
    }

    fn stop(&mut self) -> Result<()> {
        self.input = None;
        Ok(())
    }
}

impl FileStreamSourceTask {
    fn cut_lines(&mut self) -> Vec<SourceRecord> {
        self.cut_lines_limit(self.batch_size)
    }

    /// Complete lines at the front of the buffer, at most `limit`, as records.
    fn cut_lines_limit(&mut self, limit: usize) -> Vec<SourceRecord> {
        let mut out = Vec::new();
        let mut start = 0;
        while out.len() < limit {
            let Some(nl) = self.buffer[start..].iter().position(|&b| b == b'\n') else {
                break;
            };
            let end = start + nl;
            let line_end = if end > start && self.buffer[end - 1] == b'\r' {
                end - 1
            } else {
                end
            };
            let line = String::from_utf8_lossy(&self.buffer[start..line_end]).into_owned();
            start = end + 1;
            let mut record = SourceRecord::new(
                self.topic.clone(),
                Data {
                    schema: Some(Schema::string()),
                    value: Value::String(line),
                },
            );
            if self.filename.is_some() {
                record.source_partition = self.partition.clone();
                record.source_offset = [(
                    "position".to_owned(),
                    Value::Int64((self.position + start as u64) as i64),
                )]
                .into();
            }
            out.push(record);
        }
        self.buffer.drain(..start);
        self.position += start as u64;
        out
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use tributary_plugin_sdk::testing::{SourceHarness, config};

    use super::*;

    fn values(records: &[SourceRecord]) -> Vec<String> {
        records
            .iter()
            .map(|r| match &r.value.value {
                Value::String(s) => s.clone(),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn tails_and_resumes_from_the_committed_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.txt");
        std::fs::write(&path, "a\nbb\r\nccc\npartial").unwrap();
        let cfg = config(&[
            ("file", path.to_str().unwrap()),
            ("topic", "t"),
            ("batch.size", "2"),
        ]);
        let mut h = SourceHarness::<FileStreamSource>::start(cfg.clone(), 4).unwrap();
        assert_eq!(h.task_count(), 1);
        let first = h.poll(0).unwrap();
        assert_eq!(values(&first), ["a", "bb"]);
        assert_eq!(first[1].source_offset["position"], Value::Int64(6));
        h.commit(0).unwrap();
        assert_eq!(values(&h.poll(0).unwrap()), ["ccc"]);
        assert!(
            h.poll(0).unwrap().is_empty(),
            "a line without its newline waits"
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b" line\n")
            .unwrap();
        assert_eq!(values(&h.poll(0).unwrap()), ["partial line"]);
        // A restart resumes after the committed "bb": ccc comes again (not committed).
        let partition: OffsetMap = [(
            "filename".to_owned(),
            Value::String(path.to_str().unwrap().into()),
        )]
        .into();
        let committed = h.committed_offset(&partition).unwrap();
        h.stop().unwrap();
        let mut h =
            SourceHarness::<FileStreamSource>::start_with_offsets(cfg, 1, [(partition, committed)])
                .unwrap();
        assert_eq!(
            values(&h.poll_records(0, 2, 5).unwrap()),
            ["ccc", "partial line"]
        );
        h.stop().unwrap();
    }

    #[test]
    fn bad_config_and_truncated_file() {
        assert!(SourceHarness::<FileStreamSource>::start(config(&[("file", "/x")]), 1).is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.txt");
        std::fs::write(&path, "x\n").unwrap();
        let partition: OffsetMap = [(
            "filename".to_owned(),
            Value::String(path.to_str().unwrap().into()),
        )]
        .into();
        let offset: OffsetMap = [("position".to_owned(), Value::Int64(100))].into();
        let err = SourceHarness::<FileStreamSource>::start_with_offsets(
            config(&[("file", path.to_str().unwrap()), ("topic", "t")]),
            1,
            [(partition, offset)],
        )
        .unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}
