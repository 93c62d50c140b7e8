//! Configuration: `hamper.conf` (YAML) overlaid by environment variables, as the original did.
//!
//! The original read every environment variable into the config; hamper takes only variables
//! that name a known key or a configured plugin (reference §6.8), parses each as YAML (so
//! `plugins='[karma,help,sed]'` is a list), and lets `DATABASE_URL` override `db`. String values
//! that start with `$` are replaced by that environment variable, as in the original. Every
//! problem is collected and reported together, each naming its key and the fix.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Map, Value};

/// The keys hamper itself understands; any other top-level key is a plugin's section.
pub const KNOWN_KEYS: &[&str] = &[
    "nickname",
    "server",
    "port",
    "ssl",
    "ssl_verify",
    "channels",
    "password",
    "db",
    "plugins",
    "command_prefix",
    "owners",
    "plugin_dir",
    "flood",
    "ping_interval",
    "ping_timeout",
    "log_format",
    "log_level",
    "rejoin_on_kick",
];

/// The plugins run when the config names none.
pub const DEFAULT_PLUGINS: &[&str] = &["karma", "help", "sed"];

/// The database used when neither `db` nor `DATABASE_URL` is set: a file in the working directory.
pub const DEFAULT_DB: &str = "sqlite:hamper.db";

/// A string that is never printed or logged as it is.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
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
            inbox: DEFAULT_INBOX,
        }
    }
}

/// Bytes of events that may wait for one plugin by default: a burst of about 20,000 chat lines.
pub const DEFAULT_INBOX: usize = 8 * 1024 * 1024;
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
    /// Channels to join.
    pub channels: Vec<ChannelSpec>,
    /// Server password (PASS), also used to identify with NickServ.
    pub password: Option<Secret>,
    /// The database URL: a SQLite file or `postgres://…`.
    pub db: Secret,
    /// The plugins to run, in order.
    pub plugins: Vec<PluginSpec>,
    /// The command prefix.
    pub command_prefix: String,
    /// Hostmasks (`nick!user@host`, with `*` and `?`) of the bot's owners.
    pub owners: Vec<String>,
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
        Config::from_map(Map::new()).expect("defaults are valid")
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
            "channels": self.channels.iter().map(|c| match c.key {
                Some(_) => format!("{} {}", c.name, mask()),
                None => c.name.clone(),
            }).collect::<Vec<_>>(),
            "password": self.password.as_ref().map(|_| mask()),
            "db": redact_url(self.db.expose()),
            "plugins": plugins,
            "command_prefix": self.command_prefix,
            "owners": self.owners,
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
        let secrets: Vec<&str> = self
            .pulled_from_env
            .iter()
            .chain(&self.password)
            .chain(self.channels.iter().filter_map(|c| c.key.as_ref()))
            .map(Secret::expose)
            .filter(|s| s.len() >= MIN_MASKED_LEN)
            .collect();
        mask_values(&mut out, &secrets);
        out
    }

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
        let mut config = Config::from_map(merged)?;
        config.pulled_from_env = pulled;
        Ok(config)
    }

    fn from_map(map: Map<String, Value>) -> Result<Config, ConfigError> {
        let mut errors = Vec::new();
        let get = |key: &str| map.get(key).filter(|v| !v.is_null());

        let nickname = match get("nickname") {
            None => "hamper".to_string(),
            Some(v) => scalar_string(v)
                .filter(|n| valid_nick(n))
                .unwrap_or_else(|| {
                    errors.push(KeyError::new(
                        "nickname",
                        &format!("`{}` is not a valid IRC nick", show(v)),
                        "use letters, digits and _-[]\\^{}|` only, not starting with a digit, e.g. nickname: hamper",
                    ));
                    "hamper".to_string()
                }),
        };
        let server = match get("server") {
            None => None,
            Some(v) => match scalar_string(v)
                .filter(|s| !s.is_empty() && !s.contains(char::is_whitespace))
            {
                Some(s) => Some(s),
                None => {
                    errors.push(KeyError::new(
                        "server",
                        &format!("`{}` is not a host name", show(v)),
                        "set a host name such as irc.libera.chat",
                    ));
                    None
                }
            },
        };
        let ssl = boolean(
            get("ssl"),
            "ssl",
            false,
            "set ssl: true or ssl: false",
            &mut errors,
        );
        let ssl_verify = boolean(
            get("ssl_verify"),
            "ssl_verify",
            true,
            "leave it out (certificates are verified) or set ssl_verify: false for a self-signed test server",
            &mut errors,
        );
        let port = match get("port") {
            None => {
                if ssl {
                    6697
                } else {
                    6667
                }
            }
            Some(v) => match v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            {
                Some(p) if (1..=65535).contains(&p) => p as u16,
                _ => {
                    errors.push(KeyError::new(
                        "port",
                        &format!("`{}` is not a port number", show(v)),
                        "set a number from 1 to 65535, e.g. port: 6697 with ssl: true",
                    ));
                    6667
                }
            },
        };
        let channels = match get("channels") {
            None => Vec::new(),
            Some(v) => parse_channels(v, &mut errors),
        };
        let password = match get("password") {
            None => None,
            Some(v) => match scalar_string(v) {
                Some(s) if !s.is_empty() => Some(Secret(s)),
                _ => {
                    errors.push(KeyError::new(
                        "password",
                        "is not a string",
                        "quote it: password: \"…\"",
                    ));
                    None
                }
            },
        };
        let db = match get("db") {
            None => DEFAULT_DB.to_string(),
            Some(v) => scalar_string(v).filter(|s| !s.is_empty()).unwrap_or_else(|| {
                errors.push(KeyError::new("db", &format!("`{}` is not a database URL", show(v)), "set db: sqlite:hamper.db or db: postgres://user:pass@host/dbname (or set DATABASE_URL)"));
                DEFAULT_DB.to_string()
            }),
        };
        let command_prefix = match get("command_prefix") {
            None => "!".to_string(),
            Some(v) => match scalar_string(v) {
                Some(p) if !p.is_empty() && !p.contains(char::is_whitespace) => p,
                _ => {
                    errors.push(KeyError::new("command_prefix", &format!("`{}` is not a usable prefix", show(v)), "set one or more non-space characters, e.g. command_prefix: \"!\" (quote it in YAML)"));
                    "!".to_string()
                }
            },
        };
        let owners = match get("owners") {
            None => Vec::new(),
            Some(v) => string_list(v).unwrap_or_else(|| {
                errors.push(KeyError::new(
                    "owners",
                    "is not a list of hostmasks",
                    "set owners: [\"alice!*@example.org\"]",
                ));
                Vec::new()
            }),
        };
        let plugin_dir = get("plugin_dir").and_then(scalar_string).map(PathBuf::from);
        let log_format = match get("log_format").map(|v| (v, scalar_string(v))) {
            None => LogFormat::Text,
            Some((_, Some(f))) if f.eq_ignore_ascii_case("text") => LogFormat::Text,
            Some((_, Some(f))) if f.eq_ignore_ascii_case("json") => LogFormat::Json,
            Some((v, _)) => {
                errors.push(KeyError::new(
                    "log_format",
                    &format!("`{}` is not a log format", show(v)),
                    "set log_format: text (for people) or log_format: json (for a log drain)",
                ));
                LogFormat::Text
            }
        };
        let log_level = match get("log_level") {
            None => None,
            Some(v) => match scalar_string(v).filter(|l| {
                !l.trim().is_empty() && tracing_subscriber::EnvFilter::try_new(l).is_ok()
            }) {
                Some(level) => Some(level),
                None => {
                    errors.push(KeyError::new(
                        "log_level",
                        &format!("`{}` is not a log filter", show(v)),
                        "set a level (error, warn, info, debug, trace) or RUST_LOG-style directives such as info,hamper::irc=debug",
                    ));
                    None
                }
            },
        };
        let rejoin_on_kick = boolean(
            get("rejoin_on_kick"),
            "rejoin_on_kick",
            true,
            "leave it out (true: join again 5 s after a kick) or set rejoin_on_kick: false",
            &mut errors,
        );
        let ping_interval = seconds(get("ping_interval"), "ping_interval", 30, &mut errors);
        let ping_timeout = seconds(get("ping_timeout"), "ping_timeout", 20, &mut errors);
        let flood = match get("flood") {
            None => Flood::default(),
            Some(v) => parse_flood(v).unwrap_or_else(|problem| {
                errors.push(KeyError::new(
                    "flood",
                    &format!("`{}` {problem}", show(v)),
                    "set flood: off, or flood: {burst: 5, per_second: 2} (burst a whole number from 1 to 1000, per_second a number above 0 and at most 1000)",
                ));
                Flood::default()
            }),
        };
        let plugins = match get("plugins") {
            None => DEFAULT_PLUGINS
                .iter()
                .map(|n| PluginSpec::named(n))
                .collect(),
            Some(v) => parse_plugins(v, &mut errors),
        };

        let mut sections = BTreeMap::new();
        for p in &plugins {
            if KNOWN_KEYS.contains(&p.name.as_str()) {
                errors.push(KeyError::new(
                    &format!("plugins.{}", p.name),
                    "uses the name of a core config key",
                    "rename the plugin (e.g. {name: my-db, command: [...]})",
                ));
            }
            sections.insert(
                p.name.clone(),
                map.get(&p.name).cloned().unwrap_or(Value::Null),
            );
        }
        // Other top-level keys are kept as sections too (for `hamper plugin NAME` and plugins
        // enabled later), but one that looks like a misspelt core key is worth a warning.
        let mut warnings = Vec::new();
        for (key, value) in &map {
            if KNOWN_KEYS.contains(&key.as_str()) || sections.contains_key(key) {
                continue;
            }
            let near = |k: &&&str| key.len() >= 4 && edit_distance(k, key) <= 2;
            let hint = match KNOWN_KEYS.iter().find(near) {
                Some(k) => format!("; did you mean `{k}`?"),
                None => String::new(),
            };
            warnings.push(format!(
                "`{key}` is not a hamper setting and no configured plugin has that name, so nothing uses it (it is kept as a section for a plugin of that name){hint}"
            ));
            sections.insert(key.clone(), value.clone());
        }
        if errors.is_empty() {
            Ok(Config {
                nickname,
                server,
                port,
                ssl,
                ssl_verify,
                channels,
                password,
                db: Secret(db),
                plugins,
                command_prefix,
                owners,
                plugin_dir,
                flood,
                ping_interval,
                ping_timeout,
                rejoin_on_kick,
                log_format,
                log_level,
                sections,
                warnings,
                pulled_from_env: Vec::new(),
            })
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
    fn new(key: &str, problem: &str, fix: &str) -> KeyError {
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
    fn one(key: &str, problem: &str, fix: &str) -> ConfigError {
        ConfigError {
            errors: vec![KeyError::new(key, problem, fix)],
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
        Value::String(s) if s.starts_with('$') && s.len() > 1 => {
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

fn parse_channels(v: &Value, errors: &mut Vec<KeyError>) -> Vec<ChannelSpec> {
    let items: Vec<String> = match v {
        Value::String(s) => s.split(',').map(|c| c.trim().to_string()).collect(),
        Value::Array(items) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match scalar_string(item) {
                    Some(s) => out.push(s),
                    None => errors.push(KeyError::new(
                        &format!("channels[{i}]"),
                        &format!("`{}` is not a channel name", show(item)),
                        "write each channel as a string: \"#chan\" or \"#chan key\"",
                    )),
                }
            }
            out
        }
        other => {
            errors.push(KeyError::new(
                "channels",
                &format!("`{}` is not a list of channels", show(other)),
                "set channels: [\"#chan\", \"#secret key\"] (quoted: a bare # starts a YAML comment)",
            ));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let mut parts = item.splitn(2, ' ');
        let name = parts.next().unwrap_or("").trim().to_string();
        let key = parts
            .next()
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty());
        if !name.starts_with(['#', '&', '+', '!'])
            || name.len() < 2
            || name.contains([',', '\u{7}'])
        {
            errors.push(KeyError::new(
                &format!("channels[{i}]"),
                &format!("`{item}` is not a channel name"),
                "channel names start with # (or &), e.g. \"#hamper\"; a key follows after one space: \"#chan key\"",
            ));
            continue;
        }
        out.push(ChannelSpec {
            name,
            key: key.map(Secret),
        });
    }
    out
}

fn parse_plugins(v: &Value, errors: &mut Vec<KeyError>) -> Vec<PluginSpec> {
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
                "use name, command, args, env, grants, handshake_timeout, ping_interval, ping_timeout, max_restarts, restart_window or inbox; the plugin's own settings go in a top-level section named after it",
            )),
        }
    }
    Some(spec)
}

/// Levenshtein distance, for "did you mean" hints on short keys.
fn edit_distance(a: &str, b: &str) -> usize {
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
fn boolean(
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
fn seconds(value: Option<&Value>, key: &str, default: u64, errors: &mut Vec<KeyError>) -> Duration {
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

/// `off` (or `false`), or `{burst, per_second}` with either key optional.
fn parse_flood(v: &Value) -> Result<Flood, &'static str> {
    if as_bool(v) == Some(false) {
        return Ok(Flood::Off);
    }
    let Value::Object(map) = v else {
        return Err("is neither `off` nor a mapping with burst and per_second");
    };
    let (mut burst, mut per_second) = (Flood::DEFAULT_BURST, Flood::DEFAULT_PER_SECOND);
    for (key, value) in map {
        let number = value
            .as_f64()
            .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()));
        match (key.as_str(), number) {
            ("burst", Some(n)) if n.fract() == 0.0 && (1.0..=1000.0).contains(&n) => {
                burst = n as u32
            }
            ("per_second", Some(n)) if n > 0.0 && n <= 1000.0 => per_second = n,
            ("burst" | "per_second", _) => return Err("has a value out of range"),
            _ => return Err("has a key other than burst and per_second"),
        }
    }
    Ok(Flood::Bucket { burst, per_second })
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn string_list(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Array(items) => items.iter().map(scalar_string).collect(),
        _ => None,
    }
}

fn as_bool(v: &Value) -> Option<bool> {
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

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether `nick` is a valid IRC nick (RFC 2812 letters, digits and specials).
pub fn valid_nick(nick: &str) -> bool {
    let special = |c: char| "_-[]\\^{}|`".contains(c);
    let mut chars = nick.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || special(c))
        && chars.all(|c| c.is_ascii_alphanumeric() || special(c))
        && nick.len() <= 30
}

fn valid_plugin_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn mask() -> String {
    "********".to_string()
}

fn looks_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["pass", "secret", "token", "key", "auth", "credential"]
        .iter()
        .any(|w| k.contains(w))
}

/// Values shorter than this are not masked by value: hiding every `1` or `on` in the output
/// would say nothing about secrets and hide the configuration.
const MIN_MASKED_LEN: usize = 4;

/// Replaces every occurrence of each secret inside every string of `v`.
fn mask_values(v: &mut Value, secrets: &[&str]) {
    match v {
        Value::String(s) => {
            for secret in secrets {
                if s.contains(secret) {
                    *s = s.replace(secret, &mask());
                }
            }
        }
        Value::Object(map) => map.values_mut().for_each(|v| mask_values(v, secrets)),
        Value::Array(items) => items.iter_mut().for_each(|v| mask_values(v, secrets)),
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

/// The URL with any password replaced by `********`, for logs and `check-config`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    // The user information ends at the last `@`; a password may hold `/`, `?` or `#`.
    let path_from = rest.rfind('@').unwrap_or(0);
    let (authority, tail) = match rest[path_from..].find('/') {
        Some(i) => rest.split_at(path_from + i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            let shown = if userinfo.contains(':') {
                format!("{user}:********")
            } else {
                user.to_string()
            };
            let tail = redact_query_password(tail);
            format!("{scheme}://{shown}@{host}{tail}")
        }
        None => format!("{scheme}://{authority}{}", redact_query_password(tail)),
    }
}

fn redact_query_password(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_string();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if looks_secret(k) => format!("{k}=********"),
            _ => kv.to_string(),
        })
        .collect();
    format!("{path}?{}", query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load_str(yaml: &str, pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("hamper.conf");
        std::fs::write(&path, yaml).expect("write");
        Config::load(Some(&path), &env(pairs))
    }

    #[test]
    fn defaults_run_the_three_plugins_on_sqlite() {
        let c = Config::defaults();
        let names: Vec<_> = c.plugins.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["karma", "help", "sed"]);
        assert_eq!(c.db.expose(), DEFAULT_DB);
        assert_eq!(
            (c.nickname.as_str(), c.port, c.ssl, c.ssl_verify),
            ("hamper", 6667, false, true)
        );
        assert_eq!(c.command_prefix, "!");
        assert!(c.check_runnable().is_err(), "run needs a server");
    }

    #[test]
    fn environment_alone_as_in_the_heroku_guide() {
        let c = load_str(
            "",
            &[
                ("nickname", "my_hamper"),
                ("plugins", "[karma,help,sed]"),
                ("server", "irc.example.org"),
                ("port", "6697"),
                ("ssl", "true"),
                ("channels", "[\"#hamper-testing\", \"#secret sesame\"]"),
                ("PATH", "/usr/bin"),
                ("HOME", "/root"),
            ],
        )
        .expect("valid");
        assert_eq!(c.nickname, "my_hamper");
        assert_eq!(c.server.as_deref(), Some("irc.example.org"));
        assert_eq!((c.port, c.ssl), (6697, true));
        assert_eq!(c.channels[0].name, "#hamper-testing");
        assert_eq!(
            c.channels[1].key.as_ref().map(Secret::expose),
            Some("sesame")
        );
        assert_eq!(c.plugins.len(), 3);
        assert!(!c.sections.contains_key("PATH"));
        c.check_runnable().expect("runnable");
    }

    #[test]
    fn environment_overrides_the_file_and_database_url_wins() {
        let c = load_str(
            "nickname: filebot\nport: 7000\ndb: sqlite:file.db\nsed:\n  only-directed: false\n",
            &[
                ("nickname", "envbot"),
                ("DATABASE_URL", "postgres://u:pw@db.example/x"),
                ("sed", "{only-directed: true}"),
            ],
        )
        .expect("valid");
        assert_eq!(c.nickname, "envbot");
        assert_eq!(c.port, 7000);
        assert_eq!(c.db.expose(), "postgres://u:pw@db.example/x");
        assert_eq!(c.section("sed"), json!({"only-directed": true}));
        assert_eq!(c.section("karma"), Value::Null);
    }

    #[test]
    fn flood_is_off_a_bucket_or_an_error_naming_the_fix() {
        assert_eq!(Config::defaults().flood, Flood::default());
        for off in ["flood: off\n", "flood: false\n", "flood: \"off\"\n"] {
            assert_eq!(load_str(off, &[]).expect(off).flood, Flood::Off, "{off}");
        }
        assert_eq!(
            load_str("", &[("flood", "off")]).expect("env").flood,
            Flood::Off
        );
        let c = load_str("flood: {burst: 10, per_second: 0.5}\n", &[]).expect("bucket");
        assert_eq!(
            c.flood,
            Flood::Bucket {
                burst: 10,
                per_second: 0.5
            }
        );
        let c = load_str("", &[("flood", "{burst: 3}")]).expect("env bucket");
        assert_eq!(
            c.flood,
            Flood::Bucket {
                burst: 3,
                per_second: Flood::DEFAULT_PER_SECOND
            }
        );
        for bad in [
            "flood: fast\n",
            "flood: {burst: 0}\n",
            "flood: {burst: 2.5}\n",
            "flood: {per_second: -1}\n",
            "flood: {rate: 3}\n",
        ] {
            let err = load_str(bad, &[]).expect_err(bad);
            assert_eq!(err.errors[0].key, "flood", "{bad}");
            assert!(err.errors[0].fix.contains("flood: off"), "{bad}");
        }
    }

    #[test]
    fn inbox_is_a_size_in_bytes_and_an_old_count_is_refused_with_the_fix() {
        let limits = |yaml: &str| load_str(yaml, &[]).map(|c| c.plugins[0].limits.inbox);
        assert_eq!(limits("plugins: [karma]\n"), Ok(DEFAULT_INBOX));
        for (value, bytes) in [
            ("8MiB", 8 << 20),
            ("512KiB", 512 << 10),
            ("64k", 64 << 10),
            ("1048576", 1 << 20),
            ("2 MB", 2 << 20),
        ] {
            let yaml = format!("plugins: [{{name: karma, inbox: {value}}}]\n");
            assert_eq!(limits(&yaml), Ok(bytes), "{value}");
        }
        let err = limits("plugins: [{name: karma, inbox: 256}]\n").expect_err("a count");
        assert_eq!(err.errors[0].key, "plugins[0].inbox");
        assert!(
            err.errors[0].problem.contains("not a count"),
            "{}",
            err.errors[0]
        );
        assert!(err.errors[0].fix.contains("8MiB"), "{}", err.errors[0]);
        let err = limits("plugins: [{name: karma, inbox: lots}]\n").expect_err("words");
        assert!(err.errors[0].fix.contains("512KiB"), "{}", err.errors[0]);
    }

    #[test]
    fn secrets_are_masked_by_value_under_any_key() {
        let c = load_str(
            "password: hunter2secret\nweather:\n  api: $WEATHER_KEY\n  note: \"hunter2secret\"\nchannels: [\"#c sesame-key\"]\ngreeter:\n  message: the key is sesame-key\n",
            &[("WEATHER_KEY", "w-abc123xyz")],
        )
        .expect("valid");
        let shown = c.masked().to_string();
        for secret in ["w-abc123xyz", "hunter2secret", "sesame-key"] {
            assert!(!shown.contains(secret), "{secret} shown: {shown}");
        }
        assert!(shown.contains("the key is ********"), "{shown}");
        assert_eq!(
            c.section("weather")["api"],
            "w-abc123xyz",
            "the value itself is intact"
        );
    }

    #[test]
    fn dollar_values_come_from_the_environment() {
        let c = load_str(
            "password: $IRC_PASS\nkarma:\n  token: $TOK\n",
            &[("IRC_PASS", "hunter2"), ("TOK", "t")],
        )
        .expect("valid");
        assert_eq!(c.password.as_ref().map(Secret::expose), Some("hunter2"));
        assert_eq!(c.section("karma"), json!({"token": "t"}));
        let err = load_str("password: $MISSING\n", &[]).expect_err("missing var");
        assert_eq!(err.errors[0].key, "password");
        assert!(err.errors[0].problem.contains("MISSING"));
    }

    #[test]
    fn every_bad_key_is_named_with_a_fix() {
        let err = load_str(
            "port: lots\nssl: maybe\nchannels: [\"hamper\"]\nnickname: 9lives\nplugins: [karma, {command: [x]}, karma]\ncommand_prefix: \"\"\n",
            &[],
        )
        .expect_err("invalid");
        let keys: Vec<_> = err.errors.iter().map(|e| e.key.as_str()).collect();
        for key in [
            "port",
            "ssl",
            "channels[0]",
            "nickname",
            "plugins[1].name",
            "plugins[2]",
            "command_prefix",
        ] {
            assert!(keys.contains(&key), "{key} not reported in {keys:?}");
        }
        assert!(err.errors.iter().all(|e| !e.fix.is_empty()));
    }

    #[test]
    fn a_bare_hash_channel_from_the_environment_explains_the_comment() {
        let err = load_str("", &[("channels", "#hamper")]).expect_err("comment");
        assert_eq!(err.errors[0].key, "channels");
        assert!(
            err.errors[0].fix.contains("[\"#hamper\"]"),
            "{}",
            err.errors[0].fix
        );
    }

    #[test]
    fn external_plugins_with_args_env_grants_and_limits() {
        let c = load_str(
            "plugins:\n  - karma\n  - name: weather\n    command: [python3, plugins/weather.py]\n    args: [--metric]\n    env: {API_TOKEN: abc, UNITS: metric}\n    grants: [join, part]\n    ping_interval: 0.5\n    max_restarts: 2\nweather:\n  city: Oslo\n  api_key: s3cret\n",
            &[],
        )
        .expect("valid");
        let w = &c.plugins[1];
        assert_eq!(
            w.command.as_deref(),
            Some(&["python3".to_string(), "plugins/weather.py".to_string()][..])
        );
        assert_eq!(w.args, ["--metric"]);
        assert!(w.has(Grant::Join) && w.has(Grant::Part) && !w.has(Grant::Raw));
        assert_eq!(w.limits.ping_interval, Duration::from_millis(500));
        assert_eq!(w.limits.max_restarts, 2);
        assert_eq!(c.section("weather")["city"], "Oslo");
        let shown = serde_json::to_string(&c.masked()).expect("json");
        assert!(
            !shown.contains("s3cret") && !shown.contains("abc"),
            "{shown}"
        );
        assert!(shown.contains("metric"));
    }

    #[test]
    fn secrets_never_show() {
        let c = load_str(
            "password: hunter2\nchannels: [\"#c key123\"]\ndb: postgres://bob:pw123@h:5432/d?sslmode=require&password=qq\n",
            &[],
        )
        .expect("valid");
        let shown = serde_json::to_string(&c.masked()).expect("json");
        for secret in ["hunter2", "key123", "pw123", "qq"] {
            assert!(!shown.contains(secret), "{secret} leaked in {shown}");
        }
        assert!(shown.contains("postgres://bob:********@h:5432/d?sslmode=require"));
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn redaction_table() {
        let cases = [
            ("sqlite:hamper.db", "sqlite:hamper.db"),
            ("postgres://u@h/d", "postgres://u@h/d"),
            ("postgres://u:p@h/d", "postgres://u:********@h/d"),
            ("postgresql://u:p@ss@h:1/d", "postgresql://u:********@h:1/d"),
            (
                "postgres://user:pa/ss@db.example.org/hamper",
                "postgres://user:********@db.example.org/hamper",
            ),
            (
                "postgres://user:p?w#x@h/d?sslmode=require",
                "postgres://user:********@h/d?sslmode=require",
            ),
        ];
        for (url, want) in cases {
            assert_eq!(redact_url(url), want);
        }
    }

    #[test]
    fn an_empty_or_non_mapping_file() {
        assert!(load_str("", &[]).is_ok());
        assert!(load_str("# only a comment\n", &[]).is_ok());
        let err = load_str("- a\n- b\n", &[]).expect_err("list");
        assert!(err.errors[0].problem.contains("mapping"));
        let err = load_str("nickname: [unclosed\n", &[]).expect_err("yaml");
        assert!(err.errors[0].problem.contains("not valid YAML"));
    }

    #[test]
    fn misspelt_keys_are_warned_about_and_other_sections_kept() {
        let c = load_str("nicknme: bot\nweather:\n  city: Oslo\n", &[]).expect("valid");
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("did you mean `nickname`")),
            "{:?}",
            c.warnings
        );
        assert_eq!(c.section("weather")["city"], "Oslo");
        let err = load_str("", &[("channels", "#a,#b")]).expect_err("comment");
        assert!(
            err.errors[0].fix.contains(r##"channels='["#a", "#b"]'"##),
            "{}",
            err.errors[0].fix
        );
    }

    #[test]
    fn nick_validity() {
        for ok in ["hamper", "h4mper", "[bot]", "_x", "a-b"] {
            assert!(valid_nick(ok), "{ok}");
        }
        for bad in ["", "9x", "a b", "a:b", "a\r\nQUIT"] {
            assert!(!valid_nick(bad), "{bad:?}");
        }
    }
}
