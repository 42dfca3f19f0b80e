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
    raise_open_file_limit();
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(serve(settings)),
        Err(e) => {
            eprintln!("error: starting runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Raises the soft limit on open files to the hard limit.
///
/// Every tunneled connection holds a socket on each end, so the common default soft limit of
/// 1,024 would cap a server at about a thousand connections; the hard limit (often 524,288
/// under systemd) is what the administrator actually allows. Go programs, frp among them, do
/// the same at startup. Failing to raise it is not fatal: the server runs with what it has.
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open file limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open file limit"),
    }
}
