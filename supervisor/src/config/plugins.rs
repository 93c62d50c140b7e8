//! The `plugins` list: names, external programs, grants and supervision limits.

use std::time::Duration;

use serde_json::{Map, Value};

use super::error::KeyError;
use super::model::{Grant, PluginSpec};
use super::value::{as_bool, scalar_string, show, string_list};

const MIN_INBOX: usize = 64 * 1024;
const MAX_INBOX: usize = 1024 * 1024 * 1024;

/// A size in bytes: a whole number, or one with a unit (`512KiB`, `8MiB`, `1GiB`; `K`, `KB`,
/// `M`, `MB`, `G`, `GB` mean the same powers of 1024).
fn parse_size(v: &Value) -> Option<usize> {
    if let Some(n) = v.as_u64() {
        return usize::try_from(n).ok();
    }
    let text = v.as_str()?.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: usize = digits.parse().ok()?;
    let scale: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(scale)
}

pub(super) fn parse_plugins(v: &Value, errors: &mut Vec<KeyError>) -> Vec<PluginSpec> {
    let Value::Array(items) = v else {
        errors.push(KeyError::new(
            "plugins",
            &format!("`{}` is not a list", show(v)),
            "set plugins: [karma, help, sed] (in the environment: plugins='[karma,help,sed]')",
        ));
        return Vec::new();
    };
    let mut out: Vec<PluginSpec> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("plugins[{i}]");
        let spec = match item {
            Value::String(name) => Some(PluginSpec::named(name)),
            Value::Object(o) => parse_plugin_entry(&at, o, errors),
            other => {
                errors.push(KeyError::new(
                    &at,
                    &format!("`{}` is not a plugin", show(other)),
                    "write a name (karma) or {name: weather, command: [\"python3\", \"plugins/weather.py\"]}",
                ));
                None
            }
        };
        let Some(spec) = spec else { continue };
        if !valid_plugin_name(&spec.name) {
            errors.push(KeyError::new(
                &at,
                &format!("`{}` is not a usable plugin name", spec.name),
                "use lowercase letters, digits, - and _ (the name is also a config key and a storage namespace)",
            ));
            continue;
        }
        if out.iter().any(|p| p.name == spec.name) {
            errors.push(KeyError::new(
                &at,
                &format!("plugin `{}` is listed twice", spec.name),
                "remove one, or give the second a different name",
            ));
            continue;
        }
        out.push(spec);
    }
    out
}

fn parse_plugin_entry(
    at: &str,
    o: &Map<String, Value>,
    errors: &mut Vec<KeyError>,
) -> Option<PluginSpec> {
    let Some(name) = o.get("name").and_then(scalar_string) else {
        errors.push(KeyError::new(
            &format!("{at}.name"),
            "is missing",
            "give every plugin entry a name: {name: weather, command: [...]}",
        ));
        return None;
    };
    let mut spec = PluginSpec::named(&name);
    for (key, value) in o {
        let here = format!("{at}.{key}");
        match key.as_str() {
            "name" => {}
            "command" => match value {
                Value::String(s) => spec.command = Some(vec![s.clone()]),
                other => match string_list(other) {
                    Some(cmd) if !cmd.is_empty() => spec.command = Some(cmd),
                    _ => errors.push(KeyError::new(&here, "is not a program and its arguments", "write command: [\"python3\", \"plugins/weather.py\"]")),
                },
            },
            "args" => match string_list(value) {
                Some(args) => spec.args = args,
                None => errors.push(KeyError::new(&here, "is not a list of strings", "write args: [\"--verbose\"]")),
            },
            "env" => match value.as_object() {
                Some(env) => {
                    for (k, v) in env {
                        match scalar_string(v) {
                            Some(s) => {
                                spec.env.insert(k.clone(), s);
                            }
                            None => errors.push(KeyError::new(&format!("{here}.{k}"), "is not a string", "quote the value")),
                        }
                    }
                }
                None => errors.push(KeyError::new(&here, "is not a mapping", "write env: {API_URL: \"https://…\"}")),
            },
            "grants" => match string_list(value) {
                Some(list) => {
                    for g in list {
                        match g.as_str() {
                            "join" => spec.grants.push(Grant::Join),
                            "part" => spec.grants.push(Grant::Part),
                            "raw" => spec.grants.push(Grant::Raw),
                            other => errors.push(KeyError::new(&here, &format!("`{other}` is not a grant"), "use join, part and raw")),
                        }
                    }
                }
                None => errors.push(KeyError::new(&here, "is not a list", "write grants: [join, part]")),
            },
            "handshake_timeout" | "ping_interval" | "ping_timeout" | "restart_window" => {
                match value.as_f64().filter(|s| *s >= 0.01 && *s < 86_400.0) {
                    Some(secs) => {
                        let d = Duration::from_secs_f64(secs);
                        match key.as_str() {
                            "handshake_timeout" => spec.limits.handshake_timeout = d,
                            "ping_interval" => spec.limits.ping_interval = d,
                            "ping_timeout" => spec.limits.ping_timeout = d,
                            _ => spec.limits.restart_window = d,
                        }
                    }
                    None => errors.push(KeyError::new(&here, &format!("`{}` is not a usable number of seconds", show(value)), "write a number of seconds from 0.01 to 86400, e.g. 10 or 0.5")),
                }
            }
            "failed_retry" => match parse_retry(value) {
                Some(retry) => spec.limits.failed_retry = retry,
                None => errors.push(KeyError::new(&here, &format!("`{}` is neither `off` nor a number of seconds from 0.01 to 86400", show(value)), "leave it out (300 s, five minutes), write a number of seconds such as 60, or off to leave a failed plugin failed")),
            },
            "max_restarts" => match value.as_u64().filter(|n| *n >= 1 && *n <= 100_000) {
                Some(n) => spec.limits.max_restarts = n as u32,
                None => errors.push(KeyError::new(&here, &format!("`{}` is not a positive whole number", show(value)), "write a number such as 5")),
            },
            "inbox" => match parse_size(value) {
                Some(n) if (MIN_INBOX..=MAX_INBOX).contains(&n) => spec.limits.inbox = n,
                Some(n) if n < MIN_INBOX => errors.push(KeyError::new(&here, &format!("`{}` is {n} bytes, too small for a burst of events (it is a size in bytes, not a count of events)", show(value)), "leave it out (8 MiB) or write a size such as 8MiB or 512KiB, at least 64KiB")),
                _ => errors.push(KeyError::new(&here, &format!("`{}` is not a size in bytes from 64KiB to 1GiB", show(value)), "write a size such as 8MiB, 512KiB or 1048576")),
            },
            other => errors.push(KeyError::new(
                &here,
                &format!("`{other}` is not a plugin entry key"),
                "use name, command, args, env, grants, handshake_timeout, ping_interval, ping_timeout, max_restarts, restart_window, failed_retry or inbox; the plugin's own settings go in a top-level section named after it",
            )),
        }
    }
    Some(spec)
}

/// `failed_retry`: `off` (or `false`, or 0) for never, or seconds.
fn parse_retry(v: &Value) -> Option<Option<Duration>> {
    if as_bool(v) == Some(false) {
        return Some(None);
    }
    let secs = v
        .as_f64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))?;
    if secs == 0.0 {
        Some(None)
    } else {
        (0.01..=86_400.0)
            .contains(&secs)
            .then(|| Some(Duration::from_secs_f64(secs)))
    }
}

fn valid_plugin_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}
