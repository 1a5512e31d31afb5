//! One segment of a partition: a `.log` file of RecordBatch v2 batches laid end to end,
//! named by the offset of its first record (`00000000000000000000.log`), with its
//! `.index` and `.timeindex` beside it.
//!
//! A segment knows its file and how to scan, append, read and truncate it. It does not
//! know about locking, durability policy or the other segments: that is
//! [`super::partition`]'s job. Positions are `u64` in memory and `u32` in index files,
//! so a segment is capped at `segment.bytes` <= 2 GiB, as in Kafka.

use std::fs::{File, OpenOptions};
use std::io::IoSlice;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::LogError;
use super::batch::{self, BATCH_HEADER_LEN, BatchHeader, NO_TIMESTAMP};
use super::index::{OffsetIndex, TimeIndex};

pub const LOG_SUFFIX: &str = "log";
pub const INDEX_SUFFIX: &str = "index";
pub const TIME_INDEX_SUFFIX: &str = "timeindex";
/// A compacted copy being written; removed on startup if a crash left it behind.
pub const CLEANED_SUFFIX: &str = "cleaned";

/// How much of a segment is read per system call while scanning it.
const SCAN_CHUNK: usize = 1 << 20;

/// `dir/00000000000000000042.ext`
pub fn file_path(dir: &Path, base_offset: i64, suffix: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{suffix}"))
}

/// The base offset of a `NNNNNNNNNNNNNNNNNNNN.log` file name.
pub fn parse_log_file_name(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".log")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// A batch found by a scan.
#[derive(Clone, Copy, Debug)]
pub struct ScannedBatch {
    pub position: u64,
    pub header: BatchHeader,
}

/// Where a scan stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanEnd {
    /// Every byte up to the end was a valid batch.
    Clean,
    /// Bytes from `position` on are not a valid batch (torn write, garbage, bad CRC).
    Invalid { position: u64, reason: String },
}

/// The largest batch a scan will read whole. Larger length fields are treated as
/// corruption; `max.message.bytes` is capped below it.
pub const MAX_BATCH_BYTES: usize = 256 << 20;

/// The state of one segment. Mutated only under the owning partition's lock; the file
/// handle is shared with readers, who use positional reads and never look past the
/// positions the partition hands them.
#[derive(Debug)]
pub struct Segment {
    pub base_offset: i64,
    pub path: PathBuf,
    pub file: Arc<File>,
    /// Bytes of complete, valid batches in the file.
    pub size: u64,
    /// One past the last offset of the last batch; `base_offset` when empty.
    pub next_offset: i64,
    /// Largest batch max timestamp; [`NO_TIMESTAMP`] when empty.
    pub max_timestamp: i64,
    /// Base offset of the batch that reached `max_timestamp`.
    max_timestamp_offset: i64,
    pub index: OffsetIndex,
    pub time_index: TimeIndex,
    /// Bytes appended since the last index entry.
    bytes_since_index: u64,
    /// When this process created or opened the segment (for `segment.ms`).
    pub opened_at: Instant,
    /// The max timestamp of the first batch, for time-based rolling.
    pub first_batch_timestamp: Option<i64>,
}

fn open_rw(path: &Path, create: bool) -> Result<File, LogError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .open(path)
        .map_err(|e| LogError::io(path, e))
}

fn remove_if_exists(path: &Path) -> Result<(), LogError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LogError::io(path, e)),
    }
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, LogError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LogError::io(path, e)),
    }
}

impl Segment {
    /// Create a new, empty segment (or reuse an empty file left by a crash).
    pub fn create(dir: &Path, base_offset: i64) -> Result<Segment, LogError> {
        let path = file_path(dir, base_offset, LOG_SUFFIX);
        let file = open_rw(&path, true)?;
        file.set_len(0).map_err(|e| LogError::io(&path, e))?;
        for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            remove_if_exists(&file_path(dir, base_offset, suffix))?;
        }
        Ok(Segment::empty(base_offset, path, file))
    }

    fn empty(base_offset: i64, path: PathBuf, file: File) -> Segment {
        Segment {
            base_offset,
            path,
            file: Arc::new(file),
            size: 0,
            next_offset: base_offset,
            max_timestamp: NO_TIMESTAMP,
            max_timestamp_offset: base_offset,
            index: OffsetIndex::default(),
            time_index: TimeIndex::default(),
            bytes_since_index: 0,
            opened_at: Instant::now(),
            first_batch_timestamp: None,
        }
    }

    fn open_file(dir: &Path, base_offset: i64) -> Result<Segment, LogError> {
        let path = file_path(dir, base_offset, LOG_SUFFIX);
        let file = open_rw(&path, false)?;
        let size = file.metadata().map_err(|e| LogError::io(&path, e))?.len();
        let mut seg = Segment::empty(base_offset, path, file);
        seg.size = size;
        Ok(seg)
    }

    /// Open a segment whose contents are trusted (below the recovery point): load its
    /// indexes if they agree with the file, otherwise rebuild them from batch headers.
    /// CRCs are not checked here (reads check them), but the batch framing is: a
    /// segment that does not parse to its end is reported as corrupt, never truncated.
    pub fn open_trusted(
        dir: &Path,
        base_offset: i64,
        index_interval: u64,
    ) -> Result<Segment, LogError> {
        let mut seg = Segment::open_file(dir, base_offset)?;
        if seg.size == 0 {
            return Ok(seg);
        }
        if let Some((index, time_index)) = seg.load_indexes(dir)? {
            // The offset index covers the file up to its last entry; every batch before
            // the time index's last entry has a smaller timestamp than that entry. So the
            // headers from the earlier of the two on give the end offset and the true
            // max timestamp, even if an index file lost its last entries.
            let offset_start = index.entries().last().map_or(0, |&(_, p)| u64::from(p));
            let time_start = time_index
                .entries()
                .last()
                .map_or(0, |&(_, rel)| u64::from(index.lookup(rel)));
            let start = offset_start.min(time_start);
            let mut tail = Vec::new();
            let end = seg.scan(start, false, |b, _| {
                tail.push(*b);
                Ok(())
            })?;
            if end == ScanEnd::Clean
                && tail
                    .first()
                    .is_some_and(|b| b.header.base_offset >= base_offset)
            {
                seg.index = index;
                seg.time_index = time_index;
                if let Some(&(t, rel)) = seg.time_index.entries().last() {
                    seg.max_timestamp = t;
                    seg.max_timestamp_offset = base_offset + i64::from(rel);
                }
                for b in &tail {
                    seg.next_offset = b.header.last_offset() + 1;
                    if b.header.max_timestamp > seg.max_timestamp {
                        seg.max_timestamp = b.header.max_timestamp;
                        seg.max_timestamp_offset = b.header.base_offset;
                    }
                }
                seg.bytes_since_index = seg.size - offset_start;
                seg.first_batch_timestamp = seg.read_header_at(0)?.map(|h| h.max_timestamp);
                return Ok(seg);
            }
            tracing::warn!(segment = %seg.path.display(), "index files disagree with the log; rebuilding them");
        }
        match seg.rebuild(false, index_interval)? {
            ScanEnd::Clean => Ok(seg),
            ScanEnd::Invalid { position, reason } => Err(LogError::Corrupt {
                path: seg.path.clone(),
                position,
                offset: seg.next_offset,
                reason,
            }),
        }
    }

    /// Open a segment that may end in a torn write: verify every batch, CRC included,
    /// rebuild the indexes, and report where valid data ends. `size` stops there; the
    /// file itself is not truncated here, the caller decides.
    pub fn open_and_verify(
        dir: &Path,
        base_offset: i64,
        index_interval: u64,
    ) -> Result<(Segment, ScanEnd), LogError> {
        let mut seg = Segment::open_file(dir, base_offset)?;
        let end = seg.rebuild(true, index_interval)?;
        Ok((seg, end))
    }

    fn read_header_at(&self, position: u64) -> Result<Option<BatchHeader>, LogError> {
        read_header(&self.file, &self.path, position, self.size)
    }

    fn load_indexes(&self, dir: &Path) -> Result<Option<(OffsetIndex, TimeIndex)>, LogError> {
        let Some(index_bytes) = read_optional(&file_path(dir, self.base_offset, INDEX_SUFFIX))?
        else {
            return Ok(None);
        };
        let Some(time_bytes) = read_optional(&file_path(dir, self.base_offset, TIME_INDEX_SUFFIX))?
        else {
            return Ok(None);
        };
        let Some(index) = OffsetIndex::decode(&index_bytes, self.size) else {
            return Ok(None);
        };
        let Some(time_index) = TimeIndex::decode(&time_bytes, u32::MAX) else {
            return Ok(None);
        };
        // The last entry must point at a batch with the base offset it claims.
        if let Some(&(rel, pos)) = index.entries().last() {
            match self.read_header_at(u64::from(pos))? {
                Some(h) if h.base_offset == self.base_offset + i64::from(rel) => {}
                _ => return Ok(None),
            }
        }
        // A closed segment's time index always ends with the segment's largest
        // timestamp and the batch that holds it; check that batch says so.
        let Some(&(ts, rel)) = time_index.entries().last() else {
            return Ok(None);
        };
        let target = self.base_offset + i64::from(rel);
        let hint = u64::from(index.lookup(rel));
        match find_batch(&self.file, &self.path, hint, self.size, target) {
            Ok(Some(b)) if b.header.base_offset == target && b.header.max_timestamp == ts => {}
            _ => return Ok(None),
        }
        Ok(Some((index, time_index)))
    }

    /// Rescan the whole file, rebuilding the indexes, `next_offset`, `max_timestamp`
    /// and `size`, which stops at the first invalid byte.
    fn rebuild(&mut self, verify: bool, index_interval: u64) -> Result<ScanEnd, LogError> {
        let file_size = self.size;
        let mut found: Vec<ScannedBatch> = Vec::new();
        let end = self.scan(0, verify, |b, _| {
            found.push(*b);
            Ok(())
        })?;
        self.index = OffsetIndex::default();
        self.time_index = TimeIndex::default();
        self.bytes_since_index = 0;
        self.next_offset = self.base_offset;
        self.max_timestamp = NO_TIMESTAMP;
        self.max_timestamp_offset = self.base_offset;
        self.first_batch_timestamp = None;
        self.size = 0;
        for b in &found {
            self.note_batch(b.position, &b.header, index_interval);
            self.size = b.position + b.header.size() as u64;
        }
        Ok(match end {
            ScanEnd::Clean if self.size != file_size => ScanEnd::Invalid {
                position: self.size,
                reason: "bytes after the last batch".into(),
            },
            other => other,
        })
    }

    /// Walk the batches from `start` to the end; see [`scan`].
    pub fn scan(
        &self,
        start: u64,
        verify: bool,
        f: impl FnMut(&ScannedBatch, Option<&[u8]>) -> Result<(), LogError>,
    ) -> Result<ScanEnd, LogError> {
        scan(
            &self.file,
            &self.path,
            self.base_offset,
            start,
            self.size,
            verify,
            f,
        )
    }

    /// Record a batch written at `position` in the indexes and counters.
    fn note_batch(&mut self, position: u64, header: &BatchHeader, index_interval: u64) {
        let rel = |o: i64| u32::try_from(o - self.base_offset).unwrap_or(u32::MAX);
        if self.first_batch_timestamp.is_none() {
            self.first_batch_timestamp = Some(header.max_timestamp);
        }
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.max_timestamp_offset = header.base_offset;
        }
        if position > 0 && self.bytes_since_index >= index_interval {
            if let Ok(p) = u32::try_from(position) {
                self.index.push(rel(header.base_offset), p);
            }
            self.time_index
                .push(self.max_timestamp, rel(self.max_timestamp_offset));
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += header.size() as u64;
        self.next_offset = header.last_offset() + 1;
    }

    /// Append validated batches whose offsets are already assigned: `slices`, `len`
    /// bytes in all, are written in one go (consumed on the way). `batches` gives each
    /// batch's position within those bytes. On a write error the file is cut back to
    /// its previous size, so a failed append leaves nothing behind.
    pub fn append(
        &mut self,
        slices: &mut [IoSlice<'_>],
        len: u64,
        batches: &[(usize, BatchHeader)],
        index_interval: u64,
    ) -> Result<(), LogError> {
        if let Err(e) = write_all_vectored_at(&self.file, slices, self.size) {
            let _ = self.file.set_len(self.size);
            return Err(LogError::io(&self.path, e));
        }
        let start = self.size;
        for (rel_pos, header) in batches {
            self.note_batch(start + *rel_pos as u64, header, index_interval);
        }
        self.size = start + len;
        Ok(())
    }

    /// Relative offset of `offset` in this segment, for index lookups.
    pub fn relative(&self, offset: i64) -> u32 {
        u32::try_from(offset.saturating_sub(self.base_offset)).unwrap_or(u32::MAX)
    }

    /// The index's starting point for a search for `offset`.
    pub fn position_hint(&self, offset: i64) -> u64 {
        u64::from(self.index.lookup(self.relative(offset)))
    }

    /// The index's starting point for a search for the first timestamp >= `ts`.
    pub fn time_position_hint(&self, ts: i64) -> u64 {
        let rel = self.time_index.lookup(ts);
        u64::from(self.index.lookup(rel))
    }

    /// Cut the segment so that it ends before the first batch whose last offset is at
    /// or past `offset`. Returns the new `next_offset`.
    pub fn truncate_to(&mut self, offset: i64, index_interval: u64) -> Result<i64, LogError> {
        let cut = match find_batch(
            &self.file,
            &self.path,
            self.position_hint(offset),
            self.size,
            offset,
        )? {
            Some(b) => b.position,
            None => self.size,
        };
        self.file
            .set_len(cut)
            .map_err(|e| LogError::io(&self.path, e))?;
        self.size = cut;
        match self.rebuild(false, index_interval)? {
            ScanEnd::Clean => Ok(self.next_offset),
            ScanEnd::Invalid { position, reason } => Err(LogError::Corrupt {
                path: self.path.clone(),
                position,
                offset,
                reason,
            }),
        }
    }

    /// Write the `.index` and `.timeindex` files and return their handles, which the
    /// caller syncs before a recovery point covers this segment (a trusted segment's
    /// indexes are loaded as they are, so they must be as durable as its data).
    pub fn write_indexes(&mut self, dir: &Path) -> Result<Vec<Arc<File>>, LogError> {
        if self.size > 0 {
            let rel = self.relative(self.max_timestamp_offset);
            self.time_index.push(self.max_timestamp, rel);
        }
        let mut files = Vec::with_capacity(2);
        for (suffix, bytes) in [
            (INDEX_SUFFIX, self.index.encode()),
            (TIME_INDEX_SUFFIX, self.time_index.encode()),
        ] {
            let path = file_path(dir, self.base_offset, suffix);
            let write = || -> std::io::Result<File> {
                let mut f = File::create(&path)?;
                std::io::Write::write_all(&mut f, &bytes)?;
                Ok(f)
            };
            files.push(Arc::new(write().map_err(|e| LogError::io(&path, e))?));
        }
        Ok(files)
    }

    /// Remove the segment's files. Readers holding the file handle keep reading the
    /// unlinked data until they drop it.
    pub fn delete_files(&self, dir: &Path) -> Result<(), LogError> {
        for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            remove_if_exists(&file_path(dir, self.base_offset, suffix))?;
        }
        Ok(())
    }
}

/// Walk the batches of a segment file from `start` to `size`, checking framing and
/// that offsets grow from `base_offset`; with `verify`, each batch is read whole and
/// its CRC checked, and `f` gets its bytes. Stops at the first invalid batch and says
/// where; never reads past `size`.
pub fn scan(
    file: &File,
    path: &Path,
    base_offset: i64,
    start: u64,
    size: u64,
    verify: bool,
    mut f: impl FnMut(&ScannedBatch, Option<&[u8]>) -> Result<(), LogError>,
) -> Result<ScanEnd, LogError> {
    let mut reader = ChunkReader::new(file, path, size);
    let mut pos = start;
    let mut prev_last: Option<i64> = None;
    while pos < size {
        let invalid = |reason: String| {
            Ok(ScanEnd::Invalid {
                position: pos,
                reason,
            })
        };
        let remaining = size - pos;
        if remaining < BATCH_HEADER_LEN as u64 {
            return invalid(format!(
                "{remaining} bytes at the end are too short for a batch header"
            ));
        }
        let header = match BatchHeader::parse(reader.get(pos, BATCH_HEADER_LEN)?) {
            Ok(h) => h,
            Err(e) => return invalid(e.to_string()),
        };
        let batch_size = header.size();
        if batch_size > MAX_BATCH_BYTES {
            return invalid(format!("implausible batch length {batch_size}"));
        }
        if batch_size as u64 > remaining {
            return invalid(format!(
                "batch of {batch_size} bytes runs past the end of the file ({remaining} bytes left)"
            ));
        }
        if header.base_offset < base_offset
            || header.last_offset_delta < 0
            || prev_last.is_some_and(|p| header.base_offset <= p)
        {
            return invalid(format!(
                "batch offsets {}..={} do not follow the previous batch",
                header.base_offset,
                header.last_offset()
            ));
        }
        let scanned = ScannedBatch {
            position: pos,
            header,
        };
        if verify {
            let bytes = reader.get(pos, batch_size)?;
            if let Err(e) = batch::verify_crc(bytes) {
                return invalid(e.to_string());
            }
            f(&scanned, Some(bytes))?;
        } else {
            f(&scanned, None)?;
        }
        prev_last = Some(header.last_offset());
        pos += batch_size as u64;
    }
    Ok(ScanEnd::Clean)
}

/// Read the batch header at `position`, if a whole header fits before `limit`.
pub fn read_header(
    file: &File,
    path: &Path,
    position: u64,
    limit: u64,
) -> Result<Option<BatchHeader>, LogError> {
    if position + BATCH_HEADER_LEN as u64 > limit {
        return Ok(None);
    }
    let mut buf = [0u8; BATCH_HEADER_LEN];
    file.read_exact_at(&mut buf, position)
        .map_err(|e| LogError::io(path, e))?;
    Ok(BatchHeader::parse(&buf).ok())
}

/// Walk batch headers from `start` (an index hint) to the first batch whose last
/// offset is at or past `offset`. `None` if no such batch starts before `limit`.
pub fn find_batch(
    file: &File,
    path: &Path,
    start: u64,
    limit: u64,
    offset: i64,
) -> Result<Option<ScannedBatch>, LogError> {
    let mut pos = start;
    while pos < limit {
        let Some(header) = read_header(file, path, pos, limit)? else {
            return Err(LogError::Corrupt {
                path: path.to_path_buf(),
                position: pos,
                offset,
                reason: "unreadable batch header".into(),
            });
        };
        if header.last_offset() >= offset {
            return Ok(Some(ScannedBatch {
                position: pos,
                header,
            }));
        }
        pos += header.size() as u64;
    }
    Ok(None)
}

/// Reads a file in large chunks so a scan costs one system call per MiB rather than
/// one per batch.
struct ChunkReader<'a> {
    file: &'a File,
    path: &'a Path,
    file_size: u64,
    buf: Vec<u8>,
    buf_pos: u64,
}

impl<'a> ChunkReader<'a> {
    fn new(file: &'a File, path: &'a Path, file_size: u64) -> Self {
        ChunkReader {
            file,
            path,
            file_size,
            buf: Vec::new(),
            buf_pos: 0,
        }
    }

    /// `len` bytes at `pos`; the caller has checked they lie within the file.
    fn get(&mut self, pos: u64, len: usize) -> Result<&[u8], LogError> {
        let end = pos + len as u64;
        if pos < self.buf_pos || end > self.buf_pos + self.buf.len() as u64 {
            let want = (len.max(SCAN_CHUNK) as u64).min(self.file_size - pos) as usize;
            self.buf.resize(want, 0);
            self.file
                .read_exact_at(&mut self.buf, pos)
                .map_err(|e| LogError::io(self.path, e))?;
            self.buf_pos = pos;
        }
        let from = (pos - self.buf_pos) as usize;
        Ok(&self.buf[from..from + len])
    }
}

/// Read exactly `len` bytes of `file` at `offset` into a new buffer, without zeroing it
/// first (a fetch reads up to a megabyte; `vec![0; len]` cost a memset of all of it).
pub(crate) fn read_exact_at_uninit(
    file: &File,
    len: usize,
    offset: u64,
) -> std::io::Result<Vec<u8>> {
    let mut buf: Vec<u8> = Vec::with_capacity(len);
    let mut done = 0;
    while done < len {
        let pos = libc::off_t::try_from(offset + done as u64)
            .map_err(|_| std::io::Error::other("file offset beyond off_t"))?;
        // SAFETY: the destination is the vector's spare capacity from `done` on, `len -
        // done` bytes that are allocated and not aliased; `pread` only writes into it.
        let n = unsafe {
            libc::pread(
                file.as_raw_fd(),
                buf.as_mut_ptr().add(done).cast::<libc::c_void>(),
                len - done,
                pos,
            )
        };
        match n {
            -1 => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => done += n as usize,
        }
    }
    // SAFETY: `pread` initialised all `len` bytes above.
    unsafe { buf.set_len(len) };
    Ok(buf)
}

/// `pwritev` until every byte of `slices` is written at `offset` (at most `IOV_MAX`
/// slices per call; short writes resume where they stopped).
fn write_all_vectored_at(
    file: &File,
    mut slices: &mut [IoSlice<'_>],
    mut offset: u64,
) -> std::io::Result<()> {
    const IOV_MAX: usize = 1024;
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        let n = slices.len().min(IOV_MAX);
        let pos = libc::off_t::try_from(offset)
            .map_err(|_| std::io::Error::other("file offset beyond off_t"))?;
        // SAFETY: IoSlice is ABI-compatible with iovec and the n slices are valid for
        // reads for the duration of the call.
        let written = unsafe {
            libc::pwritev(
                file.as_raw_fd(),
                slices.as_ptr().cast::<libc::iovec>(),
                n as libc::c_int,
                pos,
            )
        };
        match written {
            -1 => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            0 => return Err(std::io::ErrorKind::WriteZero.into()),
            w => {
                offset += w as u64;
                IoSlice::advance_slices(&mut slices, w as usize);
            }
        }
    }
    Ok(())
}
