//! The `hamper-sed` plugin binary: hands [`SedPlugin`] to the SDK's serve loop on stdin/stdout.

use std::process::ExitCode;

use hamper_sed::SedPlugin;

fn main() -> ExitCode {
    hamper_protocol::sdk::run(SedPlugin::default())
}
