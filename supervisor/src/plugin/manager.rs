//! The plugins the bot runs, as slots the router addresses by index, which a reload changes
//! while the bot runs.
//!
//! A slot's index never changes and is never reused, so whatever a runner reports (each
//! [`FromRunner`] names its plugin by index) is about the plugin it names, even after a reload
//! removed that plugin or put a changed one in a new slot. A removed plugin's slot stays, marked
//! removed, until the bot exits; a reload adds plugins at the end.

use hamper_protocol::Subscription;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{spawn_runner, FromRunner, PluginHandle, RunnerSettings};
use crate::chat::Origin;
use crate::config::PluginSpec;

/// The runner settings for the plugin at an index, with what every plugin shares filled in.
pub type MakeSettings = Box<dyn Fn(usize, PluginSpec) -> RunnerSettings + Send + Sync>;

/// One plugin, as the router sees it.
#[derive(Debug)]
pub struct Slot {
    /// The handle on its runner.
    pub handle: PluginHandle,
    /// Its configuration, as it was started.
    pub spec: PluginSpec,
    /// The plugin as a sender of lines, for the connection's per-sender queue.
    pub origin: Origin,
    /// What it subscribed to in its latest hello (nothing once removed).
    pub subscriptions: Vec<Subscription>,
    /// Whether its first start has ended, registered or not (see the router's
    /// `register_in_order`).
    pub started: bool,
    /// Whether a reload removed it: its runner is stopping or gone, and nothing is routed to it.
    pub removed: bool,
}

/// Every plugin slot, and what it takes to start another.
pub struct Plugins {
    slots: Vec<Slot>,
    make: MakeSettings,
    router: mpsc::Sender<FromRunner>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Plugins {
    /// Starts a runner for each of `specs`, in order.
    pub fn start(
        specs: &[PluginSpec],
        make: MakeSettings,
        router: mpsc::Sender<FromRunner>,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> Plugins {
        let mut plugins = Plugins {
            slots: Vec::new(),
            make,
            router,
            shutdown,
            tracker,
        };
        for spec in specs {
            plugins.add(spec.clone());
        }
        plugins
    }

    /// Starts a runner for `spec` in a new slot, and returns its index.
    pub fn add(&mut self, spec: PluginSpec) -> usize {
        let index = self.slots.len();
        let handle = spawn_runner(
            (self.make)(index, spec.clone()),
            self.router.clone(),
            self.shutdown.clone(),
            &self.tracker,
        );
        self.slots.push(Slot {
            origin: handle.origin(),
            handle,
            spec,
            subscriptions: Vec::new(),
            started: false,
            removed: false,
        });
        index
    }

    /// Stops the plugin at `index` for good and routes nothing more to it.
    pub fn remove(&mut self, index: usize) {
        if let Some(slot) = self.slots.get_mut(index) {
            slot.handle.remove();
            slot.removed = true;
            slot.subscriptions.clear();
        }
    }

    /// Every slot ever used, removed ones included.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no plugin was ever started.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The slot at `index`, removed or not.
    pub fn get(&self, index: usize) -> Option<&Slot> {
        self.slots.get(index)
    }

    /// The slot at `index`, removed or not, to change.
    pub fn get_mut(&mut self, index: usize) -> Option<&mut Slot> {
        self.slots.get_mut(index)
    }

    /// Every slot, removed ones included, with its index.
    pub fn all(&self) -> impl Iterator<Item = (usize, &Slot)> {
        self.slots.iter().enumerate()
    }

    /// The plugins that are configured now (not removed), in slot order, with their indexes.
    pub fn live(&self) -> impl Iterator<Item = (usize, &Slot)> {
        self.all().filter(|(_, s)| !s.removed)
    }

    /// The configured plugin named `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.live()
            .find(|(_, s)| s.handle.name.eq_ignore_ascii_case(name))
            .map(|(i, _)| i)
    }

    /// The names of the configured plugins, in slot order.
    pub fn names(&self) -> Vec<String> {
        self.live().map(|(_, s)| s.handle.name.clone()).collect()
    }

    /// Whether every slot before `index` has finished its first start.
    pub fn started_before(&self, index: usize) -> bool {
        self.slots.iter().take(index).all(|s| s.started)
    }
}
