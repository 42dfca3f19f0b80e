//! `frps status`: the running frps's clients and proxies, from its admin API (the address
//! and credentials of `[webServer]` in the config file), as two tables or `--json`.

use std::path::Path;
use std::process::ExitCode;

use frp_admin::cli::table;
use hyper::Method;

use crate::admin::views::{ClientView, ProxyView};
use crate::admin::PREFIX;

/// Prints the clients and proxies of the frps configured by `config`; returns the exit status
/// (0 done, 1 no answer or an error answer, 64 no usable `[webServer]`).
pub fn run(json: bool, config: &Path) -> ExitCode {
    let get = |what: &str| {
        let path = format!("{PREFIX}/{what}");
        frp_admin::cli::call(config, "frps", Method::GET, &path)
    };
    let clients = match get("clients") {
        Ok(c) => c.body,
        Err(status) => return status,
    };
    let proxies = match get("proxies") {
        Ok(p) => p.body,
        Err(status) => return status,
    };
    if json {
        let (c, p) = (
            String::from_utf8_lossy(&clients),
            String::from_utf8_lossy(&proxies),
        );
        println!("{{\"clients\":{c},\"proxies\":{p}}}");
        return ExitCode::SUCCESS;
    }
    let parsed = serde_json::from_slice::<Vec<ClientView>>(&clients)
        .and_then(|c| Ok((c, serde_json::from_slice::<Vec<ProxyView>>(&proxies)?)));
    match parsed {
        Ok((c, p)) => {
            print!("{}", tables(&c, &p));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: unexpected answer from the admin api: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The clients table, a blank line, and the proxies table.
pub fn tables(clients: &[ClientView], proxies: &[ProxyView]) -> String {
    let mut rows = vec![[
        "CLIENT", "ADDRESS", "SINCE", "RTT", "PROXIES", "CONNS", "IN", "OUT",
    ]
    .map(String::from)];
    for c in clients {
        rows.push([
            c.identity.clone(),
            c.addr.clone(),
            c.connected_since.clone().unwrap_or_default(),
            format!("{:.1} ms", c.rtt_ms),
            c.proxies.len().to_string(),
            c.connections.to_string(),
            bytes(c.bytes_in),
            bytes(c.bytes_out),
        ]);
    }
    let mut out = format!("{} client(s) connected\n", clients.len()) + &table(&rows);
    let mut rows = vec![[
        "PROXY", "CLIENT", "TYPE", "STATUS", "PUBLIC", "CONNS", "IN", "OUT",
    ]
    .map(String::from)];
    for p in proxies {
        let public = match (&p.last_error, p.domains.is_empty()) {
            (Some(e), _) => e.clone(),
            (None, true) => p.remote_addr.clone().unwrap_or_default(),
            (None, false) => p.domains.join(","),
        };
        rows.push([
            p.name.clone(),
            p.client.clone(),
            p.kind.clone(),
            p.status.clone(),
            public,
            p.connections.to_string(),
            bytes(p.bytes_in),
            bytes(p.bytes_out),
        ]);
    }
    out += &format!("\n{} proxy(ies)\n", proxies.len());
    out + &table(&rows)
}

/// A byte count for people: `512 B`, `3.4 MiB`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{n} B"),
        _ => format!("{v:.1} {}", UNITS[unit]),
    }
}
