//! `frpc status` and `frpc reload`: the running frpc's admin API, called with the address and
//! credentials of `[webServer]` in the config file, printed as a table (or `--json`).

use std::path::Path;
use std::process::ExitCode;

use frp_admin::client::{AdminClient, Answer};
use frp_admin::{WebServerSection, WebServerSettings};
use frp_runtime::config::EXIT_CONFIG;
use hyper::{Method, StatusCode};

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
    let settings = match web_settings(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_CONFIG as u8);
        }
    };
    let runtime = match frp_runtime::program::runtime(1) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (method, path) = match call {
        Call::Status => (Method::GET, "status"),
        Call::Reload => (Method::POST, "reload"),
    };
    let answer = runtime.block_on(async {
        let client = AdminClient::new(&settings)?;
        client.call(method, &format!("{PREFIX}/{path}"), None).await
    });
    match answer {
        Ok(a) if a.status == StatusCode::OK => print(call, json, &a, config),
        Ok(a) => {
            eprintln!("error: {} ({})", a.error_text(), a.status);
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `[webServer]` of the config file. Only that section is read (not the certificates, nor
/// the proxies), so `frpc reload` can ask the running frpc to check a file with mistakes.
fn web_settings(config: &Path) -> Result<WebServerSettings, String> {
    let text = std::fs::read_to_string(config)
        .map_err(|e| format!("{}: cannot read file: {e}", config.display()))?;
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| format!("{}: invalid TOML: {}", config.display(), e.message()))?;
    let section: WebServerSection = match table.get("webServer") {
        Some(v) => v.clone().try_into().map_err(|e: toml::de::Error| {
            format!("{}: webServer: {}", config.display(), e.message())
        })?,
        None => WebServerSection::default(),
    };
    let prometheus = table
        .get("enablePrometheus")
        .and_then(toml::Value::as_bool)
        .unwrap_or(false);
    match section.settings(config, prometheus) {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(format!(
            "{}: `webServer.port` is not set, so frpc serves no admin API to ask",
            config.display()
        )),
        Err(e) => Err(e.to_string()),
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

/// Rows as left-aligned columns.
fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out += cells.join("  ").trim_end();
        out.push('\n');
    }
    out
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
