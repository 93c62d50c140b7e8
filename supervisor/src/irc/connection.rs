//! The one IRC connection: connect, register, join, keep alive, reconnect.
//!
//! One task owns the socket. Incoming lines become [`Inbound`] events; [`Outbound`] commands are
//! rendered through [`super::outbound`] into a send queue that is paced (a small burst, then a
//! steady rate) so the server never kills the bot for flooding. When the connection drops, the
//! task reports it and reconnects with the same [`Backoff`] type the plugin supervisor uses.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use hamper_protocol::CaseMapping;
use rustls::RootCertStore;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::codec::IrcLineCodec;
use super::message::{build, parse, split_source, IrcMessage};
use super::outbound::{render, Me, MAX_PIECES};
use super::pacing::Pacer;
use super::send_queue::{SendQueue, MAX_LANE};
use crate::chat::{Inbound, Origin, Outbound, Outgoing, Source};
use crate::config::{ChannelSpec, Config, ConfigError, Flood, Secret};
use crate::plugin::restart::Backoff;
use crate::queue::ByteSender;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const REGISTER_TIMEOUT: Duration = Duration::from_secs(60);
/// CTCP requests answered: three at once, then one every five seconds.
const CTCP_BUDGET: Flood = Flood::Bucket {
    burst: 3,
    per_second: 0.2,
};
/// How long after a kick the bot joins the channel again.
const REJOIN_DELAY: Duration = Duration::from_secs(5);
/// Outbound commands taken from the router in one go before the socket is read again.
const OUT_BATCH: usize = 256;
/// How long to wait for NickServ to confirm the password before joining anyway.
const NICKSERV_WAIT: Duration = Duration::from_secs(10);

/// What the connection needs from the config.
#[derive(Debug, Clone)]
pub struct IrcSettings {
    /// Host name.
    pub server: String,
    /// Port.
    pub port: u16,
    /// Use TLS.
    pub ssl: bool,
    /// Verify the certificate.
    pub ssl_verify: bool,
    /// The roots a verified certificate chain may end in (empty when nothing is verified).
    pub ssl_roots: Arc<RootCertStore>,
    /// Wanted nick.
    pub nickname: String,
    /// Server password.
    pub password: Option<Secret>,
    /// The configuration in effect, for what a reload may change: the channels to join, the
    /// owners whose INVITE the bot follows, and `rejoin_on_kick`.
    pub live: watch::Receiver<Arc<Config>>,
    /// Reconnect backoff.
    pub backoff: Backoff,
    /// Silence from the server after which the bot pings it.
    pub ping_interval: Duration,
    /// How long that ping may go unanswered before the link counts as dead.
    pub ping_timeout: Duration,
    /// Output pacing.
    pub flood: Flood,
}

impl IrcSettings {
    /// The settings from a config that passed [`Config::check_runnable`], with the TLS roots
    /// loaded when certificates are to be verified, and the configuration in effect as reloads
    /// change it.
    pub fn from_config(
        config: &Config,
        live: watch::Receiver<Arc<Config>>,
    ) -> Result<IrcSettings, ConfigError> {
        // A CA file is read whenever it is named, so a bad one is noticed before it matters.
        let ssl_roots = if (config.ssl && config.ssl_verify) || config.ssl_ca.is_some() {
            super::tls::trusted_roots(config.ssl_ca.as_deref()).map_err(|err| ConfigError {
                errors: vec![err.key_error()],
            })?
        } else {
            RootCertStore::empty()
        };
        Ok(IrcSettings {
            server: config.server.clone().unwrap_or_default(),
            port: config.port,
            ssl: config.ssl,
            ssl_verify: config.ssl_verify,
            ssl_roots: Arc::new(ssl_roots),
            nickname: config.nickname.clone(),
            password: config.password.clone(),
            live,
            backoff: Backoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(300),
            },
            ping_interval: config.ping_interval,
            ping_timeout: config.ping_timeout,
            flood: config.flood,
        })
    }

    /// The channels to join now.
    fn channels(&self) -> Vec<ChannelSpec> {
        self.live.borrow().channels.clone()
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

enum End {
    Shutdown,
    /// The connection ended; `stable` when the bot had registered and joined, so that the next
    /// attempt starts the backoff from the beginning.
    Lost {
        reason: String,
        stable: bool,
    },
}

/// Runs the connection until `shutdown`, reconnecting whenever it is lost.
pub async fn run(
    settings: IrcSettings,
    net_in: ByteSender<Inbound>,
    mut net_out: mpsc::Receiver<Outgoing>,
    shutdown: CancellationToken,
) {
    let mut failures = 0u32;
    loop {
        // The session watches `shutdown` itself, so that it can say QUIT before it ends.
        let end = session(&settings, &net_in, &mut net_out, &shutdown).await;
        let End::Lost { reason, stable } = end else {
            return;
        };
        let _ = net_in.try_send(Inbound::Disconnected {
            reason: reason.clone(),
        });
        failures = if stable { 1 } else { failures + 1 };
        let delay = reconnect_delay(&settings.backoff, failures, jitter());
        warn!(server = %settings.server, %reason, retry_in_s = delay.as_secs_f64(), "irc connection lost; reconnecting");
        let wait = tokio::time::sleep(delay);
        tokio::pin!(wait);
        let mut dropped = 0u64;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = &mut wait => break,
                out = net_out.recv() => match out {
                    Some(Outgoing { command: Outbound::Flush(done), .. }) => { let _ = done.send(()); }
                    Some(_) => dropped += 1,
                    None => return,
                },
            }
        }
        if dropped > 0 {
            warn!(dropped, "messages dropped while disconnected");
        }
    }
}

async fn connect(settings: &IrcSettings) -> std::io::Result<Box<dyn Io>> {
    let addr = (settings.server.as_str(), settings.port);
    let connect = async {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        if settings.ssl {
            let tls = super::tls::connect(
                tcp,
                &settings.server,
                settings.ssl_verify,
                &settings.ssl_roots,
            )
            .await?;
            Ok::<Box<dyn Io>, std::io::Error>(Box::new(tls))
        } else {
            Ok(Box::new(tcp) as Box<dyn Io>)
        }
    };
    // One deadline for TCP and TLS together: a server that accepts and then says nothing must
    // not keep the bot offline.
    tokio::time::timeout(CONNECT_TIMEOUT, connect)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))?
}

struct Session<'a> {
    settings: &'a IrcSettings,
    net_in: &'a ByteSender<Inbound>,
    /// The bot as the server relays it: its nick, and its user and host once seen.
    me: Me,
    /// How the server compares names (its `CASEMAPPING`).
    casemapping: CaseMapping,
    registered: bool,
    /// Registered, but plugins not yet told: the server's `005` lines right after `001` say
    /// how it compares names, so [`Inbound::Connected`] waits for the first line after them.
    announce: bool,
    /// Whether the server confirmed one of our JOINs this session.
    joined: bool,
    queue: SendQueue,
    pacer: Pacer,
    /// How many CTCP requests the bot still answers right now.
    ctcp_budget: Pacer,
    /// Channels to join again after a kick, and when.
    rejoins: Vec<(Instant, String)>,
    urgent: Vec<String>,
    nick_tries: u32,
    /// While identifying with NickServ: when to stop waiting and join anyway.
    nickserv_until: Option<Instant>,
    /// Incoming events dropped because the router was behind.
    dropped_in: u64,
    /// When the connection was made.
    started: Instant,
}

async fn session(
    settings: &IrcSettings,
    net_in: &ByteSender<Inbound>,
    net_out: &mut mpsc::Receiver<Outgoing>,
    shutdown: &CancellationToken,
) -> End {
    info!(server = %settings.server, port = settings.port, tls = settings.ssl, "connecting");
    let connected = tokio::select! {
        c = connect(settings) => c,
        _ = shutdown.cancelled() => return End::Shutdown,
    };
    let io = match connected {
        Ok(io) => io,
        Err(err) => {
            return End::Lost {
                reason: format!(
                    "cannot connect to {}:{}: {err}",
                    settings.server, settings.port
                ),
                stable: false,
            }
        }
    };
    let mut framed = Framed::new(io, IrcLineCodec::default());
    let mut s = Session {
        settings,
        net_in,
        me: Me::new(&settings.nickname),
        casemapping: CaseMapping::default(),
        registered: false,
        announce: false,
        joined: false,
        queue: SendQueue::default(),
        pacer: Pacer::new(settings.flood, Instant::now()),
        ctcp_budget: Pacer::new(CTCP_BUDGET, Instant::now()),
        rejoins: Vec::new(),
        urgent: Vec::new(),
        nick_tries: 0,
        nickserv_until: None,
        dropped_in: 0,
        started: Instant::now(),
    };
    let registration = [
        settings
            .password
            .as_ref()
            .map(|pass| build("PASS", &[pass.expose()])),
        Some(build("NICK", &[&s.me.nick])),
        Some(build("USER", &[&s.me.nick, "0", "*", "hamper IRC bot"])),
    ];
    for line in registration.into_iter().flatten() {
        match line {
            Ok(line) => s.urgent.push(line),
            Err(err) => {
                return End::Lost {
                    reason: format!("cannot register: {err}; check `nickname` and `password`"),
                    stable: false,
                }
            }
        }
    }
    let mut last_rx = Instant::now();
    let mut our_ping: Option<Instant> = None;

    loop {
        // Urgent lines (registration, PONG) skip the queue and the pacing; then as many queued
        // lines as the bucket allows go out at once, with one write for all of them.
        let mut wrote = false;
        for line in std::mem::take(&mut s.urgent) {
            wrote = true;
            if let Err(err) = framed.feed(line).await {
                return End::Lost {
                    reason: format!("write failed: {err}"),
                    stable: s.stable(),
                };
            }
        }
        if s.registered {
            while let Some(line) = s.pop_line() {
                wrote = true;
                if let Err(err) = framed.feed(line).await {
                    return End::Lost {
                        reason: format!("write failed: {err}"),
                        stable: s.stable(),
                    };
                }
            }
        }
        if wrote {
            if let Err(err) = framed.flush().await {
                return End::Lost {
                    reason: format!("write failed: {err}"),
                    stable: s.stable(),
                };
            }
        }
        // Lines left in the queue wait for the next token.
        let paced = s.registered && !s.queue.is_empty();
        let next_token = s.pacer.next_token();
        let keepalive = match our_ping {
            Some(sent) => sent + settings.ping_timeout,
            None => last_rx + settings.ping_interval,
        };
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => {
                let quit = async {
                    framed.send("QUIT :shutting down".to_string()).await?;
                    framed.flush().await
                };
                let _ = tokio::time::timeout(Duration::from_secs(2), quit).await;
                return End::Shutdown;
            }
            line = framed.next() => match line {
                None => return End::Lost { reason: "the server closed the connection".into(), stable: s.stable() },
                Some(Err(err)) => return End::Lost { reason: format!("read failed: {err}"), stable: s.stable() },
                Some(Ok(line)) => {
                    last_rx = Instant::now();
                    our_ping = None;
                    if let Some(msg) = parse(&line) {
                        if let Some(reason) = s.on_line(msg).await {
                            return End::Lost { reason, stable: s.stable() };
                        }
                    }
                }
            },
            out = net_out.recv() => match out {
                Some(out) => {
                    s.enqueue(&out.origin, out.command);
                    // Take what else is ready, so a burst of replies leaves in one write.
                    for _ in 1..OUT_BATCH {
                        match net_out.try_recv() {
                            Ok(out) => s.enqueue(&out.origin, out.command),
                            Err(_) => break,
                        }
                    }
                }
                None => return End::Shutdown,
            },
            _ = tokio::time::sleep_until(next_token), if paced => {}
            _ = sleep_until_opt(s.nickserv_until), if s.nickserv_until.is_some() => {
                warn!("NickServ did not confirm the password in time; joining anyway");
                s.join_channels();
            }
            _ = tokio::time::sleep_until(keepalive) => {
                let silent = last_rx.elapsed();
                match our_ping {
                    Some(_) => {
                        return End::Lost {
                            reason: format!("the server sent nothing for {:.0}s, not even an answer to our PING", silent.as_secs_f64()),
                            stable: s.stable(),
                        };
                    }
                    None => {
                        info!(silent_s = silent.as_secs_f64(), "no line from the server for a while; sending PING");
                        our_ping = Some(Instant::now());
                        s.urgent.push("PING :keepalive".into());
                    }
                }
            }
            _ = sleep_until_opt(s.rejoins.iter().map(|(at, _)| *at).min()), if !s.rejoins.is_empty() => {
                let now = Instant::now();
                let (due, later): (Vec<_>, Vec<_>) = s.rejoins.drain(..).partition(|(at, _)| *at <= now);
                s.rejoins = later;
                for (_, channel) in due {
                    let key = settings
                        .channels()
                        .iter()
                        .find(|c| s.casemapping.same(&c.name, &channel))
                        .and_then(|c| c.key.as_ref().map(|k| k.expose().to_string()));
                    s.enqueue(&Origin::Bot, Outbound::Join { channel, key });
                }
            }
            _ = tokio::time::sleep_until(s.started + REGISTER_TIMEOUT), if !s.registered => {
                return End::Lost { reason: format!("registration did not finish within {}s", REGISTER_TIMEOUT.as_secs()), stable: false };
            }
        }
    }
}

impl Session<'_> {
    /// Whether the session registered and joined, which counts as a success: a server that
    /// accepts the bot and then drops it before that should see the backoff grow, not reset.
    fn stable(&self) -> bool {
        self.registered && (self.joined || self.settings.live.borrow().channels.is_empty())
    }

    /// Takes the next line to send if the pacing allows it now, answering flush markers on
    /// the way.
    fn pop_line(&mut self) -> Option<String> {
        if self.queue.is_empty() || !self.pacer.take(Instant::now()) {
            return None;
        }
        self.queue.pop()
    }

    fn enqueue(&mut self, origin: &Origin, out: Outbound) {
        if let Outbound::Flush(done) = out {
            self.queue.flush_marker(done);
            return;
        }
        match render(&out, &self.me) {
            Ok(rendered) => {
                if rendered.cut > 0 {
                    warn!(
                        pieces = rendered.cut,
                        "a line too long for {MAX_PIECES} messages was cut"
                    );
                }
                for line in rendered.lines {
                    self.queue.push(origin, line);
                }
            }
            Err(err) => {
                warn!(plugin = origin.name(), error = %err, "refused to send a malformed line")
            }
        }
    }

    /// Hands an event to the router without waiting: the connection must keep reading the
    /// socket (and answering PING) whatever the rest of the bot is doing. A full queue drops the
    /// event and counts it.
    async fn emit(&mut self, event: Inbound) {
        if self.net_in.try_send(event).is_err() {
            self.dropped_in += 1;
            if self.dropped_in == 1 || self.dropped_in % 100 == 0 {
                warn!(
                    dropped = self.dropped_in,
                    "the bot is behind; dropping incoming events"
                );
            }
        }
    }

    /// Handles one server line; returns a reason when the connection must end.
    async fn on_line(&mut self, msg: IrcMessage) -> Option<String> {
        let source = msg.source.as_deref().map(source_of).unwrap_or_default();
        let verb = msg.verb.to_ascii_uppercase();
        if self.announce && !matches!(verb.as_str(), "002" | "003" | "004" | "005") {
            self.announce = false;
            self.emit(Inbound::Connected {
                nick: self.me.nick.clone(),
                server: self.settings.server.clone(),
                casemapping: self.casemapping,
            })
            .await;
        }
        match verb.as_str() {
            "PING" => {
                let token = msg.params.first().cloned().unwrap_or_default();
                if let Ok(line) = build("PONG", &[&token]) {
                    self.urgent.push(line);
                }
            }
            "001" => {
                self.registered = true;
                if let Some(nick) = msg.params.first() {
                    self.me = Me::new(nick);
                }
                info!(nick = %self.me.nick, "registered");
                self.announce = true;
                match &self.settings.password {
                    // As the original did: identify, and join once NickServ confirms, so that
                    // channels that need a registered nick let the bot in.
                    Some(pass) => {
                        let line = build(
                            "PRIVMSG",
                            &["NickServ", &format!("IDENTIFY {}", pass.expose())],
                        );
                        if let Ok(line) = line {
                            self.queue.push(&Origin::Bot, line);
                        }
                        self.nickserv_until = Some(Instant::now() + NICKSERV_WAIT);
                    }
                    None => self.join_channels(),
                }
            }
            "432" | "433" | "436" | "437" if !self.registered => {
                self.nick_tries += 1;
                if self.nick_tries > 8 {
                    return Some("no usable nick: every alternative was refused".into());
                }
                self.me = Me::new(&alternative_nick(&self.settings.nickname, self.nick_tries));
                warn!(nick = %self.me.nick, "nick refused; trying another");
                self.urgent.push(format!("NICK {}", self.me.nick));
            }
            "005" => {
                let casemapping = msg
                    .params
                    .iter()
                    .find_map(|token| token.strip_prefix("CASEMAPPING="));
                if let Some(name) = casemapping {
                    match CaseMapping::from_isupport(name) {
                        Some(mapping) => self.casemapping = mapping,
                        None => {
                            warn!(casemapping = %name, "the server compares names in a way hamper does not know; using rfc1459")
                        }
                    }
                }
            }
            // RPL_VISIBLEHOST: the host others see, once the server changes it (a cloak).
            "396" if msg.params.len() >= 2 => self.me.host = Some(msg.param(1).to_string()),
            "CHGHOST" if msg.params.len() >= 2 && self.is_me(&source.nick) => {
                self.me.user = Some(msg.param(0).to_string());
                self.me.host = Some(msg.param(1).to_string());
            }
            "ERROR" => return Some(format!("server error: {}", msg.param(0))),
            "NOTICE"
                if self.nickserv_until.is_some()
                    && source.nick.eq_ignore_ascii_case("NickServ") =>
            {
                let text = msg.param(1);
                if text.contains("Password accepted") || text.contains("You are now identified") {
                    info!("identified with NickServ");
                    self.join_channels();
                } else if text.contains("Password incorrect") || text.contains("Invalid password") {
                    tracing::error!("NickServ refused the password; check `password` in the config (joining anyway)");
                    self.join_channels();
                }
            }
            "PRIVMSG" if msg.params.len() >= 2 && !source.nick.is_empty() => {
                let target = msg.param(0).to_string();
                let text = msg.param(1);
                if let Some(ctcp) = text.strip_prefix('\u{1}') {
                    let ctcp = ctcp.strip_suffix('\u{1}').unwrap_or(ctcp);
                    let (kind, body) = ctcp.split_once(' ').unwrap_or((ctcp, ""));
                    match kind.to_ascii_uppercase().as_str() {
                        "ACTION" => {
                            self.emit(Inbound::Privmsg {
                                source,
                                target,
                                text: body.to_string(),
                                action: true,
                            })
                            .await
                        }
                        "VERSION" => self.ctcp_reply(
                            &source.nick,
                            &format!("VERSION hamper {}", env!("CARGO_PKG_VERSION")),
                        ),
                        "PING" => self.ctcp_reply(&source.nick, &format!("PING {body}")),
                        "TIME" => self.ctcp_reply(&source.nick, &format!("TIME {}", utc_now())),
                        "CLIENTINFO" => self.ctcp_reply(
                            &source.nick,
                            "CLIENTINFO ACTION CLIENTINFO PING SOURCE TIME VERSION",
                        ),
                        "SOURCE" => self.ctcp_reply(
                            &source.nick,
                            &format!("SOURCE {}", env!("CARGO_PKG_REPOSITORY")),
                        ),
                        _ => {}
                    }
                } else {
                    self.emit(Inbound::Privmsg {
                        source,
                        target,
                        text: text.to_string(),
                        action: false,
                    })
                    .await;
                }
            }
            "JOIN" if !msg.params.is_empty() => {
                if self.is_me(&source.nick) {
                    self.joined = true;
                    // Our own JOIN shows our prefix as others see it: the real budget for a line.
                    if source.user.is_some() && source.host.is_some() {
                        self.me.user = source.user.clone();
                        self.me.host = source.host.clone();
                    }
                }
                self.emit(Inbound::Join {
                    source,
                    channel: msg.param(0).to_string(),
                })
                .await
            }
            "PART" if !msg.params.is_empty() => {
                self.emit(Inbound::Part {
                    source,
                    channel: msg.param(0).to_string(),
                    reason: msg.params.get(1).cloned(),
                })
                .await
            }
            "QUIT" => {
                self.emit(Inbound::Quit {
                    source,
                    reason: msg.params.first().cloned(),
                })
                .await
            }
            "KICK" if msg.params.len() >= 2 => {
                if self.settings.live.borrow().rejoin_on_kick && self.is_me(msg.param(1)) {
                    let channel = msg.param(0).to_string();
                    warn!(%channel, by = %source.nick, "kicked; joining again in {}s", REJOIN_DELAY.as_secs());
                    self.rejoins.push((Instant::now() + REJOIN_DELAY, channel));
                }
                self.emit(Inbound::Kick {
                    source,
                    channel: msg.param(0).to_string(),
                    nick: msg.param(1).to_string(),
                    reason: msg.params.get(2).cloned(),
                })
                .await
            }
            "NICK" if !msg.params.is_empty() => {
                let new = msg.param(0).to_string();
                if self.is_me(&source.nick) {
                    self.me.nick = new.clone();
                }
                self.emit(Inbound::Nick { source, new }).await
            }
            "TOPIC" if msg.params.len() >= 2 => {
                self.emit(Inbound::Topic {
                    source,
                    channel: msg.param(0).to_string(),
                    topic: msg.param(1).to_string(),
                })
                .await
            }
            "INVITE" if msg.params.len() >= 2 => {
                let channel = msg.param(1);
                let owner = self
                    .settings
                    .live
                    .borrow()
                    .access
                    .owners
                    .iter()
                    .any(|o| o.matches(&source, self.casemapping));
                if owner && channel.starts_with(['#', '&', '+', '!']) {
                    info!(%channel, by = %source.nick, "invited by an owner; joining");
                    self.enqueue(
                        &Origin::Bot,
                        Outbound::Join {
                            channel: channel.to_string(),
                            key: None,
                        },
                    );
                } else {
                    info!(%channel, by = %source.nick, "invited; not an owner, so not joining");
                }
                self.emit(Inbound::Invite {
                    source,
                    channel: msg.param(1).to_string(),
                })
                .await
            }
            _ => {}
        }
        None
    }

    fn is_me(&self, nick: &str) -> bool {
        self.casemapping.same(nick, &self.me.nick)
    }

    fn join_channels(&mut self) {
        self.nickserv_until = None;
        for ch in self.settings.channels() {
            let key = ch.key.as_ref().map(|k| k.expose().to_string());
            self.enqueue(
                &Origin::Bot,
                Outbound::Join {
                    channel: ch.name.clone(),
                    key,
                },
            );
        }
    }

    /// Answers a CTCP request with a NOTICE to its sender (never to a channel), at most a few
    /// every few seconds, so that a CTCP flood cannot get the bot killed for flooding.
    fn ctcp_reply(&mut self, nick: &str, body: &str) {
        let body: String = body.chars().filter(|c| !c.is_control()).collect();
        // CTCP replies wait behind real output and are the first thing a full queue drops.
        if self.queue.waiting_from(&Origin::Bot) >= MAX_LANE / 2
            || !self.ctcp_budget.take(Instant::now())
        {
            return;
        }
        if let Ok(line) = build("NOTICE", &[nick, &format!("\u{1}{body}\u{1}")]) {
            self.queue.push(&Origin::Bot, line);
        }
    }
}

/// The `tries`-th nick to try when the configured one is refused: `nick_`, `nick__`, then the
/// first seven characters and two digits, which fits the common nine-character limit.
fn alternative_nick(nick: &str, tries: u32) -> String {
    if tries <= 2 {
        let base: String = nick.chars().take(28).collect();
        format!("{base}{}", "_".repeat(tries as usize))
    } else {
        let base: String = nick.chars().take(7).collect();
        format!("{base}{:02}", (tries * 37) % 100)
    }
}

/// The delay before reconnect attempt `failures` (1-based): the first three come after the
/// backoff's initial delay (so a short outage costs little more than itself), then it doubles up
/// to the cap. `jitter` (0 to 1) spreads it by ±20 %, so that bots dropped together by one
/// server restart do not all come back in the same instant.
fn reconnect_delay(backoff: &Backoff, failures: u32, jitter: f64) -> Duration {
    let base = backoff.delay(failures.saturating_sub(2).max(1));
    base.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0))
        .min(backoff.max)
}

/// A number from 0 to 1 that differs from one call (and one process) to the next.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (hasher.finish() % 10_001) as f64 / 10_000.0
}

/// The time now in UTC, as `Sun, 29 Nov 2026 14:04:11 +0000`, for CTCP TIME.
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format_utc(secs)
}

fn format_utc(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86_400;
    let (h, m, s) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    // Howard Hinnant's days-to-civil, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {h:02}:{m:02}:{s:02} +0000",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize]
    )
}

fn source_of(raw: &str) -> Source {
    let (nick, user, host) = split_source(raw);
    Source {
        nick: nick.to_string(),
        user: user.map(str::to_string),
        host: host.map(str::to_string),
        account: None,
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnects_come_quickly_at_first_then_back_off_to_the_cap() {
        let backoff = Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(300),
        };
        let secs = |n, j| reconnect_delay(&backoff, n, j).as_secs_f64();
        let middle: Vec<f64> = (1..=12).map(|n| secs(n, 0.5)).collect();
        assert_eq!(
            middle,
            [1.0, 1.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 300.0]
        );
        assert!((secs(1, 0.0) - 0.8).abs() < 1e-9);
        assert!((secs(1, 1.0) - 1.2).abs() < 1e-9);
        assert!(
            (secs(40, 1.0) - 300.0).abs() < 1e-9,
            "the cap holds with jitter"
        );
        let spread: std::collections::HashSet<u64> =
            (0..20).map(|_| (jitter() * 1e4) as u64).collect();
        assert!(spread.len() > 1, "jitter varies");
    }

    #[test]
    fn ctcp_time_is_rfc_2822_in_utc() {
        assert_eq!(format_utc(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(format_utc(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(format_utc(1_795_961_051), "Sun, 29 Nov 2026 14:04:11 +0000");
    }

    #[test]
    fn alternative_nicks_are_valid_distinct_and_fit_nine_characters_soon() {
        let nicks: Vec<String> = (1..=8).map(|t| alternative_nick("hamperbot", t)).collect();
        assert_eq!(nicks[0], "hamperbot_");
        assert_eq!(nicks[1], "hamperbot__");
        for n in &nicks {
            assert!(hamper_protocol::names::valid_nick(n), "{n}");
        }
        assert!(nicks[2..].iter().all(|n| n.len() <= 9), "{nicks:?}");
        let mut unique = nicks.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), nicks.len(), "{nicks:?}");
    }
}
