//! The `frps` binary: parse arguments, load config, wire signals, run the library.

use std::process::ExitCode;

use clap::Parser as _;
use frp_runtime::shutdown::{log_ignored, Signal};
use frps::cli::{CaCommand, CaRevoke, Cli, Command};
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
        CaCommand::Revoke(a) => return revoke(&a),
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

/// `frps ca revoke`: appends the certificate to the list and says how to apply it.
fn revoke(a: &CaRevoke) -> ExitCode {
    let cert = frps::ca_revoke::certificate_path(&a.target, &a.dir);
    let list = a
        .file
        .clone()
        .unwrap_or_else(|| a.dir.join(frps::ca_revoke::DEFAULT_LIST));
    match frps::ca_revoke::revoke(&cert, &list) {
        Ok(r) if r.already => {
            println!(
                "{} is already in {}; nothing written",
                r.subject,
                r.list.display()
            );
            ExitCode::SUCCESS
        }
        Ok(r) => {
            println!("revoked {} (sha256 {})", r.subject, r.fingerprint);
            println!("appended to {}", r.list.display());
            println!(
                "frps applies it on SIGHUP (kill -HUP <frps pid>) when revocationFile in \
                 frps.toml names that file; clients using the certificate are then disconnected"
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
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
    let has_list = settings.revocation_file.is_some();
    let server = Server::bind(settings)?;
    let reloader = server.reloader();
    frp_runtime::shutdown::handle_signals(token.clone(), move |signal| {
        on_signal(signal, &reloader, has_list);
    })?;
    server.run(token).await
}

/// SIGHUP rereads the revocation list; SIGUSR1 and SIGUSR2 have no use yet.
fn on_signal(signal: Signal, reloader: &Reloader, has_list: bool) {
    match signal {
        Signal::Hangup if has_list => {
            if let Err(e) = reloader.reload() {
                tracing::error!(
                    signal = signal.name(),
                    error = %e,
                    "revocation list not reloaded; the old one stays in force"
                );
            }
        }
        Signal::Hangup => log_ignored(signal, "no revocationFile to reload"),
        Signal::User1 | Signal::User2 => log_ignored(signal, "frps gives it no meaning"),
    }
}
