//! Reading one YAML value as a string, list, flag, number of seconds; shared by every key.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::error::KeyError;

/// Levenshtein distance, for "did you mean" hints on short keys.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A true-or-false setting, `default` when absent; a bad value is an error with `fix`.
pub(super) fn boolean(
    value: Option<&Value>,
    key: &str,
    default: bool,
    fix: &str,
    errors: &mut Vec<KeyError>,
) -> bool {
    let Some(v) = value else {
        return default;
    };
    as_bool(v).unwrap_or_else(|| {
        errors.push(KeyError::new(
            key,
            &format!("`{}` is not true or false", show(v)),
            fix,
        ));
        default
    })
}

/// A number of seconds from 0.1 to 3600, `default` when absent.
pub(super) fn seconds(
    value: Option<&Value>,
    key: &str,
    default: u64,
    errors: &mut Vec<KeyError>,
) -> Duration {
    let Some(v) = value else {
        return Duration::from_secs(default);
    };
    match v
        .as_f64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .filter(|s| (0.1..=3600.0).contains(s))
    {
        Some(secs) => Duration::from_secs_f64(secs),
        None => {
            errors.push(KeyError::new(
                key,
                &format!("`{}` is not a number of seconds from 0.1 to 3600", show(v)),
                &format!("leave it out ({default} s) or write e.g. {key}: {default}"),
            ));
            Duration::from_secs(default)
        }
    }
}

/// A file path, `None` when absent; a value that is no path is an error with `fix`.
pub(super) fn path(
    value: Option<&Value>,
    key: &str,
    fix: &str,
    errors: &mut Vec<KeyError>,
) -> Option<PathBuf> {
    let v = value?;
    match scalar_string(v).filter(|p| !p.trim().is_empty()) {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            errors.push(KeyError::new(
                key,
                &format!("`{}` is not a file path", show(v)),
                fix,
            ));
            None
        }
    }
}

pub(super) fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(super) fn string_list(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Array(items) => items.iter().map(scalar_string).collect(),
        _ => None,
    }
}

pub(super) fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Some(true),
            "false" | "no" | "off" | "0" => Some(false),
            _ => None,
        },
        Value::Number(n) => n.as_u64().filter(|n| *n <= 1).map(|n| n == 1),
        _ => None,
    }
}

pub(super) fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
