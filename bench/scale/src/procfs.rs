//! What the harness reads from /proc: a process's resident memory and CPU time, and the host's
//! CPU steal.

use std::time::Instant;

use anyhow::Context as _;

/// VmRSS of `pid` in KiB, from /proc/PID/status.
pub fn rss_kib(pid: Option<u32>) -> anyhow::Result<u64> {
    let path = proc_path(pid, "status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no VmRSS in {path}"))
}

/// User + system CPU time of `pid` (this process for `None`) in clock ticks, from
/// /proc/PID/stat (fields 14 and 15).
pub fn cpu_ticks(pid: Option<u32>) -> anyhow::Result<u64> {
    let path = proc_path(pid, "stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name (field 2) may hold spaces; the fields after it follow its ')'.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .with_context(|| format!("malformed {path}"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> anyhow::Result<u64> {
        let v = fields.get(i).with_context(|| format!("short {path}"))?;
        Ok(v.parse()?)
    };
    // `rest` starts at field 3 (state): utime is field 14, stime field 15.
    Ok(field(11)? + field(12)?)
}

fn proc_path(pid: Option<u32>, file: &str) -> String {
    match pid {
        Some(pid) => format!("/proc/{pid}/{file}"),
        None => format!("/proc/self/{file}"),
    }
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on every mainstream Linux).
pub fn clk_tck() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU used by one process over an interval, as a share of one core.
#[derive(Debug)]
pub struct CpuMeter {
    pid: Option<u32>,
    ticks: u64,
    at: Instant,
}

impl CpuMeter {
    /// Starts measuring `pid` (this process for `None`).
    pub fn start(pid: Option<u32>) -> anyhow::Result<Self> {
        Ok(Self {
            pid,
            ticks: cpu_ticks(pid)?,
            at: Instant::now(),
        })
    }

    /// Percent of one core used since [`CpuMeter::start`].
    pub fn percent(&self) -> anyhow::Result<f64> {
        let ticks = cpu_ticks(self.pid)?.saturating_sub(self.ticks);
        let secs = self.at.elapsed().as_secs_f64().max(1e-3);
        Ok(ticks as f64 / clk_tck() / secs * 100.0)
    }
}

/// The host's CPU over an interval, from /proc/stat: how much the hypervisor stole and how
/// busy all the cores were (with frps, this harness and whatever else runs on the machine).
#[derive(Debug)]
pub struct HostMeter {
    start: HostCpu,
}

/// Cumulative host CPU ticks: all, idle (with iowait), stolen.
#[derive(Clone, Copy, Debug, Default)]
struct HostCpu {
    total: u64,
    idle: u64,
    steal: u64,
}

impl HostMeter {
    /// Starts measuring.
    pub fn start() -> Self {
        Self {
            start: host_cpu().unwrap_or_default(),
        }
    }

    /// Since [`HostMeter::start`]: percent of all CPU time stolen, and busy cores in percent
    /// of one core (200 = both cores of two busy).
    pub fn percent(&self) -> (f64, f64) {
        let now = host_cpu().unwrap_or(self.start);
        let total = now.total.saturating_sub(self.start.total);
        if total == 0 {
            return (0.0, 0.0);
        }
        let idle = now.idle.saturating_sub(self.start.idle);
        let steal = now.steal.saturating_sub(self.start.steal);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let busy = total.saturating_sub(idle + steal) as f64 / total as f64 * cpus * 100.0;
        (steal as f64 / total as f64 * 100.0, busy)
    }
}

/// The `cpu` line of /proc/stat.
fn host_cpu() -> Option<HostCpu> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user already).
    Some(HostCpu {
        total: v.iter().take(8).sum(),
        idle: v.get(3)? + v.get(4)?,
        steal: *v.get(7)?,
    })
}

/// The 1-minute load average (/proc/loadavg).
pub fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Whether a UDP socket is bound to 127.0.0.1:`port` (/proc/net/udp).
pub fn udp_bound(port: u16) -> bool {
    let want = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/udp")
        .map(|t| {
            t.lines()
                .any(|l| l.split_whitespace().nth(1) == Some(want.as_str()))
        })
        .unwrap_or(false)
}
