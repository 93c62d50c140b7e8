//! Configuration: `hamper.conf` (YAML) overlaid by environment variables, as the original did.
//!
//! The original read every environment variable into the config; hamper takes only variables
//! that name a known key or a configured plugin (reference §6.8), parses each as YAML (so
//! `plugins='[karma,help,sed]'` is a list), and lets `DATABASE_URL` override `db`. String values
//! that start with `$` are replaced by that environment variable, as in the original. Every
//! problem is collected and reported together, each naming its key and the fix.
//!
//! The module follows the path of a value: [`source`] merges the file, the environment and
//! `$VAR`s into one map; [`keys`] (with [`plugins`], [`access`] and [`value`]) reads and validates each key
//! into the [`model`] types, collecting every [`error`]; [`present`] shows the result with its
//! secrets masked.

mod access;
mod error;
mod keys;
mod login;
mod model;
mod plugins;
mod present;
mod source;
mod value;

#[cfg(test)]
mod tests;

pub use error::{ConfigError, KeyError};
pub use keys::KNOWN_KEYS;
pub use model::{
    ChannelSpec, Config, Flood, Grant, LogFormat, PluginLimits, PluginSpec, Sasl, SaslMechanism,
    Secret, DEFAULT_DB, DEFAULT_FAILED_RETRY, DEFAULT_INBOX, DEFAULT_PLUGINS,
};
