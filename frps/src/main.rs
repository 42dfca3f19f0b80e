//! The `frps` binary: parse arguments, load config, wire signals, run the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser as _;
use frp_admin::{AdminServer, Handler};
use frp_runtime::shutdown::{log_ignored, Signal};
use frps::cli::{CaCommand, CaRevoke, Cli, Command};
use frps::{Server, ServerSettings};
use tokio_util::sync::CancellationToken;

frp_runtime::global_allocator!();

fn main() -> ExitCode {
    let cli = Cli::parse();
    frp_runtime::logging::init(cli.log_format);
    match cli.command {
        Some(Command::Ca(ca)) => run_ca(ca),
        Some(Command::Status(a)) => frps::status::run(a.json, &cli.config),
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
                 frps.toml names that file; clients using the certificate are then disconnected \
                 (POST /api/v1/revocations on the admin API writes and applies in one step)"
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
    let config = cli.config.clone();
    frp_runtime::program::run_with_config(
        &cli.config,
        cli.check,
        cli.threads,
        load,
        |settings| async {
            match run(config, settings).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "frps failed");
                    ExitCode::FAILURE
                }
            }
        },
    )
}

/// The server, its admin server (`[webServer]`) and a reload of `config` on SIGHUP, until
/// SIGINT or SIGTERM (a second one exits at once).
async fn run(config: PathBuf, settings: ServerSettings) -> anyhow::Result<()> {
    let token = CancellationToken::new();
    let web = settings.web.clone();
    let server = Server::bind(settings)?;
    let api = server.api(Some(config))?;
    let admin = match web {
        Some(web) => {
            api.keep_history();
            let metrics = web.prometheus.then(|| api.metrics_registry());
            let handler: Arc<dyn Handler> = Arc::clone(&api) as Arc<dyn Handler>;
            Some(AdminServer::bind(web, handler, metrics)?)
        }
        None => None,
    };
    let reload = frp_runtime::shutdown::reload_on_poke(token.clone(), move || {
        let api = Arc::clone(&api);
        async move { api.reload().await.map(drop).map_err(|e| e.message) }
    });
    frp_runtime::shutdown::handle_signals(token.clone(), move |signal| match signal {
        // A reload already waiting covers this one too.
        Signal::Hangup => {
            let _ = reload.try_send(());
        }
        Signal::User1 | Signal::User2 => log_ignored(signal, "frps gives it no meaning"),
    })?;
    frp_runtime::notify::ready();
    let stop_admin = CancellationToken::new();
    let admin = admin.map(|a| tokio::spawn(a.run(stop_admin.clone())));
    let result = server.run(token).await;
    stop_admin.cancel();
    if let Some(task) = admin {
        let _ = task.await;
    }
    result
}
