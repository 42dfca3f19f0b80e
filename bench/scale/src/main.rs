//! frp-scale: N real frpc clients against one real frps process, on loopback.
//!
//! Every client is frpc's own [`frpc::Client`] (its session, keep-alives and reconnect loop
//! with backoff and jitter) with a certificate issued at run time by the run's CA; they all
//! live in this process, on one thread, each with its own UDP socket. frps is the release
//! binary, started from a generated frps.toml. The harness measures frps's memory before and
//! with all clients, its CPU while connecting and while idle, and how long the clients take
//! to come back by themselves after frps is SIGKILLed and started again. See README.md.

mod fleet;
mod pki;
mod procfs;
mod report;
mod server;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser;
use frpc::ClientSettings;

use crate::fleet::Fleet;
use crate::procfs::{CpuMeter, HostMeter};
use crate::report::{Memory, Phase, Restart, Results, Settings, Spread};
use crate::server::{Frps, FrpsSpec};

/// Pause before reading frps's memory: after its start, and after the last client connected.
const SETTLE: Duration = Duration::from_secs(2);
/// File descriptors this process needs besides one UDP socket per client.
const SPARE_FDS: u64 = 64;

/// N frpc clients, each its own certificate, against one frps process: memory, CPU,
/// handshakes per second, and the reconnect after a SIGKILL of frps.
#[derive(Debug, Parser)]
#[command(name = "frp-scale")]
struct Args {
    /// Clients to connect.
    #[arg(short = 'n', long, default_value_t = 1000)]
    clients: usize,
    /// Clients between their start and their first session at once while connecting.
    #[arg(long, default_value_t = 32)]
    in_flight: usize,
    /// Of the clients, how many publish one tcp proxy (frps gets an `allowPorts` range).
    #[arg(long, default_value_t = 10)]
    publishers: usize,
    /// Seconds of the idle CPU measurement (keep-alives every 10 s).
    #[arg(long, default_value_t = 20)]
    idle_secs: u64,
    /// frps's `transport.quic.maxHandshakesPerIP`: every client comes from 127.0.0.1, so the
    /// default stands in for clients at many addresses (frps's own default is 32).
    #[arg(long, default_value_t = 1024)]
    handshakes_per_ip: u32,
    /// Give up waiting for the clients to connect (or reconnect) after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
    /// Skip the SIGKILL-and-restart measurement.
    #[arg(long)]
    no_restart: bool,
    /// The frps binary (build it with `cargo build --release -p frps -p frpc`).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/release/frps"))]
    frps: PathBuf,
    /// `RUST_LOG` for frps (its log goes to a file in the temporary directory).
    #[arg(long, default_value = "info")]
    frps_log: String,
    /// Where the JSON result goes.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/results"))]
    out_dir: PathBuf,
    /// Keep the temporary directory (certificates, frps.toml, frps.log) after a good run.
    #[arg(long)]
    keep_temp: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let nofile = rlimit::increase_nofile_limit(u64::MAX).context("raising RLIMIT_NOFILE")?;
    let need = args.clients as u64 + SPARE_FDS;
    if nofile < need {
        bail!(
            "{} clients need {need} open files, the hard limit is {nofile}",
            args.clients
        );
    }
    if !args.frps.is_file() {
        bail!(
            "no frps at {}: run `cargo build --release -p frps -p frpc` first",
            args.frps.display()
        );
    }
    // One thread for all the clients, so that of two cores one stays frps's.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new().prefix("frp-scale-").tempdir()?;
    let outcome = measure(&args, dir.path()).await;
    if outcome.is_err() || args.keep_temp {
        eprintln!("temporary directory kept: {}", dir.keep().display());
    }
    let results = outcome?;
    results.print();
    let path = results.write(&args.out_dir)?;
    println!("\nwrote {}", path.display());
    Ok(())
}

/// The whole run, in `dir`.
async fn measure(args: &Args, dir: &Path) -> anyhow::Result<Results> {
    let date = report::utc_now();
    let host = report::host();
    let pki = pki::Pki::create(&dir.join("certs"))?;
    let spec = frps_spec(args, &pki, dir)?;
    let (clients, cert_issue_secs) = issue(args, &pki, spec.port)?;
    let mut frps = Frps::start(&spec).await?;
    tokio::time::sleep(SETTLE).await;
    let before_kib = procfs::rss_kib(Some(frps.pid()))?;
    let mut fleet = Fleet::default();
    let connect = connect_phase(args, &mut fleet, clients, frps.pid()).await?;
    tokio::time::sleep(SETTLE).await;
    let connected_kib = procfs::rss_kib(Some(frps.pid()))?;
    let harness_rss_kib = procfs::rss_kib(None)?;
    let idle = idle_phase(args, &fleet, frps.pid()).await?;
    let idle_connected_at_end = fleet.connected();
    let mut restart = None;
    let mut after_restart_kib = None;
    if !args.no_restart {
        restart = Some(restart_phase(args, &fleet, &mut frps, &spec).await?);
        tokio::time::sleep(SETTLE).await;
        after_restart_kib = Some(procfs::rss_kib(Some(frps.pid()))?);
    }
    let clients_gave_up = fleet.gave_up();
    fleet.stop().await;
    frps.kill().await?;
    let n = args.clients.max(1) as f64;
    Ok(Results {
        date,
        revision: report::revision(),
        host,
        settings: settings(args),
        cert_issue_secs,
        memory: Memory {
            before_kib,
            connected_kib,
            per_client_kib: connected_kib.saturating_sub(before_kib) as f64 / n,
            after_restart_kib,
        },
        connect,
        idle,
        idle_connected_at_end,
        restart,
        clients_gave_up,
        harness_rss_kib,
    })
}

fn settings(args: &Args) -> Settings {
    Settings {
        clients: args.clients,
        publishers: args.publishers.min(args.clients),
        in_flight: args.in_flight,
        handshakes_per_ip: args.handshakes_per_ip,
        idle_client_streams: pki::IDLE_CLIENT_STREAMS,
        frps_log: args.frps_log.clone(),
    }
}

/// A free port, frps.toml and where frps's log goes.
fn frps_spec(args: &Args, pki: &pki::Pki, dir: &Path) -> anyhow::Result<FrpsSpec> {
    let port = server::free_udp_port()?;
    let config = server::write_config(
        dir,
        &pki.paths,
        port,
        args.handshakes_per_ip,
        args.publishers.min(args.clients),
    )?;
    Ok(FrpsSpec {
        bin: args.frps.clone(),
        config,
        port,
        log: dir.join("frps.log"),
        log_level: args.frps_log.clone(),
    })
}

/// Issues every client's certificate; returns their settings and the seconds it took.
fn issue(args: &Args, pki: &pki::Pki, port: u16) -> anyhow::Result<(Vec<ClientSettings>, f64)> {
    let start = Instant::now();
    let clients = (0..args.clients)
        .map(|i| pki.client(i, port, i < args.publishers))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let secs = start.elapsed().as_secs_f64();
    println!("issued {} client certificates in {secs:.1} s", args.clients);
    Ok((clients, secs))
}

/// Meters of frps's and this process's CPU and of the host's steal, over one phase.
struct Meters {
    frps: CpuMeter,
    own: CpuMeter,
    host: HostMeter,
    start: Instant,
}

impl Meters {
    fn start(frps: u32) -> anyhow::Result<Self> {
        Ok(Self {
            frps: CpuMeter::start(Some(frps))?,
            own: CpuMeter::start(None)?,
            host: HostMeter::start(),
            start: Instant::now(),
        })
    }

    fn phase(&self, per_sec: Option<f64>) -> anyhow::Result<Phase> {
        let (frps, own) = (self.frps.percent()?, self.own.percent()?);
        let (steal_pct, busy) = self.host.percent();
        Ok(Phase {
            secs: self.start.elapsed().as_secs_f64(),
            per_sec,
            frps_cpu_pct: frps,
            harness_cpu_pct: own,
            others_cpu_pct: (busy - frps - own).max(0.0),
            steal_pct,
        })
    }
}

/// Starts every client, `--in-flight` at a time, and waits until all are connected.
async fn connect_phase(
    args: &Args,
    fleet: &mut Fleet,
    clients: Vec<ClientSettings>,
    frps: u32,
) -> anyhow::Result<Phase> {
    println!(
        "connecting {} clients, at most {} in flight",
        clients.len(),
        args.in_flight
    );
    let meters = Meters::start(frps)?;
    fleet.launch(clients, args.in_flight).await?;
    let timeout = Duration::from_secs(args.timeout_secs);
    fleet
        .all_connected(timeout.saturating_sub(meters.start.elapsed()))
        .await?;
    let secs = meters.start.elapsed().as_secs_f64();
    meters.phase(Some(args.clients as f64 / secs.max(1e-3)))
}

/// All clients connected and quiet: frps's CPU over `--idle-secs`.
async fn idle_phase(args: &Args, fleet: &Fleet, frps: u32) -> anyhow::Result<Phase> {
    println!(
        "all {} connected; idle for {} s",
        fleet.len(),
        args.idle_secs
    );
    let meters = Meters::start(frps)?;
    tokio::time::sleep(Duration::from_secs(args.idle_secs)).await;
    meters.phase(None)
}

/// SIGKILL frps, start it again on the same port with the same key, and wait until every
/// client has a new session, by itself.
async fn restart_phase(
    args: &Args,
    fleet: &Fleet,
    frps: &mut Frps,
    spec: &FrpsSpec,
) -> anyhow::Result<Restart> {
    println!("SIGKILL frps, start it again, wait for every client to reconnect");
    let baseline = fleet.sessions();
    let killed = Instant::now();
    frps.kill().await?;
    *frps = Frps::start(spec).await?;
    let restart_secs = killed.elapsed().as_secs_f64();
    let meters = Meters::start(frps.pid())?;
    let timeout = Duration::from_secs(args.timeout_secs);
    let times = fleet.all_renewed(&baseline, killed, timeout).await?;
    Ok(Restart {
        restart_secs,
        noticed: Spread::of(&times.noticed),
        reconnected: Spread::of(&times.renewed),
        noticed_by: times.reasons,
        phase: meters.phase(None)?,
    })
}
