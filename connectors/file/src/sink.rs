//! `FileStreamSink`: records' values, one per line, appended to a file.

use std::fs::{File, OpenOptions};
use std::io::Write;

use tributary_plugin_sdk::{
    Config, ConfigDef, ConfigKey, ConnectError, DataRef, Importance, Offsets, RawConfig, Result,
    SinkBatch, SinkConnector, SinkRecord, SinkTask, Value,
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
        self.put_batch(&SinkBatch::of(&records))
    }

    /// Reads each value in place: text and bytes are copied once, into the batch's lines.
    fn put_batch(&mut self, batch: &SinkBatch<'_>) -> Result<()> {
        let Some(out) = self.out.as_mut() else {
            return Err(ConnectError::new("put before start"));
        };
        // The whole batch, whole lines only, in one append: someone tailing the file
        // sees records as they arrive and never half a line. Durability waits for `flush`.
        self.line.clear();
        for r in batch {
            render_ref(&r?.value, &mut self.line);
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

/// A value read in place as text: as [`render`] renders it.
fn render_ref(v: &DataRef<'_>, out: &mut Vec<u8>) {
    match v {
        DataRef::Null => out.extend_from_slice(b"null"),
        DataRef::Str(s, _) => out.extend_from_slice(s.as_bytes()),
        // Borrowed when the bytes are UTF-8 already (no copy but into `out`).
        DataRef::Bytes(b, _) => out.extend_from_slice(String::from_utf8_lossy(b).as_bytes()),
        DataRef::Data(d) => render(&d.value, out),
        DataRef::Owned(d) => render(&d.value, out),
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
    use tributary_plugin_sdk::testing::{SinkHarness, config};

    use super::*;
    use tributary_plugin_sdk::{Data, Schema, StructBuilder};

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

    /// Every form a value takes: through `put` of owned records and through `put_batch`
    /// over the views the worker lends, the file gets the same bytes, those `render` gives
    /// the owned values.
    #[test]
    fn put_and_put_batch_write_the_same_lines() {
        let row_schema = Schema::structure()
            .field("id", Schema::int64())
            .field("tags", Schema::array(Schema::string()))
            .field("name", Schema::string().optional());
        let row = |i: i64| {
            StructBuilder::new(row_schema.clone())
                .unwrap()
                .put("id", i)
                .unwrap()
                .put("tags", Value::Array(vec![Value::String("a".into())]))
                .unwrap()
                .put("name", Value::String(format!("row {i}")))
                .unwrap()
                .build()
                .unwrap()
        };
        let with = |schema: Option<Schema>, value: Value| Data { schema, value };
        let values = vec![
            Data::string("text"),
            Data::string(""),
            Data::schemaless(Value::String("schemaless \u{e9}".into())),
            with(
                Some(Schema::string().optional()),
                Value::String("opt".into()),
            ),
            with(
                Some(Schema::string().doc("named")),
                Value::String("doc".into()),
            ),
            Data::bytes(b"bytes".to_vec()),
            Data::bytes(vec![0xff, b'x', 0xc3]),
            Data::schemaless(Value::Bytes(b"raw".to_vec())),
            with(Some(Schema::bytes().optional()), Value::Bytes(vec![])),
            Data::null(),
            with(Some(Schema::string().optional()), Value::Null),
            Data::schemaless(Value::Int32(-4)),
            Data::schemaless(Value::Float64(1.5)),
            Data::schemaless(Value::Boolean(true)),
            Data::schemaless(Value::Map(vec![(
                Value::String("k".into()),
                Value::Int64(1),
            )])),
            row(1),
            row(2),
        ];
        let records: Vec<SinkRecord> = values
            .into_iter()
            .enumerate()
            .map(|(i, v)| SinkRecord::new("t", 0, i as i64, v))
            .collect();
        let mut expected = Vec::new();
        for r in &records {
            render(&r.value.value, &mut expected);
            expected.push(b'\n');
        }

        let dir = tempfile::tempdir().unwrap();
        let owned = dir.path().join("owned.txt");
        let mut task = FileStreamSinkTask::default();
        task.start(config(&[("file", owned.to_str().unwrap())]))
            .unwrap();
        task.put(records.clone()).unwrap();
        task.stop().unwrap();

        let lent = dir.path().join("lent.txt");
        let mut h =
            SinkHarness::<FileStreamSink>::start(config(&[("file", lent.to_str().unwrap())]), 1)
                .unwrap();
        h.put(0, records).unwrap();
        h.stop().unwrap();

        let owned = std::fs::read(owned).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&owned),
            String::from_utf8_lossy(&expected)
        );
        assert_eq!(owned, expected);
        assert_eq!(std::fs::read(lent).unwrap(), expected);
    }
}
