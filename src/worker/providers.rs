//! Config providers (`config.providers`): `${provider:path:key}` placeholders in
//! connector configs, resolved only when a connector or task starts, so the config
//! topic, the logs and the REST API keep the placeholders.
//!
//! Built in, by Kafka's class names or short names:
//! - `env` (`org.apache.kafka.common.config.provider.EnvVarConfigProvider`):
//!   `${env:NAME}` or `${env::NAME}`, an environment variable;
//! - `file` (`...FileConfigProvider`): `${file:/path/x.properties:key}`, a key of a
//!   properties file;
//! - `directory` (`...DirectoryConfigProvider`): `${directory:/path/dir:name}`, the
//!   contents of a file in a directory (as Kubernetes mounts secrets).

use std::collections::BTreeMap;
use std::path::Path;

use super::WorkerError;
use super::store::Props;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Env,
    File,
    Directory,
}

/// The providers a worker config declares.
#[derive(Clone, Debug, Default)]
pub struct ConfigProviders {
    providers: BTreeMap<String, Kind>,
}

impl ConfigProviders {
    /// From `config.providers=a,b` and `config.providers.a.class=...`.
    pub fn from_worker(props: &BTreeMap<String, String>) -> Result<ConfigProviders, WorkerError> {
        let mut providers = BTreeMap::new();
        let Some(list) = props.get("config.providers") else {
            return Ok(ConfigProviders::default());
        };
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let key = format!("config.providers.{name}.class");
            let class = props
                .get(&key)
                .map(|c| c.trim())
                .ok_or_else(|| WorkerError::Config {
                    key: key.clone(),
                    value: String::new(),
                    reason: format!(
                        "config provider {name} is listed in config.providers but has no class"
                    ),
                })?;
            let simple = class.rsplit('.').next().unwrap_or(class);
            let kind = match simple {
                "EnvVarConfigProvider" | "env" => Kind::Env,
                "FileConfigProvider" | "file" => Kind::File,
                "DirectoryConfigProvider" | "directory" => Kind::Directory,
                _ => {
                    return Err(WorkerError::Config {
                        key,
                        value: class.to_owned(),
                        reason: "unknown config provider; use EnvVarConfigProvider, FileConfigProvider or DirectoryConfigProvider".into(),
                    });
                }
            };
            providers.insert(name.to_owned(), kind);
        }
        Ok(ConfigProviders { providers })
    }

    /// `config` with every `${provider:[path:]key}` replaced. A placeholder naming an
    /// unknown provider is left as it is (as Kafka does); one whose value cannot be
    /// read is an error naming the config key.
    pub fn resolve(&self, config: &Props) -> Result<Props, WorkerError> {
        config
            .iter()
            .map(|(k, v)| Ok((k.clone(), self.resolve_value(k, v)?)))
            .collect()
    }

    fn resolve_value(&self, key: &str, value: &str) -> Result<String, WorkerError> {
        let mut out = String::with_capacity(value.len());
        let mut rest = value;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[start..]);
                return Ok(out);
            };
            let inner = &after[..end];
            match self.lookup(key, inner)? {
                Some(v) => out.push_str(&v),
                None => out.push_str(&rest[start..start + 2 + end + 1]),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn lookup(&self, config_key: &str, inner: &str) -> Result<Option<String>, WorkerError> {
        let Some((provider, rest)) = inner.split_once(':') else {
            return Ok(None);
        };
        let Some(kind) = self.providers.get(provider) else {
            return Ok(None);
        };
        let (path, key) = match rest.rsplit_once(':') {
            Some((p, k)) => (p, k),
            None => ("", rest),
        };
        let fail = |reason: String| WorkerError::Config {
            key: config_key.to_owned(),
            value: format!("${{{inner}}}"),
            reason,
        };
        let value = match kind {
            Kind::Env => std::env::var(key)
                .map_err(|_| fail(format!("environment variable {key} is not set")))?,
            Kind::File => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| fail(format!("cannot read {path}: {e}")))?;
                let props = crate::properties::parse_properties(&text)
                    .map_err(|e| fail(format!("{path}: {e}")))?;
                props
                    .get(key)
                    .cloned()
                    .ok_or_else(|| fail(format!("{path} has no key {key}")))?
            }
            Kind::Directory => {
                if key.contains('/') || key == ".." {
                    return Err(fail("the file name may not contain '/'".into()));
                }
                let file = Path::new(path).join(key);
                std::fs::read_to_string(&file)
                    .map_err(|e| fail(format!("cannot read {}: {e}", file.display())))?
            }
        };
        Ok(Some(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_env_file_and_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("creds.properties"), "password=s3cret\n").unwrap();
        std::fs::write(dir.path().join("token"), "abc").unwrap();
        let worker: BTreeMap<String, String> = [
            ("config.providers", "env,file,dir"),
            (
                "config.providers.env.class",
                "org.apache.kafka.common.config.provider.EnvVarConfigProvider",
            ),
            ("config.providers.file.class", "FileConfigProvider"),
            ("config.providers.dir.class", "DirectoryConfigProvider"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let p = ConfigProviders::from_worker(&worker).unwrap();
        let file = dir.path().join("creds.properties");
        let config: Props = [
            ("a".to_string(), "${env:PATH}".to_string()),
            (
                "b".to_string(),
                format!("pw=${{file:{}:password}}!", file.display()),
            ),
            (
                "c".to_string(),
                format!("${{dir:{}:token}}", dir.path().display()),
            ),
            ("d".to_string(), "${vault:x:y} stays".to_string()),
        ]
        .into_iter()
        .collect();
        let r = p.resolve(&config).unwrap();
        assert_eq!(r["a"], std::env::var("PATH").unwrap());
        assert_eq!(r["b"], "pw=s3cret!");
        assert_eq!(r["c"], "abc");
        assert_eq!(r["d"], "${vault:x:y} stays");
        let missing: Props = [(
            "k".to_string(),
            format!("${{file:{}:nope}}", file.display()),
        )]
        .into_iter()
        .collect();
        let err = p.resolve(&missing).unwrap_err().to_string();
        assert!(err.contains("k=") && err.contains("no key nope"), "{err}");
    }
}
