//! Command line of the `frpc` binary.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use frp_runtime::logging::LogFormat;

/// frp-quic client: publishes local services through an frps server over mutual-TLS QUIC.
#[derive(Debug, Parser)]
#[command(name = "frpc", version, about, long_about = None)]
#[command(
    after_help = "The client reconnects by itself whenever the server is unreachable and \
    stops only when the server refuses its certificate or version. SIGHUP rereads the config \
    file (as `frpc reload` does).\nLog levels come from RUST_LOG (e.g. RUST_LOG=frpc=debug). \
    Config errors exit with status 64."
)]
pub struct Cli {
    /// Config file (frp key names: serverAddr, serverPort, transport.tls.*, [[proxies]]).
    #[arg(
        short,
        long,
        value_name = "FILE",
        default_value = "frpc.toml",
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
    /// Without a subcommand, frpc runs the client.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands. `status` and `reload` read `[webServer]` from the config file and call the
/// running frpc's admin API (exit status: 0 done, 1 the API could not be reached or refused,
/// 64 the config file has no usable `[webServer]`); `kubeconfig` writes a file.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the server connection and every proxy of the running frpc.
    Status(Output),
    /// Make the running frpc reread its config file (as SIGHUP does) and show what changed.
    Reload(Output),
    /// Write a kubeconfig that reaches a private cluster's apiserver through the tunnel.
    #[command(long_about = crate::kubeconfig::LONG_HELP)]
    Kubeconfig(Box<crate::kubeconfig::KubeconfigArgs>),
}

/// How a subcommand prints its answer.
#[derive(Debug, Args)]
pub struct Output {
    /// Print the API's JSON answer instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn cli_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
