//! The keys that say who may do what: `owners` (identities) and `acl` (inline, or the path of
//! the original's JSON file, relative to the config file's folder).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::error::KeyError;
use super::value::show;
use crate::acl::{Acl, AclProblem};
use crate::identity::Identity;

/// Reads `owners`: a list of identities, each checked; spoofable ones are warned about.
pub(super) fn parse_owners(
    v: &Value,
    errors: &mut Vec<KeyError>,
    warnings: &mut Vec<String>,
) -> Vec<Identity> {
    let Value::Array(items) = v else {
        errors.push(KeyError::new(
            "owners",
            &format!("`{}` is not a list", show(v)),
            "set owners: [\"alice!*@alice.example\", \"$a:alice\"]",
        ));
        return Vec::new();
    };
    let mut owners = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let key = format!("owners[{i}]");
        let Value::String(text) = item else {
            errors.push(KeyError::new(
                &key,
                &format!("`{}` is not a string", show(item)),
                "write each owner as a string: a hostmask \"alice!*@alice.example\", an account \"$a:alice\" or a nick \"nick:alice\"",
            ));
            continue;
        };
        match Identity::parse(text) {
            Ok(id) => {
                if let Some(w) = id.warning() {
                    warnings.push(format!("{key}: {w}"));
                }
                owners.push(id);
            }
            Err(e) => errors.push(KeyError::new(&key, &e.problem, &e.fix)),
        }
    }
    owners
}

/// Reads `acl`: the ACL itself as a mapping, or the path of a JSON file holding it (relative
/// paths from `base`, the config file's folder). Returns the ACL and, for a file, its path.
pub(super) fn parse_acl(
    v: &Value,
    base: Option<&Path>,
    errors: &mut Vec<KeyError>,
    warnings: &mut Vec<String>,
) -> (Option<Acl>, Option<PathBuf>) {
    let (value, prefix, file) = match v {
        Value::String(path) if !path.trim().is_empty() => {
            let path = match base {
                Some(dir) => dir.join(path),
                None => PathBuf::from(path),
            };
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(err) => {
                    errors.push(KeyError::new(
                        "acl",
                        &format!("cannot read {}: {err}", path.display()),
                        "give the path of an ACL file in the original's JSON format (a relative path is taken from the config file's folder), or write the ACL itself under acl:",
                    ));
                    return (None, None);
                }
            };
            match serde_json::from_str::<Value>(&text) {
                Ok(value) => (value, format!("acl ({})", path.display()), Some(path)),
                Err(err) => {
                    errors.push(KeyError::new(
                        "acl",
                        &format!("{} is not valid JSON: {err}", path.display()),
                        "fix the JSON at the place named; the file is {\"groups\": {...}, \"permissions\": {...}}",
                    ));
                    return (None, None);
                }
            }
        }
        Value::Object(_) => (v.clone(), "acl".to_string(), None),
        other => {
            errors.push(KeyError::new(
                "acl",
                &format!("`{}` is neither a mapping nor a file name", show(other)),
                "write the ACL itself, acl: {groups: {...}, permissions: {...}}, or the path of the original's acl.json, acl: acl.json",
            ));
            return (None, None);
        }
    };
    match Acl::from_json(&value, &prefix) {
        Ok((acl, found)) => {
            warnings.extend(found);
            (Some(acl), file)
        }
        Err(problems) => {
            errors.extend(
                problems
                    .into_iter()
                    .map(|AclProblem { key, problem, fix }| KeyError { key, problem, fix }),
            );
            (None, file)
        }
    }
}
