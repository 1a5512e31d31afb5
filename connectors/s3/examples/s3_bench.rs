//! The S3 sink's benchmark (run by scripts/bench/s3.sh): the real standalone worker moves a
//! topic of DataGen `pageviews` records into the S3-compatible endpoint with the S3 sink,
//! as JSON lines and as Parquet, several runs each; after each run the same objects are
//! put again with plain aws-sdk-s3 `PutObject` calls, one after another, which is the
//! endpoint's own upload speed for those bytes: the ratio to approach.
//!
//! Usage: `s3_bench TRIBUTARY_BINARY PLUGIN_DIR ENDPOINT_URL [RECORDS] [RUNS]`
//! (`PLUGIN_DIR` holds the S3 and DataGen plugins).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tributary_connector_s3::config::StoreSettings;
use tributary_connector_s3::storage::Store;

type Error = Box<dyn std::error::Error>;

fn http(port: u16, method: &str, path: &str, body: &str) -> Result<(u16, String), Error> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .ok_or("no HTTP status")?;
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

fn free_port() -> Result<u16, Error> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn store(url: &str, bucket: &str) -> Store {
    Store::new(&StoreSettings {
        bucket: bucket.to_owned(),
        region: "us-east-1".to_owned(),
        endpoint: Some(url.to_owned()),
        path_style: true,
        credentials: Some(("bench".to_owned(), "bench".to_owned())),
        retry_backoff: Duration::from_millis(100),
        retries: 3,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

struct Worker {
    child: Child,
    port: u16,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_worker(bin: &Path, plugins: &Path, dir: &Path) -> Result<Worker, Error> {
    let port = free_port()?;
    let props = dir.join("worker.properties");
    std::fs::write(
        &props,
        format!(
            "broker.data.dir={}\nbroker.listener=none\nplugin.path={}\n\
             broker.group.initial.rebalance.delay.ms=0\n\
             key.converter=org.apache.kafka.connect.storage.StringConverter\n\
             value.converter=org.apache.kafka.connect.json.JsonConverter\n\
             offset.flush.interval.ms=1000\nlisteners=http://127.0.0.1:{port}\n",
            dir.join("data").display(),
            plugins.display()
        ),
    )?;
    let log = std::fs::File::create(dir.join("worker.log"))?;
    let child = Command::new(bin)
        .arg("standalone")
        .arg(&props)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    let w = Worker { child, port };
    let deadline = Instant::now() + Duration::from_secs(30);
    // Up, with both plugins loaded.
    loop {
        if let Ok((200, body)) = http(port, "GET", "/connector-plugins", "")
            && body.contains("S3SinkConnector")
            && body.contains("DataGenConnector")
        {
            break;
        }
        if Instant::now() > deadline {
            return Err("the worker's REST API did not list the S3 and DataGen plugins".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(w)
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err(
            "usage: s3_bench TRIBUTARY_BINARY PLUGIN_DIR ENDPOINT_URL [RECORDS] [RUNS]".into(),
        );
    }
    let (bin, plugins, url) = (PathBuf::from(&args[1]), PathBuf::from(&args[2]), &args[3]);
    let records: u64 = args.get(4).map_or(Ok(300_000), |a| a.parse())?;
    let runs: usize = args.get(5).map_or(Ok(3), |a| a.parse())?;
    let flush = 20_000u64.min(records);
    if !records.is_multiple_of(flush) {
        return Err("RECORDS must be a multiple of 20000".into());
    }
    let tmp = std::env::temp_dir().join(format!("s3-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let w = start_worker(&bin, &plugins, &tmp)?;

    // The topic: DataGen pageviews (about 100-byte values, plus JsonConverter's schema
    // envelope), written before any sink runs.
    let datagen = format!(
        r#"{{"name":"gen","config":{{"connector.class":"DataGen","kafka.topic":"pageviews","quickstart":"pageviews","iterations":"{records}","datagen.records.per.poll":"2000","value.converter.schemas.enable":"true"}}}}"#
    );
    let (code, body) = http(w.port, "POST", "/connectors", &datagen)?;
    if code != 201 {
        return Err(format!("creating DataGen: {code} {body}").into());
    }
    let want = format!("\"seq\":{}", records - 1);
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (_, body) = http(w.port, "GET", "/connectors/gen/offsets", "")?;
        if body.replace(' ', "").contains(&want) {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("DataGen did not finish: {body}").into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    http(w.port, "PUT", "/connectors/gen/stop", "")?;

    println!("records per run: {records}, flush.size {flush}, runs: {runs}");
    println!(
        "{:<8} {:>4} {:>10} {:>12} {:>10} {:>12} {:>8}",
        "format", "run", "sink s", "records/s", "sink MB/s", "put MB/s", "ratio"
    );
    for (format, class, ext) in [
        (
            "json",
            "io.confluent.connect.s3.format.json.JsonFormat",
            ".json",
        ),
        (
            "parquet",
            "io.confluent.connect.s3.format.parquet.ParquetFormat",
            ".snappy.parquet",
        ),
    ] {
        let (mut rates, mut mbs, mut put_mbs, mut ratios) = (vec![], vec![], vec![], vec![]);
        for run in 0..runs {
            let bucket = format!("bench-{format}-{run}-{}", std::process::id());
            let s = store(url, &bucket);
            s.create_bucket().map_err(|e| e.message)?;
            let name = format!("s3-{format}-{run}");
            let config = format!(
                r#"{{"name":"{name}","config":{{"connector.class":"S3Sink","topics":"pageviews","flush.size":"{flush}","s3.bucket.name":"{bucket}","s3.region":"us-east-1","store.url":"{url}","aws.access.key.id":"bench","aws.secret.access.key":"bench","format.class":"{class}","value.converter.schemas.enable":"true"}}}}"#
            );
            let expected: Vec<String> = (0..records / flush)
                .map(|i| {
                    format!(
                        "topics/pageviews/partition=0/pageviews+0+{:010}{ext}",
                        i * flush
                    )
                })
                .collect();
            let t0 = Instant::now();
            let (code, body) = http(w.port, "POST", "/connectors", &config)?;
            if code != 201 {
                return Err(format!("creating the sink: {code} {body}").into());
            }
            let objects = loop {
                let have = s.list_sizes("").map_err(|e| e.message)?;
                if have.len() >= expected.len() {
                    break have;
                }
                if t0.elapsed() > Duration::from_secs(600) {
                    return Err(format!("only {} of {} objects", have.len(), expected.len()).into());
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            let secs = t0.elapsed().as_secs_f64();
            http(w.port, "DELETE", &format!("/connectors/{name}"), "")?;
            let keys: Vec<&String> = objects.iter().map(|(k, _)| k).collect();
            if keys != expected.iter().collect::<Vec<_>>() {
                return Err(format!("unexpected objects: {keys:?}").into());
            }
            let bytes: i64 = objects.iter().map(|(_, n)| n).sum();
            // The reference: the same bytes, put one object after another.
            let bodies: Vec<Vec<u8>> = keys
                .iter()
                .map(|k| s.get(k))
                .collect::<Result<_, _>>()
                .map_err(|e| e.message)?;
            let p0 = Instant::now();
            for (i, b) in bodies.into_iter().enumerate() {
                s.put(&format!("reference/{i}"), b).map_err(|e| e.message)?;
            }
            let put_secs = p0.elapsed().as_secs_f64();
            let mb = bytes as f64 / 1e6;
            let (rate, sink_mbs, ref_mbs) = (records as f64 / secs, mb / secs, mb / put_secs);
            println!(
                "{format:<8} {run:>4} {secs:>10.2} {rate:>12.0} {sink_mbs:>10.1} {ref_mbs:>12.1} {:>8.2}",
                sink_mbs / ref_mbs
            );
            rates.push(rate);
            mbs.push(sink_mbs);
            put_mbs.push(ref_mbs);
            ratios.push(sink_mbs / ref_mbs);
        }
        println!(
            "{format:<8} {:>4} {:>10} {:>12.0} {:>10.1} {:>12.1} {:>8.2}",
            "med",
            "",
            median(rates),
            median(mbs),
            median(put_mbs),
            median(ratios)
        );
    }
    drop(w);
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}
