//! Plugins: child processes speaking the protocol, each supervised by its own task.

pub mod lane;
pub mod manager;
pub mod process;
pub mod report;
pub mod restart;
pub mod runner;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hamper_protocol::{FromPlugin, HostHello, Message, Outcome, PluginHello, ToPlugin};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::queue::{ByteSender, Weigh};
pub use lane::{RouterCall, StorageSlot};
pub use manager::{Plugins, Slot};
pub use runner::{spawn_runner, RunnerSettings};

/// One protocol line for a plugin, newline included, encoded once however many plugins get it.
pub type Line = Bytes;

/// One item of a plugin's inbox: an encoded line and, for a command, the message to answer if
/// the plugin never gets to it (it crashed, hung or could not start).
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The protocol line.
    pub line: Line,
    /// The command's message, for the apology.
    pub command: Option<Arc<Message>>,
}

impl Weigh for Delivery {
    fn weight(&self) -> usize {
        self.line.len()
    }
}

/// Encodes a message for plugins. Only a bug could make it fail (every wire type serializes),
/// and then the message is logged and not sent.
pub fn encode(msg: &ToPlugin) -> Option<Line> {
    match serde_json::to_vec(msg) {
        Ok(mut line) => {
            line.push(b'\n');
            Some(Bytes::from(line))
        }
        Err(err) => {
            tracing::error!(error = %err, "cannot encode a message for plugins; not sent");
            None
        }
    }
}

/// Where a plugin is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Spawned, waiting for its hello.
    Starting,
    /// Handshake done; receiving events.
    Running,
    /// Stopped unexpectedly; waiting to start again.
    Restarting,
    /// Given up on, with the reason. The rest of the bot carries on; unless the failure is
    /// permanent, it is tried again after `failed_retry`.
    Failed(String),
    /// Stopped by an owner (`!disable`) until `!enable`: not restarted, not retried.
    Disabled,
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
            State::Disabled => "disabled",
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
    /// Since when the current process has been running (its handshake done).
    pub since: Option<tokio::time::Instant>,
    /// When it will be started next, while it waits to restart or to be retried after failing.
    pub next_start: Option<tokio::time::Instant>,
}

/// The router's handle on one plugin.
#[derive(Debug, Clone)]
pub struct PluginHandle {
    /// The plugin's configured name.
    pub name: String,
    inbox: ByteSender<Delivery>,
    ctl: mpsc::UnboundedSender<Control>,
    status: Arc<Mutex<Status>>,
    counters: Arc<Counters>,
    /// Stops this plugin alone, for good (it was removed from the config).
    stop: CancellationToken,
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
    /// Lines of the plugin's that the IRC connection dropped because the plugin's share of the
    /// send queue was full.
    pub unsent: Arc<AtomicU64>,
}

impl PluginHandle {
    /// Queues a line for the plugin without waiting. A full inbox drops it, counts it and
    /// warns (once per hundred drops), so a plugin that stops reading cannot block anyone.
    pub fn deliver(&self, line: &Line) -> bool {
        self.push(Delivery {
            line: line.clone(),
            command: None,
        })
    }

    /// Queues a command for the plugin, like [`PluginHandle::deliver`]. If the plugin stops
    /// before it has handled the command, the sender gets an answer saying so.
    pub fn deliver_command(&self, line: Line, message: Message) -> bool {
        self.push(Delivery {
            line,
            command: Some(Arc::new(message)),
        })
    }

    fn push(&self, delivery: Delivery) -> bool {
        match self.inbox.try_send(delivery) {
            Ok(()) => true,
            Err(_) => {
                let n = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n == 1 || n % 100 == 0 {
                    tracing::warn!(plugin = %self.name, dropped = n, queued_bytes = self.inbox.used(), "plugin inbox full; dropping events");
                }
                false
            }
        }
    }

    /// Asks the runner to confirm, through a ping, that the plugin handled everything sent so far.
    pub fn sync(&self, token: u64) {
        let _ = self.ctl.send(Control::Sync(token));
    }

    /// Asks the runner to act on an owner's command.
    pub fn control(&self, ctl: Control) {
        let _ = self.ctl.send(ctl);
    }

    /// Stops the plugin for good, as at shutdown: its runner ends once the process is gone.
    pub fn remove(&self) {
        self.stop.cancel();
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

    /// The plugin as the sender of lines to the network.
    pub fn origin(&self) -> crate::chat::Origin {
        crate::chat::Origin::Plugin {
            name: Arc::from(self.name.as_str()),
            unsent: self.counters.unsent.clone(),
        }
    }
}

/// Requests from the router to a runner.
#[derive(Debug)]
pub enum Control {
    /// Send a ping and report [`FromRunner::Synced`] with this token when the pong comes
    /// (or at once if the plugin is not running).
    Sync(u64),
    /// Stop the plugin gracefully, if it runs, and start it again at once with a fresh crash
    /// history, whatever its state (failed included), except disabled. The asker, if any, is
    /// told when it runs again or why it did not start.
    Restart(Option<Arc<Message>>),
    /// Stop the plugin gracefully and keep it stopped until [`Control::Enable`].
    Disable(Option<Arc<Message>>),
    /// Start a disabled plugin again.
    Enable(Option<Arc<Message>>),
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
    /// An action from a running plugin (requests are served by its lane).
    Output {
        /// Which plugin.
        plugin: usize,
        /// What it sent.
        msg: FromPlugin,
    },
    /// A request of the plugin's that only the router can answer.
    Call {
        /// Which plugin.
        plugin: usize,
        /// What it asks.
        call: RouterCall,
        /// Where the answer goes.
        reply: oneshot::Sender<Outcome>,
    },
    /// The answer to [`Control::Sync`].
    Synced {
        /// Which plugin.
        plugin: usize,
        /// The token.
        token: u64,
    },
    /// Text for the senders of these messages: why the plugin will never answer their
    /// commands, or how an owner's command (`!restart`, `!disable`, `!enable`) turned out.
    Tell {
        /// The messages to answer.
        messages: Vec<Arc<Message>>,
        /// What to tell their senders.
        text: String,
    },
    /// The plugin stopped running (crash, failure or shutdown).
    Down {
        /// Which plugin.
        plugin: usize,
    },
}
