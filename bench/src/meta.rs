//! What a result depends on: the machine, the tools' versions, the frp-quic revision.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;

/// The machine and the software the run used.
#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    pub hostname: String,
    pub uname: String,
    pub nproc: String,
    pub cpu_model: String,
    pub mem_total: String,
    pub nofile_limit: String,
    pub versions: Vec<ToolVersion>,
}

/// A tool and the first line of its version output.
#[derive(Debug, Clone, Serialize)]
pub struct ToolVersion {
    pub tool: String,
    pub version: String,
}

impl Meta {
    /// Collects everything; a tool that is missing or fails shows as "not found".
    pub fn collect(workspace: &Path, rathole: Option<&Path>) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let rathole = rathole.map_or_else(|| "rathole".into(), |p| p.display().to_string());
        let versions = [
            ("rustc", first_line(&["rustc", "-V"])),
            ("frp-quic", git_revision(workspace)),
            ("rathole", rathole_version(&rathole)),
            ("ssh", first_line(&["ssh", "-V"])),
            ("iperf3", first_line(&["iperf3", "--version"])),
            ("wrk", first_line(&["wrk", "-v"])),
            ("nginx", first_line(&["nginx", "-v"])),
        ]
        .into_iter()
        .map(|(tool, version)| ToolVersion {
            tool: tool.into(),
            version,
        })
        .collect();
        Self {
            hostname: hostname(),
            uname: first_line(&["uname", "-a"]),
            nproc: first_line(&["nproc"]),
            cpu_model: field(&cpuinfo, "model name"),
            mem_total: field(&meminfo, "MemTotal"),
            nofile_limit: first_line(&["sh", "-c", "ulimit -n"]),
            versions,
        }
    }
}

/// The machine's host name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into())
}

/// `NAME` on the PATH, or None.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The first `key: value` line of a /proc file whose key is `key`.
fn field(text: &str, key: &str) -> String {
    text.lines()
        .find(|l| l.split(':').next().map(str::trim) == Some(key))
        .and_then(|l| l.split_once(':'))
        .map_or_else(|| "unknown".into(), |(_, v)| v.trim().to_string())
}

/// Output of a command (stdout, else stderr: ssh and nginx print versions there).
fn output(argv: &[&str]) -> Option<String> {
    let (program, args) = argv.split_first()?;
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let text = if stdout.is_empty() {
        String::from_utf8_lossy(&out.stderr).trim().to_string()
    } else {
        stdout
    };
    (!text.is_empty()).then_some(text)
}

fn first_line(argv: &[&str]) -> String {
    output(argv)
        .and_then(|t| t.lines().next().map(str::to_string))
        .unwrap_or_else(|| "not found".into())
}

/// rathole prints build details; the `Build Version:` line is the version.
fn rathole_version(rathole: &str) -> String {
    let Some(text) = output(&[rathole, "--version"]) else {
        return "not found".into();
    };
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Build Version:"))
        .map_or_else(
            || text.lines().next().unwrap_or_default().to_string(),
            |v| format!("rathole {}", v.trim()),
        )
}

/// `git rev-parse HEAD`, and "(dirty)" when the work tree has changes.
fn git_revision(workspace: &Path) -> String {
    let dir = workspace.display().to_string();
    let rev = first_line(&["git", "-C", &dir, "rev-parse", "HEAD"]);
    let dirty = output(&["git", "-C", &dir, "status", "--porcelain"]).is_some();
    if dirty {
        format!("{rev} (dirty)")
    } else {
        rev
    }
}

/// How much of the recorded function order (`bench/link-order`, `<program>/link-order.txt`)
/// the `frps` and `frpc` in `bin_dir` were linked with: for each, the recorded functions its
/// symbol table has. Far below all of them means the list is stale (the code or the
/// toolchain moved on) and the binary's code is laid out as without it.
pub fn link_order(bin_dir: &Path) -> String {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."));
    let each = ["frps", "frpc"].map(|program| {
        let list = workspace.join(program).join("link-order.txt");
        let Ok(list) = std::fs::read_to_string(&list) else {
            return format!("{program}: no {}", list.display());
        };
        let binary = bin_dir.join(program).display().to_string();
        let symbols = output(&["nm", "--defined-only", &binary]);
        let Some(symbols) = symbols.filter(|s| !s.contains(": no symbols")) else {
            return format!("{program}: no symbol table to check");
        };
        let symbols: std::collections::HashSet<&str> = symbols
            .lines()
            .filter_map(|l| l.split(' ').nth(2))
            .collect();
        let total = list.lines().count();
        let found = list.lines().filter(|n| symbols.contains(n)).count();
        format!("{program} has {found} of {total} recorded functions")
    });
    each.join(", ")
}
