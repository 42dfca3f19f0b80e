//! The `frps` binary: parse arguments, load config, wire signals, run the library.

use std::process::ExitCode;

use clap::Parser as _;
use frps::cli::{CaCommand, Cli, Command};
use frps::{Reloader, Server, ServerSettings};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let cli = Cli::parse();
    frp_runtime::logging::init(cli.log_format);
    match cli.command {
        Some(Command::Ca(ca)) => run_ca(ca),
        None => serve(&cli),
    }
}

fn run_ca(cmd: CaCommand) -> ExitCode {
    let result = match cmd {
        CaCommand::Init(a) => frp_certs::init_ca_dir(&a.dir, &a.names, a.force).map(|p| {
            println!("wrote {}", p.ca_cert.display());
            println!("wrote {} (private, mode 0600)", p.ca_key.display());
            println!("wrote {}", p.server_cert.display());
            println!("wrote {} (private, mode 0600)", p.server_key.display());
        }),
        CaCommand::Issue(a) => {
            frp_certs::issue_client_in_dir(&a.dir, &a.name, a.force).map(|(crt, key)| {
                println!("wrote {}", crt.display());
                println!("wrote {} (private, mode 0600)", key.display());
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", frp_runtime::config::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

fn serve(cli: &Cli) -> ExitCode {
    let load = ServerSettings::from_file;
    frp_runtime::program::run_with_config(
        &cli.config,
        cli.check,
        cli.threads,
        load,
        |settings| async {
            match run(settings).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "frps failed");
                    ExitCode::FAILURE
                }
            }
        },
    )
}

async fn run(settings: ServerSettings) -> anyhow::Result<()> {
    let token = CancellationToken::new();
    frp_runtime::shutdown::cancel_on_signals(token.clone())?;
    let server = Server::bind(settings)?;
    reload_on_sighup(server.reloader())?;
    frp_runtime::notify::ready();
    server.run(token).await
}

/// Rereads the revocation list on every SIGHUP.
fn reload_on_sighup(reloader: Reloader) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            if let Err(e) = reloader.reload() {
                tracing::error!(error = %e, "revocation list not reloaded; the old one stays in force");
            }
        }
    });
    Ok(())
}
