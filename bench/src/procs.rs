//! Child processes that cannot outlive the harness, free ports, and what /proc says about a
//! process (resident memory, CPU time, descendants).

use std::collections::HashMap;
use std::fs::File;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _, Result};

/// Loopback, the only address the harness uses.
pub const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// How long a child gets to exit after SIGTERM before it is killed.
const TERM_GRACE: Duration = Duration::from_secs(3);

/// A child process, killed (SIGTERM, then SIGKILL) with its descendants when dropped.
///
/// Its stdout and stderr go to `<dir>/<label>.log`.
#[derive(Debug)]
pub struct Guard {
    label: String,
    child: Child,
    log: PathBuf,
}

impl Guard {
    /// Starts `cmd` with its output in `dir/<label>.log`.
    pub fn spawn(label: &str, cmd: &mut Command, dir: &Path) -> Result<Self> {
        let log = dir.join(format!("{label}.log"));
        // Appended to: a restarted child (the iperf3 server) keeps its earlier output.
        let out = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("open {}", log.display()))?;
        let err = out.try_clone().context("clone log file handle")?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("start {label} ({:?})", cmd.get_program()))?;
        Ok(Self {
            label: label.to_string(),
            child,
            log,
        })
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The file holding the child's output.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Fails (naming the log) if the child has exited.
    pub fn check_running(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => bail!(
                "{} exited ({status}); see {}",
                self.label,
                self.log.display()
            ),
            Err(e) => bail!("{}: wait failed: {e}", self.label),
        }
    }

    /// SIGTERM to the child, SIGKILL after [`TERM_GRACE`], then SIGKILL to any descendant left.
    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let pid = self.pid();
        let family = descendants(pid);
        signal("TERM", pid);
        let deadline = Instant::now() + TERM_GRACE;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for other in family.into_iter().filter(|&p| p != pid) {
            if Path::new(&format!("/proc/{other}")).exists() {
                signal("KILL", other);
            }
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs a short command to completion (killed after `limit`); its stdout, or an error with
/// its stderr when it fails.
pub async fn run_checked(cmd: &mut tokio::process::Command, limit: Duration) -> Result<String> {
    let what = format!("{:?}", cmd.as_std());
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    let out = tokio::time::timeout(limit, cmd.output())
        .await
        .with_context(|| format!("{what} still running after {limit:?}"))?
        .with_context(|| format!("run {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Sends `SIG<name>` to `pid` with kill(1); best effort.
fn signal(name: &str, pid: u32) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A loopback port free for TCP and UDP, below the kernel's ephemeral range.
///
/// A port from `:0` lies in the ephemeral range, where the harness's own thousands of outgoing
/// connections could take it between the pick and the child binding it.
pub fn free_port() -> Result<u16> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let low = 10_000u32;
    let high = ephemeral_low().max(low + 1_000);
    let span = high - low;
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        ^ std::process::id().wrapping_mul(7_919);
    for _ in 0..span.min(5_000) {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = u16::try_from(low + seed.wrapping_add(step.wrapping_mul(13)) % span)
            .context("port out of range")?;
        let tcp = TcpListener::bind((LOCALHOST, port));
        let udp = UdpSocket::bind((LOCALHOST, port));
        if tcp.is_ok() && udp.is_ok() {
            return Ok(port);
        }
    }
    bail!("no free loopback port found in {low}..{high}")
}

/// The lower bound of the kernel's ephemeral port range.
fn ephemeral_low() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// Which processes make up one side of a tunnel.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// One process.
    Pid(u32),
    /// A process and all its descendants (sshd forks per connection).
    Tree(u32),
}

impl Scope {
    /// The process ids in scope right now.
    pub fn pids(self) -> Vec<u32> {
        match self {
            Scope::Pid(pid) => vec![pid],
            Scope::Tree(pid) => descendants(pid),
        }
    }

    /// Sum of VmRSS over the scope, in KiB.
    pub fn rss_kib(self) -> Result<u64> {
        self.pids().into_iter().map(rss_kib).sum()
    }

    /// Sum of RssAnon over the scope, in KiB.
    pub fn anon_kib(self) -> Result<u64> {
        self.pids().into_iter().map(anon_kib).sum()
    }

    /// Sum of user+system CPU time over the scope, in seconds.
    pub fn cpu_secs(self) -> Result<f64> {
        let ticks: u64 = self
            .pids()
            .into_iter()
            .map(|p| stat_fields(p).map(|f| f.utime + f.stime))
            .sum::<Result<u64>>()?;
        Ok(ticks as f64 / clock_ticks() as f64)
    }
}

/// VmRSS of `pid` in KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    status_kib(pid, "VmRSS:")
}

/// RssAnon of `pid` in KiB: the resident pages that are the process's own (heap, stacks),
/// without the program's and libraries' file pages that VmRSS also counts.
pub fn anon_kib(pid: u32) -> Result<u64> {
    status_kib(pid, "RssAnon:")
}

fn status_kib(pid: u32, key: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    parse_kib(&status, key).with_context(|| format!("no {key} in {path}"))
}

/// The `KEY   1234 kB` line of /proc/PID/status.
fn parse_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The fields of /proc/PID/stat the harness reads.
#[derive(Debug, PartialEq, Eq)]
struct StatFields {
    ppid: u32,
    utime: u64,
    stime: u64,
}

fn stat_fields(pid: u32) -> Result<StatFields> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    parse_stat(&stat).with_context(|| format!("parse {path}"))
}

/// Parses /proc/PID/stat; the command name (field 2) may hold spaces and parentheses.
fn parse_stat(stat: &str) -> Option<StatFields> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): ppid is field 4, utime 14, stime 15.
    Some(StatFields {
        ppid: fields.get(1)?.parse().ok()?,
        utime: fields.get(11)?.parse().ok()?,
        stime: fields.get(12)?.parse().ok()?,
    })
}

/// `root` and every process descending from it.
pub fn descendants(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            if let Ok(fields) = stat_fields(pid) {
                children.entry(fields.ppid).or_default().push(pid);
            }
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        if let Some(kids) = children.get(&out[i]) {
            out.extend(kids);
        }
        i += 1;
    }
    out
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 on Linux if that fails).
fn clock_ticks() -> u64 {
    static TCK: OnceLock<u64> = OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_command_name() {
        let stat = "4242 (ss) h (x)) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 1 0 \
                    12345 1000000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0";
        let f = parse_stat(stat).expect("parses");
        assert_eq!(
            f,
            StatFields {
                ppid: 17,
                utime: 250,
                stime: 31
            }
        );
    }

    #[test]
    fn vmrss_line() {
        let status = "Name:\tfrps\nVmPeak:\t  9000 kB\nVmRSS:\t    5120 kB\nRssAnon:\t 1024 kB\n";
        assert_eq!(parse_kib(status, "VmRSS:"), Some(5120));
        assert_eq!(parse_kib(status, "RssAnon:"), Some(1024));
    }

    #[test]
    fn own_process_is_readable() {
        let me = std::process::id();
        assert!(rss_kib(me).expect("own rss") > 0);
        assert!(anon_kib(me).expect("own anonymous rss") > 0);
        assert!(Scope::Tree(me).pids().contains(&me));
        Scope::Pid(me).cpu_secs().expect("own cpu time");
    }
}
