//! Config definitions in the shape of Kafka's `ConfigDef`: declare each key once (type,
//! default, validator, importance, documentation, group), then [`ConfigDef::parse`] a raw
//! string map into a typed [`Config`] or get every error with its key from
//! [`ConfigDef::validate`]. The worker's REST `config` and `validate` answers come from the
//! same definition.
//!
//! Validation is pure: parse and check values, never touch the network or the filesystem
//! (connectivity checks belong in `start`).
//!
//! Passwords: a [`Password`] prints as `[hidden]` in `Debug` and `Display`, validation
//! answers mask them, and [`ConfigDef::mask`] masks a raw map for logging.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

pub use tributary_plugin_abi::config::{
    ConfigKeyInfo, ConfigType, ConfigValueInfo, Importance, Width,
};

use crate::error::ConnectError;

/// A raw config: what the user wrote, keys to strings.
pub type RawConfig = BTreeMap<String, String>;

/// What a password looks like wherever it could be seen.
pub const HIDDEN: &str = "[hidden]";

/// A secret config value. Its `Debug` and `Display` never show it; [`Password::expose`] does.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(secret: impl Into<String>) -> Password {
        Password(secret.into())
    }

    /// The secret itself, for the one place that needs it (a connection).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(HIDDEN)
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(HIDDEN)
    }
}

/// A parsed config value.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigValue {
    String(String),
    Int(i32),
    Long(i64),
    Double(f64),
    Boolean(bool),
    List(Vec<String>),
    Class(String),
    Password(Password),
}

impl fmt::Display for ConfigValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigValue::String(s) | ConfigValue::Class(s) => f.write_str(s),
            ConfigValue::Int(v) => write!(f, "{v}"),
            ConfigValue::Long(v) => write!(f, "{v}"),
            ConfigValue::Double(v) => write!(f, "{v}"),
            ConfigValue::Boolean(v) => write!(f, "{v}"),
            ConfigValue::List(v) => f.write_str(&v.join(",")),
            ConfigValue::Password(p) => write!(f, "{p}"),
        }
    }
}

/// Parse one raw value as a type (Kafka's `ConfigDef.parseType`: numbers, booleans, lists
/// and class names are trimmed; strings and passwords are taken as written).
pub fn parse_value(kind: ConfigType, raw: &str) -> Result<ConfigValue, String> {
    let t = raw.trim();
    match kind {
        ConfigType::String => Ok(ConfigValue::String(raw.to_owned())),
        ConfigType::Password => Ok(ConfigValue::Password(Password::new(raw))),
        ConfigType::Class => Ok(ConfigValue::Class(t.to_owned())),
        ConfigType::Int => t
            .parse()
            .map(ConfigValue::Int)
            .map_err(|_| "Not a number of type INT".to_owned()),
        ConfigType::Long => t
            .parse()
            .map(ConfigValue::Long)
            .map_err(|_| "Not a number of type LONG".to_owned()),
        ConfigType::Double => t
            .parse()
            .map(ConfigValue::Double)
            .map_err(|_| "Not a number of type DOUBLE".to_owned()),
        ConfigType::Boolean => {
            if t.eq_ignore_ascii_case("true") {
                Ok(ConfigValue::Boolean(true))
            } else if t.eq_ignore_ascii_case("false") {
                Ok(ConfigValue::Boolean(false))
            } else {
                Err("Expected value to be either true or false".to_owned())
            }
        }
        ConfigType::List => Ok(ConfigValue::List(if t.is_empty() {
            Vec::new()
        } else {
            t.split(',').map(|s| s.trim().to_owned()).collect()
        })),
    }
}

/// A check of a parsed value, with a description of what it accepts (shown in docs and the
/// REST config answer).
#[derive(Clone)]
pub struct Validator {
    description: String,
    check: Arc<dyn Fn(&ConfigValue) -> Result<(), String> + Send + Sync>,
}

impl Validator {
    /// A custom validator: `check` answers `Err(message)` for a value it refuses.
    pub fn new(
        description: impl Into<String>,
        check: impl Fn(&ConfigValue) -> Result<(), String> + Send + Sync + 'static,
    ) -> Validator {
        Validator {
            description: description.into(),
            check: Arc::new(check),
        }
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    pub fn check(&self, value: &ConfigValue) -> Result<(), String> {
        (self.check)(value)
    }

    /// A number within `[min, max]` (Kafka's `Range.between`).
    pub fn between(min: i64, max: i64) -> Validator {
        Validator::new(format!("[{min},...,{max}]"), move |v| {
            let n = as_number(v)?;
            if n < min as f64 {
                Err(format!("Value must be at least {min}"))
            } else if n > max as f64 {
                Err(format!("Value must be no more than {max}"))
            } else {
                Ok(())
            }
        })
    }

    /// A number of at least `min` (Kafka's `Range.atLeast`).
    pub fn at_least(min: i64) -> Validator {
        Validator::new(format!("[{min},...]"), move |v| {
            if as_number(v)? < min as f64 {
                Err(format!("Value must be at least {min}"))
            } else {
                Ok(())
            }
        })
    }

    /// One of the given strings (Kafka's `ValidString.in`).
    pub fn one_of(allowed: &[&str]) -> Validator {
        let allowed: Vec<String> = allowed.iter().map(|s| (*s).to_owned()).collect();
        Validator::new(format!("[{}]", allowed.join(", ")), move |v| match v {
            ConfigValue::String(s) if allowed.contains(s) => Ok(()),
            ConfigValue::String(s) => Err(format!(
                "String must be one of: {}; got {s:?}",
                allowed.join(", ")
            )),
            _ => Err("expected a string".to_owned()),
        })
    }

    /// A string that is not empty (Kafka's `NonEmptyString`).
    pub fn non_empty() -> Validator {
        Validator::new("non-empty string", |v| match v {
            ConfigValue::String(s) | ConfigValue::Class(s) if s.trim().is_empty() => {
                Err("String may not be empty".to_owned())
            }
            ConfigValue::List(l) if l.is_empty() => Err("List may not be empty".to_owned()),
            _ => Ok(()),
        })
    }
}

fn as_number(v: &ConfigValue) -> Result<f64, String> {
    match v {
        ConfigValue::Int(n) => Ok(f64::from(*n)),
        ConfigValue::Long(n) => Ok(*n as f64),
        ConfigValue::Double(n) => Ok(*n),
        _ => Err("expected a number".to_owned()),
    }
}

impl fmt::Debug for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Validator({})", self.description)
    }
}

/// One config key. Start with a constructor named after its type, then chain:
/// `ConfigKey::int("batch.size").default("100").validator(Validator::at_least(1)).doc("...")`.
#[derive(Debug, Clone)]
pub struct ConfigKey {
    info: ConfigKeyInfo,
    validator: Option<Validator>,
}

macro_rules! key_constructors {
    ($($(#[$doc:meta])* $fn:ident => $kind:ident,)*) => {
        $(
            $(#[$doc])*
            pub fn $fn(name: impl Into<String>) -> ConfigKey {
                ConfigKey::new(name, ConfigType::$kind)
            }
        )*
    };
}

impl ConfigKey {
    /// A required key of `kind` with medium importance and no documentation yet.
    pub fn new(name: impl Into<String>, kind: ConfigType) -> ConfigKey {
        let name = name.into();
        ConfigKey {
            info: ConfigKeyInfo {
                display_name: name.clone(),
                name,
                kind,
                default: None,
                optional: false,
                importance: Importance::Medium,
                documentation: String::new(),
                group: None,
                order_in_group: -1,
                width: Width::None,
                valid_values: None,
            },
            validator: None,
        }
    }

    key_constructors! {
        string => String,
        int => Int,
        long => Long,
        double => Double,
        boolean => Boolean,
        /// Comma-separated values.
        list => List,
        class => Class,
        /// Masked wherever it could be seen.
        password => Password,
    }

    /// The default, written as a user would write it (`"100"`, `"true"`, `"a,b"`).
    pub fn default(mut self, value: impl Into<String>) -> ConfigKey {
        self.info.default = Some(value.into());
        self
    }

    /// Not required, and no default: the parsed config simply lacks it when unset.
    pub fn optional(mut self) -> ConfigKey {
        self.info.optional = true;
        self
    }

    pub fn importance(mut self, importance: Importance) -> ConfigKey {
        self.info.importance = importance;
        self
    }

    pub fn doc(mut self, documentation: impl Into<String>) -> ConfigKey {
        self.info.documentation = documentation.into();
        self
    }

    /// The group the key is shown in; its order within the group follows definition order.
    pub fn group(mut self, group: impl Into<String>) -> ConfigKey {
        self.info.group = Some(group.into());
        self
    }

    pub fn width(mut self, width: Width) -> ConfigKey {
        self.info.width = width;
        self
    }

    pub fn display_name(mut self, name: impl Into<String>) -> ConfigKey {
        self.info.display_name = name.into();
        self
    }

    pub fn validator(mut self, validator: Validator) -> ConfigKey {
        self.info.valid_values = Some(validator.description().to_owned());
        self.validator = Some(validator);
        self
    }

    pub fn info(&self) -> &ConfigKeyInfo {
        &self.info
    }

    /// Parse and validate one raw value of this key.
    fn check(&self, raw: &str) -> Result<ConfigValue, String> {
        let v = parse_value(self.info.kind, raw)?;
        if let Some(validator) = &self.validator {
            validator.check(&v)?;
        }
        Ok(v)
    }
}

/// A connector's config definition: its keys, in order.
#[derive(Debug, Clone, Default)]
pub struct ConfigDef {
    keys: Vec<ConfigKey>,
}

impl ConfigDef {
    pub fn new() -> ConfigDef {
        ConfigDef::default()
    }

    /// Add a key. Defining a name twice is a programming error and panics (the export
    /// boundary turns it into a load error naming the connector).
    pub fn define(mut self, mut key: ConfigKey) -> ConfigDef {
        assert!(
            self.key(&key.info.name).is_none(),
            "config key {} is defined twice",
            key.info.name
        );
        if let Some(group) = &key.info.group {
            let in_group = self
                .keys
                .iter()
                .filter(|k| k.info.group.as_ref() == Some(group))
                .count();
            key.info.order_in_group = in_group as i32 + 1;
        }
        self.keys.push(key);
        self
    }

    pub fn keys(&self) -> &[ConfigKey] {
        &self.keys
    }

    pub fn key(&self, name: &str) -> Option<&ConfigKey> {
        self.keys.iter().find(|k| k.info.name == name)
    }

    /// The description the worker sees.
    pub fn key_infos(&self) -> Vec<ConfigKeyInfo> {
        self.keys.iter().map(|k| k.info.clone()).collect()
    }

    /// Check the definition itself: every default parses and passes its validator.
    pub fn check_defaults(&self) -> Result<(), String> {
        for k in &self.keys {
            if let Some(d) = &k.info.default {
                k.check(d)
                    .map_err(|e| format!("default {d:?} of config key {}: {e}", k.info.name))?;
            }
        }
        Ok(())
    }

    /// Validate every defined key of a raw config (Kafka's `ConfigDef.validate`): one entry
    /// per key, with its (masked) value and its errors. Keys the definition does not know are
    /// left to the worker.
    pub fn validate(&self, raw: &RawConfig) -> Vec<ConfigValueInfo> {
        self.keys
            .iter()
            .map(|k| {
                let given = raw.get(&k.info.name);
                let shown = given.or(k.info.default.as_ref()).map(|v| {
                    if k.info.kind == ConfigType::Password {
                        HIDDEN.to_owned()
                    } else {
                        v.clone()
                    }
                });
                let errors = match given.or(k.info.default.as_ref()) {
                    Some(v) => match k.check(v) {
                        Ok(_) => Vec::new(),
                        Err(e) => vec![invalid_value(k, v, &e)],
                    },
                    None if k.info.optional => Vec::new(),
                    None => vec![format!(
                        "Missing required configuration \"{}\" which has no default value.",
                        k.info.name
                    )],
                };
                ConfigValueInfo {
                    name: k.info.name.clone(),
                    value: shown,
                    errors,
                }
            })
            .collect()
    }

    /// Parse a raw config into typed values, or fail with every error (each names its key).
    pub fn parse(&self, raw: &RawConfig) -> Result<Config, ConnectError> {
        let mut values = BTreeMap::new();
        let mut errors = Vec::new();
        for k in &self.keys {
            match raw.get(&k.info.name).or(k.info.default.as_ref()) {
                Some(v) => match k.check(v) {
                    Ok(parsed) => {
                        values.insert(k.info.name.clone(), parsed);
                    }
                    Err(e) => errors.push(invalid_value(k, v, &e)),
                },
                None if k.info.optional => {}
                None => errors.push(format!(
                    "Missing required configuration \"{}\" which has no default value.",
                    k.info.name
                )),
            }
        }
        if errors.is_empty() {
            Ok(Config {
                values,
                originals: raw.clone(),
            })
        } else {
            Err(ConnectError::new(errors.join("; ")))
        }
    }

    /// A copy of `raw` fit for logs: the values of password keys replaced by `[hidden]`.
    pub fn mask(&self, raw: &RawConfig) -> RawConfig {
        raw.iter()
            .map(|(k, v)| {
                let secret = self
                    .key(k)
                    .is_some_and(|key| key.info.kind == ConfigType::Password);
                (
                    k.clone(),
                    if secret { HIDDEN.to_owned() } else { v.clone() },
                )
            })
            .collect()
    }
}

fn invalid_value(k: &ConfigKey, raw: &str, e: &str) -> String {
    let shown = if k.info.kind == ConfigType::Password {
        HIDDEN
    } else {
        raw
    };
    format!(
        "Invalid value {shown} for configuration {}: {e}",
        k.info.name
    )
}

/// A parsed config: the typed value of every defined key that is set or has a default, and
/// the raw map it came from. `Debug` shows only the typed values, with passwords masked.
#[derive(Clone)]
pub struct Config {
    values: BTreeMap<String, ConfigValue>,
    originals: RawConfig,
}

impl Config {
    pub fn get(&self, name: &str) -> Option<&ConfigValue> {
        self.values.get(name)
    }

    pub fn string(&self, name: &str) -> Option<&str> {
        match self.values.get(name)? {
            ConfigValue::String(s) | ConfigValue::Class(s) => Some(s),
            _ => None,
        }
    }

    pub fn int(&self, name: &str) -> Option<i32> {
        match self.values.get(name)? {
            ConfigValue::Int(v) => Some(*v),
            _ => None,
        }
    }

    pub fn long(&self, name: &str) -> Option<i64> {
        match self.values.get(name)? {
            ConfigValue::Long(v) => Some(*v),
            ConfigValue::Int(v) => Some(i64::from(*v)),
            _ => None,
        }
    }

    pub fn double(&self, name: &str) -> Option<f64> {
        match self.values.get(name)? {
            ConfigValue::Double(v) => Some(*v),
            _ => None,
        }
    }

    pub fn boolean(&self, name: &str) -> Option<bool> {
        match self.values.get(name)? {
            ConfigValue::Boolean(v) => Some(*v),
            _ => None,
        }
    }

    pub fn list(&self, name: &str) -> Option<&[String]> {
        match self.values.get(name)? {
            ConfigValue::List(v) => Some(v),
            _ => None,
        }
    }

    pub fn password(&self, name: &str) -> Option<&Password> {
        match self.values.get(name)? {
            ConfigValue::Password(p) => Some(p),
            _ => None,
        }
    }

    /// Everything the user wrote, including keys the definition does not know (framework
    /// keys such as `tasks.max`). Unmasked: do not log it.
    pub fn originals(&self) -> &RawConfig {
        &self.originals
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.values.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def() -> ConfigDef {
        ConfigDef::new()
            .define(
                ConfigKey::int("batch.size")
                    .default("100")
                    .validator(Validator::between(1, 1000))
                    .importance(Importance::High)
                    .group("Common")
                    .doc("records per poll"),
            )
            .define(
                ConfigKey::string("topic")
                    .validator(Validator::non_empty())
                    .group("Common"),
            )
            .define(ConfigKey::password("secret").optional())
            .define(ConfigKey::list("hosts").default("a, b"))
            .define(ConfigKey::boolean("fast").default("FALSE"))
            .define(ConfigKey::long("max").default("5000000000"))
            .define(ConfigKey::double("ratio").default("0.5"))
            .define(ConfigKey::class("cls").default(" x.Y "))
            .define(
                ConfigKey::string("mode")
                    .default("a")
                    .validator(Validator::one_of(&["a", "b"])),
            )
    }

    fn raw(pairs: &[(&str, &str)]) -> RawConfig {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn parse_types_defaults_and_groups() {
        let d = def();
        d.check_defaults().unwrap();
        let c = d
            .parse(&raw(&[
                ("topic", "t"),
                ("secret", "s3cr3t"),
                ("tasks.max", "2"),
            ]))
            .unwrap();
        assert_eq!(c.int("batch.size"), Some(100));
        assert_eq!(c.string("topic"), Some("t"));
        assert_eq!(
            c.list("hosts"),
            Some(&["a".to_string(), "b".to_string()][..])
        );
        assert_eq!(c.boolean("fast"), Some(false));
        assert_eq!(c.long("max"), Some(5_000_000_000));
        assert_eq!(c.double("ratio"), Some(0.5));
        assert_eq!(c.string("cls"), Some("x.Y"));
        assert_eq!(c.password("secret").unwrap().expose(), "s3cr3t");
        assert_eq!(
            c.originals().get("tasks.max").map(String::as_str),
            Some("2")
        );
        let infos = d.key_infos();
        assert_eq!((infos[0].order_in_group, infos[1].order_in_group), (1, 2));
        assert!(infos[1].required() && !infos[2].required());
        assert_eq!(infos[0].valid_values.as_deref(), Some("[1,...,1000]"));
    }

    #[test]
    fn every_error_is_reported_with_its_key() {
        let d = def();
        let err = d
            .parse(&raw(&[("batch.size", "0"), ("fast", "yes"), ("mode", "c")]))
            .unwrap_err();
        let msg = err.message();
        assert!(
            msg.contains("Invalid value 0 for configuration batch.size: Value must be at least 1"),
            "{msg}"
        );
        assert!(
            msg.contains("Missing required configuration \"topic\""),
            "{msg}"
        );
        assert!(msg.contains("configuration fast"), "{msg}");
        assert!(msg.contains("configuration mode"), "{msg}");

        let v = d.validate(&raw(&[("batch.size", "x"), ("topic", "t")]));
        let errors: Vec<_> = v.iter().filter(|v| !v.errors.is_empty()).collect();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].name, "batch.size");
        assert!(errors[0].errors[0].contains("Not a number of type INT"));
    }

    #[test]
    fn passwords_never_show() {
        let d = def();
        let secret = "hunter2-very-secret";
        let r = raw(&[("topic", "t"), ("secret", secret)]);
        let c = d.parse(&r).unwrap();
        assert!(!format!("{c:?}").contains(secret));
        assert!(!format!("{}", c.get("secret").unwrap()).contains(secret));
        assert!(!format!("{:?}", d.mask(&r)).contains(secret));
        let v = d.validate(&r);
        assert!(!format!("{v:?}").contains(secret));
        assert_eq!(
            v.iter()
                .find(|v| v.name == "secret")
                .unwrap()
                .value
                .as_deref(),
            Some(HIDDEN)
        );
    }

    #[test]
    fn a_bad_default_is_caught() {
        let d = ConfigDef::new().define(ConfigKey::int("n").default("ten"));
        let err = d.check_defaults().unwrap_err();
        assert!(err.contains("config key n"), "{err}");
    }
}
