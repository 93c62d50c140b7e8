//! The `hamper` binary: parses the command line, starts logging, loads the config, and hands
//! over to the library. Exit codes: 0 success, 1 runtime failure, 2 bad configuration or usage.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hamper::config::{Config, ConfigError, KeyError, LogFormat, PluginSpec};
use hamper::console::ConsoleOptions;
use hamper::{redact, Frontend, RunError, RunOptions};
use tokio_util::sync::CancellationToken;

/// `eprintln!` with the configuration's secrets masked ([`redact::eprintln`]).
macro_rules! say {
    ($($arg:tt)*) => {
        redact::eprintln(&format!($($arg)*))
    };
}

#[derive(Debug, Parser)]
#[command(
    name = "hamper",
    version,
    about = "An IRC bot whose plugins are any executable"
)]
struct Cli {
    /// The config file (YAML). Default: ./hamper.conf if it exists.
    #[arg(long, short, global = true, env = "HAMPER_CONFIG")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the bot on IRC, as configured (the default).
    Run,
    /// Run the whole bot against this terminal instead of IRC.
    Console(ConsoleArgs),
    /// Run one plugin alone under the console, for debugging it.
    Plugin {
        /// A plugin name (`karma`) or the path of an executable.
        plugin: String,
        #[command(flatten)]
        console: ConsoleArgs,
    },
    /// Print the resolved configuration with secrets masked, or every problem with its fix.
    CheckConfig,
    /// Apply database migrations and exit.
    Migrate,
    /// Copy karma from an original Hamper database (SQLite or PostgreSQL URL).
    ImportHamper {
        /// The original's database URL, e.g. sqlite:///hamper.db or postgres://…
        #[arg(long)]
        from: String,
    },
    /// Internal: lead a plugin's process group and kill it if the supervisor dies.
    #[command(name = "__guard", hide = true)]
    Guard {
        /// The plugin's program and arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        argv: Vec<String>,
    },
}

#[derive(Debug, clap::Args)]
struct ConsoleArgs {
    /// Who is speaking.
    #[arg(long, default_value = "you")]
    nick: String,
    /// Where.
    #[arg(long, default_value = "#hamper")]
    channel: String,
    /// Print every protocol line, both ways, to stderr.
    #[arg(long)]
    trace: bool,
}

impl ConsoleArgs {
    fn options(&self) -> ConsoleOptions {
        ConsoleOptions {
            nick: self.nick.clone(),
            channel: self.channel.clone(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Guard { argv }) = &cli.command {
        let argv: Vec<String> = argv.iter().skip_while(|a| *a == "--").cloned().collect();
        return hamper::guard::run_guard(&argv);
    }
    let config = match load_config(&cli) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // From here on, nothing written to stderr shows a secret of the configuration.
    redact::mask_on_stderr(config.redactor());
    init_logging(&cli, &config);
    // One thread: the supervisor's work per message is small, and handing it between worker
    // threads cost more than it saved (docs/performance.md). SQLite has threads of its own.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            say!("hamper: failed to start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(dispatch(cli, config));
    // The console's stdin is read on a blocking thread that nothing can interrupt: after a
    // signal, waiting for it would keep the bot alive until someone pressed Enter.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    code
}

fn load_config(cli: &Cli) -> Result<Config, ExitCode> {
    let env: HashMap<String, String> = std::env::vars().collect();
    Config::load(cli.config.as_deref(), &env).map_err(|err| {
        say!("hamper: {err}");
        ExitCode::from(2)
    })
}

/// Logs go to stderr: as text for people, or as one JSON object per line (`log_format: json`)
/// for a log drain. `RUST_LOG` wins over `log_level`, which wins over the default.
fn init_logging(cli: &Cli, config: &Config) {
    // At the console, stdout is the conversation and stderr only what needs attention, plus
    // the plugins' own stderr (someone debugging a plugin wants to see it).
    let default_level = match cli.command {
        Some(Command::Console(_)) | Some(Command::Plugin { .. }) => "warn,plugin=info",
        _ => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        let level = config.log_level.as_deref().unwrap_or(default_level);
        tracing_subscriber::EnvFilter::new(format!("{level},sqlx=warn"))
    });
    let builder = tracing_subscriber::fmt()
        .with_writer(redact::MaskedStderr)
        .with_env_filter(filter);
    match config.log_format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

async fn dispatch(cli: Cli, config: Config) -> ExitCode {
    let mut config = config;
    let guard = std::env::current_exe()
        .ok()
        .map(|exe| hamper::plugin::process::Guard::beside(&exe));
    let (frontend, trace) = match &cli.command {
        None | Some(Command::Run) => (Frontend::Irc, false),
        Some(Command::Console(args)) => (Frontend::Console(args.options()), args.trace),
        Some(Command::Plugin { plugin, console }) => {
            let spec = single_plugin(plugin, &config);
            if console.trace && spec.name != *plugin {
                // The name is also the storage namespace and the config section, which an
                // author running a file by path cannot guess for `seen_short.py`.
                say!(
                    "[{name}] {plugin} runs as the plugin `{name}`: its storage namespace, config section and HAMPER_PLUGIN_NAME",
                    name = spec.name
                );
            }
            config.plugins = vec![spec];
            (Frontend::Console(console.options()), console.trace)
        }
        Some(Command::CheckConfig) => return check_config(&config),
        Some(Command::Migrate) => return migrate(&config).await,
        Some(Command::ImportHamper { from }) => return import(&config, from).await,
        Some(Command::Guard { .. }) => return ExitCode::from(2),
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    // `hamper plugin` runs one plugin without its config entry: there is nothing to reload.
    let reload = match &cli.command {
        Some(Command::Plugin { .. }) => None,
        _ => {
            let (tx, requests) = tokio::sync::mpsc::channel(1);
            let path = cli.config.clone();
            let load = Box::new(move || {
                let env: HashMap<String, String> = std::env::vars().collect();
                Config::load(path.as_deref(), &env)
            });
            Some((tx, hamper::reload::Reload { load, requests }))
        }
    };
    let (hup_tx, reload) = match reload {
        Some((tx, reload)) => (Some(tx), Some(reload)),
        None => (None, None),
    };
    reload_on_sighup(hup_tx);
    let options = RunOptions {
        trace,
        guard,
        reload,
    };
    match hamper::run(config, frontend, options, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(RunError::Config(err)) => {
            say!("hamper: {err}");
            ExitCode::from(2)
        }
        Err(err) => {
            say!("hamper: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The plugin for `hamper plugin NAME|PATH`: a path runs that executable, a name the built-in
/// (or configured) plugin of that name.
fn single_plugin(arg: &str, config: &Config) -> PluginSpec {
    if let Some(spec) = config.plugins.iter().find(|p| p.name == arg) {
        return spec.clone();
    }
    let path = std::path::Path::new(arg);
    if arg.contains('/') || path.is_file() {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let name: String = stem
            .trim_start_matches("hamper-")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let mut spec = PluginSpec::named(if name.is_empty() { "plugin" } else { &name });
        spec.command = Some(script_command(arg));
        spec
    } else {
        PluginSpec::named(arg)
    }
}

/// How to run the file `arg`: itself when it is executable, else its interpreter, known by its
/// extension, followed by it, so that `hamper plugin seen.py` works without `chmod +x`.
fn script_command(arg: &str) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::path::Path::new(arg);
    let program = if arg.contains('/') {
        arg.to_string()
    } else {
        format!("./{arg}")
    };
    let executable = path
        .metadata()
        .is_ok_and(|m| m.permissions().mode() & 0o111 != 0);
    let interpreter = match path.extension().and_then(|e| e.to_str()) {
        Some("py") => Some("python3"),
        Some("js" | "mjs" | "cjs") => Some("node"),
        Some("sh") => Some("sh"),
        _ => None,
    };
    match interpreter {
        Some(interpreter) if !executable => vec![interpreter.to_string(), program],
        _ => vec![program],
    }
}

fn check_config(config: &Config) -> ExitCode {
    for warning in &config.warnings {
        say!("hamper: warning: {warning}");
    }
    // Each plugin's program, as the runner would check it before starting it (and a missing
    // script after an interpreter, which only the plugin's own stderr would reveal).
    let mut errors: Vec<KeyError> = config
        .plugins
        .iter()
        .enumerate()
        .filter_map(|(i, spec)| {
            let err = hamper::plugin::process::check(spec, config.plugin_dir.as_deref()).err()?;
            let (problem, fix) = err.problem_and_fix();
            Some(KeyError {
                key: format!("plugins[{i}] ({})", spec.name),
                problem,
                fix,
            })
        })
        .collect();
    // The CA file, as `hamper run` reads it before connecting.
    if let Some(path) = &config.ssl_ca {
        if let Err(err) = hamper::irc::tls::read_ca_file(path) {
            errors.insert(0, err.key_error());
        }
    }
    // The client certificate and its key, likewise.
    if let (Some(cert), Some(key)) = (&config.ssl_cert, &config.ssl_key) {
        if let Err(err) = hamper::irc::tls::read_client_identity(cert, key) {
            errors.insert(0, err.key_error());
        }
    }
    if !errors.is_empty() {
        say!("hamper: {}", ConfigError { errors });
        return ExitCode::from(2);
    }
    match serde_yaml_ng::to_string(&config.masked()) {
        Ok(yaml) => print!("{yaml}"),
        Err(err) => {
            say!("hamper: failed to print the configuration: {err}");
            return ExitCode::FAILURE;
        }
    }
    if let Err(err) = config.check_runnable() {
        say!(
            "hamper: note: `hamper run` would refuse this configuration:\n  {}",
            err.errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n  ")
        );
    }
    ExitCode::SUCCESS
}

async fn migrate(config: &Config) -> ExitCode {
    match hamper_storage::Storage::migrate(config.db.expose()).await {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            say!(
                "hamper: failed to migrate {}: {err}",
                hamper_storage::redact_url(config.db.expose())
            );
            ExitCode::FAILURE
        }
    }
}

async fn import(config: &Config, from: &str) -> ExitCode {
    let storage = match hamper_storage::Storage::open(config.db.expose()).await {
        Ok(s) => s,
        Err(err) => {
            say!(
                "hamper: failed to open {}: {err}",
                hamper_storage::redact_url(config.db.expose())
            );
            return ExitCode::FAILURE;
        }
    };
    match hamper_storage::import_hamper(from, &storage).await {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            say!(
                "hamper: failed to import from {}: {err}",
                hamper_storage::redact_url(from)
            );
            ExitCode::FAILURE
        }
    }
}

/// SIGHUP asks for a reload, as `!reload` does (a terminal that hangs up no longer stops the
/// bot: SIGTERM or SIGINT does). The handler is in place before this returns, so a SIGHUP that
/// comes early does not kill the bot.
fn reload_on_sighup(requests: Option<tokio::sync::mpsc::Sender<()>>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            match &requests {
                // A full channel means a reload is already waiting, and it reads the file anew.
                Some(tx) => {
                    let _ = tx.try_send(());
                }
                None => tracing::warn!(
                    "SIGHUP received; `hamper plugin` has no config to reload, so it is ignored"
                ),
            }
        }
    });
}

async fn stop_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received; shutting down"),
        _ = int.recv() => tracing::info!("SIGINT received; shutting down"),
    }
    shutdown.cancel();
    // A second signal means "now": no more waiting for plugins to stop. Each plugin's guard
    // sees the supervisor gone within a fraction of a second and kills the plugin's group.
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::warn!("second signal during shutdown; exiting at once (the guards stop the plugins)");
    std::process::exit(1);
}
