//! `--wan`: frp-quic through an emulated WAN link between frpc and frps, one congestion
//! controller after another, with targets for each figure. See bench/README.md.
//!
//! The link is a userspace UDP relay ([`relay`]) whose arithmetic ([`link`]) is tested
//! without clocks; [`alone`] checks the relay keeps up before anything is measured through
//! it; [`figures`] measures; [`report`] writes the tables and the files.

mod alone;
mod figures;
mod lane;
pub mod link;
pub mod relay;
mod report;
mod results;

use std::future::Future;
use std::path::Path;

use anyhow::{bail, Result};
use serde::Serialize;

use self::link::Shape;
use self::relay::{kernel_udp_errors, WanLink};
use self::results::{CcResult, Fairness, FigureLink, WanReport};
use crate::meta::Meta;
use crate::peers::{Ctx, PeerKind, Tunnel};
use crate::targets::{Ports, Targets};

/// Seconds of UDP blasted through the relay alone.
const ALONE_SECS: u64 = 3;
/// Pings through the link alone for its round trip.
const RTT_PINGS: usize = 50;

/// The congestion controller of both ends (`transport.quic.congestionControl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cc {
    Bbr,
    Cubic,
    Newreno,
    /// The key left out: the build's own default (BBR since the key exists), or a build
    /// without the key.
    Default,
}

impl Cc {
    /// The name in the tables and in the config files.
    pub fn name(self) -> &'static str {
        match self {
            Cc::Bbr => "bbr",
            Cc::Cubic => "cubic",
            Cc::Newreno => "newreno",
            Cc::Default => "default",
        }
    }

    /// The lines under `[transport.quic]` that choose it.
    fn quic_lines(self) -> String {
        match self {
            Cc::Default => String::new(),
            cc => format!("congestionControl = \"{}\"\n", cc.name()),
        }
    }
}

/// The WAN mode's flags.
#[derive(Debug, clap::Args)]
pub struct WanOpts {
    /// Measure frp-quic through an emulated WAN link (the flags below) instead of the
    /// loopback comparison.
    #[arg(long)]
    pub wan: bool,
    /// Round-trip time of the link, milliseconds (half each way).
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u64).range(0..=2_000))]
    wan_rtt_ms: u64,
    /// Random loss in each direction, percent.
    #[arg(long, default_value_t = 1.0)]
    wan_loss: f64,
    /// Bottleneck rate in each direction, Mbit/s.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    wan_rate_mbit: u64,
    /// Drop-tail queue before each bottleneck, bytes [default: one BDP, rate × RTT].
    #[arg(long)]
    wan_queue_bytes: Option<u64>,
    /// Congestion controllers to measure, one tunnel each.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "bbr,cubic,newreno"
    )]
    wan_cc: Vec<Cc>,
    /// The two controllers sharing the bottleneck in the fairness figure.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "bbr,cubic")]
    wan_fair: Vec<Cc>,
    /// Seconds of each bulk transfer.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(3..=600))]
    wan_duration: u64,
    /// Bursts of 20 concurrent new connections for the time to first byte (1,000 samples by
    /// default: the p90 of 100 moved by a tenth of an RTT from run to run).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=100))]
    wan_ttfb_rounds: u64,
    /// Seed of the link's random loss.
    #[arg(long, default_value_t = 1)]
    wan_seed: u64,
}

/// The link and the run's knobs, as recorded in the results.
#[derive(Debug, Clone, Serialize)]
pub struct WanSettings {
    pub rtt_ms: u64,
    pub loss_pct: f64,
    pub rate_mbit: u64,
    pub queue_bytes: u64,
    pub duration_s: u64,
    pub ttfb_rounds: usize,
    pub seed: u64,
    pub controllers: Vec<Cc>,
    pub fair: [Cc; 2],
}

impl WanSettings {
    fn parse(o: &WanOpts) -> Result<Self> {
        if !(0.0..100.0).contains(&o.wan_loss) {
            bail!("--wan-loss is a percentage from 0 to below 100");
        }
        let [a, b] = o.wan_fair[..] else {
            bail!("--wan-fair takes two controllers, e.g. bbr,cubic");
        };
        let bdp = o.wan_rate_mbit * 1_000_000 / 8 * o.wan_rtt_ms / 1_000;
        Ok(Self {
            rtt_ms: o.wan_rtt_ms,
            loss_pct: o.wan_loss,
            rate_mbit: o.wan_rate_mbit,
            queue_bytes: o.wan_queue_bytes.unwrap_or(bdp).max(1),
            duration_s: o.wan_duration,
            ttfb_rounds: usize::try_from(o.wan_ttfb_rounds)?,
            seed: o.wan_seed,
            controllers: o.wan_cc.clone(),
            fair: [a, b],
        })
    }

    /// Each direction of the link.
    pub fn shape(&self) -> Shape {
        Shape {
            rate_bps: self.rate_mbit * 1_000_000,
            queue_bytes: self.queue_bytes,
            delay_ns: self.rtt_ms * 1_000_000 / 2,
            loss: self.loss_pct / 100.0,
        }
    }
}

/// The whole WAN run: the link alone, every controller, the fairness figure, the files.
/// Returns whether a figure failed.
pub async fn run(opts: &WanOpts, ctx: &Ctx, workspace: &Path, out_dir: &Path) -> Result<bool> {
    let settings = WanSettings::parse(opts)?;
    if let Some(reason) = ctx.missing(PeerKind::FrpQuic) {
        bail!("frp-quic cannot run: {reason}");
    }
    let started = crate::utc_now();
    let meta = Meta::collect(workspace, ctx.rathole.as_deref());
    let mut targets = Targets::start(&ctx.dir, 0).await?;
    let mut report = WanReport::new(started.0, settings, meta);
    report.loadavg.push(loadavg());
    let steal_before = crate::steal::now();
    link_alone(&mut report).await;
    for cc in report.settings.controllers.clone() {
        let result = per_cc(ctx, &mut targets, cc, &report.settings).await;
        report.controllers.push(result);
    }
    report.fairness = Some(fairness(ctx, &targets, &report.settings).await);
    drop(targets);
    report.loadavg.push(loadavg());
    if let (Ok(before), Ok(after)) = (steal_before, crate::steal::now()) {
        report.steal_pct = crate::steal::percent(before, after);
    }
    println!("{}", report::tables(&report));
    let base = format!("{}-{}-wan", started.1, report.meta.hostname);
    let md = crate::report::write_pair(out_dir, &base, &report::markdown(&report), &report)?;
    println!("Written: {} and .json", md.display());
    Ok(report.has_failures())
}

/// The relay's own capacity, then the round trip through the link.
async fn link_alone(report: &mut WanReport) {
    let shape = report.settings.shape();
    eprintln!("== wan: the relay alone ({ALONE_SECS} s of UDP above its rate, no loss)");
    let blast = alone::blast(shape, ALONE_SECS).await;
    report.relay_alone = report.keep("relay alone", blast);
    if let Some(a) = &report.relay_alone {
        eprintln!(
            "   offered {:.0} Mbit/s, delivered {:.1} of {:.0}",
            a.offered_mbit, a.delivered_mbit, a.configured_mbit
        );
    }
    let rtt = alone::rtt(shape, RTT_PINGS).await;
    report.rtt = report.keep("round trip through the link", rtt);
}

/// One controller: a tunnel through a fresh link, bulk up and down, the new-connection
/// bursts, the pings beside a download.
async fn per_cc(ctx: &Ctx, targets: &mut Targets, cc: Cc, s: &WanSettings) -> CcResult {
    eprintln!("== wan: frp-quic with congestion control {}", cc.name());
    let mut r = CcResult::new(cc);
    let link = match WanLink::start(s.shape(), s.seed) {
        Ok(link) => link,
        Err(e) => return r.failed("link", e),
    };
    let tunnel = match Tunnel::start_wan(ctx, targets.ports, &link, &cc.quic_lines()).await {
        Ok(tunnel) => tunnel,
        Err(e) => return r.failed("start", e),
    };
    let ports = tunnel.ports;
    link.take_stats(); // the setup's traffic is no figure's
    for (reverse, what) in [(false, "bulk up"), (true, "bulk down")] {
        let bulk = figures::bulk(ports.iperf, reverse, s.duration_s);
        let (mbit, fl) = measured(&link, what, bulk).await;
        let failed = mbit.is_err();
        let mbit = r.keep(what, fl, mbit);
        if failed {
            if let Err(e) = targets.restart_iperf().await {
                r.errors.push(format!("restart iperf3 server: {e:#}"));
            }
        }
        eprintln!("   {what}: {} Mbit/s", crate::report::num(mbit));
        *(if reverse {
            &mut r.bulk_down_mbit
        } else {
            &mut r.bulk_up_mbit
        }) = mbit;
    }
    let (ttfb, fl) = measured(
        &link,
        "ttfb",
        figures::ttfb_bursts(ports.nginx, s.ttfb_rounds),
    )
    .await;
    r.ttfb = r.keep("ttfb", fl, ttfb);
    let pings = figures::pings_beside_bulk(ports.echo, ports.iperf, s.duration_s);
    let (pings, fl) = measured(&link, "pings beside bulk down", pings).await;
    r.pings = r.keep("pings", fl, pings);
    if let Some(e) = r.pings.as_ref().and_then(|p| p.bulk_error.clone()) {
        r.errors.push(format!("bulk beside the pings: {e}"));
    }
    r
}

/// Two tunnels (their own frps and frpc each, with controllers `s.fair`) through one link,
/// each with a bulk transfer, up and then down.
async fn fairness(ctx: &Ctx, targets: &Targets, s: &WanSettings) -> Fairness {
    let [a, b] = s.fair;
    eprintln!(
        "== wan: {} and {} sharing the bottleneck",
        a.name(),
        b.name()
    );
    let mut f = Fairness::new(s.fair);
    let dir = ctx.dir.join("targets-fair");
    let started = async {
        std::fs::create_dir_all(&dir)?;
        let port = crate::procs::free_port()?;
        let iperf = crate::targets::start_iperf(&dir, port).await?;
        let link = WanLink::start(s.shape(), s.seed)?;
        let first = Tunnel::start_wan(ctx, targets.ports, &link, &a.quic_lines()).await?;
        let second_targets = Ports {
            iperf: port,
            ..targets.ports
        };
        let second = Tunnel::start_wan(ctx, second_targets, &link, &b.quic_lines()).await?;
        anyhow::Ok((iperf, link, first, second))
    };
    let (_iperf, link, first, second) = match started.await {
        Ok(parts) => parts,
        Err(e) => return f.failed(e),
    };
    link.take_stats();
    for (reverse, what) in [(false, "shared up"), (true, "shared down")] {
        let ports = [first.ports.iperf, second.ports.iperf];
        let (run, fl) = measured(&link, what, figures::shared(ports, reverse, s.duration_s)).await;
        f.errors
            .extend(run.errors.iter().map(|e| format!("{what}: {e}")));
        eprintln!(
            "   {what}: {} {} / {} {} Mbit/s",
            a.name(),
            crate::report::num(run.mbit[0]),
            b.name(),
            crate::report::num(run.mbit[1])
        );
        f.runs.push(run);
        f.link.push(fl);
    }
    drop((first, second));
    f
}

/// The first three fields of /proc/loadavg.
fn loadavg() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `figure` and takes the link's counters over it (and the kernel's UDP buffer errors,
/// which would be losses outside the emulated link).
async fn measured<T>(
    link: &WanLink,
    what: &str,
    figure: impl Future<Output = T>,
) -> (T, FigureLink) {
    let kernel_before = kernel_udp_errors();
    link.take_stats();
    let value = figure.await;
    let stats = link.take_stats();
    let kernel = match (kernel_before, kernel_udp_errors()) {
        (Some(b), Some(a)) => Some((a.0 - b.0, a.1 - b.1)),
        _ => None,
    };
    let fl = FigureLink {
        figure: what.into(),
        stats,
        kernel_rcvbuf_errors: kernel.map(|k| k.0),
        kernel_sndbuf_errors: kernel.map(|k| k.1),
    };
    (value, fl)
}
