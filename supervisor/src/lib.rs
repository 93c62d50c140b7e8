//! hamper: an IRC bot whose plugins are child processes speaking NDJSON.
//!
//! The supervisor owns the one IRC connection and the database, spawns each plugin as a child
//! process, routes events and commands to them, and restarts a crashed plugin on its own while
//! the connection and the other plugins carry on. The binary (`main.rs`) only parses the
//! command line and calls [`run`].

pub mod acl;
pub mod addressing;
pub mod chat;
pub mod commands;
pub mod config;
pub mod console;
pub mod guard;
pub mod host_call;
pub mod identity;
pub mod irc;
pub mod mask;
pub mod memory;
pub mod outbound;
pub mod plugin;
pub mod queue;
pub mod redact;
pub mod reload;
pub mod router;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::config::Config;
use crate::console::ConsoleOptions;
use crate::plugin::{Plugins, RunnerSettings, StorageSlot};
use crate::router::{RouterCtl, RouterParts};

/// Where the bot talks.
#[derive(Debug, Clone)]
pub enum Frontend {
    /// A real IRC server, as configured.
    Irc,
    /// The terminal: stdin lines in, stdout lines out.
    Console(ConsoleOptions),
}

/// A frontend with what it needs, checked before anything starts.
enum Ready {
    Irc(Box<irc::IrcSettings>),
    Console(ConsoleOptions),
}

/// Options that are not configuration.
#[derive(Debug, Default)]
pub struct RunOptions {
    /// Print every protocol line to stderr.
    pub trace: bool,
    /// The guard each plugin runs under (`None` runs plugins unguarded).
    pub guard: Option<plugin::process::Guard>,
    /// How to read the configuration again for `!reload` and SIGHUP (`None`: not available).
    pub reload: Option<reload::Reload>,
}

/// Why the bot could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration cannot run.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The database could not be opened.
    #[error("failed to open the database {db}: {source}; fix: make sure hamper can create or write it (for SQLite, a writable working directory), or set `db` / DATABASE_URL")]
    Storage {
        /// The redacted URL.
        db: String,
        /// Why.
        #[source]
        source: hamper_storage::StorageError,
    },
    /// Reading the console failed.
    #[error("console i/o failed: {0}")]
    Io(#[from] std::io::Error),
    /// The IRC connection cannot go on (a required SASL login failed).
    #[error(transparent)]
    Irc(#[from] irc::IrcError),
}

/// Room for events from the network waiting for the router: a burst of tens of thousands of
/// lines fits.
const NET_IN_BYTES: usize = 16 * 1024 * 1024;

/// How long plugins get to stop when the bot shuts down, overall.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(15);

/// Runs the whole bot until `shutdown` (or, in console mode, the end of input).
pub async fn run(
    config: Config,
    frontend: Frontend,
    options: RunOptions,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let config = Arc::new(config);
    // The configuration in effect, which a reload replaces; the IRC session reads the channels
    // and owners from it.
    let (published, live_config) = watch::channel(config.clone());
    // Everything the IRC connection needs is checked before any plugin starts.
    let frontend = match frontend {
        Frontend::Irc => {
            config.check_runnable()?;
            Ready::Irc(Box::new(irc::IrcSettings::from_config(
                &config,
                live_config,
            )?))
        }
        Frontend::Console(opts) => Ready::Console(opts),
    };
    for warning in &config.warnings {
        warn!("{warning}");
    }
    let (router_ctl, ctl_rx) = mpsc::channel(64);
    let storage = open_storage(&config, shutdown.clone()).await?;

    let tracker = TaskTracker::new();
    let plugin_shutdown = CancellationToken::new();
    let (runner_tx, runner_rx) = mpsc::channel(1024);
    let (plugin_dir, guard, trace, prefix) = (
        config.plugin_dir.clone(),
        options.guard.clone(),
        options.trace,
        config.command_prefix.clone(),
    );
    let make = Box::new(move |index, spec| {
        let mut settings = RunnerSettings::new(index, spec);
        settings.plugin_dir = plugin_dir.clone();
        settings.guard = guard.clone();
        settings.trace = trace;
        settings.storage = storage.clone();
        settings.command_prefix = prefix.clone();
        settings
    });
    let plugins = Plugins::start(
        &config.plugins,
        make,
        runner_tx,
        plugin_shutdown.clone(),
        tracker.clone(),
    );
    let reload = options.reload.map(|r| match &frontend {
        // What `hamper run` refuses at start, a reload refuses too.
        Ready::Irc(_) => reload::Reload {
            load: Box::new(move || {
                let config = (r.load)()?;
                config.check_runnable()?;
                Ok(config)
            }),
            requests: r.requests,
        },
        Ready::Console(_) => r,
    });

    let (net_in_tx, net_in_rx) = queue::byte_queue(NET_IN_BYTES);
    let (net_out_tx, net_out_rx) = mpsc::channel(1024);
    let router_shutdown = CancellationToken::new();
    let router = tokio::spawn(router::run(
        RouterParts {
            config: published,
            plugins,
            net_in: net_in_rx,
            net_out: net_out_tx,
            runners: runner_rx,
            ctl: ctl_rx,
            reload,
        },
        router_shutdown.clone(),
    ));

    let (ready_tx, ready_rx) = oneshot::channel();
    let _ = router_ctl.send(RouterCtl::WhenReady(ready_tx)).await;
    let longest = config
        .plugins
        .iter()
        .map(|p| p.limits.handshake_timeout)
        .max()
        .unwrap_or_default();
    tokio::select! {
        _ = ready_rx => {}
        _ = tokio::time::sleep(longest + Duration::from_secs(2)) => warn!("plugins are still starting; carrying on"),
        _ = shutdown.cancelled() => {}
    }

    let result = match frontend {
        Ready::Irc(irc_settings) => {
            // A task of its own, so that the socket is served by the runtime's workers rather
            // than handed to and from the thread that blocks on `run`.
            let session = tokio::spawn(irc::run(
                *irc_settings,
                net_in_tx,
                net_out_rx,
                shutdown.clone(),
            ));
            match session.await {
                Ok(result) => result.map_err(RunError::from),
                Err(err) => {
                    tracing::error!(error = %err, "the irc connection task failed");
                    Ok(())
                }
            }
        }
        Ready::Console(opts) => {
            let input = tokio::io::BufReader::new(tokio::io::stdin());
            tokio::select! {
                r = console::run(opts, config.nickname.clone(), input, tokio::io::stdout(), net_in_tx, net_out_rx, router_ctl.clone()) => r.map_err(RunError::from),
                _ = shutdown.cancelled() => Ok(()),
            }
        }
    };

    info!("stopping plugins");
    plugin_shutdown.cancel();
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_DEADLINE, tracker.wait())
        .await
        .is_err()
    {
        warn!("plugins did not all stop within the deadline");
    }
    router_shutdown.cancel();
    let _ = router.await;
    result
}

/// Opens the database. SQLite must open now; PostgreSQL may be down at start, in which case the
/// bot runs and storage requests fail with `unavailable` until a background retry connects.
async fn open_storage(
    config: &Config,
    shutdown: CancellationToken,
) -> Result<StorageSlot, RunError> {
    let url = config.db.expose().to_string();
    let shown = hamper_storage::redact_url(&url);
    let slot = StorageSlot::default();
    match hamper_storage::Storage::open(&url).await {
        Ok(storage) => {
            info!(db = %storage.describe(), "storage ready");
            let _ = slot.set(storage);
            Ok(slot)
        }
        // Only a server can come back by itself; a SQLite file that cannot be opened (a
        // read-only folder, a bad path) needs the operator, so that is an error at once.
        Err(err) if err.is_unavailable() && url.starts_with("postgres") => {
            warn!(db = %shown, error = %err, "database unavailable at start; retrying in the background");
            let later = slot.clone();
            tokio::spawn(async move {
                let backoff = plugin::restart::Backoff {
                    initial: Duration::from_secs(1),
                    max: Duration::from_secs(30),
                };
                let mut attempt = 1;
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff.delay(attempt)) => {}
                    }
                    match hamper_storage::Storage::open(&url).await {
                        Ok(storage) => {
                            info!(db = %storage.describe(), "storage is available");
                            let _ = later.set(storage);
                            return;
                        }
                        Err(err) => {
                            warn!(db = %shown, error = %err, "database still unavailable");
                            attempt += 1;
                        }
                    }
                }
            });
            Ok(slot)
        }
        Err(source) => Err(RunError::Storage { db: shown, source }),
    }
}
