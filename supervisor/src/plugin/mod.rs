//! Plugins: child processes speaking the protocol, each supervised by its own task.

pub mod process;
pub mod restart;
pub mod runner;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hamper_protocol::{FromPlugin, HostHello, PluginHello, ToPlugin};
use tokio::sync::{mpsc, oneshot};

pub use runner::{spawn_runner, RunnerSettings};

/// Where a plugin is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Spawned, waiting for its hello.
    Starting,
    /// Handshake done; receiving events.
    Running,
    /// Stopped unexpectedly; waiting to start again.
    Restarting,
    /// Given up on, with the reason. The rest of the bot carries on.
    Failed(String),
    /// Shut down.
    Stopped,
}

impl State {
    /// The wire name used by `plugins.list`.
    pub fn as_str(&self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Running => "running",
            State::Restarting => "restarting",
            State::Failed(_) => "failed",
            State::Stopped => "stopped",
        }
    }
}

/// What the host knows about one plugin, shared between its runner and the router.
#[derive(Debug, Clone)]
pub struct Status {
    /// The state.
    pub state: State,
    /// The current process id (also its process group), while one runs.
    pub pid: Option<u32>,
    /// How many times it was started.
    pub generation: u64,
    /// Its latest hello.
    pub hello: Option<PluginHello>,
}

/// The router's handle on one plugin.
#[derive(Debug, Clone)]
pub struct PluginHandle {
    /// The plugin's configured name.
    pub name: String,
    inbox: mpsc::Sender<ToPlugin>,
    ctl: mpsc::UnboundedSender<Control>,
    status: Arc<Mutex<Status>>,
    counters: Arc<Counters>,
}

/// Counts of faults, for logs and `!plugins`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Events dropped because the inbox was full or the plugin was down.
    pub dropped: AtomicU64,
    /// Lines from the plugin that were too long or not protocol.
    pub malformed: AtomicU64,
    /// Times the plugin was restarted.
    pub restarts: AtomicU64,
}

impl PluginHandle {
    /// Queues a message for the plugin without waiting. A full inbox drops it, counts it and
    /// warns (once per hundred drops), so a plugin that stops reading cannot block anyone.
    pub fn deliver(&self, msg: ToPlugin) -> bool {
        match self.inbox.try_send(msg) {
            Ok(()) => true,
            Err(_) => {
                let n = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n == 1 || n % 100 == 0 {
                    tracing::warn!(plugin = %self.name, dropped = n, "plugin inbox full; dropping events");
                }
                false
            }
        }
    }

    /// The generation (start count) of the plugin's current process.
    pub fn generation(&self) -> u64 {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .generation
    }

    /// Delivers a response to a request made by process `generation`, waiting up to a while for
    /// room: a response must not be dropped lightly, since the plugin waits for it. A response
    /// for a process that has since been replaced is dropped, so that the new process (whose
    /// request ids start again at 1) never takes it for an answer of its own.
    pub fn deliver_response(&self, msg: ToPlugin, generation: u64) {
        if self.generation() != generation {
            return;
        }
        let inbox = self.inbox.clone();
        let name = self.name.clone();
        let status = self.status.clone();
        tokio::spawn(async move {
            let permit =
                tokio::time::timeout(std::time::Duration::from_secs(30), inbox.reserve()).await;
            let Ok(Ok(permit)) = permit else {
                tracing::warn!(plugin = %name, "could not deliver a response; plugin not reading");
                return;
            };
            // Checked again after the wait for room: the plugin may have been restarted.
            let current = status.lock().unwrap_or_else(|p| p.into_inner()).generation;
            if current == generation {
                permit.send(msg);
            }
        });
    }

    /// Asks the runner to confirm, through a ping, that the plugin handled everything sent so far.
    pub fn sync(&self, token: u64) {
        let _ = self.ctl.send(Control::Sync(token));
    }

    /// The plugin's state, without copying the rest of its status.
    pub fn state(&self) -> State {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .state
            .clone()
    }

    /// A copy of the plugin's status.
    pub fn status(&self) -> Status {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The fault counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }
}

/// Requests from the router to a runner.
#[derive(Debug)]
pub enum Control {
    /// Send a ping and report [`FromRunner::Synced`] with this token when the pong comes
    /// (or at once if the plugin is not running).
    Sync(u64),
}

/// Messages from runners to the router, in the order each plugin produced them.
#[derive(Debug)]
pub enum FromRunner {
    /// A plugin finished its handshake; the router answers with the host hello.
    Hello {
        /// Which plugin.
        plugin: usize,
        /// Its hello.
        hello: PluginHello,
        /// Where to send the answer.
        reply: oneshot::Sender<HostHello>,
    },
    /// An action or request from a running plugin.
    Output {
        /// Which plugin.
        plugin: usize,
        /// Which of its processes (so a response never goes to a later one).
        generation: u64,
        /// What it sent.
        msg: FromPlugin,
    },
    /// The answer to [`Control::Sync`].
    Synced {
        /// Which plugin.
        plugin: usize,
        /// The token.
        token: u64,
    },
    /// The plugin stopped running (crash, failure or shutdown).
    Down {
        /// Which plugin.
        plugin: usize,
    },
}
