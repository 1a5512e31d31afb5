//! Integration tests: the real binary and the real files.
//!
//! One test crate (so one link and one binary) holding every integration test:
//! - [`log_model`]: proptest runs of random operations on a `PartitionLog` against an
//!   in-memory model of what it must hold;
//! - [`crash`]: SIGKILL the real binary while it appends, then check recovery against
//!   its acknowledgements, also with torn tails as a power loss leaves them;
//! - [`hostile`]: malformed frames, hostile lengths, corrupt batches and bad names sent
//!   to a running broker, which answers with error codes or closes the connection and
//!   keeps serving;
//! - [`recovery`]: reopening after index files were lost or cut short.
//!
//! [`support`] is the shared harness.

mod cli;
mod clients;
mod crash;
mod distributed;
mod hostile;
mod http;
mod jdbc;
mod log_model;
mod plugin_transforms;
mod recovery;
mod remote_client;
mod remote_worker;
mod rest;
mod s3;
mod standalone;
mod support;
mod transforms;
mod worker;
