//! `frpc status` and `frpc reload`: the running frpc's admin API, called with the address and
//! credentials of `[webServer]` in the config file, printed as a table (or `--json`).

use std::path::Path;
use std::process::ExitCode;

use frp_admin::cli::table;
use frp_admin::client::Answer;
use hyper::Method;

use crate::api::{StatusView, PREFIX};
use crate::reload::ReloadReport;

/// What a subcommand asks the running frpc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// `frpc status`.
    Status,
    /// `frpc reload`.
    Reload,
}

/// Runs `call` against the frpc configured by `config` and prints its answer (JSON as it came
/// with `json`); returns the exit status (0 done, 1 no answer or an error answer, 64 no
/// usable `[webServer]`).
pub fn run(call: Call, json: bool, config: &Path) -> ExitCode {
    let (method, path) = match call {
        Call::Status => (Method::GET, "status"),
        Call::Reload => (Method::POST, "reload"),
    };
    match frp_admin::cli::call(config, "frpc", method, &format!("{PREFIX}/{path}")) {
        Ok(answer) => print(call, json, &answer, config),
        Err(status) => status,
    }
}

fn print(call: Call, json: bool, answer: &Answer, config: &Path) -> ExitCode {
    if json {
        println!("{}", String::from_utf8_lossy(&answer.body));
        return ExitCode::SUCCESS;
    }
    let text = match call {
        Call::Status => serde_json::from_slice(&answer.body).map(|s| status_table(&s)),
        Call::Reload => serde_json::from_slice(&answer.body).map(|r| reload_lines(&r, config)),
    };
    match text {
        Ok(t) => {
            print!("{t}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: unexpected answer from the admin api: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The server line and a table of proxies.
pub fn status_table(s: &StatusView) -> String {
    let v = &s.server;
    let mut out = format!("server  {}  {}", v.addr, v.state);
    if let Some(a) = &v.remote_addr {
        out += &format!(" to {a}");
    }
    if let Some(t) = &v.transport {
        out += &format!(" over {t}");
    }
    if let Some(since) = &v.since {
        out += &format!(" since {since}");
    }
    if let Some(rtt) = v.rtt_ms {
        out += &format!("  rtt {rtt:.1} ms");
    }
    if let Some(at) = &v.next_retry {
        out += &format!("  next attempt {at}");
    }
    if let Some(e) = &v.last_error {
        out += &format!("\n        last error: {e}");
    }
    out.push_str("\n\n");
    let mut rows = vec![["NAME", "TYPE", "STATE", "PUBLIC", "LOCAL", "DETAIL"].map(String::from)];
    for p in &s.proxies {
        let detail = match &p.reason {
            Some(r) => r.clone(),
            None => p.domains.join(","),
        };
        let public = p.remote_addr.clone().unwrap_or_else(|| "-".into());
        rows.push([
            p.name.clone(),
            p.kind.clone(),
            p.state.clone(),
            public,
            p.local.clone(),
            detail,
        ]);
    }
    out + &table(&rows)
}

/// What a reload changed, one line per kind of change.
fn reload_lines(r: &ReloadReport, config: &Path) -> String {
    let mut out = format!("reloaded {}\n", config.display());
    let lists = [
        ("added", &r.added),
        ("removed", &r.removed),
        ("changed", &r.changed),
        ("retargeted", &r.retargeted),
    ];
    for (what, names) in lists {
        if !names.is_empty() {
            out += &format!("  {what}: {}\n", names.join(", "));
        }
    }
    if lists.iter().all(|(_, n)| n.is_empty()) && !r.server_moved {
        out += "  no proxy changed\n";
    }
    if r.server_moved {
        out += "  moved to the new server settings\n";
    }
    if r.reconnected {
        out += "  the server is older than protocol minor 2: reconnected to apply it\n";
    }
    if !r.connected {
        out += "  not connected: the proxies register at the next connection\n";
    }
    if !r.restart_needed.is_empty() {
        out += &format!(
            "  needs a restart to change: {}\n",
            r.restart_needed.join(", ")
        );
    }
    out
}
