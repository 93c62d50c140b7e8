//! The one IRC connection: connect, register, join, keep alive, reconnect.
//!
//! One task owns the socket. Incoming lines are handled by [`super::inbound`] (they become
//! [`Inbound`] events); [`Outbound`] commands are rendered through [`super::outbound`] into a
//! send queue that is paced (a small burst, then a steady rate) so the server never kills the
//! bot for flooding. Registration opens with capability negotiation ([`super::negotiation`]),
//! which may log in with SASL before the server lets the bot in. When the connection drops, the
//! task reports it and reconnects with the same [`Backoff`] type the plugin supervisor uses; a
//! SASL login that is required and fails ends the bot instead, since trying again cannot help.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use hamper_protocol::CaseMapping;
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::codec::IrcLineCodec;
use super::message::{parse, render as render_command, Command};
use super::negotiation::{Negotiation, SaslError};
use super::outbound::{render, Me, MAX_PIECES};
use super::pacing::Pacer;
use super::regain::Regain;
use super::send_queue::SendQueue;
use crate::chat::{Inbound, Origin, Outbound, Outgoing};
use crate::config::{ChannelSpec, Config, ConfigError, Flood, Sasl, Secret};
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
pub(super) const REJOIN_DELAY: Duration = Duration::from_secs(5);
/// Outbound commands taken from the router in one go before the socket is read again.
const OUT_BATCH: usize = 256;
/// How long to wait for NickServ to confirm the password before joining anyway.
pub(super) const NICKSERV_WAIT: Duration = Duration::from_secs(10);

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
    /// The client certificate presented in the handshake (`ssl_cert`, `ssl_key`).
    pub ssl_identity: Option<Arc<CertifiedKey>>,
    /// Wanted nick.
    pub nickname: String,
    /// Server password.
    pub password: Option<Secret>,
    /// The SASL login, if one is configured.
    pub sasl: Option<Sasl>,
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
        let ssl_identity = match (&config.ssl_cert, &config.ssl_key) {
            (Some(cert), Some(key)) => Some(super::tls::read_client_identity(cert, key).map_err(
                |err| ConfigError {
                    errors: vec![err.key_error()],
                },
            )?),
            _ => None,
        };
        Ok(IrcSettings {
            server: config.server.clone().unwrap_or_default(),
            port: config.port,
            ssl: config.ssl,
            ssl_verify: config.ssl_verify,
            ssl_roots: Arc::new(ssl_roots),
            ssl_identity,
            nickname: config.nickname.clone(),
            password: config.password.clone(),
            sasl: config.sasl.clone(),
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
    pub(super) fn channels(&self) -> Vec<ChannelSpec> {
        self.live.borrow().channels.clone()
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Why the connection gave up for good.
#[derive(Debug, thiserror::Error)]
pub enum IrcError {
    /// The SASL login failed and `sasl_required` holds.
    #[error("cannot log in to {server}: {source}")]
    Sasl {
        /// The server.
        server: String,
        /// What failed.
        #[source]
        source: SaslError,
    },
}

enum End {
    Shutdown,
    /// The connection ended; `stable` when the bot had registered and joined, so that the next
    /// attempt starts the backoff from the beginning.
    Lost {
        reason: String,
        stable: bool,
    },
    /// The bot must stop: reconnecting would fail the same way.
    Fatal(IrcError),
}

/// Why handling a line ends the connection.
pub(super) enum Halt {
    /// The connection is over; the bot reconnects.
    Lost(String),
    /// The bot must stop.
    Fatal(IrcError),
}

/// Runs the connection until `shutdown`, reconnecting whenever it is lost. Returns an error
/// when the bot cannot go on at all (a required SASL login failed).
pub async fn run(
    settings: IrcSettings,
    net_in: ByteSender<Inbound>,
    mut net_out: mpsc::Receiver<Outgoing>,
    shutdown: CancellationToken,
) -> Result<(), IrcError> {
    let mut failures = 0u32;
    loop {
        // The session watches `shutdown` itself, so that it can say QUIT before it ends.
        let (reason, stable) = match session(&settings, &net_in, &mut net_out, &shutdown).await {
            End::Shutdown => return Ok(()),
            End::Fatal(err) => return Err(err),
            End::Lost { reason, stable } => (reason, stable),
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
                _ = shutdown.cancelled() => return Ok(()),
                _ = &mut wait => break,
                out = net_out.recv() => match out {
                    Some(Outgoing { command: Outbound::Flush(done), .. }) => { let _ = done.send(()); }
                    Some(_) => dropped += 1,
                    None => return Ok(()),
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
                settings.ssl_identity.as_ref(),
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

/// One connection's state, shared with [`super::inbound`], which handles its lines.
pub(super) struct Session<'a> {
    pub(super) settings: &'a IrcSettings,
    net_in: &'a ByteSender<Inbound>,
    /// The bot as the server relays it: its nick, and its user and host once seen.
    pub(super) me: Me,
    /// How the server compares names (its `CASEMAPPING`).
    pub(super) casemapping: CaseMapping,
    pub(super) registered: bool,
    /// Registered, but plugins not yet told: the server's `005` lines right after `001` say
    /// how it compares names, so [`Inbound::Connected`] waits for the first line after them.
    pub(super) announce: bool,
    /// Whether the server confirmed one of our JOINs this session.
    pub(super) joined: bool,
    pub(super) queue: SendQueue,
    pacer: Pacer,
    /// How many CTCP requests the bot still answers right now.
    pub(super) ctcp_budget: Pacer,
    /// Channels to join again after a kick, and when.
    pub(super) rejoins: Vec<(Instant, String)>,
    /// Lines that skip the queue and its pacing (registration, PONG, SASL).
    pub(super) urgent: Vec<String>,
    pub(super) nick_tries: u32,
    /// While identifying with NickServ: when to stop waiting and join anyway.
    pub(super) nickserv_until: Option<Instant>,
    /// Capability negotiation and the SASL login.
    pub(super) negotiation: Negotiation,
    /// The watch on the configured nick while the bot goes by another.
    pub(super) regain: Regain,
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
    serve(settings, net_in, net_out, shutdown, io).await
}

/// One registered (or registering) connection over `io`, until it ends.
async fn serve(
    settings: &IrcSettings,
    net_in: &ByteSender<Inbound>,
    net_out: &mut mpsc::Receiver<Outgoing>,
    shutdown: &CancellationToken,
    io: Box<dyn Io>,
) -> End {
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
        negotiation: Negotiation::new(settings.sasl.clone()),
        regain: Regain::new(&settings.nickname),
        dropped_in: 0,
        started: Instant::now(),
    };
    // CAP LS first, so that a server that negotiates holds registration until CAP END.
    let registration = [
        Some(Negotiation::start()),
        settings
            .password
            .as_ref()
            .map(|pass| Command::PASS(pass.expose().to_string())),
        Some(Command::NICK(s.me.nick.clone())),
        Some(Command::USER(
            s.me.nick.clone(),
            "0".into(),
            "hamper IRC bot".into(),
        )),
    ];
    for line in registration.iter().flatten().map(render_command) {
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
                        match s.on_line(msg).await {
                            Ok(()) => {}
                            Err(Halt::Lost(reason)) => return End::Lost { reason, stable: s.stable() },
                            Err(Halt::Fatal(err)) => {
                                let quit = async {
                                    framed.send("QUIT :login failed".to_string()).await?;
                                    framed.flush().await
                                };
                                let _ = tokio::time::timeout(Duration::from_secs(2), quit).await;
                                return End::Fatal(err);
                            }
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
            _ = sleep_until_opt(s.regain.next_poll()), if s.regain.next_poll().is_some() && s.registered => {
                if let Some(ison) = s.regain.poll(Instant::now()) {
                    s.send_paced(&ison);
                }
            }
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

    pub(super) fn enqueue(&mut self, origin: &Origin, out: Outbound) {
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
    pub(super) async fn emit(&mut self, event: Inbound) {
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

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{
        AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines, ReadHalf, WriteHalf,
    };

    use super::*;

    /// The server's end of an in-memory connection.
    struct Peer {
        lines: Lines<BufReader<ReadHalf<DuplexStream>>>,
        writer: WriteHalf<DuplexStream>,
    }

    impl Peer {
        async fn next(&mut self) -> String {
            self.lines
                .next_line()
                .await
                .expect("read")
                .expect("the bot closed the connection")
        }

        async fn until(&mut self, prefix: &str) -> String {
            loop {
                let line = self.next().await;
                if line.starts_with(prefix) {
                    return line;
                }
            }
        }

        async fn send(&mut self, line: &str) {
            self.writer
                .write_all(format!("{line}\r\n").as_bytes())
                .await
                .expect("write");
        }
    }

    /// A session with the default settings over an in-memory pipe; the task's result is how it
    /// ended. Run on a paused clock, the runtime jumps to the bot's next timer whenever both
    /// ends wait, so the keepalive's 30 s and 20 s pass without real sleeps.
    fn session_over_a_pipe() -> (tokio::task::JoinHandle<End>, Peer, mpsc::Sender<Outgoing>) {
        let config = Config::defaults();
        let (_live_tx, live) = watch::channel(Arc::new(config.clone()));
        let settings = IrcSettings::from_config(&config, live).expect("settings");
        let (net_in, net_in_rx) = crate::queue::byte_queue(1 << 20);
        let (out_tx, mut out_rx) = mpsc::channel(16);
        let (bot, server) = tokio::io::duplex(64 * 1024);
        let task = tokio::spawn(async move {
            let _keep = net_in_rx;
            let shutdown = CancellationToken::new();
            serve(&settings, &net_in, &mut out_rx, &shutdown, Box::new(bot)).await
        });
        let (reader, writer) = tokio::io::split(server);
        let peer = Peer {
            lines: BufReader::new(reader).lines(),
            writer,
        };
        (task, peer, out_tx)
    }

    fn lost_reason(end: End) -> String {
        match end {
            End::Lost { reason, .. } => reason,
            End::Shutdown => panic!("ended with a shutdown, not a lost link"),
            End::Fatal(err) => panic!("ended fatally: {err}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_server_is_pinged_after_30_s_and_left_20_s_later() {
        let (task, mut peer, _out) = session_over_a_pipe();
        peer.until("USER ").await;
        peer.send(":srv 001 hamper :Welcome").await;
        let quiet = Instant::now();
        assert_eq!(peer.next().await, "PING :keepalive");
        assert_eq!(quiet.elapsed().as_secs(), 30, "{:?}", quiet.elapsed());

        // An answer resets the clock: the next PING comes 30 s after it.
        peer.send(":srv PONG srv :keepalive").await;
        let answered = Instant::now();
        assert_eq!(peer.next().await, "PING :keepalive");
        assert_eq!(answered.elapsed().as_secs(), 30, "{:?}", answered.elapsed());

        // No answer this time: the link counts as dead 20 s after the PING.
        let pinged = Instant::now();
        let reason = lost_reason(task.await.expect("session task"));
        assert_eq!(pinged.elapsed().as_secs(), 20, "{:?}", pinged.elapsed());
        assert!(
            reason.contains("not even an answer to our PING"),
            "{reason}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_that_goes_silent_during_registration_is_left_within_a_minute() {
        let (task, mut peer, _out) = session_over_a_pipe();
        let connected = Instant::now();
        peer.until("USER ").await;
        assert_eq!(peer.until("PING ").await, "PING :keepalive");
        let reason = lost_reason(task.await.expect("session task"));
        assert_eq!(
            connected.elapsed().as_secs(),
            50,
            "{:?}",
            connected.elapsed()
        );
        assert!(reason.contains("sent nothing for 50s"), "{reason}");
    }

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
}
