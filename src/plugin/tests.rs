//! The loader and the boundary against real shared libraries: the no-op plugin
//! (`connectors/noop`) built as a `cdylib` by cargo from inside the test, and a tiny
//! library built the same way that reports another ABI version.
//!
//! Both are built into `<target>/plugin-tests`, a target directory of their own: a nested
//! cargo must not wait on the lock of the build running these tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use tributary_plugin_abi::ABI_VERSION;
use tributary_plugin_abi::data::{Data, Value};
use tributary_plugin_abi::record::{OffsetMap, Offsets, SinkRecord, SourceRecord, TopicPartition};
use tributary_plugin_abi::view::MetadataRef;

use super::*;

const SOURCE: &str = "io.tributary.connect.noop.NoopSourceConnector";
const SINK: &str = "io.tributary.connect.noop.NoopSinkConnector";

fn build_dir() -> PathBuf {
    // The test binary is <target>/<profile>/deps/<name>.
    let exe = std::env::current_exe().expect("the test binary's path");
    let target = exe
        .ancestors()
        .nth(3)
        .expect("the test binary lives in <target>/<profile>/deps");
    target.join("plugin-tests")
}

fn cargo_build(args: &[&str], manifest: &Path, target_dir: &Path) {
    let out = Command::new(env!("CARGO"))
        .args(["build", "--quiet"])
        .args(args)
        .arg("--manifest-path")
        .arg(manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .output()
        .expect("running cargo");
    assert!(
        out.status.success(),
        "cargo build {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The no-op plugin, built once per test run.
fn noop_library() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let target = build_dir().join("target");
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        cargo_build(
            &["-p", "tributary-connector-noop", "--lib"],
            &manifest,
            &target,
        );
        let lib = target.join("debug/libtributary_connector_noop.so");
        assert!(lib.is_file(), "{} was not built", lib.display());
        lib
    })
}

/// A library exporting `tributary_plugin_abi_version` = 999 and an entry point that aborts
/// the process: the loader must check the version and stop before calling anything else.
fn abi_mismatch_library() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let src = build_dir().join("abi-mismatch-fixture");
        std::fs::create_dir_all(&src).unwrap();
        let files = [
            (
                "Cargo.toml",
                "[package]\nname = \"abi-mismatch-fixture\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n\
                 [lib]\ncrate-type = [\"cdylib\"]\npath = \"lib.rs\"\n\n[workspace]\n",
            ),
            (
                "lib.rs",
                "#[unsafe(no_mangle)]\npub extern \"C\" fn tributary_plugin_abi_version() -> u32 {\n    999\n}\n\n\
                 #[unsafe(no_mangle)]\npub extern \"C\" fn tributary_plugin_entry() -> i32 {\n    std::process::abort()\n}\n",
            ),
        ];
        for (name, text) in files {
            let path = src.join(name);
            // Rewrite only on change, so cargo's fingerprint keeps the build.
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text) {
                std::fs::write(&path, text).unwrap();
            }
        }
        let target = build_dir().join("fixture-target");
        cargo_build(&[], &src.join("Cargo.toml"), &target);
        target.join("debug/libabi_mismatch_fixture.so")
    })
}

/// A host for tests that do not look at context calls.
fn noop_host() -> Arc<NoopHost> {
    Arc::new(NoopHost)
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

/// A plugin directory with the given files, and a cache directory beside it.
struct Fixture {
    root: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            root: tempfile::tempdir().unwrap(),
        }
    }

    fn dir(&self, name: &str) -> PathBuf {
        let d = self.root.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn put(&self, dir: &str, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir(dir).join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn loader(&self) -> PluginLoader {
        PluginLoader::new(self.root.path().join("cache"))
    }
}

fn noop_bytes() -> Vec<u8> {
    std::fs::read(noop_library()).unwrap()
}

/// The no-op library with bytes appended: loads the same, hashes differently.
fn noop_variant(tag: &str) -> Vec<u8> {
    let mut b = noop_bytes();
    b.extend_from_slice(tag.as_bytes());
    b
}

fn value_bytes(d: &Data) -> &[u8] {
    match &d.value {
        Value::Bytes(b) => b,
        other => panic!("expected bytes, got {other:?}"),
    }
}

#[test]
fn a_real_plugin_runs_source_and_sink_tasks_through_the_boundary() {
    let fx = Fixture::new();
    let file = fx.put("plugins", "libnoop.so", &noop_bytes());
    let loader = fx.loader();
    let reg = loader.scan(&[fx.dir("plugins")]);
    assert!(reg.issues().is_empty(), "{}", reg.render());

    for name in [SOURCE, "NoopSourceConnector", "NoopSource"] {
        assert_eq!(reg.lookup(name).unwrap().name(), SOURCE, "{name}");
    }
    let source = reg.lookup("NoopSource").unwrap().clone();
    assert_eq!(source.kind(), ConnectorType::Source);
    assert_eq!(source.version(), "0.1.0");
    assert_eq!(source.file(), file);
    assert_eq!(source.aliases(), ["NoopSource", "NoopSourceConnector"]);
    assert!(
        source
            .library()
            .loaded_from()
            .starts_with(loader.cache_dir())
    );
    assert_eq!(source.library().sdk_version(), "0.1.0");
    let key = source
        .info()
        .config_def
        .iter()
        .find(|k| k.name == "noop.records.per.poll")
        .unwrap();
    assert_eq!(key.default.as_deref(), Some("1000"));
    assert_eq!(key.valid_values.as_deref(), Some("[1,...,1000000]"));

    // The connector: validate, start, split.
    let mut connector = source.new_connector().unwrap();
    let checked = connector
        .validate(&map(&[("noop.records.per.poll", "0")]))
        .unwrap();
    let bad: Vec<_> = checked.iter().filter(|v| !v.errors.is_empty()).collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].name, "noop.records.per.poll");
    let err = connector
        .start(&map(&[("noop.record.bytes", "many")]), noop_host())
        .unwrap_err();
    assert!(
        matches!(&err, PluginError::Failed { call: "start", message, .. } if message.contains("noop.record.bytes")),
        "{err}"
    );
    connector
        .start(
            &map(&[("noop.topic", "t"), ("noop.records.per.poll", "4")]),
            noop_host(),
        )
        .unwrap();
    let task_configs = connector.task_configs(2).unwrap();
    assert_eq!(task_configs.len(), 2);
    assert_eq!(task_configs[1]["noop.task.id"], "1");

    // A source task: batches come back through the boundary.
    let mut task = source.new_source_task().unwrap();
    task.start(&task_configs[1], noop_host()).unwrap();
    let first = task.poll().unwrap();
    let batch = task.poll_batch().unwrap();
    // Source positions cross per batch: the last offset of each source partition.
    assert_eq!(
        batch.sources().unwrap(),
        [(task_partition(1), seq(8))],
        "task 1's partition, after its 8th record"
    );
    let second = batch.to_owned().unwrap();
    assert_eq!((first.len(), second.len()), (4, 4));
    for (seq, r) in first.iter().chain(&second).enumerate() {
        assert_eq!(r.topic, "t");
        let v = value_bytes(&r.value);
        assert_eq!(v.len(), 100);
        assert_eq!(v[..8], (seq as u64).to_le_bytes());
    }
    task.commit().unwrap();
    let meta = MetadataRef {
        topic: "t",
        partition: 0,
        offset: 0,
        timestamp: None,
    };
    let err = task.commit_records(&[Some(meta)]).unwrap_err();
    assert!(
        err.to_string()
            .contains("described 1 records but the last poll lent 4"),
        "{err}"
    );
    task.commit_records(&[Some(meta), None, None, None])
        .unwrap();
    task.stop().unwrap();
    connector.stop().unwrap();

    // A sink task: the same records delivered back.
    let sink = reg.lookup("NoopSink").unwrap().clone();
    assert_eq!(sink.name(), SINK);
    assert_eq!(sink.kind(), ConnectorType::Sink);
    let mut sink_task = sink.new_sink_task().unwrap();
    sink_task.start(&map(&[]), noop_host()).unwrap();
    let tp = TopicPartition::new("t", 0);
    sink_task.open(std::slice::from_ref(&tp)).unwrap();
    let records: Vec<SinkRecord> = first
        .iter()
        .chain(&second)
        .enumerate()
        .map(|(i, r)| SinkRecord::new("t", 0, i as i64, r.value.clone()))
        .collect();
    sink_task.put(&records[..5]).unwrap();
    sink_task.put(&records[5..]).unwrap();
    let offered: Offsets = [(tp.clone(), 100), (TopicPartition::new("t", 9), 1)].into();
    assert_eq!(
        sink_task.pre_commit(&offered).unwrap(),
        Offsets::from([(tp.clone(), 8)]),
        "the sink counted 8 records"
    );
    sink_task.close(&[tp]).unwrap();
    sink_task.stop().unwrap();

    // Types and names are checked.
    let err = source.new_sink_task().unwrap_err();
    assert!(
        matches!(
            err,
            PluginError::WrongType {
                actual: ConnectorType::Source,
                expected: ConnectorType::Sink,
                ..
            }
        ),
        "{err}"
    );
    let err = reg.lookup("FileStreamSource").unwrap_err();
    assert!(matches!(err, PluginError::UnknownConnector { .. }), "{err}");

    let table = reg.render();
    assert!(table.starts_with("CONNECTOR"), "{table}");
    assert!(
        table.contains(&format!("{SOURCE}  source  0.1.0")),
        "{table}"
    );
    assert!(table.contains("NoopSink, NoopSinkConnector"), "{table}");
    assert!(!table.contains("problems"), "{table}");
}

#[test]
fn a_panic_fails_only_its_task() {
    let fx = Fixture::new();
    fx.put("plugins", "libnoop.so", &noop_bytes());
    let reg = fx.loader().scan(&[fx.dir("plugins")]);
    let source = reg.lookup(SOURCE).unwrap().clone();

    let mut bad = source.new_source_task().unwrap();
    bad.start(&map(&[("noop.panic.on", "poll")]), noop_host())
        .unwrap();
    let mut good = source.new_source_task().unwrap();
    good.start(&map(&[("noop.records.per.poll", "2")]), noop_host())
        .unwrap();

    let err = bad.poll().unwrap_err();
    assert!(err.is_panic(), "{err}");
    let PluginError::Panicked {
        file,
        connector,
        call,
        message,
    } = &err
    else {
        panic!("expected a panic, got {err}");
    };
    assert_eq!(
        (file.as_path(), connector.as_str(), *call),
        (
            fx.dir("plugins").join("libnoop.so").as_path(),
            SOURCE,
            "poll"
        )
    );
    // The first line is the panic; a backtrace follows if RUST_BACKTRACE asks for one.
    let first_line = message.lines().next().unwrap();
    assert!(first_line.starts_with("panicked at "), "{message}");
    assert!(first_line.contains("source.rs"), "{message}");
    assert!(
        first_line.ends_with("noop: panic requested in poll (noop.panic.on=poll)"),
        "{message}"
    );
    let again = bad.poll().unwrap_err();
    assert!(
        matches!(again, PluginError::Poisoned { call: "poll", .. }),
        "{again}"
    );

    // The other task, in the same library, keeps working, on another thread too.
    assert_eq!(good.poll().unwrap().len(), 2);
    let good = std::thread::spawn(move || {
        assert_eq!(good.poll().unwrap().len(), 2);
        good
    })
    .join()
    .unwrap();
    drop(bad);
    drop(good);

    // The same in a sink's put, and in a connector's start.
    let sink = reg.lookup(SINK).unwrap().clone();
    let mut bad_sink = sink.new_sink_task().unwrap();
    bad_sink
        .start(&map(&[("noop.panic.on", "put")]), noop_host())
        .unwrap();
    let mut good_sink = sink.new_sink_task().unwrap();
    good_sink.start(&map(&[]), noop_host()).unwrap();
    let batch = vec![SinkRecord::new("t", 0, 0, Data::bytes(vec![1; 100]))];
    let err = bad_sink.put(&batch).unwrap_err();
    assert!(
        matches!(&err, PluginError::Panicked { call: "put", message, .. } if message.contains("noop: panic requested in put")),
        "{err}"
    );
    good_sink.put(&batch).unwrap();
    let mut connector = source.new_connector().unwrap();
    let err = connector
        .start(&map(&[("noop.panic.on", "connector.start")]), noop_host())
        .unwrap_err();
    assert!(err.is_panic(), "{err}");

    // A retriable failure is not a panic: the task may be called again.
    let mut flaky = source.new_source_task().unwrap();
    flaky
        .start(&map(&[("noop.fail.on", "poll")]), noop_host())
        .unwrap();
    for _ in 0..2 {
        let err = flaky.poll().unwrap_err();
        assert!(err.is_retriable() && !err.is_panic(), "{err}");
    }
}

#[test]
fn an_abi_mismatch_is_refused_naming_both_versions() {
    let fx = Fixture::new();
    let old = fx.put(
        "plugins",
        "libold.so",
        &std::fs::read(abi_mismatch_library()).unwrap(),
    );
    fx.put("plugins", "libnoop.so", &noop_bytes());
    // The fixture's entry point aborts the process: reaching the assertions means the
    // loader never called it.
    let reg = fx.loader().scan(&[fx.dir("plugins")]);
    assert_eq!(reg.issues().len(), 1, "{}", reg.render());
    let ScanIssue::Load(err) = &reg.issues()[0] else {
        panic!("{}", reg.render())
    };
    assert!(
        matches!(err, PluginError::AbiMismatch { file, found: 999, expected } if *file == old && *expected == ABI_VERSION),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("ABI version 999"), "{text}");
    assert!(
        text.contains(&format!("ABI version {ABI_VERSION}")),
        "{text}"
    );
    assert!(text.contains("libold.so"), "{text}");
    assert!(
        reg.lookup("NoopSource").is_ok(),
        "the good plugin still loads"
    );
}

#[test]
fn corrupt_and_foreign_files_are_skipped_with_a_warning() {
    let fx = Fixture::new();
    // Deterministic garbage.
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let garbage: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let corrupt = fx.put("plugins", "x.so", &garbage);
    let empty = fx.put("plugins", "empty.so", b"");
    fx.put("plugins", "README.txt", b"not a library");
    fx.put("plugins", ".partial.so", &garbage);
    // A plugin in its own folder, one level down.
    fx.put(
        "plugins",
        "noop/libtributary_connector_noop.so",
        &noop_bytes(),
    );
    let missing = fx.root.path().join("missing");

    let loader = fx.loader();
    let reg = loader.scan(&[fx.dir("plugins"), missing.clone()]);
    let mut not_loadable: Vec<&Path> = Vec::new();
    let mut unreadable: Vec<&Path> = Vec::new();
    for issue in reg.issues() {
        match issue {
            ScanIssue::Load(PluginError::NotLoadable { file, .. }) => not_loadable.push(file),
            ScanIssue::Load(PluginError::ReadDir { dir, .. }) => unreadable.push(dir),
            other => panic!("unexpected issue: {other}"),
        }
    }
    assert_eq!(not_loadable, [empty.as_path(), corrupt.as_path()]);
    // Garbage never reaches the cache.
    let cached: Vec<_> = std::fs::read_dir(loader.cache_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(
        cached[0].starts_with("libtributary_connector_noop-"),
        "{cached:?}"
    );
    assert_eq!(unreadable, [missing.as_path()]);
    assert_eq!(reg.connectors().count(), 2);
    assert!(reg.lookup("NoopSink").is_ok());
    let table = reg.render();
    assert!(
        table.contains("problems:") && table.contains("x.so"),
        "{table}"
    );
}

#[test]
fn two_plugins_claiming_one_name_resolve_deterministically() {
    let fx = Fixture::new();
    let a = fx.put("a", "libnoop.so", &noop_bytes());
    let b = fx.put("b", "libnoop-copy.so", &noop_variant("copy"));
    let loader = fx.loader();

    let check = |order: &[PathBuf], kept: &Path, ignored: &Path| {
        let reg = loader.scan(order);
        for name in [SOURCE, SINK] {
            assert_eq!(reg.lookup(name).unwrap().file(), kept, "{name}");
        }
        let (transform_dups, dups): (Vec<_>, Vec<_>) = reg
            .issues()
            .iter()
            .map(|i| match i {
                ScanIssue::DuplicateConnector {
                    name,
                    kept,
                    ignored,
                    ..
                } => (name.clone(), kept.clone(), ignored.clone()),
                other => panic!("unexpected issue: {other}"),
            })
            .partition(|(name, _, _)| name == TRANSFORM || name == PREDICATE);
        // The library's transform and predicate are duplicated too, settled the same way.
        assert_eq!(
            transform_dups,
            [
                (
                    TRANSFORM.to_string(),
                    kept.to_path_buf(),
                    ignored.to_path_buf()
                ),
                (
                    PREDICATE.to_string(),
                    kept.to_path_buf(),
                    ignored.to_path_buf()
                ),
            ]
        );
        assert_eq!(
            dups,
            [
                (
                    SOURCE.to_string(),
                    kept.to_path_buf(),
                    ignored.to_path_buf()
                ),
                (SINK.to_string(), kept.to_path_buf(), ignored.to_path_buf()),
            ]
        );
        let text = reg.issues()[0].to_string();
        assert!(
            text.contains(&kept.display().to_string())
                && text.contains(&ignored.display().to_string()),
            "{text}"
        );
        reg
    };
    check(&[fx.dir("a"), fx.dir("b")], &a, &b);
    let reg = check(&[fx.dir("b"), fx.dir("a")], &b, &a);

    // The copy is a library of its own, and it works.
    let source = reg.lookup("NoopSource").unwrap().clone();
    assert_ne!(source.library().loaded_from(), a);
    let mut task = source.new_source_task().unwrap();
    task.start(&map(&[("noop.records.per.poll", "3")]), noop_host())
        .unwrap();
    assert_eq!(task.poll().unwrap().len(), 3);
}

#[test]
fn a_replaced_library_loads_beside_the_old_one() {
    let fx = Fixture::new();
    let file = fx.put("plugins", "libnoop.so", &noop_bytes());
    let loader = fx.loader();
    let first = loader.scan(&[fx.dir("plugins")]);
    let old = first.lookup(SOURCE).unwrap().clone();
    let mut old_task = old.new_source_task().unwrap();
    old_task
        .start(&map(&[("noop.records.per.poll", "1")]), noop_host())
        .unwrap();

    // Scanning unchanged files reuses what is loaded.
    let again = loader.scan(&[fx.dir("plugins")]);
    assert!(Arc::ptr_eq(
        again.lookup(SOURCE).unwrap().library(),
        old.library()
    ));

    // Replace the file: a new library, from a new cached copy.
    std::fs::write(&file, noop_variant("v2")).unwrap();
    let second = loader.scan(&[fx.dir("plugins")]);
    let new = second.lookup(SOURCE).unwrap().clone();
    assert!(!Arc::ptr_eq(new.library(), old.library()));
    assert_ne!(new.library().loaded_from(), old.library().loaded_from());
    assert_eq!(new.file(), old.file());

    // Running tasks keep theirs; new ones get the new library.
    let mut new_task = new.new_source_task().unwrap();
    new_task
        .start(&map(&[("noop.records.per.poll", "2")]), noop_host())
        .unwrap();
    assert_eq!(old_task.poll().unwrap().len(), 1);
    assert_eq!(new_task.poll().unwrap().len(), 2);
}

/// The no-op source's partition for task `task` and an offset to resume at `next`.
fn task_partition(task: i32) -> OffsetMap {
    [("task".to_string(), Value::Int32(task))].into()
}

fn seq(next: i64) -> OffsetMap {
    [("seq".to_string(), Value::Int64(next))].into()
}

fn first_seq(records: &[SourceRecord]) -> u64 {
    u64::from_le_bytes(value_bytes(&records[0].value)[..8].try_into().unwrap())
}

/// The no-op plugin loaded from a fresh plugin directory.
fn noop_registry(fx: &Fixture) -> PluginRegistry {
    fx.put("plugins", "libnoop.so", &noop_bytes());
    let reg = fx.loader().scan(&[fx.dir("plugins")]);
    assert!(reg.issues().is_empty(), "{}", reg.render());
    reg
}

#[test]
fn a_source_task_in_a_loaded_plugin_reads_its_offsets_from_the_host() {
    let fx = Fixture::new();
    let reg = noop_registry(&fx);
    let source = reg.lookup(SOURCE).unwrap().clone();
    let host = Arc::new(MemoryHost::new().with_source_offset(task_partition(1), seq(40)));

    let mut task = source.new_source_task().unwrap();
    task.start(
        &map(&[("noop.task.id", "1"), ("noop.records.per.poll", "2")]),
        host.clone(),
    )
    .unwrap();
    assert_eq!(host.snapshot().offset_lookups, 1, "read once, in start");
    let batch = task.poll_batch().unwrap();
    assert_eq!(batch.sources().unwrap(), [(task_partition(1), seq(42))]);
    let records = batch.to_owned().unwrap();
    assert_eq!(first_seq(&records), 40, "resumed at the committed offset");

    // Nothing committed for its partition: from the beginning.
    let mut fresh = source.new_source_task().unwrap();
    fresh
        .start(&map(&[("noop.task.id", "2")]), host.clone())
        .unwrap();
    assert_eq!(first_seq(&fresh.poll().unwrap()), 0);

    // An offset the task cannot use is its error, naming what to do.
    host.update(|s| {
        s.set_source_offset(
            task_partition(3),
            [("seq".to_string(), Value::from("forty"))].into(),
        )
    });
    let mut confused = source.new_source_task().unwrap();
    let err = confused
        .start(&map(&[("noop.task.id", "3")]), host.clone())
        .unwrap_err();
    assert!(
        matches!(&err, PluginError::Failed { call: "start", message, .. } if message.contains("delete the connector's offsets")),
        "{err}"
    );

    // Freeing the tasks lets go of the host.
    drop((task, fresh, confused));
    assert_eq!(Arc::strong_count(&host), 1);
}

#[test]
fn a_connector_in_a_loaded_plugin_requests_reconfiguration_from_its_own_thread() {
    let fx = Fixture::new();
    let reg = noop_registry(&fx);
    let source = reg.lookup(SOURCE).unwrap().clone();
    let host = Arc::new(MemoryHost::new());

    let mut connector = source.new_connector().unwrap();
    connector
        .start(
            &map(&[
                ("noop.request.reconfiguration", "true"),
                ("noop.raise.error", "the source vanished"),
            ]),
            host.clone(),
        )
        .unwrap();
    // Stop waits for the connector's thread.
    connector.stop().unwrap();
    let state = host.snapshot();
    assert_eq!(state.reconfiguration_requests, 1);
    assert_eq!(state.raised_errors, ["the source vanished"]);

    // Started again (after a pause) with another host: the connector's context, handed over
    // once, now reaches the new one.
    let second = Arc::new(MemoryHost::new());
    connector
        .start(
            &map(&[("noop.request.reconfiguration", "true")]),
            second.clone(),
        )
        .unwrap();
    connector.stop().unwrap();
    assert_eq!(second.snapshot().reconfiguration_requests, 1);
    assert_eq!(host.snapshot().reconfiguration_requests, 1);
    assert_eq!(Arc::strong_count(&host), 1, "the first host was let go");
    drop(connector);
    assert_eq!(Arc::strong_count(&second), 1, "freed with the instance");
}

#[test]
fn a_sink_task_in_a_loaded_plugin_pauses_rewinds_and_requests_commits() {
    let fx = Fixture::new();
    let reg = noop_registry(&fx);
    let sink = reg.lookup(SINK).unwrap().clone();
    let (t0, t1) = (TopicPartition::new("t", 0), TopicPartition::new("t", 1));
    let host = Arc::new(MemoryHost::new().with_assignment([t0.clone(), t1.clone()]));

    let mut task = sink.new_sink_task().unwrap();
    task.start(
        &map(&[
            ("noop.pause.after.records", "3"),
            ("noop.start.offset", "5"),
        ]),
        host.clone(),
    )
    .unwrap();
    task.open(&[t0.clone(), t1.clone()]).unwrap();
    assert_eq!(
        host.snapshot().requested_offsets,
        Offsets::from([(t0.clone(), 5), (t1.clone(), 5)])
    );

    let batch: Vec<SinkRecord> = (5..8)
        .map(|o| SinkRecord::new("t", 0, o, Data::bytes(vec![0; 10])))
        .collect();
    task.put(&batch[..2]).unwrap();
    assert!(host.snapshot().paused.is_empty());
    task.put(&batch[2..]).unwrap();
    let state = host.snapshot();
    assert_eq!(state.paused, [t0.clone(), t1.clone()].into());
    assert_eq!(state.commit_requests, 1);

    assert_eq!(
        task.pre_commit(&Offsets::from([(t0.clone(), 8)])).unwrap(),
        Offsets::from([(t0.clone(), 8)])
    );
    assert!(host.snapshot().paused.is_empty(), "resumed at the commit");

    // A refusal by the host (resuming a partition no longer assigned) is the task's error.
    task.put(&batch).unwrap();
    host.update(|s| {
        s.assignment.remove(&t1);
    });
    let err = task.pre_commit(&Offsets::new()).unwrap_err();
    assert!(
        matches!(&err, PluginError::Failed { call: "pre_commit", retriable: false, message, .. }
            if message.contains("cannot resume t-1: it is not assigned to this task")),
        "{err}"
    );
}

/// A host whose every answer is an error, or a panic.
struct BrokenHost {
    panic: bool,
}

impl BrokenHost {
    fn fail<T>(&self, what: &str) -> Result<T, HostError> {
        if self.panic {
            panic!("the worker's {what} exploded");
        }
        Err(HostError::retriable(format!(
            "{what} is not ready; try again"
        )))
    }
}

impl ConnectorHost for BrokenHost {
    fn request_task_reconfiguration(&self) -> Result<(), HostError> {
        self.fail("herder")
    }
    fn raise_error(&self, _message: &str) -> Result<(), HostError> {
        self.fail("status store")
    }
}

impl SourceTaskHost for BrokenHost {
    fn offsets(&self, _partitions: &[OffsetMap]) -> Result<Vec<Option<OffsetMap>>, HostError> {
        self.fail("offset store")
    }
}

impl SinkTaskHost for BrokenHost {
    fn pause(&self, _partitions: &[TopicPartition]) -> Result<(), HostError> {
        self.fail("consumer")
    }
    fn resume(&self, _partitions: &[TopicPartition]) -> Result<(), HostError> {
        self.fail("consumer")
    }
    fn offset(&self, _offsets: &Offsets) -> Result<(), HostError> {
        self.fail("consumer")
    }
    fn request_commit(&self) -> Result<(), HostError> {
        self.fail("committer")
    }
    fn assignment(&self) -> Result<Vec<TopicPartition>, HostError> {
        self.fail("consumer")
    }
    fn report(&self, _: &TopicPartition, _: i64, _: &str) -> Result<(), HostError> {
        self.fail("error reporter")
    }
}

#[test]
fn a_failing_or_panicking_host_callback_is_an_error_not_a_crash() {
    let fx = Fixture::new();
    let reg = noop_registry(&fx);
    let source = reg.lookup(SOURCE).unwrap().clone();
    let sink = reg.lookup(SINK).unwrap().clone();

    // A retriable refusal reaches the worker as a retriable failure of the call...
    let mut task = source.new_source_task().unwrap();
    let err = task
        .start(&map(&[]), Arc::new(BrokenHost { panic: false }))
        .unwrap_err();
    assert!(err.is_retriable() && !err.is_panic(), "{err}");
    assert!(
        err.to_string()
            .contains("could not read the committed source offsets (it may succeed later): offset store is not ready; try again"),
        "{err}"
    );
    // ...and the call may be made again, with a host that works now.
    task.start(&map(&[]), Arc::new(MemoryHost::new())).unwrap();
    assert_eq!(first_seq(&task.poll().unwrap()), 0);

    // A panic in the host is caught on the host's side: the plugin sees an error, returns
    // it, and stays usable (not poisoned).
    let mut task = source.new_source_task().unwrap();
    let err = task
        .start(&map(&[]), Arc::new(BrokenHost { panic: true }))
        .unwrap_err();
    assert!(!err.is_panic() && !err.is_retriable(), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("the worker panicked trying to read the committed source offsets: the worker's offset store exploded"),
        "{text}"
    );
    task.start(&map(&[]), noop_host()).unwrap();

    // The same from a connector's own thread: reported when the connector stops.
    let mut connector = source.new_connector().unwrap();
    connector
        .start(
            &map(&[("noop.request.reconfiguration", "true")]),
            Arc::new(BrokenHost { panic: true }),
        )
        .unwrap();
    let err = connector.stop().unwrap_err();
    assert!(
        matches!(&err, PluginError::Failed { call: "stop", message, .. } if message.contains("the worker's herder exploded")),
        "{err}"
    );

    // And in a sink task's put.
    let mut sink_task = sink.new_sink_task().unwrap();
    sink_task
        .start(
            &map(&[("noop.pause.after.records", "1")]),
            Arc::new(BrokenHost { panic: true }),
        )
        .unwrap();
    let batch = vec![SinkRecord::new("t", 0, 0, Data::bytes(vec![1; 10]))];
    let err = sink_task.put(&batch).unwrap_err();
    assert!(
        matches!(&err, PluginError::Failed { call: "put", message, .. } if message.contains("the worker's consumer exploded")),
        "{err}"
    );
    sink_task.stop().unwrap();
}

// ---- transformations and predicates (ABI 4) -------------------------------------------

const TRANSFORM: &str = "io.tributary.connect.noop.NoopTransform";
const PREDICATE: &str = "io.tributary.connect.noop.ValueContains";

fn text_record(topic: &str, v: &str) -> SourceRecord {
    SourceRecord::new(topic, Data::string(v)).with_source(
        OffsetMap::from([("f".to_owned(), Value::from("x"))]),
        OffsetMap::from([("pos".to_owned(), Value::Int64(v.len() as i64))]),
    )
}

fn text_of(d: &Data) -> &str {
    match &d.value {
        Value::String(s) => s,
        other => panic!("expected a string, got {other:?}"),
    }
}

#[test]
fn a_plugin_exports_transforms_and_predicates_listed_by_name_and_alias() {
    let fx = Fixture::new();
    fx.put("plugins", "libnoop.so", &noop_bytes());
    let reg = fx.loader().scan(&[fx.dir("plugins")]);
    assert!(reg.issues().is_empty(), "{}", reg.render());
    let t = reg.lookup_transform("NoopTransform").unwrap().unwrap();
    assert_eq!(t.name(), TRANSFORM);
    assert_eq!(t.kind(), TransformType::Transformation);
    assert_eq!(t.version(), "0.1.0");
    assert_eq!(t.aliases(), ["NoopTransform"]);
    assert!(t.info().config_def.iter().any(|k| k.name == "noop.suffix"));
    let p = reg.lookup_transform(PREDICATE).unwrap().unwrap();
    assert_eq!(p.kind(), TransformType::Predicate);
    assert!(reg.lookup_transform("Nope").unwrap().is_none());
    // Connectors are not transforms, and transforms are not connectors.
    assert!(reg.lookup_transform("NoopSource").unwrap().is_none());
    assert!(reg.lookup("NoopTransform").is_err());
    let table = reg.render();
    assert!(table.contains("TRANSFORM"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(PREDICATE) && l.contains("predicate")),
        "{table}"
    );
}

#[test]
fn a_plugin_transform_takes_a_batch_and_answers_the_kept_records() {
    let fx = Fixture::new();
    fx.put("plugins", "libnoop.so", &noop_bytes());
    let reg = fx.loader().scan(&[fx.dir("plugins")]);
    let t = reg.lookup_transform(TRANSFORM).unwrap().unwrap().clone();
    let mut i = t.new_instance().unwrap();
    let values = i
        .configure(&map(&[
            ("noop.suffix", "!"),
            ("noop.topic.suffix", "-t"),
            ("noop.drop.on", "b"),
        ]))
        .unwrap();
    assert!(values.iter().all(|v| v.errors.is_empty()), "{values:?}");
    let input = vec![
        text_record("in", "a"),
        text_record("in", "b"),
        text_record("in", "cc"),
    ];
    let out = i.apply_source(&input).unwrap();
    let got: Vec<(usize, &str, &str)> = out
        .iter()
        .map(|(o, r)| (*o, r.topic.as_str(), text_of(&r.value)))
        .collect();
    assert_eq!(got, [(0, "in-t", "a!"), (2, "in-t", "cc!")]);
    // What never crosses (the source position) is carried over from the input.
    assert_eq!(out[1].1.source_offset, input[2].source_offset);
    assert_eq!(out[1].1.partition, None);

    let mut sink = SinkRecord::new("s", 3, 42, Data::string("z"));
    sink.timestamp = Some(1000);
    sink.timestamp_type = tributary_plugin_abi::record::TimestampType::CreateTime;
    let out = i.apply_sink(std::slice::from_ref(&sink)).unwrap();
    assert_eq!(out.len(), 1);
    let r = &out[0].1;
    assert_eq!(
        (r.topic.as_str(), r.partition, r.offset, r.timestamp),
        ("s-t", 3, 42, Some(1000))
    );
    assert_eq!(text_of(&r.value), "z!");
    i.close().unwrap();
}

#[test]
fn a_plugin_transform_refuses_a_bad_config_and_survives_failures_but_not_panics() {
    let fx = Fixture::new();
    fx.put("plugins", "libnoop.so", &noop_bytes());
    let reg = fx.loader().scan(&[fx.dir("plugins")]);
    let p = reg.lookup_transform(PREDICATE).unwrap().unwrap().clone();
    let mut pi = p.new_instance().unwrap();
    let values = pi.configure(&map(&[])).unwrap();
    let bad: Vec<_> = values.iter().filter(|v| !v.errors.is_empty()).collect();
    assert_eq!(bad.len(), 1, "{values:?}");
    assert_eq!(bad[0].name, "noop.pattern");
    pi.configure(&map(&[("noop.pattern", "ell")])).unwrap();
    let answers = pi
        .test_source(&[text_record("t", "hello"), text_record("t", "bye")])
        .unwrap();
    assert_eq!(answers, [true, false]);
    // A predicate cannot transform.
    let e = pi.apply_source(&[text_record("t", "x")]).unwrap_err();
    assert!(e.to_string().contains("is a predicate"), "{e}");

    let t = reg.lookup_transform(TRANSFORM).unwrap().unwrap().clone();
    let mut ti = t.new_instance().unwrap();
    ti.configure(&map(&[("noop.fail.on", "f"), ("noop.panic.on", "p")]))
        .unwrap();
    let e = ti.apply_source(&[text_record("t", "f")]).unwrap_err();
    assert!(!e.is_panic(), "{e}");
    assert!(e.to_string().contains("asked to fail"), "{e}");
    assert_eq!(ti.apply_source(&[text_record("t", "ok")]).unwrap().len(), 1);
    let e = ti.apply_source(&[text_record("t", "p")]).unwrap_err();
    assert!(e.is_panic(), "{e}");
    let text = e.to_string();
    assert!(
        text.contains(TRANSFORM) && text.contains("asked to panic"),
        "{text}"
    );
    // Poisoned: not called again.
    let e = ti.apply_source(&[text_record("t", "ok")]).unwrap_err();
    assert!(e.to_string().contains("restart the task"), "{e}");
}

#[test]
fn a_chain_applies_plugin_transforms_with_built_ins_and_plugin_predicates() {
    use crate::worker::transform;
    let fx = Fixture::new();
    fx.put("plugins", "libnoop.so", &noop_bytes());
    // Kept alive for the test: the chain resolves plugin types against live registries.
    let _shared = SharedRegistry::new(fx.loader().scan(&[fx.dir("plugins")]));
    let props = map(&[
        ("transforms", "suffix,route,boom"),
        ("transforms.suffix.type", "NoopTransform"),
        ("transforms.suffix.noop.suffix", "!"),
        ("transforms.suffix.noop.drop.on", "drop"),
        ("transforms.suffix.predicate", "hello"),
        ("transforms.route.type", "RegexRouter"),
        ("transforms.route.regex", "(.*)"),
        ("transforms.route.replacement", "$1-routed"),
        ("transforms.boom.type", TRANSFORM),
        ("transforms.boom.noop.panic.on", "boom"),
        ("predicates", "hello"),
        ("predicates.hello.type", "ValueContains"),
        ("predicates.hello.noop.pattern", "o"),
    ]);
    let chain = transform::parse(&props).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(chain.len(), 3);
    let out = chain.apply_source_batch(vec![
        text_record("t", "hello"),
        text_record("t", "abc"),
        text_record("t", "boom"),
        text_record("t", "drop"),
        text_record("t", "yo"),
    ]);
    assert_eq!(out.len(), 5);
    let kept = |i: usize| match &out[i] {
        Ok(Some(r)) => (r.topic.clone(), text_of(&r.value).to_owned()),
        other => panic!("record {i}: {other:?}"),
    };
    // The predicate picks records containing "o"; the suffix applies only to them.
    assert_eq!(kept(0), ("t-routed".into(), "hello!".into()));
    assert_eq!(kept(1), ("t-routed".into(), "abc".into()));
    assert_eq!(kept(4), ("t-routed".into(), "yo!".into()));
    // Stages see what the earlier ones made: "boom" got its suffix before the third stage,
    // which panics only on a bare "boom". "drop" was selected by the predicate and dropped.
    assert_eq!(kept(2), ("t-routed".into(), "boom!".into()));
    assert!(matches!(out[3], Ok(None)), "{:?}", out[3]);
    // The source position survives the chain.
    let Ok(Some(r)) = &out[1] else { unreachable!() };
    assert_eq!(r.source_offset, text_record("t", "abc").source_offset);

    // A panic fails only the record that caused it; the rest of the batch goes on, and
    // the stage works again afterwards (a fresh instance).
    let panicky = transform::parse(&map(&[
        ("transforms", "boom"),
        ("transforms.boom.type", "NoopTransform"),
        ("transforms.boom.noop.panic.on", "boom"),
    ]))
    .unwrap();
    let out = panicky.apply_sink_batch(vec![
        SinkRecord::new("s", 0, 0, Data::string("a")),
        SinkRecord::new("s", 0, 1, Data::string("boom")),
        SinkRecord::new("s", 0, 2, Data::string("c")),
    ]);
    assert!(matches!(&out[0], Ok(Some(_))), "{:?}", out[0]);
    let e = out[1].as_ref().unwrap_err();
    assert_eq!((e.alias.as_str(), e.class), ("boom", TRANSFORM));
    assert!(e.message.contains("asked to panic"), "{e}");
    assert!(matches!(&out[2], Ok(Some(_))), "{:?}", out[2]);
    let mut r = SinkRecord::new("s", 0, 3, Data::string("later"));
    assert!(panicky.apply_sink(&mut r).unwrap());
    assert_eq!(text_of(&r.value), "later");
}

#[test]
fn a_chain_names_the_alias_and_key_of_a_bad_plugin_transform_config() {
    use crate::worker::transform;
    let fx = Fixture::new();
    fx.put("plugins", "libnoop.so", &noop_bytes());
    let _shared = SharedRegistry::new(fx.loader().scan(&[fx.dir("plugins")]));
    let errors = transform::parse(&map(&[
        ("predicates", "p"),
        ("predicates.p.type", "ValueContains"),
        ("transforms", "t"),
        ("transforms.t.type", "ValueContains"),
    ]))
    .unwrap_err();
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    assert!(keys.contains(&"predicates.p.noop.pattern"), "{errors:?}");
    let e = errors
        .iter()
        .find(|e| e.key == "transforms.t.type")
        .unwrap_or_else(|| panic!("{errors:?}"));
    assert!(e.message.contains("is a predicate"), "{e}");
    // The validate answer shows the plugin's keys under the alias's group.
    let v = transform::validate(&map(&[
        ("transforms", "t"),
        ("transforms.t.type", "NoopTransform"),
    ]));
    let (def, value) = v
        .iter()
        .find(|(_, v)| v.name == "transforms.t.noop.suffix")
        .unwrap_or_else(|| panic!("{v:?}"));
    assert_eq!(
        def.as_ref().unwrap().group.as_deref(),
        Some("Transforms: t")
    );
    assert!(value.errors.is_empty());
    // Listed for the REST catalog, with the plugin's version.
    let listed = transform::lookup("NoopTransform").unwrap();
    assert_eq!(listed.class, TRANSFORM);
    assert_eq!(listed.version.as_deref(), Some("0.1.0"));
}

#[test]
fn transforms_of_one_library_take_a_batch_in_one_crossing() {
    use crate::plugin::transform::CROSSINGS;
    use crate::worker::transform;
    let fx = Fixture::new();
    fx.put("plugins", "libnoop.so", &noop_bytes());
    let shared = SharedRegistry::new(fx.loader().scan(&[fx.dir("plugins")]));
    let reg = shared.snapshot();
    let t = reg.lookup_transform(TRANSFORM).unwrap().unwrap().clone();

    // The host's chain call: each instance gets what the one before answered.
    let mut a = t.new_instance().unwrap();
    a.configure(&map(&[("noop.suffix", "!"), ("noop.drop.on", "b")]))
        .unwrap();
    let mut b = t.new_instance().unwrap();
    b.configure(&map(&[("noop.suffix", "?"), ("noop.panic.on", "c!")]))
        .unwrap();
    let input = [
        SinkRecord::new("s", 0, 0, Data::string("a")),
        SinkRecord::new("s", 0, 1, Data::string("b")),
        SinkRecord::new("s", 0, 2, Data::string("d")),
    ];
    let out = TransformInstance::apply_chain_sink(&mut [&mut a, &mut b], &input).unwrap();
    let got: Vec<(usize, &str, i64)> = out
        .iter()
        .map(|(o, r)| (*o, text_of(&r.value), r.offset))
        .collect();
    assert_eq!(got, [(0, "a!?", 0), (2, "d!?", 2)]);
    // A panic in the second: its position, and only it is poisoned.
    let (at, e) = TransformInstance::apply_chain_sink(
        &mut [&mut a, &mut b],
        &[SinkRecord::new("s", 0, 3, Data::string("c"))],
    )
    .unwrap_err();
    assert_eq!(at, 1);
    assert!(
        e.is_panic() && e.to_string().contains("asked to panic"),
        "{e}"
    );
    assert_eq!(a.apply_sink(&input[..1]).unwrap().len(), 1);
    assert!(b.apply_sink(&input[..1]).is_err());

    // In a chain: two plugin transforms in a row cross once per batch.
    let chain = transform::parse(&map(&[
        ("transforms", "one,two"),
        ("transforms.one.type", "NoopTransform"),
        ("transforms.one.noop.suffix", "!"),
        ("transforms.two.type", "NoopTransform"),
        ("transforms.two.noop.suffix", "?"),
        ("transforms.two.noop.panic.on", "boom!"),
    ]))
    .unwrap();
    let before = CROSSINGS.with(|c| c.get());
    let out = chain.apply_source_batch(vec![
        text_record("t", "x"),
        text_record("t", "y"),
        text_record("t", "z"),
    ]);
    assert_eq!(CROSSINGS.with(|c| c.get()) - before, 1);
    let values: Vec<String> = out
        .iter()
        .map(|r| match r {
            Ok(Some(r)) => text_of(&r.value).to_owned(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(values, ["x!?", "y!?", "z!?"]);
    // A panic in the run: the stages are applied one by one instead, failing only the
    // record that panics.
    let out = chain.apply_source_batch(vec![text_record("t", "ok"), text_record("t", "boom")]);
    assert!(
        matches!(&out[0], Ok(Some(r)) if text_of(&r.value) == "ok!?"),
        "{out:?}"
    );
    let e = out[1].as_ref().unwrap_err();
    assert_eq!(e.alias, "two");
    assert!(e.message.contains("asked to panic"), "{e}");
    // And the run works again afterwards.
    let out = chain.apply_source_batch(vec![text_record("t", "w")]);
    assert!(
        matches!(&out[0], Ok(Some(r)) if text_of(&r.value) == "w!?"),
        "{out:?}"
    );
}
