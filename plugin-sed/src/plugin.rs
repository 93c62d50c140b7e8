//! The sed plugin itself: turns chat messages into corrections of earlier lines.
//!
//! For each message (or `/me` action) [`SedPlugin::process`] decides on a reply with the
//! original's rules (reference §2.4, intended behaviour) and only then records the message in
//! its channel's history, so a command never sees itself. The reply is built by concatenation,
//! never through a format template, and with CR, LF and NUL turned into spaces so that it stays
//! one IRC line whatever the replacement produced.

use anyhow::Context as _;
use hamper_protocol::sdk::{Context, Event, Plugin};
use hamper_protocol::{CaseMapping, HostHello, Message, PluginHello, Subscription, ToPlugin};
use serde::Deserialize;

use crate::expr::SedCommand;
use crate::history::{BucketKey, History, Line};

/// The plugin's name.
pub const NAME: &str = "sed";
/// The one line `!help` shows.
pub const DESCRIPTION: &str = "s/find/replace/ - Perform sed style find and replace.";
/// The original's long help text, kept word for word.
pub const HELP: &str =
    "Use like \"s/foo/bar/\" to search for \"foo\" and replace it with \"bar\". \n\
                        Flags: Add these flags to the end of the command:\n\
                        m - Restrict the search to only your messages\n\
                        i - Case insensitive searching.\n\
                        g - Match an unlimited number of times.";
/// The reply when nothing has been said where the command was given.
pub const REPLY_NO_HISTORY: &str = "Who are you?! How did you get in my house?!";
/// The reply to a pattern or replacement that does not compile.
pub const REPLY_BAD_PATTERN: &str = "Do you even lift?";
/// The longest corrected text, in bytes; a longer one is cut and ends with `…`. It is the length
/// of a whole IRC line, so correcting any real line loses nothing, while a replacement that
/// explodes the text cannot make the reply longer than a couple of lines.
pub const MAX_RESULT_BYTES: usize = 512;

/// The plugin's config section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct SedConfig {
    /// Ignore commands that are not addressed to the bot (`only-directed` in the config).
    #[serde(default, rename = "only-directed", alias = "only_directed")]
    pub only_directed: bool,
}

impl SedConfig {
    /// Reads the config section from the host's hello; `null` means the defaults.
    pub fn from_value(value: &serde_json::Value) -> anyhow::Result<SedConfig> {
        if value.is_null() {
            return Ok(SedConfig::default());
        }
        SedConfig::deserialize(value)
            .context("invalid sed config; `only-directed` must be true or false")
    }
}

/// The sed plugin: its config and the history of every channel it has seen.
#[derive(Debug, Default)]
pub struct SedPlugin {
    config: SedConfig,
    history: History,
    /// How the server compares names, for the history's buckets and `s///m`'s "mine".
    casemapping: CaseMapping,
}

impl SedPlugin {
    /// A plugin with the given config and no history.
    pub fn new(config: SedConfig) -> Self {
        SedPlugin {
            config,
            history: History::new(),
            casemapping: CaseMapping::default(),
        }
    }

    /// Handles one chat message or action: returns the reply to send, if any, and then
    /// remembers the message.
    pub fn process(&mut self, msg: &Message) -> Option<String> {
        let key = BucketKey::for_message(msg, self.casemapping);
        let command = SedCommand::parse(&msg.message);
        let reply = command.as_ref().and_then(|c| self.respond(c, msg, &key));
        self.history
            .record(key, Line::new(&msg.nick, &msg.text, command.is_some()));
        reply
    }

    fn respond(&self, command: &SedCommand, msg: &Message, key: &BucketKey) -> Option<String> {
        if self.config.only_directed && !(msg.directed || msg.private) {
            return None;
        }
        if self.history.is_empty(key) {
            return Some(REPLY_NO_HISTORY.to_string());
        }
        let Ok(compiled) = command.compile() else {
            return Some(REPLY_BAD_PATTERN.to_string());
        };
        let mine_only = command.mine_only();
        let target = self.history.newest_first(key).find(|line| {
            line.editable
                && (!mine_only || self.casemapping.same(&line.nick, &msg.nick))
                && compiled.targets(&line.text)
        });
        let Some(line) = target else {
            let mut reply = String::from("Sorry, I couldn't match '");
            reply.push_str(command.first_source());
            reply.push_str("'.");
            return Some(reply);
        };
        let (corrected, truncated) = compiled.apply(&line.text, MAX_RESULT_BYTES);
        let mut reply = line.nick.clone();
        reply.push_str(" actually meant: ");
        reply.extend(corrected.chars().map(|c| {
            if matches!(c, '\r' | '\n' | '\0') {
                ' '
            } else {
                c
            }
        }));
        if truncated {
            reply.push('…');
        }
        Some(reply)
    }
}

impl Plugin for SedPlugin {
    fn hello(&self) -> PluginHello {
        PluginHello {
            name: NAME.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            description: DESCRIPTION.to_string(),
            help: HELP.to_string(),
            commands: Vec::new(),
            subscriptions: vec![
                Subscription::Message,
                Subscription::Action,
                Subscription::Connected,
            ],
            ..PluginHello::default()
        }
    }

    async fn start(&mut self, host: &HostHello, _ctx: &Context) -> anyhow::Result<()> {
        self.config = SedConfig::from_value(&host.config)?;
        self.casemapping = host.bot.casemapping;
        Ok(())
    }

    async fn handle(&mut self, event: Event, ctx: &Context) -> anyhow::Result<()> {
        match event {
            Event::Message(msg) => {
                if let Some(reply) = self.process(&msg) {
                    ctx.reply(&msg, reply);
                }
            }
            // A new server may compare names differently; names seen before keep their buckets.
            Event::Other(ToPlugin::Connected(c)) => self.casemapping = c.casemapping,
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use serde_json::json;

    use super::*;
    use crate::history::HISTORY_LINES;

    /// Messages in order, each with the reply it should get.
    type Script = Vec<(Message, Option<String>)>;

    /// A line said in `#c` without addressing anyone.
    fn say(nick: &str, text: &str) -> Message {
        Message {
            channel: Some("#c".into()),
            nick: nick.into(),
            text: text.into(),
            message: text.into(),
            ..Message::default()
        }
    }

    /// A line in `#c` addressed to the bot as `hamper: <text>`.
    fn to_bot(nick: &str, text: &str) -> Message {
        Message {
            text: format!("hamper: {text}"),
            directed: true,
            target: Some("hamper".into()),
            ..say(nick, text)
        }
    }

    /// A line in `#c` addressed to another user; the host rebuilds the message as `bob: …`.
    fn to_other(nick: &str, other: &str, text: &str) -> Message {
        Message {
            target: Some(other.into()),
            ..say(nick, &format!("{other}: {text}"))
        }
    }

    /// A `/me` action in `#c`.
    fn action(nick: &str, text: &str) -> Message {
        Message {
            action: true,
            ..say(nick, text)
        }
    }

    /// A private message to the bot (directed, as hamper's host marks them).
    fn pm(nick: &str, text: &str) -> Message {
        Message {
            channel: None,
            directed: true,
            private: true,
            ..say(nick, text)
        }
    }

    /// A line in another channel.
    fn in_channel(channel: &str, nick: &str, text: &str) -> Message {
        Message {
            channel: Some(channel.into()),
            ..say(nick, text)
        }
    }

    fn many(count: usize, nick: &str, text: &str) -> Script {
        (0..count).map(|_| (say(nick, text), None)).collect()
    }

    fn run(config: &SedConfig, script: Script) -> Vec<String> {
        let mut plugin = SedPlugin::new(config.clone());
        let mut failures = Vec::new();
        for (i, (msg, want)) in script.into_iter().enumerate() {
            let got = plugin.process(&msg);
            if got != want {
                failures.push(format!(
                    "line {i} {:?}: got {got:?}, want {want:?}",
                    msg.text
                ));
            }
        }
        failures
    }

    fn r(text: &str) -> Option<String> {
        Some(text.to_string())
    }

    #[test]
    fn conversations() {
        let only_directed = SedConfig {
            only_directed: true,
        };
        let default = SedConfig::default();
        let long_line = "a".repeat(1000);
        let exploded = format!("alice actually meant: {}…", "b".repeat(MAX_RESULT_BYTES));
        let cases: Vec<(&str, &SedConfig, Script)> = vec![
            ("a simple correction", &default, vec![
                (say("alice", "hello wrold"), None),
                (say("bob", "s/wrold/world/"), r("alice actually meant: hello world")),
            ]),
            ("upper-case S", &default, vec![
                (say("alice", "hello wrold"), None),
                (say("alice", "S/wrold/world/"), r("alice actually meant: hello world")),
            ]),
            ("text after the expression is ignored", &default, vec![
                (say("alice", "hello wrold"), None),
                (say("alice", "s/wrold/world/ please"), r("alice actually meant: hello world")),
            ]),
            ("the first match only, or all with g", &default, vec![
                (say("alice", "foo foo"), None),
                (say("alice", "s/foo/bar/"), r("alice actually meant: bar foo")),
                (say("alice", "s/foo/bar/g"), r("alice actually meant: bar bar")),
                (say("alice", "s/foo/bar/G"), r("alice actually meant: bar bar")),
            ]),
            ("i makes the match case-insensitive", &default, vec![
                (say("alice", "Hello World"), None),
                (say("alice", "s/hello/bye/"), r("Sorry, I couldn't match 'hello'.")),
                (say("alice", "s/hello/bye/i"), r("alice actually meant: bye World")),
            ]),
            ("the newest matching line is edited, by anyone", &default, vec![
                (say("alice", "cats are great"), None),
                (say("bob", "dogs are great"), None),
                (say("carol", "the weather"), None),
                (say("dave", "s/great/ok/"), r("bob actually meant: dogs are ok")),
                (say("dave", "s/cats/birds/"), r("alice actually meant: birds are great")),
            ]),
            ("m only edits the sender's own lines", &default, vec![
                (say("alice", "foo one"), None),
                (say("bob", "foo two"), None),
                (say("Alice", "s/foo/bar/m"), r("alice actually meant: bar one")),
                (say("alice", "s/foo/bar/"), r("bob actually meant: bar two")),
                (say("carol", "s/foo/bar/m"), r("Sorry, I couldn't match 'foo'.")),
            ]),
            ("m on any expression applies to all", &default, vec![
                (say("alice", "apple pie"), None),
                (say("bob", "apple tart"), None),
                (say("alice", "s/apple/pear/ s/pie/cake/m"), r("alice actually meant: pear cake")),
            ]),
            ("several expressions edit the same line (issue #51)", &default, vec![
                (say("alice", "apple banana apple banana"), None),
                (say("bob", "s/apple/orange/g s/banana/grape/"),
                    r("alice actually meant: orange grape orange banana")),
            ]),
            ("the target is chosen by the first expression only", &default, vec![
                (say("alice", "banana split"), None),
                (say("bob", "apple pie"), None),
                (say("carol", "s/banana/cherry/ s/pie/tart/"), r("alice actually meant: cherry split")),
                (say("carol", "s/kiwi/x/ s/apple/y/"), r("Sorry, I couldn't match 'kiwi'.")),
            ]),
            ("no history at all", &default, vec![
                (say("alice", "s/a/b/"), r(REPLY_NO_HISTORY)),
                (say("alice", "s/a/b/"), r("Sorry, I couldn't match 'a'.")),
            ]),
            ("no history is checked before the pattern", &default, vec![
                (say("alice", "s/(/b/"), r(REPLY_NO_HISTORY)),
                (say("alice", "s/(/b/"), r(REPLY_BAD_PATTERN)),
            ]),
            ("history is per channel", &default, vec![
                (say("alice", "hello wrold"), None),
                (in_channel("#other", "bob", "s/wrold/world/"), r(REPLY_NO_HISTORY)),
                (in_channel("#C", "bob", "s/wrold/world/"), r("alice actually meant: hello world")),
            ]),
            ("bad patterns and replacements", &default, vec![
                (say("alice", "hello"), None),
                (say("alice", "s/(/x/"), r(REPLY_BAD_PATTERN)),
                (say("alice", "s/hello/x/ s/[/y/"), r(REPLY_BAD_PATTERN)),
                (say("alice", r"s/(h)/\2/"), r(REPLY_BAD_PATTERN)),
                (say("alice", r"s/h/\g<nope>/"), r(REPLY_BAD_PATTERN)),
                (say("alice", r"s/(h)\1/x/"), r(REPLY_BAD_PATTERN)),
                (say("alice", "s/a{1000}{1000}/x/"), r(REPLY_BAD_PATTERN)),
                (say("alice", &format!("s/{}/x/", "h".repeat(300))), r(REPLY_BAD_PATTERN)),
            ]),
            ("nothing matches", &default, vec![
                (say("alice", "hello"), None),
                (say("bob", "s/bye/x/"), r("Sorry, I couldn't match 'bye'.")),
                (say("bob", r"s/a\/b/x/"), r(r"Sorry, I couldn't match 'a\/b'.")),
                (say("bob", r"s/\{user\}/x/"), r(r"Sorry, I couldn't match '\{user\}'.")),
            ]),
            ("sed lines and lines containing s/ are never targets", &default, vec![
                (say("alice", "so good"), None),
                (say("bob", "see https://x.org/docs/ok"), None),
                (say("carol", "S/good/bad/"), r("alice actually meant: so bad")),
                (say("dave", "s/o/0/"), r("alice actually meant: s0 good")),
                (say("dave", "s/s\\//x/"), r("Sorry, I couldn't match 's\\/'.")),
            ]),
            ("only-directed ignores undirected commands", &only_directed, vec![
                (say("alice", "hello wrold"), None),
                (say("bob", "s/wrold/world/"), None),
                (to_bot("bob", "s/wrold/world/"), r("alice actually meant: hello world")),
                (pm("bob", "s/a/b/"), r(REPLY_NO_HISTORY)),
            ]),
            ("without only-directed, addressed and bare commands both work", &default, vec![
                (say("alice", "hello wrold"), None),
                (to_bot("bob", "s/wrold/world/"), r("alice actually meant: hello world")),
                (say("bob", "s/hello/hi/"), r("alice actually meant: hi wrold")),
            ]),
            ("a command addressed to another user does nothing", &default, vec![
                (say("alice", "hello wrold"), None),
                (to_other("bob", "alice", "s/wrold/world/"), None),
                (to_other("bob", "alice", "you said hello"), None),
                (say("carol", "s/hello/hi/"), r("bob actually meant: alice: you said hi")),
            ]),
            ("the edited text is the raw line, addressing included", &default, vec![
                (to_bot("alice", "halp"), None),
                (say("alice", "s/halp/help/"), r("alice actually meant: hamper: help")),
            ]),
            ("actions are in history and can be commands", &default, vec![
                (action("alice", "waves helo"), None),
                (say("bob", "s/helo/hello/"), r("alice actually meant: waves hello")),
                (action("bob", "s/waves/nods/"), r("alice actually meant: nods helo")),
            ]),
            ("private messages have a bucket per sender", &default, vec![
                (pm("alice", "my secret pasword"), None),
                (pm("bob", "s/pasword/password/"), r(REPLY_NO_HISTORY)),
                (pm("ALICE", "s/pasword/password/"), r("alice actually meant: my secret password")),
                (say("carol", "s/secret/public/"), r(REPLY_NO_HISTORY)),
            ]),
            ("the last 100 lines are kept", &default, [
                vec![(say("alice", "needle"), None)],
                many(HISTORY_LINES - 1, "bob", "hay"),
                vec![(say("carol", "s/needle/pin/"), r("alice actually meant: pin"))],
                vec![(say("carol", "s/needle/pin/"), r("Sorry, I couldn't match 'needle'."))],
            ].concat()),
            ("escapes, groups and a literal dollar", &default, vec![
                (say("alice", "use and/or here"), None),
                (say("bob", r"s/and\/or/or/"), r("alice actually meant: use or here")),
                (say("bob", r"s/(\w+) (\w+)/\2 \1/"), r("alice actually meant: and use/or here")),
                (say("bob", r"s/(?P<verb>use)/\g<verb>d/"), r("alice actually meant: used and/or here")),
                (say("bob", r"s/(use)/\g<1>\g<0>/"), r("alice actually meant: useuse and/or here")),
                (say("bob", r"s/use/$1 ${0} $$/"), r("alice actually meant: $1 ${0} $$ and/or here")),
                (say("bob", r"s/use/a\\b/"), r(r"alice actually meant: a\b and/or here")),
                (say("bob", r"s/here/{user}/"), r("alice actually meant: use and/or {user}")),
            ]),
            ("control characters cannot split the reply", &default, vec![
                (say("alice", "one two"), None),
                (say("bob", r"s/ /\r\n\0/"), r("alice actually meant: one   two")),
                (say("bob", "s/ /\u{2}/"), r("alice actually meant: one\u{2}two")),
            ]),
            ("an exploding replacement is cut", &default, vec![
                (say("alice", &long_line), None),
                (say("bob", "s/a/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/g"),
                    r(&exploded)),
            ]),
            ("a catastrophic pattern finishes", &default, vec![
                (say("alice", &long_line), None),
                (say("bob", "s/(a*)*b/x/"), r("Sorry, I couldn't match '(a*)*b'.")),
                (say("bob", "s/(a|aa)*$/x/"), r("alice actually meant: x")),
            ]),
        ];
        let mut failures = Vec::new();
        for (name, config, script) in cases {
            let started = Instant::now();
            for failure in run(config, script) {
                failures.push(format!("{name}: {failure}"));
            }
            let took = started.elapsed();
            assert!(took < Duration::from_secs(5), "{name} took {took:?}");
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn config_is_read_from_the_host_hello() {
        let cases: &[(serde_json::Value, Option<bool>)] = &[
            (json!(null), Some(false)),
            (json!({}), Some(false)),
            (json!({"only-directed": true}), Some(true)),
            (json!({"only-directed": false}), Some(false)),
            (json!({"only_directed": true}), Some(true)),
            (json!({"only-directed": true, "unknown": 1}), Some(true)),
            (json!({"only-directed": "yes"}), None),
            (json!("only-directed"), None),
        ];
        for (value, want) in cases {
            let got = SedConfig::from_value(value).ok().map(|c| c.only_directed);
            assert_eq!(got, *want, "{value}");
        }
    }

    #[test]
    fn manifest() {
        let hello = SedPlugin::default().hello();
        assert_eq!(hello.name, "sed");
        assert_eq!(
            hello.description,
            "s/find/replace/ - Perform sed style find and replace."
        );
        assert_eq!(
            hello.help.lines().collect::<Vec<_>>(),
            [
                "Use like \"s/foo/bar/\" to search for \"foo\" and replace it with \"bar\". ",
                "Flags: Add these flags to the end of the command:",
                "m - Restrict the search to only your messages",
                "i - Case insensitive searching.",
                "g - Match an unlimited number of times.",
            ]
        );
        assert!(hello.commands.is_empty());
        assert_eq!(
            hello.subscriptions,
            [
                Subscription::Message,
                Subscription::Action,
                Subscription::Connected
            ]
        );
    }
}
