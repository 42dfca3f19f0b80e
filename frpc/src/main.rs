//! The `frpc` binary: parse arguments, load config, wire signals, run the library.

use std::path::Path;
use std::process::ExitCode;

use clap::Parser as _;
use frpc::cli::{Cli, Command};
use frpc::command::Call;
use frpc::ClientSettings;

frp_runtime::global_allocator!();

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
