//! The resolved configuration: the types the rest of the bot reads.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};

use super::error::{ConfigError, KeyError};
use crate::acl::Access;

/// The plugins run when the config names none.
pub const DEFAULT_PLUGINS: &[&str] = &["karma", "help", "sed"];

/// The database used when neither `db` nor `DATABASE_URL` is set: a file in the working directory.
pub const DEFAULT_DB: &str = "sqlite:hamper.db";

/// A string that is never printed or logged as it is.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub(super) String);

impl Secret {
    /// Wraps a value that must not be shown.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"********\"")
    }
}

/// How the bot logs in with SASL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslMechanism {
    /// Account name and password (`sasl_username`, `sasl_password`).
    Plain {
        /// The account name.
        username: String,
        /// Its password.
        password: Secret,
    },
    /// The TLS client certificate (`ssl_cert`, `ssl_key`).
    External,
}

impl SaslMechanism {
    /// The name servers use for it.
    pub fn name(&self) -> &'static str {
        match self {
            SaslMechanism::Plain { .. } => "PLAIN",
            SaslMechanism::External => "EXTERNAL",
        }
    }
}

/// A SASL login, completed before registration ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sasl {
    /// How to log in.
    pub mechanism: SaslMechanism,
    /// Whether a failed login stops the bot (`sasl_required`, default true).
    pub required: bool,
}

/// A channel to join, with its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSpec {
    /// `#name`.
    pub name: String,
    /// The key, if the channel has one.
    pub key: Option<Secret>,
}

/// Something a plugin may do beyond replying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Grant {
    /// Send `join`.
    Join,
    /// Send `part`.
    Part,
    /// Send `raw` IRC lines.
    Raw,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// For people: one line per event, fields as `key=value`.
    #[default]
    Text,
    /// For log drains: one JSON object per line.
    Json,
}

/// How fast the bot may send lines to the IRC server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Flood {
    /// No pacing at all: for a private server or a benchmark.
    Off,
    /// A token bucket: `burst` lines at once, then `per_second` lines a second.
    Bucket {
        /// Lines that may go out back to back after a quiet spell.
        burst: u32,
        /// The steady rate once the burst is spent.
        per_second: f64,
    },
}

impl Flood {
    /// Lines at once after a quiet spell, by default.
    pub const DEFAULT_BURST: u32 = 5;
    /// Lines a second after the burst, by default.
    pub const DEFAULT_PER_SECOND: f64 = 2.0;
}

impl Default for Flood {
    /// Five lines at once, then two a second: what public networks tolerate.
    fn default() -> Self {
        Flood::Bucket {
            burst: Flood::DEFAULT_BURST,
            per_second: Flood::DEFAULT_PER_SECOND,
        }
    }
}

/// How long a failed plugin waits before it is tried again, by default.
pub const DEFAULT_FAILED_RETRY: Duration = Duration::from_secs(300);

/// One configured plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginSpec {
    /// Its name: the key of its config section and its namespace in storage.
    pub name: String,
    /// The program and its arguments; `None` means `hamper-<name>` found next to `hamper` or on PATH.
    pub command: Option<Vec<String>>,
    /// More arguments after the command.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: BTreeMap<String, String>,
    /// What it may do beyond replying.
    pub grants: Vec<Grant>,
    /// Timing and restart limits.
    pub limits: PluginLimits,
}

/// Supervision timings for one plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginLimits {
    /// How long the plugin has to send its hello.
    pub handshake_timeout: Duration,
    /// How often a running plugin is pinged.
    pub ping_interval: Duration,
    /// How long a ping may go unanswered before the plugin counts as hung.
    pub ping_timeout: Duration,
    /// Crashes within `restart_window` that mark the plugin failed.
    pub max_restarts: u32,
    /// The window for `max_restarts`.
    pub restart_window: Duration,
    /// How long a failed plugin waits before it is tried again; `None` (`off`) leaves it failed.
    pub failed_retry: Option<Duration>,
    /// Bytes of events that may wait for the plugin before more are dropped.
    pub inbox: usize,
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits {
            handshake_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(30),
            ping_timeout: Duration::from_secs(20),
            max_restarts: 5,
            restart_window: Duration::from_secs(60),
            failed_retry: Some(DEFAULT_FAILED_RETRY),
            inbox: DEFAULT_INBOX,
        }
    }
}

/// Bytes of events that may wait for one plugin by default: a burst of about 20,000 chat lines.
pub const DEFAULT_INBOX: usize = 8 * 1024 * 1024;

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The bot's nick.
    pub nickname: String,
    /// The IRC server's host name (required by `hamper run`).
    pub server: Option<String>,
    /// The port; 6697 with `ssl`, else 6667, unless set.
    pub port: u16,
    /// Whether to use TLS.
    pub ssl: bool,
    /// Whether to verify the server's TLS certificate (default true).
    pub ssl_verify: bool,
    /// A PEM file of CA certificates trusted besides the public and system roots.
    pub ssl_ca: Option<PathBuf>,
    /// A PEM file with the client certificate presented in the TLS handshake.
    pub ssl_cert: Option<PathBuf>,
    /// A PEM file with that certificate's private key.
    pub ssl_key: Option<PathBuf>,
    /// Channels to join.
    pub channels: Vec<ChannelSpec>,
    /// Server password (PASS), also used to identify with NickServ when there is no SASL login.
    pub password: Option<Secret>,
    /// The SASL login, when one is configured.
    pub sasl: Option<Sasl>,
    /// The database URL: a SQLite file or `postgres://…`.
    pub db: Secret,
    /// The plugins to run, in order.
    pub plugins: Vec<PluginSpec>,
    /// The command prefix.
    pub command_prefix: String,
    /// Who may use commands that name a permission: the owners (hostmasks, accounts or
    /// explicit nicks) and the ACL, if one is configured.
    pub access: Access,
    /// The file the ACL was read from, when `acl` names one.
    pub acl_file: Option<PathBuf>,
    /// Where to look for `hamper-<name>` binaries before the `hamper` executable's folder.
    pub plugin_dir: Option<PathBuf>,
    /// Output pacing towards the IRC server.
    pub flood: Flood,
    /// Silence from the IRC server after which the bot pings it.
    pub ping_interval: Duration,
    /// How long the server may leave that ping unanswered before the bot reconnects.
    pub ping_timeout: Duration,
    /// Whether the bot joins a channel again, a few seconds after it was kicked.
    pub rejoin_on_kick: bool,
    /// How log lines are written.
    pub log_format: LogFormat,
    /// Which log lines are written (a `RUST_LOG`-style filter), unless `RUST_LOG` is set.
    pub log_level: Option<String>,
    /// Each plugin's own section (`null` when it has none), and any other top-level key.
    pub sections: BTreeMap<String, Value>,
    /// Things that are not errors but probably mistakes, for the log and `check-config`.
    pub warnings: Vec<String>,
    /// The values `$VAR`s pulled in from the environment: masked wherever they appear, whatever
    /// the key they sit under.
    pub pulled_from_env: Vec<Secret>,
}

impl Config {
    /// The configuration used when there is no file and no environment: console defaults.
    pub fn defaults() -> Config {
        // Invariant: the empty map has no errors to report.
        #[allow(clippy::expect_used)]
        Config::from_map(Map::new(), None).expect("defaults are valid")
    }

    /// The plugin's own config section, or `null`.
    pub fn section(&self, plugin: &str) -> Value {
        self.sections.get(plugin).cloned().unwrap_or(Value::Null)
    }

    /// Checks what `hamper run` needs beyond a valid file: a server and a nick.
    pub fn check_runnable(&self) -> Result<(), ConfigError> {
        let mut errors = Vec::new();
        if self.server.as_deref().is_none_or(str::is_empty) {
            errors.push(KeyError::new(
                "server",
                "is not set",
                "set `server: irc.libera.chat` in hamper.conf, or server=irc.libera.chat in the environment; `hamper console` needs no server",
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigError { errors })
        }
    }
}

impl PluginSpec {
    /// A built-in plugin known by name, with default limits.
    pub fn named(name: &str) -> PluginSpec {
        PluginSpec {
            name: name.to_string(),
            command: None,
            args: Vec::new(),
            env: BTreeMap::new(),
            grants: Vec::new(),
            limits: PluginLimits::default(),
        }
    }

    /// Whether the plugin holds `grant`.
    pub fn has(&self, grant: Grant) -> bool {
        self.grants.contains(&grant)
    }
}
