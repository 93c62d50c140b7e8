//! One task per plugin that owns its process, pipes and restarts.
//!
//! The runner is the only code that touches a plugin's child process. It does the handshake,
//! feeds the plugin's inbox into its stdin, forwards what the plugin writes to the router in
//! order, pings it for liveness, counts malformed output, and restarts it by the
//! [`RestartPolicy`] when it stops. Whatever the plugin does, the router never waits on it.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use hamper_protocol::{
    FromPlugin, Goodbye, Message, NdjsonCodec, Ping, PingId, PluginHello, ToPlugin,
    PROTOCOL_VERSION,
};
use tokio::io::AsyncWriteExt;
use tokio::process::ChildStdin;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn, Instrument};

use super::lane::{response_line, Lane, Services, StorageSlot};
use super::process::{self, Launch, Process};
use super::report;
use super::restart::{Decision, RestartPolicy, Run};
use super::{encode, Control, Counters, Delivery, FromRunner, Line, PluginHandle, State, Status};
use crate::config::PluginSpec;
use crate::queue::{byte_queue, ByteReceiver, ByteSender};

/// Malformed lines within [`MALFORMED_WINDOW`] that count as a crash.
const MALFORMED_FLOOD: usize = 20;
const MALFORMED_WINDOW: Duration = Duration::from_secs(10);
/// How long a stopping plugin gets at each step of the escalation.
const DEFAULT_GRACE: Duration = Duration::from_secs(2);
/// How long a plugin stopped by SIGTERM waits for the bot's own shutdown before it counts as a
/// crash.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// Lines written to a plugin in one write, at most this many bytes, when several are ready.
const WRITE_BATCH: usize = 64 * 1024;

/// Everything a runner needs to know.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    /// The plugin's index in the router's table.
    pub index: usize,
    /// Its configuration.
    pub spec: PluginSpec,
    /// Where to look for built-in plugin binaries first.
    pub plugin_dir: Option<PathBuf>,
    /// The guard to run each plugin under, if any.
    pub guard: Option<process::Guard>,
    /// Print every protocol line to stderr.
    pub trace: bool,
    /// Grace period at each step of stopping.
    pub grace: Duration,
    /// The database, once open.
    pub storage: StorageSlot,
    /// The command prefix, for the answers the runner gives in a plugin's place.
    pub command_prefix: String,
}

impl RunnerSettings {
    /// Settings for a plugin with default grace and no trace.
    pub fn new(index: usize, spec: PluginSpec) -> Self {
        RunnerSettings {
            index,
            spec,
            plugin_dir: None,
            guard: None,
            trace: false,
            grace: DEFAULT_GRACE,
            storage: StorageSlot::default(),
            command_prefix: "!".into(),
        }
    }

    fn policy(&self) -> RestartPolicy {
        let mut policy = RestartPolicy {
            max_crashes: self.spec.limits.max_restarts,
            window: self.spec.limits.restart_window,
            failed_retry: self.spec.limits.failed_retry,
            ..RestartPolicy::default()
        };
        policy.healthy_after = policy.healthy_after.min(self.spec.limits.restart_window);
        policy
    }
}

/// Starts the runner task for one plugin and returns the router's handle on it.
pub fn spawn_runner(
    settings: RunnerSettings,
    router: mpsc::Sender<FromRunner>,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) -> PluginHandle {
    let (inbox_tx, inbox) = byte_queue(settings.spec.limits.inbox);
    let (ctl_tx, ctl) = mpsc::unbounded_channel();
    let status = Arc::new(Mutex::new(Status {
        state: State::Starting,
        pid: None,
        generation: 0,
        hello: None,
        since: None,
        next_start: None,
    }));
    let counters = Arc::new(Counters::default());
    // Its own token, under the bot's: removing the plugin from the config stops this one alone.
    let own = shutdown.child_token();
    let handle = PluginHandle {
        name: settings.spec.name.clone(),
        inbox: inbox_tx.clone(),
        ctl: ctl_tx,
        status: status.clone(),
        counters: counters.clone(),
        stop: own.clone(),
    };
    let runner = Runner {
        settings,
        inbox,
        inbox_tx,
        ctl,
        router,
        status,
        counters,
        shutdown: own,
        bot_shutdown: shutdown,
        next_ping: Arc::new(AtomicU64::new(1)),
        orphans: Vec::new(),
        askers: Vec::new(),
        reached_running: false,
        exit: None,
    };
    tracker.spawn(runner.run());
    handle
}

struct Runner {
    settings: RunnerSettings,
    inbox: ByteReceiver<Delivery>,
    inbox_tx: ByteSender<Delivery>,
    ctl: mpsc::UnboundedReceiver<Control>,
    router: mpsc::Sender<FromRunner>,
    status: Arc<Mutex<Status>>,
    counters: Arc<Counters>,
    /// Cancelled when the bot shuts down or the plugin is removed from the config.
    shutdown: CancellationToken,
    /// Cancelled when the bot shuts down (only used to word the goodbye).
    bot_shutdown: CancellationToken,
    /// Ping ids, shared with the writer, which follows each command with a ping.
    next_ping: Arc<AtomicU64>,
    /// Commands the process that just stopped was given but never handled.
    orphans: Vec<Arc<Message>>,
    /// Owners who asked for the next start (`!restart`, `!enable`), to be told how it went.
    askers: Vec<(Arc<Message>, Ask)>,
    /// Whether the process that just stopped got past its handshake.
    reached_running: bool,
    /// How the process that just stopped exited, when it exited by itself.
    exit: Option<std::process::ExitStatus>,
}

/// How one run of the plugin ended.
enum End {
    /// The bot is shutting down, or the plugin was removed from the config.
    Shutdown,
    /// An owner stopped it.
    Stopped(Stop),
    Crashed(String),
    Permanent(String),
}

/// An owner's reason to stop a running plugin.
enum Stop {
    Restart(Option<Arc<Message>>),
    Disable(Option<Arc<Message>>),
}

/// What an owner asked for that starts the plugin, for the answer once it runs.
#[derive(Debug, Clone, Copy)]
enum Ask {
    Restart,
    Enable,
}

/// Why a runner that was waiting goes on.
enum Wake {
    /// The wait is over: restart, or retry a failed plugin.
    Elapsed,
    /// Start now, for an owner.
    Start(Option<Arc<Message>>, Ask),
    /// The bot is shutting down, or the plugin was removed.
    Shutdown,
}

type Lines = FramedRead<tokio::process::ChildStdout, NdjsonCodec<FromPlugin, ToPlugin>>;
/// What the handshake deadline gives: nothing in time, end of stream, an I/O error, a bad line,
/// or a message.
type FirstLine = Result<
    Option<Result<Result<FromPlugin, hamper_protocol::LineError>, std::io::Error>>,
    tokio::time::error::Elapsed,
>;

impl Runner {
    fn name(&self) -> &str {
        &self.settings.spec.name
    }

    fn generation(&self) -> u64 {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .generation
    }

    fn set_status(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()));
    }

    async fn run(mut self) {
        let policy = self.settings.policy();
        let mut history: Vec<Run> = Vec::new();
        let mut first = true;
        loop {
            if !first {
                self.counters.restarts.fetch_add(1, Ordering::Relaxed);
            }
            first = false;
            let started = Instant::now();
            self.reached_running = false;
            self.exit = None;
            let end = self.run_once().await;
            // Until it is decided what happens next, commands get "restarting" from the router
            // rather than waiting in the inbox of a process that is gone.
            self.set_status(|s| {
                s.pid = None;
                s.since = None;
                if matches!(end, End::Crashed(_) | End::Stopped(Stop::Restart(_))) {
                    s.state = State::Restarting;
                }
            });
            self.collect_orphans();
            let wait = match end {
                End::Shutdown => None,
                End::Stopped(Stop::Restart(asker)) => {
                    info!(plugin = %self.name(), "plugin stopped for an owner's restart; starting it again");
                    history.clear();
                    self.askers.extend(asker.map(|m| (m, Ask::Restart)));
                    self.answer_orphans("it is being restarted").await;
                    Some(Some(Duration::ZERO))
                }
                End::Stopped(Stop::Disable(asker)) => {
                    self.disable(asker).await;
                    self.answer_orphans("it has been disabled").await;
                    Some(None)
                }
                End::Permanent(reason) => {
                    error!(plugin = %self.name(), %reason, "plugin failed and will not be restarted or retried");
                    self.set_status(|s| s.state = State::Failed(reason.clone()));
                    self.fail_orphans_and_askers(&reason).await;
                    Some(None)
                }
                End::Crashed(reason) if self.stopped_with_the_bot().await => {
                    info!(plugin = %self.name(), %reason, "plugin stopped by SIGTERM as the bot shuts down; not restarted");
                    None
                }
                End::Crashed(reason) => {
                    let now = Instant::now();
                    history.push(Run {
                        started,
                        ended: now,
                    });
                    if history.len() > 64 {
                        history.remove(0);
                    }
                    match policy.next_delay(&history, now) {
                        Decision::Fail { retry_after } => {
                            let why = format!(
                                "stopped {} times within {}s; last: {reason}",
                                policy.max_crashes,
                                policy.window.as_secs_f64()
                            );
                            match retry_after {
                                Some(retry) => {
                                    error!(plugin = %self.name(), reason = %why, retry_in_s = retry.as_secs_f64(), "plugin failed: too many crashes; the rest of the bot carries on, and it is tried again later")
                                }
                                None => {
                                    error!(plugin = %self.name(), reason = %why, "plugin failed: too many crashes; the rest of the bot carries on (failed_retry is off)")
                                }
                            }
                            self.set_status(|s| {
                                s.state = State::Failed(why);
                                s.next_start = retry_after.map(|d| tokio::time::Instant::now() + d);
                            });
                            self.fail_orphans_and_askers(&reason).await;
                            Some(retry_after)
                        }
                        Decision::RestartAfter(delay) => {
                            warn!(plugin = %self.name(), %reason, delay_ms = delay.as_millis() as u64, "plugin stopped; restarting");
                            self.set_status(|s| {
                                s.state = State::Restarting;
                                s.next_start = Some(tokio::time::Instant::now() + delay);
                            });
                            self.tell_askers(format!(
                                "The {} plugin did not start: {reason}; it is being restarted.",
                                self.name()
                            ))
                            .await;
                            self.answer_orphans("it is being restarted").await;
                            Some(Some(delay))
                        }
                    }
                }
            };
            // After the answers, so that a console sync sees them before it completes.
            let _ = self
                .router
                .send(FromRunner::Down {
                    plugin: self.settings.index,
                })
                .await;
            let Some(delay) = wait else { break };
            match self.idle(delay).await {
                Wake::Shutdown => break,
                Wake::Elapsed => {
                    if matches!(self.state(), State::Failed(_)) {
                        info!(plugin = %self.name(), "trying the failed plugin again, with a fresh crash budget");
                        history.clear();
                    }
                }
                Wake::Start(asker, ask) => {
                    history.clear();
                    self.askers.extend(asker.map(|m| (m, ask)));
                }
            }
        }
        self.set_status(|s| {
            s.state = State::Stopped;
            s.next_start = None;
        });
    }

    /// Marks the plugin disabled (by an owner) and tells the asker.
    async fn disable(&mut self, asker: Option<Arc<Message>>) {
        info!(plugin = %self.name(), "plugin disabled by an owner");
        self.set_status(|s| {
            s.state = State::Disabled;
            s.next_start = None;
        });
        let text = format!(
            "The {name} plugin is disabled; {prefix}enable {name} starts it again.",
            name = self.name(),
            prefix = self.settings.command_prefix
        );
        self.tell(asker.into_iter().collect(), text).await;
        // Whoever waited for a start will not get one.
        let waiting: Vec<_> = self.askers.drain(..).map(|(m, _)| m).collect();
        let text = format!("Sorry, the {} plugin has been disabled.", self.name());
        self.tell(waiting, text).await;
    }

    /// After a failure: answers the orphaned commands and the owners waiting for a start.
    async fn fail_orphans_and_askers(&mut self, reason: &str) {
        let text = format!(
            "The {} plugin did not start: {reason}; it has failed ({}plugins says why).",
            self.name(),
            self.settings.command_prefix
        );
        self.tell_askers(text).await;
        let next = format!(
            "it has failed ({}plugins says why)",
            self.settings.command_prefix
        );
        self.answer_orphans(&next).await;
    }

    /// Whether a plugin that stopped by SIGTERM did so because the whole bot is being stopped.
    /// Heroku (and a `kill` of the whole tree) signals every process of the bot at once, and a
    /// plugin may die before the supervisor has handled its own signal: it gets a moment.
    async fn stopped_with_the_bot(&self) -> bool {
        use std::os::unix::process::ExitStatusExt;
        const SIGTERM: i32 = 15;
        // Under the guard a plugin killed by a signal exits with 128 + the signal.
        let by_sigterm = self
            .exit
            .is_some_and(|s| s.signal() == Some(SIGTERM) || s.code() == Some(128 + SIGTERM));
        if !by_sigterm {
            return false;
        }
        tokio::time::timeout(SHUTDOWN_GRACE, self.shutdown.cancelled())
            .await
            .is_ok()
    }

    fn state(&self) -> State {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .state
            .clone()
    }

    /// Takes what the stopped process left: commands it was given but did not handle, and
    /// everything still in its inbox (counted as dropped).
    fn collect_orphans(&mut self) {
        while let Some(delivery) = self.inbox.try_recv() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            self.orphans.extend(delivery.command);
        }
    }

    /// Tells the senders of the orphaned commands that the plugin stopped, and what `next`.
    async fn answer_orphans(&mut self, next: &str) {
        if self.orphans.is_empty() {
            return;
        }
        let what = if self.reached_running {
            "stopped while answering"
        } else {
            "could not start"
        };
        let text = format!("Sorry, the {} plugin {what}; {next}.", self.name());
        self.send_orphans(text).await;
    }

    async fn send_orphans(&mut self, text: String) {
        let messages = std::mem::take(&mut self.orphans);
        warn!(plugin = %self.name(), commands = messages.len(), "commands the plugin did not answer were answered for it");
        self.tell(messages, text).await;
    }

    /// Tells the owners waiting for the next start how it went.
    async fn tell_askers(&mut self, text: String) {
        let messages: Vec<_> = self.askers.drain(..).map(|(m, _)| m).collect();
        self.tell(messages, text).await;
    }

    async fn tell(&self, messages: Vec<Arc<Message>>, text: String) {
        if messages.is_empty() {
            return;
        }
        let _ = self.router.send(FromRunner::Tell { messages, text }).await;
    }

    /// While the plugin is not running: drops its events (counted), answers syncs at once, and
    /// acts on owners' commands, until `delay` has passed, an owner starts it, or shutdown.
    /// Without a delay (failed for good, or disabled) only an owner or shutdown ends the wait.
    async fn idle(&mut self, delay: Option<Duration>) -> Wake {
        let mut deadline = delay.map(|d| tokio::time::Instant::now() + d);
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return Wake::Shutdown,
                _ = sleep_until_opt(deadline), if deadline.is_some() => return Wake::Elapsed,
                Some(delivery) = self.inbox.recv() => {
                    self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    // A command the router sent before it saw the plugin stop.
                    if let Some(message) = delivery.command {
                        self.orphans.push(message);
                        let now = tokio::time::Instant::now();
                        let text = report::unavailable(self.name(), &self.status(), &self.settings.command_prefix, now)
                            .unwrap_or_else(|| report::restarting(self.name(), None, now));
                        self.send_orphans(text).await;
                    }
                }
                Some(ctl) = self.ctl.recv() => match ctl {
                    Control::Sync(token) => {
                        let _ = self.router.send(FromRunner::Synced { plugin: self.settings.index, token }).await;
                    }
                    Control::Restart(asker) | Control::Enable(asker) if self.state() != State::Disabled => {
                        return Wake::Start(asker, Ask::Restart);
                    }
                    Control::Enable(asker) => return Wake::Start(asker, Ask::Enable),
                    Control::Restart(asker) => {
                        let text = self.disabled_text();
                        self.tell(asker.into_iter().collect(), text).await;
                    }
                    Control::Disable(asker) if self.state() == State::Disabled => {
                        let text = format!("The {} plugin is already disabled.", self.name());
                        self.tell(asker.into_iter().collect(), text).await;
                    }
                    Control::Disable(asker) => {
                        self.disable(asker).await;
                        deadline = None;
                    }
                },
            }
        }
    }

    fn disabled_text(&self) -> String {
        format!(
            "The {name} plugin is disabled; {prefix}enable {name} starts it.",
            name = self.name(),
            prefix = self.settings.command_prefix
        )
    }

    fn status(&self) -> Status {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    async fn run_once(&mut self) -> End {
        // The generation goes up first, so that a response for the previous process that is
        // still on its way is refused from now on; then what was queued for it is dropped.
        self.set_status(|s| {
            s.state = State::Starting;
            s.generation += 1;
            s.next_start = None;
        });
        self.collect_orphans();
        if !self.orphans.is_empty() {
            let text = format!(
                "Sorry, the {} plugin is restarting; try again in a moment.",
                self.name()
            );
            self.send_orphans(text).await;
        }
        let launch =
            match process::resolve(&self.settings.spec, self.settings.plugin_dir.as_deref()) {
                Ok(launch) => launch,
                Err(err) => return End::Permanent(err.to_string()),
            };
        let process = match process::spawn(self.name(), &launch, self.settings.guard.as_ref()) {
            Ok(p) => p,
            Err(err) if err.is_permanent() => return End::Permanent(err.to_string()),
            Err(err) => return End::Crashed(err.to_string()),
        };
        let generation = self.generation();
        let span =
            // `plugin`, not `name` as the style guide has it: the JSON log writes the span's own
            // name ("plugin") under `name`, and a second `name` would hide the plugin's.
            tracing::info_span!("plugin", plugin = %self.name(), pid = process.pid, generation);
        self.supervise(process, &launch).instrument(span).await
    }

    async fn supervise(&mut self, process: Process, launch: &Launch) -> End {
        let Process {
            mut child,
            pid,
            stdin,
            stdout,
        } = process;
        self.set_status(|s| s.pid = Some(pid));
        info!(command = ?launch.argv, "plugin started");
        let mut lines: Lines = FramedRead::new(stdout, NdjsonCodec::default());
        let mut stdin = stdin;
        let grace = self.settings.grace;

        let hello = tokio::select! {
            _ = self.shutdown.cancelled() => {
                drop(stdin);
                process::terminate(self.name(), &mut child, pid, grace).await;
                return End::Shutdown;
            }
            first = tokio::time::timeout(self.settings.spec.limits.handshake_timeout, lines.next()) => {
                match self.check_hello(first) {
                    Ok(hello) => hello,
                    Err(reason) => {
                        drop(stdin);
                        process::kill_group(pid);
                        let _ = child.wait().await;
                        return End::Crashed(reason);
                    }
                }
            }
        };
        if hello.protocol_version != PROTOCOL_VERSION {
            let reason = format!(
                "it speaks protocol version {}, this hamper speaks version {PROTOCOL_VERSION}; use a plugin built for version {PROTOCOL_VERSION}",
                hello.protocol_version
            );
            let _ = self
                .write(
                    &mut stdin,
                    &ToPlugin::Goodbye(Goodbye {
                        reason: reason.clone(),
                    }),
                )
                .await;
            drop(stdin);
            process::terminate(self.name(), &mut child, pid, grace).await;
            return End::Permanent(reason);
        }

        let (reply_tx, reply_rx) = oneshot::channel();
        let _ = self
            .router
            .send(FromRunner::Hello {
                plugin: self.settings.index,
                hello: hello.clone(),
                reply: reply_tx,
            })
            .await;
        let Ok(host_hello) = reply_rx.await else {
            drop(stdin);
            process::terminate(self.name(), &mut child, pid, grace).await;
            return End::Shutdown;
        };
        let handshake = tokio::time::timeout(
            self.settings.spec.limits.handshake_timeout,
            self.write(&mut stdin, &ToPlugin::Hello(host_hello)),
        )
        .await;
        if !matches!(handshake, Ok(Ok(()))) {
            process::kill_group(pid);
            let _ = child.wait().await;
            return End::Crashed("did not read the host's hello".into());
        }
        self.set_status(|s| {
            s.state = State::Running;
            s.hello = Some(hello);
            s.since = Some(tokio::time::Instant::now());
        });
        self.reached_running = true;
        info!("plugin running");
        for (asker, ask) in std::mem::take(&mut self.askers) {
            let text = match ask {
                Ask::Restart => format!("The {} plugin is running again, pid {pid}.", self.name()),
                Ask::Enable => format!(
                    "The {} plugin is enabled and running, pid {pid}.",
                    self.name()
                ),
            };
            self.tell(vec![asker], text).await;
        }

        let end = self.serve(&mut child, pid, stdin, &mut lines).await;
        if let End::Crashed(reason) = &end {
            if process::sweep_group(pid) {
                warn!(plugin = %self.name(), "plugin left processes behind in its group; killed them");
            }
            // Deliver what it wrote just before it stopped, without waiting on anything it
            // may have left holding its stdout. Its requests can no longer be answered.
            let drain = async {
                while let Some(Ok(Ok(msg))) = lines.next().await {
                    if !matches!(msg, FromPlugin::Request(_)) {
                        self.forward(msg).await;
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_millis(500), drain).await;
            info!(%reason, "plugin stopped");
        }
        end
    }

    fn check_hello(&self, first: FirstLine) -> Result<PluginHello, String> {
        if self.settings.trace {
            if let Ok(Some(Ok(Ok(msg)))) = &first {
                trace_line("<-", self.name(), msg);
            }
        }
        match first {
            Err(_) => Err(format!(
                "sent no hello within {}s; if it writes one, its stdout is probably buffered: flush after every line (print(..., flush=True) in Python, fflush(stdout) in C)",
                self.settings.spec.limits.handshake_timeout.as_secs_f64()
            )),
            Ok(None) | Ok(Some(Err(_))) => Err("exited or closed stdout before its hello".into()),
            Ok(Some(Ok(Err(err)))) => Err(format!("its first line was not a hello: {err}")),
            Ok(Some(Ok(Ok(FromPlugin::Hello(hello))))) => Ok(hello),
            Ok(Some(Ok(Ok(other)))) => Err(format!(
                "its first message was {}, not a hello",
                type_name(&other)
            )),
        }
    }

    /// Writes one message now, outside the running plugin's writer (handshake only).
    async fn write(&self, stdin: &mut ChildStdin, msg: &ToPlugin) -> std::io::Result<()> {
        let Some(line) = encode(msg) else {
            return Err(std::io::Error::other("cannot encode the message"));
        };
        if self.settings.trace {
            trace_bytes("->", self.name(), &line);
        }
        stdin.write_all(&line).await
    }

    async fn forward(&self, msg: FromPlugin) {
        let _ = self
            .router
            .send(FromRunner::Output {
                plugin: self.settings.index,
                msg,
            })
            .await;
    }

    /// The running plugin's loop. Returns when it stops or the bot shuts down.
    async fn serve(
        &mut self,
        child: &mut tokio::process::Child,
        pid: u32,
        stdin: ChildStdin,
        lines: &mut Lines,
    ) -> End {
        let limits = self.settings.spec.limits;
        let trace = self.settings.trace.then(|| self.settings.spec.name.clone());
        let index = self.settings.index;
        let mut lane = Lane::new(Services {
            plugin: index,
            name: self.settings.spec.name.as_str().into(),
            storage: self.settings.storage.clone(),
            router: self.router.clone(),
        });
        // Responses (and the goodbye) go ahead of queued events: the plugin is waiting for them.
        let (urgent_tx, urgent) = mpsc::unbounded_channel::<Line>();
        let mut urgent_tx = Some(urgent_tx);
        // Commands written to the plugin and not yet handled, in the order written.
        let (tickets_tx, mut tickets) = mpsc::unbounded_channel::<Ticket>();
        let mut open: VecDeque<Ticket> = VecDeque::new();
        // Boxed, not pinned on the stack, so that dropping it closes the plugin's stdin.
        let mut writer = Box::pin(write_lines(
            stdin,
            urgent,
            &mut self.inbox,
            tickets_tx,
            self.next_ping.clone(),
            trace.clone(),
        ));
        let mut writer_done = false;
        let mut stdout_done = false;
        let mut pings = tokio::time::interval(limits.ping_interval);
        pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        pings.tick().await;
        let mut liveness: Option<(PingId, tokio::time::Instant)> = None;
        let mut syncs: HashMap<PingId, u64> = HashMap::new();
        let mut malformed: VecDeque<Instant> = VecDeque::new();
        // Why the plugin is being stopped on purpose, to tell it in the goodbye.
        let mut goodbye: Option<&str> = None;

        let end = loop {
            let deadline = liveness.map(|(_, sent)| sent + limits.ping_timeout);
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => {
                    goodbye = Some(if self.bot_shutdown.is_cancelled() {
                        "the bot is shutting down"
                    } else {
                        "the plugin was removed from the configuration"
                    });
                    break End::Shutdown;
                }
                status = child.wait() => {
                    self.exit = status.as_ref().ok().copied();
                    let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                    break End::Crashed(format!("exited ({status})"));
                }
                _ = &mut writer, if !writer_done => {
                    writer_done = true;
                }
                response = lane.next() => {
                    // Until now the plugin may have been waiting on the host, not hung: its ping
                    // clock starts again.
                    if let Some((_, sent)) = &mut liveness {
                        *sent = tokio::time::Instant::now();
                    }
                    let line = response_line(response);
                    if let (Some(tx), Some(line)) = (&urgent_tx, line) {
                        let _ = tx.send(line);
                    }
                }
                item = lines.next(), if !stdout_done && !lane.is_full() => match item {
                    None | Some(Err(_)) => stdout_done = true,
                    Some(Ok(Err(err))) => {
                        let total = self.counters.malformed.fetch_add(1, Ordering::Relaxed) + 1;
                        warn!(plugin = %self.settings.spec.name, error = %err, total, "malformed line from plugin; ignored");
                        let now = Instant::now();
                        malformed.push_back(now);
                        while malformed.front().is_some_and(|t| now.duration_since(*t) > MALFORMED_WINDOW) {
                            malformed.pop_front();
                        }
                        if malformed.len() >= MALFORMED_FLOOD {
                            process::kill_group(pid);
                            let _ = child.wait().await;
                            break End::Crashed(format!("{MALFORMED_FLOOD} malformed lines within {}s", MALFORMED_WINDOW.as_secs()));
                        }
                    }
                    Some(Ok(Ok(msg))) => {
                        if let Some(name) = &trace {
                            trace_line("<-", name, &msg);
                        }
                        // A plugin working through a backlog answers its ping late but is not
                        // hung: any line it writes shows it is making progress.
                        if let Some((_, sent)) = &mut liveness {
                            *sent = tokio::time::Instant::now();
                        }
                        match msg {
                            FromPlugin::Pong(pong) => {
                                // Pongs come in order: every command written before this ping
                                // has been handled.
                                while let Ok(ticket) = tickets.try_recv() {
                                    open.push_back(ticket);
                                }
                                while open.front().is_some_and(|t| t.ping.0 <= pong.id.0) {
                                    open.pop_front();
                                }
                                if liveness.is_some_and(|(id, _)| id == pong.id) {
                                    liveness = None;
                                }
                                if let Some(token) = syncs.remove(&pong.id) {
                                    let _ = self.router.send(FromRunner::Synced { plugin: index, token }).await;
                                }
                            }
                            FromPlugin::Hello(_) => warn!(plugin = %self.settings.spec.name, "plugin sent a second hello; ignored"),
                            FromPlugin::Request(request) => lane.push(request),
                            other => {
                                let _ = self.router.send(FromRunner::Output { plugin: index, msg: other }).await;
                            }
                        }
                    }
                },
                Some(ticket) = tickets.recv() => open.push_back(ticket),
                Some(ctl) = self.ctl.recv() => match ctl {
                    Control::Sync(token) => {
                        // Behind every event queued so far, so its pong means they were all handled.
                        let (id, queued) = ping(&self.next_ping, &self.inbox_tx);
                        if queued {
                            syncs.insert(id, token);
                        } else {
                            let _ = self.router.send(FromRunner::Synced { plugin: index, token }).await;
                        }
                    }
                    Control::Restart(asker) => {
                        goodbye = Some("restarted by an owner");
                        break End::Stopped(Stop::Restart(asker));
                    }
                    Control::Disable(asker) => {
                        goodbye = Some("disabled by an owner");
                        break End::Stopped(Stop::Disable(asker));
                    }
                    Control::Enable(asker) => {
                        if let Some(asker) = asker {
                            let text = format!("The {} plugin is not disabled; it is running.", self.settings.spec.name);
                            let _ = self.router.send(FromRunner::Tell { messages: vec![asker], text }).await;
                        }
                    }
                },
                _ = pings.tick(), if liveness.is_none() => {
                    // A full inbox still starts the clock: a plugin that stops reading is hung.
                    let (id, _) = ping(&self.next_ping, &self.inbox_tx);
                    liveness = Some((id, tokio::time::Instant::now()));
                }
                _ = sleep_until_opt(deadline), if deadline.is_some() && !lane.is_full() => {
                    process::kill_group(pid);
                    let _ = child.wait().await;
                    break End::Crashed(format!("did not answer a ping within {}s (hung or not reading stdin)", limits.ping_timeout.as_secs_f64()));
                }
            }
        };
        if let Some(reason) = goodbye {
            let line = encode(&ToPlugin::Goodbye(Goodbye {
                reason: reason.into(),
            }));
            // Dropping the urgent sender after the goodbye makes the writer close stdin.
            if let (Some(tx), Some(line)) = (urgent_tx.take(), line) {
                let _ = tx.send(line);
            }
            if !writer_done {
                let _ = tokio::time::timeout(Duration::from_secs(1), &mut writer).await;
            }
        }
        // The writer has sent the goodbye and closed stdin, or is dropped here.
        drop(writer);
        while let Ok(ticket) = tickets.try_recv() {
            open.push_back(ticket);
        }
        match end {
            End::Crashed(_) => {
                self.orphans.extend(open.into_iter().map(|t| t.message));
                return end;
            }
            // Commands it was given and did not answer before it stopped get an answer for it.
            End::Stopped(_) => self.orphans.extend(open.into_iter().map(|t| t.message)),
            _ => {}
        }
        process::terminate(&self.settings.spec.name, child, pid, self.settings.grace).await;
        info!("plugin stopped");
        end
    }
}

/// A command written to the plugin, and the ping written right after it.
#[derive(Debug)]
struct Ticket {
    ping: PingId,
    message: Arc<Message>,
}

/// Queues a ping behind the events already in the inbox; says whether it fit.
fn ping(next: &AtomicU64, inbox: &ByteSender<Delivery>) -> (PingId, bool) {
    let id = PingId(next.fetch_add(1, Ordering::Relaxed));
    let queued = encode(&ToPlugin::Ping(Ping { id })).is_some_and(|line| {
        inbox
            .try_send(Delivery {
                line,
                command: None,
            })
            .is_ok()
    });
    (id, queued)
}

/// Feeds the plugin's stdin: urgent lines (responses, the goodbye) first, then events from the
/// inbox, several lines to a write when several are ready. Each command is followed by a ping
/// whose pong says it was handled (`tickets` tells the runner). Ends when stdin fails or after
/// the goodbye (once the urgent sender is gone).
async fn write_lines(
    mut stdin: ChildStdin,
    mut urgent: mpsc::UnboundedReceiver<Line>,
    inbox: &mut ByteReceiver<Delivery>,
    tickets: mpsc::UnboundedSender<Ticket>,
    next_ping: Arc<AtomicU64>,
    trace: Option<String>,
) {
    let mut batch: Vec<u8> = Vec::with_capacity(8 * 1024);
    let add = |batch: &mut Vec<u8>, line: &[u8]| {
        batch.extend_from_slice(line);
        if let Some(name) = &trace {
            trace_bytes("->", name, line);
        }
    };
    let mut last = false;
    while !last {
        let mut next = Some(tokio::select! {
            biased;
            line = urgent.recv() => match line {
                Some(line) => Delivery { line, command: None },
                None => return,
            },
            Some(delivery) = inbox.recv() => delivery,
        });
        while let Some(delivery) = next.take() {
            add(&mut batch, &delivery.line);
            if let Some(message) = delivery.command {
                let ping = PingId(next_ping.fetch_add(1, Ordering::Relaxed));
                if let Some(line) = encode(&ToPlugin::Ping(Ping { id: ping })) {
                    add(&mut batch, &line);
                    let _ = tickets.send(Ticket { ping, message });
                }
            }
            if batch.len() >= WRITE_BATCH {
                break;
            }
            next = match urgent.try_recv() {
                Ok(line) => Some(Delivery {
                    line,
                    command: None,
                }),
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    last = true;
                    None
                }
                Err(mpsc::error::TryRecvError::Empty) => inbox.try_recv(),
            };
        }
        if stdin.write_all(&batch).await.is_err() {
            return;
        }
        batch.clear();
    }
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn trace_line<T: serde::Serialize>(arrow: &str, name: &str, msg: &T) {
    let json = serde_json::to_string(msg).unwrap_or_else(|e| format!("<unencodable: {e}>"));
    eprintln!("[{name}] {arrow} {json}");
}

fn trace_bytes(arrow: &str, name: &str, line: &[u8]) {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    eprintln!("[{name}] {arrow} {}", String::from_utf8_lossy(line));
}

fn type_name(msg: &FromPlugin) -> String {
    serde_json::to_value(msg)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}
