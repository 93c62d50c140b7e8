//! `!reload` and SIGHUP: what changes when the configuration is read again while the bot runs.
//!
//! [`plan`] compares the running configuration with the new one, without doing anything, so
//! that the decision is tested as a table; the router then carries the plan out. Every key
//! takes effect at once except those in [`RESTART_ONLY`], which belong to the IRC connection,
//! the database or the log, all set up once at start: a changed value there is reported (in the
//! reply and the log) and kept for the next start, never silently ignored.

use tokio::sync::mpsc;

use crate::config::{ChannelSpec, Config, ConfigError, PluginSpec};

/// Reads the configuration again, from the same file and environment as at start.
pub type LoadConfig = Box<dyn Fn() -> Result<Config, ConfigError> + Send + Sync>;

/// What the bot needs to reload its configuration: how, and when.
pub struct Reload {
    /// Reads the configuration.
    pub load: LoadConfig,
    /// One message per request to reload (the binary sends one for each SIGHUP).
    pub requests: mpsc::Receiver<()>,
}

impl std::fmt::Debug for Reload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reload").finish_non_exhaustive()
    }
}

macro_rules! restart_only {
    ($(#[$doc:meta])* $($key:ident),* $(,)?) => {
        $(#[$doc])*
        pub const RESTART_ONLY: &[&str] = &[$(stringify!($key)),*];

        /// Sets the keys of [`RESTART_ONLY`] in `config` back to their `running` values, and
        /// returns those that differed.
        fn keep_restart_only(config: &mut Config, running: &Config) -> Vec<&'static str> {
            let mut pending = Vec::new();
            $(
                if config.$key != running.$key {
                    pending.push(stringify!($key));
                    config.$key = running.$key.clone();
                }
            )*
            pending
        }
    };
}

restart_only!(
    /// The keys a reload cannot change: the connection's (`server`, `port`, `ssl`, `ssl_verify`,
    /// `ssl_ca`, `ssl_cert`, `ssl_key`, `nickname`, `password`, the `sasl_` keys (reported as
    /// `sasl`), `flood`, `ping_interval`, `ping_timeout`), the database
    /// (`db`), the log (`log_format`, `log_level`), where plugins are found (`plugin_dir`), and
    /// the command prefix, which every running plugin was given in its host hello.
    server,
    port,
    ssl,
    ssl_verify,
    ssl_ca,
    ssl_cert,
    ssl_key,
    nickname,
    password,
    sasl,
    flood,
    ping_interval,
    ping_timeout,
    db,
    log_format,
    log_level,
    plugin_dir,
    command_prefix,
);

/// What a reload does.
#[derive(Debug)]
pub struct Plan {
    /// The configuration to run with from now on: the new one, except that the keys of
    /// [`RESTART_ONLY`] keep their running values.
    pub config: Config,
    /// Plugins to start, in the new config's order.
    pub added: Vec<PluginSpec>,
    /// Plugins to stop, by name.
    pub removed: Vec<String>,
    /// Plugins whose entry or section changed: stopped, and started again as configured now.
    pub changed: Vec<PluginSpec>,
    /// Plugins left running as they are, by name.
    pub unchanged: Vec<String>,
    /// Channels to join.
    pub join: Vec<ChannelSpec>,
    /// Channels to leave.
    pub part: Vec<String>,
    /// Keys of [`RESTART_ONLY`] whose value changed: applied at the next start of hamper.
    pub pending: Vec<&'static str>,
}

impl Plan {
    /// One line for people: what was done, and what waits for a restart.
    pub fn summary(&self) -> String {
        let names = |specs: &[PluginSpec]| {
            specs
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut done = Vec::new();
        if !self.added.is_empty() {
            done.push(format!("started {}", names(&self.added)));
        }
        if !self.removed.is_empty() {
            done.push(format!("stopped {}", self.removed.join(", ")));
        }
        if !self.changed.is_empty() {
            done.push(format!("restarted {} (changed)", names(&self.changed)));
        }
        if !self.join.is_empty() {
            let channels: Vec<&str> = self.join.iter().map(|c| c.name.as_str()).collect();
            done.push(format!("joining {}", channels.join(", ")));
        }
        if !self.part.is_empty() {
            done.push(format!("leaving {}", self.part.join(", ")));
        }
        let mut text = if done.is_empty() {
            "Reloaded the config: no plugin or channel changed.".to_string()
        } else {
            format!("Reloaded the config: {}.", done.join("; "))
        };
        if !self.pending.is_empty() {
            text.push_str(&format!(
                " Not applied until hamper restarts: {}.",
                self.pending.join(", ")
            ));
        }
        text
    }
}

/// Compares the `running` configuration with the `new` one.
pub fn plan(running: &Config, new: Config) -> Plan {
    let mut config = new;
    let pending = keep_restart_only(&mut config, running);

    let old_plugin = |name: &str| running.plugins.iter().find(|p| p.name == name);
    let mut added = Vec::new();
    let mut changed = Vec::new();
    let mut unchanged = Vec::new();
    for spec in &config.plugins {
        match old_plugin(&spec.name) {
            None => added.push(spec.clone()),
            Some(old)
                if old != spec || running.section(&spec.name) != config.section(&spec.name) =>
            {
                changed.push(spec.clone())
            }
            Some(_) => unchanged.push(spec.name.clone()),
        }
    }
    let removed = running
        .plugins
        .iter()
        .filter(|old| !config.plugins.iter().any(|p| p.name == old.name))
        .map(|old| old.name.clone())
        .collect();

    let has =
        |list: &[ChannelSpec], name: &str| list.iter().any(|c| c.name.eq_ignore_ascii_case(name));
    let join = config
        .channels
        .iter()
        .filter(|c| !has(&running.channels, &c.name))
        .cloned()
        .collect();
    let part = running
        .channels
        .iter()
        .filter(|c| !has(&config.channels, &c.name))
        .map(|c| c.name.clone())
        .collect();

    Plan {
        config,
        added,
        removed,
        changed,
        unchanged,
        join,
        part,
        pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(yaml: &str) -> Config {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("hamper.conf");
        std::fs::write(&path, yaml).expect("write");
        Config::load(Some(&path), &HashMap::new()).expect("valid config")
    }

    fn names(specs: &[PluginSpec]) -> Vec<&str> {
        specs.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn plugins_added_removed_changed_and_unchanged() {
        let running = config(
            "plugins: [karma, help, {name: echo, command: [cat]}, sed]\nsed: {only-directed: false}\n",
        );
        let new = config(
            "plugins: [karma, {name: echo, command: [cat], args: [-u]}, sed, {name: weather, command: [cat]}]\nsed: {only-directed: true}\n",
        );
        let plan = plan(&running, new);
        assert_eq!(names(&plan.added), ["weather"]);
        assert_eq!(plan.removed, ["help"]);
        assert_eq!(
            names(&plan.changed),
            ["echo", "sed"],
            "a changed entry and a changed section both restart the plugin"
        );
        assert_eq!(plan.unchanged, ["karma"]);
        assert!(plan.pending.is_empty(), "{:?}", plan.pending);
        assert_eq!(
            plan.summary(),
            "Reloaded the config: started weather; stopped help; restarted echo, sed (changed)."
        );
    }

    #[test]
    fn restart_only_keys_keep_their_running_values_and_are_reported() {
        let running =
            config("nickname: hamper\nport: 6667\ncommand_prefix: \"!\"\nowners: [\"a!*@x\"]\n");
        let new = config(
            "nickname: other\nport: 7000\ncommand_prefix: \".\"\nowners: [\"b!*@y\"]\ndb: sqlite:elsewhere.db\n",
        );
        let plan = plan(&running, new);
        assert_eq!(plan.pending, ["port", "nickname", "db", "command_prefix"]);
        assert_eq!(plan.config.nickname, "hamper");
        assert_eq!(plan.config.port, 6667);
        assert_eq!(plan.config.command_prefix, "!");
        assert_eq!(plan.config.db.expose(), running.db.expose());
        let owners: Vec<String> = plan
            .config
            .access
            .owners
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(owners, ["b!*@y"], "owners take effect at once");
        assert!(
            plan.summary().ends_with(
                "Not applied until hamper restarts: port, nickname, db, command_prefix."
            ),
            "{}",
            plan.summary()
        );
    }

    #[test]
    fn a_new_sasl_login_waits_for_a_restart() {
        let running = config("sasl_username: bot\nsasl_password: old\n");
        let plan = plan(
            &running,
            config("sasl_username: bot\nsasl_password: new\nsasl_required: false\n"),
        );
        assert_eq!(plan.pending, ["sasl"]);
        assert_eq!(plan.config.sasl, running.sasl);
    }

    #[test]
    fn channels_joined_and_left() {
        let running = config("channels: [\"#a\", \"#b\"]\n");
        let new = config("channels: [\"#B\", \"#c key\"]\n");
        let plan = plan(&running, new);
        let join: Vec<(&str, Option<&str>)> = plan
            .join
            .iter()
            .map(|c| (c.name.as_str(), c.key.as_ref().map(|k| k.expose())))
            .collect();
        assert_eq!(join, [("#c", Some("key"))]);
        assert_eq!(
            plan.part,
            ["#a"],
            "channel names compare case-insensitively"
        );
        assert_eq!(
            plan.summary(),
            "Reloaded the config: joining #c; leaving #a."
        );
    }

    #[test]
    fn the_same_config_changes_nothing() {
        let yaml = "plugins: [karma, sed]\nchannels: [\"#a\"]\n";
        let plan = plan(&config(yaml), config(yaml));
        assert!(plan.added.is_empty() && plan.removed.is_empty() && plan.changed.is_empty());
        assert_eq!(plan.unchanged, ["karma", "sed"]);
        assert_eq!(
            plan.summary(),
            "Reloaded the config: no plugin or channel changed."
        );
    }
}
