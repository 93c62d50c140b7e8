//! `hamper-karma`: the karma plugin, run by the hamper supervisor.

use std::process::ExitCode;

fn main() -> ExitCode {
    hamper_protocol::sdk::run(hamper_karma::Karma::default())
}
