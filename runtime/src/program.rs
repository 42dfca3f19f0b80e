//! The shape both binaries share: load the config, honour `--check`, run on a tokio runtime.

use std::future::Future;
use std::path::Path;
use std::process::ExitCode;

use crate::config::{ConfigError, EXIT_CONFIG};

/// Worker threads the binaries run on unless `--threads` says otherwise.
///
/// One: a current-thread runtime. Measured with `bench/` on loopback (2 cores, iperf3 through
/// the tunnel), it moves 25-40% more bytes per second than the multi-thread runtime at ~15%
/// less CPU per byte, and idles at about 7 MiB instead of 10: one QUIC connection is driven
/// by one task anyway, and a multi-thread runtime adds a cross-thread wake-up to every hop
/// between the connection driver, the endpoint driver and each splice. quinn's own
/// measurements say the same. A server carrying many busy clients on a many-core machine can
/// still spread their connections over cores with `--threads N`.
pub const DEFAULT_THREADS: usize = 1;

/// Loads `config` with `load`; with `check` only reports that it is valid. Otherwise runs
/// `serve` with the settings on a runtime with `threads` workers (see [`runtime`]) and
/// returns its exit code.
///
/// A config error is printed and exits with [`EXIT_CONFIG`] (64).
pub fn run_with_config<S, F>(
    config: &Path,
    check: bool,
    threads: usize,
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
    match runtime(threads) {
        Ok(runtime) => runtime.block_on(serve(settings)),
        Err(e) => {
            eprintln!("error: starting runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A tokio runtime with `threads` workers: 1 is a current-thread runtime (the default, see
/// [`DEFAULT_THREADS`]), more a multi-thread runtime with that many workers, 0 one worker per
/// CPU core.
///
/// # Errors
/// Fails when the operating system refuses the runtime's threads or its I/O driver.
pub fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = match threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        0 => tokio::runtime::Builder::new_multi_thread(),
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
    };
    builder.enable_all().build()
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

#[cfg(test)]
mod tests {
    use super::runtime;

    #[test]
    fn every_thread_count_gives_a_working_runtime() {
        for threads in [0, 1, 2] {
            let rt = runtime(threads).expect("runtime");
            // A spawned task and the timer both run: the runtime has its drivers.
            let got = rt.block_on(async {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                tokio::spawn(async { 7 }).await.expect("task")
            });
            assert_eq!(got, 7, "threads = {threads}");
        }
    }
}
