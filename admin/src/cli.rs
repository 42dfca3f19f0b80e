//! What `frpc status`, `frpc reload` and `frps status` share: reaching the running program's
//! admin API with the address and credentials of `[webServer]` in its config file, and
//! printing tables.

use std::path::Path;
use std::process::ExitCode;

use frp_runtime::config::EXIT_CONFIG;
use hyper::{Method, StatusCode};

use crate::client::{AdminClient, Answer};

/// Calls `method path` on the admin API of the `program` configured by `config` and returns
/// its `200` answer. Anything else is printed to stderr and becomes the exit status: 64 when
/// the file has no usable `[webServer]`, 1 when there is no answer or an error answer.
///
/// # Errors
/// The exit status to end with, the reason already printed.
pub fn call(config: &Path, program: &str, method: Method, path: &str) -> Result<Answer, ExitCode> {
    let settings = crate::web_settings_of(config, program).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_CONFIG as u8)
    })?;
    let runtime = frp_runtime::program::runtime(1).map_err(|e| {
        eprintln!("error: starting runtime: {e}");
        ExitCode::FAILURE
    })?;
    let answer = runtime.block_on(async {
        let client = AdminClient::new(&settings)?;
        client.call(method, path, None).await
    });
    match answer {
        Ok(a) if a.status == StatusCode::OK => Ok(a),
        Ok(a) => {
            eprintln!("error: {} ({})", a.error_text(), a.status);
            Err(ExitCode::FAILURE)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            Err(ExitCode::FAILURE)
        }
    }
}

/// Rows as left-aligned columns, two spaces apart, trailing blanks trimmed.
pub fn table<const N: usize>(rows: &[[String; N]]) -> String {
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
