//! The help plugin: `!help` lists every command by private message, `!help <command>` and
//! `!help <plugin>` answer where they were asked (reference §2.3 and §6.5).
//!
//! Each line is sent as its own message: the host caps how many lines one message may become,
//! and the list of every command can be longer than that cap.

use hamper_protocol::sdk::{Context, Event, Plugin};
use hamper_protocol::{CommandEvent, CommandSpec, PluginHello};

use crate::catalog::Catalog;

/// The answer when the host cannot say which plugins there are.
pub const LIST_FAILED: &str = "Sorry, I can't get the list of commands right now.";

/// The help plugin. It keeps no state: the catalog is asked for at every request.
#[derive(Debug, Default)]
pub struct Help;

/// The plugin's manifest.
pub fn manifest() -> PluginHello {
    PluginHello {
        protocol_version: hamper_protocol::PROTOCOL_VERSION,
        name: "help".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        description: "help [command] - Show help for commands.".into(),
        help: String::new(),
        commands: vec![CommandSpec {
            name: "help".into(),
            aliases: Vec::new(),
            usage: "help [command|plugin]".into(),
            help: "Show help for commands.".into(),
            long_help: "For detailed help on a command, say \"!help <command>\". Some commands \
                        may not be listed. If you think they should, poke the plugin author."
                .into(),
            directed: true,
            permission: None,
        }],
        subscriptions: Vec::new(),
    }
}

impl Plugin for Help {
    fn hello(&self) -> PluginHello {
        manifest()
    }

    async fn handle(&mut self, event: Event, ctx: &Context) -> anyhow::Result<()> {
        match event {
            Event::Command(cmd) if cmd.command.eq_ignore_ascii_case("help") => {
                answer(&cmd, ctx).await
            }
            Event::Command(cmd) => eprintln!("ignoring unknown command {:?}", cmd.command),
            Event::Message(_) | Event::Other(_) => {}
        }
        Ok(())
    }
}

/// Answers `!help [command|plugin]`.
async fn answer(cmd: &CommandEvent, ctx: &Context) {
    let msg = &cmd.message;
    let list = match ctx.plugins_list().await {
        Ok(list) => list,
        Err(err) => {
            eprintln!("failed to list the plugins: {err}");
            ctx.reply(msg, LIST_FAILED);
            return;
        }
    };
    let catalog = Catalog::new(list, &ctx.host().bot.command_prefix);
    if cmd.args.trim().is_empty() {
        // Only by private message, even when asked in a channel (issues #68 and #108).
        for line in catalog.overview() {
            ctx.say(&msg.nick, line);
        }
    } else {
        for line in catalog.describe(&cmd.args) {
            ctx.reply(msg, line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_matches_the_reference() {
        let hello = manifest();
        assert_eq!(hello.name, "help");
        assert_eq!(hello.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(
            hello.description,
            "help [command] - Show help for commands."
        );
        assert!(hello.subscriptions.is_empty());
        let cmd = &hello.commands[0];
        assert_eq!(cmd.name, "help");
        assert_eq!(cmd.usage, "help [command|plugin]");
        assert_eq!(
            cmd.long_help,
            "For detailed help on a command, say \"!help <command>\". Some commands may not be \
             listed. If you think they should, poke the plugin author."
        );
    }
}
