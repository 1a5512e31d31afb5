//! Same-run references for storage benchmarks: what the disk under a directory does
//! when driven the plainest way (one file, sequential writes, `fdatasync`), so a
//! benchmark can print its result as a fraction of the machine's own limit measured
//! minutes, not months, apart. Also the incompressible test data and the description
//! of the machine that every bench prints.
//!
//! What it is not: a disk benchmark suite. No direct I/O, no queue depths, no random
//! access; only the two shapes the commit log itself produces.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Bytes per MB in every figure the benches print (decimal, as `dd` and disk vendors
/// count).
pub const MB: f64 = 1e6;

/// How much random data a reference cycles through: the same amount the log bench
/// pre-builds, so neither side writes a small buffer over and over.
const POOL_BYTES: usize = 64 << 20;

/// xorshift64* (Marsaglia, Vigna): fast, seedable, and good enough that no compressor
/// or deduplicating layer finds anything to save in its output. Not for cryptography.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // A zero state would stay zero forever.
        Rng((seed ^ 0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        rest.copy_from_slice(&last[..rest.len()]);
    }
}

/// The data the references write: generated once per process, so repeated
/// measurements do not churn memory between the runs they are compared with.
fn pool() -> &'static [u8] {
    static POOL: OnceLock<Vec<u8>> = OnceLock::new();
    POOL.get_or_init(|| random_bytes(POOL_BYTES, 0xd15c))
}

/// `len` incompressible bytes.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    Rng::new(seed).fill(&mut buf);
    buf
}

/// A file in the bench directory that is removed when dropped, also on an error path.
#[derive(Debug)]
struct ScratchFile {
    path: PathBuf,
    file: File,
}

impl ScratchFile {
    fn create(dir: &Path, what: &str) -> std::io::Result<ScratchFile> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("disk-{what}-{}-{n}.tmp", std::process::id()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(ScratchFile { path, file })
    }
}

impl Drop for ScratchFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One large write made durable: buffered writes, then a single `fdatasync`.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct SyncedWrite {
    pub bytes: u64,
    pub write_size: usize,
    /// Time spent in the writes (into the page cache, mostly).
    pub write_secs: f64,
    /// Time spent in the final `fdatasync`.
    pub sync_secs: f64,
}

impl SyncedWrite {
    pub fn secs(&self) -> f64 {
        self.write_secs + self.sync_secs
    }

    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / MB / self.secs()
    }
}

/// The disk's sequential write bandwidth as a log sees it: write `bytes` of
/// incompressible data to a new file in `dir` in `write`s of `write_size` bytes, then
/// one `fdatasync`, timed end to end (file creation excluded). The file is removed
/// afterwards.
///
/// Pass the size of the writes being compared with. It matters on some machines: on a
/// Firecracker guest with free page reporting, 1 MiB writes were 2-3 times slower than
/// 64 KiB writes into the page cache (large folios need high-order pages, which the
/// host had taken back), while the `fdatasync` itself took the same time.
pub fn fdatasync_bandwidth(
    dir: &Path,
    bytes: u64,
    write_size: usize,
) -> std::io::Result<SyncedWrite> {
    let write_size = write_size.clamp(1, POOL_BYTES / 2);
    let pool = pool();
    let mut scratch = ScratchFile::create(dir, "bandwidth")?;
    let start = Instant::now();
    let mut written = 0u64;
    let mut at = 0usize;
    while written < bytes {
        let n = (write_size as u64).min(bytes - written) as usize;
        if at + n > pool.len() {
            at = 0;
        }
        scratch.file.write_all(&pool[at..at + n])?;
        at += n;
        written += n as u64;
    }
    let wrote = Instant::now();
    scratch.file.sync_data()?;
    let end = Instant::now();
    Ok(SyncedWrite {
        bytes,
        write_size,
        write_secs: (wrote - start).as_secs_f64(),
        sync_secs: (end - wrote).as_secs_f64(),
    })
}

/// A loop of small durable writes.
#[derive(Clone, Debug, Serialize)]
pub struct LoopRate {
    pub write_size: usize,
    pub ops: u64,
    pub secs: f64,
    /// Latency of one write + `fdatasync`, in microseconds.
    pub p50_us: f64,
    pub p99_us: f64,
}

impl LoopRate {
    pub fn ops_per_s(&self) -> f64 {
        self.ops as f64 / self.secs
    }
}

/// The raw durable-append rate: `write(write_size)` + `fdatasync` on one growing file,
/// repeated `max_ops` times or until `max_time` has passed, whichever comes first.
/// This is the most a log that syncs every append could do with the same write size.
pub fn fsync_loop_rate(
    dir: &Path,
    write_size: usize,
    max_ops: u64,
    max_time: Duration,
) -> std::io::Result<LoopRate> {
    let mut lp = FsyncLoop::create(dir, write_size)?;
    lp.run(max_ops, max_time)?;
    Ok(lp.rate())
}

/// [`fsync_loop_rate`] in pieces: each [`FsyncLoop::run`] continues the same file and
/// adds to the same totals, so a benchmark can interleave it with the code it is
/// compared with and both see the same state of the host (on this kind of VM the
/// `fdatasync` latency flips between modes that differ tenfold).
#[derive(Debug)]
pub struct FsyncLoop {
    scratch: ScratchFile,
    write_size: usize,
    at: usize,
    latencies_us: Vec<f64>,
    secs: f64,
}

impl FsyncLoop {
    /// A new file in `dir`, removed when the loop is dropped. `write_size` is capped
    /// at 32 MiB.
    pub fn create(dir: &Path, write_size: usize) -> std::io::Result<FsyncLoop> {
        Ok(FsyncLoop {
            scratch: ScratchFile::create(dir, "fsync-loop")?,
            write_size: write_size.clamp(1, POOL_BYTES / 2),
            at: 0,
            latencies_us: Vec::new(),
            secs: 0.0,
        })
    }

    /// Up to `max_ops` more writes, each followed by `fdatasync`, for at most
    /// `max_time` (at least one operation).
    pub fn run(&mut self, max_ops: u64, max_time: Duration) -> std::io::Result<()> {
        let pool = pool();
        let start = Instant::now();
        let mut ops = 0u64;
        while ops < max_ops.max(1) && (ops == 0 || start.elapsed() < max_time) {
            if self.at + self.write_size > pool.len() {
                self.at = 0;
            }
            let t = Instant::now();
            self.scratch
                .file
                .write_all(&pool[self.at..self.at + self.write_size])?;
            self.scratch.file.sync_data()?;
            self.latencies_us.push(t.elapsed().as_secs_f64() * 1e6);
            self.at += self.write_size;
            ops += 1;
        }
        self.secs += start.elapsed().as_secs_f64();
        Ok(())
    }

    pub fn ops(&self) -> u64 {
        self.latencies_us.len() as u64
    }

    /// Time spent in [`FsyncLoop::run`] so far.
    pub fn secs(&self) -> f64 {
        self.secs
    }

    /// The totals so far.
    pub fn rate(&self) -> LoopRate {
        let mut latencies = self.latencies_us.clone();
        LoopRate {
            write_size: self.write_size,
            ops: self.ops(),
            secs: self.secs,
            p50_us: percentile(&mut latencies, 0.50),
            p99_us: percentile(&mut latencies, 0.99),
        }
    }
}

/// The `q` quantile (nearest rank) of `values`, which it sorts; 0 when empty.
pub fn percentile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() as f64 * q).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

/// The median of `values` (the mean of the middle two for an even count); 0 when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Where a directory lives, from `/proc/mounts`.
#[derive(Clone, Debug, Serialize)]
pub struct Filesystem {
    pub device: String,
    pub fs_type: String,
    pub mount_point: String,
    pub options: String,
}

/// The mount holding `dir` (the longest mount point that prefixes its canonical path),
/// or `None` where `/proc/mounts` is not available.
pub fn filesystem_of(dir: &Path) -> Option<Filesystem> {
    let dir = dir.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (device, mount_point, fs_type, options) =
                (f.next()?, f.next()?, f.next()?, f.next()?);
            // /proc/mounts escapes spaces in paths as \040.
            let mount_point = mount_point.replace("\\040", " ");
            dir.starts_with(&mount_point).then(|| Filesystem {
                device: device.to_owned(),
                fs_type: fs_type.to_owned(),
                mount_point,
                options: options.to_owned(),
            })
        })
        .max_by_key(|m| m.mount_point.len())
}

/// What the machine was doing when a bench ran.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub memory_bytes: Option<u64>,
    /// `/proc/loadavg`'s 1, 5 and 15 minute averages.
    pub load: Option<[f64; 3]>,
}

impl Machine {
    pub fn now() -> Machine {
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_bytes: memory_bytes(),
            load: load_average(),
        }
    }

    /// `2 CPUs, 23.4 GiB memory, load 0.07 0.10 0.15`
    pub fn describe(&self) -> String {
        let memory = self.memory_bytes.map_or("unknown".to_owned(), |b| {
            format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
        });
        format!(
            "{} CPUs, {memory} memory, load {}",
            self.cpus,
            describe_load(self.load)
        )
    }
}

/// `0.07 0.10 0.15 (1, 5, 15 min)`
pub fn describe_load(load: Option<[f64; 3]>) -> String {
    load.map_or("unknown".to_owned(), |[a, b, c]| {
        format!("{a:.2} {b:.2} {c:.2} (1, 5, 15 min)")
    })
}

fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut f = text.split_whitespace().map(|s| s.parse::<f64>().ok());
    Some([f.next()??, f.next()??, f.next()??])
}

fn memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_do_not_compress() {
        let data = random_bytes(1 << 16, 7);
        let packed = zstd::bulk::compress(&data, 3).unwrap();
        assert!(
            packed.len() >= data.len(),
            "{} < {}",
            packed.len(),
            data.len()
        );
        // Odd lengths fill the tail too, and seeds give different streams.
        let a = random_bytes(13, 1);
        assert_ne!(&a[8..], &[0u8; 5]);
        assert_ne!(random_bytes(16, 1), random_bytes(16, 2));
    }

    #[test]
    fn median_and_percentile() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut v, 0.5), 50.0);
        assert_eq!(percentile(&mut v, 0.99), 99.0);
        assert_eq!(percentile(&mut [5.0], 0.99), 5.0);
    }

    #[test]
    fn references_write_what_they_say_and_clean_up() {
        let dir = tempfile::tempdir().unwrap();
        let w = fdatasync_bandwidth(dir.path(), 3 << 20, 1 << 20).unwrap();
        assert_eq!(w.bytes, 3 << 20);
        assert!(w.mb_per_s() > 0.0);
        let r = fsync_loop_rate(dir.path(), 4096, 5, Duration::from_secs(10)).unwrap();
        assert_eq!(r.ops, 5);
        assert!(r.p50_us <= r.p99_us);
        // In pieces: totals add up, and a run does at least one operation.
        let mut lp = FsyncLoop::create(dir.path(), 4096).unwrap();
        lp.run(3, Duration::from_secs(10)).unwrap();
        lp.run(2, Duration::ZERO).unwrap();
        assert_eq!((lp.ops(), lp.rate().ops), (4, 4));
        drop(lp);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let fs = filesystem_of(dir.path()).unwrap();
        assert!(!fs.fs_type.is_empty());
    }
}
