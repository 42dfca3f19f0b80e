//! The markdown tables (figures, then frp-quic's ratios to every other peer) and the result
//! files.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::meta::Meta;
use crate::results::{PeerResult, Report, RssPoint, Settings};

/// Which way a column is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Better {
    Higher,
    Lower,
}

/// The number of a column that ratios use.
type Value = Box<dyn Fn(&PeerResult) -> Option<f64>>;
/// The text of a cell.
type Show = Box<dyn Fn(&PeerResult) -> String>;

/// One column: its header, which way is better, the number ratios use, and the cell text.
struct Column {
    header: String,
    better: Better,
    value: Value,
    show: Show,
}

impl Column {
    /// A column whose cell is its value.
    fn plain(header: String, better: Better, value: fn(&PeerResult) -> Option<f64>) -> Self {
        Self {
            header,
            better,
            value: Box::new(value),
            show: Box::new(move |r| num(value(r))),
        }
    }
}

fn columns(s: &Settings) -> Vec<Column> {
    let mut cols = traffic_columns();
    cols.extend(memory_columns(s.idle_conns));
    cols.push(Column::plain("CPU s/GB".into(), Better::Lower, |r| {
        r.cpu_s_per_gb
    }));
    cols.extend(ttfb_columns(2 * s.relay_delay_ms));
    cols
}

/// iperf3 and wrk.
fn traffic_columns() -> Vec<Column> {
    use Better::{Higher, Lower};
    vec![
        Column::plain("1 stream up Gbit/s".into(), Higher, |r| r.gbps(1, false)),
        Column::plain("1 stream down (-R) Gbit/s".into(), Higher, |r| {
            r.gbps(1, true)
        }),
        Column::plain("8 streams up Gbit/s".into(), Higher, |r| r.gbps(8, false)),
        Column::plain("8 streams down (-R) Gbit/s".into(), Higher, |r| {
            r.gbps(8, true)
        }),
        Column::plain("keep-alive req/s".into(), Higher, |r| {
            r.wrk_keepalive.as_ref().map(|w| w.req_per_sec)
        }),
        Column::plain("keep-alive p50 ms".into(), Lower, |r| {
            r.wrk_keepalive.as_ref().map(|w| w.p50_ms)
        }),
        Column::plain("keep-alive p99 ms".into(), Lower, |r| {
            r.wrk_keepalive.as_ref().map(|w| w.p99_ms)
        }),
        Column::plain("new-conn req/s".into(), Higher, |r| {
            r.wrk_close.as_ref().map(|w| w.req_per_sec)
        }),
    ]
}

/// RSS idle and at both counts (cells "server / client", ratios of the sums), per conn.
fn memory_columns([small, large]: [usize; 2]) -> Vec<Column> {
    let labels = ["idle".to_string(), count(small), count(large)];
    let mut cols: Vec<Column> = labels
        .into_iter()
        .enumerate()
        .map(|(i, label)| Column {
            header: format!("RSS {label} srv / cli MiB"),
            better: Better::Lower,
            value: Box::new(move |r| point(r, i).map(|p| p.total_kib() as f64)),
            show: Box::new(move |r| point(r, i).map_or("-".into(), show_rss)),
        })
        .collect();
    cols.push(Column::plain(
        "KiB per idle conn".into(),
        Better::Lower,
        |r| r.idle.as_ref().and_then(|i| i.kib_per_conn),
    ));
    cols.push(Column {
        header: "RSS after load srv / cli MiB".into(),
        better: Better::Lower,
        value: Box::new(|r| r.after_load.as_ref().map(|a| a.settled.total_kib() as f64)),
        show: Box::new(|r| {
            r.after_load
                .as_ref()
                .map_or("-".into(), |a| show_rss(a.settled))
        }),
    });
    cols.push(Column {
        header: "of it anonymous (heap) srv / cli MiB".into(),
        better: Better::Lower,
        value: Box::new(|r| {
            r.after_load
                .as_ref()
                .map(|a| a.settled.anon_total_kib() as f64)
        }),
        show: Box::new(|r| {
            r.after_load.as_ref().map_or("-".into(), |a| {
                let p = a.settled;
                let mib = |kib: u64| kib as f64 / 1024.0;
                format!(
                    "{:.1} / {:.1}",
                    mib(p.server_anon_kib),
                    mib(p.client_anon_kib)
                )
            })
        }),
    });
    cols.push(Column::plain(
        "KiB per idle HTTP conn after load".into(),
        Better::Lower,
        |r| r.after_load.as_ref().and_then(|a| a.kib_per_http_conn),
    ));
    cols
}

/// Time to first byte on loopback, and with the delay relay (frp-quic only).
fn ttfb_columns(rtt_ms: u64) -> Vec<Column> {
    let delayed = Column {
        header: format!("TTFB {rtt_ms} ms RTT p50 / p90 ms (× RTT)"),
        better: Better::Lower,
        value: Box::new(|r| r.ttfb_delayed.as_ref().map(|t| t.p50_ms)),
        show: Box::new(|r| {
            r.ttfb_delayed.as_ref().map_or("-".into(), |t| {
                let x = |ms: f64| ms / t.added_rtt_ms;
                let (p50, p90) = (t.p50_ms, t.p90_ms);
                format!("{p50:.1} / {p90:.1} ({:.2} / {:.2})", x(p50), x(p90))
            })
        }),
    };
    let plain = Column::plain("TTFB p50 ms".into(), Better::Lower, |r| {
        r.ttfb.as_ref().map(|t| t.p50_ms)
    });
    vec![plain, delayed]
}

fn point(r: &PeerResult, i: usize) -> Option<RssPoint> {
    r.idle.as_ref().and_then(|f| f.points.get(i).copied())
}

fn show_rss(p: RssPoint) -> String {
    let mib = |kib: u64| kib as f64 / 1024.0;
    format!("{:.1} / {:.1}", mib(p.server_kib), mib(p.client_kib))
}

fn count(n: usize) -> String {
    if n >= 1000 && n.checked_rem(1000) == Some(0) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

/// A figure with three significant digits or so; "-" when missing.
pub(crate) fn num(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if !v.is_finite() => "-".into(),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

/// The figures table, one row per peer.
fn figures_table(cols: &[Column], peers: &[PeerResult]) -> String {
    let mut out = header_row("peer", cols.iter().map(|c| c.header.clone()));
    for r in peers {
        let cells: Vec<String> = match &r.skipped {
            Some(_) => cols.iter().map(|_| "skipped".to_string()).collect(),
            None => cols.iter().map(|c| (c.show)(r)).collect(),
        };
        let _ = writeln!(out, "| {} | {} |", r.peer, cells.join(" | "));
    }
    out
}

/// frp-quic's value divided by each other peer's, per column.
fn ratio_table(cols: &[Column], peers: &[PeerResult]) -> Option<String> {
    let frp = peers
        .iter()
        .find(|r| r.peer == "frp-quic" && r.skipped.is_none())?;
    let headers = cols.iter().map(|c| {
        let arrow = if c.better == Better::Higher {
            "↑"
        } else {
            "↓"
        };
        format!("{} {arrow}", c.header)
    });
    let mut out = header_row("frp-quic ÷", headers);
    for other in peers
        .iter()
        .filter(|r| r.peer != "frp-quic" && r.skipped.is_none())
    {
        let cells: Vec<String> = cols
            .iter()
            .map(|c| match ((c.value)(frp), (c.value)(other)) {
                (Some(a), Some(b)) if b > 0.0 && a.is_finite() => format!("{:.2}×", a / b),
                _ => "-".into(),
            })
            .collect();
        let _ = writeln!(out, "| {} | {} |", other.peer, cells.join(" | "));
    }
    Some(out)
}

fn header_row(first: &str, headers: impl Iterator<Item = String>) -> String {
    let headers: Vec<String> = headers.collect();
    let rule = vec!["---"; headers.len() + 1].join("|");
    format!("| {first} | {} |\n|{rule}|\n", headers.join(" | "))
}

/// The host CPU steal during each peer's traffic figures, on one line.
fn steal_note(peers: &[PeerResult]) -> String {
    let shares: Vec<String> = peers
        .iter()
        .filter_map(|r| Some(format!("{} {:.1}%", r.peer, r.steal_pct?)))
        .collect();
    if shares.is_empty() {
        return String::new();
    }
    format!(
        "- host CPU steal during each peer's traffic figures (time the hypervisor gave to \
         other guests; above a few percent the figures are noisy): {}\n",
        shares.join(", ")
    )
}

/// Host CPU steal, skips, errors, failed idle connections and wrk errors, one line each.
fn notes(peers: &[PeerResult]) -> String {
    let mut out = steal_note(peers);
    for r in peers {
        if let Some(reason) = &r.skipped {
            let _ = writeln!(out, "- {}: skipped: {reason}", r.peer);
        }
        for e in &r.errors {
            let _ = writeln!(out, "- {}: {e}", r.peer);
        }
        if let Some(i) = r
            .idle
            .as_ref()
            .filter(|i| i.failed > 0 || i.broken_after > 0)
        {
            let first = i.first_error.as_deref().unwrap_or("-");
            let _ = writeln!(
                out,
                "- {}: idle connections: {} failed to open (first error: {first}), {} broken \
                 after the last measurement",
                r.peer, i.failed, i.broken_after
            );
        }
        if let Some(a) = r
            .after_load
            .as_ref()
            .filter(|a| a.http_failed > 0 || a.http_closed_after > 0)
        {
            let first = a.http_first_error.as_deref().unwrap_or("-");
            let _ = writeln!(
                out,
                "- {}: idle HTTP connections after load: {} failed to open (first error: \
                 {first}), {} closed by the time of the measurement",
                r.peer, a.http_failed, a.http_closed_after
            );
        }
        frp_notes(&mut out, r);
        let wrks = [("keep-alive", &r.wrk_keepalive), ("new-conn", &r.wrk_close)];
        for (what, w) in wrks {
            if let Some(w) = w.as_ref().filter(|w| w.socket_errors > 0 || w.non_2xx > 0) {
                let _ = writeln!(
                    out,
                    "- {}: wrk {what}: {} socket errors, {} non-2xx responses in {} requests",
                    r.peer, w.socket_errors, w.non_2xx, w.requests
                );
            }
        }
    }
    out
}

/// frp-quic's own notes: the connect time, the control plane's scrapes, the relay.
fn frp_notes(out: &mut String, r: &PeerResult) {
    if let (Some(q), Some(f)) = (&r.connect_quiet, &r.connect_flooded) {
        let outlasted = if f.flood_outlasted_connect {
            "still running"
        } else {
            "over"
        };
        let _ = writeln!(
            out,
            "- {}: frpc connect (start to the first echo through the tunnel): {:.0} ms \
             quiet, {:.0} ms under a flood of {:.0} QUIC Initials/s from 9 loopback \
             addresses (the flood was {outlasted} by then; frps peak RSS {:.1} MiB)",
            r.peer,
            q.connect_ms,
            f.connect_ms,
            f.initials_per_s,
            f.server_peak_rss_kib as f64 / 1024.0
        );
    }
    if let Some(s) = &r.scrapes {
        let _ = writeln!(out, "- {}: {}", r.peer, s.note());
    }
    if let Some(l) = &r.link_order {
        let _ = writeln!(out, "- {}: function order (bench/link-order): {l}", r.peer);
    }
    if let Some(rtt) = r.relay_rtt_ms {
        let _ = writeln!(
            out,
            "- {}: the delay relay alone measured a {rtt:.2} ms round trip (median of \
             datagram pings); the TTFB ratio is to the nominal round trip",
            r.peer
        );
    }
}

/// The markdown tables printed at the end of a run.
pub fn tables(report: &Report) -> String {
    let cols = columns(&report.settings);
    let mut out = figures_table(&cols, &report.peers);
    if let Some(ratios) = ratio_table(&cols, &report.peers) {
        out.push_str(
            "\nRatios, frp-quic divided by each peer (↑: above 1 is better for \
                      frp-quic; ↓: below 1 is better for frp-quic):\n\n",
        );
        out.push_str(&ratios);
    }
    let notes = notes(&report.peers);
    if !notes.is_empty() {
        out.push_str("\nNotes:\n\n");
        out.push_str(&notes);
    }
    out
}

/// The whole markdown file: settings, tables, legend, machine and versions.
pub fn markdown(report: &Report) -> String {
    let s = &report.settings;
    let m = &report.meta;
    let mut out = format!("# frp-bench {} on {}\n\n", report.started_utc, m.hostname);
    let _ = writeln!(out, "Command: `{}`\n", report.command);
    let _ = writeln!(
        out,
        "iperf3 and wrk: best of {} runs of {} s each. Idle connections: {} and {}. After \
         the load: {} s settling, then {} idle HTTP connections. Time to first byte: {} \
         sequential connections; delay relay {} ms each way.\n",
        s.runs,
        s.duration_s,
        s.idle_conns[0],
        s.idle_conns[1],
        s.settle_s,
        s.http_idle_conns,
        s.ttfb_samples,
        s.relay_delay_ms
    );
    out.push_str(&tables(report));
    out.push_str(LEGEND);
    out.push_str(&machine_section(m));
    out
}

/// The `## Machine` and `## Versions` sections of a result file.
pub(crate) fn machine_section(m: &Meta) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n## Machine\n");
    let _ = writeln!(out, "- uname: `{}`", m.uname);
    let _ = writeln!(out, "- nproc: {}", m.nproc);
    let _ = writeln!(out, "- CPU: {}", m.cpu_model);
    let _ = writeln!(out, "- MemTotal: {}", m.mem_total);
    let _ = writeln!(out, "- open files limit (ulimit -n): {}", m.nofile_limit);
    let _ = writeln!(out, "\n## Versions\n");
    for v in &m.versions {
        let _ = writeln!(out, "- {}: {}", v.tool, v.version);
    }
    out
}

const LEGEND: &str = "
Columns: up = the visitor sends to the published service (iperf3 client → server), down = \
the service sends (`-R`). new-conn = wrk with `Connection: close`, one tunneled connection per \
request. RSS = VmRSS of the tunnel's server / client processes (for ssh-R: the private sshd's \
process tree / the ssh process). KiB per idle conn = (server+client RSS with the largest \
count of connections held − idle), on a fresh tunnel, connections that carried one echoed byte, \
/ that count. RSS after load = the same processes after the traffic figures (wrk, iperf3) \
ended and the settling time passed; of it anonymous = their RssAnon then (heap, stacks: what \
is theirs alone, without the program's and shared libraries' file pages that RSS also counts). KiB per idle HTTP conn after load = (server+client RSS \
with the HTTP connections held, each after one keep-alive `GET /1k` − RSS after load) / \
connections held. CPU s/GB = user+system CPU seconds of server \
and client during all iperf3 runs per 10^9 bytes received. TTFB = connect to first response \
byte of `GET /1k` on a new connection; the delayed figure puts a UDP relay adding the delay \
each way between frpc and frps (only frp-quic runs over UDP, so the TCP-based peers show -).
";

/// Writes `<dir>/<stamp>-<host>.md` and `.json`; returns the markdown path.
pub fn write_files(dir: &Path, stamp: &str, report: &Report) -> Result<PathBuf> {
    let base = format!("{stamp}-{}", report.meta.hostname);
    write_pair(dir, &base, &markdown(report), report)
}

/// Writes `<dir>/<base>.md` with `markdown` and `<dir>/<base>.json` with `raw`; returns the
/// markdown path.
pub(crate) fn write_pair(
    dir: &Path,
    base: &str,
    markdown: &str,
    raw: &impl serde::Serialize,
) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let md = dir.join(format!("{base}.md"));
    std::fs::write(&md, markdown).with_context(|| format!("write {}", md.display()))?;
    let json = dir.join(format!("{base}.json"));
    let text = serde_json::to_string_pretty(raw).context("serialize the report")?;
    std::fs::write(&json, text + "\n").with_context(|| format!("write {}", json.display()))?;
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{IdleFigures, Settings};
    use crate::tools::WrkRun;

    fn settings() -> Settings {
        Settings {
            duration_s: 8,
            runs: 2,
            idle_conns: [1000, 10000],
            settle_s: 15,
            http_idle_conns: 10000,
            ttfb_samples: 50,
            relay_delay_ms: 20,
            connect_only: false,
        }
    }

    fn peer(name: &str, req_per_sec: f64, idle_kib: u64) -> PeerResult {
        let point = |target, extra| RssPoint {
            target,
            held: target,
            server_kib: idle_kib + extra,
            client_kib: idle_kib,
            server_anon_kib: extra,
            client_anon_kib: 0,
        };
        PeerResult {
            peer: name.into(),
            wrk_keepalive: Some(WrkRun {
                req_per_sec,
                p50_ms: 1.0,
                p99_ms: 2.0,
                requests: 1,
                socket_errors: 0,
                non_2xx: 0,
            }),
            idle: Some(IdleFigures {
                points: vec![point(0, 0), point(1000, 1024), point(10000, 10240)],
                failed: 0,
                first_error: None,
                broken_after: 0,
                kib_per_conn: Some(1.024),
            }),
            ..PeerResult::default()
        }
    }

    #[test]
    fn figures_and_ratios() {
        let cols = columns(&settings());
        let peers = vec![peer("frp-quic", 300.0, 1024), peer("rathole", 200.0, 2048)];
        let table = figures_table(&cols, &peers);
        assert!(table.contains("| RSS 10k srv / cli MiB |"), "{table}");
        assert!(table.contains("| 11.0 / 1.0 |"), "{table}");
        let ratios = ratio_table(&cols, &peers).expect("frp-quic is there");
        let row = ratios.lines().last().expect("a row");
        assert!(
            row.starts_with("| rathole | - | - | - | - | 1.50× | 1.00× |"),
            "{row}"
        );
        assert!(ratios.contains("keep-alive p99 ms ↓"), "{ratios}");
    }

    #[test]
    fn skipped_peer_and_no_frp() {
        let cols = columns(&settings());
        let skipped = PeerResult {
            peer: "rathole".into(),
            skipped: Some("rathole not installed".into()),
            ..PeerResult::default()
        };
        let peers = vec![skipped];
        assert!(figures_table(&cols, &peers).contains("| rathole | skipped |"));
        assert!(ratio_table(&cols, &peers).is_none());
        assert!(notes(&peers).contains("rathole not installed"));
    }
}
