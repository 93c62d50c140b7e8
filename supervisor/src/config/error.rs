//! Configuration errors: every problem is collected, each naming its key and the fix.

use std::fmt;

use crate::redact::Redactor;

/// One problem with one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError {
    /// The key, e.g. `port` or `plugins[2].command`.
    pub key: String,
    /// What is wrong.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

impl KeyError {
    pub(super) fn new(key: &str, problem: &str, fix: &str) -> KeyError {
        KeyError {
            key: key.to_string(),
            problem: problem.to_string(),
            fix: fix.to_string(),
        }
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}; fix: {}", self.key, self.problem, self.fix)
    }
}

/// Every problem found in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The problems, in key order.
    pub errors: Vec<KeyError>,
}

impl ConfigError {
    pub(super) fn one(key: &str, problem: &str, fix: &str) -> ConfigError {
        ConfigError {
            errors: vec![KeyError::new(key, problem, fix)],
        }
    }
}

impl ConfigError {
    /// The errors with the secrets `redactor` knows masked.
    pub(super) fn redacted(self, redactor: &Redactor) -> ConfigError {
        let mask = |text: String| redactor.redact(&text).into_owned();
        ConfigError {
            errors: self
                .errors
                .into_iter()
                .map(|e| KeyError {
                    key: mask(e.key),
                    problem: mask(e.problem),
                    fix: mask(e.fix),
                })
                .collect(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration:")?;
        for e in &self.errors {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}
