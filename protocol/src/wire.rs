//! Wire types for both directions of the plugin protocol.
//!
//! Every line is one JSON object with a `type` field. Types are plain serde data and do no I/O,
//! so they are tested with strings. Unknown fields are ignored and new fields carry
//! `#[serde(default)]`, so an older plugin keeps working against a newer host and the reverse.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The longest storage key, in bytes.
pub const MAX_KEY_BYTES: usize = 256;
/// The longest storage value, in bytes of its JSON text.
pub const MAX_VALUE_BYTES: usize = 16 * 1024;

/// Identifies one request and its one response. Chosen by the plugin; unique per plugin process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(pub u64);

/// Identifies one liveness ping from the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PingId(pub u64);

/// A line sent by a plugin to the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromPlugin {
    /// The first line a plugin sends: its protocol version and manifest.
    Hello(PluginHello),
    /// Answer an event where it came from: the channel, or the sender of a private message.
    Reply(Reply),
    /// Send a message to a channel or nick.
    Say(Say),
    /// Send a `/me` action to a channel or nick.
    Me(Say),
    /// Send a notice to a channel or nick.
    Notice(Say),
    /// Join a channel. Needs the `join` grant in the plugin's config.
    Join(JoinChannel),
    /// Leave a channel. Needs the `part` grant in the plugin's config.
    Part(PartChannel),
    /// Send a raw IRC line. Needs the `raw` grant; the line may not contain CR, LF or NUL.
    Raw(RawLine),
    /// Ask the host for something; exactly one `response` with the same id follows.
    Request(Request),
    /// Answer a host `ping`.
    Pong(Pong),
}

/// A line sent by the host to a plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToPlugin {
    /// The host's answer to the plugin's hello.
    Hello(HostHello),
    /// A chat message (or `/me` action) that the plugin subscribed to.
    Message(Message),
    /// A command that this plugin owns.
    Command(CommandEvent),
    /// Someone (possibly the bot) joined a channel.
    Join(Join),
    /// Someone (possibly the bot) left a channel.
    Part(Part),
    /// Someone quit IRC.
    Quit(Quit),
    /// Someone was kicked from a channel.
    Kick(Kick),
    /// Someone changed nick.
    Nick(NickChange),
    /// A channel topic was changed.
    Topic(Topic),
    /// The bot was invited to a channel.
    Invite(Invite),
    /// The bot is registered on the network.
    Connected(Connected),
    /// The bot lost its connection; it reconnects by itself.
    Disconnected(Disconnected),
    /// The answer to one of the plugin's requests.
    Response(Response),
    /// A liveness check: answer with a `pong` carrying the same id.
    Ping(Ping),
    /// The host is stopping this plugin; exit promptly.
    Goodbye(Goodbye),
}

/// The plugin's `hello`: who it is and what it wants.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PluginHello {
    /// The protocol version the plugin speaks; must equal the host's.
    pub protocol_version: u32,
    /// The plugin's name as it reports it (the config's name is authoritative).
    #[serde(default)]
    pub name: String,
    /// The plugin's own version, free text.
    #[serde(default)]
    pub version: String,
    /// One line saying what the plugin does, shown by `!help`.
    #[serde(default)]
    pub description: String,
    /// Longer help for the plugin as a whole (for behaviour that is not a command, such as
    /// `s/find/replace/`), possibly several lines, shown by `!help <plugin>`.
    #[serde(default)]
    pub help: String,
    /// The commands the plugin owns.
    #[serde(default)]
    pub commands: Vec<CommandSpec>,
    /// The event kinds the plugin wants to receive.
    #[serde(default)]
    pub subscriptions: Vec<Subscription>,
}

/// One command a plugin offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandSpec {
    /// The command's name, matched case-insensitively: `karma` answers `!karma`.
    pub name: String,
    /// Other names for the same command.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// How to call it, for example `karma [name|--top|--bottom]`.
    #[serde(default)]
    pub usage: String,
    /// One line of help.
    #[serde(default)]
    pub help: String,
    /// More help, possibly several lines.
    #[serde(default)]
    pub long_help: String,
    /// Whether the command needs addressing (`!name`, `bot: name`, or a private message).
    /// When false, a bare `name args` in a channel triggers it too.
    #[serde(default = "default_true")]
    pub directed: bool,
    /// A permission the sender must hold. Owners hold every permission.
    #[serde(default)]
    pub permission: Option<String>,
}

fn default_true() -> bool {
    true
}

impl CommandSpec {
    /// A directed command with the given name and one line of help.
    pub fn new(name: impl Into<String>, help: impl Into<String>) -> Self {
        CommandSpec {
            name: name.into(),
            aliases: Vec::new(),
            usage: String::new(),
            help: help.into(),
            long_help: String::new(),
            directed: true,
            permission: None,
        }
    }
}

/// An event kind a plugin can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subscription {
    /// Chat messages (not `/me` actions).
    Message,
    /// `/me` actions.
    Action,
    /// Joins.
    Join,
    /// Parts.
    Part,
    /// Quits.
    Quit,
    /// Kicks.
    Kick,
    /// Nick changes.
    Nick,
    /// Topic changes.
    Topic,
    /// Invites of the bot.
    Invite,
    /// The bot finished registering.
    Connected,
    /// The bot lost its connection.
    Disconnected,
    /// A name this version does not know (from a newer plugin); the host refuses it and keeps
    /// the rest of the hello.
    #[serde(other)]
    Unknown,
}

impl Subscription {
    /// Every subscription, in wire order.
    pub const ALL: [Subscription; 11] = [
        Subscription::Message,
        Subscription::Action,
        Subscription::Join,
        Subscription::Part,
        Subscription::Quit,
        Subscription::Kick,
        Subscription::Nick,
        Subscription::Topic,
        Subscription::Invite,
        Subscription::Connected,
        Subscription::Disconnected,
    ];

    /// The wire name, as in a `hello`.
    pub fn as_str(self) -> &'static str {
        match self {
            Subscription::Message => "message",
            Subscription::Action => "action",
            Subscription::Join => "join",
            Subscription::Part => "part",
            Subscription::Quit => "quit",
            Subscription::Kick => "kick",
            Subscription::Nick => "nick",
            Subscription::Topic => "topic",
            Subscription::Invite => "invite",
            Subscription::Connected => "connected",
            Subscription::Disconnected => "disconnected",
            Subscription::Unknown => "unknown",
        }
    }
}

/// The host's `hello`: what it accepted, what it refused, and the plugin's config.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HostHello {
    /// The protocol version the host speaks.
    pub protocol_version: u32,
    /// The name the plugin runs under (from the config).
    #[serde(default)]
    pub name: String,
    /// Command names (canonical) that were accepted.
    #[serde(default)]
    pub commands: Vec<String>,
    /// Subscriptions that were accepted.
    #[serde(default)]
    pub subscriptions: Vec<Subscription>,
    /// What was refused, and why.
    #[serde(default)]
    pub rejected: Vec<Rejection>,
    /// The plugin's own config section (`null` when there is none).
    #[serde(default)]
    pub config: Value,
    /// The bot's identity at hello time.
    #[serde(default)]
    pub bot: BotInfo,
}

/// One part of a manifest that the host refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejection {
    /// What was refused: `command` or `alias`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Why, in words.
    pub reason: String,
}

/// The bot's nick and channels (`bot.info`, and in the host's hello).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BotInfo {
    /// The nick the bot has now.
    #[serde(default)]
    pub nick: String,
    /// The channels the bot is in now.
    #[serde(default)]
    pub channels: Vec<String>,
    /// The command prefix, `!` unless configured otherwise.
    #[serde(default)]
    pub command_prefix: String,
    /// Whether the bot is connected to IRC now (`false` in console mode before start-up ends).
    #[serde(default)]
    pub connected: bool,
    /// How the server compares nicks and channel names (`rfc1459` until it says otherwise).
    #[serde(default)]
    pub casemapping: crate::CaseMapping,
}

/// A chat message or `/me` action, with the addressing facts of the original Hamper.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Message {
    /// The channel, or `null` for a private message to the bot.
    #[serde(default)]
    pub channel: Option<String>,
    /// The sender's nick.
    pub nick: String,
    /// The sender's user (ident), when known.
    #[serde(default)]
    pub user: Option<String>,
    /// The sender's host, when known.
    #[serde(default)]
    pub host: Option<String>,
    /// The sender's services account, when the server tags the message with it
    /// (IRCv3 `account-tag`).
    #[serde(default)]
    pub account: Option<String>,
    /// The text exactly as received (for an action, the action text).
    pub text: String,
    /// The text with the bot's addressing removed: `hamper: hi` and `!hi` both give `hi`.
    /// A message addressed to someone else reads `bob: hi`.
    pub message: String,
    /// Whether the message was addressed to the bot (`nick: `, `nick, `, a leading command
    /// prefix, or a private message).
    #[serde(default)]
    pub directed: bool,
    /// The nick the message was addressed to with `nick: ` or `nick, `, if any.
    #[serde(default)]
    pub target: Option<String>,
    /// Whether this is a private message to the bot.
    #[serde(default)]
    pub private: bool,
    /// Whether this is a `/me` action.
    #[serde(default)]
    pub action: bool,
    /// When it was sent, in milliseconds since the Unix epoch: the server's time for it
    /// (IRCv3 `server-time`) when it gives one, else when the host received it.
    #[serde(default)]
    pub time: u64,
}

impl Message {
    /// Where a reply goes: the channel, or the sender of a private message.
    pub fn reply_target(&self) -> &str {
        self.channel.as_deref().unwrap_or(&self.nick)
    }
}

/// A command owned by the receiving plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandEvent {
    /// The command's canonical name (even when called by an alias).
    pub command: String,
    /// The name the user typed, lowercased.
    #[serde(default)]
    pub invoked_as: String,
    /// Everything after the command name, trimmed.
    #[serde(default)]
    pub args: String,
    /// The message that carried the command.
    #[serde(flatten)]
    pub message: Message,
}

/// A JOIN.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Join {
    /// The channel.
    pub channel: String,
    /// Who joined.
    pub nick: String,
    /// Their user, when known.
    #[serde(default)]
    pub user: Option<String>,
    /// Their host, when known.
    #[serde(default)]
    pub host: Option<String>,
    /// Whether it was the bot itself.
    #[serde(default)]
    pub is_bot: bool,
}

/// A PART.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Part {
    /// The channel.
    pub channel: String,
    /// Who left.
    pub nick: String,
    /// The part message, if any.
    #[serde(default)]
    pub reason: Option<String>,
    /// Whether it was the bot itself.
    #[serde(default)]
    pub is_bot: bool,
}

/// A QUIT.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Quit {
    /// Who quit.
    pub nick: String,
    /// The quit message, if any.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A KICK.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Kick {
    /// The channel.
    pub channel: String,
    /// Who was kicked.
    pub nick: String,
    /// Who kicked.
    pub by: String,
    /// The kick message, if any.
    #[serde(default)]
    pub reason: Option<String>,
    /// Whether the bot was the one kicked.
    #[serde(default)]
    pub is_bot: bool,
}

/// A NICK change.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NickChange {
    /// The old nick.
    pub old: String,
    /// The new nick.
    pub new: String,
    /// Whether it was the bot itself.
    #[serde(default)]
    pub is_bot: bool,
}

/// A TOPIC change.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Topic {
    /// The channel.
    pub channel: String,
    /// Who changed it.
    pub nick: String,
    /// The new topic.
    pub topic: String,
}

/// An INVITE of the bot.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Invite {
    /// The channel.
    pub channel: String,
    /// Who invited the bot.
    pub nick: String,
}

/// The bot finished registering.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Connected {
    /// The nick the bot got.
    pub nick: String,
    /// The server, as configured.
    #[serde(default)]
    pub server: String,
    /// How the server compares nicks and channel names, from its `CASEMAPPING`.
    #[serde(default)]
    pub casemapping: crate::CaseMapping,
}

/// The bot lost its connection.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Disconnected {
    /// Why, in words.
    #[serde(default)]
    pub reason: String,
}

/// A liveness check from the host.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ping {
    /// Echo this in the `pong`.
    pub id: PingId,
}

/// The answer to a [`Ping`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Pong {
    /// The id of the ping.
    pub id: PingId,
}

/// The host is stopping the plugin.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Goodbye {
    /// Why, in words.
    #[serde(default)]
    pub reason: String,
}

/// `reply`: answer where a message came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// The event's `channel` (`null` for a private message).
    #[serde(default)]
    pub channel: Option<String>,
    /// The event's `nick`.
    pub nick: String,
    /// The text; each line becomes one IRC message, up to a cap.
    pub text: String,
}

/// `say`, `me` and `notice`: send to a target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Say {
    /// A channel or a nick.
    pub target: String,
    /// The text; each line becomes one IRC message, up to a cap.
    pub text: String,
}

/// `join`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JoinChannel {
    /// The channel.
    pub channel: String,
    /// The channel key, if any.
    #[serde(default)]
    pub key: Option<String>,
}

/// `part`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartChannel {
    /// The channel.
    pub channel: String,
    /// The part message, if any.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `raw`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawLine {
    /// One IRC line without CR/LF.
    pub line: String,
}

/// A request from a plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Echoed in the response.
    pub id: RequestId,
    /// For example `plugins.list` or `kv.get`.
    pub method: String,
    /// The method's parameters (an object, or absent).
    #[serde(default)]
    pub params: Value,
}

/// The one answer to a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The request's id.
    pub id: RequestId,
    /// The result or the error.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// What a request produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Success, with a method-specific value.
    Result(Value),
    /// Failure.
    Error(ErrorBody),
}

/// A failed request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A machine-readable code.
    pub code: ErrorCode,
    /// What went wrong, for a person.
    #[serde(default)]
    pub message: String,
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The key (or other thing) does not exist.
    NotFound,
    /// A key or value is over its size limit.
    TooLarge,
    /// The parameters are wrong.
    BadRequest,
    /// The method is not known to this host.
    UnknownMethod,
    /// Storage (or another service) is down; try again later.
    Unavailable,
    /// The plugin lacks the grant for this.
    Forbidden,
    /// The host failed unexpectedly.
    Internal,
    /// A code this version does not know.
    #[serde(other)]
    Other,
}

impl ErrorCode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "not_found",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::UnknownMethod => "unknown_method",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Internal => "internal",
            ErrorCode::Other => "other",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of `plugins.list`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PluginsList {
    /// The command prefix, so help can print `!karma`.
    #[serde(default)]
    pub command_prefix: String,
    /// Every configured plugin, in config order, and the supervisor's own commands as `hamper`.
    #[serde(default)]
    pub plugins: Vec<PluginInfo>,
}

/// One plugin in `plugins.list`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PluginInfo {
    /// Its configured name.
    pub name: String,
    /// Its version, from its hello.
    #[serde(default)]
    pub version: String,
    /// Its description, from its hello.
    #[serde(default)]
    pub description: String,
    /// Its longer help, from its hello.
    #[serde(default)]
    pub help: String,
    /// `starting`, `running`, `restarting`, `failed` or `stopped`.
    #[serde(default)]
    pub state: String,
    /// Its accepted commands.
    #[serde(default)]
    pub commands: Vec<CommandSpec>,
}

/// Parameters of `kv.get` and `kv.delete`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyParams {
    /// The key, at most [`MAX_KEY_BYTES`].
    pub key: String,
}

/// Parameters of `kv.set`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetParams {
    /// The key, at most [`MAX_KEY_BYTES`].
    pub key: String,
    /// Any JSON value, at most [`MAX_VALUE_BYTES`] as JSON text.
    pub value: Value,
}

/// Parameters of `kv.incr`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncrParams {
    /// The key; a missing key counts as 0.
    pub key: String,
    /// How much to add (may be negative).
    #[serde(default = "one")]
    pub by: i64,
}

fn one() -> i64 {
    1
}

/// The order of `kv.list` results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListOrder {
    /// By key, ascending.
    #[default]
    Key,
    /// By numeric value, smallest first (non-numbers last).
    ValueAsc,
    /// By numeric value, largest first (non-numbers last).
    ValueDesc,
}

/// Parameters of `kv.list`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ListParams {
    /// Only keys starting with this.
    #[serde(default)]
    pub prefix: String,
    /// The order.
    #[serde(default)]
    pub order: ListOrder,
    /// At most this many items (default 100, at most 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Skip this many items first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
}

/// One item of a `kv.list` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KvItem {
    /// The key.
    pub key: String,
    /// The value.
    pub value: Value,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn roundtrip_to(line: &str) -> ToPlugin {
        let parsed: ToPlugin = serde_json::from_str(line).expect("parse");
        let again: ToPlugin =
            serde_json::from_str(&serde_json::to_string(&parsed).expect("encode"))
                .expect("reparse");
        assert_eq!(parsed, again);
        parsed
    }

    #[test]
    fn minimal_hello_from_an_old_plugin_parses_with_defaults() {
        let hello: FromPlugin =
            serde_json::from_str(r#"{"type":"hello","protocol_version":1}"#).expect("parse");
        let FromPlugin::Hello(h) = hello else {
            panic!("not a hello: {hello:?}")
        };
        assert_eq!(h.protocol_version, 1);
        assert!(h.commands.is_empty() && h.subscriptions.is_empty());
    }

    #[test]
    fn unknown_fields_are_ignored_both_ways() {
        let from: FromPlugin = serde_json::from_str(
            r##"{"type":"say","target":"#c","text":"hi","colour":"red","future":{"x":1}}"##,
        )
        .expect("parse");
        assert_eq!(
            from,
            FromPlugin::Say(Say {
                target: "#c".into(),
                text: "hi".into()
            })
        );
        let to = roundtrip_to(r#"{"type":"ping","id":7,"deadline_ms":5000}"#);
        assert_eq!(to, ToPlugin::Ping(Ping { id: PingId(7) }));
    }

    #[test]
    fn command_defaults_to_directed() {
        let spec: CommandSpec = serde_json::from_str(r#"{"name":"karma"}"#).expect("parse");
        assert!(spec.directed);
        assert!(spec.permission.is_none());
    }

    #[test]
    fn command_event_flattens_the_message() {
        let line = r##"{"type":"command","command":"karma","invoked_as":"score","args":"bob",
            "channel":"#c","nick":"alice","text":"!score bob","message":"score bob","directed":true}"##;
        let ToPlugin::Command(c) = roundtrip_to(line) else {
            panic!("not a command")
        };
        assert_eq!(c.command, "karma");
        assert_eq!(c.message.nick, "alice");
        assert_eq!(c.message.reply_target(), "#c");
    }

    #[test]
    fn private_message_replies_to_the_sender() {
        let m = Message {
            nick: "bob".into(),
            private: true,
            ..Message::default()
        };
        assert_eq!(m.reply_target(), "bob");
    }

    #[test]
    fn responses_carry_result_or_error() {
        let ok = roundtrip_to(r#"{"type":"response","id":3,"result":{"value":5}}"#);
        assert_eq!(
            ok,
            ToPlugin::Response(Response {
                id: RequestId(3),
                outcome: Outcome::Result(json!({"value":5}))
            })
        );
        let err = roundtrip_to(
            r#"{"type":"response","id":4,"error":{"code":"not_found","message":"no such key"}}"#,
        );
        let ToPlugin::Response(Response {
            outcome: Outcome::Error(e),
            ..
        }) = err
        else {
            panic!("not an error")
        };
        assert_eq!(e.code, ErrorCode::NotFound);
    }

    #[test]
    fn an_unknown_error_code_from_a_newer_host_still_parses() {
        let err: ErrorBody =
            serde_json::from_str(r#"{"code":"rate_limited","message":"slow down"}"#)
                .expect("parse");
        assert_eq!(err.code, ErrorCode::Other);
    }

    #[test]
    fn subscription_names_match_serde() {
        for s in Subscription::ALL {
            assert_eq!(
                serde_json::to_value(s).expect("encode"),
                json!(s.as_str()),
                "{s:?}"
            );
        }
    }

    #[test]
    fn an_unknown_subscription_from_a_newer_plugin_does_not_spoil_the_hello() {
        let hello: FromPlugin = serde_json::from_str(
            r#"{"type":"hello","protocol_version":1,"subscriptions":["message","reaction"]}"#,
        )
        .expect("parse");
        let FromPlugin::Hello(h) = hello else {
            panic!("not a hello")
        };
        assert_eq!(
            h.subscriptions,
            [Subscription::Message, Subscription::Unknown]
        );
    }

    #[test]
    fn unknown_type_is_an_error_not_a_panic() {
        assert!(serde_json::from_str::<FromPlugin>(r#"{"type":"teleport"}"#).is_err());
        assert!(serde_json::from_str::<FromPlugin>(r#"{"text":"no type"}"#).is_err());
    }

    #[test]
    fn incr_defaults_to_one() {
        let p: IncrParams = serde_json::from_str(r#"{"key":"k"}"#).expect("parse");
        assert_eq!(p.by, 1);
    }
}
