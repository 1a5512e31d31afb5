//! The boundary between the Tributary worker and a connector plugin: everything both sides
//! must agree on, and nothing else.
//!
//! A plugin is a shared library (a Rust `cdylib` built with `tributary-plugin-sdk`). The
//! worker `dlopen`s it and talks to it only through what this crate defines:
//!
//! - [`ffi`]: the exported symbols (all prefixed `tributary_plugin_`), [`ABI_VERSION`], the
//!   `#[repr(C)]` function table [`PluginApi`], connector and transform descriptors, status codes, the
//!   borrowed-buffer / writer-callback types through which bytes cross, and the host's
//!   callback tables ([`ConnectorHostApi`], [`SourceTaskHostApi`], [`SinkTaskHostApi`]) behind
//!   Kafka Connect's connector and task contexts.
//! - [`wire`]: the byte encoding of everything structured that crosses (headers, source positions,
//!   config maps, offsets, config definitions, validation results). Both sides encode and
//!   decode with this one implementation; its layout is part of [`ABI_VERSION`].
//! - [`data`]: the Kafka Connect data model (schemas, values, logical types).
//! - [`record`]: source and sink records and the encodings of their parts.
//! - [`view`]: batches of records lent across the boundary as `#[repr(C)]` views.
//! - [`config`]: the description of a connector's config keys and of a validation result.
//!
//! What this crate is not: it has no dependencies (no runtime, no JSON library), no author
//! API (that is the SDK's) and no loading logic (that is the worker's `plugin` module).
//! No Rust-ABI type crosses the boundary: only `#[repr(C)]` structs, integers, function
//! pointers and byte buffers encoded by [`wire`], so a plugin built by another toolchain
//! version still speaks the same protocol.

pub mod config;
pub mod data;
pub mod ffi;
pub mod record;
pub mod view;
pub mod wire;

pub use ffi::*;
