//! Command line of the `frps` binary.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use frp_runtime::logging::LogFormat;

/// frp-quic server: publishes services of frpc clients that connect over mutual-TLS QUIC.
#[derive(Debug, Parser)]
#[command(name = "frps", version, about, long_about = None)]
#[command(
    after_help = "Start here:\n  frps ca init --dir certs --name vps.example.com\n  \
    frps ca issue node1 --dir certs\n  frps -c frps.toml\n  frps status -c frps.toml\n\nSIGHUP rereads the config \
    file. Log levels come from RUST_LOG \
    (e.g. RUST_LOG=frps=debug). Config errors exit with status 64."
)]
pub struct Cli {
    /// Config file (frp key names: bindPort, allowPorts, vhostHTTPPort, allowDomains, transport.tls.*, [[clients]], webServer.*).
    #[arg(
        short,
        long,
        value_name = "FILE",
        default_value = "frps.toml",
        global = true
    )]
    pub config: PathBuf,
    /// Validate the config (including the certificates) and exit.
    #[arg(long)]
    pub check: bool,
    /// Worker threads: 1 (the default) runs everything on one thread, which measured
    /// fastest and leanest for a tunnel endpoint; N > 1 spreads connections over N threads,
    /// 0 over one per CPU core.
    #[arg(long, value_name = "N", env = "FRP_THREADS", default_value_t = frp_runtime::program::DEFAULT_THREADS)]
    pub threads: usize,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Certificate tooling instead of running the server.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make and manage the deployment's certificate authority.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Show the running frps's clients and proxies (asks its admin API, `[webServer]` in
    /// the config file).
    Status(StatusArgs),
}

/// Arguments of `frps status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print the API's JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// `frps ca ...`.
#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create a CA and a server certificate: DIR/ca.crt, ca.key, server.crt, server.key.
    Init(CaInit),
    /// Issue a client certificate whose identity is NAME: DIR/NAME.crt and DIR/NAME.key.
    Issue(CaIssue),
    /// Add a certificate to the revocation list (DIR/revoked.txt); frps applies it on SIGHUP.
    Revoke(CaRevoke),
}

/// Arguments of `frps ca init`.
#[derive(Debug, Args)]
pub struct CaInit {
    /// Directory for the files (created if missing).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// DNS name or IP address clients use to reach the server (repeat for several).
    #[arg(long = "name", value_name = "HOST", required = true)]
    pub names: Vec<String>,
    /// Replace an existing CA. Every certificate it issued stops working.
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `frps ca issue`.
#[derive(Debug, Args)]
pub struct CaIssue {
    /// The client's identity, as `[[clients]] name` in frps.toml refers to it.
    pub name: String,
    /// Directory holding ca.crt and ca.key.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Replace an existing certificate of that name.
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `frps ca revoke`.
#[derive(Debug, Args)]
pub struct CaRevoke {
    /// A client name (its certificate is DIR/NAME.crt) or a certificate file (a path holding
    /// `/`, or ending in .crt or .pem).
    #[arg(value_name = "NAME|FILE")]
    pub target: String,
    /// Directory holding the client certificates and, by default, the list.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// The revocation list to append to, the file frps.toml's revocationFile names
    /// [default: DIR/revoked.txt].
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn cli_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
