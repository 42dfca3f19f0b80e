//! frp-bench: frp-quic measured next to a direct connection, rathole (TCP and TLS) and
//! `ssh -R`, in one run, on loopback; or, with `--wan`, frp-quic alone through an emulated
//! WAN link (delay, loss, a rate-limited bottleneck). See bench/README.md.

mod idle;
mod meta;
mod peers;
mod probe;
mod procs;
mod relay;
mod report;
mod results;
mod run;
mod steal;
mod targets;
mod tools;
mod wan;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use clap::{Parser, Subcommand};

use crate::peers::{Ctx, PeerKind, Variant};
use crate::results::{PeerResult, Report, Settings};
use crate::targets::Targets;

/// Benchmarks frp-quic against a direct connection, rathole and ssh -R on loopback.
///
/// Expects release builds of frps and frpc next to this binary (bench/run builds them).
/// Prints a markdown table and ratios, and writes them with the raw numbers to
/// bench/results/.
#[derive(Debug, Parser)]
#[command(name = "frp-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Internal>,
    #[command(flatten)]
    opts: Options,
}

#[derive(Debug, Subcommand)]
enum Internal {
    /// The echo target of the idle connections (run by the harness itself, as a child).
    #[command(hide = true)]
    EchoTarget {
        #[arg(long)]
        listen: SocketAddr,
    },
}

#[derive(Debug, clap::Args)]
struct Options {
    /// Peers to measure, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "direct,frp-quic,frp-quic-tcp,rathole,rathole-tls,ssh-R"
    )]
    peers: Vec<PeerKind>,
    /// Seconds of each iperf3 and wrk run.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=600))]
    duration: u64,
    /// Runs of each iperf3 and wrk configuration; the best counts.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=20))]
    runs: u32,
    /// The two counts of idle tunneled connections held open for the memory figures.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    idle: Vec<usize>,
    /// Seconds to wait after the load before the after-load memory figures.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    settle: u64,
    /// Idle connections held after the load, each after one `GET /1k` [default: the larger
    /// --idle count].
    #[arg(long)]
    http_idle: Option<usize>,
    /// Also measure frp-quic built or run differently, after the --peers: `LABEL:DIR` takes
    /// frps and frpc from DIR, `LABEL:DIR:KEY=VALUE|KEY2=VALUE2` also sets environment
    /// variables for both (e.g. `arena2:target/release:GLIBC_TUNABLES=glibc.malloc.arena_max=2`).
    /// Shown as the peer `frp-quic LABEL`; repeatable.
    #[arg(long = "frp-variant", value_parser = Variant::parse)]
    frp_variants: Vec<Variant>,
    /// Sequential new connections timed for the time to first byte.
    #[arg(long, default_value_t = 50)]
    ttfb_samples: usize,
    /// Delay the UDP relay adds in each direction between frpc and frps, milliseconds.
    #[arg(long, default_value_t = 20)]
    delay_ms: u64,
    /// Where the .md and .json results go [default: bench/results of this source tree].
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Directory of the release frps and frpc [default: this binary's directory].
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// The rathole binary [default: rathole on the PATH, else ~/.cargo/bin/rathole].
    #[arg(long)]
    rathole: Option<PathBuf>,
    /// Keep the run's temporary directory (configs, logs) even when nothing failed.
    #[arg(long)]
    keep_temp: bool,
    /// Measure only frp-quic's connect time, quiet and under a QUIC Initial flood.
    #[arg(long)]
    connect_only: bool,
    #[command(flatten)]
    wan: wan::WanOpts,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Internal::EchoTarget { listen }) = cli.command {
        return exit(idle::serve_echo(listen).await);
    }
    let Ok(term) = sigterm() else {
        eprintln!("frp-bench: cannot install the SIGTERM handler");
        return ExitCode::FAILURE;
    };
    // Dropping the run future (on a signal) drops every child's guard, which kills it.
    tokio::select! {
        result = bench(&cli.opts) => exit(result),
        _ = tokio::signal::ctrl_c() => interrupted("SIGINT"),
        () = term => interrupted("SIGTERM"),
    }
}

/// Resolves on SIGTERM; the handler is installed before this returns.
#[cfg(unix)]
fn sigterm() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    Ok(async move {
        term.recv().await;
    })
}

/// The benchmark needs Linux tools; elsewhere it only has to build, and there is no SIGTERM.
#[cfg(not(unix))]
fn sigterm() -> std::io::Result<impl Future<Output = ()>> {
    Ok(std::future::pending())
}

fn interrupted(what: &str) -> ExitCode {
    eprintln!("frp-bench: {what}: stopped every child process");
    ExitCode::from(130)
}

fn exit(result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("frp-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The whole run: settings, targets, every peer, the tables and the files. The temporary
/// directory (configs, logs) is kept when something failed.
async fn bench(opts: &Options) -> Result<()> {
    let settings = settings(opts)?;
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("bench/ has a parent")?
        .to_path_buf();
    let tmp = tempfile::Builder::new()
        .prefix("frp-bench-")
        .tempdir()
        .context("create the run's temporary directory")?;
    let ctx = Ctx {
        dir: tmp.path().to_path_buf(),
        bin_dir: bin_dir(opts)?,
        rathole: opts.rathole.clone().or_else(default_rathole),
        variant: None,
    };
    eprintln!("frp-bench: temporary files in {}", ctx.dir.display());
    let out_dir = opts
        .out_dir
        .clone()
        .unwrap_or(workspace.join("bench/results"));
    let measured = if opts.wan.wan {
        wan::run(&opts.wan, &ctx, &workspace, &out_dir).await
    } else {
        measure(opts, &ctx, settings, &workspace, &out_dir).await
    };
    match measured {
        Ok(failed) if !failed && !opts.keep_temp => Ok(()),
        Ok(_) => {
            println!("Logs and configs kept in {}", tmp.keep().display());
            Ok(())
        }
        Err(e) => Err(e.context(format!("logs and configs kept in {}", tmp.keep().display()))),
    }
}

/// Measures every peer, prints the tables and writes the files; true if a figure failed.
async fn measure(
    opts: &Options,
    ctx: &Ctx,
    settings: Settings,
    workspace: &Path,
    out_dir: &Path,
) -> Result<bool> {
    let started = utc_now();
    let meta = meta::Meta::collect(workspace, ctx.rathole.as_deref());
    let mut targets = Targets::start(&ctx.dir, settings.http_idle_conns).await?;
    let mut peers = Vec::new();
    for &kind in &opts.peers {
        peers.push(run::bench_peer(ctx, &mut targets, kind, &settings).await);
    }
    for variant in &opts.frp_variants {
        let ctx = ctx.with_variant(variant.clone());
        let mut result = run::bench_peer(&ctx, &mut targets, PeerKind::FrpQuic, &settings).await;
        result.peer = format!("frp-quic {}", variant.label);
        peers.push(result);
    }
    drop(targets);
    let report = Report {
        started_utc: started.0,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        settings,
        meta,
        peers,
    };
    println!("{}", report::tables(&report));
    let md = report::write_files(out_dir, &started.1, &report)?;
    println!("Written: {} and .json", md.display());
    Ok(report.peers.iter().any(PeerResult::has_failures))
}

fn settings(opts: &Options) -> Result<Settings> {
    let [small, large] = opts.idle[..] else {
        bail!("--idle takes two counts, e.g. 1000,10000");
    };
    if small > large || large == 0 {
        bail!("--idle: the second count must be the larger one and above 0");
    }
    if opts.ttfb_samples == 0 {
        bail!("--ttfb-samples must be at least 1");
    }
    Ok(Settings {
        duration_s: opts.duration,
        runs: opts.runs,
        idle_conns: [small, large],
        settle_s: opts.settle,
        http_idle_conns: opts.http_idle.unwrap_or(large),
        ttfb_samples: opts.ttfb_samples,
        relay_delay_ms: opts.delay_ms,
        connect_only: opts.connect_only,
    })
}

fn bin_dir(opts: &Options) -> Result<PathBuf> {
    if let Some(dir) = &opts.bin_dir {
        return Ok(dir.clone());
    }
    let exe = std::env::current_exe().context("path of this binary")?;
    Ok(exe
        .parent()
        .context("binary has a directory")?
        .to_path_buf())
}

fn default_rathole() -> Option<PathBuf> {
    meta::find_tool("rathole").or_else(|| {
        let home = std::env::var_os("HOME")?;
        let path = Path::new(&home).join(".cargo/bin/rathole");
        path.is_file().then_some(path)
    })
}

/// Now in UTC: (`2025-01-31T12:34:56Z` for the text, `20250131T123456Z` for file names).
fn utc_now() -> (String, String) {
    let t = time::OffsetDateTime::now_utc();
    let (y, mo, d) = (t.year(), u8::from(t.month()), t.day());
    let (h, mi, s) = (t.hour(), t.minute(), t.second());
    (
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"),
        format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z"),
    )
}
