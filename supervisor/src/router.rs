//! The router: the one task between the network and the plugins.
//!
//! It turns network events into protocol events (with addressing), routes commands to the one
//! plugin that owns each, answers what only it knows (`plugins.list`, `bot.info`) for the
//! plugins' request lanes, and passes their actions through the outgoing choke point. It never
//! waits on a plugin: each event is encoded once and queued without waiting into the inboxes,
//! which are bounded in bytes. The supervisor's own commands (`!plugins` and the owner
//! commands, `!reload` among them) live in `router/admin.rs`.

mod admin;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use hamper_protocol::{
    BotInfo, CommandEvent, Connected, Disconnected, ErrorCode, FromPlugin, HostHello, Invite, Join,
    Kick, Message, NickChange, Outcome, Part, PluginHello, PluginInfo, PluginsList, Quit,
    Subscription, ToPlugin, Topic, PROTOCOL_VERSION,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::addressing::address;
use crate::chat::{Inbound, Origin, Outbound, Outgoing, Source};
use crate::commands::{CommandTable, Owner};
use crate::config::{Config, Grant};
use crate::outbound::{is_single_line, split_text, DEFAULT_MAX_LINES};
use crate::plugin::lane::error;
use crate::plugin::{encode, report, FromRunner, Plugins, RouterCall, State};
use crate::queue::ByteReceiver;
use crate::reload::Reload;
use hamper_protocol::names::has_channel_prefix;

/// Requests to the router from the rest of the bot.
#[derive(Debug)]
pub enum RouterCtl {
    /// Answer once every plugin has finished its first start (running or failed).
    WhenReady(oneshot::Sender<()>),
    /// Answer once every running plugin has handled everything sent to it so far and all the
    /// output that caused has gone to the frontend.
    Sync(oneshot::Sender<()>),
}

/// The router's fixed inputs.
pub struct RouterParts {
    /// The configuration, published to the frontend, which reads what a reload may change
    /// (channels, owners) from it.
    pub config: watch::Sender<Arc<Config>>,
    /// The plugins, one slot per configured plugin in config order at first.
    pub plugins: Plugins,
    /// Events from the network.
    pub net_in: ByteReceiver<Inbound>,
    /// Commands to the network.
    pub net_out: mpsc::Sender<Outgoing>,
    /// Messages from plugin runners.
    pub runners: mpsc::Receiver<FromRunner>,
    /// Control requests.
    pub ctl: mpsc::Receiver<RouterCtl>,
    /// How to read the configuration again, and the requests to (SIGHUP); `None` where a
    /// reload makes no sense (`hamper plugin`).
    pub reload: Option<Reload>,
}

struct PendingSync {
    token: u64,
    waiting: HashSet<usize>,
    reply: oneshot::Sender<()>,
}

/// Runs the router until `shutdown` or until the network side closes.
pub async fn run(parts: RouterParts, shutdown: CancellationToken) {
    let RouterParts {
        config: published,
        plugins,
        mut net_in,
        net_out,
        mut runners,
        mut ctl,
        reload,
    } = parts;
    let config = published.borrow().clone();
    let mut commands = CommandTable::default();
    for spec in admin::commands() {
        commands.add_builtin(spec);
    }
    let (load_config, mut reload_requests) = match reload {
        Some(r) => (Some(r.load), Some(r.requests)),
        None => (None, None),
    };
    let mut router = Router {
        config: config.clone(),
        published,
        load_config,
        plugins,
        net_out,
        commands,
        bot: BotInfo {
            nick: config.nickname.clone(),
            channels: Vec::new(),
            command_prefix: config.command_prefix.clone(),
            connected: false,
            casemapping: Default::default(),
        },
        ready_waiters: Vec::new(),
        syncs: Vec::new(),
        next_token: 1,
        deferred: Vec::new(),
    };
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            // Network events before plugin output, so that a plugin writing without pause
            // cannot starve the connection; and before control, so that a frontend that sends
            // an event and then asks for a sync has the event routed first.
            event = net_in.recv() => match event {
                Some(event) => router.on_inbound(event).await,
                None => break,
            },
            Some(msg) = runners.recv() => router.on_runner(msg).await,
            Some(c) = ctl.recv() => router.on_ctl(c),
            Some(()) = recv_opt(&mut reload_requests) => {
                info!("SIGHUP received; reloading the config");
                router.reload(None).await;
            }
        }
    }
    for s in router.syncs.drain(..) {
        let _ = s.reply.send(());
    }
}

/// The next request from an optional channel; never, when there is none.
async fn recv_opt<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

struct Router {
    /// The configuration in effect (after reloads, with restart-only keys as at start).
    config: Arc<Config>,
    /// Where the configuration in effect is published.
    published: watch::Sender<Arc<Config>>,
    /// Reads the configuration again, for `!reload` and SIGHUP.
    load_config: Option<crate::reload::LoadConfig>,
    plugins: Plugins,
    net_out: mpsc::Sender<Outgoing>,
    commands: CommandTable,
    bot: BotInfo,
    ready_waiters: Vec<oneshot::Sender<()>>,
    syncs: Vec<PendingSync>,
    next_token: u64,
    /// Hellos waiting for the plugins before them in the config (see `register_in_order`).
    deferred: Vec<(usize, PluginHello, oneshot::Sender<HostHello>)>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Router {
    fn is_me(&self, nick: &str) -> bool {
        self.bot.casemapping.same(nick, &self.bot.nick)
    }

    async fn send_out(&self, origin: &Origin, command: Outbound) {
        let origin = origin.clone();
        let _ = self.net_out.send(Outgoing { origin, command }).await;
    }

    fn check_ready(&mut self) {
        if self.plugins.started_before(self.plugins.len()) {
            for w in self.ready_waiters.drain(..) {
                let _ = w.send(());
            }
        }
    }

    fn on_ctl(&mut self, ctl: RouterCtl) {
        match ctl {
            RouterCtl::WhenReady(reply) => {
                self.ready_waiters.push(reply);
                self.check_ready();
            }
            RouterCtl::Sync(reply) => {
                let token = self.next_token;
                self.next_token += 1;
                // A plugin still starting counts: events may already wait in its inbox, and its
                // runner answers the sync once it runs (or reports it down).
                let waiting: HashSet<usize> = self
                    .plugins
                    .live()
                    .filter(|(_, slot)| {
                        matches!(slot.handle.state(), State::Running | State::Starting)
                    })
                    .map(|(i, slot)| {
                        slot.handle.sync(token);
                        i
                    })
                    .collect();
                self.syncs.push(PendingSync {
                    token,
                    waiting,
                    reply,
                });
                self.finish_syncs();
            }
        }
    }

    fn finish_syncs(&mut self) {
        let (done, pending): (Vec<_>, Vec<_>) =
            self.syncs.drain(..).partition(|s| s.waiting.is_empty());
        self.syncs = pending;
        for s in done {
            // The frontend answers once everything queued before this marker is out.
            let _ = self.net_out.try_send(Outgoing {
                origin: Origin::Bot,
                command: Outbound::Flush(s.reply),
            });
        }
    }

    async fn on_runner(&mut self, msg: FromRunner) {
        match msg {
            FromRunner::Hello {
                plugin,
                hello,
                reply,
            } => {
                self.deferred.push((plugin, hello, reply));
                self.register_in_order();
            }
            FromRunner::Down { plugin } => {
                if let Some(slot) = self.plugins.get_mut(plugin) {
                    slot.started = true;
                }
                self.register_in_order();
                for s in &mut self.syncs {
                    s.waiting.remove(&plugin);
                }
                self.finish_syncs();
            }
            FromRunner::Synced { plugin, token } => {
                for s in &mut self.syncs {
                    if s.token == token {
                        s.waiting.remove(&plugin);
                    }
                }
                self.finish_syncs();
            }
            FromRunner::Output { plugin, msg } => self.on_output(plugin, msg).await,
            FromRunner::Call { call, reply, .. } => {
                let _ = reply.send(self.answer(call));
            }
            FromRunner::Tell { messages, text } => {
                for message in messages {
                    self.reply_lines(&message, &text, None).await;
                }
            }
        }
    }

    /// Answers waiting hellos. At start-up a plugin's hello waits until every plugin before it
    /// in the config has registered (or stopped), so that when two claim the same command the
    /// one listed first wins, however fast each starts; so do the plugins a reload adds, among
    /// themselves. Later (restarts) nothing waits. A removed plugin's hello is not answered,
    /// which stops it.
    fn register_in_order(&mut self) {
        self.deferred.sort_by_key(|(i, _, _)| *i);
        self.deferred
            .retain(|(i, _, _)| self.plugins.get(*i).is_some_and(|s| !s.removed));
        while let Some(pos) = self
            .deferred
            .iter()
            .position(|(i, _, _)| self.plugins.started_before(*i))
        {
            let (plugin, hello, reply) = self.deferred.remove(pos);
            let host = self.register(plugin, &hello);
            let _ = reply.send(host);
            if let Some(slot) = self.plugins.get_mut(plugin) {
                slot.started = true;
            }
        }
        self.check_ready();
    }

    fn register(&mut self, plugin: usize, hello: &PluginHello) -> HostHello {
        let name = self
            .plugins
            .get(plugin)
            .map(|s| s.handle.name.clone())
            .unwrap_or_default();
        let names: Vec<String> = self
            .plugins
            .all()
            .map(|(_, s)| s.handle.name.clone())
            .collect();
        let registration = self.commands.register(plugin, &name, hello, |o| match o {
            Owner::Builtin => "hamper".into(),
            Owner::Plugin(i) => names.get(i).cloned().unwrap_or_default(),
        });
        let mut subs = hello.subscriptions.clone();
        subs.sort();
        subs.dedup();
        let mut rejected = registration.rejected;
        if subs.contains(&Subscription::Unknown) {
            subs.retain(|s| *s != Subscription::Unknown);
            rejected.push(hamper_protocol::Rejection {
                kind: "subscription".into(),
                name: "unknown".into(),
                reason: format!(
                    "this host (protocol {PROTOCOL_VERSION}) does not know one or more of the subscriptions; it knows {}",
                    Subscription::ALL.map(Subscription::as_str).join(", ")
                ),
            });
        }
        if let Some(slot) = self.plugins.get_mut(plugin) {
            slot.subscriptions = subs.clone();
        }
        info!(plugin = %name, commands = ?registration.accepted, subscriptions = ?subs, "plugin registered");
        HostHello {
            protocol_version: PROTOCOL_VERSION,
            name: name.clone(),
            commands: registration.accepted,
            subscriptions: subs,
            rejected,
            config: self.config.section(&name),
            bot: self.bot.clone(),
        }
    }

    /// Encodes `msg` once, and only if some plugin subscribed to it.
    fn broadcast(&self, sub: Subscription, msg: ToPlugin) {
        let mut line = None;
        for (_, slot) in self.plugins.live() {
            if !slot.subscriptions.contains(&sub) {
                continue;
            }
            if line.is_none() {
                line = encode(&msg);
            }
            if let Some(line) = &line {
                slot.handle.deliver(line);
            }
        }
    }

    async fn on_inbound(&mut self, event: Inbound) {
        match event {
            Inbound::Privmsg {
                source,
                target,
                text,
                action,
                time,
            } => {
                let time = time.unwrap_or_else(now_ms);
                self.on_privmsg(source, target, text, action, time).await
            }
            Inbound::Join { source, channel } => {
                let is_bot = self.is_me(&source.nick);
                if is_bot
                    && !self
                        .bot
                        .channels
                        .iter()
                        .any(|c| self.bot.casemapping.same(c, &channel))
                {
                    self.bot.channels.push(channel.clone());
                }
                self.broadcast(
                    Subscription::Join,
                    ToPlugin::Join(Join {
                        channel,
                        nick: source.nick,
                        user: source.user,
                        host: source.host,
                        is_bot,
                    }),
                );
            }
            Inbound::Part {
                source,
                channel,
                reason,
            } => {
                let is_bot = self.is_me(&source.nick);
                if is_bot {
                    let mapping = self.bot.casemapping;
                    self.bot.channels.retain(|c| !mapping.same(c, &channel));
                }
                self.broadcast(
                    Subscription::Part,
                    ToPlugin::Part(Part {
                        channel,
                        nick: source.nick,
                        reason,
                        is_bot,
                    }),
                );
            }
            Inbound::Quit { source, reason } => self.broadcast(
                Subscription::Quit,
                ToPlugin::Quit(Quit {
                    nick: source.nick,
                    reason,
                }),
            ),
            Inbound::Kick {
                source,
                channel,
                nick,
                reason,
            } => {
                let is_bot = self.is_me(&nick);
                if is_bot {
                    let mapping = self.bot.casemapping;
                    self.bot.channels.retain(|c| !mapping.same(c, &channel));
                }
                self.broadcast(
                    Subscription::Kick,
                    ToPlugin::Kick(Kick {
                        channel,
                        nick,
                        by: source.nick,
                        reason,
                        is_bot,
                    }),
                );
            }
            Inbound::Nick { source, new } => {
                let is_bot = self.is_me(&source.nick);
                if is_bot {
                    self.bot.nick = new.clone();
                }
                self.broadcast(
                    Subscription::Nick,
                    ToPlugin::Nick(NickChange {
                        old: source.nick,
                        new,
                        is_bot,
                    }),
                );
            }
            Inbound::Topic {
                source,
                channel,
                topic,
            } => self.broadcast(
                Subscription::Topic,
                ToPlugin::Topic(Topic {
                    channel,
                    nick: source.nick,
                    topic,
                }),
            ),
            Inbound::Invite { source, channel } => self.broadcast(
                Subscription::Invite,
                ToPlugin::Invite(Invite {
                    channel,
                    nick: source.nick,
                }),
            ),
            Inbound::Connected {
                nick,
                server,
                casemapping,
            } => {
                self.bot.nick = nick.clone();
                self.bot.connected = true;
                self.bot.casemapping = casemapping;
                self.bot.channels.clear();
                self.broadcast(
                    Subscription::Connected,
                    ToPlugin::Connected(Connected {
                        nick,
                        server,
                        casemapping,
                    }),
                );
            }
            Inbound::Disconnected { reason } => {
                self.bot.connected = false;
                self.bot.channels.clear();
                self.broadcast(
                    Subscription::Disconnected,
                    ToPlugin::Disconnected(Disconnected { reason }),
                );
            }
        }
    }

    async fn on_privmsg(
        &mut self,
        source: Source,
        target: String,
        text: String,
        action: bool,
        time: u64,
    ) {
        if self.is_me(&source.nick) {
            return;
        }
        let private = !has_channel_prefix(&target);
        let addressed = address(
            &text,
            &self.bot.nick,
            self.bot.casemapping,
            &self.config.command_prefix,
            private,
        );
        let message = Message {
            channel: (!private).then(|| target.clone()),
            nick: source.nick.clone(),
            user: source.user.clone(),
            host: source.host.clone(),
            account: source.account.clone(),
            text: text.clone(),
            message: addressed.message,
            directed: addressed.directed,
            target: addressed.target,
            private,
            action,
            time,
        };
        let sub = if action {
            Subscription::Action
        } else {
            Subscription::Message
        };
        self.broadcast(sub, ToPlugin::Message(message.clone()));
        if action {
            return;
        }
        let Some(found) = self.commands.lookup(&message.message) else {
            return;
        };
        if found.spec.directed && !message.directed {
            return;
        }
        if message.target.is_some() && !message.directed {
            return;
        }
        if let Some(permission) = &found.spec.permission {
            let channel = message.channel.as_deref();
            if !self
                .config
                .access
                .allows(&source, channel, permission, self.bot.casemapping)
            {
                info!(nick = %source.nick, command = %found.spec.name, %permission, "command refused: the sender does not hold the permission");
                self.reply_lines(&message, "You don't have permission to do that.", None)
                    .await;
                return;
            }
        }
        let event = CommandEvent {
            command: found.spec.name.clone(),
            invoked_as: found.invoked_as.clone(),
            args: found.args.to_string(),
            message: message.clone(),
        };
        match found.owner {
            Owner::Builtin => self.builtin(&event).await,
            Owner::Plugin(i) => {
                let Some(slot) = self.plugins.get(i) else {
                    return;
                };
                let plugin = &slot.handle;
                let unavailable = report::unavailable(
                    &plugin.name,
                    &plugin.status(),
                    &self.config.command_prefix,
                    tokio::time::Instant::now(),
                );
                match unavailable {
                    None => {
                        let delivered = encode(&ToPlugin::Command(event))
                            .is_some_and(|line| plugin.deliver_command(line, message.clone()));
                        if !delivered {
                            let text = format!(
                                "Sorry, the {} plugin is too busy to answer; try again in a moment.",
                                plugin.name
                            );
                            self.reply_lines(&message, &text, None).await;
                        }
                    }
                    Some(text) => self.reply_lines(&message, &text, None).await,
                }
            }
        }
    }

    async fn reply_lines(&self, to: &Message, text: &str, max: Option<usize>) {
        let target = to.reply_target().to_string();
        self.emit(
            &Origin::Bot,
            |t| Outbound::Privmsg {
                target: target.clone(),
                text: t,
            },
            text,
            max.unwrap_or(DEFAULT_MAX_LINES),
        )
        .await;
    }

    /// The choke point for text: split into lines, capped, each its own message.
    async fn emit(
        &self,
        origin: &Origin,
        make: impl Fn(String) -> Outbound,
        text: &str,
        max_lines: usize,
    ) {
        let lines = split_text(text, max_lines);
        if lines.dropped > 0 {
            warn!(
                plugin = origin.name(),
                dropped = lines.dropped,
                max_lines,
                "text had too many lines; the rest was not sent"
            );
        }
        for line in lines.lines {
            self.send_out(origin, make(line)).await;
        }
    }

    async fn on_output(&mut self, plugin: usize, msg: FromPlugin) {
        let Some(slot) = self.plugins.get(plugin) else {
            return;
        };
        let name = slot.handle.name.clone();
        let origin = slot.origin.clone();
        let spec = slot.spec.clone();
        let granted = |g: Grant| spec.has(g);
        match msg {
            FromPlugin::Reply(r) => {
                let target = r.channel.clone().unwrap_or_else(|| r.nick.clone());
                self.say_to(&origin, &target, &r.text, "reply", |target, text| {
                    Outbound::Privmsg { target, text }
                })
                .await;
            }
            FromPlugin::Say(s) => {
                self.say_to(&origin, &s.target, &s.text, "say", |target, text| {
                    Outbound::Privmsg { target, text }
                })
                .await
            }
            FromPlugin::Me(s) => {
                self.say_to(&origin, &s.target, &s.text, "me", |target, text| {
                    Outbound::Action { target, text }
                })
                .await
            }
            FromPlugin::Notice(s) => {
                self.say_to(&origin, &s.target, &s.text, "notice", |target, text| {
                    Outbound::Notice { target, text }
                })
                .await
            }
            FromPlugin::Join(j) => {
                if !granted(Grant::Join) {
                    warn!(plugin = %name, channel = %j.channel, "join refused: the plugin has no `join` grant; add grants: [join] to its entry in plugins");
                    return;
                }
                let key_ok = j.key.as_deref().is_none_or(valid_word);
                if !has_channel_prefix(&j.channel) || !valid_word(&j.channel) || !key_ok {
                    warn!(plugin = %name, channel = %j.channel, "join refused: not a valid channel name or key");
                    return;
                }
                self.send_out(
                    &origin,
                    Outbound::Join {
                        channel: j.channel,
                        key: j.key,
                    },
                )
                .await;
            }
            FromPlugin::Part(p) => {
                if !granted(Grant::Part) {
                    warn!(plugin = %name, channel = %p.channel, "part refused: the plugin has no `part` grant; add grants: [part] to its entry in plugins");
                    return;
                }
                if !has_channel_prefix(&p.channel) || !valid_word(&p.channel) {
                    warn!(plugin = %name, channel = %p.channel, "part refused: not a valid channel name");
                    return;
                }
                let reason = p.reason.map(|r| {
                    split_text(&r, 1)
                        .lines
                        .into_iter()
                        .next()
                        .unwrap_or_default()
                });
                self.send_out(
                    &origin,
                    Outbound::Part {
                        channel: p.channel,
                        reason,
                    },
                )
                .await;
            }
            FromPlugin::Raw(r) => {
                if !granted(Grant::Raw) {
                    warn!(plugin = %name, "raw line refused: the plugin has no `raw` grant; add grants: [raw] to its entry in plugins");
                    return;
                }
                if !is_single_line(&r.line) || r.line.trim().is_empty() || r.line.len() > 510 {
                    warn!(plugin = %name, "raw line refused: empty, over 510 bytes, or holding CR, LF or NUL");
                    return;
                }
                self.send_out(&origin, Outbound::Raw(r.line)).await;
            }
            // Requests go to the plugin's lane, hellos and pongs to its runner.
            FromPlugin::Request(_) | FromPlugin::Hello(_) | FromPlugin::Pong(_) => {}
        }
    }

    async fn say_to(
        &self,
        origin: &Origin,
        target: &str,
        text: &str,
        what: &str,
        make: impl Fn(String, String) -> Outbound,
    ) {
        if !valid_word(target) {
            warn!(plugin = origin.name(), target = %target.escape_debug(), action = what, "refused: the target is not a nick or channel");
            return;
        }
        let target = target.to_string();
        self.emit(
            origin,
            |line| make(target.clone(), line),
            text,
            DEFAULT_MAX_LINES,
        )
        .await;
    }

    /// What only the router knows, for a plugin's request lane.
    fn answer(&self, call: RouterCall) -> Outcome {
        let value = match call {
            RouterCall::PluginsList => serde_json::to_value(self.plugins_list()),
            RouterCall::BotInfo => serde_json::to_value(&self.bot),
        };
        match value {
            Ok(v) => Outcome::Result(v),
            Err(e) => error(ErrorCode::Internal, &e.to_string()),
        }
    }

    fn plugins_list(&self) -> PluginsList {
        let mut plugins = vec![PluginInfo {
            name: "hamper".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "The bot itself.".into(),
            help: String::new(),
            state: "running".into(),
            commands: self.commands.commands_of(Owner::Builtin),
        }];
        for (i, slot) in self.plugins.live() {
            let p = &slot.handle;
            let status = p.status();
            let hello = status.hello.clone().unwrap_or_default();
            plugins.push(PluginInfo {
                name: p.name.clone(),
                version: hello.version,
                description: hello.description,
                help: hello.help,
                state: status.state.as_str().into(),
                commands: self.commands.commands_of(Owner::Plugin(i)),
            });
        }
        PluginsList {
            command_prefix: self.config.command_prefix.clone(),
            plugins,
        }
    }
}

/// A nick, channel or key: one word, no control characters, not absurdly long.
fn valid_word(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ',')
        && !s.starts_with(':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_that_could_inject_are_refused() {
        for ok in ["#c", "bob", "&local", "[m]x"] {
            assert!(valid_word(ok), "{ok}");
        }
        for bad in ["", "#a b", "#c\r\nQUIT", "a,b", ":x", "x\u{0}", "#c\u{7}"] {
            assert!(!valid_word(bad), "{bad:?}");
        }
    }
}
