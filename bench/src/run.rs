//! One benchmark run: the targets once, then every peer in turn, each from a fresh start.
//!
//! Per peer: the idle-connection memory figures on a freshly started tunnel; then, on a new
//! one, time to first byte, wrk and iperf3 (with the CPU the tunnel used), then on that same
//! tunnel, once the load has ended, resident memory idle and with idle connections that each
//! carried one `GET /1k`; for frp-quic
//! (with or without its control plane) finally the time to first byte with the delay relay
//! between frpc and frps.

use std::time::Duration;

use anyhow::Result;

use crate::idle::{Exchange, Held};
use crate::peers::{Ctx, PeerKind, Tunnel};
use crate::probe::ttfb;
use crate::results::{AfterLoad, IdleFigures, IperfFigure, PeerResult, RssPoint, Settings};
use crate::targets::Targets;
use crate::tools::{iperf, iperf_busy, wrk, IperfRun, WrkRun};

/// Pings through the delay relay alone, for its own round trip.
const RELAY_PINGS: usize = 20;
/// How long an iperf3 test waits for the server to finish the previous one.
const BUSY_WAIT: Duration = Duration::from_secs(15);
/// QUIC Initials a second of the flood frpc connects through.
pub const FLOOD_RATE: u32 = 6_000;

/// Measures `kind`; every failure is recorded in the result instead of ending the run.
pub async fn bench_peer(
    ctx: &Ctx,
    targets: &mut Targets,
    kind: PeerKind,
    settings: &Settings,
) -> PeerResult {
    let mut result = PeerResult {
        peer: kind.name().into(),
        ..PeerResult::default()
    };
    if let Some(reason) = ctx.missing(kind) {
        eprintln!("== {}: skipped: {reason}", kind.name());
        result.skipped = Some(reason);
        return result;
    }
    let variant = ctx.variant.is_some();
    if kind.is_frp() {
        result.link_order = Some(crate::meta::link_order(&ctx.bin_dir));
    }
    if kind == PeerKind::FrpQuic && !variant {
        connect_phase(ctx, targets, &mut result).await;
    }
    if settings.connect_only {
        return result;
    }
    if kind != PeerKind::Direct {
        eprintln!("== {}: idle connections", kind.name());
        match Tunnel::start(kind, ctx, targets.ports, None).await {
            Ok(mut tunnel) => {
                let idle = idle_phase(&mut tunnel, settings.idle_conns).await;
                result.idle = record(&mut result, "idle connections", idle);
                add_scrapes(&mut result, &tunnel);
            }
            Err(e) => note(&mut result, "start", e),
        }
    }
    eprintln!("== {}: traffic", kind.name());
    match Tunnel::start(kind, ctx, targets.ports, None).await {
        Ok(mut tunnel) => traffic_phase(&mut tunnel, targets, settings, &mut result).await,
        Err(e) => note(&mut result, "start", e),
    }
    // The delay relay is UDP: the TCP transport would go around it.
    if kind.is_frp() && kind != PeerKind::FrpQuicTcp && !variant {
        delayed_phase(ctx, targets, kind, settings, &mut result).await;
    }
    result
}

/// Time to first byte with the delay relay between frpc and frps.
async fn delayed_phase(
    ctx: &Ctx,
    targets: &Targets,
    kind: PeerKind,
    settings: &Settings,
    result: &mut PeerResult,
) {
    eprintln!(
        "== {}: time to first byte through the delay relay",
        kind.name()
    );
    let delay = Duration::from_millis(settings.relay_delay_ms);
    let rtt = 2.0 * settings.relay_delay_ms as f64;
    let relay_rtt = crate::relay::measured_rtt_ms(delay, RELAY_PINGS).await;
    result.relay_rtt_ms = record(result, "relay round trip", relay_rtt);
    let delayed = match Tunnel::start(kind, ctx, targets.ports, Some(delay)).await {
        Ok(tunnel) => ttfb(tunnel.ports.nginx, settings.ttfb_samples, rtt).await,
        Err(e) => Err(e),
    };
    result.ttfb_delayed = record(result, "ttfb via relay", delayed);
}

/// Adds the control plane's scrapes on `tunnel` so far to the result (frp-quic+admin only).
fn add_scrapes(result: &mut PeerResult, tunnel: &Tunnel) {
    if let Some(s) = tunnel.scrapes() {
        result.scrapes.get_or_insert_with(Default::default).add(s);
    }
}

/// frpc's connect time, quiet and then under a QUIC Initial flood.
async fn connect_phase(ctx: &Ctx, targets: &Targets, result: &mut PeerResult) {
    eprintln!("== frp-quic: connect time, quiet and under {FLOOD_RATE} QUIC Initials/s");
    let quiet = crate::peers::frp_connect_time(ctx, targets.ports, None).await;
    result.connect_quiet = record(result, "connect (quiet)", quiet);
    let flooded = crate::peers::frp_connect_time(ctx, targets.ports, Some(FLOOD_RATE)).await;
    result.connect_flooded = record(result, "connect under a flood", flooded);
    if let Some(c) = &result.connect_flooded {
        eprintln!(
            "   {:.0} ms under {:.0} Initials/s (quiet: {:.0} ms)",
            c.connect_ms,
            c.initials_per_s,
            result.connect_quiet.map_or(f64::NAN, |q| q.connect_ms)
        );
    }
}

/// Keeps the value, or notes the error (with what was being measured) and keeps `None`.
fn record<T>(result: &mut PeerResult, what: &str, value: Result<T>) -> Option<T> {
    value.map_err(|e| note(result, what, e)).ok()
}

/// Notes that `what` failed, on stderr and in the result.
fn note(result: &mut PeerResult, what: &str, e: anyhow::Error) {
    eprintln!("   {}: {what} failed: {e:#}", result.peer);
    result.errors.push(format!("{what}: {e:#}"));
}

/// RSS idle, then with the two counts of idle connections held open.
async fn idle_phase(tunnel: &mut Tunnel, counts: [usize; 2]) -> Result<IdleFigures> {
    let mut points = vec![rss_point(tunnel, 0, 0)?];
    let mut held = Held::default();
    for target in counts {
        held.open_up_to(tunnel.ports.echo, target).await;
        tunnel.check_running()?;
        points.push(rss_point(tunnel, target, held.len())?);
        eprintln!(
            "   {target} connections: {} held, {} failed",
            held.len(),
            held.failed
        );
    }
    let broken_after = held.broken().await;
    let (first, last) = (points[0], points[points.len() - 1]);
    // Per connection actually held: when some failed to open, the requested count would
    // understate the cost of each.
    let kib_per_conn = (last.held > 0)
        .then(|| (last.total_kib() as f64 - first.total_kib() as f64) / last.held as f64);
    Ok(IdleFigures {
        points,
        failed: held.failed,
        first_error: held.first_error.take(),
        broken_after,
        kib_per_conn,
    })
}

fn rss_point(tunnel: &Tunnel, target: usize, held: usize) -> Result<RssPoint> {
    let (server_kib, client_kib) = tunnel.rss_kib()?.unwrap_or((0, 0));
    let (server_anon_kib, client_anon_kib) = tunnel.anon_kib()?.unwrap_or((0, 0));
    Ok(RssPoint {
        target,
        held,
        server_kib,
        client_kib,
        server_anon_kib,
        client_anon_kib,
    })
}

/// Time to first byte, wrk keep-alive and `Connection: close`, then iperf3.
async fn traffic_phase(
    tunnel: &mut Tunnel,
    targets: &mut Targets,
    s: &Settings,
    result: &mut PeerResult,
) {
    let steal_before = crate::steal::now();
    let ttfb_now = ttfb(tunnel.ports.nginx, s.ttfb_samples, 0.0).await;
    result.ttfb = record(result, "ttfb", ttfb_now);
    let ka = best_wrk(tunnel.ports.nginx, s, false).await;
    result.wrk_keepalive = record(result, "wrk keep-alive", ka);
    let close = best_wrk(tunnel.ports.nginx, s, true).await;
    result.wrk_close = record(result, "wrk Connection: close", close);
    let cpu_before = tunnel.cpu_secs();
    for (streams, reverse) in [(1, false), (1, true), (8, false), (8, true)] {
        let figure = iperf_figure(tunnel, targets, s, streams, reverse, result).await;
        result.iperf_bytes_total += figure.runs.iter().map(|r| r.bytes).sum::<u64>();
        result.iperf.push(figure);
    }
    let cpu = match (cpu_before, tunnel.cpu_secs()) {
        (Ok(Some(before)), Ok(Some(after))) => Some(after - before),
        _ => None,
    };
    result.cpu_s_total = cpu;
    if result.iperf_bytes_total > 0 {
        result.cpu_s_per_gb = cpu.map(|c| c / (result.iperf_bytes_total as f64 / 1e9));
    }
    if let Err(e) = tunnel.check_running() {
        note(result, "after traffic", e);
    }
    let steal = steal_before.and_then(|before| Ok((before, crate::steal::now()?)));
    result.steal_pct = record(result, "host CPU steal", steal)
        .and_then(|(before, after)| crate::steal::percent(before, after));
    if tunnel.server.is_some() {
        let after = after_load_phase(tunnel, s).await;
        result.after_load = record(result, "memory after load", after);
    }
    add_scrapes(result, tunnel);
}

/// Once the traffic has ended (every wrk and iperf3 connection closed): RSS after one second
/// and after `s.settle_s`, then with `s.http_idle_conns` connections held that each carried
/// one `GET /1k` with keep-alive.
async fn after_load_phase(tunnel: &mut Tunnel, s: &Settings) -> Result<AfterLoad> {
    eprintln!("   memory after the load (settling {} s)", s.settle_s);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let at_1s = rss_point(tunnel, 0, 0)?;
    tokio::time::sleep(Duration::from_secs(s.settle_s.saturating_sub(1))).await;
    let settled = rss_point(tunnel, 0, 0)?;
    let mut held = Held::default();
    held.open_with(tunnel.ports.nginx, s.http_idle_conns, Exchange::Http1k)
        .await;
    tunnel.check_running()?;
    let with_http = rss_point(tunnel, s.http_idle_conns, held.len())?;
    eprintln!(
        "   {} HTTP connections: {} held, {} failed",
        s.http_idle_conns,
        held.len(),
        held.failed
    );
    let kib_per_http_conn = (held.len() > 0)
        .then(|| (with_http.total_kib() as f64 - settled.total_kib() as f64) / held.len() as f64);
    Ok(AfterLoad {
        at_1s,
        settled,
        with_http,
        http_failed: held.failed,
        http_first_error: held.first_error.take(),
        http_closed_after: held.closed(),
        kib_per_http_conn,
    })
}

/// Best of `s.runs` wrk runs by requests per second.
async fn best_wrk(port: u16, s: &Settings, close: bool) -> Result<WrkRun> {
    let mut best: Option<WrkRun> = None;
    for _ in 0..s.runs {
        let run = wrk(port, s.duration_s, close).await?;
        if best
            .as_ref()
            .is_none_or(|b| run.req_per_sec > b.req_per_sec)
        {
            best = Some(run);
        }
    }
    best.ok_or_else(|| anyhow::anyhow!("no wrk runs (--runs 0)"))
}

/// `s.runs` iperf3 tests of one configuration; a failed test restarts the iperf3 server.
async fn iperf_figure(
    tunnel: &mut Tunnel,
    targets: &mut Targets,
    s: &Settings,
    streams: u32,
    reverse: bool,
    result: &mut PeerResult,
) -> IperfFigure {
    let mut runs: Vec<IperfRun> = Vec::new();
    for _ in 0..s.runs {
        let what = format!("iperf3 -P {streams}{}", if reverse { " -R" } else { "" });
        match iperf_when_idle(tunnel.ports.iperf, streams, reverse, s.duration_s).await {
            Ok(run) => runs.push(run),
            Err(e) => {
                note(result, &what, e);
                let restarted = targets.restart_iperf().await;
                record(result, "restart iperf3 server", restarted);
            }
        }
    }
    let best_gbps = runs.iter().map(|r| r.gbps).max_by(f64::total_cmp);
    IperfFigure {
        streams,
        reverse,
        best_gbps,
        runs,
    }
}

/// [`iperf`], tried again every half second for up to [`BUSY_WAIT`] while the server is still
/// busy with the previous test.
pub(crate) async fn iperf_when_idle(
    port: u16,
    streams: u32,
    reverse: bool,
    secs: u64,
) -> Result<IperfRun> {
    let deadline = tokio::time::Instant::now() + BUSY_WAIT;
    loop {
        match iperf(port, streams, reverse, secs).await {
            Err(e) if iperf_busy(&e) && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            other => return other,
        }
    }
}
