//! Showing the configuration: `check-config`'s view, with every secret masked by key and by value.

use std::borrow::Cow;

use serde_json::{json, Map, Value};

use super::model::{Config, Flood, LogFormat, SaslMechanism, Secret};
use crate::redact::{looks_secret, Redactor, MASK};

impl Config {
    /// The configuration as YAML-ready data with every secret masked, for `check-config`.
    pub fn masked(&self) -> Value {
        let plugins: Vec<Value> = self
            .plugins
            .iter()
            .map(|p| {
                let env: Map<String, Value> = p
                    .env
                    .iter()
                    .map(|(k, v)| {
                        let shown = if looks_secret(k) { mask() } else { v.clone() };
                        (k.clone(), Value::String(shown))
                    })
                    .collect();
                json!({
                    "name": p.name,
                    "command": p.command,
                    "args": p.args,
                    "env": env,
                    "grants": p.grants.iter().map(|g| format!("{g:?}").to_lowercase()).collect::<Vec<_>>(),
                    "handshake_timeout": p.limits.handshake_timeout.as_secs_f64(),
                    "ping_interval": p.limits.ping_interval.as_secs_f64(),
                    "ping_timeout": p.limits.ping_timeout.as_secs_f64(),
                    "max_restarts": p.limits.max_restarts,
                    "restart_window": p.limits.restart_window.as_secs_f64(),
                    "failed_retry": match p.limits.failed_retry {
                        Some(d) => json!(d.as_secs_f64()),
                        None => json!("off"),
                    },
                    "inbox": p.limits.inbox,
                })
            })
            .collect();
        let mut out = json!({
            "nickname": self.nickname,
            "server": self.server,
            "port": self.port,
            "ssl": self.ssl,
            "ssl_verify": self.ssl_verify,
            "ssl_ca": self.ssl_ca,
            "channels": self.channels.iter().map(|c| match c.key {
                Some(_) => format!("{} {}", c.name, mask()),
                None => c.name.clone(),
            }).collect::<Vec<_>>(),
            "password": self.password.as_ref().map(|_| mask()),
            "ssl_cert": self.ssl_cert,
            "ssl_key": self.ssl_key,
            "sasl_mechanism": self.sasl.as_ref().map(|s| s.mechanism.name()),
            "sasl_username": match self.sasl.as_ref().map(|s| &s.mechanism) {
                Some(SaslMechanism::Plain { username, .. }) => Some(username.as_str()),
                _ => None,
            },
            "sasl_password": self.sasl_password().map(|_| mask()),
            "sasl_required": self.sasl.as_ref().map(|s| s.required),
            "db": hamper_storage::redact_url(self.db.expose()),
            "plugins": plugins,
            "command_prefix": self.command_prefix,
            "owners": self.access.owners.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "acl": match (&self.acl_file, &self.access.acl) {
                (Some(file), _) => json!(file),
                (None, Some(acl)) => acl.to_json(),
                (None, None) => Value::Null,
            },
            "plugin_dir": self.plugin_dir,
            "rejoin_on_kick": self.rejoin_on_kick,
            "log_format": match self.log_format {
                LogFormat::Text => "text",
                LogFormat::Json => "json",
            },
            "log_level": self.log_level,
            "ping_interval": self.ping_interval.as_secs_f64(),
            "ping_timeout": self.ping_timeout.as_secs_f64(),
            "flood": match self.flood {
                Flood::Off => json!("off"),
                Flood::Bucket { burst, per_second } => json!({"burst": burst, "per_second": per_second}),
            },
        });
        if let Value::Object(map) = &mut out {
            for (name, section) in &self.sections {
                map.insert(name.clone(), mask_secrets(section));
            }
        }
        // Then by value: a secret also hides under an innocent key (`weather: {api: $KEY}`,
        // the server password pasted into a plugin's section).
        mask_values(&mut out, &self.redactor());
        out
    }

    /// Every secret value of the configuration, for masking by value: whatever a `$VAR` pulled
    /// in from the environment (under any key), the server password, the channel keys, the
    /// secrets of the database URL, and the values of plugin `env` entries and section keys
    /// named like secrets.
    pub fn secret_values(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .pulled_from_env
            .iter()
            .chain(&self.password)
            .chain(self.sasl_password())
            .chain(self.channels.iter().filter_map(|c| c.key.as_ref()))
            .map(|s| s.expose().to_string())
            .collect();
        out.extend(hamper_storage::url_secrets(self.db.expose()));
        for plugin in &self.plugins {
            out.extend(
                plugin
                    .env
                    .iter()
                    .filter(|(k, _)| looks_secret(k))
                    .map(|(_, v)| v.clone()),
            );
        }
        for section in self.sections.values() {
            secret_keyed_values(section, false, &mut out);
        }
        out
    }

    /// A redactor for [`Config::secret_values`].
    pub fn redactor(&self) -> Redactor {
        Redactor::new(self.secret_values())
    }
}

impl Config {
    fn sasl_password(&self) -> Option<&Secret> {
        match self.sasl.as_ref().map(|s| &s.mechanism) {
            Some(SaslMechanism::Plain { password, .. }) => Some(password),
            _ => None,
        }
    }
}

fn mask() -> String {
    MASK.to_string()
}

/// The values that `check-config` masks by key, at any depth: a scalar, or the items of a list,
/// under a key named like a secret.
fn secret_keyed_values(v: &Value, under_secret: bool, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                secret_keyed_values(v, looks_secret(k) && !v.is_object(), out);
            }
        }
        Value::Array(items) => {
            for v in items {
                secret_keyed_values(v, under_secret, out);
            }
        }
        Value::String(s) if under_secret => out.push(s.clone()),
        Value::Number(n) if under_secret => out.push(n.to_string()),
        _ => {}
    }
}

/// Masks every secret inside every string of `v`.
fn mask_values(v: &mut Value, redactor: &Redactor) {
    match v {
        Value::String(s) => {
            if let Cow::Owned(masked) = redactor.redact(s) {
                *s = masked;
            }
        }
        Value::Object(map) => map.values_mut().for_each(|v| mask_values(v, redactor)),
        Value::Array(items) => items.iter_mut().for_each(|v| mask_values(v, redactor)),
        _ => {}
    }
}

fn mask_secrets(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let shown = if looks_secret(k) && !v.is_object() && !v.is_null() {
                        Value::String(mask())
                    } else {
                        mask_secrets(v)
                    };
                    (k.clone(), shown)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(mask_secrets).collect()),
        other => other.clone(),
    }
}
