//! Real Kafka clients against the real broker binary: kcat (librdkafka 2.0, Debian's
//! package), kafka-python 3.0 and confluent-kafka 2.16 (librdkafka 2.16). Each test
//! starts `tributary broker` on a free port with its own data directory and drives a
//! client through produce, fetch, groups and offset commits; the Python scripts in
//! `tests/clients/` check what they read themselves and print one summary line.
//!
//! `./scripts/test` installs the clients: kcat from Debian, the Python libraries into a
//! venv whose interpreter it names in `TRIBUTARY_PYTHON`. A missing client fails these
//! tests with that instruction; they never skip.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tributary::log::PartitionLog;
use tributary::log::batch::NO_PRODUCER_ID;
use tributary::log::compression::Compression;

use crate::support::{
    BrokerProcess, LineChild, Rng, StoredBatch, log_config, read_all, run_bounded, tail, test_seed,
};

/// Every test broker rebalances a new group at once instead of waiting 3 s for more
/// members.
const FAST_GROUPS: &str = "group.initial.rebalance.delay.ms=0";

/// The longest one client script or kcat run may take before it is killed; each script
/// also bounds itself (a watchdog and deadlines on every wait).
const CLIENT_LIMIT: Duration = Duration::from_secs(180);

const INSTALL_HINT: &str = "run ./scripts/test, which installs the test clients";

/// The venv interpreter with the Python clients: `TRIBUTARY_PYTHON`, else the venv
/// `./scripts/test` creates at `target/pyclients`.
fn python() -> PathBuf {
    let path = std::env::var_os("TRIBUTARY_PYTHON").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyclients/bin/python"),
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "no Python with the Kafka client libraries at {} (TRIBUTARY_PYTHON): {INSTALL_HINT}",
        path.display()
    );
    path
}

/// `kcat`, checked to be installed.
fn kcat() -> Command {
    match Command::new("kcat").arg("-V").output() {
        Ok(out) if out.status.success() => Command::new("kcat"),
        Ok(out) => panic!("`kcat -V` failed ({}): {INSTALL_HINT}", out.status),
        Err(e) => panic!("kcat is not installed ({e}): {INSTALL_HINT}"),
    }
}

/// Run `tests/clients/<script>` with `args` against `broker`; panic with everything
/// both printed if it fails. Returns its stdout.
fn run_script(broker: &BrokerProcess, script: &str, args: &[&str]) -> String {
    let out = run_bounded(&mut script_command(script, args), None, CLIENT_LIMIT);
    check_script(broker, script, args, out)
}

/// The command that runs `tests/clients/<script>` with the venv's Python.
fn script_command(script: &str, args: &[&str]) -> Command {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(script);
    let mut cmd = Command::new(python());
    cmd.arg(&path)
        .args(args)
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    cmd
}

/// Panic with everything the script and the broker printed unless the script
/// succeeded; print and return its stdout.
fn check_script(
    broker: &BrokerProcess,
    script: &str,
    args: &[&str],
    out: crate::support::CommandOutput,
) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{script} {args:?} failed ({})\n--- stdout:\n{}\n--- stderr:\n{}\n--- broker log (tail):\n{}",
        out.status,
        tail(&stdout, 8192),
        tail(&out.stderr, 16384),
        broker.log_tail()
    );
    println!("{script}: {}", stdout.trim_end());
    stdout
}

/// Run kcat with `args` (and `stdin`); it must succeed. Returns its stdout.
fn run_kcat(broker: &BrokerProcess, args: &[&str], stdin: Option<Vec<u8>>) -> Vec<u8> {
    let mut cmd = kcat();
    cmd.args(["-b", &broker.bootstrap]).args(args);
    let out = run_bounded(&mut cmd, stdin, CLIENT_LIMIT);
    assert!(
        out.status.success(),
        "kcat {args:?} failed ({})\n--- stderr:\n{}\n--- broker log (tail):\n{}",
        out.status,
        tail(&out.stderr, 16384),
        broker.log_tail()
    );
    out.stdout
}

/// The batches of every partition of `topic` on a stopped broker's data directory.
fn batches_on_disk(data_dir: &Path, topic: &str, partitions: i32) -> Vec<StoredBatch> {
    let mut out = Vec::new();
    for p in 0..partitions {
        let dir = data_dir.join(format!("{topic}-{p}"));
        let log = PartitionLog::open(&dir, log_config(&[]))
            .unwrap_or_else(|e| panic!("open {}: {e}", dir.display()));
        let batches = read_all(&log).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
        out.extend(batches);
    }
    out
}

/// `n` lines `KEY:VALUE\n` with unique keys and values of varied length and bytes
/// (printable ASCII including the `:` delimiter, and multi-byte UTF-8), as kcat's
/// `-K:` producer reads them and its `-f '%k:%s\n'` consumer prints them.
fn keyed_lines(n: usize, rng: &mut Rng) -> Vec<u8> {
    const ALPHABET: &[&str] = &[
        "a", "b", "z", "Q", "0", "9", " ", ":", "-", "_", "{", "}", "é", "→", "✓",
    ];
    let mut out = Vec::with_capacity(n * 64);
    for i in 0..n {
        out.extend_from_slice(format!("key{i:06}:").as_bytes());
        let len = rng.between(1, 120);
        for _ in 0..len {
            let s = ALPHABET[rng.below(ALPHABET.len() as u64) as usize];
            out.extend_from_slice(s.as_bytes());
        }
        out.push(b'\n');
    }
    out
}

/// kcat produces 100,000 keyed messages into a 1-partition topic (read back byte for
/// byte, in order) and, zstd-compressed, into a 3-partition topic (each partition in
/// production order, every message exactly once); its balanced consumer (`-G`) reads
/// the 3-partition topic in a group and, run again, resumes at the committed end; `-L`
/// lists the topic's partitions.
#[test]
fn kcat_produces_and_consumes_100k_keyed_messages() {
    const N: usize = 100_000;
    let seed = test_seed();
    println!("seed {seed} (replay with TRIBUTARY_TEST_SEED={seed})");
    let mut rng = Rng::new(seed);
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    // The ordered topic exists before the broker starts (made by the topics command);
    // the other is auto-created on first produce with num.partitions.
    let created = run_bounded(
        Command::new(env!("CARGO_BIN_EXE_tributary"))
            .args(["topics", "--data-dir"])
            .arg(&data)
            .args(["create", "kcat-ordered", "--partitions", "1"]),
        None,
        CLIENT_LIMIT,
    );
    assert!(
        created.status.success(),
        "tributary topics create: {}",
        created.stderr
    );
    let broker = BrokerProcess::start(&data, &[FAST_GROUPS, "num.partitions=3"]);
    let input = keyed_lines(N, &mut rng);
    let lines: Vec<&[u8]> = input.split_inclusive(|&b| b == b'\n').collect();
    assert_eq!(lines.len(), N);

    // One partition: a total order, so the output must equal the input byte for byte.
    run_kcat(
        &broker,
        &["-P", "-t", "kcat-ordered", "-K:"],
        Some(input.clone()),
    );
    let out = run_kcat(
        &broker,
        &["-C", "-t", "kcat-ordered", "-e", "-q", "-f", "%k:%s\n"],
        None,
    );
    assert!(
        out == input,
        "kcat read back {} bytes ({} lines) from kcat-ordered, produced {} bytes ({N} lines); first difference at byte {:?}",
        out.len(),
        out.split_inclusive(|&b| b == b'\n').count(),
        input.len(),
        out.iter().zip(&input).position(|(a, b)| a != b)
    );

    // Three partitions, zstd: per partition, offsets from 0 without gaps and messages in
    // the order they were produced; together, every message exactly once.
    run_kcat(
        &broker,
        &["-P", "-t", "kcat-spread", "-K:", "-z", "zstd"],
        Some(input.clone()),
    );
    let position: HashMap<&[u8], usize> = lines.iter().enumerate().map(|(i, l)| (*l, i)).collect();
    let check_spread = |out: &[u8], what: &str| {
        let mut per_partition: BTreeMap<i32, Vec<(i64, usize)>> = BTreeMap::new();
        for line in out.split_inclusive(|&b| b == b'\n') {
            let text = String::from_utf8_lossy(line);
            let mut parts = line.splitn(3, |&b| b == b':');
            let (Some(p), Some(o), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
                panic!("{what}: unexpected kcat line {text:?}");
            };
            let p: i32 = std::str::from_utf8(p)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("{what}: bad partition in {text:?}"));
            let o: i64 = std::str::from_utf8(o)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("{what}: bad offset in {text:?}"));
            let Some(&i) = position.get(rest) else {
                panic!(
                    "{what}: partition {p} offset {o} holds {:?}, which was never produced",
                    String::from_utf8_lossy(rest)
                );
            };
            per_partition.entry(p).or_default().push((o, i));
        }
        assert_eq!(
            per_partition.keys().copied().collect::<Vec<_>>(),
            vec![0, 1, 2],
            "{what}: partitions with messages"
        );
        let mut total = 0;
        for (p, messages) in &per_partition {
            for (k, (o, _)) in messages.iter().enumerate() {
                assert_eq!(
                    *o, k as i64,
                    "{what}: partition {p}: offsets must run from 0 without gaps"
                );
            }
            assert!(
                messages.windows(2).all(|w| w[0].1 < w[1].1),
                "{what}: partition {p} holds messages out of production order"
            );
            total += messages.len();
        }
        assert_eq!(total, N, "{what}: messages read back");
    };
    let out = run_kcat(
        &broker,
        &["-C", "-t", "kcat-spread", "-e", "-q", "-f", "%p:%o:%k:%s\n"],
        None,
    );
    check_spread(&out, "kcat -C (partition consumer)");

    // The balanced consumer: JoinGroup/SyncGroup/OffsetCommit as librdkafka 2.0 gates
    // them. A second run in the same group starts at the committed end: nothing.
    let group_read = [
        "-G",
        "kcat-readers",
        "-e",
        "-q",
        "-X",
        "auto.offset.reset=earliest",
        "-f",
        "%p:%o:%k:%s\n",
        "kcat-spread",
    ];
    let out = run_kcat(&broker, &group_read, None);
    check_spread(&out, "kcat -G (group consumer)");
    let again = run_kcat(&broker, &group_read, None);
    assert!(
        again.is_empty(),
        "kcat -G in the same group read {} bytes again instead of resuming at its committed offsets: {:?}",
        again.len(),
        tail(&String::from_utf8_lossy(&again), 300)
    );

    let listing = String::from_utf8(run_kcat(&broker, &["-L", "-t", "kcat-spread"], None))
        .expect("kcat -L prints text");
    assert!(
        listing.contains("topic \"kcat-spread\" with 3 partitions:"),
        "kcat -L:\n{listing}"
    );
    for p in 0..3 {
        assert!(
            listing.contains(&format!("partition {p}, leader 0, replicas: 0, isrs: 0")),
            "kcat -L lacks partition {p}:\n{listing}"
        );
    }
    broker.terminate();

    // As stored: the plain producer's batches uncompressed, `-z zstd`'s zstd, except
    // that librdkafka sends a batch uncompressed when compressing would enlarge it (a
    // batch of one or two small records).
    let plain = batches_on_disk(&data, "kcat-ordered", 1);
    assert_eq!(plain.iter().map(|b| b.records.len()).sum::<usize>(), N);
    for b in &plain {
        let found = b.header.compression().expect("a known codec");
        assert_eq!(
            found,
            Compression::None,
            "kcat-ordered: batch at offset {} is stored with {found:?}",
            b.header.base_offset
        );
    }
    let mut zstd_records = 0;
    for b in batches_on_disk(&data, "kcat-spread", 3) {
        match b.header.compression().expect("a known codec") {
            Compression::Zstd => zstd_records += b.records.len(),
            Compression::None => {}
            other => panic!(
                "kcat-spread: batch at offset {} is stored with {other:?}",
                b.header.base_offset
            ),
        }
    }
    assert!(
        zstd_records >= N * 9 / 10,
        "kcat-spread: only {zstd_records} of {N} records are in zstd batches"
    );
}

/// kafka-python producers with every codec it has (none, gzip, snappy, lz4, zstd) and
/// an idempotent one (acks=all); everything read back identical. On disk afterwards,
/// each topic's batches carry the producer's codec, and only the idempotent producer's
/// batches a producer id.
#[test]
fn kafka_python_every_codec_and_idempotence() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    let broker = BrokerProcess::start(&data, &[FAST_GROUPS]);
    run_script(&broker, "kp_codecs.py", &[&broker.bootstrap, "5000"]);
    broker.terminate();

    let runs = [
        ("none", Compression::None),
        ("gzip", Compression::Gzip),
        ("snappy", Compression::Snappy),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
        ("idempotent", Compression::None),
    ];
    for (run, codec) in runs {
        let topic = format!("kp-{run}");
        let batches = batches_on_disk(&data, &topic, 1);
        let records: usize = batches.iter().map(|b| b.records.len()).sum();
        assert_eq!(records, 5000, "{topic}: records on disk");
        // Clients send a batch uncompressed when compressing would not make it smaller
        // (kafka-python and librdkafka both do, e.g. for a lone trailing record), so every
        // batch is either the producer's codec or uncompressed, and most records are in
        // batches of the codec.
        let in_codec: usize = batches
            .iter()
            .filter(|b| b.header.compression().ok() == Some(codec))
            .map(|b| b.records.len())
            .sum();
        assert!(
            in_codec * 10 >= records * 9,
            "{topic}: only {in_codec} of {records} records stored with {codec:?}"
        );
        for b in &batches {
            let found = b.header.compression().expect("a known codec");
            assert!(
                found == codec || found == Compression::None,
                "{topic}: batch at offset {} is stored with {found:?}",
                b.header.base_offset
            );
            if run == "idempotent" {
                assert!(
                    b.header.producer_id != NO_PRODUCER_ID && b.header.base_sequence >= 0,
                    "{topic}: batch at offset {} has producer id {} sequence {}",
                    b.header.base_offset,
                    b.header.producer_id,
                    b.header.base_sequence
                );
            } else {
                assert_eq!(
                    b.header.producer_id, NO_PRODUCER_ID,
                    "{topic}: batch at offset {} from a non-idempotent producer",
                    b.header.base_offset
                );
            }
        }
    }
}

/// A kafka-python consumer group on 6 partitions: 3 members get every record exactly
/// once; then, while production goes on, a 4th joins and the 1st leaves, and every
/// record still arrives (at least once: see the delivery semantics in `kp_group.py`).
#[test]
fn kafka_python_consumer_group_rebalances_without_loss() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let broker = BrokerProcess::start(&tmp.path().join("data"), &[FAST_GROUPS]);
    let out = run_script(&broker, "kp_group.py", &[&broker.bootstrap]);
    assert!(
        out.contains("kafka-python group ok"),
        "kp_group.py printed no summary: {out}"
    );
    broker.terminate();
}

/// Offsets a group commits survive SIGKILL of the broker: a new member of the group,
/// on the restarted broker, finds the same offsets and metadata and resumes there,
/// with nothing committed delivered again. Then once more across a clean restart.
#[test]
fn committed_offsets_survive_sigkill_and_restart() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    let json_line = |out: &str| -> String {
        out.lines()
            .find(|l| l.starts_with('{'))
            .unwrap_or_else(|| panic!("kp_commit.py printed no commits line: {out}"))
            .to_string()
    };

    let broker = BrokerProcess::start(&data, &[FAST_GROUPS]);
    let commits = json_line(&run_script(
        &broker,
        "kp_commit.py",
        &["commit", &broker.bootstrap],
    ));
    let status = broker.kill();
    assert!(
        !status.success(),
        "the broker was killed, yet exited with {status}"
    );

    let broker = BrokerProcess::start(&data, &[FAST_GROUPS]);
    let commits = json_line(&run_script(
        &broker,
        "kp_commit.py",
        &["resume", &broker.bootstrap, &commits],
    ));
    broker.terminate();

    let broker = BrokerProcess::start(&data, &[FAST_GROUPS]);
    run_script(
        &broker,
        "kp_commit.py",
        &["resume", &broker.bootstrap, &commits],
    );
    broker.terminate();
}

/// confluent-kafka (librdkafka 2.16): idempotent and plain producers with lz4, none,
/// zstd, gzip and snappy into one 3-partition topic, read back by a group consumer
/// exactly once and in order. On disk, the batches carry every one of those codecs.
#[test]
fn confluent_kafka_producers_and_group_consumer() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    let broker = BrokerProcess::start(&data, &[FAST_GROUPS]);
    run_script(&broker, "ck_roundtrip.py", &[&broker.bootstrap, "5000"]);
    broker.terminate();

    let batches = batches_on_disk(&data, "ck-3", 3);
    let records: usize = batches.iter().map(|b| b.records.len()).sum();
    assert_eq!(records, 5 * 5000, "ck-3: records on disk");
    let mut codecs: Vec<Compression> = batches
        .iter()
        .map(|b| b.header.compression().expect("a known codec"))
        .collect();
    codecs.sort_by_key(|c| format!("{c:?}"));
    codecs.dedup();
    assert_eq!(
        codecs,
        vec![
            Compression::Gzip,
            Compression::Lz4,
            Compression::None,
            Compression::Snappy,
            Compression::Zstd
        ],
        "codecs of the batches stored for ck-3"
    );
    let idempotent = batches
        .iter()
        .filter(|b| b.header.producer_id != NO_PRODUCER_ID)
        .count();
    assert!(
        idempotent > 0,
        "no batch of ck-3 carries a producer id, though two producers were idempotent"
    );
}

/// confluent-kafka clients ride through a broker crash: while an idempotent producer
/// and a group consumer run, the broker is SIGKILLed and restarted on the same port and
/// data directory. Every acknowledged record is consumed, intact, and the consumer
/// rejoins the group the restarted coordinator no longer knows (see
/// `ck_survive_restart.py` for what may repeat).
#[test]
fn confluent_kafka_clients_survive_broker_sigkill() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    let broker = BrokerProcess::start(&data, &[FAST_GROUPS]);
    let listen = broker.bootstrap.clone();
    let args = [listen.as_str()];
    let mut script = LineChild::spawn(&mut script_command("ck_survive_restart.py", &args));
    let ready = script.wait_for_line("KILL NOW", CLIENT_LIMIT);
    if !ready {
        let out = script.finish(CLIENT_LIMIT);
        check_script(&broker, "ck_survive_restart.py", &args, out);
        panic!("ck_survive_restart.py exited without asking for the kill");
    }
    let status = broker.kill();
    assert!(!status.success(), "the killed broker exited with {status}");
    // The clients reconnect to the same address. Should another socket take the port
    // in the moment it is free, the new broker exits at once: try again.
    let mut attempts = 0;
    let broker = loop {
        attempts += 1;
        match BrokerProcess::try_start_on(&data, &listen, &[FAST_GROUPS]) {
            Ok(b) => break b,
            Err(_) if attempts < 20 => continue,
            Err(e) => panic!("the broker did not restart on {listen} in {attempts} attempts: {e}"),
        }
    };
    let out = script.finish(CLIENT_LIMIT);
    let stdout = check_script(&broker, "ck_survive_restart.py", &args, out);
    assert!(
        stdout.contains("confluent-kafka restart ok"),
        "ck_survive_restart.py printed no summary: {stdout}"
    );
    broker.terminate();
}
