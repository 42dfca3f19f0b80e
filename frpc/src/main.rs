//! The `frpc` binary: parse arguments, load config, wire signals, run the library.

use std::process::ExitCode;

use clap::Parser as _;
use frpc::cli::{Cli, Command};
use frpc::{Client, ClientSettings};
use tokio_util::sync::CancellationToken;

/// Exit status when the server refuses this client for good.
const EXIT_REFUSED: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    frp_runtime::logging::init(cli.log_format);
    if let Some(Command::Kubeconfig(args)) = cli.command {
        return frpc::kubeconfig::main(args);
    }
    let load = ClientSettings::from_file;
    frp_runtime::program::run_with_config(
        &cli.config,
        cli.check,
        cli.threads,
        load,
        |settings| async {
            match run(settings).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(frpc::ClientError::Permanent(reason)) => {
                    eprintln!("error: {reason}");
                    ExitCode::from(EXIT_REFUSED)
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        },
    )
}

async fn run(settings: ClientSettings) -> Result<(), frpc::ClientError> {
    let token = CancellationToken::new();
    frp_runtime::shutdown::cancel_on_signals(token.clone()).map_err(anyhow::Error::from)?;
    let client = Client::new(settings)?;
    frp_runtime::notify::ready();
    client.run(token).await
}
