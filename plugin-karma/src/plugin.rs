//! The karma plugin: counts `name++` and `name--` said in channels and answers `!karma`.
//!
//! Scores live in the host's key-value store as `score/<lowercased name>` → integer, changed
//! only with the atomic `kv.incr`, so two bots (or an importer) never lose each other's updates.
//! When storage fails, the user is told that the karma was not counted; nothing is dropped
//! silently.

use hamper_protocol::sdk::{Context, Event, Plugin};
use hamper_protocol::{
    CommandEvent, CommandSpec, HostHello, ListOrder, ListParams, Message, PluginHello,
    Subscription, MAX_KEY_BYTES,
};
use serde::Deserialize;
use serde_json::Value;

use crate::opinion::{opinion, Random, XorShift};
use crate::parse::{parse_karma, Change};
use crate::replies::{
    list_line, no_karma_line, not_counted_line, parse_query, score_key, score_line,
    storage_error_line, too_long_line, usage_line, Query, DATABASE_BROKEN, LIST_MAX, NO_KARMA_YET,
    SCORE_PREFIX, SELF_KARMA,
};

/// The plugin's config section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct KarmaConfig {
    /// Whether the bot voices random opinions on karma given (the original's 2018 behaviour).
    pub opinions: bool,
}

impl KarmaConfig {
    /// Reads the config section; `null` (no section) gives the defaults.
    pub fn from_value(value: &Value) -> Result<Self, serde_json::Error> {
        if value.is_null() {
            return Ok(KarmaConfig::default());
        }
        KarmaConfig::deserialize(value)
    }
}

/// The karma plugin, generic over its dice so tests can script opinions.
#[derive(Debug)]
pub struct Karma<R = XorShift> {
    config: KarmaConfig,
    rng: R,
}

impl Default for Karma<XorShift> {
    fn default() -> Self {
        Karma::with_rng(XorShift::from_entropy())
    }
}

impl<R: Random> Karma<R> {
    /// A karma plugin that rolls `rng` for its opinions.
    pub fn with_rng(rng: R) -> Self {
        Karma {
            config: KarmaConfig::default(),
            rng,
        }
    }
}

/// The plugin's manifest.
pub fn manifest() -> PluginHello {
    PluginHello {
        protocol_version: hamper_protocol::PROTOCOL_VERSION,
        name: "karma".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        description: "karma/score - Give or take karma from someone".into(),
        help: [
            "username++ - Give karma",
            "username-- - Take karma",
            "!karma --top - Show the top 5 karma earners",
            "!karma --bottom - Show the bottom 5 karma earners",
            "!karma username - Show the user's karma count",
        ]
        .join("\n"),
        commands: vec![CommandSpec {
            name: "karma".into(),
            aliases: vec!["score".into()],
            usage: "karma [name|--top|--bottom]".into(),
            help: "Show someone's karma, or the top or bottom five".into(),
            long_help: [
                "!karma - Show your own karma count",
                "!karma username - Show the user's karma count",
                "!karma --top - Show the top 5 karma earners",
                "!karma --bottom - Show the bottom 5 karma earners",
                "!score works the same as !karma.",
            ]
            .join("\n"),
            directed: true,
            permission: None,
        }],
        // The original counted karma in `/me` actions too: they went through the same path.
        subscriptions: vec![Subscription::Message, Subscription::Action],
    }
}

/// The karma changes a message gives: none when it is addressed to the bot or private.
pub fn changes_in(msg: &Message) -> Vec<Change> {
    if msg.directed || msg.private {
        return Vec::new();
    }
    parse_karma(&msg.message)
}

impl<R: Random> Plugin for Karma<R> {
    fn hello(&self) -> PluginHello {
        manifest()
    }

    async fn start(&mut self, host: &HostHello, _ctx: &Context) -> anyhow::Result<()> {
        // Opinions are banter: a bad value is worth a warning, not a plugin that will not start.
        self.config = KarmaConfig::from_value(&host.config).unwrap_or_else(|err| {
            eprintln!("ignoring the karma config, using the defaults: {err}");
            KarmaConfig::default()
        });
        Ok(())
    }

    async fn handle(&mut self, event: Event, ctx: &Context) -> anyhow::Result<()> {
        match event {
            Event::Message(msg) => self.give(&msg, ctx).await,
            Event::Command(cmd) if cmd.command.eq_ignore_ascii_case("karma") => {
                answer(&cmd, ctx).await
            }
            Event::Command(cmd) => eprintln!("ignoring unknown command {:?}", cmd.command),
            Event::Other(_) => {}
        }
        Ok(())
    }
}

impl<R: Random> Karma<R> {
    /// Counts the karma in one chat line.
    async fn give(&mut self, msg: &Message, ctx: &Context) {
        let changes = changes_in(msg);
        if changes.is_empty() {
            return;
        }
        let giver = msg.nick.to_lowercase();
        if changes.iter().any(|c| c.name == giver) {
            ctx.reply(msg, SELF_KARMA);
        }
        let mut too_long = false;
        let mut counted: Vec<&str> = Vec::new();
        let mut failed: Vec<&str> = Vec::new();
        let mut first_error = None;
        for change in changes.iter().filter(|c| c.name != giver) {
            let key = score_key(&change.name);
            if key.len() > MAX_KEY_BYTES {
                too_long = true;
                continue;
            }
            match ctx.kv_incr(&key, change.delta).await {
                Ok(_) => counted.push(&change.name),
                Err(err) => {
                    eprintln!(
                        "failed to add {} to the karma of {:?}: {err}",
                        change.delta, change.name
                    );
                    failed.push(&change.name);
                    first_error.get_or_insert(err);
                }
            }
        }
        if too_long {
            ctx.reply(msg, too_long_line());
        }
        if let Some(err) = first_error {
            ctx.reply(msg, not_counted_line(&err, &failed));
            return;
        }
        // The original also cheered a refused self-karma ("Nice try", then "I like bob!"); an
        // opinion here is only ever about karma that was counted.
        if self.config.opinions {
            if let Some(text) = opinion(&counted, &mut self.rng) {
                ctx.reply(msg, text);
            }
        }
    }
}

/// Answers `!karma [name|--top|--bottom]`.
async fn answer(cmd: &CommandEvent, ctx: &Context) {
    let msg = &cmd.message;
    match parse_query(&cmd.args, &msg.nick) {
        Query::Name(name) => answer_name(msg, &name, ctx).await,
        Query::Top => answer_list(msg, ListOrder::ValueDesc, ctx).await,
        Query::Bottom => answer_list(msg, ListOrder::ValueAsc, ctx).await,
        Query::Unknown => {
            let prefix = ctx.host().bot.command_prefix;
            let prefix = if prefix.is_empty() { "!" } else { &prefix };
            ctx.reply(msg, usage_line(prefix));
        }
    }
}

async fn answer_name(msg: &Message, name: &str, ctx: &Context) {
    let key = score_key(name);
    if key.len() > MAX_KEY_BYTES {
        ctx.reply(msg, no_karma_line(name));
        return;
    }
    match ctx.kv_get(&key).await {
        Ok(None) => ctx.reply(msg, no_karma_line(name)),
        Ok(Some(value)) => match value.as_i64() {
            Some(score) => ctx.reply(msg, score_line(name, score)),
            None => {
                eprintln!("the karma of {name:?} is not an integer: {value}");
                ctx.reply(msg, DATABASE_BROKEN);
            }
        },
        Err(err) => {
            eprintln!("failed to read the karma of {name:?}: {err}");
            ctx.reply(msg, storage_error_line(&err));
        }
    }
}

async fn answer_list(msg: &Message, order: ListOrder, ctx: &Context) {
    let params = ListParams {
        prefix: SCORE_PREFIX.into(),
        order,
        limit: Some(LIST_MAX),
        offset: None,
    };
    let items = match ctx.kv_list(&params).await {
        Ok(items) => items,
        Err(err) => {
            eprintln!("failed to list karma: {err}");
            ctx.reply(msg, storage_error_line(&err));
            return;
        }
    };
    let rows: Vec<String> = items
        .iter()
        .filter_map(|item| {
            let name = item.key.strip_prefix(SCORE_PREFIX)?;
            match item.value.as_i64() {
                Some(score) => Some(list_line(name, score)),
                None => {
                    eprintln!("skipping {:?}: not an integer: {}", item.key, item.value);
                    None
                }
            }
        })
        .collect();
    if rows.is_empty() {
        ctx.reply(msg, NO_KARMA_YET);
    }
    for row in rows {
        ctx.reply(msg, row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(text: &str, processed: &str, directed: bool, private: bool) -> Message {
        Message {
            channel: (!private).then(|| "#c".to_string()),
            nick: "alice".into(),
            text: text.into(),
            message: processed.into(),
            directed,
            private,
            ..Message::default()
        }
    }

    /// Raw text, the text processed as the host sends it, directed, private, and the changes.
    type Case<'a> = (&'a str, &'a str, bool, bool, &'a [(&'a str, i64)]);

    /// Which messages give karma at all (the last rows of the table in reference §2.1).
    #[test]
    fn only_undirected_channel_messages_give_karma() {
        let cases: &[Case] = &[
            ("foo++", "foo++", false, false, &[("foo", 1)]),
            ("bob: foo++", "bob: foo++", false, false, &[("foo", 1)]),
            ("bob, foo++", "bob: foo++", false, false, &[("foo", 1)]),
            ("hamper: foo++", "foo++", true, false, &[]),
            ("!foo++", "foo++", true, false, &[]),
            ("foo++", "foo++", true, true, &[]),
            ("foo++", "foo++", false, true, &[]),
        ];
        for (raw, processed, directed, private, want) in cases {
            let got: Vec<(String, i64)> = changes_in(&message(raw, processed, *directed, *private))
                .into_iter()
                .map(|c| (c.name, c.delta))
                .collect();
            let want: Vec<(String, i64)> = want.iter().map(|(n, d)| (n.to_string(), *d)).collect();
            assert_eq!(
                got, want,
                "raw {raw:?} directed={directed} private={private}"
            );
        }
    }

    #[test]
    fn config() {
        let cases: &[(Value, Option<bool>)] = &[
            (Value::Null, Some(false)),
            (json!({}), Some(false)),
            (json!({"opinions": true}), Some(true)),
            (json!({"opinions": false, "future": 1}), Some(false)),
            (json!({"opinions": "yes"}), None),
            (json!([1]), None),
        ];
        for (value, want) in cases {
            let got = KarmaConfig::from_value(value).ok().map(|c| c.opinions);
            assert_eq!(got, *want, "config {value}");
        }
    }

    #[test]
    fn manifest_matches_the_reference() {
        let hello = manifest();
        assert_eq!(hello.name, "karma");
        assert_eq!(hello.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(
            hello.description,
            "karma/score - Give or take karma from someone"
        );
        assert_eq!(hello.help.lines().count(), 5);
        assert_eq!(hello.commands.len(), 1);
        let cmd = &hello.commands[0];
        assert_eq!(
            (cmd.name.as_str(), cmd.aliases.as_slice()),
            ("karma", &["score".to_string()][..])
        );
        assert!(cmd.directed && cmd.permission.is_none());
        assert!(hello.subscriptions.contains(&Subscription::Message));
    }
}
