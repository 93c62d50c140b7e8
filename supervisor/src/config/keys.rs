//! The core keys: each read from the merged map and validated, every problem collected.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use hamper_protocol::names::{is_channel, valid_nick};

use super::access::{parse_acl, parse_owners};
use super::error::{ConfigError, KeyError};
use super::login::parse_login;
use super::model::{
    ChannelSpec, Config, Flood, LogFormat, PluginSpec, Secret, DEFAULT_DB, DEFAULT_PLUGINS,
};
use super::plugins::parse_plugins;
use super::value::{as_bool, boolean, edit_distance, path, scalar_string, seconds, show};
use crate::acl::Access;

/// The keys hamper itself understands; any other top-level key is a plugin's section.
pub const KNOWN_KEYS: &[&str] = &[
    "nickname",
    "server",
    "port",
    "ssl",
    "ssl_verify",
    "ssl_ca",
    "ssl_cert",
    "ssl_key",
    "channels",
    "password",
    "sasl_username",
    "sasl_password",
    "sasl_mechanism",
    "sasl_required",
    "db",
    "plugins",
    "command_prefix",
    "owners",
    "acl",
    "plugin_dir",
    "flood",
    "ping_interval",
    "ping_timeout",
    "log_format",
    "log_level",
    "rejoin_on_kick",
];

impl Config {
    /// Reads every key of `map`; `base` is the config file's folder, for relative paths in it.
    pub(super) fn from_map(
        map: Map<String, Value>,
        base: Option<&Path>,
    ) -> Result<Config, ConfigError> {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
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
        let ssl_ca = path(
            get("ssl_ca"),
            "ssl_ca",
            "set ssl_ca to the path of a PEM file holding the server's CA certificate, e.g. ssl_ca: /etc/hamper/irc-ca.pem",
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
        let login = parse_login(get, ssl, &mut errors, &mut warnings);
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
            Some(v) => parse_owners(v, &mut errors, &mut warnings),
        };
        let (acl, acl_file) = match get("acl") {
            None => (None, None),
            Some(v) => parse_acl(v, base, &mut errors, &mut warnings),
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
                ssl_ca,
                ssl_cert: login.ssl_cert,
                ssl_key: login.ssl_key,
                channels,
                password,
                sasl: login.sasl,
                db: Secret(db),
                plugins,
                command_prefix,
                access: Access { owners, acl },
                acl_file,
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
        if !is_channel(&name) {
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
