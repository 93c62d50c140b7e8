//! `hamper-guard -- program args…`: the guard that leads each plugin's process group, as a
//! binary of its own. `hamper __guard` does the same; this one is small, so a guard per plugin
//! costs little memory (the `hamper` binary's relocated data alone is several hundred KiB a
//! process).

use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let argv = match argv.split_first() {
        Some((first, rest)) if first == "--" => rest,
        _ => &argv[..],
    };
    hamper::guard::run_guard(argv)
}
