//! One task per plugin that owns its process, pipes and restarts.
//!
//! The runner is the only code that touches a plugin's child process. It does the handshake,
//! feeds the plugin's inbox into its stdin, forwards what the plugin writes to the router in
//! order, pings it for liveness, counts malformed output, and restarts it by the
//! [`RestartPolicy`] when it stops. Whatever the plugin does, the router never waits on it.
//!
//! This module is the plugin's life across processes: restarts, a failed plugin's retries, an
//! owner's restart, disable and enable, and the answers for commands a stopped process left.
//! One process's life, from spawn to exit, is in `runner/serve.rs`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hamper_protocol::Message;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use super::lane::StorageSlot;
use super::process;
use super::report;
use super::restart::{Decision, RestartPolicy, Run};
use super::{Control, Counters, Delivery, FromRunner, PluginHandle, State, Status};
use crate::config::PluginSpec;
use crate::queue::{byte_queue, ByteReceiver, ByteSender};

mod serve;

/// How long a stopping plugin gets at each step of the escalation.
const DEFAULT_GRACE: Duration = Duration::from_secs(2);
/// How long a plugin stopped by SIGTERM waits for the bot's own shutdown before it counts as a
/// crash.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

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
        carry_inbox: false,
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
    /// The next process takes over what waits in the inbox (after an owner's restart) instead
    /// of the inbox being emptied first.
    carry_inbox: bool,
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
            // An owner's restart starts the next process at once, so what arrives meanwhile
            // waits in the inbox for it, as at start-up: nothing said in those milliseconds is
            // lost. After a crash, until it is decided what happens next, commands get
            // "restarting" from the router rather than waiting in the inbox of a process that
            // is gone.
            let planned = matches!(end, End::Stopped(Stop::Restart(_)));
            self.carry_inbox = planned;
            self.set_status(|s| {
                s.pid = None;
                s.since = None;
                match end {
                    End::Stopped(Stop::Restart(_)) => s.state = State::Starting,
                    End::Crashed(_) => s.state = State::Restarting,
                    // Before the router hears it is down, so that it asks nothing more of it.
                    End::Shutdown => s.state = State::Stopped,
                    _ => {}
                }
            });
            if !planned {
                self.collect_orphans();
            }
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
            if planned {
                // Straight to the next process: nothing to wait for, and the router keeps
                // routing to it (its syncs wait in `ctl` for the new process to answer).
                continue;
            }
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
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
