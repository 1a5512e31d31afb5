//! `FileStreamSink`: records' values, one per line, appended to a file.

use std::fs::{File, OpenOptions};
use std::io::Write;

use tributary_plugin_sdk::{
    Config, ConfigDef, ConfigKey, ConnectError, Importance, Offsets, RawConfig, Result,
    SinkConnector, SinkRecord, SinkTask, Value,
};

const FILE: &str = "file";

fn config_def() -> ConfigDef {
    ConfigDef::new().define(
        ConfigKey::string(FILE)
            .optional()
            .importance(Importance::High)
            .doc("Destination filename. If not specified, the standard output will be used"),
    )
}

/// The connector: one task (one file has one writer).
#[derive(Debug, Default)]
pub struct FileStreamSink {
    originals: RawConfig,
}

impl SinkConnector for FileStreamSink {
    const NAME: &'static str = "org.apache.kafka.connect.file.FileStreamSinkConnector";
    const ALIASES: &'static [&'static str] = &["io.tributary.connect.file.FileStreamSinkConnector"];
    type Task = FileStreamSinkTask;

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

#[derive(Debug)]
enum Output {
    File(File),
    Stdout(std::io::Stdout),
}

/// Appends lines; `flush` makes them durable.
#[derive(Debug, Default)]
pub struct FileStreamSinkTask {
    name: String,
    out: Option<Output>,
    line: Vec<u8>,
}

impl SinkTask for FileStreamSinkTask {
    fn start(&mut self, raw: RawConfig) -> Result<()> {
        let config = config_def().parse(&raw)?;
        self.out = Some(match config.string(FILE).filter(|f| !f.is_empty()) {
            None => {
                self.name = "stdout".into();
                Output::Stdout(std::io::stdout())
            }
            Some(name) => {
                self.name = name.to_owned();
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(name)
                    .map_err(|e| {
                        ConnectError::new(format!("cannot open {name} for appending: {e}"))
                    })?;
                Output::File(file)
            }
        });
        Ok(())
    }

    fn put(&mut self, records: Vec<SinkRecord>) -> Result<()> {
        let Some(out) = self.out.as_mut() else {
            return Err(ConnectError::new("put before start"));
        };
        // The whole batch, whole lines only, in one append: someone tailing the file
        // sees records as they arrive and never half a line. Durability waits for `flush`.
        self.line.clear();
        for r in &records {
            render(&r.value.value, &mut self.line);
            self.line.push(b'\n');
        }
        let w: &mut dyn Write = match out {
            Output::File(f) => f,
            Output::Stdout(s) => s,
        };
        w.write_all(&self.line)
            .and_then(|()| w.flush())
            .map_err(|e| ConnectError::retriable(format!("writing {}: {e}", self.name)))?;
        Ok(())
    }

    fn flush(&mut self, _offsets: &Offsets) -> Result<()> {
        match self.out.as_mut() {
            Some(Output::File(f)) => {
                match f.sync_data() {
                    // Not a regular file (/dev/null, a pipe): nothing to make durable.
                    Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => Ok(()),
                    other => other,
                }
                .map_err(|e| ConnectError::retriable(format!("flushing {}: {e}", self.name)))?;
            }
            Some(Output::Stdout(s)) => s.flush()?,
            None => {}
        }
        Ok(())
    }

    fn stop(&mut self) -> Result<()> {
        self.flush(&Offsets::new())?;
        self.out = None;
        Ok(())
    }
}

/// A value as text, as Kafka's sink writes `value.toString()`: strings as they are,
/// bytes as UTF-8 (lossy), null as "null", other values in a JSON-like form.
fn render(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::String(s) => out.extend_from_slice(s.as_bytes()),
        Value::Bytes(b) => out.extend_from_slice(String::from_utf8_lossy(b).as_bytes()),
        Value::Boolean(b) => out.extend_from_slice(b.to_string().as_bytes()),
        Value::Int8(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::Int16(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::Int32(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::Int64(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::Float32(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::Float64(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::Array(items) | Value::Struct(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                render(item, out);
            }
            out.push(b']');
        }
        Value::Map(entries) => {
            out.push(b'{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                render(k, out);
                out.push(b'=');
                render(v, out);
            }
            out.push(b'}');
        }
    }
}

#[cfg(test)]
mod tests {
    use tributary_plugin_sdk::Data;
    use tributary_plugin_sdk::testing::{SinkHarness, config};

    use super::*;

    #[test]
    fn appends_lines_and_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        std::fs::write(&path, "existing\n").unwrap();
        let mut h = SinkHarness::<FileStreamSink>::start(
            config(&[("file", path.to_str().unwrap()), ("topics", "t")]),
            3,
        )
        .unwrap();
        assert_eq!(h.task_count(), 1);
        let records = vec![
            SinkRecord::new("t", 0, 0, Data::string("one")),
            SinkRecord::new("t", 0, 1, Data::bytes(b"two".to_vec())),
            SinkRecord::new("t", 0, 2, Data::null()),
        ];
        h.put(0, records).unwrap();
        // Written through at once, before any flush: a reader tailing the file sees them.
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "existing\none\ntwo\nnull\n"
        );
        let offsets: Offsets = [(tributary_plugin_sdk::TopicPartition::new("t", 0), 3)].into();
        assert_eq!(h.pre_commit(0, offsets.clone()).unwrap(), offsets);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "existing\none\ntwo\nnull\n"
        );
        h.stop().unwrap();
    }
}
