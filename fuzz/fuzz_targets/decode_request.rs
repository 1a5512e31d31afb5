//! Feeds arbitrary bytes to the request decoder as one frame (what follows the length prefix).
//!
//! The decoder must never panic, abort or allocate out of proportion to the input (libFuzzer's
//! `-rss_limit_mb` and `-malloc_limit_mb` catch the latter). Beyond that, two properties:
//! whatever decodes under the advertised table decodes identically under the crate's full
//! version range, and a decoded request re-encodes to something that decodes to the same.
//! "The same" is compared as encoded bytes, not with `==`: a float field can hold NaN, which
//! is not equal to itself (the harness's own false alarm, found by this target).
#![no_main]

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::encode_request_header_into_buffer;
use libfuzzer_sys::fuzz_target;
use tributary::protocol::codec::{
    DecodedRequest, Limits, decode_request, frame_length, supported_versions,
};

/// Every version the crate knows: reaches every generated decoder, not only the advertised ones.
fn crate_versions(api_key: ApiKey) -> Option<(i16, i16)> {
    let range = api_key.valid_versions();
    Some((range.min, range.max))
}

/// The request's header and body as the crate writes them.
fn encoded(request: &DecodedRequest) -> Bytes {
    let mut buf = BytesMut::new();
    encode_request_header_into_buffer(&mut buf, &request.header).expect("re-encode header");
    request
        .body
        .encode(&mut buf, request.api_version)
        .expect("re-encode body");
    buf.freeze()
}

fuzz_target!(|data: &[u8]| {
    if let Some(prefix) = data.get(..4) {
        let prefix: [u8; 4] = prefix.try_into().expect("4 bytes");
        let _ = frame_length(prefix, &Limits::default());
    }

    let wide = decode_request(Bytes::copy_from_slice(data), &crate_versions);
    let narrow = decode_request(Bytes::copy_from_slice(data), &supported_versions);
    if let Ok(decoded) = &narrow {
        let wide = wide.as_ref().expect("what the advertised table decodes, the crate's does");
        assert_eq!(encoded(decoded), encoded(wide));
    }

    if let Ok(decoded) = wide {
        let bytes = encoded(&decoded);
        let again = decode_request(bytes.clone(), &crate_versions).expect("re-encoded decodes");
        assert_eq!(encoded(&again), bytes);
    }
});
