//! iperf3 and wrk: running them against a port, and parsing what they print.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use serde::Serialize;
use tokio::process::Command;

/// How much longer than its own duration a tool may run before it is killed.
const SLACK: Duration = Duration::from_secs(30);

/// One iperf3 test as its client saw it.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct IperfRun {
    /// Bytes the receiving side got.
    pub bytes: u64,
    /// Receiver throughput, Gbit/s.
    pub gbps: f64,
}

/// Parses `iperf3 -J` output; an `"error"` field becomes the error.
pub fn parse_iperf(json: &str) -> Result<IperfRun> {
    let v: serde_json::Value = serde_json::from_str(json).context("iperf3 output is not JSON")?;
    if let Some(err) = v.get("error").and_then(|e| e.as_str()) {
        bail!("iperf3: {err}");
    }
    let sum = &v["end"]["sum_received"];
    let bytes = sum["bytes"]
        .as_u64()
        .context("iperf3 JSON without end.sum_received.bytes")?;
    let bps = sum["bits_per_second"]
        .as_f64()
        .context("iperf3 JSON without end.sum_received.bits_per_second")?;
    Ok(IperfRun {
        bytes,
        gbps: bps / 1e9,
    })
}

/// Runs `iperf3 -c` against loopback `port` for `secs` seconds with `streams` streams,
/// server-to-client when `reverse` (`-R`).
pub async fn iperf(port: u16, streams: u32, reverse: bool, secs: u64) -> Result<IperfRun> {
    let mut cmd = Command::new("iperf3");
    cmd.args(["-c", "127.0.0.1", "-J", "--connect-timeout", "5000"])
        .args(["-p", &port.to_string(), "-t", &secs.to_string()])
        .args(["-P", &streams.to_string()]);
    if reverse {
        cmd.arg("-R");
    }
    let out = run(&mut cmd, secs).await?;
    let r = if reverse { " -R" } else { "" };
    parse_iperf(&out).with_context(|| format!("iperf3 -P {streams}{r} to port {port}"))
}

/// Whether an iperf3 failure is the server still finishing the previous test: worth another
/// try, since the test never started.
///
/// Two shapes: the server says it is busy, or the control connection is reset before the
/// first control message. The second is iperf3 closing its listening socket between tests:
/// a tunnel accepts the public connection at once and only then dials the service, so a
/// refused dial reaches the client as a reset instead of a refused connect.
pub fn iperf_busy(e: &anyhow::Error) -> bool {
    let text = format!("{e:#}");
    text.contains("the server is busy")
        || text.contains("unable to receive control message: Connection reset by peer")
}

/// What one wrk run reports.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WrkRun {
    pub req_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub requests: u64,
    /// Socket errors of all kinds (connect, read, write, timeout).
    pub socket_errors: u64,
    /// Responses with a status other than 2xx or 3xx.
    pub non_2xx: u64,
}

/// Parses wrk's text output (run with `--latency`).
pub fn parse_wrk(text: &str) -> Result<WrkRun> {
    let mut run = WrkRun {
        req_per_sec: f64::NAN,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        requests: 0,
        socket_errors: 0,
        non_2xx: 0,
    };
    for line in text.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("Requests/sec:"), Some(v)) => run.req_per_sec = v.parse()?,
            (Some("50%"), Some(v)) => run.p50_ms = wrk_ms(v)?,
            (Some("99%"), Some(v)) => run.p99_ms = wrk_ms(v)?,
            (Some(n), Some("requests")) => run.requests = n.parse()?,
            (Some("Socket"), Some("errors:")) => run.socket_errors = socket_errors(line)?,
            (Some("Non-2xx"), _) => {
                let n = line.rsplit(' ').next().unwrap_or_default();
                run.non_2xx = n.parse().context("Non-2xx count")?;
            }
            _ => {}
        }
    }
    if run.req_per_sec.is_nan() || run.p50_ms.is_nan() || run.p99_ms.is_nan() {
        bail!("wrk output without Requests/sec or latency distribution:\n{text}");
    }
    Ok(run)
}

/// `Socket errors: connect 0, read 9927, write 0, timeout 0` summed.
fn socket_errors(line: &str) -> Result<u64> {
    let counts = line.trim_start_matches("Socket errors:").split(',');
    counts
        .map(|c| {
            let n = c.split_whitespace().nth(1).context("socket error count")?;
            Ok(n.parse::<u64>()?)
        })
        .sum()
}

/// A wrk duration (`812.00us`, `1.35ms`, `2.01s`, `1.50m`) in milliseconds.
fn wrk_ms(v: &str) -> Result<f64> {
    let split = v
        .find(|c: char| c.is_ascii_alphabetic())
        .with_context(|| format!("wrk time without unit: {v}"))?;
    let (num, unit) = v.split_at(split);
    let num: f64 = num.parse().with_context(|| format!("wrk time {v}"))?;
    let scale = match unit {
        "us" => 1e-3,
        "ms" => 1.0,
        "s" => 1e3,
        "m" => 60e3,
        "h" => 3_600e3,
        _ => bail!("wrk time unit {unit:?} in {v}"),
    };
    Ok(num * scale)
}

/// Runs `wrk -t2 -c50 --latency` for `secs` seconds against `/1k` on loopback `port`; with
/// `close`, every request asks for `Connection: close` (a new connection per request).
pub async fn wrk(port: u16, secs: u64, close: bool) -> Result<WrkRun> {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t2", "-c50", "--latency", "--timeout", "5s"])
        .arg(format!("-d{secs}s"));
    if close {
        cmd.args(["-H", "Connection: close"]);
    }
    cmd.arg(format!("http://127.0.0.1:{port}/1k"));
    let out = run(&mut cmd, secs).await?;
    parse_wrk(&out)
}

/// Runs `cmd` for at most `secs` + [`SLACK`]; its stdout on success.
async fn run(cmd: &mut Command, secs: u64) -> Result<String> {
    let what = format!("{:?}", cmd.as_std());
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    let limit = Duration::from_secs(secs) + SLACK;
    let out = tokio::time::timeout(limit, cmd.output())
        .await
        .with_context(|| format!("{what} still running after {limit:?}"))?
        .with_context(|| format!("run {what}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() && !stdout.contains("\"error\"") {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).expect("fixture readable")
    }

    #[test]
    fn iperf_single_stream() {
        let run = parse_iperf(&fixture("iperf3-1stream.json")).expect("parses");
        assert!(run.bytes > 1_000_000_000, "{run:?}");
        assert!(
            (run.gbps - run.bytes as f64 * 8.0 / 1e9).abs() < 1.0,
            "{run:?}"
        );
    }

    #[test]
    fn iperf_eight_streams_reverse() {
        let run = parse_iperf(&fixture("iperf3-8streams-reverse.json")).expect("parses");
        assert_eq!(run.bytes, 2_829_975_552);
        assert!((run.gbps - 22.637_087_965).abs() < 1e-6, "{run:?}");
    }

    #[test]
    fn iperf_error_is_reported() {
        let err = parse_iperf(&fixture("iperf3-refused.json")).expect_err("error field");
        assert!(err.to_string().contains("Connection refused"), "{err}");
    }

    #[test]
    fn a_test_that_never_started_is_retried() {
        let busy = anyhow::anyhow!("iperf3: the server is busy running a test. try again later");
        let reset = anyhow::anyhow!("unable to receive control message: Connection reset by peer");
        let refused = parse_iperf(&fixture("iperf3-refused.json")).expect_err("error field");
        assert!(iperf_busy(&busy) && iperf_busy(&reset));
        assert!(!iperf_busy(&refused), "a refused connect is a real failure");
    }

    #[test]
    fn wrk_keepalive() {
        let run = parse_wrk(&fixture("wrk-keepalive.txt")).expect("parses");
        assert_eq!(run.req_per_sec, 21_539.59);
        assert_eq!(run.p50_ms, 1.35);
        assert_eq!(run.p99_ms, 47.06);
        assert_eq!(run.requests, 43_331);
        assert_eq!((run.socket_errors, run.non_2xx), (0, 0));
    }

    #[test]
    fn wrk_connection_close() {
        let run = parse_wrk(&fixture("wrk-close.txt")).expect("parses");
        assert_eq!(run.req_per_sec, 10_053.98);
        assert_eq!(run.p99_ms, 117.13);
    }

    #[test]
    fn wrk_socket_errors_and_microseconds() {
        let run = parse_wrk(&fixture("wrk-socket-errors.txt")).expect("parses");
        assert_eq!(run.socket_errors, 9_927);
        assert_eq!(run.requests, 0);
        assert_eq!(run.p50_ms, 0.0);
    }

    #[test]
    fn wrk_units() {
        assert!((wrk_ms("812.00us").expect("us") - 0.812).abs() < 1e-9);
        assert_eq!(wrk_ms("2.00s").expect("s"), 2_000.0);
        assert_eq!(wrk_ms("1.50m").expect("m"), 90_000.0);
        assert!(wrk_ms("12").is_err());
    }

    #[test]
    fn wrk_garbage_is_an_error() {
        assert!(parse_wrk("unable to connect to 127.0.0.1:1 Connection refused").is_err());
    }
}
