//! The worker: connectors and tasks, converters, transforms, offsets and status, on top
//! of a client of the broker (embedded or remote).
//!
//! - [`convert`]: converters between the Kafka Connect data model and bytes
//!   (`JsonConverter`, `StringConverter`, `ByteArrayConverter`, header converters).
//!
//! What this module must not know: how the log stores bytes or how the Kafka protocol
//! frames them; it talks to topics only through the client layer.

pub mod convert;
