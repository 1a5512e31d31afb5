//! How a plugin describes its config keys to the worker ([`ConfigKeyInfo`], Kafka Connect's
//! `ConfigKeyInfo`) and answers a validation ([`ConfigValueInfo`]). The worker builds the
//! REST `config` and `validate` answers and the docs from these; the typed parsing and the
//! validators themselves run inside the plugin (the SDK's `ConfigDef`).

use crate::wire::{self, DecodeError, Reader};

/// A config key's type (Kafka's `ConfigDef.Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigType {
    String,
    Int,
    Long,
    Double,
    Boolean,
    /// Comma-separated values.
    List,
    /// The name of a plugin class (a connector, converter or transform).
    Class,
    /// A secret: never shown unmasked in logs or REST answers.
    Password,
}

impl ConfigType {
    const ALL: [ConfigType; 8] = [
        ConfigType::String,
        ConfigType::Int,
        ConfigType::Long,
        ConfigType::Double,
        ConfigType::Boolean,
        ConfigType::List,
        ConfigType::Class,
        ConfigType::Password,
    ];

    /// Kafka's name for the type, as the REST API spells it (`STRING`, `INT`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ConfigType::String => "STRING",
            ConfigType::Int => "INT",
            ConfigType::Long => "LONG",
            ConfigType::Double => "DOUBLE",
            ConfigType::Boolean => "BOOLEAN",
            ConfigType::List => "LIST",
            ConfigType::Class => "CLASS",
            ConfigType::Password => "PASSWORD",
        }
    }
}

/// How much a key matters to a user (Kafka's `ConfigDef.Importance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Importance {
    High,
    Medium,
    Low,
}

impl Importance {
    const ALL: [Importance; 3] = [Importance::High, Importance::Medium, Importance::Low];

    pub fn name(self) -> &'static str {
        match self {
            Importance::High => "HIGH",
            Importance::Medium => "MEDIUM",
            Importance::Low => "LOW",
        }
    }
}

/// The width of a key's input field in a UI (Kafka's `ConfigDef.Width`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Width {
    #[default]
    None,
    Short,
    Medium,
    Long,
}

impl Width {
    const ALL: [Width; 4] = [Width::None, Width::Short, Width::Medium, Width::Long];

    pub fn name(self) -> &'static str {
        match self {
            Width::None => "NONE",
            Width::Short => "SHORT",
            Width::Medium => "MEDIUM",
            Width::Long => "LONG",
        }
    }
}

/// One config key as the worker sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigKeyInfo {
    pub name: String,
    pub kind: ConfigType,
    /// The default in its string form; `None` means the key is required.
    pub default: Option<String>,
    /// Whether a missing value is allowed even without a default (`default` is then null).
    pub optional: bool,
    pub importance: Importance,
    pub documentation: String,
    pub group: Option<String>,
    pub order_in_group: i32,
    pub width: Width,
    pub display_name: String,
    /// What the validator accepts, for docs (Kafka prints `validator.toString()`).
    pub valid_values: Option<String>,
}

impl ConfigKeyInfo {
    /// Required: no default, and not optional.
    pub fn required(&self) -> bool {
        self.default.is_none() && !self.optional
    }
}

/// The outcome of validating one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigValueInfo {
    pub name: String,
    /// The value in string form; a password's is masked (`[hidden]`).
    pub value: Option<String>,
    pub errors: Vec<String>,
}

fn enum_code<T: PartialEq>(all: &[T], v: &T) -> u8 {
    all.iter().position(|x| x == v).unwrap_or(0) as u8
}

fn read_enum<T: Copy>(r: &mut Reader<'_>, all: &[T], what: &'static str) -> Result<T, DecodeError> {
    let at = r.position();
    let c = r.u8(what)?;
    all.get(usize::from(c))
        .copied()
        .ok_or(DecodeError { what, at })
}

/// Encode a config definition.
pub fn encode_config_keys(keys: &[ConfigKeyInfo], out: &mut Vec<u8>) {
    wire::put_len(out, keys.len());
    for k in keys {
        wire::put_str(out, &k.name);
        wire::put_u8(out, enum_code(&ConfigType::ALL, &k.kind));
        wire::put_opt_str(out, k.default.as_deref());
        wire::put_bool(out, k.optional);
        wire::put_u8(out, enum_code(&Importance::ALL, &k.importance));
        wire::put_str(out, &k.documentation);
        wire::put_opt_str(out, k.group.as_deref());
        wire::put_i32(out, k.order_in_group);
        wire::put_u8(out, enum_code(&Width::ALL, &k.width));
        wire::put_str(out, &k.display_name);
        wire::put_opt_str(out, k.valid_values.as_deref());
    }
}

/// Decode what [`encode_config_keys`] wrote.
pub fn decode_config_keys(buf: &[u8]) -> Result<Vec<ConfigKeyInfo>, DecodeError> {
    let mut r = Reader::new(buf);
    let n = r.count(20, "config keys")?;
    let mut keys = Vec::with_capacity(n);
    for _ in 0..n {
        keys.push(ConfigKeyInfo {
            name: r.string("config key name")?,
            kind: read_enum(&mut r, &ConfigType::ALL, "config type")?,
            default: r.opt_string("config default")?,
            optional: r.bool("config optional flag")?,
            importance: read_enum(&mut r, &Importance::ALL, "config importance")?,
            documentation: r.string("config documentation")?,
            group: r.opt_string("config group")?,
            order_in_group: r.i32("config order")?,
            width: read_enum(&mut r, &Width::ALL, "config width")?,
            display_name: r.string("config display name")?,
            valid_values: r.opt_string("config valid values")?,
        });
    }
    r.finish("config keys")?;
    Ok(keys)
}

/// Encode a validation result.
pub fn encode_config_values(values: &[ConfigValueInfo], out: &mut Vec<u8>) {
    wire::put_len(out, values.len());
    for v in values {
        wire::put_str(out, &v.name);
        wire::put_opt_str(out, v.value.as_deref());
        wire::put_len(out, v.errors.len());
        for e in &v.errors {
            wire::put_str(out, e);
        }
    }
}

/// Decode what [`encode_config_values`] wrote.
pub fn decode_config_values(buf: &[u8]) -> Result<Vec<ConfigValueInfo>, DecodeError> {
    let mut r = Reader::new(buf);
    let n = r.count(9, "config values")?;
    let mut values = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.string("config value name")?;
        let value = r.opt_string("config value")?;
        let ne = r.count(4, "config errors")?;
        let mut errors = Vec::with_capacity(ne);
        for _ in 0..ne {
            errors.push(r.string("config error")?);
        }
        values.push(ConfigValueInfo {
            name,
            value,
            errors,
        });
    }
    r.finish("config values")?;
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_round_trip() {
        let keys = vec![
            ConfigKeyInfo {
                name: "batch.size".into(),
                kind: ConfigType::Int,
                default: Some("100".into()),
                optional: false,
                importance: Importance::Medium,
                documentation: "records per poll".into(),
                group: Some("Common".into()),
                order_in_group: 2,
                width: Width::Short,
                display_name: "Batch size".into(),
                valid_values: Some("[1,...]".into()),
            },
            ConfigKeyInfo {
                name: "secret".into(),
                kind: ConfigType::Password,
                default: None,
                optional: false,
                importance: Importance::High,
                documentation: String::new(),
                group: None,
                order_in_group: -1,
                width: Width::None,
                display_name: "secret".into(),
                valid_values: None,
            },
        ];
        assert!(!keys[0].required() && keys[1].required());
        let mut buf = Vec::new();
        encode_config_keys(&keys, &mut buf);
        assert_eq!(decode_config_keys(&buf).unwrap(), keys);
        for cut in 0..buf.len() {
            assert!(decode_config_keys(&buf[..cut]).is_err());
        }

        let values = vec![ConfigValueInfo {
            name: "batch.size".into(),
            value: Some("0".into()),
            errors: vec!["Value must be at least 1".into()],
        }];
        buf.clear();
        encode_config_values(&values, &mut buf);
        assert_eq!(decode_config_values(&buf).unwrap(), values);
    }
}
