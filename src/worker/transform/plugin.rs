//! Transformations and predicates from plugin libraries in a [`super::Chain`].
//!
//! A `transforms.NAME.type` (or `predicates.NAME.type`) that no built-in has is looked up in
//! the worker's plugin registry ([`crate::plugin::current_registry`]). The stage holds the
//! plugin's instance and the config it was given: a batch crosses the boundary once per
//! stage (the records a predicate selects, lent as views). A panic in the plugin fails the
//! records of that call (`errors.tolerance` decides what that means) and the instance is
//! dropped; the next call makes a fresh one with the same config, as a restarted task would.
//!
//! Plugin calls happen where the chain is used: the task threads, and, for `configure`
//! while parsing, wherever a connector config is parsed (configuring a transform is expected
//! to be quick).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use tributary_plugin_abi::config::ConfigKeyInfo;
use tributary_plugin_abi::record::{SinkRecord, SourceRecord};
use tributary_plugin_abi::wire::StringMap;

use super::{ConfigError, PluginKind};
use crate::plugin::{PluginError, PluginTransform, TransformInstance, TransformType};
use crate::worker::store::Props;

/// A name kept for the life of the process (`ChainError::class` is `&'static str`, as the
/// built-ins' class names are). One allocation per distinct plugin transform name.
pub(crate) fn intern(name: &str) -> &'static str {
    static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut names = NAMES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(n) = names.get(name) {
        return n;
    }
    let n: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(n);
    n
}

pub(crate) fn kind_of(t: &PluginTransform) -> PluginKind {
    match t.kind() {
        TransformType::Transformation => PluginKind::Transformation,
        TransformType::Predicate => PluginKind::Predicate,
    }
}

/// The plugin transform or predicate `name` stands for, if a plugin exports one.
pub(crate) fn find(name: &str) -> Result<Option<Arc<PluginTransform>>, String> {
    for shared in crate::plugin::live_registries().into_iter().rev() {
        match shared.snapshot().lookup_transform(name) {
            Ok(Some(found)) => return Ok(Some(found.clone())),
            Ok(None) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(None)
}

/// The full names of the plugin transforms or predicates of `kind`, for messages.
pub(crate) fn names(kind: PluginKind) -> Vec<String> {
    crate::plugin::current_registry()
        .map(|shared| {
            shared
                .snapshot()
                .transforms()
                .filter(|t| kind_of(t) == kind)
                .map(|t| t.name().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Every plugin transform and predicate (for the catalog).
pub(crate) fn all() -> Vec<Arc<PluginTransform>> {
    crate::plugin::current_registry()
        .map(|shared| shared.snapshot().transforms().cloned().collect())
        .unwrap_or_default()
}

/// The keys of a plugin transform as the validate endpoint shows them under `prefix`.
pub(crate) fn key_infos(t: &PluginTransform, prefix: &str, group: &str) -> Vec<ConfigKeyInfo> {
    t.info()
        .config_def
        .iter()
        .map(|k| ConfigKeyInfo {
            name: format!("{prefix}{}", k.name),
            group: Some(group.to_owned()),
            ..k.clone()
        })
        .collect()
}

/// A configured plugin transformation or predicate.
#[derive(Debug)]
pub(crate) struct PluginStage {
    pub plugin: Arc<PluginTransform>,
    /// The alias's keys without their prefix, as `configure` got them.
    config: StringMap,
    /// `None` after a panic: made again at the next call.
    instance: Mutex<Option<TransformInstance>>,
}

impl Drop for PluginStage {
    fn drop(&mut self) {
        let instance = self
            .instance
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(mut i) = instance.take()
            && let Err(e) = i.close()
        {
            tracing::warn!(error = %e, "closing a plugin transform");
        }
    }
}

fn new_configured(
    plugin: &Arc<PluginTransform>,
    config: &StringMap,
    prefix: &str,
) -> Result<TransformInstance, Vec<ConfigError>> {
    let alias = prefix.trim_end_matches('.');
    let one = |e: PluginError| {
        vec![ConfigError {
            key: format!("{prefix}type"),
            message: format!("{alias}: {e}"),
        }]
    };
    let mut instance = plugin.new_instance().map_err(one)?;
    let values = instance.configure(config).map_err(one)?;
    let errors: Vec<ConfigError> = values
        .into_iter()
        .flat_map(|v| {
            let key = format!("{prefix}{}", v.name);
            v.errors.into_iter().map(move |e| ConfigError {
                key: key.clone(),
                message: format!("{alias}: {e}"),
            })
        })
        .collect();
    if errors.is_empty() {
        Ok(instance)
    } else {
        Err(errors)
    }
}

impl PluginStage {
    /// Make and configure an instance with the keys under `prefix` (`transforms.ALIAS.`)
    /// other than the ones every transform has.
    pub fn build(
        plugin: Arc<PluginTransform>,
        prefix: &str,
        props: &Props,
    ) -> Result<PluginStage, Vec<ConfigError>> {
        let config: StringMap = props
            .iter()
            .filter_map(|(k, v)| {
                let rest = k.strip_prefix(prefix)?;
                (!matches!(rest, "type" | "predicate" | "negate"))
                    .then(|| (rest.to_owned(), v.clone()))
            })
            .collect();
        let instance = new_configured(&plugin, &config, prefix)?;
        Ok(PluginStage {
            plugin,
            config,
            instance: Mutex::new(Some(instance)),
        })
    }

    /// The instance in `slot`, made again if an earlier call panicked.
    fn ensure<'s>(
        &self,
        slot: &'s mut Option<TransformInstance>,
    ) -> Result<&'s mut TransformInstance, String> {
        if slot.is_none() {
            let made = new_configured(&self.plugin, &self.config, "").map_err(|errors| {
                let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
                format!("it cannot be made again after a panic: {}", all.join("; "))
            })?;
            *slot = Some(made);
        }
        slot.as_mut().ok_or_else(|| "no instance".to_owned())
    }

    /// Run `f` on the instances of `stages` (consecutive transforms of one library) at
    /// once; a panic drops the instance that panicked. The error names the stage.
    pub fn with_run<T>(
        stages: &[&PluginStage],
        f: impl FnOnce(&mut [&mut TransformInstance]) -> Result<T, (usize, PluginError)>,
    ) -> Result<T, (usize, String)> {
        // Locked in chain order, as every caller does: no deadlock between tasks.
        let mut guards: Vec<_> = stages
            .iter()
            .map(|s| s.instance.lock().unwrap_or_else(PoisonError::into_inner))
            .collect();
        let mut instances = Vec::with_capacity(stages.len());
        for (i, (stage, guard)) in stages.iter().zip(guards.iter_mut()).enumerate() {
            instances.push(stage.ensure(guard).map_err(|e| (i, e))?);
        }
        let result = f(&mut instances);
        drop(instances);
        result.map_err(|(at, e)| {
            if e.is_panic()
                && let Some(g) = guards.get_mut(at)
            {
                **g = None;
            }
            (at, e.to_string())
        })
    }

    /// Whether `next` can share one crossing with this stage: another transform of the
    /// same library.
    pub fn same_library(&self, next: &PluginStage) -> bool {
        Arc::ptr_eq(self.plugin.library(), next.plugin.library())
    }

    /// Run `f` on the instance (made again if an earlier call panicked); a panic drops it.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut TransformInstance) -> Result<T, PluginError>,
    ) -> Result<T, String> {
        let mut slot = self.instance.lock().unwrap_or_else(PoisonError::into_inner);
        let instance = self.ensure(&mut slot)?;
        match f(instance) {
            Ok(t) => Ok(t),
            Err(e) => {
                if e.is_panic() {
                    *slot = None;
                }
                Err(e.to_string())
            }
        }
    }

    pub fn apply_source(
        &self,
        records: &[SourceRecord],
    ) -> Result<Vec<(usize, SourceRecord)>, String> {
        self.with(|i| i.apply_source(records))
    }

    pub fn apply_sink(&self, records: &[SinkRecord]) -> Result<Vec<(usize, SinkRecord)>, String> {
        self.with(|i| i.apply_sink(records))
    }

    pub fn test_source(&self, records: &[SourceRecord]) -> Result<Vec<bool>, String> {
        self.with(|i| i.test_source(records))
    }

    pub fn test_sink(&self, records: &[SinkRecord]) -> Result<Vec<bool>, String> {
        self.with(|i| i.test_sink(records))
    }
}
