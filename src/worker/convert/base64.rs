//! Standard base64 (RFC 4648 alphabet, `=` padding, no line breaks): how Jackson, and so
//! Kafka's `JsonConverter` and `Values`, write bytes.
//!
//! Decoding is a little more lenient than encoding: padding may be left off (a common
//! hand-written form), but the characters of the URL-safe alphabet, whitespace and
//! anything after padding are refused.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// 0..=63 for a base64 character, `INVALID` otherwise.
const INVALID: u8 = 0xff;
const DECODE: [u8; 256] = {
    let mut t = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        t[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// The encoded length of `n` bytes.
pub(crate) fn encoded_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Append the base64 form of `bytes` to `out`.
pub(crate) fn encode_into(bytes: &[u8], out: &mut Vec<u8>) {
    out.reserve(encoded_len(bytes.len()));
    let mut chunks = bytes.chunks_exact(3);
    for c in &mut chunks {
        let n = (u32::from(c[0]) << 16) | (u32::from(c[1]) << 8) | u32::from(c[2]);
        out.extend_from_slice(&[
            ALPHABET[(n >> 18) as usize & 63],
            ALPHABET[(n >> 12) as usize & 63],
            ALPHABET[(n >> 6) as usize & 63],
            ALPHABET[n as usize & 63],
        ]);
    }
    match *chunks.remainder() {
        [a] => {
            let n = u32::from(a) << 16;
            out.extend_from_slice(&[
                ALPHABET[(n >> 18) as usize & 63],
                ALPHABET[(n >> 12) as usize & 63],
                b'=',
                b'=',
            ]);
        }
        [a, b] => {
            let n = (u32::from(a) << 16) | (u32::from(b) << 8);
            out.extend_from_slice(&[
                ALPHABET[(n >> 18) as usize & 63],
                ALPHABET[(n >> 12) as usize & 63],
                ALPHABET[(n >> 6) as usize & 63],
                b'=',
            ]);
        }
        _ => {}
    }
}

/// The base64 form of `bytes` as a string.
#[cfg(test)]
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(encoded_len(bytes.len()));
    encode_into(bytes, &mut out);
    // Only ASCII was written.
    String::from_utf8(out).unwrap_or_default()
}

/// Decode base64 text; the error says what is wrong and where.
pub(crate) fn decode(text: &[u8]) -> Result<Vec<u8>, String> {
    // Strip the padding: at most two `=`, only at the end, only where a group is short.
    let unpadded = match text {
        [rest @ .., b'=', b'='] => {
            if !text.len().is_multiple_of(4) {
                return Err("misplaced '=' padding".into());
            }
            rest
        }
        [rest @ .., b'='] => {
            if !text.len().is_multiple_of(4) {
                return Err("misplaced '=' padding".into());
            }
            rest
        }
        _ => text,
    };
    if unpadded.len() % 4 == 1 {
        return Err(format!(
            "{} characters cannot be base64 (a final group of one character)",
            text.len()
        ));
    }
    let mut out = Vec::with_capacity(unpadded.len() / 4 * 3 + 2);
    let sextet = |i: usize| -> Result<u32, String> {
        let c = unpadded[i];
        match DECODE[c as usize] {
            INVALID => Err(format!(
                "{:?} at position {i} is not a base64 character",
                char::from(c)
            )),
            v => Ok(u32::from(v)),
        }
    };
    let full = unpadded.len() / 4 * 4;
    let mut i = 0;
    while i < full {
        let n =
            (sextet(i)? << 18) | (sextet(i + 1)? << 12) | (sextet(i + 2)? << 6) | sextet(i + 3)?;
        out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]);
        i += 4;
    }
    match unpadded.len() - full {
        0 => {}
        2 => {
            let n = (sextet(i)? << 18) | (sextet(i + 1)? << 12);
            out.push((n >> 16) as u8);
        }
        3 => {
            let n = (sextet(i)? << 18) | (sextet(i + 1)? << 12) | (sextet(i + 2)? << 6);
            out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8]);
        }
        _ => unreachable!("a remainder of 1 was refused above"),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc4648_vectors() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(encode(plain.as_bytes()), coded);
            assert_eq!(decode(coded.as_bytes()).unwrap(), plain.as_bytes());
        }
        assert_eq!(encode(&[0x30, 0x39]), "MDk=");
        assert_eq!(encode(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn unpadded_is_accepted_and_garbage_refused() {
        assert_eq!(decode(b"Zm8").unwrap(), b"fo");
        assert_eq!(decode(b"Zg").unwrap(), b"f");
        assert!(decode(b"Z").unwrap_err().contains("final group"));
        assert!(decode(b"Zm9v-A==").unwrap_err().contains("'-'"));
        assert!(decode(b"Zg=").is_err());
        assert!(decode(b"=Zg=").is_err());
        assert!(decode(b"Zm 9v").is_err());
    }

    proptest! {
        #[test]
        fn round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let coded = encode(&bytes);
            prop_assert_eq!(coded.len(), encoded_len(bytes.len()));
            prop_assert_eq!(decode(coded.as_bytes()).unwrap(), bytes);
        }
    }
}
