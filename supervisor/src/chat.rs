//! The seam between the bot and its chat network.
//!
//! The router speaks only these types. The IRC connection ([`crate::irc`]) and the terminal
//! ([`crate::console`]) each turn their world into [`Inbound`] events and carry out
//! [`Outbound`] commands, so the whole bot runs the same way against either.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use hamper_protocol::CaseMapping;
use tokio::sync::oneshot;

/// Who sent something.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Source {
    /// The nick.
    pub nick: String,
    /// The user (ident), when known.
    pub user: Option<String>,
    /// The host, when known.
    pub host: Option<String>,
    /// The services account, when known.
    pub account: Option<String>,
}

impl Source {
    /// A source known only by nick.
    pub fn nick(nick: impl Into<String>) -> Self {
        Source {
            nick: nick.into(),
            ..Source::default()
        }
    }

    /// `nick!user@host`, with `*` for unknown parts, for hostmask matching.
    pub fn mask(&self) -> String {
        format!(
            "{}!{}@{}",
            self.nick,
            self.user.as_deref().unwrap_or("*"),
            self.host.as_deref().unwrap_or("*")
        )
    }
}

/// Something that happened on the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A PRIVMSG or CTCP ACTION to a channel or to the bot.
    Privmsg {
        /// The sender.
        source: Source,
        /// The channel, or the bot's nick for a private message.
        target: String,
        /// The text (for an action, the action text).
        text: String,
        /// Whether it was a CTCP ACTION.
        action: bool,
        /// When the server says it was sent (IRCv3 `server-time`), in milliseconds since the
        /// Unix epoch; `None` when it did not say.
        time: Option<u64>,
    },
    /// A JOIN.
    Join {
        /// Who joined.
        source: Source,
        /// The channel.
        channel: String,
    },
    /// A PART.
    Part {
        /// Who left.
        source: Source,
        /// The channel.
        channel: String,
        /// The message.
        reason: Option<String>,
    },
    /// A QUIT.
    Quit {
        /// Who quit.
        source: Source,
        /// The message.
        reason: Option<String>,
    },
    /// A KICK.
    Kick {
        /// Who kicked.
        source: Source,
        /// The channel.
        channel: String,
        /// Who was kicked.
        nick: String,
        /// The message.
        reason: Option<String>,
    },
    /// A NICK change.
    Nick {
        /// The old identity.
        source: Source,
        /// The new nick.
        new: String,
    },
    /// A TOPIC change.
    Topic {
        /// Who changed it.
        source: Source,
        /// The channel.
        channel: String,
        /// The new topic.
        topic: String,
    },
    /// An INVITE for the bot.
    Invite {
        /// Who invited.
        source: Source,
        /// The channel.
        channel: String,
    },
    /// Registration finished with this nick.
    Connected {
        /// The nick the bot got.
        nick: String,
        /// The server, for plugins.
        server: String,
        /// How the server compares nicks and channel names.
        casemapping: CaseMapping,
    },
    /// The connection went away; the frontend reconnects by itself.
    Disconnected {
        /// Why.
        reason: String,
    },
}

impl Source {
    fn weight(&self) -> usize {
        self.nick.len()
            + self.user.as_ref().map_or(0, String::len)
            + self.host.as_ref().map_or(0, String::len)
            + self.account.as_ref().map_or(0, String::len)
    }
}

impl crate::queue::Weigh for Inbound {
    /// The text it carries plus a little for the rest, for the byte-bounded queue to the router.
    fn weight(&self) -> usize {
        const OVERHEAD: usize = 64;
        let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        OVERHEAD
            + match self {
                Inbound::Privmsg {
                    source,
                    target,
                    text,
                    ..
                } => source.weight() + target.len() + text.len(),
                Inbound::Join { source, channel } | Inbound::Invite { source, channel } => {
                    source.weight() + channel.len()
                }
                Inbound::Part {
                    source,
                    channel,
                    reason,
                } => source.weight() + channel.len() + opt(reason),
                Inbound::Quit { source, reason } => source.weight() + opt(reason),
                Inbound::Kick {
                    source,
                    channel,
                    nick,
                    reason,
                } => source.weight() + channel.len() + nick.len() + opt(reason),
                Inbound::Nick { source, new } => source.weight() + new.len(),
                Inbound::Topic {
                    source,
                    channel,
                    topic,
                } => source.weight() + channel.len() + topic.len(),
                Inbound::Connected { nick, server, .. } => nick.len() + server.len(),
                Inbound::Disconnected { reason } => reason.len(),
            }
    }
}

/// Who asked for something to be sent: the supervisor itself or one plugin. The IRC connection
/// keeps a share of its send queue for each, takes lines from them in turn, and counts what it
/// drops against the one that sent too much.
#[derive(Debug, Clone)]
pub enum Origin {
    /// The supervisor's own replies (`!plugins`, apologies, joins of configured channels).
    Bot,
    /// A plugin.
    Plugin {
        /// Its configured name.
        name: Arc<str>,
        /// Its lines dropped because its share of the send queue was full.
        unsent: Arc<AtomicU64>,
    },
}

impl Origin {
    /// The name to log: the plugin's, or `hamper`.
    pub fn name(&self) -> &str {
        match self {
            Origin::Bot => "hamper",
            Origin::Plugin { name, .. } => name,
        }
    }

    /// Whether two origins are the same sender.
    pub fn same(&self, other: &Origin) -> bool {
        match (self, other) {
            (Origin::Bot, Origin::Bot) => true,
            (Origin::Plugin { unsent: a, .. }, Origin::Plugin { unsent: b, .. }) => {
                Arc::ptr_eq(a, b)
            }
            _ => false,
        }
    }
}

/// One [`Outbound`] command and who asked for it.
#[derive(Debug)]
pub struct Outgoing {
    /// Who asked.
    pub origin: Origin,
    /// What to do.
    pub command: Outbound,
}

/// Something the bot wants done on the network. Text here is already one line: the router's
/// choke point ([`crate::outbound`]) split it and removed CR, LF and NUL.
#[derive(Debug)]
pub enum Outbound {
    /// PRIVMSG.
    Privmsg {
        /// A channel or nick.
        target: String,
        /// One line.
        text: String,
    },
    /// CTCP ACTION.
    Action {
        /// A channel or nick.
        target: String,
        /// One line.
        text: String,
    },
    /// NOTICE.
    Notice {
        /// A channel or nick.
        target: String,
        /// One line.
        text: String,
    },
    /// JOIN.
    Join {
        /// The channel.
        channel: String,
        /// Its key.
        key: Option<String>,
    },
    /// PART.
    Part {
        /// The channel.
        channel: String,
        /// The message.
        reason: Option<String>,
    },
    /// A raw line from a plugin granted `raw`; already checked to hold no CR, LF or NUL.
    Raw(String),
    /// Answered once everything sent before it has been handled (used by the console to know
    /// when all output is out).
    Flush(oneshot::Sender<()>),
}
