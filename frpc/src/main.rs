//! The `frpc` binary: parse arguments, load config, wire signals, run the library.

use std::path::Path;
use std::process::ExitCode;

use clap::Parser as _;
use frpc::cli::{Cli, Command};
use frpc::command::Call;
use frpc::ClientSettings;

// The global allocator: see the `[features]` of Cargo.toml and the README's "Memory after
// load" for the measurements that chose it.
#[cfg(all(feature = "jemalloc", feature = "mimalloc"))]
compile_error!("choose one allocator: the features `jemalloc` and `mimalloc` exclude each other");
#[cfg(all(feature = "jemalloc", target_os = "linux"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
#[cfg(all(feature = "mimalloc", not(feature = "jemalloc")))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit status when the server refuses this client for good.
const EXIT_REFUSED: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    frp_runtime::logging::init(cli.log_format);
    match cli.command {
        Some(Command::Kubeconfig(args)) => return frpc::kubeconfig::main(*args),
        Some(Command::Status(o)) => return frpc::command::run(Call::Status, o.json, &cli.config),
        Some(Command::Reload(o)) => return frpc::command::run(Call::Reload, o.json, &cli.config),
        None => {}
    }
    let load = ClientSettings::from_file;
    frp_runtime::program::run_with_config(
        &cli.config,
        cli.check,
        cli.threads,
        load,
        |settings| async {
            match run(&cli.config, settings).await {
                Ok(()) => ExitCode::SUCCESS,
                // The library has logged the reason once already (at error level).
                Err(frpc::ClientError::Permanent(_)) => ExitCode::from(EXIT_REFUSED),
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        },
    )
}

/// The client with its admin API; signals: SIGINT/SIGTERM stop it, SIGHUP rereads `config`.
async fn run(config: &Path, settings: ClientSettings) -> Result<(), frpc::ClientError> {
    frpc::program::run(config, settings).await
}
