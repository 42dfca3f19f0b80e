//! The `frpc` binary: parse arguments, load config, wire signals, run the library.

use std::process::ExitCode;

use clap::Parser as _;
use frp_runtime::shutdown::{log_ignored, Signal};
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

async fn run(settings: ClientSettings) -> Result<(), frpc::ClientError> {
    let token = CancellationToken::new();
    frp_runtime::shutdown::handle_signals(token.clone(), on_signal).map_err(anyhow::Error::from)?;
    let client = Client::new(settings)?;
    frp_runtime::notify::ready();
    client.run(token).await
}

/// No signal but SIGINT/SIGTERM stops frpc: a terminal closing (SIGHUP) must not take the
/// tunnel down. Config reload on SIGHUP is not built yet.
fn on_signal(signal: Signal) {
    match signal {
        Signal::Hangup => log_ignored(
            signal,
            "frpc cannot reload its config yet; restart it to apply changes",
        ),
        Signal::User1 | Signal::User2 => log_ignored(signal, "frpc gives it no meaning"),
    }
}
