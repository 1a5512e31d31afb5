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
use tributary_plugin_abi::record::{Offsets, RecordMetadata, SinkRecord, TopicPartition};

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
        .start(&map(&[("noop.record.bytes", "many")]))
        .unwrap_err();
    assert!(
        matches!(&err, PluginError::Failed { call: "start", message, .. } if message.contains("noop.record.bytes")),
        "{err}"
    );
    connector
        .start(&map(&[("noop.topic", "t"), ("noop.records.per.poll", "4")]))
        .unwrap();
    let task_configs = connector.task_configs(2).unwrap();
    assert_eq!(task_configs.len(), 2);
    assert_eq!(task_configs[1]["noop.task.id"], "1");

    // A source task: batches come back through the boundary.
    let mut task = source.new_source_task().unwrap();
    task.start(&task_configs[1]).unwrap();
    let first = task.poll().unwrap();
    let second = task.poll().unwrap();
    assert_eq!((first.len(), second.len()), (4, 4));
    for (seq, r) in first.iter().chain(&second).enumerate() {
        assert_eq!(r.topic, "t");
        let v = value_bytes(&r.value);
        assert_eq!(v.len(), 100);
        assert_eq!(v[..8], (seq as u64).to_le_bytes());
        assert_eq!(r.source_partition["task"], Value::Int32(1));
        assert_eq!(r.source_offset["seq"], Value::Int64(seq as i64 + 1));
    }
    task.commit().unwrap();
    let meta = RecordMetadata {
        topic: "t".into(),
        partition: 0,
        offset: 0,
        timestamp: None,
    };
    task.commit_records(&[(first[0].clone(), Some(meta)), (first[1].clone(), None)])
        .unwrap();
    task.stop().unwrap();
    connector.stop().unwrap();

    // A sink task: the same records delivered back.
    let sink = reg.lookup("NoopSink").unwrap().clone();
    assert_eq!(sink.name(), SINK);
    assert_eq!(sink.kind(), ConnectorType::Sink);
    let mut sink_task = sink.new_sink_task().unwrap();
    sink_task.start(&map(&[])).unwrap();
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
    bad.start(&map(&[("noop.panic.on", "poll")])).unwrap();
    let mut good = source.new_source_task().unwrap();
    good.start(&map(&[("noop.records.per.poll", "2")])).unwrap();

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
    bad_sink.start(&map(&[("noop.panic.on", "put")])).unwrap();
    let mut good_sink = sink.new_sink_task().unwrap();
    good_sink.start(&map(&[])).unwrap();
    let batch = vec![SinkRecord::new("t", 0, 0, Data::bytes(vec![1; 100]))];
    let err = bad_sink.put(&batch).unwrap_err();
    assert!(
        matches!(&err, PluginError::Panicked { call: "put", message, .. } if message.contains("noop: panic requested in put")),
        "{err}"
    );
    good_sink.put(&batch).unwrap();
    let mut connector = source.new_connector().unwrap();
    let err = connector
        .start(&map(&[("noop.panic.on", "connector.start")]))
        .unwrap_err();
    assert!(err.is_panic(), "{err}");

    // A retriable failure is not a panic: the task may be called again.
    let mut flaky = source.new_source_task().unwrap();
    flaky.start(&map(&[("noop.fail.on", "poll")])).unwrap();
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
        let dups: Vec<_> = reg
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
            .collect();
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
    task.start(&map(&[("noop.records.per.poll", "3")])).unwrap();
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
        .start(&map(&[("noop.records.per.poll", "1")]))
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
        .start(&map(&[("noop.records.per.poll", "2")]))
        .unwrap();
    assert_eq!(old_task.poll().unwrap().len(), 1);
    assert_eq!(new_task.poll().unwrap().len(), 2);
}
