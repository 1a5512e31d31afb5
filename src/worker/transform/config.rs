//! The config keys of a transform or predicate, declared once ([`KeySpec`]) with type,
//! default, doc and check: validation, the catalog's `ConfigKeyInfo`s and the typed reads a
//! transform makes while it is built ([`Conf`]) all come from the declaration.
//!
//! Values are read as Kafka's `ConfigDef` reads them: trimmed; a list is comma-separated
//! with each item trimmed; a boolean is `true` or `false` in any case.

use tributary_plugin_abi::config::{ConfigKeyInfo, ConfigType, Importance, Width};

use super::ConfigError;
use crate::worker::store::Props;

/// A key's default.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Dflt {
    /// Required: no default.
    Required,
    /// Optional, null when unset.
    Null,
    /// This value when unset.
    Val(&'static str),
}

/// What a key's value must be, beyond its type.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Valid {
    Any,
    /// A list with at least one item.
    NonEmptyList,
    /// One of these (exactly).
    OneOf(&'static [&'static str]),
    /// One of these, in any case.
    OneOfIgnoreCase(&'static [&'static str]),
    /// A string that is not empty.
    NonEmptyString,
}

/// One config key of a transform or predicate.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeySpec {
    pub name: &'static str,
    pub kind: ConfigType,
    pub default: Dflt,
    pub importance: Importance,
    pub doc: &'static str,
    pub valid: Valid,
}

/// A key, declared in one line.
pub(crate) const fn key(
    name: &'static str,
    kind: ConfigType,
    default: Dflt,
    importance: Importance,
    valid: Valid,
    doc: &'static str,
) -> KeySpec {
    KeySpec {
        name,
        kind,
        default,
        importance,
        doc,
        valid,
    }
}

/// `replace.null.with.default`, which most field transforms share.
pub(crate) const REPLACE_NULL: KeySpec = key(
    "replace.null.with.default",
    ConfigType::Boolean,
    Dflt::Val("true"),
    Importance::Medium,
    Valid::Any,
    "Whether to replace fields that have a default value and that are null to the default \
     value. When set to true, the default value is used, otherwise null is used.",
);

impl KeySpec {
    /// The key as the REST layer describes it, named `prefix` + name, in `group`.
    pub fn info(&self, prefix: &str, group: Option<&str>, order: i32) -> ConfigKeyInfo {
        let (default, optional) = match self.default {
            Dflt::Required => (None, false),
            Dflt::Null => (None, true),
            Dflt::Val(v) => (Some(v.to_owned()), false),
        };
        ConfigKeyInfo {
            name: format!("{prefix}{}", self.name),
            kind: self.kind,
            default,
            optional,
            importance: self.importance,
            documentation: self.doc.to_owned(),
            group: group.map(str::to_owned),
            order_in_group: order,
            width: Width::None,
            display_name: self.name.to_owned(),
            valid_values: match self.valid {
                Valid::Any => None,
                Valid::NonEmptyList => Some("non-empty list".to_owned()),
                Valid::NonEmptyString => Some("non-empty string without control characters".into()),
                Valid::OneOf(v) | Valid::OneOfIgnoreCase(v) => Some(format!("[{}]", v.join(", "))),
            },
        }
    }
}

/// The config of one transform or predicate alias: `transforms.NAME.` keys read through
/// their declarations.
#[derive(Debug)]
pub(crate) struct Conf<'a> {
    /// `transforms.NAME.` or `predicates.NAME.`.
    pub prefix: String,
    pub props: &'a Props,
    pub keys: &'static [KeySpec],
}

/// Split a list value as Kafka does; blank is the empty list.
pub(crate) fn split_list(v: &str) -> Vec<String> {
    let v = v.trim();
    if v.is_empty() {
        return Vec::new();
    }
    v.split(',').map(|s| s.trim().to_owned()).collect()
}

impl<'a> Conf<'a> {
    /// The full key name of `name`.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// An error for `name`.
    pub fn err(&self, name: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            key: self.key(name),
            message: message.into(),
        }
    }

    fn spec(&self, name: &str) -> Option<&'static KeySpec> {
        self.keys.iter().find(|k| k.name == name)
    }

    /// The configured value of `name` (trimmed), if set.
    pub fn raw(&self, name: &str) -> Option<&'a str> {
        self.props.get(&self.key(name)).map(|v| v.trim())
    }

    /// The value of `name`, or its default; `None` when null.
    pub fn string(&self, name: &str) -> Option<String> {
        match self.raw(name) {
            Some(v) => Some(v.to_owned()),
            None => match self.spec(name).map(|s| s.default) {
                Some(Dflt::Val(v)) => Some(v.to_owned()),
                _ => None,
            },
        }
    }

    /// The value of a required key (checked present by [`Conf::check`]).
    pub fn required(&self, name: &str) -> Result<String, ConfigError> {
        self.string(name)
            .ok_or_else(|| self.err(name, "missing required key"))
    }

    pub fn list(&self, name: &str) -> Vec<String> {
        self.string(name)
            .map(|v| split_list(&v))
            .unwrap_or_default()
    }

    pub fn boolean(&self, name: &str) -> bool {
        self.string(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    pub fn int(&self, name: &str) -> Option<i32> {
        self.string(name).and_then(|v| v.parse().ok())
    }

    /// Every declared key checked for presence, type and rule: all errors, not only the
    /// first.
    pub fn check(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        for spec in self.keys {
            let value = self.raw(spec.name);
            let Some(v) = value else {
                if let Dflt::Required = spec.default {
                    errors.push(self.err(
                        spec.name,
                        format!("missing required key ({})", first_sentence(spec.doc)),
                    ));
                }
                continue;
            };
            let invalid = |why: String| self.err(spec.name, format!("invalid value {v:?}: {why}"));
            match spec.kind {
                ConfigType::Boolean
                    if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") =>
                {
                    errors.push(invalid("expected true or false".into()));
                    continue;
                }
                ConfigType::Int if v.parse::<i32>().is_err() => {
                    errors.push(invalid("expected a 32-bit integer".into()));
                    continue;
                }
                _ => {}
            }
            match spec.valid {
                Valid::Any => {}
                Valid::NonEmptyList if split_list(v).is_empty() => {
                    errors.push(invalid("expected a non-empty comma-separated list".into()));
                }
                Valid::NonEmptyList => {}
                Valid::NonEmptyString if v.is_empty() || v.chars().any(char::is_control) => {
                    errors.push(invalid(
                        "expected a non-empty string without control characters".into(),
                    ));
                }
                Valid::NonEmptyString => {}
                Valid::OneOf(allowed) if !allowed.contains(&v) => {
                    errors.push(invalid(format!("expected one of {}", allowed.join(", "))));
                }
                Valid::OneOfIgnoreCase(allowed)
                    if !allowed.iter().any(|a| a.eq_ignore_ascii_case(v)) =>
                {
                    errors.push(invalid(format!(
                        "expected one of {} (in any case)",
                        allowed.join(", ")
                    )));
                }
                Valid::OneOf(_) | Valid::OneOfIgnoreCase(_) => {}
            }
        }
        errors
    }
}

/// A doc's first sentence, to say what a missing key is for.
fn first_sentence(doc: &str) -> &str {
    let end = doc.find(". ").map_or(doc.len(), |i| i + 1);
    doc[..end].trim_end_matches('.')
}
