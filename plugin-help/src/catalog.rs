//! The help texts of every plugin, as `plugins.list` reports them, and how they are shown.
//!
//! The catalog is rebuilt from the host's answer at every request, because plugins restart and
//! change their commands; the supervisor's own commands come in as plugin `hamper`, so they need
//! no special case. Plugins that are `failed` or `stopped` are left out, since their commands
//! would not answer; plugins that are `starting` or `restarting` stay in, since a restart is
//! brief and their commands are still theirs.

use hamper_protocol::{CommandSpec, PluginInfo, PluginsList};

/// The first line of `!help`.
pub const HEADER: &str = "Available commands";

/// The answer to `!help <something>` that names no command or plugin.
pub const UNKNOWN: &str = "Unknown command";

/// The commands and plugins a user can get help on.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Catalog {
    prefix: String,
    plugins: Vec<PluginInfo>,
}

/// Whether a plugin in this state can answer its commands now or soon.
pub fn is_available(state: &str) -> bool {
    !matches!(state, "failed" | "stopped" | "disabled")
}

/// Whether a command is listed by `!help` and `!help <plugin>`.
///
/// As in the original, a command without a one-line help is not listed (the help text warns
/// that "some commands may not be listed"), but `!help <command>` still describes it.
pub fn is_listed(cmd: &CommandSpec) -> bool {
    !cmd.help.trim().is_empty()
}

/// `<prefix><usage or name> - <help>`, or without ` - <help>` when there is none.
pub fn command_line(prefix: &str, cmd: &CommandSpec) -> String {
    let usage = cmd.usage.trim();
    let usage = if usage.is_empty() { &cmd.name } else { usage };
    let help = cmd.help.trim();
    if help.is_empty() {
        format!("{prefix}{usage}")
    } else {
        format!("{prefix}{usage} - {help}")
    }
}

/// The non-blank lines of a multi-line text.
fn text_lines(text: &str) -> impl Iterator<Item = String> + '_ {
    text.lines()
        .map(str::trim_end)
        .filter(|line| !line.trim().is_empty())
        .map(str::to_string)
}

impl Catalog {
    /// A catalog of the available plugins in `list`, with `fallback_prefix` used when the list
    /// does not say what the command prefix is.
    pub fn new(list: PluginsList, fallback_prefix: &str) -> Self {
        let prefix = if list.command_prefix.is_empty() {
            fallback_prefix.to_string()
        } else {
            list.command_prefix
        };
        Catalog {
            prefix,
            plugins: list
                .plugins
                .into_iter()
                .filter(|p| is_available(&p.state))
                .collect(),
        }
    }

    /// The lines of `!help`: the header, then one line per listed command and one per plugin
    /// that lists no command but describes itself, sorted by name.
    pub fn overview(&self) -> Vec<String> {
        let mut entries: Vec<(String, String)> = Vec::new();
        for plugin in &self.plugins {
            let mut listed = plugin.commands.iter().filter(|c| is_listed(c)).peekable();
            if listed.peek().is_none() {
                let description = plugin.description.trim();
                if !description.is_empty() {
                    // A description already shaped `usage - help` (sed's is) reads as the
                    // original's help line; anything else gets the plugin's name in front.
                    let line = if description.contains(" - ") {
                        description.to_string()
                    } else {
                        format!("{} - {description}", plugin.name)
                    };
                    entries.push((plugin.name.to_lowercase(), line));
                }
            }
            for cmd in listed {
                entries.push((cmd.name.to_lowercase(), command_line(&self.prefix, cmd)));
            }
        }
        entries.sort();
        std::iter::once(HEADER.to_string())
            .chain(entries.into_iter().map(|(_, line)| line))
            .collect()
    }

    /// The lines of `!help <query>`: a command (by name or alias, with or without the prefix)
    /// is described with its one line and its long help; otherwise a plugin with its
    /// description, help and commands; otherwise [`UNKNOWN`]. Only the first word counts.
    pub fn describe(&self, query: &str) -> Vec<String> {
        let Some(word) = query.split_whitespace().next() else {
            return vec![UNKNOWN.to_string()];
        };
        let name = match word.strip_prefix(self.prefix.as_str()) {
            Some(rest) if !rest.is_empty() && !self.prefix.is_empty() => rest,
            _ => word,
        }
        .to_lowercase();
        if let Some(cmd) = self.find_command(&name) {
            return std::iter::once(command_line(&self.prefix, cmd))
                .chain(text_lines(&cmd.long_help))
                .collect();
        }
        if let Some(plugin) = self.plugins.iter().find(|p| p.name.to_lowercase() == name) {
            return self.describe_plugin(plugin);
        }
        vec![UNKNOWN.to_string()]
    }

    fn find_command(&self, name: &str) -> Option<&CommandSpec> {
        self.plugins.iter().flat_map(|p| &p.commands).find(|c| {
            c.name.to_lowercase() == name || c.aliases.iter().any(|a| a.to_lowercase() == name)
        })
    }

    fn describe_plugin(&self, plugin: &PluginInfo) -> Vec<String> {
        let lines: Vec<String> = text_lines(&plugin.description)
            .chain(text_lines(&plugin.help))
            .chain(
                plugin
                    .commands
                    .iter()
                    .filter(|c| is_listed(c))
                    .map(|c| command_line(&self.prefix, c)),
            )
            .collect();
        if lines.is_empty() {
            vec![format!("No help for {}", plugin.name)]
        } else {
            lines
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(name: &str, aliases: &[&str], usage: &str, help: &str, long: &str) -> CommandSpec {
        CommandSpec {
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            usage: usage.into(),
            long_help: long.into(),
            ..CommandSpec::new(name, help)
        }
    }

    fn plugin(
        name: &str,
        state: &str,
        description: &str,
        help: &str,
        commands: Vec<CommandSpec>,
    ) -> PluginInfo {
        PluginInfo {
            name: name.into(),
            version: "0.1.0".into(),
            description: description.into(),
            help: help.into(),
            state: state.into(),
            commands,
        }
    }

    fn sample() -> PluginsList {
        PluginsList {
            command_prefix: "!".into(),
            plugins: vec![
                plugin(
                    "karma",
                    "running",
                    "karma/score - Give or take karma from someone",
                    "username++ - Give karma\nusername-- - Take karma",
                    vec![cmd(
                        "karma",
                        &["score"],
                        "karma [name|--top|--bottom]",
                        "Show someone's karma, or the top or bottom five",
                        "!karma username - Show the user's karma count\n\n!karma --top - Show the top 5\n",
                    )],
                ),
                plugin(
                    "sed",
                    "running",
                    "s/find/replace/ - Perform sed style find and replace.",
                    "Use like \"s/foo/bar/\".\nFlags: g, i, m",
                    vec![],
                ),
                plugin(
                    "help",
                    "running",
                    "help [command] - Show help for commands.",
                    "",
                    vec![cmd(
                        "help",
                        &[],
                        "help [command|plugin]",
                        "Show help for commands.",
                        "For detailed help on a command, say \"!help <command>\".",
                    )],
                ),
                plugin(
                    "hamper",
                    "",
                    "The bot itself",
                    "",
                    vec![
                        cmd("join", &[], "join #channel", "Ask the bot to join a channel.", ""),
                        cmd("admin", &[], "", "", "Owners only."),
                        cmd("Leave", &["part"], "", "Ask the bot to leave.", ""),
                    ],
                ),
                plugin("broken", "failed", "Never works", "", vec![cmd("broken", &[], "", "Breaks.", "")]),
                plugin("gone", "stopped", "Was here", "", vec![]),
                plugin("weather", "restarting", "", "", vec![cmd("weather", &["w"], "weather <city>", "Show the weather.", "")]),
                plugin("greeter", "starting", "Says hello to newcomers", "", vec![]),
                plugin("silent", "running", "", "", vec![]),
                plugin("hidden", "running", "Only hidden commands", "", vec![cmd("secret", &[], "", "", "")]),
            ],
        }
    }

    #[test]
    fn overview_lists_available_commands_sorted() {
        let got = Catalog::new(sample(), "?").overview();
        let want = [
            "Available commands",
            "greeter - Says hello to newcomers",
            "!help [command|plugin] - Show help for commands.",
            "hidden - Only hidden commands",
            "!join #channel - Ask the bot to join a channel.",
            "!karma [name|--top|--bottom] - Show someone's karma, or the top or bottom five",
            "!Leave - Ask the bot to leave.",
            "s/find/replace/ - Perform sed style find and replace.",
            "!weather <city> - Show the weather.",
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn describe_table() {
        let catalog = Catalog::new(sample(), "!");
        let karma: &[&str] = &[
            "!karma [name|--top|--bottom] - Show someone's karma, or the top or bottom five",
            "!karma username - Show the user's karma count",
            "!karma --top - Show the top 5",
        ];
        let help: &[&str] = &[
            "!help [command|plugin] - Show help for commands.",
            "For detailed help on a command, say \"!help <command>\".",
        ];
        let sed: &[&str] = &[
            "s/find/replace/ - Perform sed style find and replace.",
            "Use like \"s/foo/bar/\".",
            "Flags: g, i, m",
        ];
        let hamper: &[&str] = &[
            "The bot itself",
            "!join #channel - Ask the bot to join a channel.",
            "!Leave - Ask the bot to leave.",
        ];
        let unknown: &[&str] = &["Unknown command"];
        let cases: &[(&str, &[&str])] = &[
            ("karma", karma),
            ("KARMA", karma),
            ("!karma", karma),
            ("score", karma),
            ("!Score", karma),
            ("karma --top", karma),
            ("  karma  ", karma),
            ("help", help),
            ("sed", sed),
            ("SED", sed),
            ("!sed", sed),
            ("hamper", hamper),
            ("part", &["!Leave - Ask the bot to leave."]),
            ("leave", &["!Leave - Ask the bot to leave."]),
            ("admin", &["!admin", "Owners only."]),
            ("secret", &["!secret"]),
            ("w", &["!weather <city> - Show the weather."]),
            ("greeter", &["Says hello to newcomers"]),
            ("silent", &["No help for silent"]),
            ("hidden", &["Only hidden commands"]),
            ("broken", unknown),
            ("gone", unknown),
            ("nothing", unknown),
            ("!", unknown),
            ("!!karma", unknown),
            ("", unknown),
        ];
        for (query, want) in cases {
            assert_eq!(catalog.describe(query), *want, "query {query:?}");
        }
    }

    #[test]
    fn the_prefix_comes_from_the_list_or_the_fallback() {
        let mut list = sample();
        list.command_prefix = ".".into();
        let catalog = Catalog::new(list.clone(), "!");
        assert_eq!(
            catalog.describe(".w"),
            ["!weather <city> - Show the weather."].map(|l| l.replace('!', "."))
        );
        assert_eq!(catalog.describe("!w"), ["Unknown command"]);
        list.command_prefix = String::new();
        let catalog = Catalog::new(list, "~");
        assert_eq!(
            catalog.describe("~w"),
            ["~weather <city> - Show the weather."]
        );
    }

    #[test]
    fn command_lines() {
        let cases: &[(&str, CommandSpec, &str)] = &[
            (
                "!",
                cmd(
                    "seen",
                    &[],
                    "seen <user>",
                    "When was the user last seen?",
                    "",
                ),
                "!seen <user> - When was the user last seen?",
            ),
            (
                "!",
                cmd("roll", &[], "", "Roll dice.", ""),
                "!roll - Roll dice.",
            ),
            (
                "!",
                cmd("roll", &[], "  ", "  Roll dice.  ", ""),
                "!roll - Roll dice.",
            ),
            (".", cmd("roll", &[], "", "", ""), ".roll"),
            (
                "",
                cmd("roll", &[], "roll NdM", "Roll dice.", ""),
                "roll NdM - Roll dice.",
            ),
        ];
        for (prefix, spec, want) in cases {
            assert_eq!(command_line(prefix, spec), *want);
        }
    }

    #[test]
    fn availability() {
        for (state, want) in [
            ("running", true),
            ("starting", true),
            ("restarting", true),
            ("", true),
            ("failed", false),
            ("stopped", false),
            ("disabled", false),
        ] {
            assert_eq!(is_available(state), want, "state {state:?}");
        }
    }
}
