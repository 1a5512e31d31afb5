//! Converters: records' keys, values and headers between the Kafka Connect data model
//! and bytes.
