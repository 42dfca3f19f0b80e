//! The WAN mode's markdown: the tables with each figure's target and whether it was met, the
//! relay's counters, the notes.

use std::fmt::Write as _;

use super::figures::{Spread, BURST, PINGERS, PING_BYTES};
use super::lane::LaneStats;
use super::results::{CcResult, Fairness, WanReport};
use crate::report::num;

/// Bulk transfer target, Mbit/s (at least).
const BULK_MIN_MBIT: f64 = 150.0;
/// Time to first byte target, p90 in round trips (at most).
const TTFB_P90_MAX_RTT: f64 = 1.1;
/// Ping targets beside a bulk transfer, ms (at most).
const PING_P50_MAX_MS: f64 = 45.0;
const PING_P99_MAX_MS: f64 = 100.0;

/// A figure, its target and whether it was met.
fn judged(v: Option<f64>, limit: f64, at_least: bool) -> String {
    match v {
        None => "-".into(),
        Some(x) if (x >= limit) == at_least || x == limit => format!("{} met", num(Some(x))),
        Some(x) => format!("{} **not met**", num(Some(x))),
    }
}

/// A target: the limit, and whether a figure must be at least (else at most) that.
type Target = Option<(f64, bool)>;
/// A row's figure for one controller.
type Figure = Box<dyn Fn(&CcResult) -> Option<f64>>;

/// The rows of the figures table; TTFB divided by `rtt_ms`.
fn rows(rtt_ms: f64) -> Vec<(&'static str, Target, Figure)> {
    let ttfb = move |pick: fn(&Spread) -> f64| -> Figure {
        Box::new(move |c| c.ttfb.as_ref().map(|t| pick(t) / rtt_ms))
    };
    let ping = |pick: fn(&Spread) -> f64| -> Figure {
        Box::new(move |c| c.pings.as_ref().map(|p| pick(&p.latency)))
    };
    vec![
        (
            "bulk up, 1 stream (Mbit/s)",
            Some((BULK_MIN_MBIT, true)),
            Box::new(|c| c.bulk_up_mbit),
        ),
        (
            "bulk down, 1 stream (Mbit/s)",
            Some((BULK_MIN_MBIT, true)),
            Box::new(|c| c.bulk_down_mbit),
        ),
        ("TTFB p50 (RTT)", None, ttfb(|t| t.p50_ms)),
        (
            "TTFB p90 (RTT)",
            Some((TTFB_P90_MAX_RTT, false)),
            ttfb(|t| t.p90_ms),
        ),
        ("TTFB p99 (RTT)", None, ttfb(|t| t.p99_ms)),
        (
            "ping p50 beside bulk (ms)",
            Some((PING_P50_MAX_MS, false)),
            ping(|l| l.p50_ms),
        ),
        (
            "ping p99 beside bulk (ms)",
            Some((PING_P99_MAX_MS, false)),
            ping(|l| l.p99_ms),
        ),
        (
            "bulk down beside the pings (Mbit/s)",
            None,
            Box::new(|c| c.pings.as_ref().and_then(|p| p.bulk_mbit)),
        ),
    ]
}

/// The figures table: one row per figure, one column per controller.
fn figures_table(r: &WanReport) -> String {
    let mut out = String::from("| figure | target |");
    let mut rule = String::from("|---|---|");
    for c in &r.controllers {
        let _ = write!(out, " {} |", c.cc.name());
        rule.push_str("---|");
    }
    let _ = write!(out, "\n{rule}\n");
    for (name, target, figure) in rows(r.rtt_ms()) {
        let shown = match target {
            Some((limit, true)) => format!("≥ {limit}"),
            Some((limit, false)) => format!("≤ {limit}"),
            None => "-".into(),
        };
        let _ = write!(out, "| {name} | {shown} |");
        for c in &r.controllers {
            let cell = match target {
                Some((limit, at_least)) => judged(figure(c), limit, at_least),
                None => num(figure(c)),
            };
            let _ = write!(out, " {cell} |");
        }
        out.push('\n');
    }
    out
}

/// The fairness table: each tunnel's Mbit/s and the first one's share.
fn fairness_table(f: &Fairness) -> String {
    let [a, b] = [f.cc[0].name(), f.cc[1].name()];
    let mut out = format!(
        "| direction | {a} Mbit/s | {b} Mbit/s | together | {a}'s share |\n|---|---|---|---|---|\n"
    );
    for run in &f.runs {
        let together = match run.mbit {
            [Some(x), Some(y)] => Some(x + y),
            _ => None,
        };
        let share = run.first_share().map(|s| s * 100.0);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {}% |",
            if run.reverse { "down (-R)" } else { "up" },
            num(run.mbit[0]),
            num(run.mbit[1]),
            num(together),
            num(share)
        );
    }
    out
}

/// The relay's counters: one row per figure.
fn counters_table(r: &WanReport) -> String {
    let mut out = String::from(
        "| tunnel | figure | frpc → frps: datagrams / lost / queue drops | frps → frpc: datagrams \
         / lost / queue drops | sends late, µs: mean → frps / mean → frpc / max | kernel UDP \
         buffer errors |\n|---|---|---|---|---|---|\n",
    );
    let lane = |l: &LaneStats| {
        let c = &l.counters;
        format!("{} / {} / {}", c.offered, c.lost, c.overflow)
    };
    let fairness = r
        .fairness
        .iter()
        .map(|f| (format!("{} + {}", f.cc[0].name(), f.cc[1].name()), &f.link));
    let tunnels = r
        .controllers
        .iter()
        .map(|c| (c.cc.name().to_string(), &c.link));
    for (name, figures) in tunnels.chain(fairness) {
        for fl in figures {
            let s = &fl.stats;
            let late = |l: &LaneStats| l.sends.late_mean_us();
            let max = s
                .to_server
                .sends
                .late_max_us
                .max(s.to_client.sends.late_max_us);
            let kernel = fl.kernel_rcvbuf_errors.zip(fl.kernel_sndbuf_errors);
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} | {:.0} / {:.0} / {max} | {} |",
                fl.figure,
                lane(&s.to_server),
                lane(&s.to_client),
                late(&s.to_server),
                late(&s.to_client),
                kernel.map_or("-".into(), |(rcv, snd)| format!("{rcv} rcv, {snd} snd")),
            );
        }
    }
    out
}

/// The relay alone, the measured round trip, and every error.
fn notes(r: &WanReport) -> String {
    let mut out = String::new();
    if let Some(a) = &r.relay_alone {
        let up = &a.stats.to_server;
        let _ = writeln!(
            out,
            "- Relay alone (no tunnel, no loss): {:.0} Mbit/s of 1,200-byte UDP datagrams offered \
             for {} s, {:.1} Mbit/s delivered of the {:.0} configured ({:.1}%); {} queue drops; \
             sends late by {:.0} µs on average, {} µs at most.",
            a.offered_mbit,
            a.seconds.round(),
            a.delivered_mbit,
            a.configured_mbit,
            100.0 * a.delivered_mbit / a.configured_mbit,
            up.counters.overflow,
            up.sends.late_mean_us(),
            up.sends.late_max_us
        );
    }
    if let Some(t) = &r.rtt {
        let _ = writeln!(
            out,
            "- Round trip through the link (small UDP pings, with its loss): median {:.2} ms, \
             minimum {:.2} ms, {} answered, {} lost. TTFB in RTT is divided by this median.",
            t.median_ms, t.min_ms, t.answered, t.lost
        );
    }
    let load = |i: usize| r.loadavg.get(i).map_or("-", String::as_str);
    let _ = writeln!(
        out,
        "- Host: CPU steal {}% over the run; load average (1, 5, 15 min) {} at the start, {} \
         at the end.",
        num(r.steal_pct),
        load(0),
        load(1)
    );
    out.push_str(&failures(r));
    out
}

/// One line per failed figure.
fn failures(r: &WanReport) -> String {
    let errors = r.errors.iter().map(|e| format!("run: {e}"));
    let per_cc = r.controllers.iter().flat_map(|c| {
        let name = c.cc.name();
        c.errors.iter().map(move |e| format!("{name}: {e}"))
    });
    let fair = r.fairness.iter().flat_map(|f| f.errors.iter());
    let fair = fair.map(|e| format!("fairness: {e}"));
    errors
        .chain(per_cc)
        .chain(fair)
        .map(|e| format!("- Failed: {e}\n"))
        .collect()
}

/// The tables and notes printed at the end of a run.
pub fn tables(r: &WanReport) -> String {
    let mut out = figures_table(r);
    if let Some(f) = &r.fairness {
        out.push_str(
            "\nTwo tunnels through the same bottleneck at once, one bulk transfer each:\n\n",
        );
        out.push_str(&fairness_table(f));
    }
    out.push_str("\nThe relay's counters over each figure (datagrams offered to the link):\n\n");
    out.push_str(&counters_table(r));
    let notes = notes(r);
    if !notes.is_empty() {
        out.push_str("\nNotes:\n\n");
        out.push_str(&notes);
    }
    out
}

/// The whole markdown file: the link, the tables, the legend, the machine and versions.
pub fn markdown(r: &WanReport) -> String {
    let s = &r.settings;
    let mut out = format!(
        "# frp-bench --wan {} on {}\n\n",
        r.started_utc, r.meta.hostname
    );
    let _ = writeln!(out, "Command: `{}`\n", r.command);
    let _ = writeln!(
        out,
        "Link between frpc and frps, each direction: {} Mbit/s bottleneck, drop-tail queue of \
         {} bytes, {} ms propagation delay ({} ms RTT), {}% random loss (seed {}). Bulk \
         transfers: {} s, one stream. TTFB: {} bursts of {BURST} new connections at once.\n",
        s.rate_mbit,
        s.queue_bytes,
        s.rtt_ms as f64 / 2.0,
        s.rtt_ms,
        s.loss_pct,
        s.seed,
        s.duration_s,
        s.ttfb_rounds
    );
    out.push_str(&tables(r));
    out.push_str(&legend());
    out.push_str(&crate::report::machine_section(&r.meta));
    out
}

/// What the columns and counters mean.
fn legend() -> String {
    format!(
        "
Columns are the congestion controller of both ends (`transport.quic.congestionControl`; \
`default`: the key left out). up = the visitor sends to the published \
service (frps to frpc on the link), down = the service sends (`-R`). TTFB = connect to the \
first response byte of `GET /1k` on a new tunneled connection, in round trips of the link. \
Pings: {PINGERS} kept-alive tunneled connections to the echo target, each sending \
{PING_BYTES} bytes and waiting for them to come back, one at a time, while one download runs \
through the same tunnel. Lost = dropped at random by the link; queue drops = the drop-tail \
queue was full. Sends late = how long after its due time the relay sent a datagram (its own \
scheduling delay, added to the link's). Kernel UDP buffer errors count every socket on the \
machine (the relay's, frps's, frpc's): datagrams lost outside the emulated link.
"
    )
}
