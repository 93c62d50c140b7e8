//! Where the configuration comes from: the YAML file, the environment overlay and `$VAR`
//! substitution, merged into one map of keys before any key is read.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Map, Value};

use super::error::{ConfigError, KeyError};
use super::keys::KNOWN_KEYS;
use super::model::{Config, Secret, DEFAULT_PLUGINS};
use super::value::show;
use crate::identity::ACCOUNT_PREFIX;
use crate::redact::Redactor;

impl Config {
    /// Loads `path` (or `./hamper.conf` when `None` and it exists) and overlays `env`.
    pub fn load(path: Option<&Path>, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let (text, origin) = match path {
            Some(p) => match std::fs::read_to_string(p) {
                Ok(text) => (text, p.display().to_string()),
                Err(err) => {
                    return Err(ConfigError::one(
                        "--config",
                        &format!("cannot read {}: {err}", p.display()),
                        "give the path of an existing YAML file, or leave --config out",
                    ))
                }
            },
            None => match std::fs::read_to_string("hamper.conf") {
                Ok(text) => (text, "hamper.conf".to_string()),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    (String::new(), String::new())
                }
                Err(err) => {
                    return Err(ConfigError::one(
                        "hamper.conf",
                        &format!("cannot read it: {err}"),
                        "fix its permissions, or remove it",
                    ))
                }
            },
        };
        let file = parse_file(&text, &origin)?;
        let (merged, pulled) = overlay(file, env)?;
        let base = path.map(|p| p.parent().unwrap_or(Path::new("")));
        // A problem quotes the value it found, which a `$VAR` may have pulled in.
        let mut config = Config::from_map(merged, base)
            .map_err(|err| err.redacted(&Redactor::new(pulled.iter().map(Secret::expose))))?;
        config.pulled_from_env = pulled;
        Ok(config)
    }
}

fn parse_file(text: &str, origin: &str) -> Result<Map<String, Value>, ConfigError> {
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    let value: Value = serde_yaml_ng::from_str(text).map_err(|err| {
        ConfigError::one(
            origin,
            &format!("is not valid YAML: {err}"),
            "fix the YAML at the place named (note that a bare #channel is a comment: quote it)",
        )
    })?;
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        other => Err(ConfigError::one(
            origin,
            &format!(
                "must be a mapping of keys to values, not `{}`",
                show(&other)
            ),
            "write one `key: value` per line, e.g. nickname: hamper",
        )),
    }
}

/// Applies `$VAR` substitution, then the environment overlay, then `DATABASE_URL`.
/// Returns the merged map and the values that `$VAR`s pulled in.
fn overlay(
    mut map: Map<String, Value>,
    env: &HashMap<String, String>,
) -> Result<(Map<String, Value>, Vec<Secret>), ConfigError> {
    let mut pulled = Vec::new();
    let mut errors = Vec::new();
    for (key, value) in map.iter_mut() {
        substitute_env(key, value, env, &mut errors, &mut pulled);
    }
    // `plugins` first, so a section for a plugin named only in the environment is found.
    let mut keys: Vec<&str> = KNOWN_KEYS.to_vec();
    keys.sort_by_key(|k| *k != "plugins");
    for key in keys {
        if let Some(raw) = env.get(key) {
            map.insert(key.to_string(), parse_env_value(key, raw, &mut errors));
        }
    }
    let plugin_names: Vec<String> = match map.get("plugins") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|p| match p {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => o.get("name").and_then(Value::as_str).map(str::to_string),
                _ => None,
            })
            .collect(),
        None | Some(Value::Null) => DEFAULT_PLUGINS.iter().map(|s| s.to_string()).collect(),
        _ => Vec::new(),
    };
    for name in plugin_names {
        if let Some(raw) = env.get(&name) {
            let parsed = parse_env_value(&name, raw, &mut errors);
            map.insert(name, parsed);
        }
    }
    if let Some(url) = env.get("DATABASE_URL").filter(|u| !u.is_empty()) {
        map.insert("db".into(), Value::String(url.clone()));
    }
    if errors.is_empty() {
        Ok((map, pulled))
    } else {
        Err(ConfigError { errors })
    }
}

fn parse_env_value(key: &str, raw: &str, errors: &mut Vec<KeyError>) -> Value {
    match serde_yaml_ng::from_str::<Value>(raw) {
        Ok(Value::Null) if raw.trim_start().starts_with('#') => {
            errors.push(KeyError::new(
                key,
                &format!("the environment value `{raw}` is a YAML comment, so it is empty"),
                &format!(
                    "quote it as a YAML list: {key}='[{}]'",
                    raw.split(',')
                        .map(|item| format!("\"{}\"", item.trim()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
            Value::Null
        }
        Ok(value) => value,
        Err(_) => Value::String(raw.to_string()),
    }
}

fn substitute_env(
    key: &str,
    value: &mut Value,
    env: &HashMap<String, String>,
    errors: &mut Vec<KeyError>,
    pulled: &mut Vec<Secret>,
) {
    match value {
        // `$a:NAME` is a services account (owners, the ACL), never a variable.
        Value::String(s) if s.starts_with('$') && s.len() > 1 && !s.starts_with(ACCOUNT_PREFIX) => {
            let var = &s[1..];
            match env.get(var) {
                Some(v) => {
                    pulled.push(Secret(v.clone()));
                    *s = v.clone();
                }
                None => errors.push(KeyError::new(
                    key,
                    &format!("refers to the environment variable {var}, which is not set"),
                    &format!("set {var} in the environment, or write the value itself"),
                )),
            }
        }
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                substitute_env(&format!("{key}.{k}"), v, env, errors, pulled);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                substitute_env(&format!("{key}[{i}]"), v, env, errors, pulled);
            }
        }
        _ => {}
    }
}
