//! The shape both binaries share: load the config, honour `--check`, run on a tokio runtime.

use std::future::Future;
use std::path::Path;
use std::process::ExitCode;

use crate::config::{ConfigError, EXIT_CONFIG};

/// Loads `config` with `load`; with `check` only reports that it is valid. Otherwise runs
/// `serve` with the settings on a multi-thread runtime and returns its exit code.
///
/// A config error is printed and exits with [`EXIT_CONFIG`] (64).
pub fn run_with_config<S, F>(
    config: &Path,
    check: bool,
    load: impl FnOnce(&Path) -> Result<S, ConfigError>,
    serve: impl FnOnce(S) -> F,
) -> ExitCode
where
    F: Future<Output = ExitCode>,
{
    let settings = match load(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_CONFIG as u8);
        }
    };
    if check {
        println!("{}: ok", config.display());
        return ExitCode::SUCCESS;
    }
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(serve(settings)),
        Err(e) => {
            eprintln!("error: starting runtime: {e}");
            ExitCode::FAILURE
        }
    }
}
