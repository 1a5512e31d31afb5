//! Kafka's compression codecs for RecordBatch v2 payloads: gzip, snappy, lz4 and zstd,
//! selected by bits 0-2 of a batch's attributes.
//!
//! What it is: byte-level compress/decompress in the exact wire formats Kafka clients
//! write and expect (gzip stream, Xerial-framed snappy, LZ4 frame, zstd frame), with a
//! hard cap on decompressed size so a hostile batch cannot balloon broker memory.
//!
//! What it isn't: it knows nothing about batches or records ([`super::batch`] decides
//! which bytes to compress), and it does not expose compression levels; it uses the
//! same defaults as the Java producer where the codec crates allow.

use std::fmt;
use std::io::{self, Read, Write};

/// A RecordBatch compression codec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

/// Errors from compressing or decompressing a batch payload.
#[derive(Debug, thiserror::Error)]
pub enum CompressionError {
    #[error("unknown compression codec id {0}")]
    UnknownCodec(i16),
    #[error("corrupt {codec} data: {detail}")]
    Corrupt { codec: Compression, detail: String },
    #[error("{codec} data decompresses to more than the {limit} byte limit")]
    OutputTooLarge { codec: Compression, limit: usize },
    #[error("{codec} compression failed: {detail}")]
    Compress { codec: Compression, detail: String },
}

/// Bits 0-2 of the batch attributes hold the codec id.
const CODEC_MASK: i16 = 0x07;

/// gzip level the Java producer uses by default (`Deflater.DEFAULT_COMPRESSION` = 6).
const GZIP_LEVEL: u32 = 6;
/// zstd level the Java producer uses by default.
const ZSTD_LEVEL: i32 = 3;

/// Header snappy-java's `SnappyOutputStream` writes: magic, then version and
/// minimum-compatible version as big-endian i32s (both 1).
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_LEN: usize = 16;
/// Block size snappy-java uses by default; keeping it means readers that size buffers
/// from it (older clients) never see a bigger block from us.
const XERIAL_BLOCK: usize = 32 * 1024;

impl Compression {
    /// The codec named by bits 0-2 of a batch's attributes; ids 5-7 are errors.
    pub fn from_attributes(attributes: i16) -> Result<Self, CompressionError> {
        match attributes & CODEC_MASK {
            0 => Ok(Self::None),
            1 => Ok(Self::Gzip),
            2 => Ok(Self::Snappy),
            3 => Ok(Self::Lz4),
            4 => Ok(Self::Zstd),
            other => Err(CompressionError::UnknownCodec(other)),
        }
    }

    /// The codec id as stored in batch attributes bits 0-2.
    pub fn id(self) -> i16 {
        match self {
            Self::None => 0,
            Self::Gzip => 1,
            Self::Snappy => 2,
            Self::Lz4 => 3,
            Self::Zstd => 4,
        }
    }

    /// Kafka's `compression.type` name for the codec.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }

    /// Parse a `compression.type` codec name. `producer` (a topic-level value meaning
    /// "keep what the producer sent") is not a codec and yields `None`.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Self::None),
            "gzip" => Some(Self::Gzip),
            "snappy" => Some(Self::Snappy),
            "lz4" => Some(Self::Lz4),
            "zstd" => Some(Self::Zstd),
            _ => None,
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Compress `input` with `codec`, appending the result to `out`.
pub fn compress(
    codec: Compression,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), CompressionError> {
    let fail = |e: &dyn fmt::Display| CompressionError::Compress {
        codec,
        detail: e.to_string(),
    };
    match codec {
        Compression::None => out.extend_from_slice(input),
        Compression::Gzip => {
            let mut enc =
                flate2::write::GzEncoder::new(&mut *out, flate2::Compression::new(GZIP_LEVEL));
            enc.write_all(input).map_err(|e| fail(&e))?;
            enc.finish().map_err(|e| fail(&e))?;
        }
        Compression::Snappy => compress_xerial(input, out).map_err(|e| fail(&e))?,
        Compression::Lz4 => {
            // Independent blocks and no content checksum/size: the frame shape Kafka's
            // own LZ4 stream writes, which every Kafka client can read.
            let info = lz4_flex::frame::FrameInfo::new()
                .block_mode(lz4_flex::frame::BlockMode::Independent)
                .block_size(lz4_flex::frame::BlockSize::Max64KB);
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, &mut *out);
            enc.write_all(input).map_err(|e| fail(&e))?;
            enc.finish().map_err(|e| fail(&e))?;
        }
        Compression::Zstd => {
            let mut enc =
                zstd::stream::write::Encoder::new(&mut *out, ZSTD_LEVEL).map_err(|e| fail(&e))?;
            // Recording the content size lets decoders size their output exactly.
            enc.set_pledged_src_size(Some(input.len() as u64))
                .map_err(|e| fail(&e))?;
            enc.include_contentsize(true).map_err(|e| fail(&e))?;
            enc.write_all(input).map_err(|e| fail(&e))?;
            enc.finish().map_err(|e| fail(&e))?;
        }
    }
    Ok(())
}

/// Decompress `input` with `codec`, appending to `out`, refusing to produce more than
/// `max_output` bytes (a decompression bomb guard). On error `out` may hold a partial
/// result past its original length.
pub fn decompress(
    codec: Compression,
    input: &[u8],
    max_output: usize,
    out: &mut Vec<u8>,
) -> Result<(), CompressionError> {
    match codec {
        Compression::None => {
            if input.len() > max_output {
                return Err(CompressionError::OutputTooLarge {
                    codec,
                    limit: max_output,
                });
            }
            out.extend_from_slice(input);
            Ok(())
        }
        Compression::Gzip => {
            // Multi-member like Java's GZIPInputStream, which accepts concatenated members.
            read_capped(
                codec,
                flate2::bufread::MultiGzDecoder::new(input),
                max_output,
                out,
            )
        }
        Compression::Snappy => {
            if input.starts_with(&XERIAL_MAGIC) {
                decompress_xerial(input, max_output, out)
            } else {
                // Some clients (librdkafka, kafka-python) send a bare snappy block.
                decompress_snappy_block(input, max_output, max_output, out)
            }
        }
        Compression::Lz4 => read_capped(
            codec,
            lz4_flex::frame::FrameDecoder::new(input),
            max_output,
            out,
        ),
        Compression::Zstd => {
            let dec =
                zstd::stream::read::Decoder::with_buffer(input).map_err(|e| corrupt(codec, &e))?;
            read_capped(codec, dec, max_output, out)
        }
    }
}

#[cold]
fn corrupt(codec: Compression, detail: &dyn fmt::Display) -> CompressionError {
    CompressionError::Corrupt {
        codec,
        detail: detail.to_string(),
    }
}

/// Drain a streaming decoder into `out`, stopping one byte past the cap so an
/// oversized stream is detected without decoding (or buffering) all of it. This is
/// what makes the cap independent of any size the stream claims for itself.
fn read_capped<R: Read>(
    codec: Compression,
    reader: R,
    max_output: usize,
    out: &mut Vec<u8>,
) -> Result<(), CompressionError> {
    let start = out.len();
    let limit = u64::try_from(max_output)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut capped = reader.take(limit);
    loop {
        match capped.read_to_end(out) {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(corrupt(codec, &e)),
        }
    }
    if out.len() - start > max_output {
        return Err(CompressionError::OutputTooLarge {
            codec,
            limit: max_output,
        });
    }
    Ok(())
}

fn compress_xerial(input: &[u8], out: &mut Vec<u8>) -> Result<(), snap::Error> {
    out.reserve(XERIAL_HEADER_LEN + snap::raw::max_compress_len(input.len().min(XERIAL_BLOCK)) + 4);
    out.extend_from_slice(&XERIAL_MAGIC);
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes());
    let mut enc = snap::raw::Encoder::new();
    for chunk in input.chunks(XERIAL_BLOCK) {
        let len_at = out.len();
        out.extend_from_slice(&[0; 4]);
        let data_at = out.len();
        out.resize(data_at + snap::raw::max_compress_len(chunk.len()), 0);
        let written = enc.compress(chunk, &mut out[data_at..])?;
        out.truncate(data_at + written);
        // A block is at most 32 KiB, so its compressed length always fits an i32.
        let len = i32::try_from(written).unwrap_or(i32::MAX);
        out[len_at..data_at].copy_from_slice(&len.to_be_bytes());
    }
    Ok(())
}

fn decompress_xerial(
    input: &[u8],
    max_output: usize,
    out: &mut Vec<u8>,
) -> Result<(), CompressionError> {
    let codec = Compression::Snappy;
    let start = out.len();
    let mut rest = input;
    while !rest.is_empty() {
        // snappy-java starts a new header when streams are concatenated; skip it.
        if rest.starts_with(&XERIAL_MAGIC) {
            if rest.len() < XERIAL_HEADER_LEN {
                return Err(corrupt(codec, &"xerial header is truncated"));
            }
            rest = &rest[XERIAL_HEADER_LEN..];
            continue;
        }
        let Some((len_bytes, after)) = rest.split_first_chunk::<4>() else {
            return Err(corrupt(codec, &"xerial block length is truncated"));
        };
        let len = i32::from_be_bytes(*len_bytes);
        let Some(block) = usize::try_from(len).ok().and_then(|n| after.get(..n)) else {
            return Err(corrupt(
                codec,
                &format_args!(
                    "xerial block length {len} exceeds the remaining {} bytes",
                    after.len()
                ),
            ));
        };
        let room = max_output.saturating_sub(out.len() - start);
        decompress_snappy_block(block, room, max_output, out)?;
        rest = &after[block.len()..];
    }
    Ok(())
}

/// Decompress one raw snappy block into `out` if it fits in `room` bytes; `limit` is
/// the caller's overall cap, reported on failure.
fn decompress_snappy_block(
    block: &[u8],
    room: usize,
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<(), CompressionError> {
    let codec = Compression::Snappy;
    let len = snap::raw::decompress_len(block).map_err(|e| corrupt(codec, &e))?;
    // The claimed length is checked before allocating, so a tiny block claiming
    // gigabytes costs nothing.
    if len > room {
        return Err(CompressionError::OutputTooLarge { codec, limit });
    }
    let at = out.len();
    out.resize(at + len, 0);
    match snap::raw::Decoder::new().decompress(block, &mut out[at..]) {
        Ok(n) if n == len => Ok(()),
        Ok(n) => {
            out.truncate(at);
            Err(corrupt(
                codec,
                &format_args!("block decompressed to {n} bytes, header said {len}"),
            ))
        }
        Err(e) => {
            out.truncate(at);
            Err(corrupt(codec, &e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    fn sample(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8 ^ (i / 1000) as u8).collect()
    }

    #[test]
    fn ids_names_and_attributes_agree() {
        for c in ALL {
            assert_eq!(Compression::from_attributes(c.id()).unwrap(), c);
            // Higher attribute bits must not leak into the codec.
            assert_eq!(Compression::from_attributes(c.id() | 0x78).unwrap(), c);
            assert_eq!(Compression::from_name(c.name()), Some(c));
        }
        for bad in 5..8 {
            assert!(
                matches!(Compression::from_attributes(bad), Err(CompressionError::UnknownCodec(id)) if id == bad)
            );
        }
        assert_eq!(Compression::from_name("producer"), None);
        assert_eq!(Compression::from_name("GZIP"), None);
    }

    #[test]
    fn round_trip_every_codec() {
        for c in ALL {
            for n in [
                0,
                1,
                100,
                XERIAL_BLOCK - 1,
                XERIAL_BLOCK,
                XERIAL_BLOCK + 1,
                200_000,
            ] {
                let input = sample(n);
                let mut z = b"prefix".to_vec();
                compress(c, &input, &mut z).unwrap();
                assert_eq!(&z[..6], b"prefix");
                let mut back = b"keep".to_vec();
                decompress(c, &z[6..], n, &mut back).unwrap();
                assert_eq!(&back[..4], b"keep");
                assert_eq!(&back[4..], &input[..], "{c} n={n}");
            }
        }
    }

    #[test]
    fn over_cap_is_an_error_for_every_codec() {
        let input = vec![7u8; 100_000];
        for c in ALL {
            let mut z = Vec::new();
            compress(c, &input, &mut z).unwrap();
            let mut out = Vec::new();
            let err = decompress(c, &z, input.len() - 1, &mut out).unwrap_err();
            assert!(
                matches!(err, CompressionError::OutputTooLarge { codec, limit } if codec == c && limit == 99_999),
                "{c}: {err}"
            );
            assert!(out.len() <= input.len(), "{c} buffered past the cap");
        }
    }

    #[test]
    fn snappy_writes_xerial_framing() {
        let input = sample(XERIAL_BLOCK * 2 + 5);
        let mut z = Vec::new();
        compress(Compression::Snappy, &input, &mut z).unwrap();
        assert_eq!(&z[..8], &XERIAL_MAGIC);
        assert_eq!(&z[8..16], &[0, 0, 0, 1, 0, 0, 0, 1]);
        // Walk the blocks by hand: three length-prefixed raw snappy blocks.
        let mut rest = &z[16..];
        let mut blocks = 0;
        let mut plain = Vec::new();
        while !rest.is_empty() {
            let len = i32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            plain.extend(
                snap::raw::Decoder::new()
                    .decompress_vec(&rest[4..4 + len])
                    .unwrap(),
            );
            rest = &rest[4 + len..];
            blocks += 1;
        }
        assert_eq!(blocks, 3);
        assert_eq!(plain, input);
    }

    #[test]
    fn snappy_accepts_raw_and_concatenated_xerial() {
        let input = sample(5000);
        let raw = snap::raw::Encoder::new().compress_vec(&input).unwrap();
        let mut out = Vec::new();
        decompress(Compression::Snappy, &raw, input.len(), &mut out).unwrap();
        assert_eq!(out, input);

        let mut twice = Vec::new();
        compress(Compression::Snappy, &input, &mut twice).unwrap();
        let once = twice.clone();
        twice.extend_from_slice(&once);
        let mut out = Vec::new();
        decompress(Compression::Snappy, &twice, input.len() * 2, &mut out).unwrap();
        assert_eq!(out, [input.clone(), input].concat());
    }

    #[test]
    fn snappy_bomb_is_refused_before_allocating() {
        // A raw block whose varint preamble claims ~4 GiB.
        let claim = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
        let mut out = Vec::new();
        let err = decompress(Compression::Snappy, &claim, 1 << 20, &mut out).unwrap_err();
        assert!(matches!(
            err,
            CompressionError::OutputTooLarge { .. } | CompressionError::Corrupt { .. }
        ));
        assert!(out.capacity() < 1 << 20);
    }

    #[test]
    fn hostile_xerial_lengths_are_errors() {
        for len in [-1i32, i32::MIN, i32::MAX, 1000] {
            let mut z = XERIAL_MAGIC.to_vec();
            z.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
            z.extend_from_slice(&len.to_be_bytes());
            z.extend_from_slice(&[1, 2, 3]);
            let err = decompress(Compression::Snappy, &z, 1 << 20, &mut Vec::new()).unwrap_err();
            assert!(
                matches!(
                    err,
                    CompressionError::Corrupt {
                        codec: Compression::Snappy,
                        ..
                    }
                ),
                "{err}"
            );
        }
        let short = XERIAL_MAGIC.to_vec();
        assert!(decompress(Compression::Snappy, &short, 100, &mut Vec::new()).is_err());
    }

    #[test]
    fn garbage_is_corrupt_and_names_the_codec() {
        let junk = b"this is not compressed data at all, not even a little";
        for c in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let err = decompress(c, junk, 1 << 20, &mut Vec::new()).unwrap_err();
            assert!(err.to_string().contains(c.name()), "{err}");
        }
    }

    proptest! {
        #[test]
        fn random_input_never_panics(codec in 0usize..5, data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decompress(ALL[codec], &data, 1 << 16, &mut Vec::new());
        }

        #[test]
        fn mutated_streams_never_panic(codec in 1usize..5, seed in proptest::collection::vec(any::<u8>(), 0..2000),
                                       flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
            let mut z = Vec::new();
            compress(ALL[codec], &seed, &mut z).unwrap();
            for (at, b) in flips {
                let i = at % z.len();
                z[i] ^= b;
            }
            let _ = decompress(ALL[codec], &z, 1 << 16, &mut Vec::new());
        }

        #[test]
        fn round_trip_random(codec in 0usize..5, data in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let mut z = Vec::new();
            compress(ALL[codec], &data, &mut z).unwrap();
            let mut back = Vec::new();
            decompress(ALL[codec], &z, data.len(), &mut back).unwrap();
            prop_assert_eq!(back, data);
        }
    }
}
