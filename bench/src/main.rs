//! The `hamper-bench` binary: parses the command line, runs the benchmark (or the floor, its
//! reference responder) and maps failures to exit codes: 0 when the run completed, whatever
//! the figures; 1 when it could not (the bot did not come up, a process failed); 2 for usage.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "hamper-bench",
    about = "Measure `hamper run` end to end against a scripted IRC server on 127.0.0.1",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,
    #[command(flatten)]
    run: hamper_bench::Options,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// The floor: a single-process responder for `!karma NAME` and `s/a/b/`, which the
    /// benchmark starts itself.
    Floor {
        /// The scripted server's port on 127.0.0.1.
        #[arg(long)]
        port: u16,
        /// The SQLite file to read scores from (created with foo = 1).
        #[arg(long)]
        db: PathBuf,
        /// The nick to register.
        #[arg(long, default_value = "floorbot")]
        nick: String,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.mode {
        Some(Mode::Floor { port, db, nick }) => {
            match hamper_bench::floor::serve(port, &db, &nick, hamper_bench::server::CHANNEL).await
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("hamper-bench floor: {err:#}");
                    ExitCode::FAILURE
                }
            }
        }
        None => {
            let report = tokio::select! {
                report = hamper_bench::run(&cli.run) => report,
                _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
            };
            match report.and_then(|r| output(&r, &cli.run)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("hamper-bench: {err:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Prints the table and the JSON, and writes the JSON to `--json`.
fn output(
    report: &hamper_bench::report::Report,
    opts: &hamper_bench::Options,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let json = serde_json::to_string_pretty(report)?;
    println!("{}", report.text());
    println!("{json}");
    if let Some(path) = &opts.json {
        std::fs::write(path, format!("{json}\n"))
            .with_context(|| format!("failed to write {}", path.display()))?;
        println!("\nJSON written to {}", path.display());
    }
    Ok(())
}
