//! The supervisor's own commands: `!plugins` for everyone, and the owner commands (`!restart`,
//! `!disable`, `!enable`, `!join`, `!part`, `!reload`).
//!
//! Each owner command declares a permission (`admin.restart`, …), so the router's permission
//! gate refuses it before it gets here, exactly as it refuses a plugin's command; owners hold
//! every permission. What a plugin command does to a plugin is carried out by its runner, which
//! answers the owner once the plugin runs again (or says why it did not start).

use std::sync::Arc;

use hamper_protocol::{CommandEvent, CommandSpec, Message};
use tracing::{error, info, warn};

use hamper_protocol::names::has_channel_prefix;

use super::{valid_word, Router};
use crate::chat::{Origin, Outbound};
use crate::plugin::{report, Control, State};
use crate::reload;

/// The supervisor's commands: (name, permission, usage, help).
const BUILTINS: [(&str, Option<&str>, &str, &str); 7] = [
    (
        "plugins",
        None,
        "plugins",
        "Show every plugin and whether it is running.",
    ),
    (
        "restart",
        Some("admin.restart"),
        "restart <plugin>",
        "Stop a plugin and start it again (owners only).",
    ),
    (
        "disable",
        Some("admin.disable"),
        "disable <plugin>",
        "Stop a plugin until it is enabled again (owners only).",
    ),
    (
        "enable",
        Some("admin.enable"),
        "enable <plugin>",
        "Start a disabled plugin again (owners only).",
    ),
    (
        "join",
        Some("admin.join"),
        "join <#channel> [key]",
        "Join a channel (owners only).",
    ),
    (
        "part",
        Some("admin.part"),
        "part [#channel]",
        "Leave this channel, or the one named (owners only).",
    ),
    (
        "reload",
        Some("admin.reload"),
        "reload",
        "Read the config again and apply it (owners only).",
    ),
];

/// The specs of the supervisor's commands, for the command table and `plugins.list`.
pub(super) fn commands() -> Vec<CommandSpec> {
    BUILTINS
        .iter()
        .map(|(name, permission, usage, help)| {
            let mut spec = CommandSpec::new(*name, *help);
            spec.usage = (*usage).into();
            spec.permission = permission.map(str::to_string);
            spec
        })
        .collect()
}

/// What an owner asks of a plugin.
#[derive(Debug, Clone, Copy)]
enum PluginAction {
    Restart,
    Disable,
    Enable,
}

/// At most this much of a name someone typed is repeated back.
const ECHO_MAX: usize = 64;

fn echo(word: &str) -> String {
    word.chars().take(ECHO_MAX).collect()
}

impl Router {
    /// Runs one of the supervisor's commands.
    pub(super) async fn builtin(&mut self, event: &CommandEvent) {
        let text = match event.command.as_str() {
            "plugins" => {
                let text = self.plugins_text();
                let lines = self.plugins.live().count().max(1);
                self.reply_lines(&event.message, &text, Some(lines)).await;
                return;
            }
            "restart" => self.on_plugin(event, PluginAction::Restart),
            "disable" => self.on_plugin(event, PluginAction::Disable),
            "enable" => self.on_plugin(event, PluginAction::Enable),
            "join" => self.join(event).await,
            "part" => self.part(event).await,
            "reload" => {
                self.reload(Some(&event.message)).await;
                None
            }
            _ => None,
        };
        if let Some(text) = text {
            self.reply_lines(&event.message, &text, None).await;
        }
    }

    /// `!plugins`: one line per configured plugin.
    fn plugins_text(&self) -> String {
        let now = tokio::time::Instant::now();
        let lines: Vec<String> = self
            .plugins
            .live()
            .map(|(_, slot)| {
                report::status_line(
                    &slot.handle.name,
                    &slot.handle.status(),
                    slot.handle.counters(),
                    now,
                )
            })
            .collect();
        if lines.is_empty() {
            "No plugins are configured.".to_string()
        } else {
            lines.join("\n")
        }
    }

    /// The configured plugins' names, for a reply that needs one.
    fn known_plugins(&self) -> String {
        let names = self.plugins.names();
        if names.is_empty() {
            "no plugin is configured".into()
        } else {
            format!("the plugins are {}", names.join(", "))
        }
    }

    /// `!restart`, `!disable`, `!enable`: hands the action to the plugin's runner, which answers
    /// once it is done; answers at once what needs no runner.
    fn on_plugin(&mut self, event: &CommandEvent, action: PluginAction) -> Option<String> {
        let prefix = self.config.command_prefix.clone();
        let Some(name) = event.args.split_whitespace().next() else {
            return Some(format!(
                "Say which plugin: {prefix}{} <plugin>; {}.",
                event.command,
                self.known_plugins()
            ));
        };
        let Some(index) = self.plugins.find(name) else {
            return Some(format!(
                "There is no plugin named {}; {}.",
                echo(name),
                self.known_plugins()
            ));
        };
        let slot = self.plugins.get(index)?;
        let name = slot.handle.name.clone();
        let state = slot.handle.state();
        let asker = Some(Arc::new(event.message.clone()));
        info!(plugin = %name, command = %event.command, by = %event.message.nick, "owner command");
        match (action, &state) {
            (PluginAction::Restart, State::Disabled) => Some(format!(
                "The {name} plugin is disabled; {prefix}enable {name} starts it."
            )),
            (PluginAction::Disable, State::Disabled) => {
                Some(format!("The {name} plugin is already disabled."))
            }
            (PluginAction::Enable, State::Disabled) => {
                slot.handle.control(Control::Enable(asker));
                None
            }
            (PluginAction::Enable, state) => Some(format!(
                "The {name} plugin is not disabled; it is {}.",
                state.as_str()
            )),
            (PluginAction::Restart, _) => {
                slot.handle.control(Control::Restart(asker));
                None
            }
            (PluginAction::Disable, _) => {
                slot.handle.control(Control::Disable(asker));
                None
            }
        }
    }

    /// `!join #channel [key]`.
    async fn join(&mut self, event: &CommandEvent) -> Option<String> {
        let prefix = &self.config.command_prefix;
        let words: Vec<&str> = event.args.split_whitespace().collect();
        let (channel, key) = match words.as_slice() {
            [channel] => (*channel, None),
            [channel, key] => (*channel, Some(*key)),
            _ => return Some(format!("Say which channel: {prefix}join #channel [key].")),
        };
        if let Some(problem) = bad_channel(channel) {
            return Some(problem);
        }
        if key.is_some_and(|k| !valid_word(k)) {
            return Some("That key cannot be sent: it has a comma or a control character.".into());
        }
        if self.in_channel(channel) {
            return Some(format!("I am already in {channel}."));
        }
        info!(%channel, by = %event.message.nick, "joining at an owner's request");
        // The answer first, then the act, as for `!part`.
        self.reply_lines(&event.message, &format!("Joining {channel}."), None)
            .await;
        self.send_out(
            &Origin::Bot,
            Outbound::Join {
                channel: channel.to_string(),
                key: key.map(str::to_string),
            },
        )
        .await;
        None
    }

    /// `!part [#channel]`: the channel named, or the one it was said in.
    async fn part(&mut self, event: &CommandEvent) -> Option<String> {
        let prefix = &self.config.command_prefix;
        let words: Vec<&str> = event.args.split_whitespace().collect();
        let channel = match (words.as_slice(), &event.message.channel) {
            ([channel], _) => channel.to_string(),
            ([], Some(here)) => here.clone(),
            ([], None) => {
                return Some(format!(
                    "Say which channel: {prefix}part #channel (in private there is no channel to leave)."
                ))
            }
            _ => return Some(format!("Say one channel: {prefix}part [#channel].")),
        };
        if let Some(problem) = bad_channel(&channel) {
            return Some(problem);
        }
        if !self.in_channel(&channel) {
            return Some(format!("I am not in {channel}."));
        }
        info!(%channel, by = %event.message.nick, "leaving at an owner's request");
        // The answer goes first: once the bot has left, it could not be said in the channel.
        self.reply_lines(&event.message, &format!("Leaving {channel}."), None)
            .await;
        self.send_out(
            &Origin::Bot,
            Outbound::Part {
                channel,
                reason: None,
            },
        )
        .await;
        None
    }

    fn in_channel(&self, channel: &str) -> bool {
        self.bot
            .channels
            .iter()
            .any(|c| c.eq_ignore_ascii_case(channel))
    }

    /// `!reload` (with the asker) and SIGHUP (without): reads the config again and applies it,
    /// or, when it is not valid, changes nothing. The outcome is logged, and told to the asker
    /// before any channel is joined or left.
    pub(super) async fn reload(&mut self, asker: Option<&Message>) {
        let by = asker.map(|m| m.nick.as_str()).unwrap_or("SIGHUP");
        let Some(load) = &self.load_config else {
            warn!(%by, "reload not available: `hamper plugin` runs one plugin without its config");
            if let Some(asker) = asker {
                let text = "Reloading is not available here: `hamper plugin` runs one plugin without its config.";
                self.reply_lines(asker, text, None).await;
            }
            return;
        };
        let new = match load() {
            Ok(new) => new,
            Err(err) => {
                for problem in &err.errors {
                    error!(%by, error = %problem, "reload refused: invalid configuration");
                }
                let keys: Vec<&str> = err.errors.iter().map(|e| e.key.as_str()).collect();
                let text = format!(
                    "Reload refused, nothing changed: the config has {} ({}); the log says what and how to fix it.",
                    match keys.len() {
                        1 => "1 problem".to_string(),
                        n => format!("{n} problems"),
                    },
                    keys.join(", ")
                );
                warn!(%by, "{text}");
                if let Some(asker) = asker {
                    self.reply_lines(asker, &text, None).await;
                }
                return;
            }
        };
        // Its secrets are masked in the log before anything about it is written.
        crate::redact::mask_on_stderr(new.redactor());
        for warning in &new.warnings {
            warn!("{warning}");
        }
        let plan = reload::plan(&self.config, new);
        let summary = plan.summary();
        info!(%by, "config reloaded: {summary}");
        if let Some(asker) = asker {
            self.reply_lines(asker, &summary, None).await;
        }
        self.apply(plan).await;
    }

    /// Carries a reload's plan out.
    async fn apply(&mut self, plan: reload::Plan) {
        for name in &plan.removed {
            if let Some(index) = self.plugins.find(name) {
                info!(plugin = %name, "plugin removed from the config; stopping it");
                self.plugins.remove(index);
                self.commands.release(index);
            }
        }
        for spec in &plan.changed {
            if let Some(old) = self.plugins.find(&spec.name) {
                info!(plugin = %spec.name, "plugin changed in the config; starting it anew");
                self.plugins.remove(old);
                let new = self.plugins.add(spec.clone());
                // Its commands wait for the new process instead of being unknown meanwhile.
                self.commands.reassign(old, new);
            }
        }
        for spec in &plan.added {
            info!(plugin = %spec.name, "plugin added to the config; starting it");
            self.plugins.add(spec.clone());
        }
        self.register_in_order();
        for channel in &plan.part {
            self.send_out(
                &Origin::Bot,
                Outbound::Part {
                    channel: channel.clone(),
                    reason: None,
                },
            )
            .await;
        }
        for channel in &plan.join {
            self.send_out(
                &Origin::Bot,
                Outbound::Join {
                    channel: channel.name.clone(),
                    key: channel.key.as_ref().map(|k| k.expose().to_string()),
                },
            )
            .await;
        }
        self.config = Arc::new(plan.config);
        self.published.send_replace(self.config.clone());
    }
}

/// Why `channel` cannot be joined or left, if it cannot.
fn bad_channel(channel: &str) -> Option<String> {
    (!has_channel_prefix(channel) || !valid_word(channel)).then(|| {
        format!(
            "{} is not a channel name: a channel starts with #, &, + or ! and has no spaces, commas or control characters.",
            echo(channel)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names() {
        for ok in ["#a", "&local", "+modeless", "!safe", "#caf\u{e9}"] {
            assert_eq!(bad_channel(ok), None, "{ok}");
        }
        for bad in ["a", "", "#a,#b", "#a\u{7}", "bob"] {
            assert!(bad_channel(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn every_owner_command_has_a_permission() {
        for spec in commands() {
            assert_eq!(
                spec.permission.is_none(),
                spec.name == "plugins",
                "{}",
                spec.name
            );
            assert!(spec.usage.starts_with(&spec.name), "{}", spec.name);
        }
    }
}
