//! One plugin library: copied to a content-addressed path, loaded, version-checked, and
//! described.
//!
//! Loading order, which matters:
//!
//! 1. Hash the file's bytes (xxh3-128) and copy it to `<cache>/<stem>-<hash>.so` (through a
//!    temporary file and a rename, so a half-written copy is never loaded). A file replaced
//!    on `plugin.path` gets a new hash, hence a new path, and `dlopen` loads it as a new
//!    library instead of answering the old handle. The hash finds changes; it is not a
//!    security boundary (whoever can write `plugin.path` can run code in the worker).
//! 2. `dlopen` the copy.
//! 3. Call `tributary_plugin_abi_version` and refuse any other version than ours, before any
//!    other call: the rest of the ABI may differ.
//! 4. Call `tributary_plugin_entry` and copy the descriptors into owned values.
//!
//! The library is then leaked: it stays mapped for the life of the process.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use tributary_plugin_abi::config::{ConfigKeyInfo, decode_config_keys};
use tributary_plugin_abi::ffi::{
    ABI_VERSION, AbiVersionFn, ConnectorKind, EntryFn, PluginApi, SYMBOL_ABI_VERSION, SYMBOL_ENTRY,
    Status, Str, TransformKind, Writer,
};

use super::PluginError;

/// Source or sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConnectorType {
    Source,
    Sink,
}

impl fmt::Display for ConnectorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnectorType::Source => "source",
            ConnectorType::Sink => "sink",
        })
    }
}

/// A connector as a plugin describes it.
#[derive(Debug, Clone)]
pub struct ConnectorInfo {
    /// The full name (`connector.class`).
    pub name: String,
    pub kind: ConnectorType,
    pub version: String,
    /// Extra aliases the plugin declared (the simple and pruned names are derived by the
    /// registry).
    pub declared_aliases: Vec<String>,
    pub config_def: Vec<ConfigKeyInfo>,
    /// Its position in the plugin's table.
    pub(crate) index: u32,
}

/// Transformation or predicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TransformType {
    Transformation,
    Predicate,
}

impl fmt::Display for TransformType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransformType::Transformation => "transformation",
            TransformType::Predicate => "predicate",
        })
    }
}

/// A transformation or predicate as a plugin describes it.
#[derive(Debug, Clone)]
pub struct TransformInfo {
    /// The full name (`transforms.NAME.type`).
    pub name: String,
    pub kind: TransformType,
    pub version: String,
    pub declared_aliases: Vec<String>,
    pub config_def: Vec<ConfigKeyInfo>,
    /// Its position in the plugin's transform table.
    pub(crate) index: u32,
}

/// A loaded plugin library.
pub struct PluginLibrary {
    file: PathBuf,
    loaded_from: PathBuf,
    content_hash: u128,
    sdk_version: String,
    connectors: Vec<ConnectorInfo>,
    transforms: Vec<TransformInfo>,
    api: &'static PluginApi,
}

// SAFETY: the function table is immutable and valid for the life of the process (the
// library is never unloaded); its functions may be called from any thread (the ABI's
// contract: one thread at a time per handle, which the instance types enforce with
// `&mut self`).
unsafe impl Send for PluginLibrary {}
// SAFETY: as above: shared access only reads the immutable table.
unsafe impl Sync for PluginLibrary {}

impl fmt::Debug for PluginLibrary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginLibrary")
            .field("file", &self.file)
            .field("loaded_from", &self.loaded_from)
            .field("content_hash", &format_args!("{:032x}", self.content_hash))
            .field("sdk_version", &self.sdk_version)
            .field("connectors", &self.connectors.len())
            .finish()
    }
}

/// The content hash of a library file.
pub fn content_hash(bytes: &[u8]) -> u128 {
    twox_hash::XxHash3_128::oneshot(bytes)
}

impl PluginLibrary {
    /// Load a library file (see the module docs for the order of steps).
    pub fn load(file: &Path, cache_dir: &Path) -> Result<PluginLibrary, PluginError> {
        let bytes = fs::read(file).map_err(|e| PluginError::NotLoadable {
            file: file.to_path_buf(),
            reason: format!("cannot read it: {e}"),
        })?;
        // Refuse what is plainly not a shared library before copying it into the cache.
        if cfg!(target_os = "linux") && !bytes.starts_with(b"\x7fELF") {
            return Err(PluginError::NotLoadable {
                file: file.to_path_buf(),
                reason: "not an ELF file".into(),
            });
        }
        let hash = content_hash(&bytes);
        let copy = cache_copy(file, &bytes, hash, cache_dir)?;
        // SAFETY: loading a library runs its initialisers; a file on plugin.path is trusted
        // code by definition (as a jar on Kafka Connect's plugin.path is).
        let lib =
            unsafe { libloading::Library::new(&copy) }.map_err(|e| PluginError::NotLoadable {
                file: file.to_path_buf(),
                reason: e.to_string(),
            })?;
        // Never unloaded: see the module docs of `plugin`.
        let lib: &'static libloading::Library = Box::leak(Box::new(lib));

        // 1. The ABI version, before anything else.
        // SAFETY: the symbol's type is fixed by every ABI version.
        let version_fn = unsafe { lib.get::<AbiVersionFn>(SYMBOL_ABI_VERSION.as_bytes()) }
            .map_err(|_| PluginError::NotAPlugin {
                file: file.to_path_buf(),
                symbol: SYMBOL_ABI_VERSION,
            })?;
        // SAFETY: takes nothing, returns an integer.
        let found = unsafe { version_fn() };
        if found != ABI_VERSION {
            return Err(PluginError::AbiMismatch {
                file: file.to_path_buf(),
                found,
                expected: ABI_VERSION,
            });
        }

        // 2. The entry point and the function table.
        // SAFETY: the version matched, so the symbol has this ABI's type.
        let entry = unsafe { lib.get::<EntryFn>(SYMBOL_ENTRY.as_bytes()) }.map_err(|_| {
            PluginError::NotAPlugin {
                file: file.to_path_buf(),
                symbol: SYMBOL_ENTRY,
            }
        })?;
        let mut api_ptr: *const PluginApi = std::ptr::null();
        let mut err = Vec::new();
        // SAFETY: `api_ptr` is writable and the writer appends to `err` for this call.
        let status = unsafe { entry(&mut api_ptr, Writer::for_vec(&mut err)) };
        if status != Status::OK {
            return Err(PluginError::Entry {
                file: file.to_path_buf(),
                message: String::from_utf8_lossy(&err).into_owned(),
            });
        }
        let bad = |reason: String| PluginError::BadDescriptor {
            file: file.to_path_buf(),
            reason,
        };
        if api_ptr.is_null() {
            return Err(bad("the entry point returned no function table".into()));
        }
        // SAFETY: non-null, and valid while the library is loaded, which is forever.
        let api: &'static PluginApi = unsafe { &*api_ptr };
        if api.abi_version != ABI_VERSION {
            return Err(PluginError::AbiMismatch {
                file: file.to_path_buf(),
                found: api.abi_version,
                expected: ABI_VERSION,
            });
        }
        // SAFETY: descriptor memory is owned by the plugin and valid while it is loaded.
        let sdk_version = unsafe { read_str(api.sdk_version) }.map_err(bad)?;
        // SAFETY: as above.
        let connectors = unsafe { read_connectors(api) }.map_err(bad)?;
        // SAFETY: as above.
        let transforms = unsafe { read_transforms(api) }.map_err(bad)?;
        Ok(PluginLibrary {
            file: file.to_path_buf(),
            loaded_from: copy,
            content_hash: hash,
            sdk_version,
            connectors,
            transforms,
            api,
        })
    }

    /// The file this library was first found at.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The content-addressed copy that was loaded.
    pub fn loaded_from(&self) -> &Path {
        &self.loaded_from
    }

    pub fn content_hash(&self) -> u128 {
        self.content_hash
    }

    pub fn sdk_version(&self) -> &str {
        &self.sdk_version
    }

    pub fn connectors(&self) -> &[ConnectorInfo] {
        &self.connectors
    }

    /// The transformations and predicates it exports.
    pub fn transforms(&self) -> &[TransformInfo] {
        &self.transforms
    }

    pub(crate) fn api(&self) -> &'static PluginApi {
        self.api
    }
}

/// Copy `bytes` (the content of `file`) to its content-addressed path, unless a file with
/// that content is already there.
fn cache_copy(
    file: &Path,
    bytes: &[u8],
    hash: u128,
    cache_dir: &Path,
) -> Result<PathBuf, PluginError> {
    let cache_err = |source| PluginError::Cache {
        file: file.to_path_buf(),
        cache: cache_dir.to_path_buf(),
        source,
    };
    fs::create_dir_all(cache_dir).map_err(cache_err)?;
    let stem: String = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let ext = file
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_else(|| "so".into());
    let dest = cache_dir.join(format!("{stem}-{hash:032x}.{ext}"));
    // Reuse a copy only if it really has this content (another process may have left a
    // different file there, or a crash a short one).
    if let Ok(existing) = fs::read(&dest)
        && content_hash(&existing) == hash
    {
        return Ok(dest);
    }
    let tmp = cache_dir.join(format!(".{stem}-{hash:032x}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, &dest)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        cache_err(e)
    })?;
    Ok(dest)
}

/// # Safety
///
/// `s` must point to `len` bytes valid for the read.
unsafe fn read_str(s: Str) -> Result<String, String> {
    // SAFETY: guaranteed by the caller.
    let bytes = unsafe { s.as_slice() };
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| "a name or version is not UTF-8".to_string())
}

/// A list the plugin describes by pointer and length (`what` names it in errors).
///
/// # Safety
///
/// A non-null `ptr` must point to `len` values valid while the library is loaded.
unsafe fn plugin_list<'a, T>(ptr: *const T, len: usize, what: &str) -> Result<&'a [T], String> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(format!("null {what} list"));
    }
    if len > u32::MAX as usize {
        return Err(format!("too many {what}s"));
    }
    // SAFETY: non-null, length given by the plugin, valid while it is loaded.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A descriptor's extra names.
///
/// # Safety
///
/// As for [`plugin_list`], and each name as for [`read_str`].
unsafe fn read_aliases(ptr: *const Str, len: usize, owner: &str) -> Result<Vec<String>, String> {
    // SAFETY: guaranteed by the caller.
    let aliases = unsafe { plugin_list(ptr, len, &format!("{owner} alias")) }?;
    aliases
        .iter()
        // SAFETY: guaranteed by the caller.
        .map(|a| unsafe { read_str(*a) })
        .collect()
}

/// # Safety
///
/// `api` must be a valid table whose descriptor pointers are valid for reads.
unsafe fn read_connectors(api: &PluginApi) -> Result<Vec<ConnectorInfo>, String> {
    // SAFETY: guaranteed by the caller.
    let descs = unsafe { plugin_list(api.connectors, api.connectors_len, "connector") }?;
    let mut out = Vec::with_capacity(descs.len());
    for (i, d) in descs.iter().enumerate() {
        // SAFETY: as above.
        let name = unsafe { read_str(d.name) }?;
        if name.is_empty() {
            return Err(format!("connector {i} has no name"));
        }
        let kind = match d.kind {
            ConnectorKind::SOURCE => ConnectorType::Source,
            ConnectorKind::SINK => ConnectorType::Sink,
            other => return Err(format!("connector {name} has unknown type {}", other.0)),
        };
        // SAFETY: as above.
        let version = unsafe { read_str(d.version) }?;
        // SAFETY: as above.
        let declared_aliases =
            unsafe { read_aliases(d.aliases, d.aliases_len, &format!("connector {name}")) }?;
        // SAFETY: as above.
        let config_def = decode_config_keys(unsafe { d.config_def.as_slice() })
            .map_err(|e| format!("connector {name}: config definition: {e}"))?;
        out.push(ConnectorInfo {
            name,
            kind,
            version,
            declared_aliases,
            config_def,
            index: i as u32,
        });
    }
    Ok(out)
}

/// # Safety
///
/// As for [`read_connectors`].
unsafe fn read_transforms(api: &PluginApi) -> Result<Vec<TransformInfo>, String> {
    // SAFETY: guaranteed by the caller.
    let descs = unsafe { plugin_list(api.transforms, api.transforms_len, "transform") }?;
    let mut out = Vec::with_capacity(descs.len());
    for (i, d) in descs.iter().enumerate() {
        // SAFETY: as above.
        let name = unsafe { read_str(d.name) }?;
        if name.is_empty() {
            return Err(format!("transform {i} has no name"));
        }
        let kind = match d.kind {
            TransformKind::TRANSFORMATION => TransformType::Transformation,
            TransformKind::PREDICATE => TransformType::Predicate,
            other => return Err(format!("transform {name} has unknown type {}", other.0)),
        };
        // SAFETY: as above.
        let version = unsafe { read_str(d.version) }?;
        // SAFETY: as above.
        let declared_aliases =
            unsafe { read_aliases(d.aliases, d.aliases_len, &format!("transform {name}")) }?;
        // SAFETY: as above.
        let config_def = decode_config_keys(unsafe { d.config_def.as_slice() })
            .map_err(|e| format!("transform {name}: config definition: {e}"))?;
        out.push(TransformInfo {
            name,
            kind,
            version,
            declared_aliases,
            config_def,
            index: i as u32,
        });
    }
    Ok(out)
}
